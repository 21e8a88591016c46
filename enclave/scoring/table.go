package scoring

import (
	"context"
	"fmt"
	"sync"
	"time"

	"insitu/enclave/cohort"
	"insitu/enclave/dataset"
	"insitu/enclave/registry"
	"insitu/modeling/features"
)

// table holds a model's transformed features for every subject of one dataset version.
type table struct {
	dataset     string
	version     int
	subjectKind string
	p           int
	rows        map[string]int32 // subject → row; -1 when the subject's features cannot be computed
	x           []float64        // row-major, len(rows that are ≥ 0)·p
}

// row returns a subject's features, and whether the version holds the subject and its features
// could be computed.
func (t *table) row(subject string) (x []float64, held, ok bool) {
	i, held := t.rows[subject]
	if !held || i < 0 {
		return nil, held, false
	}
	return t.x[int(i)*t.p : int(i+1)*t.p], true, true
}

// tableEntry caches one model's table and when the latest version was last looked up.
type tableEntry struct {
	mu      sync.Mutex
	t       *table
	err     *Error // the refusal for version, when its table cannot be built
	version int
	checked time.Time
}

// features returns model m's table for the latest version of its dataset, building it when the
// version changed. A refusal says the latest version lacks one of the model's inputs.
func (s *Service) features(ctx context.Context, m *registry.Model) (*table, *Error, error) {
	s.mu.Lock()
	e, ok := s.tables[m.ID]
	if !ok {
		e = &tableEntry{}
		s.tables[m.ID] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if (e.t != nil || e.err != nil) && now.Sub(e.checked) < s.o.VersionCheck {
		return e.t, e.err, nil
	}
	dm, err := s.cfg.Datasets.Manifest(ctx, m.Dataset, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("scoring: model %s: dataset %s: %w", m.ID, m.Dataset, err)
	}
	e.checked = now
	if (e.t != nil || e.err != nil) && e.version == dm.Version {
		return e.t, e.err, nil
	}
	t, rerr, err := buildTable(ctx, s.cfg.Datasets, dm, m.Inputs, m.Transforms)
	if err != nil {
		return nil, nil, fmt.Errorf("scoring: model %s: %w", m.ID, err)
	}
	e.t, e.err, e.version = t, rerr, dm.Version
	return t, rerr, nil
}

// buildTable reads the inputs of every subject of version dm and transforms them.
func buildTable(ctx context.Context, ds Datasets, dm *dataset.Manifest, inputs []string, f *features.Fitted) (*table, *Error, error) {
	cols := make([]dataset.Column, len(inputs))
	for i, name := range inputs {
		c, ok := dm.Column(name)
		if !ok {
			return nil, refuse(CodeDataset, "the current version v%d of dataset %s has no column %s, which the model reads; the bank can train a new model on it",
				dm.Version, dm.Name, name), nil
		}
		cols[i] = c
	}
	sc, err := ds.Scan(ctx, dm.Name, dm.Version, dataset.ScanOptions{Columns: inputs})
	if err != nil {
		return nil, nil, err
	}
	all, err := cohort.CollectAll(ctx, sc, cols)
	sc.Close()
	if err != nil {
		return nil, nil, err
	}
	t := &table{dataset: dm.Name, version: dm.Version, subjectKind: dm.SubjectKind, p: len(f.Names()),
		rows: make(map[string]int32, len(all.Subjects))}
	x, _, err := f.Transform(all.Columns)
	if err == nil {
		t.x = x.RawMatrix().Data
		for i, s := range all.Subjects {
			t.rows[s] = int32(i)
		}
		return t, nil, nil
	}
	// Some row cannot be transformed (a missing value without an impute step, a category the
	// model refuses): transform row by row and mark those.
	n := int32(0)
	for i, s := range all.Subjects {
		c, _ := all.Rows([]int{i})
		x, _, err := f.Transform(c)
		if err != nil {
			t.rows[s] = -1
			continue
		}
		t.x = append(t.x, x.RawRowView(0)...)
		t.rows[s] = n
		n++
	}
	return t, nil, nil
}
