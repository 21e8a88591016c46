package scorecard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/binning"
	"insitu/modeling/logreg"
)

// Options tunes Fit.
type Options struct {
	// Lambda is logreg's L2 penalty on the coefficients (scikit-learn's C = 1/λ); 1 is a good default
	// for thousands of rows, since WoE features are already on one scale.
	Lambda float64
	// Scaling turns log-odds into points; the zero value takes DefaultScaling.
	Scaling Scaling
	// LogReg tunes the Newton iterations.
	LogReg logreg.Options
}

// WoEMatrix encodes raw columns (one per binning, NaN = missing) as their bins' WoE, one row per
// subject. It panics if the columns differ in length or do not match the binnings.
func WoEMatrix(bins []*binning.Binning, cols [][]float64) *mat.Dense {
	if len(cols) != len(bins) || len(cols) == 0 {
		panic(fmt.Sprintf("scorecard: %d columns for %d binnings", len(cols), len(bins)))
	}
	n := len(cols[0])
	X := mat.NewDense(max(n, 1), len(cols), nil)
	for j, c := range cols {
		if len(c) != n {
			panic(fmt.Sprintf("scorecard: column %d has %d rows, column 0 has %d", j, len(c), n))
		}
		for i, v := range c {
			X.Set(i, j, bins[j].WoE(v))
		}
	}
	if n == 0 {
		return &mat.Dense{}
	}
	return X
}

// Fit fits logistic regression on the WoE encoding of the raw columns cols (one per binning) with
// 0/1 labels y, and scales it into a Scorecard. It also returns the regression. Errors from
// logreg.Fit (ErrLabel, ErrOneClass, ErrNotConverged, ...) are returned wrapped, with the model when
// logreg returns one. It panics on shape mismatches.
func Fit(bins []*binning.Binning, cols [][]float64, y []float64, o Options) (*Scorecard, *logreg.Model, error) {
	if o.Scaling == (Scaling{}) {
		o.Scaling = DefaultScaling()
	}
	names := make([]string, len(bins))
	for j, b := range bins {
		names[j] = b.Feature
	}
	X := WoEMatrix(bins, cols)
	m, err := logreg.Fit(logreg.Problem{X: X, Y: y, Lambda: o.Lambda, FeatureNames: names}, o.LogReg)
	if err != nil {
		return nil, m, fmt.Errorf("scorecard: fit logistic regression on WoE: %w", err)
	}
	sc, err := New(bins, m.Weights, m.Intercept, o.Scaling)
	return sc, m, err
}

// Validate checks that the scorecard is internally consistent: valid scaling with the stored Factor
// and Offset, valid cut points, one attribute per bin with its label, and every attribute's points
// equal (within 1e-9 relative, exactly when rounded) to the formula applied to its WoE, the
// coefficient and the intercept.
func (s *Scorecard) Validate() error {
	factor, offset, err := s.Scaling.FactorOffset()
	if err != nil {
		return err
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }
	if !near(s.Factor, factor) || !near(s.Offset, offset) {
		return errf(ErrScorecard, "", "factor %v and offset %v do not follow from the scaling (%v, %v)", s.Factor, s.Offset, factor, offset)
	}
	if len(s.Characteristics) == 0 {
		return errf(ErrScorecard, "", "no characteristics")
	}
	fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !fin(s.Intercept) {
		return errf(ErrScorecard, "", "intercept %v is not finite", s.Intercept)
	}
	k := len(s.Characteristics)
	for _, c := range s.Characteristics {
		for i, e := range c.Edges {
			if !fin(e) || (i > 0 && e <= c.Edges[i-1]) {
				return errf(ErrScorecard, c.Feature, "cut point %d (%v) is not finite or not above the previous one", i, e)
			}
		}
		if len(c.Attributes) != len(c.Edges)+2 {
			return errf(ErrScorecard, c.Feature, "%d attributes for %d cut points: need one per bin and one for missing", len(c.Attributes), len(c.Edges))
		}
		if !fin(c.Coefficient) {
			return errf(ErrScorecard, c.Feature, "coefficient %v is not finite", c.Coefficient)
		}
		for i, a := range c.Attributes {
			if !fin(a.WoE) || !fin(a.Points) {
				return errf(ErrScorecard, c.Feature, "bin %d: WoE %v or points %v not finite", i, a.WoE, a.Points)
			}
			if want := BinLabel(c.Edges, i); a.Label != want {
				return errf(ErrScorecard, c.Feature, "bin %d is labelled %q, its cut points say %q", i, a.Label, want)
			}
			want := points(factor, offset, c.Coefficient, s.Intercept, a.WoE, k, s.Scaling.Round)
			if s.Scaling.Round && a.Points != want || !near(a.Points, want) {
				return errf(ErrScorecard, c.Feature, "bin %d has %v points; its WoE, coefficient and intercept give %v", i, a.Points, want)
			}
		}
	}
	return nil
}

// ParseScorecard reads a scorecard from JSON and validates it. Unknown fields are errors.
func ParseScorecard(b []byte) (*Scorecard, error) {
	var s Scorecard
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, errf(ErrScorecard, "", "decode JSON: %v", err)
	}
	if dec.More() {
		return nil, errf(ErrScorecard, "", "trailing data after the scorecard")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Features returns the characteristic names in order.
func (s *Scorecard) Features() []string {
	out := make([]string, len(s.Characteristics))
	for j, c := range s.Characteristics {
		out[j] = c.Feature
	}
	return slices.Clip(out)
}
