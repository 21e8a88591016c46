package sdk

import (
	"math"
	"testing"
)

func TestRhoToEpsilon(t *testing.T) {
	const delta = 1e-6
	l := math.Log(1 / delta)
	prev := 0.0
	for _, rho := range []float64{1e-4, 1e-3, 0.01, 0.0676, 0.1, 0.5, 1, 2, 5} {
		eps := RhoToEpsilon(rho, delta)
		std := rho + 2*math.Sqrt(rho*l)
		if !(eps <= std) || eps < rho || eps <= prev {
			t.Fatalf("ρ=%v: ε=%v, standard bound %v, previous %v: want ρ ≤ ε ≤ standard and increasing", rho, eps, std, prev)
		}
		if rho >= 0.01 && eps > 0.97*std {
			t.Fatalf("ρ=%v: ε=%v is not tighter than the standard bound %v", rho, eps, std)
		}
		prev = eps
		back := EpsilonToRho(eps, delta)
		if math.Abs(back-rho) > 1e-9*rho {
			t.Fatalf("EpsilonToRho(RhoToEpsilon(%v)) = %v", rho, back)
		}
	}
	if RhoToEpsilon(0, delta) != 0 || !math.IsNaN(RhoToEpsilon(-1, delta)) || !math.IsNaN(RhoToEpsilon(1, 0)) || EpsilonToRho(0, delta) != 0 {
		t.Fatal("edge cases")
	}
	// ε = 2 at δ = 1e-6 gives ρ ≈ 0.0676 under the standard bound; the tighter conversion allows more.
	if r := EpsilonToRho(2, delta); r < 0.0676 || r > 0.12 {
		t.Fatalf("EpsilonToRho(2, 1e-6) = %v", r)
	}
}
