package dataset

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"insitu/enclave/encfile"
)

// tamperCase damages a committed v1 and names what Verify must report.
type tamperCase struct {
	name   string
	damage func(t *testing.T, vdir string)
	want   []error // every one must be wrapped by the error
	what   string  // the failed check's name starts with this
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x20
	write(t, path, string(b))
}

func TestVerifyDetects(t *testing.T) {
	cases := []tamperCase{
		{"block tampered", func(t *testing.T, v string) { flipByte(t, filepath.Join(v, partFile("tax")), 300) },
			[]error{ErrVerify, encfile.ErrCorrupt}, "part tax"},
		{"last tag tampered", func(t *testing.T, v string) { flipByte(t, filepath.Join(v, partFile("court")), -1) },
			[]error{ErrVerify, encfile.ErrCorrupt}, "part court"},
		{"wrapped key tampered", func(t *testing.T, v string) { flipByte(t, filepath.Join(v, partFile("tax")), 100) },
			[]error{ErrVerify, encfile.ErrKey}, "part tax: open"},
		{"part truncated", func(t *testing.T, v string) {
			p := filepath.Join(v, partFile("tax"))
			st, _ := os.Stat(p)
			if err := os.Truncate(p, st.Size()-40); err != nil {
				t.Fatal(err)
			}
		}, []error{ErrVerify, encfile.ErrCorrupt}, "part tax"},
		{"part cut to its header", func(t *testing.T, v string) {
			p := filepath.Join(v, partFile("tax"))
			if err := os.Truncate(p, int64(len(encfile.Magic)+4+16+7+2+len(fileIdentity("credit", 1, partFile("tax")))+12+48)); err != nil {
				t.Fatal(err)
			}
		}, []error{ErrVerify, encfile.ErrTruncated}, "part tax"},
		{"parts swapped", func(t *testing.T, v string) {
			a, b := filepath.Join(v, partFile("tax")), filepath.Join(v, partFile("court"))
			os.Rename(a, a+".x")
			os.Rename(b, a)
			os.Rename(a+".x", b)
		}, []error{ErrVerify, encfile.ErrWrongFile}, "part tax: open"},
		{"part missing", func(t *testing.T, v string) { os.Remove(filepath.Join(v, partFile("court"))) },
			[]error{ErrVerify, ErrCorrupt}, "part court: open"},
		{"quality report tampered", func(t *testing.T, v string) { flipByte(t, filepath.Join(v, qualityFile), -5) },
			[]error{ErrVerify, encfile.ErrCorrupt}, "quality report"},
		{"manifest altered", func(t *testing.T, v string) {
			p := filepath.Join(v, manifestFile)
			b, _ := os.ReadFile(p)
			write(t, p, strings.Replace(string(b), `"rows": 100`, `"rows": 101`, 1))
		}, []error{ErrVerify, ErrTampered}, "manifest hmac"},
		{"manifest hmac missing", func(t *testing.T, v string) { os.Remove(filepath.Join(v, manifestMACFile)) },
			[]error{ErrVerify, ErrTampered}, "manifest hmac"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, root := newTestStore(t)
			f := newFixture(t, 100, 50, 0)
			ingest(t, s, f, IngestOptions{})
			tc.damage(t, filepath.Join(root, "credit", "v1"))
			res, err := s.Verify(context.Background(), "credit", 1)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Fatalf("verify error %v does not wrap %v", err, w)
				}
			}
			if res == nil || res.OK || len(res.Failed()) == 0 || !strings.HasPrefix(res.Failed()[0].What, tc.what) {
				t.Fatalf("verify result %+v, want first failure %q", res, tc.what)
			}
			if !strings.Contains(err.Error(), "credit v1") {
				t.Fatalf("error %q does not name the dataset version", err)
			}
			// Scan refuses the damaged version too (it checks what it reads).
			if tc.what != "quality report" {
				if sc, err := s.Scan(context.Background(), "credit", 1, ScanOptions{}); err == nil {
					sc.Close()
					t.Fatal("Scan accepted a damaged version")
				}
			}
		})
	}
}

