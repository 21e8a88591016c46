package strictyaml

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// testError is what the test dialects build: every field the walker passes.
type testError struct {
	Line    int
	Path    string
	Rule    Rule
	Message string
	Cause   error
}

func (e *testError) Error() string {
	return fmt.Sprintf("%d: %s: %s [%s]", e.Line, e.Path, e.Message, e.Rule)
}

func (e *testError) Unwrap() error { return e.Cause }

func newErr(line int, path string, rule Rule, message string, cause error) error {
	return &testError{Line: line, Path: path, Rule: rule, Message: message, Cause: cause}
}

var (
	plain = &Dialect{Err: newErr}
	typed = &Dialect{Err: newErr, Typed: true, GenericName: "extra", MaxGenericDepth: 3, MaxGenericValues: 10,
		ClipKey: func(s string) string {
			if len(s) > 8 {
				return s[:8] + "..."
			}
			return s
		}}
)

type column struct {
	Name  string  `yaml:"name"`
	Scale float64 `yaml:"scale"`
	Width int     `yaml:"width"`
	Big   int64   `yaml:"big"`
	On    bool    `yaml:"on"`
}

type sample struct {
	Name    string         `yaml:"name"`
	Columns []column       `yaml:"columns"`
	Sub     *column        `yaml:"sub"`
	Extra   map[string]any `yaml:"extra"`
	Tags    []string       `yaml:"tags,omitempty"`
	skipped int
	NoTag   string
}

const sampleYAML = `name: tax
columns:
  - name: a
    scale: 1.5
    width: 3
    big: 9007199254740993
    on: true
  - name: b
sub:
  name: c
extra:
  depth: 2
  list: [1, "x", null, true]
tags: [x, y]
`

const sampleJSON = `{
  "name": "tax",
  "columns": [{"name": "a", "scale": 1.5, "width": 3, "big": 9007199254740993, "on": true}, {"name": "b"}],
  "sub": {"name": "c"},
  "extra": {"depth": 2, "list": [1, "x", null, true]},
  "tags": ["x", "y"]
}`

func decode(t *testing.T, d *Dialect, data string, json bool) (*sample, *Doc, error) {
	t.Helper()
	read := d.Read
	if json {
		read = d.ReadJSONOrYAML
	}
	n, err := read([]byte(data))
	if err != nil {
		return nil, nil, err
	}
	var s sample
	doc, err := d.Decode(n, &s)
	return &s, doc, err
}

