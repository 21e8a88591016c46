// Package logreg fits L2-regularised logistic regression by Newton's method (iteratively reweighted
// least squares) and measures how near given weights are to the optimum. It is insitu's plaintext
// reference model: the encrypted model and the output gate are measured against it.
//
// Call Fit with a Problem; it returns a *Model whose PredictProba scores new rows. To check released
// weights against the declared objective, call (Problem).Check, which reports the objective value,
// the gradient (the KKT residual of this unconstrained problem) and the Newton decrement.
//
// The objective, for rows x_i with labels y_i ∈ {0, 1} and sample weights s_i (1 by default), is
//
//	f(w, b) = Σ_i s_i·[log(1 + exp(z_i)) − y_i·z_i] + (λ/2)·‖w‖²,   z_i = w·x_i + b,
//
// that is, the weighted log-loss plus an L2 penalty that leaves the intercept b free. This is
// scikit-learn's LogisticRegression(penalty="l2", C=1/λ) objective, so with the same data the same
// optimum comes out. With λ > 0 the optimum is finite even on linearly separable data; with λ = 0 and
// separable data there is no optimum and Fit returns ErrSeparable.
//
// Data-dependent problems (NaN or infinite features, labels other than 0 and 1, negative weights, a
// single class, no convergence) are returned as *Error values wrapping the sentinel errors below.
// Shape mismatches (labels, weights or names not matching the rows and columns of X) are programmer
// errors and panic.
package logreg

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Sentinel errors, wrapped by *Error.
var (
	// ErrNotFinite: a feature, weight vector or intercept holds NaN or ±Inf.
	ErrNotFinite = errors.New("value is NaN or infinite")
	// ErrLabel: a label is not exactly 0 or 1.
	ErrLabel = errors.New("label is not 0 or 1")
	// ErrSampleWeight: a sample weight is negative, NaN or infinite, or all weights are 0.
	ErrSampleWeight = errors.New("invalid sample weight")
	// ErrOneClass: every row with a positive weight has the same label.
	ErrOneClass = errors.New("labels hold only one class: need both 0 and 1")
	// ErrLambda: the penalty λ is negative, NaN or infinite.
	ErrLambda = errors.New("lambda must be finite and >= 0")
	// ErrEmpty: X has no rows.
	ErrEmpty = errors.New("no rows")
	// ErrNotConverged: Newton's method stopped before meeting the tolerance.
	ErrNotConverged = errors.New("did not converge")
	// ErrSeparable: with λ = 0 the classes are linearly separable, so the weights grow without bound.
	ErrSeparable = errors.New("classes are linearly separable and lambda is 0: no finite optimum")
)

// Error describes a failure of Fit or Check and where it comes from.
type Error struct {
	Row     int    // 1-based row of X (row 1 is the first), or 0 when no single row is to blame
	Column  int    // 0-based column of X, or -1 when no single column is to blame
	Feature string // name of Column when the Problem names its features
	Detail  string // what was found and what to do
	Err     error  // one of the sentinel errors
}

