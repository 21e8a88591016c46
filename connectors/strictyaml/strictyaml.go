// Package strictyaml decodes one YAML or JSON document into a Go struct strictly: unknown and
// repeated keys, anchors and aliases, a second document and values of the wrong shape are refused,
// each error naming the line and the key path (e.g. "columns[3].field") of the offending value.
//
// A caller describes its wording and builds its own error type in a Dialect, then calls
// Dialect.Read (YAML) or Dialect.ReadJSONOrYAML for the node tree and Dialect.Decode to fill a
// struct. Decode returns a Doc that knows the line of every path, for errors found later by the
// caller's own checks. Struct fields are matched by their `yaml` tags; a map[string]any field takes
// any value (objects, lists, text, numbers, booleans and null).
package strictyaml

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rule names the kind of problem a Dialect's Err is called for.
type Rule string

// Rules passed to Dialect.Err.
const (
	RuleSyntax     Rule = "syntax"      // not well-formed YAML or JSON, a second document, an anchor or an alias
	RuleSize       Rule = "size"        // JSON nested too deep
	RuleUnknownKey Rule = "unknown-key" // a key the struct does not have
	RuleDuplicate  Rule = "duplicate"   // a key given twice
	RuleType       Rule = "type"        // a value of the wrong shape or type
	RuleLimit      Rule = "limit"       // free-form values nested deeper or more numerous than the Dialect allows
)

// Dialect is how one kind of file is decoded and how its errors read. Err is required; the other
// fields have workable zero values.
type Dialect struct {
	// Err builds the caller's error for a problem at line (1-based; 0 when unknown) and path (""
	// for the whole document). cause is the underlying parser error, if any.
	Err func(line int, path string, rule Rule, message string, cause error) error

	// Describe names a node in messages, as in "want a list, got <Describe(n)>". Nil quotes the
	// node's value, or names its kind.
	Describe func(n *yaml.Node) string

	// Typed requires a scalar's tag to match its field: a quoted "3" is not a number, an unquoted
	// 3 is not text, and a key must be text. Otherwise any scalar that YAML can decode into the
	// field is taken, and text fields take numbers and booleans as written.
	Typed bool

	// Mapping is what a struct field wants, as in "want <Mapping>, got ..." (default "an object").
	Mapping string

	// Aliases is the message for an anchor or an alias.
	Aliases string

	// SecondDocument is the message for a second YAML document.
	SecondDocument string

	// ClipKey shortens a key written by the user before a message quotes it; nil quotes it whole.
	ClipKey func(string) string

	// GenericName names free-form values in limit messages ("hyperparameter"). MaxGenericDepth
	// and MaxGenericValues bound the nesting of one map[string]any field and the number of
	// free-form values in the whole document; zero means no bound.
	GenericName      string
	MaxGenericDepth  int
	MaxGenericValues int
}

func (d *Dialect) describe(n *yaml.Node) string {
	if d.Describe != nil {
		return d.Describe(n)
	}
	return describeNode(n)
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if IsNull(n) {
		return "nothing"
	}
	return `"` + n.Value + `"`
}

func (d *Dialect) clipKey(k string) string {
	if d.ClipKey != nil {
		return d.ClipKey(k)
	}
	return k
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Read parses data as one YAML document and returns its root node.
func (d *Dialect) Read(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.Err(0, "", RuleSyntax, "the file is empty", nil)
		}
		return nil, d.Err(0, "", RuleSyntax, "not valid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "), err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, d.Err(extra.Line, "", RuleSyntax, orDefault(d.SecondDocument, "more than one YAML document: remove the second '---'"), nil)
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return nil, d.Err(0, "", RuleSyntax, "the file is empty", nil)
		}
		n = n.Content[0]
	}
	return n, nil
}

// ReadJSONOrYAML reads data as JSON when it starts with '{' (after white space), else as YAML.
func (d *Dialect) ReadJSONOrYAML(data []byte) (*yaml.Node, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return nil, d.Err(0, "", RuleSyntax, "the file is empty", nil)
	}
	if trimmed[0] == '{' {
		return d.ReadJSON(data)
	}
	return d.Read(data)
}

// Doc is a decoded document: the line of every path that was given. Its methods accept a nil *Doc,
// which has no paths.
type Doc struct {
	lines  map[string]int
	values int // free-form values seen
}

// Has reports whether path was given in the document.
func (doc *Doc) Has(path string) bool {
	if doc == nil {
		return false
	}
	_, ok := doc.lines[path]
	return ok
}

// Lookup returns the line of path's value, if path was given.
func (doc *Doc) Lookup(path string) (int, bool) {
	if doc == nil {
		return 0, false
	}
	l, ok := doc.lines[path]
	return l, ok
}

// Line returns the line of path or of its nearest enclosing path that was given, the whole
// document ("") included; 0 when none was.
func (doc *Doc) Line(path string) int {
	for p := path; ; p = Parent(p) {
		if l, ok := doc.Lookup(p); ok {
			return l
		}
		if p == "" {
			return 0
		}
	}
}

// Parent returns the path that encloses p: "columns[3]" for "columns[3].field", "columns" for
// "columns[3]", "" for a top-level key.
func Parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Join returns the path of key under parent.
func Join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// IsNull reports whether n is a null scalar (null, ~ or nothing).
func IsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }
