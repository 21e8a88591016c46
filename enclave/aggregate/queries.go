package aggregate

import (
	"context"
	"math"
	"math/big"

	"insitu/modeling/binning"
	"insitu/plugins/sdk"
)

// Bounds on the size of one answer, so that it fits the plugin protocol's messages.
const (
	// MaxCells bounds the cells of a histogram or grouped query answer.
	MaxCells = 1 << 16
	// MaxEdges bounds the edges of one binned column.
	MaxEdges = 4096
	// MaxMomentFeatures bounds the features of a moments or GLM query.
	MaxMomentFeatures = 256
)

// Fixed-point grids. A value bounded by B is summed as the integer round(x·2^s) with s chosen so
// that B·2^s lies in (2^(gridBits−1), 2^gridBits]: a resolution of at least 2^−gridBits of the bound,
// far below the noise, with exact integer sums.
const gridBits = 16

// Histogram answers a HistogramQuery.
func (s *Service) Histogram(ctx context.Context, q sdk.HistogramQuery) (*sdk.HistogramAnswer, error) {
	const name = "histogram"
	if err := checkRho(name, q.Rho); err != nil {
		return nil, err
	}
	if len(q.Features) == 0 {
		return nil, qerr(name, "features", "no feature to histogram")
	}
	labels := 1
	if q.ByLabel {
		labels = 2
	}
	cols := make([]int, len(q.Features))
	shift := make([]int, len(q.Features))
	sens := make([]int64, len(q.Features))
	cells := 0
	seen := map[string]bool{}
	for f, b := range q.Features {
		j, err := s.feature(name, b.Column)
		if err != nil {
			return nil, err
		}
		if seen[b.Column] {
			return nil, qerr(name, b.Column, "the feature is listed twice")
		}
		seen[b.Column] = true
		if err := checkEdges(name, b.Column, b.Edges, MaxEdges); err != nil {
			return nil, err
		}
		if cells += labels * (len(b.Edges) + 2); cells > MaxCells {
			return nil, qerr(name, "features", "more than %d cells in one answer: split the query", MaxCells)
		}
		cols[f] = j
		if q.Sums {
			bd, err := s.bound(name, j)
			if err != nil {
				return nil, err
			}
			shift[f] = gridShift(bd, gridBits)
			sens[f] = int64(math.Ceil(math.Ldexp(bd, shift[f])))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	spent, err := s.spend(ctx, name, q.Rho)
	if err != nil {
		return nil, err
	}
	c := &s.cfg.Cohort
	ans := &sdk.HistogramAnswer{Spent: spent}
	rhoCounts := q.Rho
	if q.Sums {
		rhoCounts = q.Rho / 2
	}
	vc := VarianceFor(big.NewInt(int64(len(q.Features))), rhoCounts)
	for f, b := range q.Features {
		nb := len(b.Edges) + 2
		counts := make([][]int64, labels)
		sums := make([][]int64, labels)
		for l := range labels {
			counts[l], sums[l] = make([]int64, nb), make([]int64, nb)
		}
		x := c.X[cols[f]]
		for i, v := range x {
			l := 0
			if q.ByLabel {
				l = int(c.Y[i])
			}
			bin := binning.BinIndex(b.Edges, v)
			counts[l][bin]++
			if q.Sums && !math.IsNaN(v) {
				sums[l][bin] += int64(math.Round(math.Ldexp(s.clip(cols[f], v), shift[f])))
			}
		}
		h := sdk.FeatureHistogram{Column: b.Column, Edges: append([]float64(nil), b.Edges...)}
		var vs Variance
		if q.Sums {
			vs = VarianceFor(sqInt(sens[f]), q.Rho/2/float64(len(q.Features)))
		}
		for l := range labels {
			cr, sup := make([]float64, nb), make([]bool, nb)
			var sr []float64
			if q.Sums {
				sr = make([]float64, nb)
			}
			for k := range nb {
				n := s.noisy(counts[l][k], vc, 0)
				if n < float64(s.minCount) {
					sup[k] = true
					continue
				}
				cr[k] = n
				if q.Sums {
					sr[k] = s.noisy(sums[l][k], vs, shift[f])
				}
			}
			h.Counts, h.Suppressed = append(h.Counts, cr), append(h.Suppressed, sup)
			if q.Sums {
				h.Sums = append(h.Sums, sr)
			}
		}
		s.noteEdges(b.Column, b.Edges)
		ans.Features = append(ans.Features, h)
	}
	return ans, nil
}

// rows resolves the features of a moments or GLM query (all features when names is empty) and
// its clipping norm.
func (s *Service) linearSetup(query string, names []string, clipNorm float64) ([]int, []string, float64, error) {
	if len(names) == 0 {
		names = s.cfg.Cohort.Features
	}
	if len(names) > MaxMomentFeatures {
		return nil, nil, 0, qerr(query, "features", "%d features, at most %d", len(names), MaxMomentFeatures)
	}
	cols := make([]int, len(names))
	seen := map[string]bool{}
	for k, n := range names {
		j, err := s.feature(query, n)
		if err != nil {
			return nil, nil, 0, err
		}
		if seen[n] {
			return nil, nil, 0, qerr(query, n, "the feature is listed twice")
		}
		seen[n] = true
		cols[k] = j
	}
	if clipNorm < 0 || math.IsNaN(clipNorm) || math.IsInf(clipNorm, 0) || clipNorm > 1e12 {
		return nil, nil, 0, qerr(query, "clip_norm", "%v must be 0 (the bound from the transforms) or a positive finite number", clipNorm)
	}
	if clipNorm == 0 {
		ss := 1.0
		for _, j := range cols {
			b, err := s.bound(query, j)
			if err != nil {
				return nil, nil, 0, err
			}
			ss += b * b
		}
		clipNorm = math.Sqrt(ss)
	}
	return cols, append([]string(nil), names...), clipNorm, nil
}

// row fills v with row i's (1, x_1, …, x_d), features clipped to their bounds (missing as 0), and
// returns its norm.
func (s *Service) row(v []float64, cols []int, i int) float64 {
	v[0] = 1
	ss := 1.0
	for k, j := range cols {
		x := s.cfg.Cohort.X[j][i]
		if math.IsNaN(x) {
			x = 0
		}
		x = s.clip(j, x)
		v[k+1] = x
		ss += x * x
	}
	return math.Sqrt(ss)
}

// roundClip sets dst to round(v·scale), shrinking the scale until ‖dst‖² ≤ limit. v must have
// norm at most √limit/scale (up to floating-point rounding); the result is then within one grid
// step of v·scale per entry, and its squared norm is at most limit, always.
func roundClip(dst []int64, v []float64, scale float64, limit int64) {
	f := scale
	for range 8 {
		var n2 int64
		for j, x := range v {
			dst[j] = int64(math.Round(x * f))
			n2 += dst[j] * dst[j]
		}
		if n2 <= limit {
			return
		}
		f *= 1 - 1.0/(1<<12)
	}
	for { // truncation toward zero never grows an entry
		var n2 int64
		f *= 0.999
		for j, x := range v {
			dst[j] = int64(x * f)
			n2 += dst[j] * dst[j]
		}
		if n2 <= limit {
			return
		}
	}
}

// addOuter adds the upper triangle of u·uᵀ to m (row-major, d×d).
func addOuter(m []int64, u []int64) {
	d := len(u)
	for a := range d {
		if u[a] == 0 {
			continue
		}
		row := m[a*d:]
		for b := a; b < d; b++ {
			row[b] += u[a] * u[b]
		}
	}
}

// noisySymmetric noises the upper triangle of the d×d integer matrix m, mirrors it and scales it
// back by 2^−shift.
func (s *Service) noisySymmetric(m []int64, d int, v Variance, shift int) [][]float64 {
	out := make([][]float64, d)
	for a := range out {
		out[a] = make([]float64, d)
	}
	for a := range d {
		for b := a; b < d; b++ {
			x := s.noisy(m[a*d+b], v, shift)
			out[a][b], out[b][a] = x, x
		}
	}
	return out
}

// Moments answers a MomentsQuery.
func (s *Service) Moments(ctx context.Context, q sdk.MomentsQuery) (*sdk.MomentsAnswer, error) {
	const name = "moments"
	if err := checkRho(name, q.Rho); err != nil {
		return nil, err
	}
	cols, names, cn, err := s.linearSetup(name, q.Features, q.ClipNorm)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	spent, err := s.spend(ctx, name, q.Rho)
	if err != nil {
		return nil, err
	}
	d := len(cols) + 1
	sh := gridShift(cn, gridBits)
	scale := math.Ldexp(1, sh)
	limit := int64(math.Floor(math.Ldexp(cn*cn, 2*sh))) // ‖ũ‖² ≤ limit ≤ 2^32
	xtx, xty := make([]int64, d*d), make([]int64, d)
	v, u := make([]float64, d), make([]int64, d)
	for i := range s.n {
		norm := s.row(v, cols, i)
		if norm > cn {
			for k := range v {
				v[k] *= cn / norm
			}
		}
		roundClip(u, v, scale, limit)
		addOuter(xtx, u)
		if s.cfg.Cohort.Y[i] == 1 {
			for k := range u {
				xty[k] += u[k]
			}
		}
	}
	ans := &sdk.MomentsAnswer{Features: names, Spent: spent}
	// One row changes the upper triangle of XᵀX by ‖ũũᵀ‖_F = ‖ũ‖² ≤ limit and Xᵀy by ‖ũ‖ ≤ √limit.
	l := big.NewInt(limit)
	vxx := VarianceFor(new(big.Int).Mul(l, l), q.Rho/2)
	vxy := VarianceFor(l, q.Rho/2)
	m := s.noisySymmetric(xtx, d, vxx, 2*sh)
	if m[0][0] < float64(s.minCount) {
		ans.Suppressed = true
		return ans, nil
	}
	ans.XtX = m
	ans.Xty = make([]float64, d)
	for k := range xty {
		ans.Xty[k] = s.noisy(xty[k], vxy, sh)
	}
	return ans, nil
}

// GLM answers a GLMQuery.
func (s *Service) GLM(ctx context.Context, q sdk.GLMQuery) (*sdk.GLMAnswer, error) {
	const name = "glm"
	if err := checkRho(name, q.Rho); err != nil {
		return nil, err
	}
	cols, names, cn, err := s.linearSetup(name, q.Features, q.ClipNorm)
	if err != nil {
		return nil, err
	}
	if len(q.Weights) != len(cols) {
		return nil, qerr(name, "weights", "%d weights for %d features", len(q.Weights), len(cols))
	}
	for k, w := range append([]float64{q.Intercept}, q.Weights...) {
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, qerr(name, "weights", "weight %d is not a finite number", k)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	spent, err := s.spend(ctx, name, q.Rho)
	if err != nil {
		return nil, err
	}
	d := len(cols) + 1
	sh := gridShift(cn, gridBits)
	scale := math.Ldexp(1, sh)
	limitG := int64(math.Floor(math.Ldexp(cn*cn, 2*sh)))   // ‖(p−y)·ũ‖² ≤ C²·4^s
	limitH := int64(math.Floor(math.Ldexp(cn*cn, 2*sh-2))) // ‖√(p(1−p))·ũ‖² ≤ C²·4^s/4
	grad, hess := make([]int64, d), make([]int64, d*d)
	v, gv, u := make([]float64, d), make([]float64, d), make([]int64, d)
	for i := range s.n {
		norm := s.row(v, cols, i)
		z := q.Intercept
		for k, w := range q.Weights {
			z += w * v[k+1]
		}
		p := 1 / (1 + math.Exp(-z))
		if norm > cn {
			for k := range v {
				v[k] *= cn / norm
			}
		}
		r := p - s.cfg.Cohort.Y[i]
		for k := range v {
			gv[k] = r * v[k]
		}
		roundClip(u, gv, scale, limitG)
		for k := range u {
			grad[k] += u[k]
		}
		if q.Hessian {
			w := math.Sqrt(p * (1 - p))
			for k := range v {
				gv[k] = w * v[k]
			}
			roundClip(u, gv, scale, limitH)
			addOuter(hess, u)
		}
	}
	rhoG := q.Rho
	if q.Hessian {
		rhoG = q.Rho / 2
	}
	ans := &sdk.GLMAnswer{Features: names, Gradient: make([]float64, d), Spent: spent}
	vg := VarianceFor(big.NewInt(limitG), rhoG)
	for k := range grad {
		ans.Gradient[k] = s.noisy(grad[k], vg, sh)
	}
	if q.Hessian {
		l := big.NewInt(limitH)
		ans.Hessian = s.noisySymmetric(hess, d, VarianceFor(l.Mul(l, l), q.Rho/2), 2*sh)
	}
	return ans, nil
}
