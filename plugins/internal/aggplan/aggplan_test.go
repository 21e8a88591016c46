package aggplan

import (
	"math"
	"slices"
	"testing"

	"insitu/plugins/sdk"
)

// countHist is a histogram over Grid of a count feature: 9000 rows at 0, 600 at 1, 250 at 2 and 250
// at 5.
func countHist() sdk.FeatureHistogram {
	g := Grid()
	counts := make([]float64, len(g)+2)
	add := func(x, n float64) {
		i, _ := slices.BinarySearch(g, x) // x <= g[i]: bin i
		counts[i] += n
	}
	add(0, 9000)
	add(1, 600)
	add(2, 250)
	add(5, 250)
	return sdk.FeatureHistogram{Column: "late", Edges: g, Counts: [][]float64{counts}}
}

func TestQuantileEdgesKeepsTheTail(t *testing.T) {
	e := QuantileEdges(countHist(), 16, 0)
	bin := func(x float64) int { i, _ := slices.BinarySearch(e, x); return i }
	// 0, 1, 2 and 5 each fall in a bin of their own: the heavy 0 does not swallow the tail.
	seen := map[int]float64{}
	for _, x := range []float64{0, 1, 2, 5} {
		if y, ok := seen[bin(x)]; ok {
			t.Fatalf("edges %v put %v and %v in one bin", e, x, y)
		}
		seen[bin(x)] = x
	}
	if !slices.IsSorted(e) || len(e) > 2*16 {
		t.Fatalf("edges %v", e)
	}
}

func TestQuantileEdgesEqualFrequency(t *testing.T) {
	// Uniform mass over the grid cells: the edges split it into bins of about equal counts.
	g := Grid()
	counts := make([]float64, len(g)+1)
	for i := range counts {
		counts[i] = 100
	}
	e := QuantileEdges(sdk.FeatureHistogram{Edges: g, Counts: [][]float64{counts}}, 4, 0)
	if len(e) < 3 {
		t.Fatalf("%d edges for 4 bins: %v", len(e), e)
	}
	if QuantileEdges(sdk.FeatureHistogram{Edges: g, Counts: [][]float64{make([]float64, len(g)+1)}}, 4, 0) != nil {
		t.Fatal("edges from an empty histogram")
	}
}

func TestRound(t *testing.T) {
	for _, c := range []struct{ x, lo, hi, tol, want float64 }{
		{2.13, 1.78, 2.37, 0.2, 2},
		{0.4537, 0.42, 0.56, 0.02, 0.45},
		{15120, 13335, 17782, 300, 15000},
		{-0.0074, -0.01, 0, 0.008, 0},
		{1.23456, 1.2, 1.3, 0.0001, 1.2346},
		{5, 5, 5, 1, 5},
	} {
		if got := Round(c.x, c.lo, c.hi, c.tol); math.Abs(got-c.want) > 1e-9*math.Max(1, math.Abs(c.want)) {
			t.Errorf("Round(%v, (%v, %v], %v) = %v, want %v", c.x, c.lo, c.hi, c.tol, got, c.want)
		}
	}
}

func TestQuantileEdgesIgnoreNoise(t *testing.T) {
	// Noise of σ = 5 on every empty cell of the count histogram: it makes no edge.
	h := countHist()
	for j := range h.Counts[0] {
		if h.Counts[0][j] == 0 {
			h.Counts[0][j] = float64(5 * (j%3 - 1))
		}
	}
	e := QuantileEdges(h, 16, 5)
	if !slices.Contains(e, 0) || !slices.Contains(e, 1) || len(e) > 6 {
		t.Fatalf("edges %v: want 0, 1 and a few tail edges, none of noise", e)
	}
}
