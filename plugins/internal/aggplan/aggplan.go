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
	"strconv"

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
// linearly inside the grid cell where its quantile falls and rounded to few digits (Round); a cell
// that looks like one value's point mass gives one edge, its upper grid edge. Where one heavy cell (a value most rows
// share, such as a count's 0) swallows many quantiles, the tail after it is kept apart too: every
// grid edge with at least total/(4·bins) rows on either side since the last edge is an edge.
//
// noise is the standard deviation of one noisy count (0 for exact counts): a cell whose count is
// below 2·noise counts as empty, and the tail's edges need 8·noise rows, so that noise alone makes
// no edge.
func QuantileEdges(h sdk.FeatureHistogram, bins int, noise float64) []float64 {
	k := len(h.Edges)
	counts := make([]float64, k+1)
	for _, row := range h.Counts {
		for j := 0; j <= k; j++ {
			counts[j] += math.Max(0, row[j])
		}
	}
	for j, c := range counts {
		if c < 2*noise*math.Sqrt(float64(len(h.Counts))) {
			counts[j] = 0
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
		case pointMass(counts, j, total/float64(bins)):
			// The value's own bin: an integer's when the cell holds one, else the upper edge.
			e = h.Edges[j]
			if f := math.Floor(e); f > h.Edges[j-1] {
				e = f
			}
		default:
			lo, hi := h.Edges[j-1], h.Edges[j]
			frac := (target - cum) / math.Max(counts[j], 1e-12)
			e = Round(lo+math.Min(1, math.Max(0, frac))*(hi-lo), lo, hi, (hi-lo)/16)
		}
		out = append(out, e)
	}
	// A heavy cell (a value that most rows share, such as 0 of a count) swallows many quantiles and
	// leaves the tail in few bins; where the tail has mass, its grid edges are kept too: every grid
	// edge with at least total/(4·bins) rows on either side since the last edge kept.
	minMass := math.Max(total/float64(4*bins), 8*noise)
	var extra []float64
	acc, after := 0.0, total
	for j := 0; j < k; j++ {
		acc += counts[j]
		after -= counts[j]
		if acc >= minMass && after >= minMass && !slices.Contains(out, h.Edges[j]) {
			// A grid edge, rounded to few digits within a quarter of its neighbouring cells.
			e := h.Edges[j]
			lo, hi := e, e
			if j > 0 {
				lo = e - (e-h.Edges[j-1])/4
			}
			if j+1 < k {
				hi = e + (h.Edges[j+1]-e)/4
			}
			extra = append(extra, Round(e, lo, hi, math.Max(e-lo, hi-e)))
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

// CountNoise is the standard deviation of one count of a histogram of f features answered with
// budget rho: the enclave's σ for a count query, √f/√(2ρ) (one row is in one bin of each feature).
func CountNoise(f int, rho float64) float64 {
	return math.Sqrt(float64(f) / (2 * rho))
}

// pointMass reports whether grid cell j looks like one value most rows share (a count's 0, a
// capped amount): it holds at least two bins' worth of rows while each neighbour holds less than an
// eighth of it. Its quantiles then all go to its upper edge, so that the value has a bin of its own.
func pointMass(counts []float64, j int, perBin float64) bool {
	c := counts[j]
	if c < 2*perBin {
		return false
	}
	return (j == 0 || counts[j-1] < c/8) && (j+1 >= len(counts) || counts[j+1] < c/8)
}

// Round returns the number with the fewest significant decimal digits within tol of x and inside
// (lo, hi] (x itself when none is nearer): edges a person reads, such as 2, 0.45 or 15000, where
// the precision of a noisy quantile adds nothing.
func Round(x, lo, hi, tol float64) float64 {
	a, b := math.Max(x-tol, lo), math.Min(x+tol, hi)
	if !(a < b) {
		return x
	}
	if a < 0 && b >= 0 {
		return 0
	}
	for digits := 1; digits <= 15; digits++ {
		c, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', digits, 64), 64)
		if err == nil && c > a && c <= b {
			return c
		}
	}
	return x
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
// equal frequency for each (at most bins−1), ignoring what the noise of the answer could make alone.
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
		out[i] = QuantileEdges(h, bins, CountNoise(len(features), rho))
	}
	return out, nil
}
