package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"insitu/enclave/datadir"
)

// Storage keeps dataset versions. A version is written into a Stage and appears only when the stage
// is committed, whole; a stage that is aborted or abandoned (the process died) never shows.
type Storage interface {
	// Datasets returns the names of the datasets that have at least one folder, sorted.
	Datasets(ctx context.Context) ([]string, error)
	// Versions returns the committed versions of a dataset, ascending; none if it does not exist.
	Versions(ctx context.Context, dataset string) ([]int, error)
	// Open opens a file of a committed version for reading.
	Open(ctx context.Context, dataset string, version int, file string) (io.ReadCloser, error)
	// Lock takes the dataset's exclusive lock, waiting until it is free or ctx ends. Stage must be
	// called with it held.
	Lock(ctx context.Context, dataset string) (unlock func() error, err error)
	// Stage starts writing a new version of a dataset, first removing the stages that earlier
	// writers abandoned.
	Stage(ctx context.Context, dataset string) (Stage, error)
}

// Stage is a version being written.
type Stage interface {
	// Create creates a file in the stage. Closing it flushes it to stable storage.
	Create(ctx context.Context, file string) (io.WriteCloser, error)
	// Commit makes the stage the given version atomically; it fails if that version exists.
	Commit(ctx context.Context, version int) error
	// Abort removes the stage. It is safe to call after Commit, when it does nothing.
	Abort() error
}

// DirStorage is Storage in a folder: one sub-folder per dataset, holding a lock file, committed
// versions "v1", "v2", … and stages ".stage-*".
type DirStorage struct {
	root string
	// lockPoll is how often Lock retries a held lock.
	lockPoll time.Duration
}

var _ Storage = (*DirStorage)(nil)

const stagePrefix = ".stage-"

// NewDirStorage returns the storage rooted at dir, creating dir (mode 0700) if needed.
func NewDirStorage(dir string) (*DirStorage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dataset storage: %w", err)
	}
	return &DirStorage{root: dir, lockPoll: 20 * time.Millisecond}, nil
}

// Datasets implements Storage.
func (s *DirStorage) Datasets(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && ValidName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Versions implements Storage. Stages and other entries are ignored.
func (s *DirStorage) Versions(ctx context.Context, dataset string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, dataset))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list versions of dataset %s: %w", dataset, err)
	}
	var vs []int
	for _, e := range ents {
		if v, ok := parseVersionDir(e.Name()); ok && e.IsDir() {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs, nil
}

func versionDir(v int) string { return "v" + strconv.Itoa(v) }

func parseVersionDir(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "v")
	if !ok || rest == "" || rest[0] == '0' {
		return 0, false
	}
	v, err := strconv.Atoi(rest)
	return v, err == nil && v > 0
}

// Open implements Storage.
func (s *DirStorage) Open(ctx context.Context, dataset string, version int, file string) (io.ReadCloser, error) {
	if !validFileName(file) {
		return nil, fmt.Errorf("open %q: not a dataset file name", file)
	}
	return os.Open(filepath.Join(s.root, dataset, versionDir(version), file))
}

// Lock implements Storage with an flock on the dataset's lock file, which the kernel releases when
// the holder dies.
func (s *DirStorage) Lock(ctx context.Context, dataset string) (func() error, error) {
	dir := filepath.Join(s.root, dataset)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock dataset %s: %w", dataset, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock dataset %s: %w", dataset, err)
	}
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock dataset %s: %w", dataset, err)
		}
		if ok {
			return func() error { unlock(f); return f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock dataset %s: another ingest holds it: %w", dataset, ctx.Err())
		case <-time.After(s.lockPoll):
		}
	}
}

// Stage implements Storage.
func (s *DirStorage) Stage(ctx context.Context, dataset string) (Stage, error) {
	dir := filepath.Join(s.root, dataset)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("stage dataset %s: %w", dataset, err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), stagePrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("stage dataset %s: remove abandoned stage: %w", dataset, err)
			}
		}
	}
	tmp, err := os.MkdirTemp(dir, stagePrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("stage dataset %s: %w", dataset, err)
	}
	return &dirStage{dir: dir, tmp: tmp}, nil
}

type dirStage struct {
	dir, tmp  string
	committed bool
}

func (st *dirStage) Create(ctx context.Context, file string) (io.WriteCloser, error) {
	if !validFileName(file) {
		return nil, fmt.Errorf("create %q: not a dataset file name", file)
	}
	f, err := os.OpenFile(filepath.Join(st.tmp, file), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return syncCloser{f}, nil
}

// syncCloser fsyncs a file before closing it.
type syncCloser struct{ *os.File }

func (f syncCloser) Close() error {
	err := f.File.Sync()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

func (st *dirStage) Commit(ctx context.Context, version int) error {
	if st.committed {
		return errors.New("stage committed twice")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := datadir.SyncDir(st.tmp); err != nil {
		return fmt.Errorf("commit version %d: %w", version, err)
	}
	final := filepath.Join(st.dir, versionDir(version))
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("commit version %d: %s exists", version, final)
	}
	if err := os.Rename(st.tmp, final); err != nil {
		return fmt.Errorf("commit version %d: %w", version, err)
	}
	st.committed = true
	if err := datadir.SyncDir(st.dir); err != nil {
		return fmt.Errorf("commit version %d: %w", version, err)
	}
	return nil
}

func (st *dirStage) Abort() error {
	if st.committed {
		return nil
	}
	return os.RemoveAll(st.tmp)
}

// validFileName accepts the names a version's files have: lower-case letters, digits, '.', '_' and
// '-', not starting with '.'.
func validFileName(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
