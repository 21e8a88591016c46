// Package datadir creates and opens the enclave's data directory: the one folder that holds every
// piece of enclave state (datasets, the SQLite database, the plugin store), protected by a master key
// kept outside it.
//
// Call Init once to create a data directory and its master key (insitu init does), then Open with a
// keys.Source on every start; Open fails with ErrWrongKey when the key is not the directory's.
package datadir

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"insitu/enclave/keys"
)

// FormatFile is the name of the file that marks a folder as an insitu data directory.
const FormatFile = "insitu-datadir.json"

// FormatName and FormatVersion are the values of FormatFile's "format" and "version" keys that this
// code reads and writes.
const (
	FormatName    = "insitu-datadir"
	FormatVersion = 1
)

var (
	// ErrExists is wrapped by Init when the data directory or the key file already exists.
	ErrExists = errors.New("already exists")
	// ErrKeyInside is wrapped by Init when the key file would be inside the data directory.
	ErrKeyInside = errors.New("key file inside the data directory")
	// ErrNotDataDir is wrapped by Open when the folder is not an insitu data directory.
	ErrNotDataDir = errors.New("not an insitu data directory")
	// ErrVersion is wrapped by Open when the data directory has a format version this code cannot read.
	ErrVersion = errors.New("unsupported data directory version")
	// ErrWrongKey is wrapped by Open when the master key is not the one the directory was made with.
	ErrWrongKey = errors.New("wrong master key")
)

// Error is a data directory failure: the operation, the path concerned and the cause.
type Error struct {
	Op   string // "init" or "open"
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s data directory %s: %v", e.Op, e.Path, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// format is the content of FormatFile.
type format struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	// KeyID names the master key (keys.MasterKey.KeyID) so that a steward can tell which key is wanted.
	KeyID string `json:"key_id"`
	// KeyCheck is keys.MasterKey.CheckValue, base64.
	KeyCheck string `json:"key_check"`
}

// Initialized says what Init made.
type Initialized struct {
	// Dir is the data directory, absolute.
	Dir string
	// KeyFile is the key file written, absolute; empty when the key is to be kept in EnvVar.
	KeyFile string
	// EnvValue is the base64 master key to export as keys.EnvVar when KeyFile is empty; it is shown
	// once and stored nowhere else. Empty when a key file was written.
	EnvValue string
	// KeyID is the public name of the master key.
	KeyID string
	// Identity is the enclave's new public identity (ML-DSA-65 signing key, X-Wing HPKE key).
	Identity keys.PublicIdentity
}

// Init creates a data directory at dir (mode 0700) with a new master key. When keyFile is not empty
// the key is written there (mode 0600); keyFile must not exist yet and must not lie inside dir. When
// keyFile is empty the key is returned in Initialized.EnvValue for the caller to show once, to be
// kept in the environment variable keys.EnvVar. Init refuses a dir that exists and is not empty.
// On failure it removes what it created.
func Init(dir, keyFile string) (*Initialized, error) {
	fail := func(err error) (*Initialized, error) { return nil, &Error{Op: "init", Path: dir, Err: err} }
	if dir == "" {
		return fail(errors.New("no path given"))
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	var absKey string
	if keyFile != "" {
		if absKey, err = filepath.Abs(keyFile); err != nil {
			return fail(err)
		}
		if inside(absDir, absKey) {
			return fail(fmt.Errorf("%w: %s; keep the master key elsewhere, e.g. %s",
				ErrKeyInside, keyFile, filepath.Join(filepath.Dir(absDir), filepath.Base(absDir)+".key")))
		}
		if _, err := os.Lstat(absKey); err == nil {
			return fail(fmt.Errorf("key file %s: %w; choose another path or remove it if it is no longer needed", keyFile, ErrExists))
		}
	}
	created, err := makeEmptyDir(absDir)
	if err != nil {
		return fail(err)
	}
	undo := func() {
		if created {
			os.RemoveAll(absDir)
		} else {
			os.Remove(filepath.Join(absDir, FormatFile))
			os.Remove(filepath.Join(absDir, IdentityFile))
		}
	}
	if absKey != "" {
		// Compare again with symbolic links resolved, now that the data directory exists.
		realDir, err1 := filepath.EvalSymlinks(absDir)
		realKeyDir, err2 := filepath.EvalSymlinks(filepath.Dir(absKey))
		if err1 == nil && err2 == nil && inside(realDir, filepath.Join(realKeyDir, filepath.Base(absKey))) {
			undo()
			return fail(fmt.Errorf("%w: %s (through a symbolic link); keep the master key elsewhere", ErrKeyInside, keyFile))
		}
	}
	m, err := keys.Generate()
	if err != nil {
		undo()
		return fail(err)
	}
	res := &Initialized{Dir: absDir, KeyID: m.KeyID()}
	if absKey != "" {
		if err := keys.WriteFile(absKey, m); err != nil {
			undo()
			if errors.Is(err, keys.ErrExists) {
				err = fmt.Errorf("%w: %w", ErrExists, err)
			}
			return fail(err)
		}
		res.KeyFile = absKey
	} else {
		res.EnvValue = m.Encode()
	}
	f := format{
		Format:   FormatName,
		Version:  FormatVersion,
		Created:  time.Now().UTC().Truncate(time.Second),
		KeyID:    m.KeyID(),
		KeyCheck: base64.StdEncoding.EncodeToString(m.CheckValue()),
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err == nil {
		err = WriteFileAtomic(filepath.Join(absDir, FormatFile), append(b, '\n'), 0o600)
	}
	if err == nil {
		err = writeIdentity(absDir, m, res)
	}
	if err != nil {
		undo()
		if absKey != "" {
			os.Remove(absKey)
		}
		return fail(err)
	}
	return res, nil
}

// IdentityFile holds the enclave's identity: public keys in clear, private seeds encrypted under a
// key derived from the master key.
const IdentityFile = "identity.json"

func writeIdentity(dir string, m *keys.MasterKey, res *Initialized) error {
	id, err := keys.NewIdentity(keys.RoleEnclave, "enclave")
	if err != nil {
		return err
	}
	b, err := id.MarshalSealed(m)
	if err != nil {
		return err
	}
	res.Identity = id.Public()
	return WriteFileAtomic(filepath.Join(dir, IdentityFile), append(b, '\n'), 0o600)
}

// Identity loads the enclave's identity, whose private keys sign receipts and open what banks seal
// to the enclave.
func (d *DataDir) Identity() (*keys.Identity, error) {
	b, err := os.ReadFile(filepath.Join(d.path, IdentityFile))
	if err != nil {
		return nil, &Error{Op: "read identity of", Path: d.path, Err: err}
	}
	id, err := keys.UnmarshalSealed(b, d.key)
	if err != nil {
		return nil, &Error{Op: "read identity of", Path: d.path, Err: err}
	}
	return id, nil
}

// makeEmptyDir creates dir with mode 0700, or accepts an existing empty folder (tightening its mode
// to 0700). It reports whether it created the folder.
func makeEmptyDir(dir string) (created bool, err error) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return false, err
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return false, fmt.Errorf("%w: created by another process meanwhile", ErrExists)
			}
			return false, err
		}
		return true, syncDir(filepath.Dir(dir))
	case err != nil:
		return false, err
	case !st.IsDir():
		return false, fmt.Errorf("%w and is not a folder", ErrExists)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	if len(ents) > 0 {
		what := "an insitu data directory"
		if _, err := os.Stat(filepath.Join(dir, FormatFile)); err != nil {
			what = fmt.Sprintf("a folder with %d entries", len(ents))
		}
		return false, fmt.Errorf("%w: it is %s; choose an empty or new folder", ErrExists, what)
	}
	return false, os.Chmod(dir, 0o700)
}

