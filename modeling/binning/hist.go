// Package binning groups a numeric feature into a few ordered bins and measures each bin's weight of
// evidence (WoE) and the feature's information value (IV), the first step of a credit scorecard.
//
// Everything works from a Hist: one feature's counts of goods (label 0) and bads (label 1) per fine
// bin, plus a bin for missing values. Build one from raw values with FromValues (quantile fine bins)
// or Count (given cut points), or take one as the aggregate query service returns it: cells may then
// be non-integers and even negative after noise. Then call Fit with Options naming the method:
//
//   - EqualFrequency: cut points at the fine edges nearest to equal shares of the rows.
//   - ChiMerge: adjacent bins merged while their bad rates do not differ significantly (χ² test).
//   - MonotoneWoE: bins pooled until WoE is monotone in the bin order (pool-adjacent-violators),
//     in whichever direction gives the larger IV, then merged down to MaxBins.
//   - Manual: the histogram's own bins, unchanged (an analyst's cut points).
//
// The result is a *Binning: coarse cut points (always a subset of the fine edges, so a binning learnt
// from an aggregate histogram uses only edges the enclave answered for), each bin's counts, WoE and
// IV, and the missing bin. (*Binning).Index and (*Binning).WoE map a raw value to its bin and WoE.
//
// # Conventions
//
// Bin j of cut points e holds the values x with e[j−1] < x <= e[j]; the first bin holds everything
// <= e[0] and the last everything > e[len(e)−1]; BinIndex computes it. NaN is missing and goes to the
// missing bin, which is never merged with another.
//
// Clamping: a cell (good or bad count) below 0 counts as 0. Noise can push a count below zero, and
// no population has a negative count; clamping is the projection onto valid histograms. NaN or
// infinite cells are errors: a cell the aggregate service suppressed must be passed as 0.
//
// WoE follows Siddiqi: WoE_i = ln(%good_i / %bad_i), so a positive WoE marks a bin safer than
// average. Smoothing: with pseudo-count α (Options.Alpha, default 0.5) and m non-empty bins (the
// missing bin included when it holds anything),
//
//	%good_i = (g_i + α) / (G + m·α),   %bad_i = (b_i + α) / (B + m·α),
//
// which keeps WoE finite when a bin has no goods or no bads; G and B are the clamped totals. A bin
// whose clamped total is 0 (for example a missing bin that never occurs) has WoE 0 and IV 0 and is
// not counted in m. IV_i = (%good_i − %bad_i)·WoE_i ≥ 0 and the feature's IV is their sum. With
// Options.NoSmoothing, α = 0 (the textbook formula) and an empty cell in a non-empty bin is an error.
//
// Errors are *Error values naming the feature and, where one bin is to blame, the bin; they wrap
// ErrHist, ErrLabel, ErrNotFinite, ErrOneClass, ErrEmptyCell or ErrOptions.
package binning

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Sentinel errors, wrapped by *Error.
var (
	// ErrHist: a histogram is malformed (cell counts not matching the edges, edges not strictly
	// ascending or not finite).
	ErrHist = errors.New("malformed histogram")
	// ErrNotFinite: a count or an input value is NaN (counts only) or infinite.
	ErrNotFinite = errors.New("value is not finite")
	// ErrLabel: a label is not exactly 0 or 1.
	ErrLabel = errors.New("label is not 0 or 1")
	// ErrOneClass: after clamping, the histogram holds no goods or no bads.
	ErrOneClass = errors.New("histogram holds only one class: need both goods and bads")
	// ErrEmptyCell: without smoothing, a non-empty bin has no goods or no bads, so its WoE is infinite.
	ErrEmptyCell = errors.New("bin has no goods or no bads and smoothing is off")
	// ErrOptions: an option is out of range.
	ErrOptions = errors.New("invalid binning options")
)

// Error says what failed, for which feature and, when one bin is to blame, which.
type Error struct {
	Feature string // feature name, may be empty
	Bin     int    // 0-based fine bin (or row for raw values), or -1 when no single one is to blame
	Detail  string // what was found and what to do
	Err     error  // one of the sentinel errors
}

