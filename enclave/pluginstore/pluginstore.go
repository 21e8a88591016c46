// Package pluginstore keeps plugin binaries in the enclave's data directory, addressed by their
// SHA-256 digest, and hands out the approved bytes as a sealed memfd for the sandbox to execute.
//
// Call OpenIn (or Open) first; Put stores an upload and returns its digest; OpenSealed(digest)
// returns a memfd that can no longer change and whose content was hashed after sealing, so the
// bytes checked are the bytes run even if the stored file is swapped after upload.
package pluginstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"

	"insitu/enclave/datadir"
)

// SubDir is the data directory's sub-folder holding the store.
const SubDir = "plugins"

// DefaultMaxSize bounds an uploaded binary when Options.MaxSize is zero.
const DefaultMaxSize = 256 << 20

var (
	// ErrNotFound is wrapped when no plugin has the digest.
	ErrNotFound = errors.New("plugin not found")
	// ErrTooLarge is wrapped when an upload exceeds the size limit.
	ErrTooLarge = errors.New("plugin binary too large")
	// ErrNotExecutable is wrapped when an upload is not a static ELF executable for this machine.
	ErrNotExecutable = errors.New("not a static ELF executable for this machine")
	// ErrDigestMismatch is wrapped by OpenSealed when the sealed bytes do not hash to the digest
	// asked for: the stored file was changed after upload.
	ErrDigestMismatch = errors.New("plugin digest mismatch")
	// ErrBadDigest is wrapped by ParseDigest.
	ErrBadDigest = errors.New("malformed plugin digest")
	// ErrBadMeta is wrapped when the uploader or name given to Put is unusable.
	ErrBadMeta = errors.New("bad plugin metadata")
)

// Error is a store failure: the operation, the digest concerned (if known) and the cause.
type Error struct {
	Op     string // "put", "get", "list", "remove", "open"
	Digest string // "sha256:…" or ""
	Err    error
}

