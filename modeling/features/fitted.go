package features

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// Fitted is a spec with every learned statistic filled in. Marshal it with encoding/json and read it
// back with ParseFitted.
type Fitted struct {
	Columns []FittedColumn `json:"columns"`
}

// FittedColumn is one input column's fitted steps.
type FittedColumn struct {
	Column string       `json:"column"` // input column
	Name   string       `json:"name"`   // output name (prefix)
	Kind   Kind         `json:"kind"`   // kind the input column must have
	Steps  []FittedStep `json:"steps,omitempty"`
	// Outputs are the output feature names, in order (derived from the steps; kept for readers).
	Outputs []string `json:"outputs"`
}

// FittedStep is one fitted step; exactly one field is set.
type FittedStep struct {
	Clip   *ClipFit   `json:"clip,omitempty"`
	Impute *ImputeFit `json:"impute,omitempty"`
	Scale  *ScaleFit  `json:"scale,omitempty"`
	OneHot *OneHotFit `json:"onehot,omitempty"`
	Age    *AgeFit    `json:"age,omitempty"`
}

// ClipFit clips to [Min, Max]; a nil side is unbounded.
type ClipFit struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// ImputeFit fills missing values with Value (numeric) or Category (categorical).
type ImputeFit struct {
	Value     *float64 `json:"value,omitempty"`
	Category  *string  `json:"category,omitempty"`
	Indicator bool     `json:"indicator,omitempty"`
}

// ScaleFit is a fitted scaling: (x − Mean)/Std for ScaleStandard; for ScaleMinMax, [Min, Max] maps
// linearly onto Range, clamped to Range.
type ScaleFit struct {
	Method ScaleMethod `json:"method"`
	Mean   float64     `json:"mean"`
	Std    float64     `json:"std"`
	Min    float64     `json:"min"`
	Max    float64     `json:"max"`
	Range  []float64   `json:"range,omitempty"`
}

// OneHotFit encodes Categories in order, with the unknown-category policy Unknown.
type OneHotFit struct {
	Categories []string      `json:"categories"`
	Unknown    UnknownPolicy `json:"unknown"`
}

// AgeFit measures ages at Reference ("YYYY-MM-DD") in Unit.
type AgeFit struct {
	Reference string  `json:"reference"`
	Unit      AgeUnit `json:"unit,omitempty"`
}

func (s FittedStep) op() string {
	op, n := "", 0
	for _, c := range []struct {
		set  bool
		name string
	}{{s.Clip != nil, "clip"}, {s.Impute != nil, "impute"}, {s.Scale != nil, "scale"}, {s.OneHot != nil, "onehot"}, {s.Age != nil, "age"}} {
		if c.set {
			op, n = c.name, n+1
		}
	}
	if n != 1 {
		return ""
	}
	return op
}

// apply runs the step on a state.
func (s FittedStep) apply(st *state, w where, name string) error {
	switch w.op {
	case "clip":
		return s.Clip.apply(st, w)
	case "impute":
		return s.Impute.apply(st, w, name)
	case "scale":
		return s.Scale.apply(st, w)
	case "onehot":
		return s.OneHot.apply(st, w, name)
	case "age":
		return s.Age.apply(st, w)
	}
	return w.err(0, ErrSpec, "a fitted step must set exactly one of clip, impute, scale, onehot, age")
}

// fitStep learns one step's statistics from the state.
func fitStep(s Step, st *state, w where) (FittedStep, error) {
	var f FittedStep
	var err error
	switch w.op {
	case "clip":
		f.Clip, err = fitClip(s.Clip, st, w)
	case "impute":
		f.Impute, err = fitImpute(s.Impute, st, w)
	case "scale":
		f.Scale, err = fitScale(s.Scale, st, w)
	case "onehot":
		f.OneHot, err = fitOneHot(s.OneHot, st, w)
	case "age":
		unit := s.Age.Unit
		if unit == "" {
			unit = AgeYears
		}
		f.Age = &AgeFit{Reference: s.Age.Reference, Unit: unit}
	}
	return f, err
}

// index maps input columns by name and returns their common length.
func index(cols []Column) (map[string]Column, int, error) {
	m := make(map[string]Column, len(cols))
	n := -1
	for _, c := range cols {
		if _, dup := m[c.Name]; dup {
			return nil, 0, &Error{Column: c.Name, Err: ErrColumns, Detail: "two input columns have this name"}
		}
		m[c.Name] = c
		if n >= 0 && c.Len() != n {
			return nil, 0, &Error{Column: c.Name, Err: ErrColumns, Detail: fmt.Sprintf("%d rows where earlier columns have %d", c.Len(), n)}
		}
		n = c.Len()
	}
	if n <= 0 {
		return nil, 0, &Error{Err: ErrEmpty}
	}
	return m, n, nil
}

func lookup(m map[string]Column, name string) (Column, error) {
	c, ok := m[name]
	if !ok {
		return Column{}, &Error{Column: name, Err: ErrNoColumn, Detail: "check the spelling or add the column to the input"}
	}
	return c, nil
}

