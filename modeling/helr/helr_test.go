package helr_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/helr"
	"insitu/modeling/logreg"
)

// Kim et al. 2018 (BMC Med Genomics 11:83) give the least-squares fits on [−8, 8] in x/8:
// σ3 = 0.5 + 1.20096(x/8) − 0.81562(x/8)³ and σ7 = 0.5 + 1.73496(x/8) − 4.19407(x/8)³ +
// 5.43402(x/8)⁵ − 2.50739(x/8)⁷.
func TestSigmoidPolynomialMatchesLiterature(t *testing.T) {
	for _, tc := range []struct {
		deg  int
		want []float64 // odd coefficients in x/8
	}{
		{3, []float64{1.20096, -0.81562}},
		{7, []float64{1.73496, -4.19407, 5.43402, -2.50739}},
	} {
		p, err := helr.SigmoidPolynomial(tc.deg, 8)
		if err != nil {
			t.Fatal(err)
		}
		if p[0] != 0.5 {
			t.Errorf("degree %d: c0 = %v, want 0.5", tc.deg, p[0])
		}
		for a, w := range tc.want {
			k := 2*a + 1
			got := p[k] * math.Pow(8, float64(k))
			if math.Abs(got-w) > 2e-3*math.Max(1, math.Abs(w)) {
				t.Errorf("degree %d: coefficient of (x/8)^%d = %.5f, want %.5f", tc.deg, k, got, w)
			}
			if k+1 < len(p) && p[k+1] != 0 {
				t.Errorf("degree %d: even coefficient %d = %v, want 0", tc.deg, k+1, p[k+1])
			}
		}
	}
}

// The worst error on [−R, R] shrinks with the degree: about 0.11, 0.06 and 0.03 on [−8, 8].
func TestSigmoidPolynomialError(t *testing.T) {
	prev := 1.0
	for _, deg := range []int{3, 5, 7} {
		p, err := helr.SigmoidPolynomial(deg, 8)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i := 0; i <= 1600; i++ {
			u := -8 + float64(i)/100
			worst = math.Max(worst, math.Abs(helr.EvalPolynomial(p, u)-1/(1+math.Exp(-u))))
		}
		if worst >= prev || worst > 0.12 {
			t.Errorf("degree %d: max error %.4f on [-8, 8], want below %.4f and 0.12", deg, worst, prev)
		}
		prev = worst
	}
}

func TestMomentum(t *testing.T) {
	want := []float64{0, 0.2818, 0.4340, 0.5311}
	for i, w := range want {
		if got := helr.Momentum(i); math.Abs(got-w) > 1e-4 {
			t.Errorf("Momentum(%d) = %.4f, want %.4f", i, got, w)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*helr.Config)
	}{
		{"iterations", func(c *helr.Config) { c.Iterations = 0 }},
		{"iterations", func(c *helr.Config) { c.Iterations = helr.MaxIterations + 1 }},
		{"l2", func(c *helr.Config) { c.L2 = 0 }},
		{"l2", func(c *helr.Config) { c.L2 = math.NaN() }},
		{"learning_rate", func(c *helr.Config) { c.LearningRate = -1 }},
		{"learning_rate", func(c *helr.Config) { c.LearningRate = 2000 }},
		{"sigmoid_degree", func(c *helr.Config) { c.SigmoidDegree = 4 }},
		{"sigmoid_range", func(c *helr.Config) { c.SigmoidRange = 0.5 }},
	} {
		c := helr.DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		var ce *helr.ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, helr.ErrConfig) || ce.Field != tc.field {
			t.Errorf("%+v: error %v, want a ConfigError on %s", c, err, tc.field)
		}
	}
	if err := helr.DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// synthetic returns n rows of d standard-normal features clipped to ±4 and labels drawn from a
// logistic model.
func synthetic(n, d int, seed uint64) (*mat.Dense, []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	X := mat.NewDense(n, d, nil)
	y := make([]float64, n)
	for i := range n {
		u := -1.0
		for j := range d {
			v := math.Max(-4, math.Min(4, r.NormFloat64()))
			X.Set(i, j, v)
			u += v * float64(j%3-1) * 0.8
		}
		if r.Float64() < 1/(1+math.Exp(-u)) {
			y[i] = 1
		}
	}
	return X, y
}

// Fit with many iterations converges to the optimum of the polynomial objective, which lies near the
// exact optimum of the same penalty (modeling/logreg with λ = n·l2).
func TestFitNearExactOptimum(t *testing.T) {
	X, y := synthetic(4000, 5, 7)
	cfg := helr.DefaultConfig()
	cfg.Iterations = 60
	res, err := helr.Fit(helr.Columns(X), y, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := logreg.Problem{X: X, Y: y, Lambda: cfg.Lambda(4000)}
	exact, err := logreg.Fit(p, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for j, w := range exact.Weights {
		if math.Abs(res.Weights[j]-w) > 0.05 {
			t.Errorf("weight %d = %.4f, exact optimum %.4f", j, res.Weights[j], w)
		}
	}
	if math.Abs(res.Intercept-exact.Intercept) > 0.05 {
		t.Errorf("intercept %.4f, exact optimum %.4f", res.Intercept, exact.Intercept)
	}
	excess := (p.Objective(res.Weights, res.Intercept) - exact.Objective) / 4000
	if excess > 1e-3 || excess < 0 {
		t.Errorf("excess mean loss %.2e, want in [0, 1e-3]", excess)
	}
}

// Step by hand on two rows: the first iteration takes u = 0, so p(0) = 1/2.
func TestStepByHand(t *testing.T) {
	cfg := helr.DefaultConfig()
	cfg.LearningRate, cfg.L2 = 0.5, 0.1
	cols := [][]float64{{1, -2}}
	y := []float64{1, 0}
	s := helr.NewState(1)
	coeffs := cfg.Sigmoid()
	helr.Step(s, cfg, coeffs, cols, y)
	// e = 0.25·(0.5 − y) = (−0.125, 0.125); g_0 = 0, g_1 = −0.125 − 0.25 = −0.375.
	if s.W[0] != 0 || math.Abs(s.W[1]-0.375) > 1e-15 || s.V[1] != s.W[1] {
		t.Fatalf("after one step W = %v, V = %v, want W = V = [0 0.375]", s.W, s.V)
	}
	helr.Step(s, cfg, coeffs, cols, y)
	u := []float64{0.375, -0.75}
	e := []float64{0.25 * (helr.EvalPolynomial(coeffs, u[0]) - 1), 0.25 * helr.EvalPolynomial(coeffs, u[1])}
	w0 := 0 - (e[0] + e[1])
	w1 := (1-0.05)*0.375 - (e[0] - 2*e[1])
	mu := helr.Momentum(1)
	if math.Abs(s.W[0]-w0) > 1e-15 || math.Abs(s.W[1]-w1) > 1e-15 {
		t.Errorf("second step W = %v, want [%v %v]", s.W, w0, w1)
	}
	if v1 := (1+mu)*w1 - mu*0.375; math.Abs(s.V[1]-v1) > 1e-15 {
		t.Errorf("second step V[1] = %v, want %v", s.V[1], v1)
	}
}
