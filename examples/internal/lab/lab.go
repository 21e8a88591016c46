// Package lab holds the steps the examples' tests share: a throw-away enclave data directory, the
// ingest of an example's dataset spec, and the plaintext reference fit on a public dataset that
// carries its own label. Call Open first.
package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"insitu/connectors"
	"insitu/enclave/cohort"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
	"insitu/modeling/features"
	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
)

// Open creates a data directory with its key file under base (insitu init) and opens its dataset
// store.
func Open(base string) (*dataset.Store, error) {
	dir, keyFile := filepath.Join(base, "lab"), filepath.Join(base, "lab.key")
	if _, err := datadir.Init(dir, keyFile); err != nil {
		return nil, err
	}
	d, err := datadir.Open(dir, keys.Source{File: keyFile})
	if err != nil {
		return nil, err
	}
	return dataset.Open(d)
}

// Ingest ingests a dataset spec whose single source is read from input (insitu ingest --spec S
// --input F), then verifies the new version (insitu dataset verify).
func Ingest(ctx context.Context, s *dataset.Store, specFile, input string) (*dataset.Manifest, *connectors.Report, error) {
	spec, mappings, err := connectors.LoadDatasetSpec(specFile)
	if err != nil {
		return nil, nil, err
	}
	m, rep, err := s.Ingest(ctx, spec, mappings, dataset.IngestOptions{Inputs: map[string]string{mappings[0].Source: input}})
	if err != nil {
		return nil, nil, err
	}
	vr, err := s.Verify(ctx, m.Name, m.Version)
	if err != nil {
		return nil, nil, err
	}
	if f := vr.Failed(); len(f) > 0 {
		return nil, nil, fmt.Errorf("verify: %d checks failed, first: %s", len(f), f[0].Detail)
	}
	return m, rep, nil
}

// Reference is the outcome of a reference fit.
type Reference struct {
	Subjects, Positives, Train, Test int
	Features                         int
	Eval                             metrics.Summary
}

// FitReference fits the plaintext reference as ../shared/baselines/plaintext.py does: a subject is in
// the test set when its numeric id % 5 == 0; every feature column but the label is median-imputed
// (where values are missing) and standard-scaled on the training rows; L2 logistic regression with
// λ = 1 (scikit-learn's C = 1).
func FitReference(ctx context.Context, s *dataset.Store, m *dataset.Manifest, label string) (*Reference, error) {
	var cols []dataset.Column
	for _, c := range cohort.FeatureColumns(m) {
		if c.Name != label {
			cols = append(cols, c)
		}
	}
	sc, err := s.Scan(ctx, m.Name, m.Version, dataset.ScanOptions{})
	if err != nil {
		return nil, err
	}
	tab, err := cohort.CollectLabelColumn(ctx, sc, cols, label)
	sc.Close()
	if err != nil {
		return nil, err
	}
	ref := &Reference{Subjects: len(tab.Subjects), Features: len(cols)}
	var train, test []int
	for i, id := range tab.Subjects {
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("subject %q is not a numeric id: %w", id, err)
		}
		if n%5 == 0 {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
		ref.Positives += int(tab.Label[i])
	}
	ref.Train, ref.Test = len(train), len(test)
	trainCols, yTrain := tab.Rows(train)
	testCols, yTest := tab.Rows(test)
	var fs features.Spec
	for _, c := range trainCols {
		cs := features.Standardized(c.Name)
		for _, miss := range c.Missing {
			if miss {
				cs.Steps = append([]features.Step{{Impute: &features.Impute{Strategy: features.ImputeMedian}}}, cs.Steps...)
				break
			}
		}
		fs.Columns = append(fs.Columns, cs)
	}
	fitted, err := features.Fit(fs, trainCols)
	if err != nil {
		return nil, err
	}
	xTrain, _, err := fitted.Transform(trainCols)
	if err != nil {
		return nil, err
	}
	xTest, _, err := fitted.Transform(testCols)
	if err != nil {
		return nil, err
	}
	model, err := logreg.Fit(logreg.Problem{X: xTrain, Y: yTrain, Lambda: 1}, logreg.Options{})
	if err != nil {
		return nil, err
	}
	ref.Eval, err = metrics.Evaluate(yTest, model.PredictProba(xTest))
	return ref, err
}