// inside reports whether path is dir or lies below it. Both are absolute and clean.
func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// DataDir is an open data directory with its master key.
type DataDir struct {
	path    string
	key     *keys.MasterKey
	created time.Time
}

// Open opens the data directory at dir with the master key from src.
func Open(dir string, src keys.Source) (*DataDir, error) {
	m, err := keys.Load(src)
	if err != nil {
		return nil, &Error{Op: "open", Path: dir, Err: err}
	}
	return OpenWithKey(dir, m)
}

// OpenWithKey opens the data directory at dir with a master key already loaded.
func OpenWithKey(dir string, m *keys.MasterKey) (*DataDir, error) {
	fail := func(err error) (*DataDir, error) { return nil, &Error{Op: "open", Path: dir, Err: err} }
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fail(err)
	}
	b, err := os.ReadFile(filepath.Join(abs, FormatFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fail(fmt.Errorf("%w: %s is missing; create one with insitu init", ErrNotDataDir, FormatFile))
	}
	if err != nil {
		return fail(err)
	}
	f, err := parseFormat(b, m)
	if err != nil {
		return fail(err)
	}
	return &DataDir{path: abs, key: m, created: f.Created}, nil
}

// parseFormat reads the content of FormatFile and checks the key against it.
func parseFormat(b []byte, m *keys.MasterKey) (*format, error) {
	var f format
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotDataDir, FormatFile, err)
	}
	if f.Format != FormatName {
		return nil, fmt.Errorf("%w: %s has format %q", ErrNotDataDir, FormatFile, f.Format)
	}
	if f.Version != FormatVersion {
		return nil, fmt.Errorf("%w %d (this insitu reads version %d); use a matching insitu release", ErrVersion, f.Version, FormatVersion)
	}
	want, err := base64.StdEncoding.DecodeString(f.KeyCheck)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: key_check: %v", ErrNotDataDir, FormatFile, err)
	}
	if !hmac.Equal(want, m.CheckValue()) {
		return nil, fmt.Errorf("%w: the directory wants key %s, the key given is %s; pass its --key-file or set %s",
			ErrWrongKey, f.KeyID, m.KeyID(), keys.EnvVar)
	}
	return &f, nil
}

// Path returns the data directory's absolute path.
func (d *DataDir) Path() string { return d.path }

// Key returns the master key. Derive purpose keys from it; do not use it directly.
func (d *DataDir) Key() *keys.MasterKey { return d.key }

// Created returns when the data directory was initialised.
func (d *DataDir) Created() time.Time { return d.created }

// Sub returns the path of a named sub-folder of the data directory (e.g. "datasets"), creating it
// with mode 0700 if needed. name must be a single path element.
func (d *DataDir) Sub(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("data directory sub-folder %q: not a single path element", name)
	}
	p := filepath.Join(d.path, name)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("data directory sub-folder: %w", err)
	} else if err == nil {
		if err := syncDir(d.path); err != nil {
			return "", fmt.Errorf("data directory sub-folder: %w", err)
		}
	}
	return p, nil
}
