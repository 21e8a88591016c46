package aggplan

import (
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
	e := QuantileEdges(countHist(), 16)
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
	e := QuantileEdges(sdk.FeatureHistogram{Edges: g, Counts: [][]float64{counts}}, 4)
	if len(e) < 3 {
		t.Fatalf("%d edges for 4 bins: %v", len(e), e)
	}
	if QuantileEdges(sdk.FeatureHistogram{Edges: g, Counts: [][]float64{make([]float64, len(g)+1)}}, 4) != nil {
		t.Fatal("edges from an empty histogram")
	}
}
