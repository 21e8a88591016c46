package logreg

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Options tunes Fit. The zero value gives the defaults.
type Options struct {
	// MaxIter bounds the Newton iterations (default 100; a well-posed problem needs 5 to 15).
	MaxIter int
	// GradTol: Fit has converged when ‖∇f‖∞ <= GradTol · max(1, ‖∇f(0, 0)‖∞) (default 1e-8).
	GradTol float64
	// StepTol: Fit has also converged when a full Newton step changes no parameter θ_j by more than
	// StepTol · (1 + |θ_j|) — the iterate has stopped moving at machine precision (default 1e-10).
	StepTol float64
}

func (o Options) withDefaults() Options {
	if o.MaxIter < 0 || o.GradTol < 0 || o.StepTol < 0 || math.IsNaN(o.GradTol) || math.IsNaN(o.StepTol) {
		panic(fmt.Sprintf("logreg: invalid options %+v", o))
	}
	if o.MaxIter == 0 {
		o.MaxIter = 100
	}
	if o.GradTol == 0 {
		o.GradTol = 1e-8
	}
	if o.StepTol == 0 {
		o.StepTol = 1e-10
	}
	return o
}

// armijo is the sufficient-decrease constant of the backtracking line search.
const armijo = 1e-4

// maxHalvings bounds the backtracking line search.
const maxHalvings = 60

// Fit minimises the Problem's objective by Newton's method with a backtracking line search,
// starting from w = 0 and b = log-odds of the weighted label mean. Each step solves the Newton system
// by Cholesky; when the Hessian is not numerically positive definite (possible only with λ = 0) the
// step is damped (Levenberg–Marquardt) until it is.
//
// On success the Model has Converged set. When the tolerance is not met within MaxIter, or with
// λ = 0 on separable data, Fit returns the last iterate as a Model together with an *Error wrapping
// ErrNotConverged or ErrSeparable, so the caller can inspect it. On invalid data the Model is nil.
// Fit panics on shape mismatches and on negative options.
func Fit(p Problem, o Options) (*Model, error) {
	o = o.withDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	s := newSolver(p)
	w := make([]float64, s.d)
	b := 0.0
	if !p.NoIntercept {
		var sp, sw float64
		for i, y := range p.Y {
			sp += p.weight(i) * y
			sw += p.weight(i)
		}
		b = math.Log(sp / (sw - sp))
	}
	s.eval(w, b)
	scale := s.gscale()

	m := &Model{FeatureNames: p.FeatureNames, Lambda: p.Lambda}
	var failure string
	for {
		if floats.Norm(s.g, math.Inf(1)) <= o.GradTol*scale {
			m.Converged = true
			break
		}
		if m.Iterations == o.MaxIter {
			failure = fmt.Sprintf("gradient %.3g after %d iterations exceeds the tolerance %.3g; raise lambda, scale the features or raise the iteration limit",
				floats.Norm(s.g, math.Inf(1))/scale, m.Iterations, o.GradTol)
			break
		}
		s.hessian()
		if err := s.newtonStep(true); err != nil {
			failure = err.Error()
			break
		}
		t, ok := s.lineSearch()
		if !ok {
			failure = fmt.Sprintf("line search found no decrease at iteration %d (gradient %.3g); the problem is badly scaled",
				m.Iterations+1, floats.Norm(s.g, math.Inf(1))/scale)
			break
		}
		var rel float64
		for j, v := range s.theta {
			rel = max(rel, math.Abs(t*s.step[j])/(1+math.Abs(v)))
		}
		next := make([]float64, len(s.theta))
		floats.AddScaledTo(next, s.theta, t, s.step)
		if !allFinite(next) {
			failure = "the weights overflowed; scale the features or raise lambda"
			break
		}
		nb := 0.0
		if !p.NoIntercept {
			nb = next[s.d]
		}
		s.eval(next[:s.d], nb)
		m.Iterations++
		if t == 1 && rel <= o.StepTol {
			m.Converged = true
			break
		}
	}
	m.Weights = append([]float64(nil), s.theta[:s.d]...)
	if !p.NoIntercept {
		m.Intercept = s.theta[s.d]
	}
	m.Objective = s.f
	m.GradNorm = floats.Norm(s.g, 2)
	if failure != "" {
		return m, &Error{Column: -1, Err: ErrNotConverged, Detail: failure}
	}
	if p.Lambda == 0 && s.separated() {
		m.Converged = false
		return m, &Error{Column: -1, Err: ErrSeparable,
			Detail: "every row is classified correctly, so a larger weight always fits better; set lambda > 0"}
	}
	return m, nil
}

