package features

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// encoded is the kind of a column after onehot: its outputs are final.
const encoded Kind = 255

// state is one column on its way through the steps. Only the slice for kind is used; miss has one
// flag per row. outs holds onehot outputs, extra the indicator outputs.
type state struct {
	kind  Kind
	n     int
	num   []float64
	str   []string
	days  []int32
	miss  []bool
	outs  []output
	extra []output
}

type output struct {
	name string
	v    []float64
}

// where names a step for error messages.
type where struct {
	column string
	step   int
	op     string
}

func (w where) err(row int, sentinel error, format string, args ...any) *Error {
	return &Error{Column: w.column, Step: w.step, Op: w.op, Row: row, Detail: fmt.Sprintf(format, args...), Err: sentinel}
}

// newState copies a column into a state, checking for infinite values.
func newState(c Column) (*state, error) {
	n := c.Len()
	if c.Missing != nil && len(c.Missing) != n {
		return nil, &Error{Column: c.Name, Err: ErrColumns, Detail: fmt.Sprintf("%d values but %d missing flags", n, len(c.Missing))}
	}
	s := &state{kind: c.Kind, n: n, miss: make([]bool, n)}
	for i := range n {
		s.miss[i] = c.IsMissing(i)
	}
	switch c.Kind {
	case Numeric:
		s.num = slices.Clone(c.Values)
		for i, v := range s.num {
			if math.IsInf(v, 0) && !s.miss[i] {
				return nil, &Error{Column: c.Name, Row: i + 1, Err: ErrNotFinite, Detail: fmt.Sprintf("got %v; use NaN or the missing mask for a missing value", v)}
			}
		}
	case Categorical:
		s.str = slices.Clone(c.Strings)
	case Date:
		s.days = slices.Clone(c.Days)
	default:
		return nil, &Error{Column: c.Name, Err: ErrKind, Detail: fmt.Sprintf("unknown column kind %d", c.Kind)}
	}
	return s, nil
}

// present returns the non-missing numeric values.
func (s *state) present() []float64 {
	v := make([]float64, 0, s.n)
	for i, x := range s.num {
		if !s.miss[i] {
			v = append(v, x)
		}
	}
	return v
}

func (s *state) needKind(w where, kinds ...Kind) error {
	if slices.Contains(kinds, s.kind) {
		return nil
	}
	if s.kind == encoded {
		return w.err(0, ErrKind, "no step may follow onehot")
	}
	return w.err(0, ErrKind, "the column is %s here; %s applies to %s", s.kind, w.op, kindList(kinds))
}

func kindList(kinds []Kind) string {
	s := ""
	for i, k := range kinds {
		if i > 0 {
			s += " or "
		}
		s += k.String()
	}
	return s
}

// quantile returns the q-quantile of sorted values, interpolating linearly between order statistics
// (numpy's default, Hyndman–Fan type 7).
func quantile(sorted []float64, q float64) float64 {
	h := q * float64(len(sorted)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-lo)*(sorted[i+1]-sorted[i])
}

// fitClip learns quantile bounds.
func fitClip(c *Clip, s *state, w where) (*ClipFit, error) {
	if err := s.needKind(w, Numeric); err != nil {
		return nil, err
	}
	f := &ClipFit{Min: c.Min, Max: c.Max}
	if c.LowerQuantile != nil || c.UpperQuantile != nil {
		v := s.present()
		if len(v) == 0 {
			return nil, w.err(0, ErrNoData, "cannot learn quantile bounds")
		}
		slices.Sort(v)
		if c.LowerQuantile != nil {
			f.Min = ptr(quantile(v, *c.LowerQuantile))
		}
		if c.UpperQuantile != nil {
			f.Max = ptr(quantile(v, *c.UpperQuantile))
		}
	}
	return f, nil
}

