// Package features turns input columns into a numeric feature matrix by per-column transform steps:
// clip, impute, scale, one-hot and date → age.
//
// Call Fit with a Spec and the training columns: it learns every statistic the steps need (quantile
// clip bounds, imputation values, scaling statistics, categories) and returns a *Fitted pipeline.
// Call (*Fitted).Transform on training, test or scoring columns to get a row-major *mat.Dense and
// the output feature names. A Fitted pipeline marshals to JSON (ParseFitted reads it back), so a
// released model carries its transforms.
//
// # Specs
//
// A Spec lists input columns, each with its steps applied in order. Each step sets exactly one of
// its fields. In YAML, as a job manifest embeds it:
//
//	columns:
//	  - column: tax_arrears.amount_24m
//	    steps:
//	      - impute: {strategy: median, indicator: true}
//	      - clip: {lower_quantile: 0.01, upper_quantile: 0.99}
//	      - scale: {method: minmax, range: [-1, 1]}
//	  - column: registration.established_on
//	    name: enterprise_age
//	    steps:
//	      - age: {reference: "2024-06-30", unit: years}
//	      - clip: {min: 0, max: 50}
//	      - scale: {method: standard}
//	  - column: registration.industry
//	    steps:
//	      - impute: {strategy: constant, category: unknown}
//	      - onehot: {max_categories: 20, unknown: other}
//
// A numeric column passes clip, impute and scale steps and gives one output; a date column must start
// with age, which makes it numeric; a categorical column (or a numeric column of codes) must end with
// onehot, which gives one output per category. An impute step with indicator set adds one more
// output, 1 where the value was missing. Missing values pass through clip and scale untouched, and a
// missing value that reaches the output without an impute step is an error naming its row.
//
// # Bounded outputs
//
// Encrypted training needs every feature inside a known range. Standard scaling alone is unbounded
// (a new row may lie any number of standard deviations out). Min-max scaling clamps its output to
// its target range, clipping bounds its output, and indicator and one-hot outputs lie in [0, 1].
// (*Fitted).Bounds reports the guaranteed range of every output and RequireBounded checks them;
// Bounded builds the usual column spec: impute the median, clip at learned quantiles, min-max scale
// to [−1, 1].
//
// Errors are *Error values naming the column, the step and, where one value is to blame, its row;
// they wrap ErrSpec, ErrNoColumn, ErrKind, ErrMissingValue, ErrNotFinite, ErrNoData,
// ErrUnknownCategory, ErrEmpty, ErrColumns or ErrUnbounded.
package features

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Spec is the list of input columns to transform; the output holds their outputs in this order.
type Spec struct {
	Columns []ColumnSpec `json:"columns" yaml:"columns"`
}

// ColumnSpec says how one input column becomes one or more features.
type ColumnSpec struct {
	// Column is the input column's name.
	Column string `json:"column" yaml:"column"`
	// Name is the output feature's name (the prefix of one-hot and indicator outputs); default Column.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Steps are applied in order.
	Steps []Step `json:"steps,omitempty" yaml:"steps,omitempty"`
}

// Step is one transform; exactly one field is set.
type Step struct {
	Clip   *Clip   `json:"clip,omitempty" yaml:"clip,omitempty"`
	Impute *Impute `json:"impute,omitempty" yaml:"impute,omitempty"`
	Scale  *Scale  `json:"scale,omitempty" yaml:"scale,omitempty"`
	OneHot *OneHot `json:"onehot,omitempty" yaml:"onehot,omitempty"`
	Age    *Age    `json:"age,omitempty" yaml:"age,omitempty"`
}

// Clip limits numeric values to bounds, each either fixed (Min, Max) or learned at fit as a quantile
// of the training values (LowerQuantile, UpperQuantile, in [0, 1], linearly interpolated as numpy's
// default). A side left unset is unbounded; at least one side must be set.
type Clip struct {
	Min           *float64 `json:"min,omitempty" yaml:"min,omitempty"`
	Max           *float64 `json:"max,omitempty" yaml:"max,omitempty"`
	LowerQuantile *float64 `json:"lower_quantile,omitempty" yaml:"lower_quantile,omitempty"`
	UpperQuantile *float64 `json:"upper_quantile,omitempty" yaml:"upper_quantile,omitempty"`
}

// ImputeStrategy names how an Impute step fills missing values.
type ImputeStrategy string

// Impute strategies.
const (
	ImputeMean         ImputeStrategy = "mean"          // numeric: training mean
	ImputeMedian       ImputeStrategy = "median"        // numeric: training median
	ImputeConstant     ImputeStrategy = "constant"      // Value (numeric) or Category (categorical)
	ImputeMostFrequent ImputeStrategy = "most_frequent" // categorical: commonest training category
)

