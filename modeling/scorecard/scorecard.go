// Package scorecard turns binned features and a logistic regression on their weights of evidence into
// a points table, the credit scorecard of Siddiqi's "Credit Risk Scorecards": each feature contributes
// the points of the bin a subject falls in, the points add up to the score, and a higher score means
// a lower risk.
//
// Call Fit with one *binning.Binning per feature and the raw training columns: it fits logreg on the
// WoE-encoded rows and scales the result. When the coefficients come from elsewhere (aggregated
// Newton steps in aggregate mode), call New with them. A *Scorecard scores a raw row (Score), or a
// subject's bin assignment (Points), explains a score by ReasonCodes, and marshals to JSON;
// ParseScorecard reads it back and checks that every point value follows from the stored WoE,
// coefficients and scaling.
//
// # Scaling
//
// The regression models the log-odds of a bad (label 1): ln(p/(1−p)) = β₀ + Σ_j β_j·WoE_j, with WoE in
// binning's convention ln(%good/%bad). The score is a linear function of the log-odds of a good:
//
//	score  = Offset + Factor·ln(odds_good) = Offset − Factor·(β₀ + Σ_j β_j·WoE_j)
//	Factor = PDO / ln 2,   Offset = BaseScore − Factor·ln(BaseOdds)
//
// so the score is BaseScore where the odds of good to bad are BaseOdds and every PDO points double the
// odds. Spreading the intercept evenly over the k features gives each bin i of feature j
//
//	points_ij = −Factor·(β_j·WoE_ij + β₀/k) + Offset/k
//
// and a subject's score is the sum of its bins' points. With Scaling.Round the points are rounded to
// whole numbers and the score is the sum of the rounded points.
//
// Errors are *Error values naming the feature where one is to blame; they wrap ErrScaling, ErrShape,
// ErrScorecard or the errors of logreg.Fit.
package scorecard

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"insitu/modeling/binning"
)

// Sentinel errors, wrapped by *Error.
var (
	// ErrScaling: PDO, base score or base odds is out of range.
	ErrScaling = errors.New("invalid scaling")
	// ErrShape: binnings, coefficients or an assignment do not match.
	ErrShape = errors.New("inconsistent scorecard inputs")
	// ErrScorecard: a scorecard (or one read from JSON) is malformed.
	ErrScorecard = errors.New("malformed scorecard")
)

// Error says what failed and, where one feature is to blame, which.
type Error struct {
	Feature string
	Detail  string
	Err     error
}

