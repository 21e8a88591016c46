package pmml_test

import (
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

// This file is a small PMML evaluator written for the tests from the PMML 4.4 specification, for
// the elements the writer uses, independent of the writer's code: the exported documents are
// scored with it and compared with hand-computed values.

type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Kids    []node     `xml:",any"`
}

func (n node) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func (n node) kids(name string) []node {
	var out []node
	for _, k := range n.Kids {
		if k.XMLName.Local == name {
			out = append(out, k)
		}
	}
	return out
}

func (n node) kid(t *testing.T, name string) node {
	t.Helper()
	k := n.kids(name)
	if len(k) != 1 {
		t.Fatalf("<%s> has %d <%s>", n.XMLName.Local, len(k), name)
	}
	return k[0]
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return v
}

// value is a field value: missing, a number or a string.
type value struct {
	missing bool
	num     float64
	str     string
	isStr   bool
}

var missing = value{missing: true}

func numv(v float64) value  { return value{num: v} }
func strv(s string) value   { return value{str: s, isStr: true} }
func boolv(b bool) value    { return numv(map[bool]float64{true: 1, false: 0}[b]) }
func (v value) key() string { return fmt.Sprint(v.isStr, v.num, v.str) }

type evaluator struct {
	t      *testing.T
	fields map[string]value
}

func (ev *evaluator) expr(n node) value {
	t := ev.t
	switch n.XMLName.Local {
	case "Constant":
		if dt, _ := n.attr("dataType"); dt == "string" {
			return strv(n.Text)
		}
		return numv(mustFloat(t, n.Text))
	case "FieldRef":
		name, _ := n.attr("field")
		v, ok := ev.fields[name]
		if !ok {
			t.Fatalf("FieldRef to unknown field %q", name)
		}
		if mm, ok := n.attr("mapMissingTo"); ok && v.missing {
			if f, err := strconv.ParseFloat(mm, 64); err == nil && !v.isStr {
				return numv(f)
			}
			return strv(mm)
		}
		return v
	case "NormContinuous":
		name, _ := n.attr("field")
		x := ev.fields[name]
		if x.missing {
			return missing
		}
		pts := n.kids("LinearNorm")
		if len(pts) != 2 {
			t.Fatalf("NormContinuous with %d points", len(pts))
		}
		o1, o2 := mustFloat(t, attr(pts[0], "orig")), mustFloat(t, attr(pts[1], "orig"))
		n1, n2 := mustFloat(t, attr(pts[0], "norm")), mustFloat(t, attr(pts[1], "norm"))
		xv := x.num
		if out, _ := n.attr("outliers"); out == "asExtremeValues" {
			xv = math.Min(math.Max(xv, o1), o2)
		}
		return numv(n1 + (xv-o1)*(n2-n1)/(o2-o1))
	case "Apply":
		fn, _ := n.attr("function")
		var args []value
		for _, k := range n.Kids {
			args = append(args, ev.expr(k))
		}
		switch fn {
		case "isMissing":
			return boolv(args[0].missing)
		case "if":
			if args[0].missing {
				return missing
			}
			if args[0].num != 0 {
				return args[1]
			}
			return args[2]
		}
		for _, a := range args {
			if a.missing {
				return missing
			}
		}
		switch fn {
		case "+":
			return numv(args[0].num + args[1].num)
		case "-":
			return numv(args[0].num - args[1].num)
		case "*":
			return numv(args[0].num * args[1].num)
		case "/":
			return numv(args[0].num / args[1].num)
		case "min":
			return numv(math.Min(args[0].num, args[1].num))
		case "max":
			return numv(math.Max(args[0].num, args[1].num))
		case "ln":
			return numv(math.Log(args[0].num))
		case "exp":
			return numv(math.Exp(args[0].num))
		case "round":
			return numv(math.Round(args[0].num))
		case "equal":
			return boolv(args[0].key() == args[1].key())
		case "isIn":
			for _, a := range args[1:] {
				if a.key() == args[0].key() {
					return boolv(true)
				}
			}
			return boolv(false)
		case "dateDaysSinceYear":
			if args[1].num != 1970 {
				t.Fatalf("dateDaysSinceYear base %v", args[1].num)
			}
			return args[0] // dates are given as days since 1970-01-01
		}
		t.Fatalf("function %q not in the test evaluator", fn)
	}
	t.Fatalf("expression <%s> not in the test evaluator", n.XMLName.Local)
	return missing
}

