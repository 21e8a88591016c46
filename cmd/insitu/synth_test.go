package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"insitu/connectors"
	"insitu/connectors/catalog"
)

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// hashTree returns the SHA-256 of every file under dir, keyed by slash path.
func hashTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSynthDeterministic(t *testing.T) {
	tmp := t.TempDir()
	for _, run := range []struct{ seed, out string }{{"1", "A"}, {"1", "B"}, {"2", "C"}} {
		r := mustRun(t, tmp, nil, "synth", "--enterprises", "2000", "--seed", run.seed, "--out", run.out)
		if !strings.Contains(r.stdout, "2000 enterprises (seed "+run.seed+")") {
			t.Errorf("synth --seed %s printed:\n%s", run.seed, r.stdout)
		}
	}
	a, b, c := hashTree(t, filepath.Join(tmp, "A")), hashTree(t, filepath.Join(tmp, "B")), hashTree(t, filepath.Join(tmp, "C"))
	if len(a) < 20+20+4 {
		t.Fatalf("synth wrote %d files, want 20 sources, 20 mappings, dataset.yaml, labels, authorizations and manifest", len(a))
	}
	if !mapsEqual(a, b) {
		for p := range a {
			if a[p] != b[p] {
				t.Errorf("seed 1 twice: %s differs (%s vs %s)", p, a[p], b[p])
			}
		}
		t.Fatal("the same seed gave different files")
	}
	differ := 0
	for p := range a {
		if strings.HasPrefix(p, "sources/") || p == "labels.csv" {
			if c[p] == "" {
				t.Errorf("seed 2 lacks %s", p)
			} else if c[p] != a[p] {
				differ++
			}
		}
	}
	if differ != 21 {
		t.Errorf("seed 2 differs from seed 1 in %d of the 20 sources and labels, want all 21", differ)
	}

	// manifest.json lists every other file with its SHA-256.
	var man struct {
		Categories []int `json:"categories"`
		Files      []struct {
			Path   string `json:"path"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	readJSON(t, filepath.Join(tmp, "A", "manifest.json"), &man)
	if len(man.Files) != len(a)-1 {
		t.Errorf("manifest lists %d files, the folder has %d besides it", len(man.Files), len(a)-1)
	}
	for _, f := range man.Files {
		if a[f.Path] != f.SHA256 {
			t.Errorf("manifest: %s sha256 %s, file has %s", f.Path, f.SHA256, a[f.Path])
		}
	}

	// The data (not only the mappings) cover all 17 categories: every category has a mapped column
	// with values in some source.
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(tmp, "A", "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Class != connectors.ClassSynthetic || len(mappings) != 20 {
		t.Fatalf("dataset.yaml: class %q with %d mappings, want synthetic with 20", spec.Class, len(mappings))
	}
	covered := map[int]bool{}
	cat := catalog.Default()
	for _, mp := range mappings {
		for item, n := range nonNullPerItem(t, mp) {
			if n == 0 {
				continue
			}
			it, err := cat.Item(item)
			if err != nil {
				t.Fatalf("source %s: %v", mp.Source, err)
			}
			covered[it.Category.No] = true
		}
	}
	var got []int
	for no := range covered {
		got = append(got, no)
	}
	slices.Sort(got)
	if len(got) != 17 || got[0] != 1 || got[16] != 17 {
		t.Errorf("categories with values: %v, want 1-17", got)
	}
	if !slices.Equal(man.Categories, got) {
		t.Errorf("manifest categories %v, data cover %v", man.Categories, got)
	}
}

// nonNullPerItem reads a source through its mapping and counts the non-null values of each catalog
// item's columns.
func nonNullPerItem(t *testing.T, mp *connectors.Mapping) map[string]int {
	t.Helper()
	ctx := context.Background()
	r, err := connectors.Open(ctx, mp, connectors.Options{})
	if err != nil {
		t.Fatalf("source %s: %v", mp.Source, err)
	}
	defer r.Close()
	out := map[string]int{}
	for {
		rec, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("source %s: %v", mp.Source, err)
		}
		for i, f := range rec.Schema().Fields() {
			item, ok := f.Metadata.GetValue("insitu.item")
			if !ok || item == "custom" {
				continue
			}
			col := rec.Column(i)
			out[item] += col.Len() - col.NullN()
		}
		rec.Release()
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