func (e *Error) Error() string {
	if e.Digest == "" {
		return fmt.Sprintf("plugin store %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("plugin store %s %s: %v", e.Op, e.Digest, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Digest is the SHA-256 of a plugin binary.
type Digest [sha256.Size]byte

// String returns "sha256:" and the lower-case hex digest.
func (d Digest) String() string { return "sha256:" + d.Hex() }

// Hex returns the lower-case hex digest.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes the digest as String does.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses what MarshalText wrote.
func (d *Digest) UnmarshalText(b []byte) error {
	p, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// ParseDigest parses "sha256:<64 hex digits>" or the 64 hex digits alone (lower or upper case).
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h := strings.TrimPrefix(s, "sha256:")
	if len(h) != 2*sha256.Size {
		return d, fmt.Errorf("%w %q: want sha256: and 64 hex digits", ErrBadDigest, clip(s))
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("%w %q: want sha256: and 64 hex digits", ErrBadDigest, clip(s))
	}
	return d, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Meta is what the caller says about an upload.
type Meta struct {
	// Uploader names who uploaded the binary (the bank's party name).
	Uploader string
	// Name is a human-readable name, e.g. the file name uploaded; optional.
	Name string
}

// Info describes a stored plugin.
type Info struct {
	Digest   Digest    `json:"digest"`
	Size     int64     `json:"size"`
	Uploaded time.Time `json:"uploaded"`
	Uploader string    `json:"uploader"`
	Name     string    `json:"name,omitempty"`
}

// Options configures a Store.
type Options struct {
	// MaxSize bounds an uploaded binary in bytes; DefaultMaxSize when zero.
	MaxSize int64
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Store is a content-addressed store of plugin binaries. It is safe for concurrent use.
type Store struct {
	dir     string
	maxSize int64
	now     func() time.Time
}

// OpenIn opens the store in the data directory's SubDir, creating it if needed.
func OpenIn(d *datadir.DataDir, o Options) (*Store, error) {
	dir, err := d.Sub(SubDir)
	if err != nil {
		return nil, &Error{Op: "open", Err: err}
	}
	return Open(dir, o)
}

// Open opens the store in dir, creating dir (mode 0700) if needed. It removes upload temporaries
// older than an hour, left by a crash.
func Open(dir string, o Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &Error{Op: "open", Err: err}
	}
	s := &Store{dir: dir, maxSize: o.MaxSize, now: o.Now}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, &Error{Op: "open", Err: err}
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if fi, err := e.Info(); err == nil && s.now().Sub(fi.ModTime()) > time.Hour {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return s, nil
}

// Dir returns the store's folder.
func (s *Store) Dir() string { return s.dir }

const tmpPrefix = ".upload-"

func (s *Store) binPath(d Digest) string  { return filepath.Join(s.dir, d.Hex()) }
func (s *Store) metaPath(d Digest) string { return filepath.Join(s.dir, d.Hex()+".json") }

func checkMeta(m Meta) error {
	if m.Uploader == "" {
		return fmt.Errorf("%w: no uploader named", ErrBadMeta)
	}
	for what, v := range map[string]string{"uploader": m.Uploader, "name": m.Name} {
		if len(v) > 256 {
			return fmt.Errorf("%w: %s longer than 256 bytes", ErrBadMeta, what)
		}
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return fmt.Errorf("%w: %s contains control characters", ErrBadMeta, what)
		}
	}
	return nil
}

// Put stores the binary read from r and returns its Info. Uploading bytes already stored keeps
// the first upload's Info and reports existed. The binary must be at most the store's size limit
// and a static ELF executable for this machine's architecture. The write is atomic.
func (s *Store) Put(ctx context.Context, r io.Reader, m Meta) (info Info, existed bool, err error) {
	fail := func(d string, err error) (Info, bool, error) {
		return Info{}, false, &Error{Op: "put", Digest: d, Err: err}
	}
	if err := checkMeta(m); err != nil {
		return fail("", err)
	}
	tmp, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return fail("", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxReader{ctx, r}, s.maxSize+1))
	if err != nil {
		return fail("", fmt.Errorf("read upload: %w", err))
	}
	if n > s.maxSize {
		return fail("", fmt.Errorf("%w: more than %d bytes; the limit is the store's MaxSize", ErrTooLarge, s.maxSize))
	}
	if err := CheckELF(tmp); err != nil {
		return fail("", err)
	}
	var d Digest
	h.Sum(d[:0])
	if old, err := s.Get(ctx, d); err == nil {
		if _, err := os.Stat(s.binPath(d)); err == nil {
			return old, true, nil
		}
	}
	if err := tmp.Chmod(0o400); err != nil {
		return fail(d.String(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(d.String(), err)
	}
	if err := tmp.Close(); err != nil {
		return fail(d.String(), err)
	}
	if err := os.Rename(tmp.Name(), s.binPath(d)); err != nil {
		return fail(d.String(), err)
	}
	tmp = nil
	info = Info{Digest: d, Size: n, Uploaded: s.now().UTC().Truncate(time.Second), Uploader: m.Uploader, Name: m.Name}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fail(d.String(), err)
	}
	// The metadata is written last: a binary without metadata is not listed, and a later Put of
	// the same bytes completes it.
	if err := datadir.WriteFileAtomic(s.metaPath(d), append(b, '\n'), 0o600); err != nil {
		return fail(d.String(), err)
	}
	return info, false, nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get returns the Info of a stored plugin, or an error wrapping ErrNotFound.
func (s *Store) Get(_ context.Context, d Digest) (Info, error) {
	b, err := os.ReadFile(s.metaPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, &Error{Op: "get", Digest: d.String(), Err: fmt.Errorf("%w; upload it with insitu plugin upload", ErrNotFound)}
	}
	if err != nil {
		return Info{}, &Error{Op: "get", Digest: d.String(), Err: err}
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, &Error{Op: "get", Digest: d.String(), Err: fmt.Errorf("metadata %s: %w", s.metaPath(d), err)}
	}
	if info.Digest != d {
		return Info{}, &Error{Op: "get", Digest: d.String(), Err: fmt.Errorf("metadata %s names digest %s", s.metaPath(d), info.Digest)}
	}
	return info, nil
}

// List returns every stored plugin, oldest upload first (then by digest).
func (s *Store) List(ctx context.Context) ([]Info, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, &Error{Op: "list", Err: err}
	}
	var out []Info
	for _, e := range ents {
		hexName, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		d, err := ParseDigest(hexName)
		if err != nil {
			continue
		}
		info, err := s.Get(ctx, d)
		if err != nil {
			return nil, &Error{Op: "list", Err: err}
		}
		if _, err := os.Stat(s.binPath(d)); err != nil {
			continue
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Uploaded.Equal(out[j].Uploaded) {
			return out[i].Uploaded.Before(out[j].Uploaded)
		}
		return out[i].Digest.Hex() < out[j].Digest.Hex()
	})
	return out, nil
}

// Remove deletes a stored plugin (metadata first, so a crash leaves no listed entry without bytes).
func (s *Store) Remove(ctx context.Context, d Digest) error {
	if _, err := s.Get(ctx, d); err != nil {
		return &Error{Op: "remove", Digest: d.String(), Err: errors.Unwrap(err)}
	}
	if err := os.Remove(s.metaPath(d)); err != nil {
		return &Error{Op: "remove", Digest: d.String(), Err: err}
	}
	if err := os.Remove(s.binPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &Error{Op: "remove", Digest: d.String(), Err: err}
	}
	return datadir.SyncDir(s.dir)
}

// OpenSealed copies the stored binary with digest d into a sealed memfd, hashes the sealed
// content and returns the memfd positioned at offset 0, or an error wrapping ErrDigestMismatch
// when the content is not the digest's (the stored file was changed after upload). The memfd is
// close-on-exec in this process; pass it to the sandbox as Spec.Binary. The caller closes it.
func (s *Store) OpenSealed(ctx context.Context, d Digest) (*os.File, error) {
	if _, err := s.Get(ctx, d); err != nil {
		return nil, &Error{Op: "open", Digest: d.String(), Err: errors.Unwrap(err)}
	}
	f, err := os.Open(s.binPath(d))
	if err != nil {
		return nil, &Error{Op: "open", Digest: d.String(), Err: err}
	}
	defer f.Close()
	mfd, got, err := SealReader(ctx, f, "insitu-plugin-"+d.Hex()[:12], s.maxSize)
	if err != nil {
		return nil, &Error{Op: "open", Digest: d.String(), Err: err}
	}
	if got != d {
		mfd.Close()
		return nil, &Error{Op: "open", Digest: d.String(), Err: fmt.Errorf("%w: the stored bytes hash to %s; the file was changed after upload, upload the plugin again and have it approved", ErrDigestMismatch, got)}
	}
	return mfd, nil
}
