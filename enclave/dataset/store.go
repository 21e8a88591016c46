package dataset

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"time"

	"insitu/enclave/datadir"
	"insitu/enclave/keys"
)

var (
	// ErrNotFound is wrapped when a dataset or version does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidSpec is wrapped when an ingest is asked for something that cannot be a dataset.
	ErrInvalidSpec = errors.New("invalid dataset spec")
	// ErrTampered is wrapped when a manifest fails its HMAC check: wrong master key or altered.
	ErrTampered = errors.New("dataset manifest failed authentication")
	// ErrCorrupt is wrapped when a file of a version does not hold what the manifest says.
	ErrCorrupt = errors.New("dataset version corrupt")
	// ErrVerify is wrapped by Verify when at least one check failed.
	ErrVerify = errors.New("dataset verification failed")
)

// Error is a failure concerning one dataset (and version, when known).
type Error struct {
	Dataset string
	Version int // 0 when no version is concerned
	Op      string
	Err     error
}

func (e *Error) Error() string {
	if e.Version > 0 {
		return fmt.Sprintf("%s: dataset %s v%d: %v", e.Op, e.Dataset, e.Version, e.Err)
	}
	return fmt.Sprintf("%s: dataset %s: %v", e.Op, e.Dataset, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidName reports whether s can name a dataset or a source: 1 to 64 lower-case letters, digits,
// '_' and '-', starting with a letter or digit.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Store holds the datasets of a data directory.
type Store struct {
	storage Storage
	kek     []byte // wraps the data key of every encrypted file
	macKey  []byte // authenticates manifests
	now     func() time.Time
}

// DatasetsDir is the data directory's sub-folder that holds the datasets.
const DatasetsDir = "datasets"

// Open returns the store of the datasets in an open data directory.
func Open(d *datadir.DataDir) (*Store, error) {
	dir, err := d.Sub(DatasetsDir)
	if err != nil {
		return nil, err
	}
	st, err := NewDirStorage(dir)
	if err != nil {
		return nil, err
	}
	return New(st, d.Key()), nil
}

// New returns a store over any Storage, with keys derived from the master key.
func New(storage Storage, master *keys.MasterKey) *Store {
	return &Store{
		storage: storage,
		kek:     master.Derive(keys.PurposeDatasetKEK, 32),
		macKey:  master.Derive(keys.PurposeDatasetManifest, 32),
		now:     time.Now,
	}
}

// Entry is one version in List.
type Entry struct {
	Name     string    `json:"name"`
	Version  int       `json:"version"`
	Class    string    `json:"class,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	Subjects int64     `json:"subjects"`
	Columns  int       `json:"columns"` // after subject_id
	Sources  []string  `json:"sources,omitempty"`
	// Problem is set when the version's manifest could not be read or authenticated; the other
	// fields but Name and Version are then empty. Run Verify for details.
	Problem string `json:"problem,omitempty"`
}

// List returns every version of every dataset, by name and then version. A version whose manifest
// fails to load is listed with its Problem rather than failing the whole list.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	names, err := s.storage.Datasets(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []Entry
	for _, name := range names {
		vs, err := s.storage.Versions(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			e := Entry{Name: name, Version: v}
			m, err := s.loadManifest(ctx, name, v)
			if err != nil {
				e.Problem = err.Error()
			} else {
				e.Class, e.Created, e.Subjects = m.Class, m.Created, m.Subjects
				e.Columns = len(m.Columns) - 1
				for _, src := range m.Sources {
					e.Sources = append(e.Sources, src.Name)
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// resolve returns the version asked for: version itself, or the latest when version is 0.
func (s *Store) resolve(ctx context.Context, name string, version int) (int, error) {
	if !ValidName(name) {
		return 0, &Error{Dataset: name, Op: "find", Err: fmt.Errorf("%w: %q is not a dataset name", ErrNotFound, name)}
	}
	vs, err := s.storage.Versions(ctx, name)
	if err != nil {
		return 0, err
	}
	if len(vs) == 0 {
		return 0, &Error{Dataset: name, Op: "find", Err: fmt.Errorf("%w: no such dataset; insitu dataset list shows the datasets", ErrNotFound)}
	}
	if version == 0 {
		return vs[len(vs)-1], nil
	}
	if !slices.Contains(vs, version) {
		return 0, &Error{Dataset: name, Version: version, Op: "find",
			Err: fmt.Errorf("%w: no such version (latest is v%d)", ErrNotFound, vs[len(vs)-1])}
	}
	return version, nil
}

// Manifest returns the authenticated manifest of a version (the latest when version is 0).
func (s *Store) Manifest(ctx context.Context, name string, version int) (*Manifest, error) {
	v, err := s.resolve(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return s.loadManifest(ctx, name, v)
}

// Show returns the manifest of a version (the latest when version is 0) and its decrypted full
// quality report.
func (s *Store) Show(ctx context.Context, name string, version int) (*Manifest, *QualityReport, error) {
	m, err := s.Manifest(ctx, name, version)
	if err != nil {
		return nil, nil, err
	}
	q, err := s.readQuality(ctx, m)
	if err != nil {
		return m, nil, err
	}
	return m, q, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
