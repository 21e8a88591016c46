package binning

import (
	"fmt"
	"math"
	"slices"
)

// Method names a binning method.
type Method string

// Binning methods.
const (
	EqualFrequency Method = "equal_frequency"
	ChiMerge       Method = "chimerge"
	MonotoneWoE    Method = "monotone_woe"
	// Manual keeps the histogram's fine bins as they are (cut points chosen by an analyst, or
	// coarse bins re-counted on new data) and only computes WoE and IV.
	Manual Method = "manual"
)

// Options tunes Fit. The zero value asks for monotone WoE binning with the defaults.
type Options struct {
	// Method is the binning method (default MonotoneWoE).
	Method Method `json:"method,omitempty"`
	// MaxBins bounds the number of regular bins, the missing bin not counted (default 10). For
	// EqualFrequency it is the number of bins aimed at.
	MaxBins int `json:"max_bins,omitempty"`
	// MinBinShare: ChiMerge and MonotoneWoE merge any bin holding less than this share of the
	// non-missing rows into a neighbour (default 0.05; negative turns it off).
	MinBinShare float64 `json:"min_bin_share,omitempty"`
	// ChiThreshold: ChiMerge keeps merging while some adjacent pair's χ² statistic (one degree of
	// freedom) is below it (default 3.841, the 5 % critical value).
	ChiThreshold float64 `json:"chi_threshold,omitempty"`
	// PreBins: MonotoneWoE first groups the fine bins into this many of about equal frequency
	// (default 20), so that pooling works on bins with enough rows to have a stable bad rate.
	PreBins int `json:"pre_bins,omitempty"`
	// Alpha is the WoE pseudo-count α added to every cell of a non-empty bin (default 0.5).
	Alpha float64 `json:"alpha,omitempty"`
	// NoSmoothing sets α = 0; an empty cell in a non-empty bin is then an ErrEmptyCell error.
	NoSmoothing bool `json:"no_smoothing,omitempty"`
}

func (o Options) withDefaults() (Options, error) {
	if o.Method == "" {
		o.Method = MonotoneWoE
	}
	switch o.Method {
	case EqualFrequency, ChiMerge, MonotoneWoE, Manual:
	default:
		return o, &Error{Bin: -1, Detail: fmt.Sprintf("unknown method %q: use %q, %q, %q or %q", o.Method, EqualFrequency, ChiMerge, MonotoneWoE, Manual), Err: ErrOptions}
	}
	if o.MaxBins == 0 {
		o.MaxBins = 10
	}
	if o.MinBinShare == 0 {
		o.MinBinShare = 0.05
	}
	if o.ChiThreshold == 0 {
		o.ChiThreshold = 3.841
	}
	if o.PreBins == 0 {
		o.PreBins = 20
	}
	if o.Alpha == 0 {
		o.Alpha = 0.5
	}
	if o.NoSmoothing {
		o.Alpha = 0
	}
	bad := func(name string, v any) error {
		return &Error{Bin: -1, Detail: fmt.Sprintf("%s = %v is out of range", name, v), Err: ErrOptions}
	}
	switch {
	case o.MaxBins < 1:
		return o, bad("max_bins", o.MaxBins)
	case math.IsNaN(o.MinBinShare) || o.MinBinShare >= 1:
		return o, bad("min_bin_share", o.MinBinShare)
	case !(o.ChiThreshold > 0) || math.IsInf(o.ChiThreshold, 0):
		return o, bad("chi_threshold", o.ChiThreshold)
	case o.PreBins < 1:
		return o, bad("pre_bins", o.PreBins)
	case !(o.Alpha >= 0) || math.IsInf(o.Alpha, 0):
		return o, bad("alpha", o.Alpha)
	}
	return o, nil
}

// Bin is one bin of a Binning with its clamped counts, WoE and IV part.
type Bin struct {
	Good float64 `json:"good"`
	Bad  float64 `json:"bad"`
	WoE  float64 `json:"woe"`
	IV   float64 `json:"iv"`
}

