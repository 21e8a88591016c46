package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// doc is a strictly decoded document: the line of every value's path.
type doc struct {
	lines map[string]int
	count int // hyperparameter values seen
}

// line returns the line of path or of its nearest enclosing path that has one.
func (d *doc) line(path string) int {
	for p := path; ; p = parentPath(p) {
		if l, ok := d.lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
	}
}

// readNode reads data as JSON (when it starts with '{') or YAML into a node tree.
func readNode(data []byte) (*yaml.Node, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return nil, &Error{Rule: RuleSyntax, Message: "the file is empty"}
	}
	if trimmed[0] == '{' {
		return readJSON(data)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Rule: RuleSyntax, Message: "the file is empty"}
		}
		return nil, &Error{Rule: RuleSyntax, Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{Line: extra.Line, Rule: RuleSyntax, Message: "more than one YAML document: remove the second '---'"}
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return nil, &Error{Rule: RuleSyntax, Message: "the file is empty"}
		}
		n = n.Content[0]
	}
	return n, nil
}

// readJSON turns one JSON value into the node tree YAML would give, with lines.
func readJSON(data []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var newlines []int64
	for i, c := range data {
		if c == '\n' {
			newlines = append(newlines, int64(i))
		}
	}
	lineAt := func() int {
		off := dec.InputOffset()
		return 1 + sort.Search(len(newlines), func(i int) bool { return newlines[i] >= off })
	}
	var value func(depth int) (*yaml.Node, error)
	value = func(depth int) (*yaml.Node, error) {
		if depth > 64 {
			return nil, &Error{Line: lineAt(), Rule: RuleSize, Message: "JSON nested more than 64 deep"}
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, &Error{Line: lineAt(), Rule: RuleSyntax, Message: "not valid JSON: " + err.Error(), Err: err}
		}
		n := &yaml.Node{Line: lineAt()}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				n.Kind, n.Tag = yaml.MappingNode, "!!map"
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return nil, &Error{Line: lineAt(), Rule: RuleSyntax, Message: "not valid JSON: " + err.Error(), Err: err}
					}
					k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kt.(string), Line: lineAt()}
					v, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, k, v)
				}
			case '[':
				n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
				for dec.More() {
					v, err := value(depth + 1)
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, v)
				}
			default:
				return nil, &Error{Line: lineAt(), Rule: RuleSyntax, Message: fmt.Sprintf("not valid JSON: unexpected %q", t)}
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, &Error{Line: lineAt(), Rule: RuleSyntax, Message: "not valid JSON: " + err.Error(), Err: err}
			}
		case string:
			n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", t, yaml.DoubleQuotedStyle
		case json.Number:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!float", t.String()
			if !strings.ContainsAny(t.String(), ".eE") {
				n.Tag = "!!int"
			}
		case bool:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(t)
		case nil:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
		}
		return n, nil
	}
	n, err := value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &Error{Line: lineAt(), Rule: RuleSyntax, Message: "trailing data after the JSON object"}
	}
	return n, nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!null":
		return "nothing (null)"
	case "!!int", "!!float":
		return "the number " + clip(n.Value)
	case "!!bool":
		return "the value " + n.Value
	}
	return fmt.Sprintf("the text %q", clip(n.Value))
}

func (d *doc) at(n *yaml.Node, path, rule, format string, args ...any) *Error {
	return &Error{Line: n.Line, Path: path, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

var anyMap = reflect.TypeFor[map[string]any]()

// walk decodes node n into v, rejecting unknown and repeated keys, aliases and values of the wrong
// type, each error naming the path and line.
func (d *doc) walk(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return d.at(n, path, RuleSyntax, "anchors and aliases are not allowed: write the value out")
	}
	d.lines[path] = n.Line
	if v.Type() == anyMap {
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return d.at(n, path, RuleType, "want an object, got %s", describe(n))
		}
		m, err := d.generic(n, path, 1)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(m))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := d.walk(n, p.Elem(), path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return d.at(n, path, RuleType, "want an object of 'key: value' entries, got %s", describe(n))
		}
		fields, names := structKeys(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				return d.at(k, path, RuleType, "a key must be text, got %s", describe(k))
			}
			kp := joinPath(path, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				return d.at(k, kp, RuleUnknownField, "unknown key %q (known keys: %s)", clip(k.Value), strings.Join(names, ", "))
			}
			if seen[k.Value] {
				return d.at(k, kp, RuleDuplicate, "key %q given twice", k.Value)
			}
			seen[k.Value] = true
			if err := d.walk(val, v.Field(idx), kp); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return d.at(n, path, RuleType, "want a list, got %s", describe(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.walk(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.String:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!timestamp") {
			hint := ""
			if n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool" {
				hint = fmt.Sprintf(" (quote it: %q)", n.Value)
			}
			return d.at(n, path, RuleType, "want text, got %s%s", describe(n), hint)
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return d.at(n, path, RuleType, "want true or false, got %s", describe(n))
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return d.at(n, path, RuleType, "want true or false, got %s", describe(n))
		}
		v.SetBool(b)
		return nil
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return d.at(n, path, RuleType, "want a whole number, got %s", describe(n))
		}
		var i int64
		if err := n.Decode(&i); err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			return d.at(n, path, RuleType, "want a whole number between %d and %d, got %s", math.MinInt32, math.MaxInt32, describe(n))
		}
		v.SetInt(i)
		return nil
	case reflect.Float64:
		f, err := d.number(n, path)
		if err != nil {
			return err
		}
		v.SetFloat(f)
		return nil
	}
	panic(fmt.Sprintf("manifest: walk cannot decode into %s", v.Type()))
}

// number reads a finite number; an integer must lie within ±2^53, where float64 holds it exactly.
func (d *doc) number(n *yaml.Node, path string) (float64, error) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, d.at(n, path, RuleType, "want a number, got %s", describe(n))
	}
	if n.Tag == "!!int" {
		var i int64
		if err := n.Decode(&i); err == nil && i <= 1<<53 && i >= -(1<<53) {
			return float64(i), nil
		}
		// A larger integer is taken only when float64 holds it exactly, as written.
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || math.IsInf(f, 0) || strconv.FormatFloat(f, 'f', -1, 64) != strings.TrimPrefix(n.Value, "+") {
			return 0, d.at(n, path, RuleType, "want a number that a float64 holds exactly, got %s", describe(n))
		}
		return f, nil
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, d.at(n, path, RuleType, "want a finite number, got %s", describe(n))
	}
	return f, nil
}

// generic decodes a hyperparameter value: objects, lists, text, numbers, booleans and null.
func (d *doc) generic(n *yaml.Node, path string, depth int) (any, error) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return nil, d.at(n, path, RuleSyntax, "anchors and aliases are not allowed: write the value out")
	}
	if depth > MaxHyperparameterDepth {
		return nil, d.at(n, path, RuleModel, "hyperparameters nest more than %d deep", MaxHyperparameterDepth)
	}
	d.count++
	if d.count > MaxHyperparameterValues {
		return nil, d.at(n, path, RuleModel, "more than %d hyperparameter values", MaxHyperparameterValues)
	}
	d.lines[path] = n.Line
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
				return nil, d.at(k, path, RuleType, "a key must be text, got %s", describe(k))
			}
			kp := joinPath(path, k.Value)
			if _, dup := m[k.Value]; dup {
				return nil, d.at(k, kp, RuleDuplicate, "key %q given twice", clip(k.Value))
			}
			v, err := d.generic(n.Content[i+1], kp, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := d.generic(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
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
				return nil, d.at(n, path, RuleType, "want true or false, got %s", describe(n))
			}
			return b, nil
		case "!!int", "!!float":
			return d.number(n, path)
		case "!!str", "!!timestamp":
			return n.Value, nil
		}
	}
	return nil, d.at(n, path, RuleType, "want text, a number, true, false, null, a list or an object, got %s", describe(n))
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