func (e *Error) Error() string {
	s := "logreg: "
	if e.Row > 0 {
		s += fmt.Sprintf("row %d: ", e.Row)
	}
	if e.Column >= 0 {
		if e.Feature != "" {
			s += fmt.Sprintf("feature %q (column %d): ", e.Feature, e.Column)
		} else {
			s += fmt.Sprintf("column %d: ", e.Column)
		}
	}
	s += e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// Problem is one L2-regularised logistic regression: data, labels, weights and penalty.
type Problem struct {
	// X holds one row per sample and one column per feature (n × d).
	X mat.Matrix
	// Y holds n labels, each exactly 0 or 1.
	Y []float64
	// SampleWeight holds n finite weights >= 0; nil weighs every row 1.
	SampleWeight []float64
	// Lambda is the L2 penalty λ >= 0 on the weights (never on the intercept): scikit-learn's C = 1/λ.
	Lambda float64
	// NoIntercept fixes the intercept at 0.
	NoIntercept bool
	// FeatureNames optionally names the d columns of X; errors and the fitted Model use them.
	FeatureNames []string
}

// dense returns the rows of X as one strided row-major view without copying when X is a *mat.Dense.
type rows struct {
	n, d, stride int
	data         []float64
}

func (r rows) row(i int) []float64 { return r.data[i*r.stride : i*r.stride+r.d] }

func (p Problem) rows() rows {
	d, ok := p.X.(*mat.Dense)
	if !ok {
		d = mat.DenseCopyOf(p.X)
	}
	if d.IsEmpty() {
		return rows{}
	}
	raw := d.RawMatrix()
	return rows{n: raw.Rows, d: raw.Cols, stride: raw.Stride, data: raw.Data}
}

// dims returns n and d, panicking on shape mismatches between X and the other fields.
func (p Problem) dims() (n, d int) {
	if p.X == nil {
		panic("logreg: Problem.X is nil")
	}
	n, d = p.X.Dims()
	if len(p.Y) != n {
		panic(fmt.Sprintf("logreg: X has %d rows but Y has %d labels", n, len(p.Y)))
	}
	if p.SampleWeight != nil && len(p.SampleWeight) != n {
		panic(fmt.Sprintf("logreg: X has %d rows but SampleWeight has %d values", n, len(p.SampleWeight)))
	}
	if p.FeatureNames != nil && len(p.FeatureNames) != d {
		panic(fmt.Sprintf("logreg: X has %d columns but FeatureNames has %d names", d, len(p.FeatureNames)))
	}
	return n, d
}

func (p Problem) weight(i int) float64 {
	if p.SampleWeight == nil {
		return 1
	}
	return p.SampleWeight[i]
}

func (p Problem) feature(j int) string {
	if p.FeatureNames == nil {
		return ""
	}
	return p.FeatureNames[j]
}

// Validate checks the data: finite features, 0/1 labels, valid weights, both classes present with
// positive weight, and a valid λ. It panics on shape mismatches.
func (p Problem) Validate() error {
	n, _ := p.dims()
	if n == 0 {
		return &Error{Column: -1, Err: ErrEmpty}
	}
	if math.IsNaN(p.Lambda) || math.IsInf(p.Lambda, 0) || p.Lambda < 0 {
		return &Error{Column: -1, Err: ErrLambda, Detail: fmt.Sprintf("got %v", p.Lambda)}
	}
	r := p.rows()
	var wpos, wneg float64
	for i := range n {
		for j, v := range r.row(i) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return &Error{Row: i + 1, Column: j, Feature: p.feature(j), Err: ErrNotFinite,
					Detail: fmt.Sprintf("got %v; impute or drop missing values before fitting", v)}
			}
		}
		s := p.weight(i)
		if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
			return &Error{Row: i + 1, Column: -1, Err: ErrSampleWeight, Detail: fmt.Sprintf("got %v; weights must be finite and >= 0", s)}
		}
		switch p.Y[i] {
		case 1:
			wpos += s
		case 0:
			wneg += s
		default:
			return &Error{Row: i + 1, Column: -1, Err: ErrLabel, Detail: fmt.Sprintf("got %v", p.Y[i])}
		}
	}
	if wpos+wneg == 0 {
		return &Error{Column: -1, Err: ErrSampleWeight, Detail: "all sample weights are 0"}
	}
	if wpos == 0 || wneg == 0 {
		return &Error{Column: -1, Err: ErrOneClass}
	}
	return nil
}

// softplus returns log(1 + exp(z)) without overflow.
func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

// sigmoid returns 1 / (1 + exp(−z)) without overflow.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// margins returns z = Xw + b into z.
func (r rows) margins(z, w []float64, b float64) {
	for i := range r.n {
		z[i] = floats.Dot(r.row(i), w) + b
	}
}

// objective evaluates f from precomputed margins.
func (p Problem) objective(z, w []float64) float64 {
	var f float64
	for i, zi := range z {
		if s := p.weight(i); s != 0 {
			f += s * (softplus(zi) - p.Y[i]*zi)
		}
	}
	return f + p.Lambda/2*floats.Dot(w, w)
}

// gradient writes ∇_w f into gw and returns ∂f/∂b, from precomputed margins.
func (p Problem) gradient(r rows, z, w, gw []float64) (gb float64) {
	for j := range gw {
		gw[j] = p.Lambda * w[j]
	}
	for i, zi := range z {
		s := p.weight(i)
		if s == 0 {
			continue
		}
		res := s * (sigmoid(zi) - p.Y[i])
		floats.AddScaled(gw, res, r.row(i))
		gb += res
	}
	return gb
}