func TestWrongMasterKey(t *testing.T) {
	s, root := newTestStore(t)
	f := newFixture(t, 30, 10, 0)
	ingest(t, s, f, IngestOptions{})
	st, err := NewDirStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	other := New(st, testMaster(2))
	_, err = other.Verify(context.Background(), "credit", 1)
	if !errors.Is(err, ErrVerify) || !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("verify with another master key: %v", err)
	}
	if _, _, err := other.Show(context.Background(), "credit", 1); !errors.Is(err, ErrTampered) {
		t.Fatalf("show with another master key: %v", err)
	}
	list, err := other.List(context.Background())
	if err != nil || len(list) != 1 || !strings.Contains(list[0].Problem, "master key") {
		t.Fatalf("list with another master key: %+v %v", list, err)
	}
	// Even with the manifest's check bypassed, the parts do not open under another key.
	m, err := s.Manifest(context.Background(), "credit", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.openPart(context.Background(), m, m.Parts[0]); !errors.Is(err, encfile.ErrKey) {
		t.Fatalf("part under another key: %v", err)
	}
}

// A version folder copied under another version number fails: the manifest's HMAC binds the number.
func TestVersionMoved(t *testing.T) {
	s, root := newTestStore(t)
	f := newFixture(t, 30, 10, 0)
	ingest(t, s, f, IngestOptions{})
	if err := os.Rename(filepath.Join(root, "credit", "v1"), filepath.Join(root, "credit", "v7")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(context.Background(), "credit", 7); !errors.Is(err, ErrTampered) {
		t.Fatalf("moved version: %v", err)
	}
}

// faultStorage wraps a Storage and fails on purpose.
type faultStorage struct {
	Storage
	failWriteAfter int64 // fail a stage file's write once this many bytes were written to it; 0: never
	failFile       string
	failCommit     bool
}

type faultStage struct {
	Stage
	fs *faultStorage
}

type faultFile struct {
	io.WriteCloser
	left int64
}

func (f *faultFile) Write(p []byte) (int, error) {
	if int64(len(p)) > f.left {
		n, _ := f.WriteCloser.Write(p[:f.left])
		f.left = 0
		return n, errors.New("injected: no space left on device")
	}
	f.left -= int64(len(p))
	return f.WriteCloser.Write(p)
}

func (s *faultStorage) Stage(ctx context.Context, dataset string) (Stage, error) {
	st, err := s.Storage.Stage(ctx, dataset)
	if err != nil {
		return nil, err
	}
	return &faultStage{Stage: st, fs: s}, nil
}

func (st *faultStage) Create(ctx context.Context, file string) (io.WriteCloser, error) {
	w, err := st.Stage.Create(ctx, file)
	if err != nil || st.fs.failWriteAfter == 0 || file != st.fs.failFile {
		return w, err
	}
	return &faultFile{WriteCloser: w, left: st.fs.failWriteAfter}, nil
}

func (st *faultStage) Commit(ctx context.Context, version int) error {
	if st.fs.failCommit {
		return errors.New("injected: rename failed")
	}
	return st.Stage.Commit(ctx, version)
}

func TestFaultsLeaveNoVersion(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault faultStorage
	}{
		{"part write fails", faultStorage{failWriteAfter: 500, failFile: partFile("court")}},
		{"manifest write fails", faultStorage{failWriteAfter: 10, failFile: manifestFile}},
		{"quality write fails", faultStorage{failWriteAfter: 10, failFile: qualityFile}},
		{"commit fails", faultStorage{failCommit: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "datasets")
			ds, err := NewDirStorage(root)
			if err != nil {
				t.Fatal(err)
			}
			fs := tc.fault
			fs.Storage = ds
			s := New(&fs, testMaster(1))
			f := newFixture(t, 200, 100, 0)
			spec, maps := f.load(t)
			if _, _, err := s.Ingest(context.Background(), spec, maps, IngestOptions{}); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("ingest error %v, want the injected fault", err)
			}
			ents, _ := os.ReadDir(filepath.Join(root, "credit"))
			for _, e := range ents {
				if e.Name() != ".lock" {
					t.Fatalf("a failed ingest left %s", e.Name())
				}
			}
			fs.failWriteAfter, fs.failCommit = 0, false
			m, _, err := s.Ingest(context.Background(), spec, maps, IngestOptions{})
			if err != nil || m.Version != 1 {
				t.Fatalf("ingest after the fault: v%d %v", m.Version, err)
			}
		})
	}
}

func TestCancelledIngest(t *testing.T) {
	s, root := newTestStore(t)
	f := newFixture(t, 3000, 10, 0)
	spec, maps := f.load(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, _, err := s.Ingest(ctx, spec, maps, IngestOptions{Progress: func(Progress) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ingest: %v", err)
	}
	if vs, _ := s.storage.Versions(context.Background(), "credit"); len(vs) != 0 {
		t.Fatalf("cancelled ingest left versions %v", vs)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "credit"))
	if len(ents) != 1 {
		t.Fatalf("cancelled ingest left %d entries", len(ents))
	}
}