func attr(n node, name string) string { v, _ := n.attr(name); return v }

// score evaluates a document's model (RegressionModel, Scorecard or MiningModel) for one record and
// returns its output fields.
func score(t *testing.T, doc []byte, record map[string]value) map[string]value {
	t.Helper()
	var root node
	if err := xml.Unmarshal(doc, &root); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if root.XMLName.Space != "http://www.dmg.org/PMML-4_4" || attr(root, "version") != "4.4" {
		t.Fatalf("root %v version %q", root.XMLName, attr(root, "version"))
	}
	ev := &evaluator{t: t, fields: map[string]value{}}
	dd := root.kid(t, "DataDictionary")
	for _, f := range dd.kids("DataField") {
		name := attr(f, "name")
		v, ok := record[name]
		if !ok {
			v = missing
		}
		ev.fields[name] = v
	}
	if n := mustFloat(t, attr(dd, "numberOfFields")); int(n) != len(dd.kids("DataField")) {
		t.Fatalf("numberOfFields %v for %d fields", n, len(dd.kids("DataField")))
	}
	var models []node
	for _, k := range root.Kids {
		switch k.XMLName.Local {
		case "RegressionModel", "Scorecard", "MiningModel":
			models = append(models, k)
		}
	}
	if len(models) != 1 {
		t.Fatalf("%d models in the document", len(models))
	}
	m := models[0]
	ev.miningSchema(m)
	for _, d := range m.kid(t, "LocalTransformations").kids("DerivedField") {
		name := attr(d, "name")
		if _, dup := ev.fields[name]; dup {
			t.Fatalf("derived field %q defined twice", name)
		}
		if len(d.Kids) != 1 {
			t.Fatalf("derived field %q has %d expressions", name, len(d.Kids))
		}
		ev.fields[name] = ev.expr(d.Kids[0])
	}
	var res result
	switch m.XMLName.Local {
	case "RegressionModel":
		res = ev.regression(m)
	case "Scorecard":
		res = ev.scorecard(m)
	default:
		res = ev.mining(m)
	}
	out := map[string]value{}
	for _, of := range m.kid(t, "Output").kids("OutputField") {
		name := attr(of, "name")
		switch attr(of, "feature") {
		case "probability":
			if res.y.missing {
				out[name] = missing
			} else {
				out[name] = numv(1 / (1 + math.Exp(-res.y.num)))
			}
		case "predictedValue":
			out[name] = res.y
		case "reasonCode":
			k := int(mustFloat(t, attr(of, "rank")))
			if k >= 1 && k <= len(res.reasons) {
				out[name] = strv(res.reasons[k-1])
			} else {
				out[name] = missing
			}
		case "transformedValue":
			ev.fields[name] = missing
			out[name] = ev.expr(of.Kids[0])
		default:
			t.Fatalf("output feature %q", attr(of, "feature"))
		}
		ev.fields[name] = out[name]
	}
	return out
}

// miningSchema checks that every mining field of model m is a field in scope.
func (ev *evaluator) miningSchema(m node) {
	for _, mf := range m.kid(ev.t, "MiningSchema").kids("MiningField") {
		if _, ok := ev.fields[attr(mf, "name")]; !ok {
			ev.t.Fatalf("mining field %q of <%s> is not a field in scope", attr(mf, "name"), m.XMLName.Local)
		}
	}
}

// result is a model's predicted value (for a RegressionModel, the linear predictor of category
// "1") and a scorecard's ranked reason codes.
type result struct {
	y       value
	reasons []string
}

func (ev *evaluator) regression(rm node) result {
	t := ev.t
	if attr(rm, "normalizationMethod") != "logit" || attr(rm, "functionName") != "classification" {
		t.Fatalf("model attributes %v", rm.Attrs)
	}
	tables := rm.kids("RegressionTable")
	if len(tables) != 2 || attr(tables[0], "targetCategory") != "1" || attr(tables[1], "targetCategory") != "0" ||
		mustFloat(t, attr(tables[1], "intercept")) != 0 || len(tables[1].Kids) != 0 {
		t.Fatalf("regression tables %+v", tables)
	}
	y := mustFloat(t, attr(tables[0], "intercept"))
	for _, p := range tables[0].kids("NumericPredictor") {
		x := ev.fields[attr(p, "name")]
		if x.missing {
			return result{y: missing}
		}
		y += mustFloat(t, attr(p, "coefficient")) * x.num
	}
	return result{y: numv(y)}
}
