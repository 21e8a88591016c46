package strictyaml

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode fills out (a pointer to a struct) from the node tree n, rejecting unknown and repeated
// keys, aliases and values of the wrong shape. The struct's fields may be structs, pointers,
// slices, strings, booleans, int, int64, float64 and map[string]any; Decode panics on another kind
// (a programmer error).
func (d *Dialect) Decode(n *yaml.Node, out any) (*Doc, error) {
	doc := &Doc{lines: map[string]int{}}
	if err := d.walk(doc, n, reflect.ValueOf(out).Elem(), ""); err != nil {
		return nil, err
	}
	return doc, nil
}

func (d *Dialect) at(n *yaml.Node, path string, rule Rule, format string, args ...any) error {
	return d.Err(n.Line, path, rule, fmt.Sprintf(format, args...), nil)
}

func (d *Dialect) aliases() string {
	return orDefault(d.Aliases, "anchors and aliases are not allowed: write the value out")
}

var anyMap = reflect.TypeFor[map[string]any]()

func (d *Dialect) walk(doc *Doc, n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return d.at(n, path, RuleSyntax, "%s", d.aliases())
	}
	doc.lines[path] = n.Line
	if v.Type() == anyMap {
		if IsNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return d.at(n, path, RuleType, "want an object, got %s", d.describe(n))
		}
		m, err := d.generic(doc, n, path, 1)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if IsNull(n) {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := d.walk(doc, n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		return d.walkStruct(doc, n, v, path)
	case reflect.Slice:
		if IsNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return d.at(n, path, RuleType, "want a list, got %s", d.describe(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.walk(doc, c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		if d.Typed {
			return d.typedScalar(doc, n, v, path)
		}
		return d.plainScalar(n, v, path)
	}
	panic(fmt.Sprintf("strictyaml: Decode cannot decode into %s", v.Type()))
}

func (d *Dialect) walkStruct(doc *Doc, n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.at(n, path, RuleType, "want %s, got %s", orDefault(d.Mapping, "an object"), d.describe(n))
	}
	fields, names := structKeys(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if err := d.checkKey(k, path); err != nil {
			return err
		}
		kp := Join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			return d.at(k, kp, RuleUnknownKey, "unknown key %q (known keys: %s)", d.clipKey(k.Value), strings.Join(names, ", "))
		}
		if seen[k.Value] {
			return d.at(k, kp, RuleDuplicate, "key %q given twice", k.Value)
		}
		seen[k.Value] = true
		if err := d.walk(doc, val, v.Field(idx), kp); err != nil {
			return err
		}
	}
	return nil
}

// checkKey refuses a key that is not a scalar (and, when Typed, not text).
func (d *Dialect) checkKey(k *yaml.Node, path string) error {
	if d.Typed {
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return d.at(k, path, RuleType, "a key must be text, got %s", d.describe(k))
		}
		return nil
	}
	if k.Kind != yaml.ScalarNode {
		return d.at(k, path, RuleType, "a key must be a plain word, got %s", d.describe(k))
	}
	return nil
}

// plainScalar takes any non-null scalar that YAML decodes into v.
func (d *Dialect) plainScalar(n *yaml.Node, v reflect.Value, path string) error {
	if v.Kind() == reflect.String {
		if n.Kind != yaml.ScalarNode || IsNull(n) {
			return d.at(n, path, RuleType, "want a text value, got %s", d.describe(n))
		}
		v.SetString(n.Value)
		return nil
	}
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		return d.at(n, path, RuleType, "want a single value, got %s", d.describe(n))
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		want := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.Int: "a whole number",
			reflect.Int64: "a whole number", reflect.Float64: "a number"}[v.Kind()]
		return d.at(n, path, RuleType, "%q is not %s", n.Value, want)
	}
	return nil
}

// typedScalar takes a scalar whose tag matches v: int within ±2^31, int64, finite float64.
func (d *Dialect) typedScalar(doc *Doc, n *yaml.Node, v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") {
			hint := ""
			if n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool" {
				hint = fmt.Sprintf(" (quote it: %q)", n.Value)
			}
			return d.at(n, path, RuleType, "want text, got %s%s", d.describe(n), hint)
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			return d.at(n, path, RuleType, "want true or false, got %s", d.describe(n))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return d.at(n, path, RuleType, "want a whole number, got %s", d.describe(n))
		}
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if v.Kind() == reflect.Int {
			lo, hi = math.MinInt32, math.MaxInt32
		}
		var i int64
		if err := n.Decode(&i); err != nil || i > hi || i < lo {
			return d.at(n, path, RuleType, "want a whole number between %d and %d, got %s", lo, hi, d.describe(n))
		}
		v.SetInt(i)
	case reflect.Float64:
		f, err := d.number(n, path)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	}
	return nil
}

// number reads a finite number; an integer must lie within ±2^53, where float64 holds it exactly,
// or be written as float64 holds it.
func (d *Dialect) number(n *yaml.Node, path string) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, d.at(n, path, RuleType, "want a number, got %s", d.describe(n))
	}
	if n.Tag == "!!int" {
		var i int64
		if err := n.Decode(&i); err == nil && i <= 1<<53 && i >= -(1<<53) {
			return float64(i), nil
		}
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsInf(f, 0) || strconv.FormatFloat(f, 'f', -1, 64) != strings.TrimPrefix(n.Value, "+") {
			return 0, d.at(n, path, RuleType, "want a number that a float64 holds exactly, got %s", d.describe(n))
		}
		return f, nil
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, d.at(n, path, RuleType, "want a finite number, got %s", d.describe(n))
	}
	return f, nil
}

// generic decodes a free-form value: objects, lists, text, numbers, booleans and null.
func (d *Dialect) generic(doc *Doc, n *yaml.Node, path string, depth int) (any, error) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return nil, d.at(n, path, RuleSyntax, "%s", d.aliases())
	}
	name := orDefault(d.GenericName, "free-form")
	if d.MaxGenericDepth > 0 && depth > d.MaxGenericDepth {
		return nil, d.at(n, path, RuleLimit, "%ss nest more than %d deep", name, d.MaxGenericDepth)
	}
	doc.values++
	if d.MaxGenericValues > 0 && doc.values > d.MaxGenericValues {
		return nil, d.at(n, path, RuleLimit, "more than %d %s values", d.MaxGenericValues, name)
	}
	doc.lines[path] = n.Line
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				return nil, d.at(k, path, RuleType, "a key must be text, got %s", d.describe(k))
			}
			kp := Join(path, k.Value)
			if _, dup := m[k.Value]; dup {
				return nil, d.at(k, kp, RuleDuplicate, "key %q given twice", d.clipKey(k.Value))
			}
			v, err := d.generic(doc, n.Content[i+1], kp, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := d.generic(doc, c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, d.at(n, path, RuleType, "want true or false, got %s", d.describe(n))
			}
			return b, nil
		case "!!int", "!!float":
			return d.number(n, path)
		case "!!str", "!!timestamp":
			return n.Value, nil
		}
	}
	return nil, d.at(n, path, RuleType, "want text, a number, true, false, null, a list or an object, got %s", d.describe(n))
}

// structKeys returns the keys of a struct type (from its yaml tags) and the field index of each.
func structKeys(t reflect.Type) (map[string]int, []string) {
	m := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = i
		names = append(names, tag)
	}
	sort.Strings(names)
	return m, names
}