// Binning is a fitted binning of one feature.
type Binning struct {
	Feature string `json:"feature"`
	// Edges are the coarse cut points, a subset of the histogram's fine edges.
	Edges []float64 `json:"edges"`
	// Bins has len(Edges)+1 regular bins in ascending order of value.
	Bins []Bin `json:"bins"`
	// Missing is the bin of missing values.
	Missing Bin `json:"missing"`
	// IV is the feature's information value, the sum of the bins' IV (missing bin included).
	IV float64 `json:"iv"`
	// Alpha is the WoE pseudo-count used.
	Alpha float64 `json:"alpha"`
	// Method is the method that made the bins.
	Method Method `json:"method"`
}

// NumBins returns the number of bins counting the missing bin: len(Edges)+2.
func (b *Binning) NumBins() int { return len(b.Edges) + 2 }

// Index returns the bin of x: 0..len(Edges) for a value, len(Edges)+1 for NaN (missing).
func (b *Binning) Index(x float64) int { return BinIndex(b.Edges, x) }

// Bin returns bin i as Index numbers them (the missing bin last). It panics if i is out of range.
func (b *Binning) Bin(i int) Bin {
	if i == len(b.Bins) {
		return b.Missing
	}
	return b.Bins[i]
}

// WoE returns the weight of evidence of x's bin.
func (b *Binning) WoE(x float64) float64 { return b.Bin(b.Index(x)).WoE }

// Transform returns the WoE of every value of x.
func (b *Binning) Transform(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = b.WoE(v)
	}
	return out
}

// Monotone reports whether the WoE of the regular bins is monotone (non-increasing or
// non-decreasing) in bin order.
func (b *Binning) Monotone() bool {
	up, down := true, true
	for i := 1; i < len(b.Bins); i++ {
		up = up && b.Bins[i].WoE >= b.Bins[i-1].WoE
		down = down && b.Bins[i].WoE <= b.Bins[i-1].WoE
	}
	return up || down
}

// group is a run of fine bins ending at fine bin hi (inclusive), with its clamped counts.
type group struct {
	hi   int
	g, b float64
}

func (g group) n() float64 { return g.g + g.b }

