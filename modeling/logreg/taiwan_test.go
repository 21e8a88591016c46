package logreg_test

import (
	"encoding/csv"
	"errors"
	"io/fs"
	"math"
	"os"
	"strconv"
	"testing"

	"insitu/modeling/features"
	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
)

// taiwanCSV is the public UCI "default of credit card clients" data (Yeh & Lien 2009).
const taiwanCSV = "../../../shared/data/default_credit/UCI_Credit_Card.csv"

type split struct {
	cols []features.Column
	y    []float64
}

// loadTaiwan reads the data and splits it as ../shared/baselines/plaintext.py does: a row is in the
// test set when ID % 5 == 0. Features are the 23 columns LIMIT_BAL..PAY_AMT6.
func loadTaiwan(t testing.TB) (train, test split, names []string) {
	f, err := os.Open(taiwanCSV)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("Taiwan credit data not present at %s", taiwanCSV)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := recs[0]
	if len(header) != 25 || header[0] != "ID" || header[1] != "LIMIT_BAL" || header[24] != "default.payment.next.month" {
		t.Fatalf("unexpected header %q", header)
	}
	names = header[1:24]
	var tr, te [][]float64
	for k, rec := range recs[1:] {
		row := make([]float64, 25)
		for j, s := range rec {
			if row[j], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("data row %d, column %s: %v", k+1, header[j], err)
			}
		}
		if int64(row[0])%5 == 0 {
			te = append(te, row)
		} else {
			tr = append(tr, row)
		}
	}
	build := func(rows [][]float64) split {
		var s split
		for j, name := range names {
			v := make([]float64, len(rows))
			for i, row := range rows {
				v[i] = row[j+1]
			}
			s.cols = append(s.cols, features.NumericColumn(name, v, nil))
		}
		for _, row := range rows {
			s.y = append(s.y, row[24])
		}
		return s
	}
	return build(tr), build(te), names
}

// With standard scaling on training statistics and C = 1 (λ = 1), scikit-learn 1.2.1 reaches test
// AUC 0.7288 and KS 0.3886 (../shared/baselines/README.md).
func TestTaiwanAgainstScikitLearn(t *testing.T) {
	train, test, names := loadTaiwan(t)
	if len(train.y) != 24000 || len(test.y) != 6000 {
		t.Fatalf("split %d/%d rows; want 24000/6000", len(train.y), len(test.y))
	}
	var spec features.Spec
	for _, n := range names {
		spec.Columns = append(spec.Columns, features.Standardized(n))
	}
	fitted, err := features.Fit(spec, train.cols)
	if err != nil {
		t.Fatal(err)
	}
	Xtr, fnames, err := fitted.Transform(train.cols)
	if err != nil {
		t.Fatal(err)
	}
	Xte, _, err := fitted.Transform(test.cols)
	if err != nil {
		t.Fatal(err)
	}
	p := logreg.Problem{X: Xtr, Y: train.y, Lambda: 1, FeatureNames: fnames}
	m, err := logreg.Fit(p, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := p.Check(m.Weights, m.Intercept)
	if err != nil {
		t.Fatal(err)
	}
	if o.RelGrad > 1e-8 || o.NewtonDecrement > 1e-6 {
		t.Errorf("fitted point is not optimal: %+v", o)
	}
	s, err := metrics.Evaluate(test.y, m.PredictProba(Xte))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Taiwan test AUC %.5f KS %.5f Gini %.5f; %d Newton iterations, objective %.4f, KKT residual %.2g",
		s.AUC, s.KS, s.Gini, m.Iterations, m.Objective, o.GradNorm)
	if math.Abs(s.AUC-0.7288) > 0.002 {
		t.Errorf("AUC = %.4f; scikit-learn gives 0.7288", s.AUC)
	}
	if math.Abs(s.KS-0.3886) > 0.005 {
		t.Errorf("KS = %.4f; scikit-learn gives 0.3886", s.KS)
	}
}

func BenchmarkTaiwanFit(b *testing.B) {
	train, _, names := loadTaiwan(b)
	var spec features.Spec
	for _, n := range names {
		spec.Columns = append(spec.Columns, features.Standardized(n))
	}
	fitted, err := features.Fit(spec, train.cols)
	if err != nil {
		b.Fatal(err)
	}
	X, _, err := fitted.Transform(train.cols)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("n=24000_d=23_lambda=1", func(b *testing.B) {
		for b.Loop() {
			if _, err := logreg.Fit(logreg.Problem{X: X, Y: train.y, Lambda: 1}, logreg.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