func TestDecodeValues(t *testing.T) {
	want := &sample{
		Name:    "tax",
		Columns: []column{{Name: "a", Scale: 1.5, Width: 3, Big: 9007199254740993, On: true}, {Name: "b"}},
		Sub:     &column{Name: "c"},
		Extra:   map[string]any{"depth": 2.0, "list": []any{1.0, "x", nil, true}},
		Tags:    []string{"x", "y"},
	}
	for _, c := range []struct {
		name string
		d    *Dialect
		data string
		json bool
	}{{"plain yaml", plain, sampleYAML, false}, {"typed yaml", typed, sampleYAML, false}, {"typed json", typed, sampleJSON, true}} {
		t.Run(c.name, func(t *testing.T) {
			s, doc, err := decode(t, c.d, c.data, c.json)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("got %+v, want %+v", s, want)
			}
			if !doc.Has("columns[0].scale") || doc.Has("columns[1].scale") {
				t.Errorf("Has: columns[0].scale %v, columns[1].scale %v", doc.Has("columns[0].scale"), doc.Has("columns[1].scale"))
			}
			wantLine := map[bool]int{false: 4, true: 3}[c.json]
			if l := doc.Line("columns[0].scale"); l != wantLine {
				t.Errorf("line of columns[0].scale = %d, want %d", l, wantLine)
			}
			// An absent key takes the line of its nearest given parent.
			if l, r := doc.Line("columns[1].scale"), doc.Line("columns[1]"); l != r || l == 0 {
				t.Errorf("line of absent columns[1].scale = %d, of columns[1] = %d", l, r)
			}
		})
	}
	var nilDoc *Doc
	if nilDoc.Has("name") || nilDoc.Line("name") != 0 {
		t.Error("a nil Doc has paths")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		d        *Dialect
		data     string
		line     int
		path     string
		rule     Rule
		contains string
	}{
		{"empty", plain, "", 0, "", RuleSyntax, "the file is empty"},
		{"empty json or yaml", typed, " \n\t", 0, "", RuleSyntax, "the file is empty"},
		{"bad yaml", plain, "name: [", 0, "", RuleSyntax, "not valid YAML"},
		{"two documents", plain, "name: a\n---\nname: b\n", 2, "", RuleSyntax, "more than one YAML document"},
		{"alias", plain, "name: &n a\n", 1, "name", RuleSyntax, "anchors and aliases are not allowed"},
		{"not a mapping", plain, "- a\n", 1, "", RuleType, "want an object, got a list"},
		{"unknown key", plain, "name: a\ncolour: red\n", 2, "colour", RuleUnknownKey, `unknown key "colour" (known keys: columns, extra, name, sub, tags)`},
		{"clipped key", typed, "a_very_long_key: 1\n", 1, "a_very_long_key", RuleUnknownKey, `unknown key "a_very_l..."`},
		{"twice", plain, "name: a\nname: b\n", 2, "name", RuleDuplicate, `key "name" given twice`},
		{"not a list", plain, "columns: 3\n", 1, "columns", RuleType, `want a list, got "3"`},
		{"plain text from a list", plain, "name: [a]\n", 1, "name", RuleType, "want a text value, got a list"},
		{"plain bad number", plain, "sub: {scale: x}\n", 1, "sub.scale", RuleType, `"x" is not a number`},
		{"plain null number", plain, "sub: {width: ~}\n", 1, "sub.width", RuleType, "want a single value, got nothing"},
		{"plain key list", plain, "[a]: 1\n", 1, "", RuleType, "a key must be a plain word"},
		{"typed text from a number", typed, "name: 3\n", 1, "name", RuleType, `want text, got "3" (quote it: "3")`},
		{"typed number from text", typed, "sub: {scale: \"1\"}\n", 1, "sub.scale", RuleType, "want a number"},
		{"typed int range", typed, "sub: {width: 3000000000}\n", 1, "sub.width", RuleType, "between -2147483648 and 2147483647"},
		{"typed float for int", typed, "sub: {width: 1.5}\n", 1, "sub.width", RuleType, "want a whole number"},
		{"typed bool", typed, "sub: {on: yes}\n", 1, "sub.on", RuleType, "want true or false"},
		{"typed infinite", typed, "sub: {scale: .inf}\n", 1, "sub.scale", RuleType, "want a finite number"},
		{"typed inexact", typed, "sub: {scale: 9007199254740993}\n", 1, "sub.scale", RuleType, "float64 holds exactly"},
		{"typed int key", typed, "1: a\n", 1, "", RuleType, "a key must be text"},
		{"generic not object", typed, "extra: [1]\n", 1, "extra", RuleType, "want an object, got a list"},
		{"generic too deep", typed, "extra: {a: {b: {c: 1}}}\n", 1, "extra.a.b.c", RuleLimit, "extras nest more than 3 deep"},
		{"generic too many", typed, "extra: {a: [1, 2, 3, 4, 5, 6, 7, 8, 9]}\n", 1, "extra.a[8]", RuleLimit, "more than 10 extra values"},
		{"generic twice", typed, "extra:\n  a: 1\n  a: 2\n", 3, "extra.a", RuleDuplicate, `key "a" given twice`},
		{"generic alias", typed, "extra:\n  a: &x 1\n", 2, "extra.a", RuleSyntax, "anchors and aliases"},
		{"json trailing", typed, "{\"name\": \"a\"} x", 1, "", RuleSyntax, "trailing data"},
		{"json bad", typed, "{\"name\": }", 1, "", RuleSyntax, "not valid JSON"},
		{"json too deep", typed, "{\"extra\": " + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "}", 1, "", RuleSize, "JSON nested more than 64 deep"},
		{"json line", typed, "{\n\"name\": \"a\",\n\"sub\": {\"width\": \"3\"}}", 3, "sub.width", RuleType, "want a whole number"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := decode(t, c.d, c.data, c.d == typed)
			var e *testError
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want a *testError", err, err)
			}
			if e.Line != c.line || e.Path != c.path || e.Rule != c.rule || !strings.Contains(e.Message, c.contains) {
				t.Errorf("got %v, want line %d path %q rule %s containing %q", e, c.line, c.path, c.rule, c.contains)
			}
		})
	}
}

func TestSyntaxErrorKeepsCause(t *testing.T) {
	_, err := typed.ReadJSON([]byte(`{"a": tru}`))
	var e *testError
	if !errors.As(err, &e) || e.Cause == nil || errors.Unwrap(err) != e.Cause {
		t.Fatalf("error %v carries no cause", err)
	}
}

func TestPaths(t *testing.T) {
	for p, want := range map[string]string{"columns[3].field": "columns[3]", "columns[3]": "columns", "name": "", "": ""} {
		if got := Parent(p); got != want {
			t.Errorf("Parent(%q) = %q, want %q", p, got, want)
		}
	}
	if Join("", "a") != "a" || Join("a[1]", "b") != "a[1].b" {
		t.Errorf("Join: %q, %q", Join("", "a"), Join("a[1]", "b"))
	}
}

func TestDecodePanicsOnUnsupportedKind(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Decode into a chan field did not panic")
		}
	}()
	n, err := plain.Read([]byte("c: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		C chan int `yaml:"c"`
	}
	_, _ = plain.Decode(n, &s)
}
