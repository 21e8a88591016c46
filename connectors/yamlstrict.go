package connectors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalidMapping is wrapped by every error about a mapping file or a dataset spec.
var ErrInvalidMapping = errors.New("invalid mapping")

// MappingError says what is wrong in a mapping file or dataset spec, and where: the file, the YAML
// line and the path of the offending key (e.g. "columns[3].field").
type MappingError struct {
	File    string // the file as given to LoadMapping or LoadDatasetSpec
	Line    int    // 1-based YAML line; 0 when unknown
	Path    string // key path, e.g. "columns[3].field"; empty for the whole file
	Message string
	Err     error // the underlying cause, if any
}

func (e *MappingError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap returns ErrInvalidMapping and the cause.
func (e *MappingError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidMapping, e.Err}
	}
	return []error{ErrInvalidMapping}
}

// yamlDoc is a strictly decoded YAML document: where each key path sits, and which keys were given.
type yamlDoc struct {
	file  string
	lines map[string]int // key path → line of its value
}

func (d *yamlDoc) errf(path string, format string, args ...any) *MappingError {
	line := 0
	if d != nil {
		line = d.lines[path]
		// Fall back to the nearest enclosing key that has a line.
		for p := path; line == 0 && p != ""; {
			p = parentPath(p)
			line = d.lines[p]
		}
	}
	file := ""
	if d != nil {
		file = d.file
	}
	return &MappingError{File: file, Line: line, Path: path, Message: fmt.Sprintf(format, args...)}
}

func (d *yamlDoc) has(path string) bool {
	if d == nil {
		return false
	}
	_, ok := d.lines[path]
	return ok
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// decodeStrict decodes one YAML document into out (a pointer to a struct), rejecting unknown and
// repeated keys, aliases, more than one document and values of the wrong shape, each error naming the
// line and the key path.
func decodeStrict(file string, data []byte, out any) (*yamlDoc, error) {
	d := &yamlDoc{file: file, lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &MappingError{File: file, Message: "the file is empty"}
		}
		return nil, &MappingError{File: file, Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &MappingError{File: file, Line: extra.Line, Message: "more than one YAML document (remove the second '---')"}
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return nil, &MappingError{File: file, Message: "the file is empty"}
		}
		n = n.Content[0]
	}
	if err := d.walk(n, reflect.ValueOf(out).Elem(), ""); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *yamlDoc) at(n *yaml.Node, path, format string, args ...any) *MappingError {
	return &MappingError{File: d.file, Line: n.Line, Path: path, Message: fmt.Sprintf(format, args...)}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func (d *yamlDoc) walk(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return d.at(n, path, "anchors and aliases are not allowed in a mapping file: write the value out")
	}
	if path != "" {
		d.lines[path] = n.Line
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
			return d.at(n, path, "want a set of 'key: value' lines, got %s", describeNode(n))
		}
		fields, names := structKeys(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return d.at(k, path, "a key must be a plain word, got %s", describeNode(k))
			}
			kp := joinPath(path, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				return d.at(k, kp, "unknown key %q (known keys: %s)", k.Value, strings.Join(names, ", "))
			}
			if seen[k.Value] {
				return d.at(k, kp, "key %q given twice", k.Value)
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
			return d.at(n, path, "want a list, got %s", describeNode(n))
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
		if n.Kind != yaml.ScalarNode || isNull(n) {
			return d.at(n, path, "want a text value, got %s", describeNode(n))
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			return d.at(n, path, "want a single value, got %s", describeNode(n))
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			want := map[reflect.Kind]string{reflect.Bool: "true or false", reflect.Int: "a whole number",
				reflect.Int64: "a whole number", reflect.Float64: "a number"}[v.Kind()]
			return d.at(n, path, "%q is not %s", n.Value, want)
		}
		return nil
	}
	panic(fmt.Sprintf("connectors: decodeStrict cannot decode into %s", v.Type()))
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a set of 'key: value' lines"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if isNull(n) {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

// structKeys returns the YAML keys of a struct type and the field index of each.
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
