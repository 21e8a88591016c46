package model_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/helr"
	"insitu/modeling/logreg"
	"insitu/plugins/helr/model"
	"insitu/plugins/sdk"
)

// train runs the plugin directly on ds packed under lit and returns the decrypted weights.
func train(t *testing.T, k *keyHolder, ds dataset, hp map[string]any) ([]float64, float64) {
	t.Helper()
	out, err := model.New().Train(context.Background(), k.input(t, ds, hp))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := model.New().Describe(context.Background())
	if err := out.Check(&d, sdk.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	return k.weights(t, ds, out)
}

func maxDiff(w []float64, b float64, ref *helr.Result) float64 {
	m := math.Abs(b - ref.Intercept)
	for j := range w {
		m = math.Max(m, math.Abs(w[j]-ref.Weights[j]))
	}
	return m
}

// An encrypted run of T iterations equals modeling/helr's plaintext run of T iterations within 1e-7
// (absolute, on weights of order 0.1 to 1) at the test parameters: T = 1 is one gradient step from
// zero; T = 2 and 3 add the refresh and the momentum. Every sigmoid degree, both rings.
func TestEncryptedIterationsMatchPlaintext(t *testing.T) {
	ds := synthetic(1500, 4, 1) // two blocks of 1024 slots, the second partly filled
	for _, lit := range []testLiteral{testInsecureLogN11, testInsecureLogN10RealOnly} {
		k := newKeyHolder(t, lit)
		for _, tc := range []struct{ deg, iters int }{{7, 1}, {7, 2}, {7, 3}, {5, 2}, {3, 2}} {
			t.Run(fmt.Sprintf("logN%d_realonly%v_deg%d_T%d", lit.LogN, lit.RealOnly, tc.deg, tc.iters), func(t *testing.T) {
				hp := map[string]any{"iterations": tc.iters, "sigmoid_degree": tc.deg}
				before := k.calls.Load()
				w, b := train(t, k, ds, hp)
				cfg := helr.DefaultConfig()
				cfg.Iterations, cfg.SigmoidDegree = tc.iters, tc.deg
				ref, err := helr.Fit(ds.cols, ds.y, cfg)
				if err != nil {
					t.Fatal(err)
				}
				diff := maxDiff(w, b, ref)
				t.Logf("max difference %.2e", diff)
				if diff > 1e-7 || math.IsNaN(diff) {
					t.Errorf("encrypted %v %v, plaintext %v %v: max difference %.2e > 1e-7", w, b, ref.Weights, ref.Intercept, diff)
				}
				if got, want := k.calls.Load()-before, int64(5*(tc.iters-1)); got != want {
					t.Errorf("%d refreshes, want (d+1)·(T−1) = %d", got, want)
				}
			})
		}
	}
}

// A full run with the defaults decrypts to modeling/helr's result within 1e-5 (CKKS noise of about 1e-9 per iteration, grown by ten momentum steps) and lands near the
// exact optimum of the declared objective (modeling/logreg with λ = n·l2): excess mean loss below
// 2e-3 and every weight within 0.1.
func TestTrainDefaultsNearOptimum(t *testing.T) {
	ds := synthetic(1500, 4, 2)
	k := newKeyHolder(t, testInsecureLogN11)
	w, b := train(t, k, ds, nil)
	cfg := helr.DefaultConfig()
	ref, err := helr.Fit(ds.cols, ds.y, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := maxDiff(w, b, ref); diff > 1e-5 {
		t.Errorf("encrypted %v %v, plaintext %v %v: max difference %.2e > 1e-5", w, b, ref.Weights, ref.Intercept, diff)
	}
	n := len(ds.y)
	X := mat.NewDense(n, len(ds.cols), nil)
	for j, col := range ds.cols {
		X.SetCol(j, col)
	}
	p := logreg.Problem{X: X, Y: ds.y, Lambda: cfg.Lambda(n)}
	exact, err := logreg.Fit(p, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	excess := (p.Objective(w, b) - exact.Objective) / float64(n)
	if excess > 2e-3 {
		t.Errorf("excess mean loss %.2e over the exact optimum, want at most 2e-3", excess)
	}
	for j := range w {
		if math.Abs(w[j]-exact.Weights[j]) > 0.1 {
			t.Errorf("weight %d: %.4f, exact optimum %.4f", j, w[j], exact.Weights[j])
		}
	}
	if math.Abs(b-exact.Intercept) > 0.1 {
		t.Errorf("intercept %.4f, exact optimum %.4f", b, exact.Intercept)
	}
	t.Logf("excess mean loss %.2e; encrypted %v %v; exact %v %v", excess, w, b, exact.Weights, exact.Intercept)
}

func TestHyperparameterErrors(t *testing.T) {
	for _, tc := range []struct {
		hp     map[string]any
		column string
	}{
		{map[string]any{"sigmoid_degree": 4}, "sigmoid_degree"},
		{map[string]any{"iterations": 0}, "iterations"},
		{map[string]any{"l2": -1}, "l2"},
		{map[string]any{"learning_rate": 0}, "learning_rate"},
		{map[string]any{"sigmoid_range": 100}, "sigmoid_range"},
		{map[string]any{"lambda": 1}, ""}, // unknown key: a misspelling is not ignored
		{map[string]any{"iterations": "ten"}, ""},
	} {
		_, err := model.Hyperparameters(sdk.MustHyperparameters(tc.hp))
		var se *sdk.Error
		if !errors.Is(err, sdk.ErrHyperparameter) {
			t.Errorf("%v: error %v, want ErrHyperparameter", tc.hp, err)
			continue
		}
		if tc.column != "" && (!errors.As(err, &se) || se.Column != tc.column) {
			t.Errorf("%v: error %v, want one naming %s", tc.hp, err, tc.column)
		}
	}
	cfg, err := model.Hyperparameters(sdk.MustHyperparameters(nil))
	if err != nil || cfg != helr.DefaultConfig() {
		t.Errorf("no hyperparameters: %+v, %v; want the defaults", cfg, err)
	}
}

// Parameters too shallow for the sigmoid's degree are refused before any work, naming the
// hyperparameter to change.
func TestTooFewLevels(t *testing.T) {
	lit := testInsecureLogN11
	lit.LogQ = []int{55, 45, 45, 45, 45, 45} // 5 levels: degree 7 needs 6
	k := newKeyHolder(t, lit)
	ds := synthetic(300, 2, 3)
	_, err := model.New().Train(context.Background(), k.input(t, ds, nil))
	var se *sdk.Error
	if !errors.As(err, &se) || se.Column != "sigmoid_degree" || !errors.Is(err, sdk.ErrHyperparameter) {
		t.Fatalf("error %v, want ErrHyperparameter on sigmoid_degree", err)
	}
	if _, err := model.New().Train(context.Background(), k.input(t, ds, map[string]any{"sigmoid_degree": 3, "iterations": 2})); err != nil {
		t.Errorf("degree 3 on 5 levels: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	d, err := model.New().Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.Mode != sdk.ModeHE || d.Family != sdk.FamilyLogisticRegression || !d.Needs.Labels || !d.Needs.Refresh ||
		!d.Declares(sdk.OutputCiphertexts) || len(d.Outputs) != 1 {
		t.Errorf("description %+v", d)
	}
}
