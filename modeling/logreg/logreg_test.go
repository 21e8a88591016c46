package logreg

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

func col(v ...float64) *mat.Dense { return mat.NewDense(len(v), 1, v) }

func fit(t *testing.T, p Problem) *Model {
	t.Helper()
	m, err := Fit(p, Options{})
	if err != nil {
		t.Fatalf("Fit: %v", err)
	}
	if !m.Converged {
		t.Fatal("Fit returned no error but Converged is false")
	}
	return m
}

// Symmetric data: x = +1 has 3 positives and 1 negative, x = −1 the mirror image. With λ = 0 the
// gradient 2(a+c)σ(w) − 2a = 0 gives σ(w) = 3/4, so w = ln 3 and b = 0.
func TestClosedFormUnpenalised(t *testing.T) {
	X := col(1, 1, 1, 1, -1, -1, -1, -1)
	y := []float64{1, 1, 1, 0, 0, 0, 0, 1}
	m := fit(t, Problem{X: X, Y: y})
	if !near(m.Weights[0], math.Log(3), 1e-10) || !near(m.Intercept, 0, 1e-10) {
		t.Errorf("w, b = %v, %v; want ln 3 = %v, 0", m.Weights[0], m.Intercept, math.Log(3))
	}
	// Each row's loss is −ln of the probability given to its label: ¾ for 6 rows, ¼ for 2.
	want := -6*math.Log(0.75) - 2*math.Log(0.25)
	if !near(m.Objective, want, 1e-10) {
		t.Errorf("objective = %v; want %v", m.Objective, want)
	}
}

// A zero feature with λ > 0: w = 0 and b is the log-odds of the label mean, ln(1/3).
func TestClosedFormIntercept(t *testing.T) {
	m := fit(t, Problem{X: col(0, 0, 0, 0), Y: []float64{1, 0, 0, 0}, Lambda: 2})
	if m.Weights[0] != 0 || !near(m.Intercept, math.Log(1.0/3), 1e-12) {
		t.Errorf("w, b = %v, %v; want 0, ln(1/3)", m.Weights[0], m.Intercept)
	}
}

// Penalised symmetric data: the optimum satisfies 8σ(w) − 6 + λw = 0 with b = 0. For λ = 1 the root
// is found here by bisection, independently of Newton's method.
func TestClosedFormPenalised(t *testing.T) {
	X := col(1, 1, 1, 1, -1, -1, -1, -1)
	y := []float64{1, 1, 1, 0, 0, 0, 0, 1}
	lo, hi := 0.0, 2.0
	for range 200 {
		mid := (lo + hi) / 2
		if 8*sigmoid(mid)-6+mid > 0 {
			hi = mid
		} else {
			lo = mid
		}
	}
	m := fit(t, Problem{X: X, Y: y, Lambda: 1})
	if !near(m.Weights[0], lo, 1e-10) || !near(m.Intercept, 0, 1e-10) {
		t.Errorf("w, b = %v, %v; want %v, 0", m.Weights[0], m.Intercept, lo)
	}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func randomProblem(r *rand.Rand, n, d int, lambda float64) Problem {
	X := mat.NewDense(n, d, nil)
	y := make([]float64, n)
	beta := make([]float64, d)
	for j := range beta {
		beta[j] = r.NormFloat64()
	}
	for i := range n {
		row := X.RawRowView(i)
		for j := range row {
			row[j] = r.NormFloat64() * float64(j+1)
		}
		if r.Float64() < sigmoid(floats.Dot(row, beta)/float64(d)-0.5) {
			y[i] = 1
		}
	}
	return Problem{X: X, Y: y, Lambda: lambda}
}

// The gradient matches central finite differences of the objective.
func TestGradientFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := randomProblem(r, 50, 4, 0.7)
	p.SampleWeight = make([]float64, 50)
	for i := range p.SampleWeight {
		p.SampleWeight[i] = r.Float64() * 2
	}
	w := []float64{0.3, -0.2, 0.1, 0.05}
	b := -0.4
	gw, gb := p.Gradient(w, b)
	const h = 1e-6
	for j := range w {
		wp := append([]float64(nil), w...)
		wm := append([]float64(nil), w...)
		wp[j] += h
		wm[j] -= h
		fd := (p.Objective(wp, b) - p.Objective(wm, b)) / (2 * h)
		if !near(fd, gw[j], 1e-5*max(1, math.Abs(fd))) {
			t.Errorf("∂f/∂w%d = %v; finite difference %v", j, gw[j], fd)
		}
	}
	fd := (p.Objective(w, b+h) - p.Objective(w, b-h)) / (2 * h)
	if !near(fd, gb, 1e-5*max(1, math.Abs(fd))) {
		t.Errorf("∂f/∂b = %v; finite difference %v", gb, fd)
	}
	// The package-level helpers agree with the unweighted Problem.
	q := Problem{X: p.X, Y: p.Y, Lambda: p.Lambda}
	if Objective(p.X, p.Y, w, b, p.Lambda) != q.Objective(w, b) {
		t.Error("Objective helper disagrees with Problem.Objective")
	}
	if g, _ := Gradient(p.X, p.Y, w, b, p.Lambda); !floats.Equal(g, first(q.Gradient(w, b))) {
		t.Error("Gradient helper disagrees with Problem.Gradient")
	}
}