// Impute fills missing values. Statistics are learned from the non-missing training values.
type Impute struct {
	Strategy ImputeStrategy `json:"strategy" yaml:"strategy"`
	// Value is the fill for ImputeConstant on a numeric column.
	Value *float64 `json:"value,omitempty" yaml:"value,omitempty"`
	// Category is the fill for ImputeConstant on a categorical column.
	Category *string `json:"category,omitempty" yaml:"category,omitempty"`
	// Indicator adds an output "<name>_missing": 1 where the value was missing, else 0.
	Indicator bool `json:"indicator,omitempty" yaml:"indicator,omitempty"`
}

// ScaleMethod names a scaling.
type ScaleMethod string

// Scale methods.
const (
	// ScaleStandard maps x to (x − mean)/std with the training mean and population standard
	// deviation (a constant column gets std 1). Unbounded unless clipped before.
	ScaleStandard ScaleMethod = "standard"
	// ScaleMinMax maps the training minimum and maximum onto Range linearly and clamps to Range, so
	// the output is always inside Range (a constant column maps to Range[0]).
	ScaleMinMax ScaleMethod = "minmax"
)

// Scale rescales numeric values.
type Scale struct {
	Method ScaleMethod `json:"method" yaml:"method"`
	// Range is the target [low, high] of ScaleMinMax; default [0, 1].
	Range []float64 `json:"range,omitempty" yaml:"range,omitempty"`
}

// UnknownPolicy says what OneHot does with a category outside its list.
type UnknownPolicy string

// Unknown-category policies.
const (
	// UnknownOther adds an output "<name>=__other__" that is 1 for every category outside the list
	// (including those cut by MaxCategories). The default.
	UnknownOther UnknownPolicy = "other"
	// UnknownIgnore encodes a category outside the list as all zeros.
	UnknownIgnore UnknownPolicy = "ignore"
	// UnknownError makes Transform fail on a category outside the list.
	UnknownError UnknownPolicy = "error"
)

// OtherCategory is the category name of the UnknownOther output.
const OtherCategory = "__other__"

// OneHot encodes a categorical column (or a numeric column of codes, read as their shortest decimal
// form: 2 → "2", 2.5 → "2.5") as one 0/1 output "<name>=<category>" per category.
type OneHot struct {
	// Categories, when given, are the categories in output order; nothing is learned.
	Categories []string `json:"categories,omitempty" yaml:"categories,omitempty"`
	// MaxCategories caps the learned categories to the most frequent ones (ties: lexically first);
	// 0 keeps all. Learned categories are output in lexical order.
	MaxCategories int `json:"max_categories,omitempty" yaml:"max_categories,omitempty"`
	// Unknown is the policy for other categories; default UnknownOther.
	Unknown UnknownPolicy `json:"unknown,omitempty" yaml:"unknown,omitempty"`
}

// AgeUnit is the unit of an Age step's output.
type AgeUnit string

// Age units.
const (
	AgeYears AgeUnit = "years" // (reference − date) in days / 365.25
	AgeDays  AgeUnit = "days"  // (reference − date) in days
)

// Age turns a date column into the time elapsed from the date to Reference (negative for dates after
// it). The reference is part of the spec, never the current time, so a transform is reproducible.
type Age struct {
	// Reference is the date ages are measured at, "YYYY-MM-DD".
	Reference string `json:"reference" yaml:"reference"`
	// Unit is AgeYears (default) or AgeDays.
	Unit AgeUnit `json:"unit,omitempty" yaml:"unit,omitempty"`
}