func (e *Error) Error() string {
	s := "binning"
	if e.Feature != "" {
		s += fmt.Sprintf(": feature %q", e.Feature)
	}
	if e.Bin >= 0 {
		s += fmt.Sprintf(": bin %d", e.Bin)
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// Hist is one feature's label histogram over fine bins: the input to every binning method.
type Hist struct {
	Feature string `json:"feature"`
	// Edges are the fine cut points, finite and strictly ascending; there are len(Edges)+1 fine bins.
	Edges []float64 `json:"edges"`
	// Good and Bad count label-0 and label-1 rows per fine bin (len(Edges)+1 each). Counts may be
	// non-integer or negative (noisy aggregates); negative counts are clamped to 0.
	Good []float64 `json:"good"`
	Bad  []float64 `json:"bad"`
	// MissingGood and MissingBad count the rows whose value is missing.
	MissingGood float64 `json:"missing_good"`
	MissingBad  float64 `json:"missing_bad"`
}

// BinIndex returns the bin of x under cut points edges (ascending): the number of edges below x, so
// bin j holds edges[j−1] < x <= edges[j]. NaN gives len(edges)+1, the index of a missing bin placed
// after the regular ones.
func BinIndex(edges []float64, x float64) int {
	if math.IsNaN(x) {
		return len(edges) + 1
	}
	return sort.SearchFloat64s(edges, x)
}

// Validate checks the shape and values of h: edges finite and strictly ascending, one good and one
// bad count per fine bin, no NaN or infinite count.
func (h *Hist) Validate() error {
	for j, e := range h.Edges {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return &Error{Feature: h.Feature, Bin: j, Detail: fmt.Sprintf("edge %v is not finite", e), Err: ErrHist}
		}
		if j > 0 && e <= h.Edges[j-1] {
			return &Error{Feature: h.Feature, Bin: j, Detail: "edges must be strictly ascending", Err: ErrHist}
		}
	}
	if len(h.Good) != len(h.Edges)+1 || len(h.Bad) != len(h.Edges)+1 {
		return &Error{Feature: h.Feature, Bin: -1, Err: ErrHist,
			Detail: fmt.Sprintf("%d edges need %d good and bad counts; got %d and %d",
				len(h.Edges), len(h.Edges)+1, len(h.Good), len(h.Bad))}
	}
	check := func(j int, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &Error{Feature: h.Feature, Bin: j, Detail: fmt.Sprintf("count %v (pass a suppressed cell as 0)", v), Err: ErrNotFinite}
		}
		return nil
	}
	for j := range h.Good {
		if err := check(j, h.Good[j]); err != nil {
			return err
		}
		if err := check(j, h.Bad[j]); err != nil {
			return err
		}
	}
	if err := check(len(h.Good), h.MissingGood); err != nil {
		return err
	}
	return check(len(h.Good), h.MissingBad)
}

// Count builds the exact histogram of values x with 0/1 labels y over the given cut points (which
// must be finite and strictly ascending). NaN values are missing; infinite values fall in the end
// bins. It panics if len(x) != len(y).
func Count(feature string, edges, x, y []float64) (*Hist, error) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("binning: %d values but %d labels", len(x), len(y)))
	}
	h := &Hist{Feature: feature, Edges: slices.Clone(edges),
		Good: make([]float64, len(edges)+1), Bad: make([]float64, len(edges)+1)}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	for i, v := range x {
		bad := false
		switch y[i] {
		case 1:
			bad = true
		case 0:
		default:
			return nil, &Error{Feature: feature, Bin: i, Detail: fmt.Sprintf("row %d has label %v", i+1, y[i]), Err: ErrLabel}
		}
		switch {
		case math.IsNaN(v) && bad:
			h.MissingBad++
		case math.IsNaN(v):
			h.MissingGood++
		case bad:
			h.Bad[sort.SearchFloat64s(edges, v)]++
		default:
			h.Good[sort.SearchFloat64s(edges, v)]++
		}
	}
	return h, nil
}

// QuantileEdges returns cut points that split the non-missing values of x into at most maxBins bins
// of about equal frequency. When x has at most maxBins distinct values every distinct value but the
// largest is a cut point, so each value has its own bin; otherwise the cut points are the distinct
// values at the order statistics ⌈k·n/maxBins⌉ (k = 1..maxBins−1). NaN values are skipped. It panics if
// maxBins < 1.
func QuantileEdges(x []float64, maxBins int) []float64 {
	if maxBins < 1 {
		panic(fmt.Sprintf("binning: maxBins %d", maxBins))
	}
	v := make([]float64, 0, len(x))
	for _, f := range x {
		if !math.IsNaN(f) {
			v = append(v, f)
		}
	}
	slices.Sort(v)
	if len(v) == 0 {
		return nil
	}
	distinct := slices.Compact(slices.Clone(v))
	if len(distinct) <= maxBins {
		return finite(distinct[:len(distinct)-1])
	}
	var edges []float64
	n := len(v)
	for k := 1; k < maxBins; k++ {
		e := v[(k*n+maxBins-1)/maxBins-1]
		if e == v[n-1] {
			break
		}
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	return finite(edges)
}

func finite(e []float64) []float64 {
	out := e[:0]
	for _, v := range e {
		if !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}

// FromValues builds the exact histogram of x (NaN = missing) and 0/1 labels y over QuantileEdges(x,
// fineBins). It panics if len(x) != len(y) or fineBins < 1.
func FromValues(feature string, x, y []float64, fineBins int) (*Hist, error) {
	return Count(feature, QuantileEdges(x, fineBins), x, y)
}