// Fit bins the histogram h with the method o names and computes WoE and IV.
func Fit(h *Hist, o Options) (*Binning, error) {
	o, err := o.withDefaults()
	if err != nil {
		err.(*Error).Feature = h.Feature
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	fine := make([]group, len(h.Good))
	var G, B float64
	for j := range h.Good {
		fine[j] = group{hi: j, g: max(h.Good[j], 0), b: max(h.Bad[j], 0)}
		G += fine[j].g
		B += fine[j].b
	}
	mg, mb := max(h.MissingGood, 0), max(h.MissingBad, 0)
	if G+mg == 0 || B+mb == 0 {
		return nil, &Error{Feature: h.Feature, Bin: -1, Err: ErrOneClass}
	}
	var groups []group
	gs := dropEmpty(fine)
	switch o.Method {
	case Manual:
		groups = fine
	case EqualFrequency:
		groups = equalFrequency(gs, o.MaxBins)
	case ChiMerge:
		groups = chiMerge(gs, o)
	case MonotoneWoE:
		groups = monotone(gs, mg, mb, o)
	}
	bn := &Binning{Feature: h.Feature, Alpha: o.Alpha, Method: o.Method}
	for _, g := range groups[:len(groups)-1] {
		bn.Edges = append(bn.Edges, h.Edges[g.hi])
	}
	for _, g := range groups {
		bn.Bins = append(bn.Bins, Bin{Good: g.g, Bad: g.b})
	}
	bn.Missing = Bin{Good: mg, Bad: mb}
	if err := bn.computeWoE(); err != nil {
		return nil, err
	}
	return bn, nil
}

// FitValues bins raw values x (NaN = missing) with 0/1 labels y: it builds the exact histogram over
// fineBins quantile bins (FromValues; 256 is a good choice) and calls Fit. It panics if len(x) !=
// len(y) or fineBins < 1.
func FitValues(feature string, x, y []float64, fineBins int, o Options) (*Binning, error) {
	h, err := FromValues(feature, x, y, fineBins)
	if err != nil {
		return nil, err
	}
	return Fit(h, o)
}

// computeWoE fills WoE and IV of every bin from the counts and Alpha (see the package comment).
func (bn *Binning) computeWoE() error {
	all := append(slices.Clone(bn.Bins), bn.Missing)
	var G, B, m float64
	for _, b := range all {
		G += b.Good
		B += b.Bad
		if b.Good+b.Bad > 0 {
			m++
		}
	}
	if G == 0 || B == 0 {
		return &Error{Feature: bn.Feature, Bin: -1, Err: ErrOneClass}
	}
	a := bn.Alpha
	bn.IV = 0
	for i := range all {
		b := &all[i]
		if b.Good+b.Bad == 0 {
			b.WoE, b.IV = 0, 0
			continue
		}
		if a == 0 && (b.Good == 0 || b.Bad == 0) {
			return &Error{Feature: bn.Feature, Bin: i, Detail: fmt.Sprintf("%v goods and %v bads", b.Good, b.Bad), Err: ErrEmptyCell}
		}
		pg := (b.Good + a) / (G + m*a)
		pb := (b.Bad + a) / (B + m*a)
		b.WoE = math.Log(pg / pb)
		b.IV = (pg - pb) * b.WoE
		bn.IV += b.IV
	}
	copy(bn.Bins, all[:len(bn.Bins)])
	bn.Missing = all[len(all)-1]
	return nil
}

// dropEmpty merges every fine bin with no rows into the preceding group (leading empty bins into the
// first group), so that every group holds rows. All-empty input gives one empty group.
func dropEmpty(fine []group) []group {
	var out []group
	for _, g := range fine {
		switch {
		case g.n() > 0:
			out = append(out, g)
		case len(out) > 0:
			out[len(out)-1].hi = g.hi
		}
	}
	if len(out) == 0 {
		return []group{{hi: len(fine) - 1}}
	}
	return out
}

func merge(gs []group, i int) []group {
	gs[i] = group{hi: gs[i+1].hi, g: gs[i].g + gs[i+1].g, b: gs[i].b + gs[i+1].b}
	return slices.Delete(gs, i+1, i+2)
}

// equalFrequency cuts at the group boundaries whose cumulative count is nearest to k·N/bins.
func equalFrequency(gs []group, bins int) []group {
	var N float64
	for _, g := range gs {
		N += g.n()
	}
	cum := make([]float64, len(gs))
	var c float64
	for i, g := range gs {
		c += g.n()
		cum[i] = c
	}
	var cuts []int // index of the last group of each bin but the final one
	for k := 1; k < bins; k++ {
		t := float64(k) * N / float64(bins)
		best := -1
		for i := range len(gs) - 1 {
			if best < 0 || math.Abs(cum[i]-t) < math.Abs(cum[best]-t) {
				best = i
			}
		}
		if best >= 0 && (len(cuts) == 0 || best > cuts[len(cuts)-1]) {
			cuts = append(cuts, best)
		}
	}
	var out []group
	start := 0
	for _, end := range append(cuts, len(gs)-1) {
		m := group{hi: gs[end].hi}
		for _, g := range gs[start : end+1] {
			m.g += g.g
			m.b += g.b
		}
		out = append(out, m)
		start = end + 1
	}
	return out
}

// chi2 is Pearson's χ² statistic of the 2×2 table of two adjacent groups' goods and bads; cells
// with expected count 0 contribute 0.
func chi2(a, b group) float64 {
	n := a.n() + b.n()
	if n == 0 {
		return 0
	}
	G, B := a.g+b.g, a.b+b.b
	var s float64
	for _, c := range [][3]float64{{a.g, a.n(), G}, {a.b, a.n(), B}, {b.g, b.n(), G}, {b.b, b.n(), B}} {
		e := c[1] * c[2] / n
		if e > 0 {
			s += (c[0] - e) * (c[0] - e) / e
		}
	}
	return s
}

// chiMerge merges the adjacent pair with the smallest χ² while there are more than MaxBins groups
// or some pair is below the threshold, then merges groups below MinBinShare.
func chiMerge(gs []group, o Options) []group {
	for len(gs) > 1 {
		best, bv := -1, math.Inf(1)
		for i := range len(gs) - 1 {
			if v := chi2(gs[i], gs[i+1]); v < bv {
				best, bv = i, v
			}
		}
		if len(gs) <= o.MaxBins && bv >= o.ChiThreshold {
			break
		}
		gs = merge(gs, best)
	}
	return mergeSmall(gs, o.MinBinShare, func(a, b group) float64 { return chi2(a, b) })
}

// mergeSmall merges the smallest group below share·N into whichever neighbour is closer by dist,
// until none is below.
func mergeSmall(gs []group, share float64, dist func(a, b group) float64) []group {
	if share <= 0 {
		return gs
	}
	var N float64
	for _, g := range gs {
		N += g.n()
	}
	for len(gs) > 1 {
		small := -1
		for i, g := range gs {
			if g.n() < share*N && (small < 0 || g.n() < gs[small].n()) {
				small = i
			}
		}
		if small < 0 {
			break
		}
		switch {
		case small == 0:
			gs = merge(gs, 0)
		case small == len(gs)-1:
			gs = merge(gs, small-1)
		case dist(gs[small-1], gs[small]) <= dist(gs[small], gs[small+1]):
			gs = merge(gs, small-1)
		default:
			gs = merge(gs, small)
		}
	}
	return gs
}

// monotone pre-bins to PreBins equal-frequency groups, pools adjacent violators of a monotone bad
// rate in both directions and keeps the direction with the larger IV, then merges down to MaxBins
// (and MinBinShare) by joining the adjacent pair with the closest WoE, which keeps monotonicity.
func monotone(gs []group, mg, mb float64, o Options) []group {
	gs = equalFrequency(gs, o.PreBins)
	var best []group
	bestIV := math.Inf(-1)
	for _, increasing := range []bool{true, false} {
		p := pava(slices.Clone(gs), increasing)
		p = mergeSmall(p, o.MinBinShare, woeDist(p, mg, mb, o.Alpha))
		for len(p) > o.MaxBins {
			d := woeDist(p, mg, mb, o.Alpha)
			bi, bv := 0, math.Inf(1)
			for i := range len(p) - 1 {
				if v := d(p[i], p[i+1]); v < bv {
					bi, bv = i, v
				}
			}
			p = merge(p, bi)
		}
		if iv := groupsIV(p, mg, mb, o.Alpha); iv > bestIV {
			best, bestIV = p, iv
		}
	}
	return best
}

// pava pools adjacent groups until the bad rate b/(g+b) is non-decreasing (increasing) or
// non-increasing in group order.
func pava(gs []group, increasing bool) []group {
	rate := func(g group) float64 {
		if g.n() == 0 {
			return 0
		}
		r := g.b / g.n()
		if !increasing {
			r = -r
		}
		return r
	}
	var out []group
	for _, g := range gs {
		out = append(out, g)
		for len(out) > 1 && rate(out[len(out)-2]) > rate(out[len(out)-1]) {
			out = merge(out, len(out)-2)
		}
	}
	return out
}

// woeDist measures two groups' distance as the gap between their smoothed WoE, with totals taken
// over all groups and the missing bin.
func woeDist(gs []group, mg, mb, alpha float64) func(a, b group) float64 {
	alpha = max(alpha, 1e-9)
	G, B, m := mg, mb, 0.0
	if mg+mb > 0 {
		m++
	}
	for _, g := range gs {
		G, B = G+g.g, B+g.b
		if g.n() > 0 {
			m++
		}
	}
	woe := func(g group) float64 {
		return math.Log(((g.g + alpha) / (G + m*alpha)) / ((g.b + alpha) / (B + m*alpha)))
	}
	return func(a, b group) float64 { return math.Abs(woe(a) - woe(b)) }
}

func groupsIV(gs []group, mg, mb, alpha float64) float64 {
	bn := &Binning{Alpha: max(alpha, 1e-9), Missing: Bin{Good: mg, Bad: mb}}
	for _, g := range gs {
		bn.Bins = append(bn.Bins, Bin{Good: g.g, Bad: g.b})
	}
	if bn.computeWoE() != nil {
		return math.Inf(-1)
	}
	return bn.IV
}
