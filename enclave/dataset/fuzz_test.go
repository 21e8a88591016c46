package dataset

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// memStorage is a Storage in memory holding committed files only; enough to feed loadManifest.
type memStorage struct {
	files map[string][]byte // "<dataset>/v<N>/<file>"
}

var _ Storage = (*memStorage)(nil)

func (s *memStorage) Datasets(ctx context.Context) ([]string, error) { return []string{"credit"}, nil }
func (s *memStorage) Versions(ctx context.Context, dataset string) ([]int, error) {
	return []int{1}, nil
}
func (s *memStorage) Open(ctx context.Context, dataset string, version int, file string) (io.ReadCloser, error) {
	b, ok := s.files[dataset+"/"+versionDir(version)+"/"+file]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
func (s *memStorage) Lock(ctx context.Context, dataset string) (func() error, error) {
	return func() error { return nil }, nil
}
func (s *memStorage) Stage(ctx context.Context, dataset string) (Stage, error) {
	return nil, errors.New("memStorage is read-only")
}

// FuzzManifest feeds authenticated but arbitrary manifests to the manifest loader: it must reject
// what is malformed with ErrCorrupt and never panic. Seeds are real manifests.
func FuzzManifest(f *testing.F) {
	s, root := newTestStore(f)
	fx := newFixture(f, 20, 10, 0)
	ingest(f, s, fx, IngestOptions{})
	seed, err := os.ReadFile(filepath.Join(root, "credit", "v1", manifestFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(bytes.Replace(seed, []byte(`"version": 1`), []byte(`"version": 2`), 1))
	f.Add(bytes.Replace(seed, []byte(`part-tax.arrows.enc`), []byte(`../../x`), 1))
	f.Add([]byte(`{"format":"insitu-dataset","format_version":1,"name":"credit","version":1,"parts":[],"sources":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms := &memStorage{files: map[string][]byte{}}
		st := New(ms, testMaster(1))
		ms.files["credit/v1/"+manifestFile] = data
		ms.files["credit/v1/"+manifestMACFile] = []byte(hex.EncodeToString(manifestMAC(st.macKey, "credit", 1, data)))
		m, err := st.loadManifest(context.Background(), "credit", 1)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if m.Name != "credit" || m.Version != 1 || len(m.Parts) == 0 {
			t.Fatalf("accepted manifest %+v", m)
		}
		for _, p := range m.Parts {
			if !validFileName(p.File) {
				t.Fatalf("accepted part file name %q", p.File)
			}
		}
	})
}