func (e *Error) Error() string {
	s := "scorecard"
	if e.Feature != "" {
		s += fmt.Sprintf(": feature %q", e.Feature)
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func errf(sentinel error, feature, format string, args ...any) *Error {
	return &Error{Feature: feature, Detail: fmt.Sprintf(format, args...), Err: sentinel}
}

// Scaling fixes how log-odds become points.
type Scaling struct {
	// PDO is the number of points that doubles the odds of good to bad (> 0).
	PDO float64 `json:"pdo"`
	// BaseScore is the score at which the odds of good to bad are BaseOdds.
	BaseScore float64 `json:"base_score"`
	// BaseOdds are the odds of good to bad at BaseScore (> 0), e.g. 50 for 50:1.
	BaseOdds float64 `json:"base_odds"`
	// Round rounds every bin's points to a whole number.
	Round bool `json:"round,omitempty"`
}

// DefaultScaling is the common convention: 600 points at odds 50:1, 20 points to double the odds.
func DefaultScaling() Scaling { return Scaling{PDO: 20, BaseScore: 600, BaseOdds: 50} }

// FactorOffset returns Factor = PDO/ln 2 and Offset = BaseScore − Factor·ln(BaseOdds).
func (s Scaling) FactorOffset() (factor, offset float64, err error) {
	fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !(s.PDO > 0) || !fin(s.PDO) || !(s.BaseOdds > 0) || !fin(s.BaseOdds) || !fin(s.BaseScore) {
		return 0, 0, errf(ErrScaling, "", "pdo %v and base odds %v must be finite and > 0, base score %v finite", s.PDO, s.BaseOdds, s.BaseScore)
	}
	factor = s.PDO / math.Ln2
	return factor, s.BaseScore - factor*math.Log(s.BaseOdds), nil
}

// Attribute is one bin of a characteristic and its points.
type Attribute struct {
	// Label describes the bin: "(-inf, 35]", "(35, 50]", "(65, +inf)" or "missing".
	Label  string  `json:"label"`
	WoE    float64 `json:"woe"`
	Points float64 `json:"points"`
}

// Characteristic is one feature of the scorecard: its cut points, coefficient and one Attribute per
// bin (len(Edges)+2, the missing bin last, numbered as binning.BinIndex numbers them).
type Characteristic struct {
	Feature     string      `json:"feature"`
	Edges       []float64   `json:"edges"`
	Coefficient float64     `json:"coefficient"`
	Attributes  []Attribute `json:"attributes"`
}

// Scorecard is a points table.
type Scorecard struct {
	Scaling         Scaling          `json:"scaling"`
	Intercept       float64          `json:"intercept"`
	Factor          float64          `json:"factor"`
	Offset          float64          `json:"offset"`
	Characteristics []Characteristic `json:"characteristics"`
}

// BinLabel returns the label of bin i under cut points edges (len(edges)+1 is the missing bin).
func BinLabel(edges []float64, i int) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	switch {
	case i == len(edges)+1:
		return "missing"
	case len(edges) == 0:
		return "(-inf, +inf)"
	case i == 0:
		return "(-inf, " + f(edges[0]) + "]"
	case i == len(edges):
		return "(" + f(edges[i-1]) + ", +inf)"
	}
	return "(" + f(edges[i-1]) + ", " + f(edges[i]) + "]"
}

// points computes bin points from the formula in the package comment.
func points(factor, offset, coef, intercept, woe float64, k int, round bool) float64 {
	p := -factor*(coef*woe+intercept/float64(k)) + offset/float64(k)
	if round {
		p = math.Round(p)
	}
	return p
}

// New builds the points table from binnings (one per feature, in coefficient order), the
// regression's coefficients on their WoE and its intercept.
func New(bins []*binning.Binning, coef []float64, intercept float64, s Scaling) (*Scorecard, error) {
	if len(bins) == 0 || len(bins) != len(coef) {
		return nil, errf(ErrShape, "", "%d binnings and %d coefficients: need one coefficient per binning, at least one", len(bins), len(coef))
	}
	factor, offset, err := s.FactorOffset()
	if err != nil {
		return nil, err
	}
	if math.IsNaN(intercept) || math.IsInf(intercept, 0) {
		return nil, errf(ErrShape, "", "intercept %v is not finite", intercept)
	}
	sc := &Scorecard{Scaling: s, Intercept: intercept, Factor: factor, Offset: offset}
	for j, b := range bins {
		if math.IsNaN(coef[j]) || math.IsInf(coef[j], 0) {
			return nil, errf(ErrShape, b.Feature, "coefficient %v is not finite", coef[j])
		}
		c := Characteristic{Feature: b.Feature, Edges: slices.Clone(b.Edges), Coefficient: coef[j]}
		for i := range b.NumBins() {
			w := b.Bin(i).WoE
			c.Attributes = append(c.Attributes, Attribute{Label: BinLabel(b.Edges, i), WoE: w,
				Points: points(factor, offset, coef[j], intercept, w, len(bins), s.Round)})
		}
		sc.Characteristics = append(sc.Characteristics, c)
	}
	return sc, nil
}

// Assign returns the bin of every feature of raw row x (NaN = missing). It panics if len(x) does not
// match the characteristics.
func (s *Scorecard) Assign(x []float64) []int {
	if len(x) != len(s.Characteristics) {
		panic(fmt.Sprintf("scorecard: row has %d values but the scorecard has %d characteristics", len(x), len(s.Characteristics)))
	}
	a := make([]int, len(x))
	for j, c := range s.Characteristics {
		a[j] = binning.BinIndex(c.Edges, x[j])
	}
	return a
}

// Points returns the score of a subject's bin assignment (one bin index per characteristic, as
// Assign gives). It returns an error wrapping ErrShape for a wrong length or an index out of range.
func (s *Scorecard) Points(assign []int) (float64, error) {
	if len(assign) != len(s.Characteristics) {
		return 0, errf(ErrShape, "", "%d bins assigned for %d characteristics", len(assign), len(s.Characteristics))
	}
	var total float64
	for j, i := range assign {
		c := &s.Characteristics[j]
		if i < 0 || i >= len(c.Attributes) {
			return 0, errf(ErrShape, c.Feature, "bin %d of %d", i, len(c.Attributes))
		}
		total += c.Attributes[i].Points
	}
	return total, nil
}

// Score returns the score of raw row x. It panics if len(x) does not match the characteristics.
func (s *Scorecard) Score(x []float64) float64 {
	p, err := s.Points(s.Assign(x))
	if err != nil {
		panic(err) // Assign only returns valid indices
	}
	return p
}

// BadProbability returns the probability of a bad that a score stands for:
// 1 / (1 + exp((score − Offset)/Factor)).
func (s *Scorecard) BadProbability(score float64) float64 {
	return 1 / (1 + math.Exp((score-s.Offset)/s.Factor))
}

// Reason is one reason code: a feature whose bin cost the subject points against the best bin of
// that feature.
type Reason struct {
	Feature string  `json:"feature"`
	Bin     int     `json:"bin"`
	Label   string  `json:"label"`
	Points  float64 `json:"points"`
	// Shortfall is the best bin's points minus the subject's bin's points (> 0).
	Shortfall float64 `json:"shortfall"`
}

// ReasonCodes returns up to n reasons for a subject's bin assignment, largest shortfall first (ties
// in characteristic order); features where the subject is in its best bin give none. It returns an
// error wrapping ErrShape like Points.
func (s *Scorecard) ReasonCodes(assign []int, n int) ([]Reason, error) {
	if _, err := s.Points(assign); err != nil {
		return nil, err
	}
	var out []Reason
	for j, i := range assign {
		c := &s.Characteristics[j]
		best := math.Inf(-1)
		for _, a := range c.Attributes {
			best = max(best, a.Points)
		}
		if d := best - c.Attributes[i].Points; d > 0 {
			out = append(out, Reason{Feature: c.Feature, Bin: i, Label: c.Attributes[i].Label, Points: c.Attributes[i].Points, Shortfall: d})
		}
	}
	slices.SortStableFunc(out, func(a, b Reason) int {
		switch {
		case a.Shortfall > b.Shortfall:
			return -1
		case a.Shortfall < b.Shortfall:
			return 1
		}
		return 0
	})
	if len(out) > n {
		out = out[:max(n, 0)]
	}
	return out, nil
}
