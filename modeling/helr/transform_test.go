package helr_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/features"
	"insitu/modeling/helr"
	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
)

// heavyTailed returns n rows shaped like Give Me Some Credit's worst columns: a normal column, a
// past-due count with the sentinel code 98 in 0.3 % of the rows, and a utilisation ratio with a
// few values a thousand times too large; the labels follow a logistic model of the sane values.
func heavyTailed(n int, seed uint64) ([]features.Column, []float64) {
	r := rand.New(rand.NewPCG(seed, 2))
	a, c, u := make([]float64, n), make([]float64, n), make([]float64, n)
	y := make([]float64, n)
	for i := range n {
		a[i] = r.NormFloat64()
		for c[i] < 6 && r.Float64() < 0.25 {
			c[i]++
		}
		u[i] = math.Min(1.5, r.ExpFloat64()*0.3)
		z := -3 - 0.4*a[i] + 0.8*c[i] + 1.5*u[i]
		if r.Float64() < 0.003 {
			c[i] = 98
		}
		if r.Float64() < 0.005 {
			u[i] *= 1000
		}
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y[i] = 1
		}
	}
	return []features.Column{
		features.NumericColumn("age", a, nil),
		features.NumericColumn("past_due", c, nil),
		features.NumericColumn("utilisation", u, nil),
	}, y
}

func transform(t *testing.T, spec features.Spec, tr, te []features.Column) (*mat.Dense, *mat.Dense, *features.Fitted) {
	t.Helper()
	f, err := features.Fit(spec, tr)
	if err != nil {
		t.Fatal(err)
	}
	xtr, _, err := f.Transform(tr)
	if err != nil {
		t.Fatal(err)
	}
	xte, _, err := f.Transform(te)
	if err != nil {
		t.Fatal(err)
	}
	return xtr, xte, f
}

func testAUC(t *testing.T, y []float64, m logreg.Model, X mat.Matrix) float64 {
	t.Helper()
	a, err := metrics.AUC(y, m.Decision(X))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// FeatureSpec keeps heavy-tailed columns at about unit variance and within [−4, 4], and the default
// ten iterations then land within 0.005 test AUC of the exact optimum of the same objective;
// standardising and clipping without winsorising leaves the count and the ratio squeezed near 0
// and the same ten iterations far from the optimum.
func TestFeatureSpecHeavyTails(t *testing.T) {
	tr, ytr := heavyTailed(20000, 1)
	te, yte := heavyTailed(10000, 2)
	cfg := helr.DefaultConfig()
	gap := func(spec features.Spec) (variances []float64, g float64, bounds []features.Interval) {
		xtr, xte, f := transform(t, spec, tr, te)
		cols := helr.Columns(xtr)
		for _, c := range cols {
			var s, s2 float64
			for _, v := range c {
				s += v
				s2 += v * v
			}
			m := s / float64(len(c))
			variances = append(variances, s2/float64(len(c))-m*m)
		}
		res, err := helr.Fit(cols, ytr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		exact, err := logreg.Fit(logreg.Problem{X: xtr, Y: ytr, Lambda: cfg.Lambda(len(ytr))}, logreg.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return variances, testAUC(t, yte, *exact, xte) - testAUC(t, yte, logreg.Model{Weights: res.Weights, Intercept: res.Intercept}, xte), f.Bounds()
	}

	var wins features.Spec
	for _, c := range tr {
		wins.Columns = append(wins.Columns, helr.FeatureSpec(c.Name))
	}
	v, g, bounds := gap(wins)
	for j, x := range v {
		if x < 0.4 || x > 1.01 {
			t.Errorf("FeatureSpec: column %d has variance %.3f, want 0.4 to 1", j, x)
		}
		if bounds[j].Low < -helr.ClipSD || bounds[j].High > helr.ClipSD {
			t.Errorf("FeatureSpec: column %d bounded by %v, want within ±%v", j, bounds[j], helr.ClipSD)
		}
	}
	if math.Abs(g) > 0.005 {
		t.Errorf("FeatureSpec: exact optimum's test AUC minus ten iterations' = %.4f, want within 0.005", g)
	}

	lo, hi := -4.0, 4.0
	var std features.Spec
	for _, c := range tr {
		std.Columns = append(std.Columns, features.ColumnSpec{Column: c.Name, Steps: []features.Step{
			{Scale: &features.Scale{Method: features.ScaleStandard}}, {Clip: &features.Clip{Min: &lo, Max: &hi}}}})
	}
	v, g, _ = gap(std)
	if v[1] > 0.2 || v[2] > 0.2 {
		t.Errorf("standardised and clipped: variances %.3f, want the count's and the ratio's below 0.2", v)
	}
	if g < 0.01 {
		t.Errorf("standardised and clipped: AUC gap %.4f, want the ten iterations at least 0.01 short", g)
	}
	t.Logf("standardised and clipped: variances %.3f, AUC gap %.4f", v, g)
}