func (f *ClipFit) apply(s *state, w where) error {
	if err := s.needKind(w, Numeric); err != nil {
		return err
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	if f.Min != nil {
		lo = *f.Min
	}
	if f.Max != nil {
		hi = *f.Max
	}
	for i, v := range s.num {
		if !s.miss[i] {
			s.num[i] = min(max(v, lo), hi)
		}
	}
	return nil
}

// fitImpute learns the fill value.
func fitImpute(m *Impute, s *state, w where) (*ImputeFit, error) {
	f := &ImputeFit{Indicator: m.Indicator}
	switch m.Strategy {
	case ImputeMean, ImputeMedian:
		if err := s.needKind(w, Numeric); err != nil {
			return nil, err
		}
		v := s.present()
		if len(v) == 0 {
			return nil, w.err(0, ErrNoData, "cannot learn the %s", m.Strategy)
		}
		if m.Strategy == ImputeMean {
			f.Value = ptr(mean(v))
		} else {
			slices.Sort(v)
			f.Value = ptr(quantile(v, 0.5))
		}
	case ImputeConstant:
		if m.Value != nil {
			if err := s.needKind(w, Numeric); err != nil {
				return nil, err
			}
			f.Value = ptr(*m.Value)
		} else {
			if err := s.needKind(w, Categorical); err != nil {
				return nil, err
			}
			f.Category = ptr(*m.Category)
		}
	case ImputeMostFrequent:
		if err := s.needKind(w, Categorical); err != nil {
			return nil, err
		}
		counts := map[string]int{}
		for i, v := range s.str {
			if !s.miss[i] {
				counts[v]++
			}
		}
		if len(counts) == 0 {
			return nil, w.err(0, ErrNoData, "cannot learn the most frequent category")
		}
		f.Category = ptr(sortedKeys(counts)[0])
	}
	return f, nil
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func (f *ImputeFit) apply(s *state, w where, name string) error {
	if f.Value != nil {
		if err := s.needKind(w, Numeric); err != nil {
			return err
		}
	} else if err := s.needKind(w, Categorical); err != nil {
		return err
	}
	if f.Indicator {
		ind := make([]float64, s.n)
		for i, m := range s.miss {
			if m {
				ind[i] = 1
			}
		}
		s.extra = append(s.extra, output{name: name + "_missing", v: ind})
	}
	for i, m := range s.miss {
		if !m {
			continue
		}
		if f.Value != nil {
			s.num[i] = *f.Value
		} else {
			s.str[i] = *f.Category
		}
		s.miss[i] = false
	}
	return nil
}

// fitScale learns the scaling statistics.
func fitScale(c *Scale, s *state, w where) (*ScaleFit, error) {
	if err := s.needKind(w, Numeric); err != nil {
		return nil, err
	}
	v := s.present()
	if len(v) == 0 {
		return nil, w.err(0, ErrNoData, "cannot learn %s scaling", c.Method)
	}
	f := &ScaleFit{Method: c.Method}
	switch c.Method {
	case ScaleStandard:
		m := mean(v)
		var ss float64
		for _, x := range v {
			ss += (x - m) * (x - m)
		}
		sd := math.Sqrt(ss / float64(len(v)))
		if sd == 0 {
			sd = 1
		}
		f.Mean, f.Std = m, sd
	case ScaleMinMax:
		f.Min, f.Max = slices.Min(v), slices.Max(v)
		f.Range = []float64{0, 1}
		if c.Range != nil {
			f.Range = slices.Clone(c.Range)
		}
	}
	return f, nil
}

func (f *ScaleFit) apply(s *state, w where) error {
	if err := s.needKind(w, Numeric); err != nil {
		return err
	}
	for i, x := range s.num {
		if !s.miss[i] {
			s.num[i] = f.scale(x)
		}
	}
	return nil
}

func (f *ScaleFit) scale(x float64) float64 {
	if f.Method == ScaleStandard {
		return (x - f.Mean) / f.Std
	}
	lo, hi := f.Range[0], f.Range[1]
	if f.Max <= f.Min {
		return lo
	}
	return min(max(lo+(x-f.Min)/(f.Max-f.Min)*(hi-lo), lo), hi)
}

// codes turns a numeric column of codes into categories.
func (s *state) codes() {
	if s.kind != Numeric {
		return
	}
	s.str = make([]string, s.n)
	for i, v := range s.num {
		if !s.miss[i] {
			s.str[i] = strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	s.num, s.kind = nil, Categorical
}

func (s *state) firstMissing() int {
	for i, m := range s.miss {
		if m {
			return i + 1
		}
	}
	return 0
}

// fitOneHot learns the categories.
func fitOneHot(o *OneHot, s *state, w where) (*OneHotFit, error) {
	if err := s.needKind(w, Categorical, Numeric); err != nil {
		return nil, err
	}
	s.codes()
	f := &OneHotFit{Categories: slices.Clone(o.Categories), Unknown: o.Unknown}
	if f.Unknown == "" {
		f.Unknown = UnknownOther
	}
	if f.Categories != nil {
		return f, nil
	}
	if r := s.firstMissing(); r > 0 {
		return nil, w.err(r, ErrMissingValue, "impute before onehot")
	}
	counts := map[string]int{}
	for _, v := range s.str {
		counts[v]++
	}
	if len(counts) == 0 {
		return nil, w.err(0, ErrNoData, "cannot learn categories")
	}
	keys := sortedKeys(counts)
	if o.MaxCategories > 0 && len(keys) > o.MaxCategories {
		keys = keys[:o.MaxCategories]
	}
	slices.Sort(keys)
	f.Categories = keys
	return f, nil
}

func (f *OneHotFit) apply(s *state, w where, name string) error {
	if err := s.needKind(w, Categorical, Numeric); err != nil {
		return err
	}
	s.codes()
	if r := s.firstMissing(); r > 0 {
		return w.err(r, ErrMissingValue, "impute before onehot")
	}
	index := make(map[string]int, len(f.Categories))
	for k, c := range f.Categories {
		index[c] = k
	}
	outs := make([]output, len(f.Categories), len(f.Categories)+1)
	for k, c := range f.Categories {
		outs[k] = output{name: name + "=" + c, v: make([]float64, s.n)}
	}
	var other []float64
	if f.Unknown == UnknownOther {
		other = make([]float64, s.n)
		outs = append(outs, output{name: name + "=" + OtherCategory, v: other})
	}
	for i, v := range s.str {
		if k, ok := index[v]; ok {
			outs[k].v[i] = 1
			continue
		}
		switch f.Unknown {
		case UnknownOther:
			other[i] = 1
		case UnknownError:
			return w.err(i+1, ErrUnknownCategory, "%q is not among the %d categories; refit or use unknown: other", v, len(f.Categories))
		}
	}
	s.str, s.kind, s.outs = nil, encoded, outs
	return nil
}

func (f *AgeFit) apply(s *state, w where) error {
	if err := s.needKind(w, Date); err != nil {
		return err
	}
	ref, err := ParseDate(f.Reference)
	if err != nil {
		return w.err(0, ErrSpec, "reference: %v", err)
	}
	s.num = make([]float64, s.n)
	for i, d := range s.days {
		a := float64(int64(ref) - int64(d))
		if f.Unit == AgeDays {
			s.num[i] = a
		} else {
			s.num[i] = a / 365.25
		}
	}
	s.days, s.kind = nil, Numeric
	return nil
}

// finish returns the column's outputs: one numeric output or the onehot outputs, then indicators.
func (s *state) finish(column, name string) ([]output, error) {
	switch s.kind {
	case Numeric:
		if r := s.firstMissing(); r > 0 {
			return nil, &Error{Column: column, Row: r, Err: ErrMissingValue, Detail: "add an impute step"}
		}
		return append([]output{{name: name, v: s.num}}, s.extra...), nil
	case encoded:
		return append(s.outs, s.extra...), nil
	case Categorical:
		return nil, &Error{Column: column, Err: ErrKind, Detail: "a categorical column needs a onehot step"}
	case Date:
		return nil, &Error{Column: column, Err: ErrKind, Detail: "a date column needs an age step"}
	}
	return nil, &Error{Column: column, Err: ErrKind, Detail: fmt.Sprintf("unknown column kind %d", s.kind)}
}
