// Package aggplan holds what the aggregate-mode reference plugins share: choosing fine bin edges
// without seeing a row, from one noisy histogram over a fixed grid.
//
// Call Grid for the fixed edges, then QuantileEdges to turn a noisy histogram over them into edges of
// about equal frequency.
package aggplan

import (
	"context"
	"math"
	"slices"

	"insitu/plugins/sdk"
)

// Grid returns the fixed edges the first histogram of every feature is taken over: 0 and ±10^(k/8)
// for k = −16 … 47, a symmetric logarithmic grid from 0.01 to about 10⁶ with eight edges per decade
// (129 edges). It does not depend on the data.
func Grid() []float64 {
	var pos []float64
	for k := -16; k <= 47; k++ {
		pos = append(pos, math.Pow(10, float64(k)/8))
	}
	out := make([]float64, 0, 2*len(pos)+1)
	for i := len(pos) - 1; i >= 0; i-- {
		out = append(out, -pos[i])
	}
	out = append(out, 0)
	return append(out, pos...)
}

// QuantileEdges returns at most bins−1 edges splitting the counts of h (one label row or two, added;
// negative noisy counts count as 0) into bins of about equal frequency, each edge interpolated
// linearly inside the grid cell where its quantile falls. Where one heavy cell (a value most rows
// share, such as a count's 0) swallows many quantiles, the tail after it is kept apart too: every
// grid edge with at least total/(4·bins) rows on either side since the last edge is an edge.
func QuantileEdges(h sdk.FeatureHistogram, bins int) []float64 {
	k := len(h.Edges)
	counts := make([]float64, k+1)
	for _, row := range h.Counts {
		for j := 0; j <= k; j++ {
			counts[j] += math.Max(0, row[j])
		}
	}
	var total float64
	for _, c := range counts {
		total += c
	}
	if total <= 0 || k == 0 {
		return nil
	}
	var out []float64
	cum, j := 0.0, 0
	for q := 1; q < bins; q++ {
		target := total * float64(q) / float64(bins)
		for j <= k && cum+counts[j] < target {
			cum += counts[j]
			j++
		}
		if j > k {
			break
		}
		var e float64
		switch {
		case j == 0:
			e = h.Edges[0]
		case j == k:
			e = h.Edges[k-1]
		default:
			lo, hi := h.Edges[j-1], h.Edges[j]
			frac := (target - cum) / math.Max(counts[j], 1e-12)
			e = lo + math.Min(1, math.Max(0, frac))*(hi-lo)
		}
		out = append(out, e)
	}
	// A heavy cell (a value that most rows share, such as 0 of a count) swallows many quantiles and
	// leaves the tail in few bins; where the tail has mass, its grid edges are kept too: every grid
	// edge with at least total/(4·bins) rows on either side since the last edge kept.
	minMass := total / float64(4*bins)
	var extra []float64
	acc, after := 0.0, total
	for j := 0; j < k; j++ {
		acc += counts[j]
		after -= counts[j]
		if acc >= minMass && after >= minMass && !slices.Contains(out, h.Edges[j]) {
			extra = append(extra, h.Edges[j])
			acc = 0
		}
		if slices.Contains(out, h.Edges[j]) || (j+1 < k && nextQuantileIn(out, h.Edges[j], h.Edges[j+1])) {
			acc = 0
		}
	}
	out = append(out, extra...)
	slices.Sort(out)
	return slices.Compact(out)
}

// nextQuantileIn reports whether an edge of out lies in (lo, hi).
func nextQuantileIn(out []float64, lo, hi float64) bool {
	for _, e := range out {
		if e > lo && e < hi {
			return true
		}
	}
	return false
}

// FineEdges asks one histogram of the features over Grid, spending rho, and returns edges of about
// equal frequency for each (at most bins−1).
func FineEdges(ctx context.Context, c sdk.AggregateClient, features []string, bins int, rho float64) ([][]float64, error) {
	q := sdk.HistogramQuery{Rho: rho}
	for _, f := range features {
		q.Features = append(q.Features, sdk.Bins{Column: f, Edges: Grid()})
	}
	a, err := c.Histogram(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(features))
	for i, h := range a.Features {
		out[i] = QuantileEdges(h, bins)
	}
	return out, nil
}