func first(g []float64, _ float64) []float64 { return g }

// At the fitted point the gradient vanishes and every perturbation raises the objective.
func TestOptimumOnRandomData(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, lambda := range []float64{0, 0.01, 1, 100} {
		p := randomProblem(r, 400, 5, lambda)
		m := fit(t, p)
		o, err := p.Check(m.Weights, m.Intercept)
		if err != nil {
			t.Fatal(err)
		}
		if o.RelGrad > 1e-8 || o.NewtonDecrement > 1e-6 || o.Objective != m.Objective || o.GradNorm != m.GradNorm {
			t.Errorf("λ=%v: optimality at the fit %+v (model objective %v, grad %v)", lambda, o, m.Objective, m.GradNorm)
		}
		for j := range m.Weights {
			for _, h := range []float64{-1e-3, 1e-3} {
				w := append([]float64(nil), m.Weights...)
				w[j] += h
				if p.Objective(w, m.Intercept) <= m.Objective {
					t.Errorf("λ=%v: moving w%d by %v does not raise the objective", lambda, j, h)
				}
			}
		}
		// A point off the optimum is reported as such.
		w := append([]float64(nil), m.Weights...)
		w[0] += 0.05
		off, _ := p.Check(w, m.Intercept)
		if off.RelGrad < 1e-4 || off.NewtonDecrement < 1e-3 || off.Objective <= o.Objective {
			t.Errorf("λ=%v: perturbed point reported as optimal: %+v", lambda, off)
		}
		// Half-way between the optimum and the perturbed point, f − f* ≈ decrement²/2.
		gap := off.Objective - o.Objective
		if est := off.NewtonDecrement * off.NewtonDecrement / 2; !near(est, gap, 0.05*gap) {
			t.Errorf("λ=%v: Newton decrement²/2 = %v but f − f* = %v", lambda, est, gap)
		}
	}
}

// A sample weight of 2 is the same as duplicating the row.
func TestSampleWeightsDuplicate(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	p := randomProblem(r, 60, 3, 0.5)
	var rowsDup [][]float64
	var yDup []float64
	p.SampleWeight = make([]float64, 60)
	for i := range 60 {
		k := i % 3 // weight 0, 1 or 2
		p.SampleWeight[i] = float64(k)
		for range k {
			rowsDup = append(rowsDup, mat.Row(nil, i, p.X))
			yDup = append(yDup, p.Y[i])
		}
	}
	Xd := mat.NewDense(len(rowsDup), 3, nil)
	for i, row := range rowsDup {
		Xd.SetRow(i, row)
	}
	a := fit(t, p)
	b := fit(t, Problem{X: Xd, Y: yDup, Lambda: 0.5})
	if !floats.EqualApprox(a.Weights, b.Weights, 1e-9) || !near(a.Intercept, b.Intercept, 1e-9) {
		t.Errorf("weighted %v %v; duplicated %v %v", a.Weights, a.Intercept, b.Weights, b.Intercept)
	}
}

