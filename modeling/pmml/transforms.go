package pmml

import (
	"encoding/xml"
	"fmt"
	"strconv"

	"insitu/modeling/features"
)

// element is a node of the document being written.
type element struct {
	name  string
	attrs []xml.Attr
	kids  []*element
	text  string
}

// el returns an element with attributes given as name, value pairs; empty values are left out.
func el(name string, kv ...string) *element {
	e := &element{name: name}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			e.attrs = append(e.attrs, xml.Attr{Name: xml.Name{Local: kv[i]}, Value: kv[i+1]})
		}
	}
	return e
}

// set adds attributes given as name, value pairs.
func (e *element) set(kv ...string) *element {
	e.attrs = append(e.attrs, el(e.name, kv...).attrs...)
	return e
}

func (e *element) add(kids ...*element) *element {
	e.kids = append(e.kids, kids...)
	return e
}

func (e *element) encode(enc *xml.Encoder) error {
	start := xml.StartElement{Name: xml.Name{Local: e.name}, Attr: e.attrs}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	if e.text != "" {
		if err := enc.EncodeToken(xml.CharData(e.text)); err != nil {
			return err
		}
	}
	for _, k := range e.kids {
		if err := k.encode(enc); err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// writer turns fitted transforms into DerivedFields.
type writer struct {
	f      *features.Fitted
	inputs []features.FittedColumn // one per distinct input column, in first-use order
	used   map[string]bool         // field names taken
}

func newWriter(f *features.Fitted) *writer {
	w := &writer{f: f, used: map[string]bool{Target: true}}
	for _, c := range f.Columns {
		if !w.used[c.Column] {
			w.used[c.Column] = true
			w.inputs = append(w.inputs, c)
		}
	}
	return w
}

// fresh returns name, or name with a suffix when another field has it already.
func (w *writer) fresh(name string) string {
	out := name
	for k := 1; w.used[out]; k++ {
		out = fmt.Sprintf("%s#%d", name, k)
	}
	w.used[out] = true
	return out
}

// transforms returns the DerivedFields of every column and, for every feature (in the transforms'
// output order), the name of the field that holds it.
func (w *writer) transforms() ([]*element, []string, error) {
	var fields []*element
	var outputs []string
	for _, fc := range w.f.Columns {
		d, o, err := w.column(fc)
		if err != nil {
			return nil, nil, err
		}
		fields = append(fields, d...)
		outputs = append(outputs, o...)
	}
	if len(outputs) != len(w.f.Names()) {
		return nil, nil, fmt.Errorf("%w: the transforms give %d features, their names %d", ErrModel, len(outputs), len(w.f.Names()))
	}
	return fields, outputs, nil
}

func derived(name, optype, dataType string, expr *element) *element {
	return el("DerivedField", "name", name, "optype", optype, "dataType", dataType).add(expr)
}

// column writes one input column's steps.
func (w *writer) column(fc features.FittedColumn) ([]*element, []string, error) {
	var fields, extra []*element
	var extraNames []string
	cur, kind := fc.Column, fc.Kind
	step := func(expr *element) {
		name := w.fresh(fmt.Sprintf("%s#step%d", fc.Name, len(fields)+1))
		optype, dt := "continuous", "double"
		if kind == features.Categorical {
			optype, dt = "categorical", "string"
		}
		fields = append(fields, derived(name, optype, dt, expr))
		cur = name
	}
	ref := func() *element { return el("FieldRef", "field", cur) }
	var onehot []string
	for k, s := range fc.Steps {
		switch {
		case s.Impute != nil:
			if s.Impute.Indicator {
				name := w.fresh(fc.Name + "_missing")
				extra = append(extra, derived(name, "continuous", "double",
					apply("if", apply("isMissing", ref()), constant(1), constant(0))))
				extraNames = append(extraNames, name)
			}
			switch {
			case s.Impute.Value != nil:
				step(el("FieldRef", "field", cur, "mapMissingTo", num(*s.Impute.Value)))
			case s.Impute.Category != nil:
				step(el("FieldRef", "field", cur, "mapMissingTo", *s.Impute.Category))
			default:
				return nil, nil, fmt.Errorf("%w: column %s step %d: impute without a value", ErrModel, fc.Column, k+1)
			}
		case s.Clip != nil:
			e := ref()
			if s.Clip.Min != nil {
				e = apply("max", e, constant(*s.Clip.Min))
			}
			if s.Clip.Max != nil {
				e = apply("min", e, constant(*s.Clip.Max))
			}
			step(e)
		case s.Scale != nil:
			sc := s.Scale
			switch sc.Method {
			case features.ScaleStandard:
				step(el("NormContinuous", "field", cur, "outliers", "asIs").add(
					el("LinearNorm", "orig", num(sc.Mean), "norm", "0"),
					el("LinearNorm", "orig", num(sc.Mean+sc.Std), "norm", "1")))
			case features.ScaleMinMax:
				if len(sc.Range) != 2 {
					return nil, nil, fmt.Errorf("%w: column %s step %d: min-max scaling without a range", ErrModel, fc.Column, k+1)
				}
				if sc.Max <= sc.Min {
					// A constant training column maps to the low end; x·0 keeps a missing value missing.
					step(apply("+", apply("*", ref(), constant(0)), constant(sc.Range[0])))
				} else {
					step(el("NormContinuous", "field", cur, "outliers", "asExtremeValues").add(
						el("LinearNorm", "orig", num(sc.Min), "norm", num(sc.Range[0])),
						el("LinearNorm", "orig", num(sc.Max), "norm", num(sc.Range[1]))))
				}
			default:
				return nil, nil, fmt.Errorf("%w: column %s step %d: scaling %q", ErrModel, fc.Column, k+1, sc.Method)
			}
		case s.Age != nil:
			ref0, err := features.ParseDate(s.Age.Reference)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: column %s step %d: %v", ErrModel, fc.Column, k+1, err)
			}
			days := apply("-", constant(float64(ref0)), apply("dateDaysSinceYear", ref(), el("Constant", "dataType", "integer").withText("1970")))
			kind = features.Numeric
			if s.Age.Unit == features.AgeDays {
				step(days)
			} else {
				step(apply("/", days, constant(365.25)))
			}
		case s.OneHot != nil:
			numeric := kind == features.Numeric
			cat := func(c string) (*element, error) {
				if !numeric {
					return strConstant(c), nil
				}
				v, err := strconv.ParseFloat(c, 64)
				if err != nil {
					return nil, fmt.Errorf("%w: column %s: category %q of a numeric column is not a number", ErrModel, fc.Column, c)
				}
				return constant(v), nil
			}
			var all []*element
			for _, c := range s.OneHot.Categories {
				ce, err := cat(c)
				if err != nil {
					return nil, nil, err
				}
				ce2, _ := cat(c)
				all = append(all, ce2)
				name := w.fresh(fc.Name + "=" + c)
				fields = append(fields, derived(name, "continuous", "double",
					apply("if", apply("equal", ref(), ce), constant(1), constant(0))))
				onehot = append(onehot, name)
			}
			if s.OneHot.Unknown == features.UnknownOther {
				name := w.fresh(fc.Name + "=" + features.OtherCategory)
				var expr *element
				if len(all) == 0 {
					expr = apply("if", apply("isMissing", ref()), constant(1), constant(1))
				} else {
					expr = apply("if", apply("isIn", append([]*element{ref()}, all...)...), constant(0), constant(1))
				}
				fields = append(fields, derived(name, "continuous", "double", expr))
				onehot = append(onehot, name)
			}
			kind = 0
		default:
			return nil, nil, fmt.Errorf("%w: column %s step %d: no operation", ErrModel, fc.Column, k+1)
		}
	}
	var outs []string
	switch {
	case onehot != nil || kind == 0:
		outs = onehot
	case kind == features.Numeric:
		name := w.fresh(fc.Name)
		fields = append(fields, derived(name, "continuous", "double", ref()))
		outs = []string{name}
	default:
		return nil, nil, fmt.Errorf("%w: column %s ends as %s, not a feature", ErrModel, fc.Column, kind)
	}
	return append(fields, extra...), append(outs, extraNames...), nil
}

func (e *element) withText(s string) *element { e.text = s; return e }
