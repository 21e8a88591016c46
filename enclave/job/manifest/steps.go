package manifest

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"insitu/connectors/catalog"
	"insitu/modeling/features"
)

// ErrNoDefault is returned by DefaultSteps for a field that has no default transform: one that is
// not a model feature.
var ErrNoDefault = errors.New("no default transform")

// DefaultAgeReference is the reference date of the default age step of a date field. It is fixed, so
// that a manifest's meaning never depends on when it is read; a bank that wants ages at another date
// writes the steps out.
const DefaultAgeReference = "2025-01-01"

func ptr[T any](v T) *T { return &v }

// DefaultSteps returns the transform a field gets when the manifest gives it none, chosen from its
// catalog type so that every output is bounded (and so acceptable in he mode):
//
//   - int, float: impute the training median, clip at the training 1 % and 99 % quantiles
//     (winsorise), standardise, clip to ±4 — centred, unit-scaled and bounded, which is what an HE
//     logistic regression needs to converge in few iterations (see modeling/helr.FeatureSpec: on
//     the default-credit benchmark min-max scaling to [−1, 1] instead leaves skewed columns
//     off-centre and ten iterations reach AUC 0.70 against 0.73);
//   - bool (0 or 1): impute the training median, clip to [0, 1], min-max scale to [0, 1];
//   - date: age in years at DefaultAgeReference, then as int;
//   - enum: impute the most frequent value, one-hot over the catalog's values in catalog order, with
//     an __other__ output for values outside them.
//
// Fields that are not features (identifiers, free text) have no default: ErrNoDefault.
func DefaultSteps(f *catalog.Field) ([]features.Step, error) {
	if !f.Feature() {
		return nil, fmt.Errorf("%w: field %q is a %s field, not a model feature", ErrNoDefault, f.Key, f.Role)
	}
	bounded := []features.Step{
		{Impute: &features.Impute{Strategy: features.ImputeMedian}},
		{Clip: &features.Clip{LowerQuantile: ptr(0.01), UpperQuantile: ptr(0.99)}},
		{Scale: &features.Scale{Method: features.ScaleStandard}},
		{Clip: &features.Clip{Min: ptr(-4.0), Max: ptr(4.0)}},
	}
	switch f.Type {
	case catalog.TypeInt, catalog.TypeFloat:
		return bounded, nil
	case catalog.TypeBool:
		return []features.Step{
			{Impute: &features.Impute{Strategy: features.ImputeMedian}},
			{Clip: &features.Clip{Min: ptr(0.0), Max: ptr(1.0)}},
			{Scale: &features.Scale{Method: features.ScaleMinMax, Range: []float64{0, 1}}},
		}, nil
	case catalog.TypeDate:
		return append([]features.Step{{Age: &features.Age{Reference: DefaultAgeReference, Unit: features.AgeYears}}}, bounded...), nil
	case catalog.TypeEnum:
		return []features.Step{
			{Impute: &features.Impute{Strategy: features.ImputeMostFrequent}},
			{OneHot: &features.OneHot{Categories: slices.Clone(f.Values), Unknown: features.UnknownOther}},
		}, nil
	}
	return nil, fmt.Errorf("%w: field %q has type %s", ErrNoDefault, f.Key, f.Type)
}

// kindOf returns the features kind a catalog field's column has.
func kindOf(f *catalog.Field) features.Kind {
	switch f.Type {
	case catalog.TypeDate:
		return features.Date
	case catalog.TypeEnum:
		return features.Categorical
	}
	return features.Numeric
}

const encoded features.Kind = 255

