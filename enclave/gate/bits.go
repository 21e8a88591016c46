package gate

import "math"

// PublicRadius returns a radius that bounds ρ·max(‖θ*‖₂, floor) — the distance the check allows
// between the released parameters θ̂ and the optimum θ* — computed from θ̂ alone: since
// ‖θ*‖ ≤ ‖θ̂‖ + r and r = ρ‖θ*‖ when ‖θ*‖ ≥ floor, r ≤ ρ‖θ̂‖/(1−ρ); otherwise r = ρ·floor.
// So the radius, and the BitsBound built on it, can be recomputed by whoever holds the released
// weights, and tells nothing the weights do not. It panics unless 0 < ρ < 1 (programmer error).
func PublicRadius(theta []float64, rho, floor float64) float64 {
	if !(rho > 0 && rho < 1) {
		panic("gate: PublicRadius needs 0 < rho < 1")
	}
	var n2 float64
	for _, v := range theta {
		n2 += v * v
	}
	return rho * math.Max(math.Sqrt(n2)/(1-rho), floor)
}

// BitsBound returns the worst-case number of bits a plugin can hide in d released parameters: log2 of
// the number of distinct vectors the gate can release. Every released parameter is a multiple of
// step in [−maxAbs, maxAbs], and (when radius > 0) the released vector lies within radius of the
// optimum θ* in Euclidean norm. A plugin that knows θ* can choose any of those grid points, and no
// other; whatever it encodes, its receiver can tell at most that many vectors apart.
//
// The count N is bounded two ways and the smaller is taken:
//
//   - coordinate-wise: each coordinate is a multiple of step in an interval of length 2·radius,
//     so at most ⌊2·radius/step⌋ + 1 values, and at most 2⌊maxAbs/step⌋ + 1 within ±maxAbs:
//     N ≤ min(⌊2r/q⌋ + 1, 2⌊M/q⌋ + 1)^d;
//   - by volume: the cubes of side q centred on the accepted grid points are disjoint and lie in the
//     ball of radius r + q√d/2 around θ*, so N ≤ V_d·(r + q√d/2)^d / q^d, with
//     V_d = π^(d/2)/Γ(d/2 + 1) the volume of the unit ball.
//
// With radius 0 (a waived verification) only the max_abs box counts. The result is rounded up to
// 1/100 of a bit. It panics on d < 1 or a non-positive step or maxAbs (programmer error).
func BitsBound(d int, radius, step, maxAbs float64) float64 {
	if d < 1 || !(step > 0) || !(maxAbs > 0) || radius < 0 {
		panic("gate: BitsBound needs d >= 1, step > 0, maxAbs > 0 and radius >= 0")
	}
	fd := float64(d)
	perBox := 2*math.Floor(maxAbs/step+1e-9) + 1
	bits := fd * math.Log2(perBox)
	if radius > 0 {
		perCoord := math.Min(math.Floor(2*radius/step+1e-9)+1, perBox)
		bits = math.Min(bits, fd*math.Log2(perCoord))
		lgam, _ := math.Lgamma(fd/2 + 1)
		logVd := fd/2*math.Log(math.Pi) - lgam
		ball := (logVd + fd*math.Log((radius+step*math.Sqrt(fd)/2)/step)) / math.Ln2
		bits = math.Min(bits, ball)
	}
	if bits < 0 {
		bits = 0
	}
	return math.Ceil(bits*100) / 100
}
