package metrics

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// PSIFloor is the share that stands in for an empty bin in PSI: a bin whose share (after clamping
// negative counts to 0) is below PSIFloor counts as PSIFloor in both the difference and the
// logarithm. Without it a bin that is empty on one side would make the index infinite. 0.0001 is the
// value most credit-risk tools use; the shares are not renormalised afterwards.
const PSIFloor = 1e-4

// PSIBin is one bin's part of a population stability index.
type PSIBin struct {
	Expected     float64 `json:"expected"`     // share of the expected (baseline) population, floored at PSIFloor
	Actual       float64 `json:"actual"`       // share of the actual (current) population, floored at PSIFloor
	Contribution float64 `json:"contribution"` // (Actual − Expected)·ln(Actual / Expected), >= 0
}

// Stability is a population stability index and its per-bin contributions.
type Stability struct {
	PSI  float64  `json:"psi"` // Σ contributions; < 0.1 stable, 0.1–0.25 some shift, > 0.25 major shift (the usual reading)
	Bins []PSIBin `json:"bins"`
}

// PSI returns the population stability index between two populations counted over the same bins:
// Σ_i (a_i − e_i)·ln(a_i / e_i), where e_i and a_i are bin i's shares of the expected and actual
// totals. Counts may be non-integers and, as noisy aggregates can be, negative: a negative count is
// clamped to 0 before the totals are taken. Shares below PSIFloor are raised to it (see PSIFloor).
//
// It returns an *Error wrapping ErrEmpty when there are no bins or a side's clamped total is 0, and
// ErrScore when a count is NaN or infinite. It panics if the two sides have different numbers of bins.
func PSI(expected, actual []float64) (Stability, error) {
	if len(expected) != len(actual) {
		panic(fmt.Sprintf("metrics: psi: %d expected bins but %d actual bins", len(expected), len(actual)))
	}
	if len(expected) == 0 {
		return Stability{}, &Error{Metric: "psi", Index: -1, Err: ErrEmpty}
	}
	te, err := clampedTotal(expected)
	if err != nil {
		return Stability{}, err
	}
	ta, err := clampedTotal(actual)
	if err != nil {
		return Stability{}, err
	}
	if te == 0 || ta == 0 {
		return Stability{}, &Error{Metric: "psi", Index: -1, Err: ErrEmpty}
	}
	s := Stability{Bins: make([]PSIBin, len(expected))}
	for i := range expected {
		e := max(max(expected[i], 0)/te, PSIFloor)
		a := max(max(actual[i], 0)/ta, PSIFloor)
		c := (a - e) * math.Log(a/e)
		s.Bins[i] = PSIBin{Expected: e, Actual: a, Contribution: c}
		s.PSI += c
	}
	return s, nil
}

func clampedTotal(c []float64) (float64, error) {
	var t float64
	for i, v := range c {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, &Error{Metric: "psi", Index: i, Value: v, Err: ErrScore}
		}
		t += max(v, 0)
	}
	return t, nil
}

// ScorePSI returns the PSI of the current scores against the baseline scores over bins equal in
// frequency on the baseline: the cut points are the baseline's k/bins quantiles (k = 1..bins−1, by
// the lower order statistic), a score goes into the first bin whose cut point is >= it, and repeated
// cut points are dropped, so heavily tied scores give fewer bins. bins is usually 10. It also returns
// the cut points used. It returns an *Error wrapping ErrEmpty when either side is empty and ErrScore
// for a NaN score; it panics if bins < 1.
func ScorePSI(baseline, current []float64, bins int) (Stability, []float64, error) {
	if bins < 1 {
		panic(fmt.Sprintf("metrics: psi: %d bins", bins))
	}
	if len(baseline) == 0 || len(current) == 0 {
		return Stability{}, nil, &Error{Metric: "psi", Index: -1, Err: ErrEmpty}
	}
	for _, side := range [][]float64{baseline, current} {
		for i, v := range side {
			if math.IsNaN(v) {
				return Stability{}, nil, &Error{Metric: "psi", Index: i, Value: v, Err: ErrScore}
			}
		}
	}
	sorted := slices.Clone(baseline)
	slices.Sort(sorted)
	var cuts []float64
	for k := 1; k < bins; k++ {
		c := sorted[(k*len(sorted)-1)/bins]
		if len(cuts) == 0 || c > cuts[len(cuts)-1] {
			cuts = append(cuts, c)
		}
	}
	count := func(v []float64) []float64 {
		n := make([]float64, len(cuts)+1)
		for _, x := range v {
			n[sort.SearchFloat64s(cuts, x)]++
		}
		return n
	}
	s, err := PSI(count(baseline), count(current))
	return s, cuts, err
}

