// Package keys holds the enclave's master key: the one secret from which every key that protects
// data at rest is derived. The master key is kept outside the enclave's data directory, in a key file
// or in the environment variable INSITU_MASTER_KEY, so that a copy of the data directory alone
// reveals nothing.
//
// Call Generate once (insitu init does), store the key with WriteFile or Encode, and later Load it
// from a Source. Derive a purpose key with MasterKey.Derive; never use the master key directly.
package keys

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// Size is the length of a master key in bytes.
const Size = 32

// EnvVar is the environment variable that holds the master key, base64-encoded, when no key file is
// used.
const EnvVar = "INSITU_MASTER_KEY"

// keyFilePrefix starts the only line of a key file, so that a key file is recognisable.
const keyFilePrefix = "insitu-master-key-v1:"

// Purposes of derived keys. Each names exactly one use; a new use gets a new purpose.
const (
	// PurposeKeyCheck derives the key of the data directory's key check value.
	PurposeKeyCheck = "datadir key check v1"
	// PurposeDatasetKEK derives the key that wraps the data key of every encrypted dataset file.
	PurposeDatasetKEK = "dataset file key wrapping v1"
	// PurposeDatasetManifest derives the key of the HMAC that protects dataset manifests.
	PurposeDatasetManifest = "dataset manifest hmac v1"
)

var (
	// ErrNoKey is returned by Load when the source names no key.
	ErrNoKey = errors.New("no master key given")
	// ErrMalformed is wrapped when a key file or variable does not hold a well-formed key.
	ErrMalformed = errors.New("malformed master key")
	// ErrExists is wrapped by WriteFile when the key file already exists.
	ErrExists = errors.New("key file already exists")
	// ErrPermissions is wrapped when a key file can be read or written by group or others.
	ErrPermissions = errors.New("key file permissions too open")
)

// MasterKey is a 32-byte secret. The zero value is not a key; use Generate or Parse.
type MasterKey struct {
	k [Size]byte
}

// Generate returns a new random master key.
func Generate() (*MasterKey, error) {
	var m MasterKey
	if _, err := rand.Read(m.k[:]); err != nil {
		return nil, fmt.Errorf("generate master key: %w", err)
	}
	return &m, nil
}

// FromBytes returns the master key with the given bytes. It panics if len(b) != Size (programmer
// error); use Parse for untrusted text.
func FromBytes(b []byte) *MasterKey {
	if len(b) != Size {
		panic(fmt.Sprintf("keys: master key of %d bytes, want %d", len(b), Size))
	}
	var m MasterKey
	copy(m.k[:], b)
	return &m
}

// Parse decodes a base64-encoded master key (standard or URL alphabet, padding optional), as held by
// INSITU_MASTER_KEY or printed by Encode. Surrounding white space is ignored.
func Parse(s string) (*MasterKey, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimRight(s, "=")
	var b []byte
	var err error
	if strings.ContainsAny(s, "-_") {
		b, err = base64.RawURLEncoding.DecodeString(s)
	} else {
		b, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: not base64 (%v)", ErrMalformed, err)
	}
	if len(b) != Size {
		return nil, fmt.Errorf("%w: %d bytes, want %d (generate one with insitu init)", ErrMalformed, len(b), Size)
	}
	return FromBytes(b), nil
}

// Encode returns the key in standard base64 with padding, the form INSITU_MASTER_KEY takes.
func (m *MasterKey) Encode() string { return base64.StdEncoding.EncodeToString(m.k[:]) }

// Equal reports whether two keys are the same, in constant time.
func (m *MasterKey) Equal(o *MasterKey) bool { return hmac.Equal(m.k[:], o.k[:]) }

// String hides the key, so that it never ends up in a log or error message by accident.
func (m *MasterKey) String() string { return "keys.MasterKey(redacted)" }

// GoString hides the key from %#v.
func (m *MasterKey) GoString() string { return m.String() }

// Derive returns a key of n bytes for one purpose: HKDF-SHA-256 of the master key with the info
// "insitu/" + purpose and no salt. Different purposes give independent keys. It panics if n is not
// between 1 and 255*32 (programmer error).
func (m *MasterKey) Derive(purpose string, n int) []byte {
	if purpose == "" {
		panic("keys: empty purpose")
	}
	k, err := hkdf.Key(sha256.New, m.k[:], nil, "insitu/"+purpose, n)
	if err != nil {
		panic(fmt.Sprintf("keys: derive %d bytes: %v", n, err))
	}
	return k
}

// CheckValue returns a value that identifies the key without revealing it: HMAC-SHA-256 of a fixed
// label under the key derived for PurposeKeyCheck. The data directory records it so that opening
// with the wrong key fails clearly.
func (m *MasterKey) CheckValue() []byte {
	mac := hmac.New(sha256.New, m.Derive(PurposeKeyCheck, 32))
	mac.Write([]byte("insitu master key check value"))
	return mac.Sum(nil)
}

// KeyID is a short, public name of the key: the first 8 bytes of CheckValue in hex. It lets a
// steward tell which key a data directory wants.
func (m *MasterKey) KeyID() string { return fmt.Sprintf("%x", m.CheckValue()[:8]) }

// WriteFile writes the key to a new file at path with mode 0600. It refuses to overwrite an existing
// file (ErrExists) and fsyncs the file and its folder.
func WriteFile(path string, m *MasterKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write key file %s: %w: choose another path or remove it if it is no longer needed", path, ErrExists)
		}
		return fmt.Errorf("write key file: %w", err)
	}
	_, err = f.WriteString(keyFilePrefix + m.Encode() + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := syncDir(dirOf(path)); err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return nil
}

// ReadFile reads a key file written by WriteFile. The file must not be readable or writable by group
// or others (ErrPermissions).
func ReadFile(path string) (*MasterKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("read key file %s: %w: it is a directory", path, ErrMalformed)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("read key file %s: %w (mode %04o): run chmod 600 %s", path, ErrPermissions, perm, path)
	}
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	text := strings.TrimSpace(string(buf[:n]))
	rest, ok := strings.CutPrefix(text, keyFilePrefix)
	if !ok {
		return nil, fmt.Errorf("read key file %s: %w: it does not start with %q", path, ErrMalformed, keyFilePrefix)
	}
	m, err := Parse(rest)
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	return m, nil
}

// Source says where to find the master key: the key file if File is set, else the environment
// variable EnvVar (read through LookupEnv, os.LookupEnv when nil).
type Source struct {
	File      string
	LookupEnv func(string) (string, bool)
}

// Load returns the master key named by src.
func Load(src Source) (*MasterKey, error) {
	if src.File != "" {
		return ReadFile(src.File)
	}
	lookup := src.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(EnvVar)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("%w: pass --key-file or set %s", ErrNoKey, EnvVar)
	}
	m, err := Parse(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVar, err)
	}
	return m, nil
}
