package sdk

import "math"

// The conversion between zero-concentrated differential privacy (ρ-zCDP, Bun and Steinke 2016) and
// (ε, δ)-differential privacy that the enclave's accountant uses. Aggregate answers spend ρ, which
// composes by addition; budgets are stated as ε at a fixed δ.

// RhoToEpsilon returns the ε for which a ρ-zCDP mechanism is (ε, δ)-DP: the smaller of the standard
// bound ρ + 2√(ρ·ln(1/δ)) and the tighter bound of Canonne, Kamath and Steinke (2020, Corollary 13),
//
//	ε = min over α > 1 of  αρ + (ln(1/δ) + α·ln(1 − 1/α) − ln(α − 1)) / (α − 1),
//
// minimised numerically. It returns 0 for ρ = 0, +Inf for ρ = +Inf, and NaN for ρ < 0 or δ outside
// (0, 1).
func RhoToEpsilon(rho, delta float64) float64 {
	switch {
	case math.IsNaN(rho) || rho < 0 || !(delta > 0 && delta < 1):
		return math.NaN()
	case rho == 0:
		return 0
	case math.IsInf(rho, 1):
		return math.Inf(1)
	}
	l := math.Log(1 / delta)
	best := rho + 2*math.Sqrt(rho*l)
	f := func(a float64) float64 {
		return a*rho + (l+a*math.Log1p(-1/a)-math.Log(a-1))/(a-1)
	}
	// The objective is smooth in log(α − 1); a grid then a golden-section refinement around the best
	// grid point finds its minimum to well below the precision budgets are stated in.
	const lo, hi, steps = -12.0, 14.0, 520
	bi, bv := 0, math.Inf(1)
	for i := 0; i <= steps; i++ {
		if v := f(1 + math.Exp(lo+(hi-lo)*float64(i)/steps)); v < bv {
			bi, bv = i, v
		}
	}
	a, b := lo+(hi-lo)*float64(max(bi-1, 0))/steps, lo+(hi-lo)*float64(min(bi+1, steps))/steps
	g := func(u float64) float64 { return f(1 + math.Exp(u)) }
	const phi = 0.6180339887498949
	c, d := b-phi*(b-a), a+phi*(b-a)
	for range 80 {
		if g(c) < g(d) {
			b = d
		} else {
			a = c
		}
		c, d = b-phi*(b-a), a+phi*(b-a)
	}
	if v := g((a + b) / 2); v < bv {
		bv = v
	}
	if bv < best {
		best = bv
	}
	return best
}

// EpsilonToRho returns the largest ρ (to a relative precision of 1e-12) with RhoToEpsilon(ρ, δ) ≤
// ε: the zCDP budget of an (ε, δ) budget. It returns 0 for ε ≤ 0 and NaN for δ outside (0, 1).
func EpsilonToRho(eps, delta float64) float64 {
	switch {
	case !(delta > 0 && delta < 1) || math.IsNaN(eps):
		return math.NaN()
	case eps <= 0:
		return 0
	case math.IsInf(eps, 1):
		return math.Inf(1)
	}
	lo, hi := 0.0, eps // ε(ρ) ≥ ρ, so ρ ≤ ε
	for range 200 {
		mid := (lo + hi) / 2
		if RhoToEpsilon(mid, delta) <= eps {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo <= 1e-12*hi {
			break
		}
	}
	return lo
}
