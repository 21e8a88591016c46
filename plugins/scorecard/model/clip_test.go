package model

import (
	"testing"

	"insitu/modeling/binning"
)

// TestClip bounds weights of evidence, coefficients and the intercept to the declared max_abs and
// counts what it changed.
func TestClip(t *testing.T) {
	f := &Fitted{
		Intercept: -31,
		Coef:      []float64{-0.5, -25},
		Bins: []*binning.Binning{
			{Edges: []float64{1}, Bins: []binning.Bin{{WoE: 22.5}, {WoE: -0.3}}, Missing: binning.Bin{WoE: -40}},
			{Edges: []float64{2}, Bins: []binning.Bin{{WoE: 0.1}, {WoE: 1.2}}, Missing: binning.Bin{WoE: 0}},
		},
	}
	if n := f.clip(20); n != 4 {
		t.Fatalf("clipped %d values, want 4", n)
	}
	if f.Intercept != -20 || f.Coef[1] != -20 || f.Coef[0] != -0.5 || f.Bins[0].Bins[0].WoE != 20 ||
		f.Bins[0].Missing.WoE != -20 || f.Bins[0].Bins[1].WoE != -0.3 || f.Bins[1].Bins[1].WoE != 1.2 {
		t.Fatalf("after clip: intercept %v coef %v bins %+v %+v", f.Intercept, f.Coef, f.Bins[0], f.Bins[1])
	}
	if n := f.clip(20); n != 0 {
		t.Fatalf("a second clip changed %d values", n)
	}
}