// checkSteps checks a field's steps without data: each step's parameters (features.Spec.Validate),
// that each applies to the kind of column it meets, and in he mode that a numeric output is clipped,
// scaled and bounded. It spells out the steps' defaults.
func checkSteps(f *Field, cf *catalog.Field, p string, he bool) error {
	for k := range f.Steps {
		if err := checkStep(&f.Steps[k], fmt.Sprintf("%s.steps[%d]", p, k)); err != nil {
			return err
		}
	}
	if err := (features.Spec{Columns: []features.ColumnSpec{f.ColumnSpec()}}).Validate(); err != nil {
		path := p + ".steps"
		var fe *features.Error
		if errors.As(err, &fe) && fe.Step > 0 {
			path = fmt.Sprintf("%s.steps[%d]", p, fe.Step-1)
			if fe.Op != "" {
				path += "." + fe.Op
			}
			return &Error{Path: path, Rule: RuleSteps, Message: fe.Detail, Err: err}
		}
		return &Error{Path: path, Rule: RuleSteps, Message: err.Error(), Err: err}
	}
	kind := kindOf(cf)
	iv := features.Interval{Low: math.Inf(-1), High: math.Inf(1)}
	if cf.Type == catalog.TypeBool {
		iv = features.Interval{Low: 0, High: 1}
	}
	clipped, scaled := false, false
	for k, s := range f.Steps {
		sp := fmt.Sprintf("%s.steps[%d]", p, k)
		need := func(op string, kinds ...features.Kind) error {
			if slices.Contains(kinds, kind) {
				return nil
			}
			if kind == encoded {
				return errAt(sp+"."+op, RuleSteps, "no step may follow onehot")
			}
			return errAt(sp+"."+op, RuleSteps, "%s is %s at this step; %s applies to %s", f.Key, kind, op, kindNames(kinds))
		}
		switch {
		case s.Age != nil:
			if err := need("age", features.Date); err != nil {
				return err
			}
			kind, iv = features.Numeric, features.Interval{Low: math.Inf(-1), High: math.Inf(1)}
		case s.Clip != nil:
			if err := need("clip", features.Numeric); err != nil {
				return err
			}
			c := s.Clip
			if c.Min != nil || c.LowerQuantile != nil {
				iv.Low = bound(c.Min, -math.MaxFloat64)
			}
			if c.Max != nil || c.UpperQuantile != nil {
				iv.High = bound(c.Max, math.MaxFloat64)
			}
			clipped = true
		case s.Impute != nil:
			if s.Impute.Value != nil || s.Impute.Strategy == features.ImputeMean || s.Impute.Strategy == features.ImputeMedian {
				if err := need("impute", features.Numeric); err != nil {
					return err
				}
				if v := s.Impute.Value; v != nil {
					iv = features.Interval{Low: min(iv.Low, *v), High: max(iv.High, *v)}
				}
			} else if err := need("impute", features.Categorical); err != nil {
				return err
			}
		case s.Scale != nil:
			if err := need("scale", features.Numeric); err != nil {
				return err
			}
			if s.Scale.Method == features.ScaleMinMax {
				iv = features.Interval{Low: s.Scale.Range[0], High: s.Scale.Range[1]}
			} else if !iv.Bounded() {
				iv = features.Interval{Low: math.Inf(-1), High: math.Inf(1)}
			}
			scaled = true
		case s.OneHot != nil:
			if err := need("onehot", features.Numeric, features.Categorical); err != nil {
				return err
			}
			kind = encoded
		}
	}
	switch kind {
	case features.Date:
		return errAt(p+".steps", RuleSteps, "%s is a date: its steps must start with age", f.Key)
	case features.Categorical:
		return errAt(p+".steps", RuleSteps, "%s is categorical: its steps must end with onehot", f.Key)
	case features.Numeric:
		if he && (!clipped || !scaled || !iv.Bounded()) {
			return errAt(p+".steps", RuleUnbounded, "in he mode a numeric feature must be bounded: clip %s (min and max, or quantiles) and scale it (minmax)", f.Key)
		}
	}
	return nil
}

// bound returns the fixed bound when given; a learned quantile bound is finite but unknown before
// the data is seen, and stands as learned (the largest finite float of its sign).
func bound(fixed *float64, learned float64) float64 {
	if fixed != nil {
		return *fixed
	}
	return learned
}

func kindNames(kinds []features.Kind) string {
	s := ""
	for i, k := range kinds {
		if i > 0 {
			s += " or "
		}
		s += k.String() + " columns"
	}
	return s
}

// checkStep checks the parameters whose paths are more precise than a step's, and spells out the
// defaults.
func checkStep(s *features.Step, sp string) error {
	if c := s.Clip; c != nil {
		for name, q := range map[string]*float64{"lower_quantile": c.LowerQuantile, "upper_quantile": c.UpperQuantile} {
			if q != nil && !(*q >= 0 && *q <= 1) {
				return errAt(sp+".clip."+name, RuleSteps, "quantile %v is outside [0, 1]", *q)
			}
		}
		if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
			return errAt(sp+".clip.min", RuleSteps, "min %v is above max %v", *c.Min, *c.Max)
		}
	}
	if sc := s.Scale; sc != nil && sc.Method == features.ScaleMinMax && sc.Range == nil {
		sc.Range = []float64{0, 1}
	}
	if o := s.OneHot; o != nil {
		if o.Unknown == "" {
			o.Unknown = features.UnknownOther
		}
		if len(o.Categories) > MaxCategories {
			return errAt(sp+".onehot.categories", RuleSize, "%d categories, more than %d", len(o.Categories), MaxCategories)
		}
	}
	if a := s.Age; a != nil && a.Unit == "" {
		a.Unit = features.AgeYears
	}
	return nil
}