// CalibrationBin is one group of a calibration table.
type CalibrationBin struct {
	Count         int     `json:"count"`
	Positives     int     `json:"positives"`
	MinPredicted  float64 `json:"min_predicted"`
	MaxPredicted  float64 `json:"max_predicted"`
	MeanPredicted float64 `json:"mean_predicted"` // mean predicted probability of the group
	ObservedRate  float64 `json:"observed_rate"`  // Positives / Count
}

// Calibration returns the calibration table of predicted probabilities p against 0/1 labels y in
// groups of equal frequency (groups = 10 gives deciles), ordered by ascending prediction. Rows are
// sorted by p and cut into groups whose sizes differ by at most one, the larger ones first (numpy's
// array_split); each group's end is then moved forward past any rows tied with its last prediction, so tied predictions always share a group and the table does not depend
// on the input order; groups left empty by that move are omitted. One class only is allowed.
//
// It returns an *Error wrapping ErrEmpty, ErrLabel or ErrProbability (p outside [0, 1] or NaN), and
// panics if len(y) != len(p) or groups < 1.
func Calibration(y, p []float64, groups int) ([]CalibrationBin, error) {
	if len(y) != len(p) {
		panic(fmt.Sprintf("metrics: calibration: %d labels but %d probabilities", len(y), len(p)))
	}
	if groups < 1 {
		panic(fmt.Sprintf("metrics: calibration: %d groups", groups))
	}
	if len(y) == 0 {
		return nil, &Error{Metric: "calibration", Index: -1, Err: ErrEmpty}
	}
	idx := make([]int, len(y))
	for i := range y {
		if y[i] != 0 && y[i] != 1 {
			return nil, &Error{Metric: "calibration", Index: i, Value: y[i], Err: ErrLabel}
		}
		if !(p[i] >= 0 && p[i] <= 1) {
			return nil, &Error{Metric: "calibration", Index: i, Value: p[i], Err: ErrProbability}
		}
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case p[a] < p[b]:
			return -1
		case p[a] > p[b]:
			return 1
		}
		return 0
	})
	n := len(idx)
	var out []CalibrationBin
	start := 0
	q, r := n/groups, n%groups
	for k := range groups {
		end := (k+1)*q + min(k+1, r)
		if end <= start {
			continue
		}
		for end < n && p[idx[end]] == p[idx[end-1]] {
			end++
		}
		b := CalibrationBin{Count: end - start, MinPredicted: p[idx[start]], MaxPredicted: p[idx[end-1]]}
		var sum float64
		for _, i := range idx[start:end] {
			sum += p[i]
			if y[i] == 1 {
				b.Positives++
			}
		}
		b.MeanPredicted = sum / float64(b.Count)
		b.ObservedRate = float64(b.Positives) / float64(b.Count)
		out = append(out, b)
		start = end
		if start == n {
			break
		}
	}
	return out, nil
}

// Recall is TPR, the share of positives called positive.
func (c Confusion) Recall() float64 { return c.TPR() }

// Specificity is the true negative rate TN/(TN+FP); NaN without negatives.
func (c Confusion) Specificity() float64 { return ratio(c.TN, c.TN+c.FP) }

// ConfusionReport is a Confusion with its rates, for printing or JSON. Undefined rates (0/0) are NaN
// in the struct; marshal it only after replacing them, since JSON has no NaN.
type ConfusionReport struct {
	Confusion
	Precision   float64 `json:"precision"`
	Recall      float64 `json:"recall"`
	Specificity float64 `json:"specificity"`
	F1          float64 `json:"f1"`
	Accuracy    float64 `json:"accuracy"`
}

// Report returns the counts together with precision, recall, specificity, F1 and accuracy.
func (c Confusion) Report() ConfusionReport {
	return ConfusionReport{Confusion: c, Precision: c.Precision(), Recall: c.Recall(),
		Specificity: c.Specificity(), F1: c.F1(), Accuracy: c.Accuracy()}
}
