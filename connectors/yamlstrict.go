package connectors

import (
	"errors"
	"fmt"
	"strings"

	"insitu/connectors/strictyaml"

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

// yamlDoc is a strictly decoded mapping file or dataset spec: the file, and the line of each key
// path given in it.
type yamlDoc struct {
	file string
	doc  *strictyaml.Doc // nil for a mapping built in Go
}

func (d *yamlDoc) errf(path string, format string, args ...any) *MappingError {
	if d == nil {
		return &MappingError{Path: path, Message: fmt.Sprintf(format, args...)}
	}
	// The line of path or of the nearest enclosing key that has one; never the whole file's.
	line := 0
	for p := path; line == 0 && p != ""; p = strictyaml.Parent(p) {
		line, _ = d.doc.Lookup(p)
	}
	return &MappingError{File: d.file, Line: line, Path: path, Message: fmt.Sprintf(format, args...)}
}

func (d *yamlDoc) has(path string) bool {
	return d != nil && d.doc.Has(path)
}

// mappingDialect is how mapping files and dataset specs are decoded: scalars as YAML reads them,
// errors as *MappingError.
func mappingDialect(file string) *strictyaml.Dialect {
	return &strictyaml.Dialect{
		Err: func(line int, path string, _ strictyaml.Rule, message string, cause error) error {
			return &MappingError{File: file, Line: line, Path: path, Message: message, Err: cause}
		},
		Describe:       describeNode,
		Mapping:        "a set of 'key: value' lines",
		Aliases:        "anchors and aliases are not allowed in a mapping file: write the value out",
		SecondDocument: "more than one YAML document (remove the second '---')",
	}
}

// decodeStrict decodes one YAML document into out (a pointer to a struct), rejecting unknown and
// repeated keys, aliases, more than one document and values of the wrong shape, each error naming the
// line and the key path.
func decodeStrict(file string, data []byte, out any) (*yamlDoc, error) {
	dialect := mappingDialect(file)
	n, err := dialect.Read(data)
	if err != nil {
		return nil, err
	}
	doc, err := dialect.Decode(n, out)
	if err != nil {
		return nil, err
	}
	return &yamlDoc{file: file, doc: doc}, nil
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
	if strictyaml.IsNull(n) {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}