func TestSeparable(t *testing.T) {
	X := col(-2, -1, 1, 2)
	y := []float64{0, 0, 1, 1}
	m := fit(t, Problem{X: X, Y: y, Lambda: 1})
	if o, _ := (Problem{X: X, Y: y, Lambda: 1}).Check(m.Weights, m.Intercept); o.RelGrad > 1e-8 || m.Weights[0] <= 0 || m.Weights[0] > 10 {
		t.Errorf("separable with λ=1: w = %v, optimality %+v", m.Weights, o)
	}
	m, err := Fit(Problem{X: X, Y: y}, Options{})
	if !errors.Is(err, ErrSeparable) || m == nil || m.Converged {
		t.Errorf("separable with λ=0: err = %v, model %+v; want ErrSeparable and the last iterate", err, m)
	}
}

// Duplicate columns with λ = 0 make the Hessian singular; the damped step still reaches a point
// with zero gradient.
func TestSingularHessian(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	p := randomProblem(r, 200, 2, 0)
	X := mat.NewDense(200, 3, nil)
	for i := range 200 {
		X.Set(i, 0, p.X.At(i, 0))
		X.Set(i, 1, p.X.At(i, 1))
		X.Set(i, 2, p.X.At(i, 1))
	}
	q := Problem{X: X, Y: p.Y}
	m := fit(t, q)
	a := fit(t, p)
	// The duplicated column's weight splits between the two copies; predictions agree.
	if !near(m.Weights[1]+m.Weights[2], a.Weights[1], 1e-6) || !near(m.Objective, a.Objective, 1e-8) {
		t.Errorf("duplicate columns: %v (f=%v) vs %v (f=%v)", m.Weights, m.Objective, a.Weights, a.Objective)
	}
	if o, _ := q.Check(m.Weights, m.Intercept); !math.IsInf(o.NewtonDecrement, 1) {
		t.Errorf("singular Hessian: Newton decrement %v; want +Inf", o.NewtonDecrement)
	}
}

func TestNoIntercept(t *testing.T) {
	X := col(1, 1, 1, 1, -1, -1, -1, -1)
	y := []float64{1, 1, 1, 1, 0, 0, 0, 1}
	p := Problem{X: X, Y: y, Lambda: 0.5, NoIntercept: true}
	m := fit(t, p)
	gw, _ := p.Gradient(m.Weights, 0)
	if m.Intercept != 0 || math.Abs(gw[0]) > 1e-8 {
		t.Errorf("no intercept: b = %v, ∂f/∂w = %v", m.Intercept, gw[0])
	}
	// With an intercept the fit differs (the data are not symmetric).
	p.NoIntercept = false
	if mi := fit(t, p); mi.Intercept == 0 || mi.Weights[0] == m.Weights[0] {
		t.Errorf("intercept fit %+v equals no-intercept fit", mi)
	}
}

func TestNotConverged(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	p := randomProblem(r, 300, 4, 0.1)
	m, err := Fit(p, Options{MaxIter: 1})
	if !errors.Is(err, ErrNotConverged) || m == nil || m.Converged || m.Iterations != 1 {
		t.Fatalf("MaxIter 1: err = %v, model %+v", err, m)
	}
	if !strings.Contains(err.Error(), "after 1 iterations") {
		t.Errorf("message %q does not say how many iterations ran", err)
	}
}