func (p Problem) checkPoint(w []float64, b float64) {
	if _, d := p.dims(); len(w) != d {
		panic(fmt.Sprintf("logreg: X has %d columns but %d weights were given", d, len(w)))
	}
}

// Objective returns f(w, b). It panics on shape mismatches; run Validate first to rule out NaN
// results from invalid data.
func (p Problem) Objective(w []float64, b float64) float64 {
	p.checkPoint(w, b)
	if p.NoIntercept {
		b = 0
	}
	r := p.rows()
	z := make([]float64, r.n)
	r.margins(z, w, b)
	return p.objective(z, w)
}

// Gradient returns ∇f at (w, b): the gradient in w and the partial derivative in b (reported even
// when NoIntercept is set, where it is not part of the optimality conditions).
func (p Problem) Gradient(w []float64, b float64) (gw []float64, gb float64) {
	p.checkPoint(w, b)
	if p.NoIntercept {
		b = 0
	}
	r := p.rows()
	z := make([]float64, r.n)
	r.margins(z, w, b)
	gw = make([]float64, len(w))
	gb = p.gradient(r, z, w, gw)
	return gw, gb
}

// Objective returns f(w, b) for unweighted rows X with labels y and penalty λ, intercept included.
func Objective(X mat.Matrix, y, w []float64, b, lambda float64) float64 {
	return Problem{X: X, Y: y, Lambda: lambda}.Objective(w, b)
}

// Gradient returns ∇f(w, b) for unweighted rows X with labels y and penalty λ, intercept included.
func Gradient(X mat.Matrix, y, w []float64, b, lambda float64) (gw []float64, gb float64) {
	return Problem{X: X, Y: y, Lambda: lambda}.Gradient(w, b)
}

// Optimality describes how near a point (w, b) is to the optimum of a Problem. At the optimum the
// gradient is zero (the KKT conditions of this unconstrained, strictly convex problem when λ > 0).
type Optimality struct {
	// Objective is f(w, b).
	Objective float64 `json:"objective"`
	// GradNorm is the KKT residual ‖∇f(w, b)‖₂ over the free parameters (b excluded under NoIntercept).
	GradNorm float64 `json:"grad_norm"`
	// GradMax is ‖∇f(w, b)‖∞ over the free parameters.
	GradMax float64 `json:"grad_max"`
	// RelGrad is GradMax / max(1, ‖∇f(0, 0)‖∞): the scale-free figure Options.GradTol bounds.
	RelGrad float64 `json:"rel_grad"`
	// NewtonDecrement is √(gᵀH⁻¹g) with H the Hessian at (w, b). Near the optimum f(w, b) − f* ≈
	// NewtonDecrement²/2, in the objective's units and invariant to rescaling the features. It is
	// +Inf when the Hessian is singular (possible only with λ = 0).
	NewtonDecrement float64 `json:"newton_decrement"`
}

// Check validates the data and reports how near (w, b) is to the optimum. It returns an error
// wrapping ErrNotFinite when w or b is not finite.
func (p Problem) Check(w []float64, b float64) (Optimality, error) {
	p.checkPoint(w, b)
	if err := p.Validate(); err != nil {
		return Optimality{}, err
	}
	for j, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Optimality{}, &Error{Column: j, Feature: p.feature(j), Err: ErrNotFinite, Detail: "in the weights"}
		}
	}
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return Optimality{}, &Error{Column: -1, Err: ErrNotFinite, Detail: "in the intercept"}
	}
	if p.NoIntercept {
		b = 0
	}
	s := newSolver(p)
	s.eval(w, b)
	s.hessian()
	o := Optimality{Objective: s.f, GradNorm: floats.Norm(s.g, 2), GradMax: floats.Norm(s.g, math.Inf(1))}
	o.RelGrad = o.GradMax / s.gscale()
	if err := s.newtonStep(false); err != nil {
		o.NewtonDecrement = math.Inf(1)
	} else {
		o.NewtonDecrement = math.Sqrt(max(0, -floats.Dot(s.g, s.step)))
	}
	return o, nil
}
