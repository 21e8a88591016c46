package psi

import (
	"context"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/connectors/ident"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
)

// DatasetSource is the enclave's Source: the subjects of a dataset version that hold a valid
// authorization for the bank and purpose (consent.Registry.Authorizing) at the time of the session.
type DatasetSource struct {
	Datasets *dataset.Store
	Consent  *consent.Registry
}

var _ Source = DatasetSource{}

// AuthorizedSubjects reads the subject identifiers of the dataset version and keeps those that
// authorize q.Bank for q.Purpose at q.At.
func (d DatasetSource) AuthorizedSubjects(ctx context.Context, q Query) (*Set, error) {
	m, err := d.Datasets.Manifest(ctx, q.Dataset, q.Version)
	if err != nil {
		return nil, err
	}
	kind, err := ident.ParseKind(m.SubjectKind)
	if err != nil {
		return nil, fmt.Errorf("dataset %s v%d: %w", m.Name, m.Version, err)
	}
	// Scan returns every column when none is named: name the first one to read less.
	var cols []string
	if len(m.Columns) > 1 {
		cols = []string{m.Columns[1].Name}
	}
	sc, err := d.Datasets.Scan(ctx, m.Name, m.Version, dataset.ScanOptions{Columns: cols})
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	var scanErr error
	subjects := func(yield func(string) bool) {
		for {
			rec, err := sc.Next(ctx)
			if err == io.EOF {
				return
			}
			if err != nil {
				scanErr = err
				return
			}
			col, ok := rec.Column(0).(*array.String)
			if !ok {
				rec.Release()
				scanErr = fmt.Errorf("dataset %s v%d: subject_id is not a string column", m.Name, m.Version)
				return
			}
			for i := range col.Len() {
				if !yield(strings.Clone(col.Value(i))) {
					rec.Release()
					return
				}
			}
			rec.Release()
		}
	}
	kept, err := d.Consent.Authorizing(ctx, consent.CohortQuery{IDType: kind, Grantee: q.Bank, Purpose: q.Purpose, At: q.At},
		iter.Seq[string](subjects))
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, fmt.Errorf("dataset %s v%d: %w", m.Name, m.Version, err)
	}
	return &Set{Kind: kind, Version: m.Version, Subjects: kept}, nil
}