// op returns the name of the step's one operation, or "" if not exactly one field is set.
func (s Step) op() string {
	var ops []string
	if s.Clip != nil {
		ops = append(ops, "clip")
	}
	if s.Impute != nil {
		ops = append(ops, "impute")
	}
	if s.Scale != nil {
		ops = append(ops, "scale")
	}
	if s.OneHot != nil {
		ops = append(ops, "onehot")
	}
	if s.Age != nil {
		ops = append(ops, "age")
	}
	if len(ops) != 1 {
		return ""
	}
	return ops[0]
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Validate checks the spec on its own, before any data: names, exactly one operation per step, and
// each operation's parameters. Fit also checks each step against its column's kind.
func (s Spec) Validate() error {
	if len(s.Columns) == 0 {
		return &Error{Detail: "the spec lists no columns", Err: ErrSpec}
	}
	for _, c := range s.Columns {
		if c.Column == "" {
			return &Error{Detail: "a column entry has no column name", Err: ErrSpec}
		}
		for k, st := range c.Steps {
			if err := st.validate(); err != nil {
				return &Error{Column: c.Column, Step: k + 1, Op: st.op(), Detail: err.Error(), Err: ErrSpec}
			}
		}
	}
	return nil
}

func (s Step) validate() error {
	switch s.op() {
	case "":
		return fmt.Errorf("a step must set exactly one of clip, impute, scale, onehot, age")
	case "clip":
		c := s.Clip
		for _, q := range []*float64{c.LowerQuantile, c.UpperQuantile} {
			if q != nil && !(*q >= 0 && *q <= 1) {
				return fmt.Errorf("quantile %v is outside [0, 1]", *q)
			}
		}
		for _, v := range []*float64{c.Min, c.Max} {
			if v != nil && !finite(*v) {
				return fmt.Errorf("bound %v is not finite", *v)
			}
		}
		switch {
		case c.Min != nil && c.LowerQuantile != nil:
			return fmt.Errorf("set min or lower_quantile, not both")
		case c.Max != nil && c.UpperQuantile != nil:
			return fmt.Errorf("set max or upper_quantile, not both")
		case c.Min == nil && c.Max == nil && c.LowerQuantile == nil && c.UpperQuantile == nil:
			return fmt.Errorf("set at least one of min, max, lower_quantile, upper_quantile")
		case c.Min != nil && c.Max != nil && *c.Min > *c.Max:
			return fmt.Errorf("min %v is above max %v", *c.Min, *c.Max)
		case c.LowerQuantile != nil && c.UpperQuantile != nil && *c.LowerQuantile > *c.UpperQuantile:
			return fmt.Errorf("lower_quantile %v is above upper_quantile %v", *c.LowerQuantile, *c.UpperQuantile)
		}
	case "impute":
		m := s.Impute
		switch m.Strategy {
		case ImputeMean, ImputeMedian, ImputeMostFrequent:
			if m.Value != nil || m.Category != nil {
				return fmt.Errorf("value and category apply to strategy constant only")
			}
		case ImputeConstant:
			if (m.Value == nil) == (m.Category == nil) {
				return fmt.Errorf("strategy constant needs exactly one of value (numeric) or category (categorical)")
			}
			if m.Value != nil && !finite(*m.Value) {
				return fmt.Errorf("value %v is not finite", *m.Value)
			}
		default:
			return fmt.Errorf("unknown strategy %q: use mean, median, constant or most_frequent", m.Strategy)
		}
	case "scale":
		switch s.Scale.Method {
		case ScaleStandard:
			if s.Scale.Range != nil {
				return fmt.Errorf("range applies to method minmax only")
			}
		case ScaleMinMax:
			if r := s.Scale.Range; r != nil && (len(r) != 2 || !finite(r[0]) || !finite(r[1]) || r[0] >= r[1]) {
				return fmt.Errorf("range %v must be two finite numbers, low < high", r)
			}
		default:
			return fmt.Errorf("unknown method %q: use standard or minmax", s.Scale.Method)
		}
	case "onehot":
		o := s.OneHot
		switch o.Unknown {
		case "", UnknownOther, UnknownIgnore, UnknownError:
		default:
			return fmt.Errorf("unknown policy %q: use other, ignore or error", o.Unknown)
		}
		if o.MaxCategories < 0 {
			return fmt.Errorf("max_categories %d is negative", o.MaxCategories)
		}
		if o.MaxCategories > 0 && o.Categories != nil {
			return fmt.Errorf("max_categories applies to learned categories only")
		}
		if o.MaxCategories > 0 && o.Unknown == UnknownError {
			return fmt.Errorf("max_categories cuts categories, which unknown: error would then reject; use other or ignore")
		}
		if o.Categories != nil && len(o.Categories) == 0 {
			return fmt.Errorf("categories is empty")
		}
		seen := map[string]bool{}
		for _, c := range o.Categories {
			if seen[c] {
				return fmt.Errorf("category %q is listed twice", c)
			}
			seen[c] = true
		}
	case "age":
		if _, err := ParseDate(s.Age.Reference); err != nil {
			return fmt.Errorf("reference: %w", err)
		}
		switch s.Age.Unit {
		case "", AgeYears, AgeDays:
		default:
			return fmt.Errorf("unknown unit %q: use years or days", s.Age.Unit)
		}
	}
	return nil
}

// ParseSpec decodes a JSON spec, rejecting unknown fields, and validates it.
func ParseSpec(data []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, &Error{Detail: err.Error(), Err: ErrSpec}
	}
	if dec.More() {
		return Spec{}, &Error{Detail: "trailing data after the spec", Err: ErrSpec}
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

func ptr[T any](v T) *T { return &v }

// Standardized returns a spec for a numeric column with no missing values: standard scaling with the
// training mean and standard deviation. Its output is unbounded.
func Standardized(column string) ColumnSpec {
	return ColumnSpec{Column: column, Steps: []Step{{Scale: &Scale{Method: ScaleStandard}}}}
}

// Bounded returns a spec that maps a numeric column into [−1, 1] for any input: missing values take
// the training median, values are clipped at the training quantiles lowerQ and upperQ (e.g. 0.01 and
// 0.99), then min-max scaled to [−1, 1].
func Bounded(column string, lowerQ, upperQ float64) ColumnSpec {
	return ColumnSpec{Column: column, Steps: []Step{
		{Impute: &Impute{Strategy: ImputeMedian}},
		{Clip: &Clip{LowerQuantile: ptr(lowerQ), UpperQuantile: ptr(upperQ)}},
		{Scale: &Scale{Method: ScaleMinMax, Range: []float64{-1, 1}}},
	}}
}

// outputName is the name of a column spec's output.
func (c ColumnSpec) outputName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.Column
}

// sortedKeys returns the keys of a count map ordered by count, then lexically.
func sortedKeys(counts map[string]int) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	return keys
}