// Fit validates the spec, learns each step's statistics from the training columns (each step from
// the output of the steps before it) and returns the fitted pipeline. Input columns are matched by
// name; columns the spec does not name are ignored.
func Fit(spec Spec, cols []Column) (*Fitted, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	m, _, err := index(cols)
	if err != nil {
		return nil, err
	}
	f := &Fitted{}
	for _, cs := range spec.Columns {
		c, err := lookup(m, cs.Column)
		if err != nil {
			return nil, err
		}
		st, err := newState(c)
		if err != nil {
			return nil, err
		}
		name := cs.outputName()
		fc := FittedColumn{Column: cs.Column, Name: name, Kind: c.Kind}
		for k, step := range cs.Steps {
			w := where{column: cs.Column, step: k + 1, op: step.op()}
			fs, err := fitStep(step, st, w)
			if err != nil {
				return nil, err
			}
			if err := fs.apply(st, w, name); err != nil {
				return nil, err
			}
			fc.Steps = append(fc.Steps, fs)
		}
		outs, err := st.finish(cs.Column, name)
		if err != nil {
			return nil, err
		}
		for _, o := range outs {
			fc.Outputs = append(fc.Outputs, o.name)
		}
		f.Columns = append(f.Columns, fc)
	}
	if err := f.checkNames(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Fitted) checkNames() error {
	seen := map[string]string{}
	for _, c := range f.Columns {
		for _, o := range c.Outputs {
			if prev, dup := seen[o]; dup {
				return &Error{Column: c.Column, Err: ErrSpec, Detail: fmt.Sprintf("output %q is also produced by column %q; give one of them a name", o, prev)}
			}
			seen[o] = c.Column
		}
	}
	return nil
}

// Names returns the output feature names, one per column of Transform's matrix.
func (f *Fitted) Names() []string {
	var names []string
	for _, c := range f.Columns {
		names = append(names, c.Outputs...)
	}
	return names
}

// Transform applies the fitted steps to columns of any number of rows and returns the features as a
// row-major n × len(Names()) matrix, with the names. Input columns are matched by name and must have
// the kinds they had at fit.
func (f *Fitted) Transform(cols []Column) (*mat.Dense, []string, error) {
	m, n, err := index(cols)
	if err != nil {
		return nil, nil, err
	}
	names := f.Names()
	if len(names) == 0 {
		return nil, nil, &Error{Err: ErrSpec, Detail: "the pipeline has no outputs"}
	}
	p := len(names)
	data := make([]float64, n*p)
	j := 0
	for _, fc := range f.Columns {
		c, err := lookup(m, fc.Column)
		if err != nil {
			return nil, nil, err
		}
		if c.Kind != fc.Kind {
			return nil, nil, &Error{Column: fc.Column, Err: ErrKind, Detail: fmt.Sprintf("the column is %s but was %s at fit", c.Kind, fc.Kind)}
		}
		outs, err := fc.run(c)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range outs {
			for i, v := range o.v {
				data[i*p+j] = v
			}
			j++
		}
	}
	return mat.NewDense(n, p, data), names, nil
}

// run applies a fitted column's steps and checks its outputs match the recorded names.
func (fc FittedColumn) run(c Column) ([]output, error) {
	st, err := newState(c)
	if err != nil {
		return nil, err
	}
	for k, s := range fc.Steps {
		if err := s.apply(st, where{column: fc.Column, step: k + 1, op: s.op()}, fc.Name); err != nil {
			return nil, err
		}
	}
	outs, err := st.finish(fc.Column, fc.Name)
	if err != nil {
		return nil, err
	}
	if len(outs) != len(fc.Outputs) {
		return nil, &Error{Column: fc.Column, Err: ErrSpec, Detail: fmt.Sprintf("the steps give %d outputs but %d are recorded", len(outs), len(fc.Outputs))}
	}
	for k, o := range outs {
		if o.name != fc.Outputs[k] {
			return nil, &Error{Column: fc.Column, Err: ErrSpec, Detail: fmt.Sprintf("output %d is %q but %q is recorded", k+1, o.name, fc.Outputs[k])}
		}
	}
	return outs, nil
}

// Interval is a closed range [Low, High]; either end may be infinite.
type Interval struct {
	Low, High float64
}

// Bounded reports whether both ends are finite.
func (iv Interval) Bounded() bool { return !math.IsInf(iv.Low, 0) && !math.IsInf(iv.High, 0) }

// Bounds returns, for every output (in Names order), the range its values are guaranteed to lie in
// for any input, derived from the steps alone: clipping and min-max scaling bound a value,
// standard scaling maps a bounded range to a bounded range and an unbounded one to an unbounded one,
// indicator and one-hot outputs lie in [0, 1].
func (f *Fitted) Bounds() []Interval {
	var b []Interval
	for _, fc := range f.Columns {
		iv := Interval{math.Inf(-1), math.Inf(1)}
		var extra []Interval
		onehot := 0
		for _, s := range fc.Steps {
			switch {
			case s.Clip != nil:
				lo, hi := math.Inf(-1), math.Inf(1)
				if s.Clip.Min != nil {
					lo = *s.Clip.Min
				}
				if s.Clip.Max != nil {
					hi = *s.Clip.Max
				}
				iv = Interval{min(max(iv.Low, lo), hi), min(max(iv.High, lo), hi)}
			case s.Impute != nil:
				if s.Impute.Value != nil {
					iv = Interval{min(iv.Low, *s.Impute.Value), max(iv.High, *s.Impute.Value)}
				}
				if s.Impute.Indicator {
					extra = append(extra, Interval{0, 1})
				}
			case s.Scale != nil:
				iv = Interval{s.Scale.scale(iv.Low), s.Scale.scale(iv.High)}
			case s.OneHot != nil:
				onehot = len(s.OneHot.Categories)
				if s.OneHot.Unknown == UnknownOther {
					onehot++
				}
			case s.Age != nil:
				iv = Interval{math.Inf(-1), math.Inf(1)}
			}
		}
		if onehot > 0 {
			for range onehot {
				b = append(b, Interval{0, 1})
			}
		} else {
			b = append(b, iv)
		}
		b = append(b, extra...)
	}
	return b
}

// RequireBounded checks that every output is guaranteed to lie in [low, high], and otherwise names
// the first output that may not.
func (f *Fitted) RequireBounded(low, high float64) error {
	names := f.Names()
	b := f.Bounds()
	k := 0
	for _, fc := range f.Columns {
		for range fc.Outputs {
			if iv := b[k]; !(iv.Low >= low && iv.High <= high) {
				return &Error{Column: fc.Column, Err: ErrUnbounded, Detail: fmt.Sprintf("output %q may range over [%v, %v], outside [%v, %v]; clip the column and scale it with minmax",
					names[k], iv.Low, iv.High, low, high)}
			}
			k++
		}
	}
	return nil
}

// ParseFitted decodes a fitted pipeline written by encoding/json, rejecting unknown fields, and checks
// that it is well formed: known kinds, one operation per step, finite parameters, steps that apply
// to the kinds they meet, and outputs that match the steps.
func ParseFitted(data []byte) (*Fitted, error) {
	var f Fitted
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, &Error{Detail: err.Error(), Err: ErrSpec}
	}
	if dec.More() {
		return nil, &Error{Detail: "trailing data after the pipeline", Err: ErrSpec}
	}
	if len(f.Columns) == 0 {
		return nil, &Error{Detail: "the pipeline has no columns", Err: ErrSpec}
	}
	for _, fc := range f.Columns {
		if fc.Column == "" || fc.Name == "" {
			return nil, &Error{Detail: "a column entry has no column or no name", Err: ErrSpec}
		}
		for k, s := range fc.Steps {
			if err := s.validate(); err != nil {
				return nil, &Error{Column: fc.Column, Step: k + 1, Op: s.op(), Err: ErrSpec, Detail: err.Error()}
			}
		}
		// Running the steps on an empty column checks the kinds they meet and the output names.
		if _, err := fc.run(Column{Name: fc.Column, Kind: fc.Kind}); err != nil {
			return nil, err
		}
	}
	if err := f.checkNames(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (s FittedStep) validate() error {
	fin := func(p *float64) bool { return p == nil || finite(*p) }
	switch s.op() {
	case "":
		return fmt.Errorf("a step must set exactly one of clip, impute, scale, onehot, age")
	case "clip":
		if !fin(s.Clip.Min) || !fin(s.Clip.Max) || (s.Clip.Min != nil && s.Clip.Max != nil && *s.Clip.Min > *s.Clip.Max) {
			return fmt.Errorf("bounds must be finite with min <= max")
		}
	case "impute":
		if (s.Impute.Value == nil) == (s.Impute.Category == nil) || !fin(s.Impute.Value) {
			return fmt.Errorf("exactly one of a finite value or a category is needed")
		}
	case "scale":
		c := s.Scale
		switch c.Method {
		case ScaleStandard:
			if !finite(c.Mean) || !finite(c.Std) || c.Std <= 0 {
				return fmt.Errorf("mean must be finite and std finite and > 0")
			}
		case ScaleMinMax:
			if !finite(c.Min) || !finite(c.Max) || c.Min > c.Max || len(c.Range) != 2 || !finite(c.Range[0]) || !finite(c.Range[1]) || c.Range[0] >= c.Range[1] {
				return fmt.Errorf("min <= max and a range low < high, all finite, are needed")
			}
		default:
			return fmt.Errorf("unknown method %q", c.Method)
		}
	case "onehot":
		o := s.OneHot
		switch o.Unknown {
		case UnknownOther, UnknownIgnore, UnknownError:
		default:
			return fmt.Errorf("unknown policy %q", o.Unknown)
		}
		if len(o.Categories) == 0 && o.Unknown != UnknownOther {
			return fmt.Errorf("no categories")
		}
		if len(slices.Compact(slices.Sorted(slices.Values(o.Categories)))) != len(o.Categories) {
			return fmt.Errorf("a category is listed twice")
		}
	case "age":
		if _, err := ParseDate(s.Age.Reference); err != nil {
			return err
		}
		if s.Age.Unit != AgeYears && s.Age.Unit != AgeDays {
			return fmt.Errorf("unknown unit %q", s.Age.Unit)
		}
	}
	return nil
}