func allFinite(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// solver holds the state of one Newton run: the parameters θ = (w, b) (b present unless
// NoIntercept), margins, objective, gradient, Hessian and step.
type solver struct {
	p     Problem
	r     rows
	d, m  int // features; free parameters (d or d+1)
	theta []float64
	z     []float64 // margins at theta
	f     float64   // objective at theta
	g     []float64 // gradient at theta (m)
	h     *mat.SymDense
	xs    *mat.Dense // n × m rows scaled by √(s_i p_i (1−p_i)), reused
	step  []float64  // Newton direction (m)
	xstep []float64  // X·step_w + step_b (n), reused by the line search
}

func newSolver(p Problem) *solver {
	r := p.rows()
	s := &solver{p: p, r: r, d: r.d, m: r.d}
	if !p.NoIntercept {
		s.m++
	}
	s.theta = make([]float64, s.m)
	s.z = make([]float64, r.n)
	s.g = make([]float64, s.m)
	s.step = make([]float64, s.m)
	return s
}

// eval moves to (w, b) and computes margins, objective and gradient.
func (s *solver) eval(w []float64, b float64) {
	copy(s.theta, w)
	if !s.p.NoIntercept {
		s.theta[s.d] = b
	}
	s.r.margins(s.z, w, b)
	s.f = s.p.objective(s.z, w)
	gb := s.p.gradient(s.r, s.z, w, s.g[:s.d])
	if !s.p.NoIntercept {
		s.g[s.d] = gb
	}
}

// gscale is max(1, ‖∇f(0, 0)‖∞), the scale of the gradient tolerance.
func (s *solver) gscale() float64 {
	g := make([]float64, s.d)
	var gb float64
	for i := range s.r.n {
		w := s.p.weight(i)
		if w == 0 {
			continue
		}
		res := w * (0.5 - s.p.Y[i])
		floats.AddScaled(g, res, s.r.row(i))
		gb += res
	}
	scale := max(1, floats.Norm(g, math.Inf(1)))
	if !s.p.NoIntercept {
		scale = max(scale, math.Abs(gb))
	}
	return scale
}

// hessian computes H = X̃ᵀ D X̃ + λ·I_w at the current margins, where X̃ is X with a column of ones
// for the intercept and D = diag(s_i·σ(z_i)·(1 − σ(z_i))).
func (s *solver) hessian() {
	if s.xs == nil {
		s.xs = mat.NewDense(s.r.n, s.m, nil)
		s.h = mat.NewSymDense(s.m, nil)
	}
	raw := s.xs.RawMatrix()
	for i, zi := range s.z {
		q := sigmoid(zi)
		c := math.Sqrt(s.p.weight(i) * q * (1 - q))
		dst := raw.Data[i*raw.Stride : i*raw.Stride+s.m]
		floats.ScaleTo(dst[:s.d], c, s.r.row(i))
		if !s.p.NoIntercept {
			dst[s.d] = c
		}
	}
	s.h.SymOuterK(1, s.xs.T())
	for j := range s.d {
		s.h.SetSym(j, j, s.h.At(j, j)+s.p.Lambda)
	}
}

// newtonStep solves H·step = −g. With damp set, a Hessian that is not numerically positive definite
// is regularised by μ·I with μ growing until Cholesky succeeds; without it the failure is returned.
func (s *solver) newtonStep(damp bool) error {
	var hmax float64
	for j := range s.m {
		hmax = max(hmax, s.h.At(j, j))
	}
	mu := 0.0
	a := mat.NewSymDense(s.m, nil)
	neg := mat.NewVecDense(s.m, nil)
	neg.ScaleVec(-1, mat.NewVecDense(s.m, s.g))
	dst := mat.NewVecDense(s.m, s.step)
	for try := 0; try < 16; try++ {
		a.CopySym(s.h)
		for j := range s.m {
			a.SetSym(j, j, a.At(j, j)+mu)
		}
		var ch mat.Cholesky
		if ch.Factorize(a) {
			if err := ch.SolveVecTo(dst, neg); err == nil && allFinite(s.step) {
				return nil
			}
		}
		if !damp {
			return fmt.Errorf("the Hessian is singular")
		}
		if mu == 0 {
			mu = 1e-10 * max(1, hmax)
		} else {
			mu *= 100
		}
	}
	return fmt.Errorf("the Hessian could not be made positive definite (largest diagonal %.3g)", hmax)
}

// lineSearch backtracks from a full step until the Armijo condition holds, allowing for rounding in
// the objective near the optimum. It returns the step length.
func (s *solver) lineSearch() (float64, bool) {
	if s.xstep == nil {
		s.xstep = make([]float64, s.r.n)
	}
	sb := 0.0
	if !s.p.NoIntercept {
		sb = s.step[s.d]
	}
	s.r.margins(s.xstep, s.step[:s.d], sb)
	slope := floats.Dot(s.g, s.step)
	if !(slope < 0) {
		return 0, slope == 0 // a zero step is a stationary point; anything else is numerical failure
	}
	slack := 1e-12 * math.Abs(s.f)
	w := s.theta[:s.d]
	ww, wd, dd := floats.Dot(w, w), floats.Dot(w, s.step[:s.d]), floats.Dot(s.step[:s.d], s.step[:s.d])
	t := 1.0
	for range maxHalvings {
		var f float64
		for i, zi := range s.z {
			if sw := s.p.weight(i); sw != 0 {
				z := zi + t*s.xstep[i]
				f += sw * (softplus(z) - s.p.Y[i]*z)
			}
		}
		f += s.p.Lambda / 2 * (ww + 2*t*wd + t*t*dd)
		if f <= s.f+armijo*t*slope+slack {
			return t, true
		}
		t /= 2
	}
	return 0, false
}

// separated reports whether every row with positive weight lies strictly on its label's side.
func (s *solver) separated() bool {
	for i, zi := range s.z {
		if s.p.weight(i) == 0 {
			continue
		}
		if (s.p.Y[i] == 1) != (zi > 0) {
			return false
		}
	}
	return true
}