func TestInvalidData(t *testing.T) {
	X := mat.NewDense(3, 2, []float64{1, 2, 3, math.NaN(), 5, 6})
	y := []float64{0, 1, 0}
	names := []string{"income", "age"}
	cases := []struct {
		name string
		p    Problem
		want error
		row  int
		col  int
		msg  string
	}{
		{"nan", Problem{X: X, Y: y, FeatureNames: names}, ErrNotFinite, 2, 1, `row 2: feature "age" (column 1)`},
		{"label", Problem{X: col(1, 2, 3), Y: []float64{0, 1, 0.5}}, ErrLabel, 3, -1, "row 3"},
		{"one-class", Problem{X: col(1, 2, 3), Y: []float64{1, 1, 1}}, ErrOneClass, 0, -1, "one class"},
		{"one-class-by-weight", Problem{X: col(1, 2, 3), Y: []float64{1, 0, 1}, SampleWeight: []float64{1, 0, 1}}, ErrOneClass, 0, -1, ""},
		{"weight", Problem{X: col(1, 2, 3), Y: []float64{1, 0, 1}, SampleWeight: []float64{1, -1, 1}}, ErrSampleWeight, 2, -1, ""},
		{"lambda", Problem{X: col(1, 2), Y: []float64{1, 0}, Lambda: -1}, ErrLambda, 0, -1, ""},
		{"inf", Problem{X: col(1, math.Inf(1)), Y: []float64{1, 0}}, ErrNotFinite, 2, 0, "column 0"},
	}
	for _, c := range cases {
		m, err := Fit(c.p, Options{})
		var e *Error
		if m != nil || !errors.Is(err, c.want) || !errors.As(err, &e) || e.Row != c.row || e.Column != c.col || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: model %v, err = %v; want %v at row %d column %d", c.name, m, err, c.want, c.row, c.col)
		}
	}
}

func TestShapeMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Fit with 2 rows and 3 labels did not panic")
		}
	}()
	Fit(Problem{X: col(1, 2), Y: []float64{0, 1, 1}}, Options{})
}

func TestPredictAndJSON(t *testing.T) {
	m := &Model{Weights: []float64{2, -1}, Intercept: 0.5, FeatureNames: []string{"a", "b"}}
	X := mat.NewDense(3, 2, []float64{0, 0, 1, 4, -1, 0})
	z := m.Decision(X)
	if !floats.Equal(z, []float64{0.5, -1.5, -1.5}) {
		t.Errorf("Decision = %v", z)
	}
	p := m.PredictProba(X)
	if !near(p[0], 1/(1+math.Exp(-0.5)), 1e-15) || !near(p[1], 1/(1+math.Exp(1.5)), 1e-15) {
		t.Errorf("PredictProba = %v", p)
	}
	if c := m.Predict(X); !floats.Equal(c, []float64{1, 0, 0}) {
		t.Errorf("Predict = %v", c)
	}
	if s := m.Score([]float64{1, 4}); s != p[1] {
		t.Errorf("Score = %v; want %v", s, p[1])
	}
	// Extreme margins do not overflow.
	if s := (&Model{Weights: []float64{1}}).Score([]float64{-1000}); s != 0 || math.IsNaN(s) {
		t.Errorf("Score(−1000) = %v", s)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Model
	if err := json.Unmarshal(b, &back); err != nil || !floats.Equal(back.Weights, m.Weights) || back.Intercept != m.Intercept || back.FeatureNames[1] != "b" {
		t.Errorf("JSON round trip: %s → %+v, %v", b, back, err)
	}
}

func BenchmarkLogRegFit(b *testing.B) {
	for _, c := range []struct{ n, d int }{{24000, 23}, {120000, 10}, {5000, 200}} {
		r := rand.New(rand.NewPCG(15, 16))
		p := randomProblem(r, c.n, c.d, 1)
		b.Run(fmt.Sprintf("n=%d_d=%d", c.n, c.d), func(b *testing.B) {
			for b.Loop() {
				if _, err := Fit(p, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
