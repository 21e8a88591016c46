package strictyaml

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxJSONDepth bounds the nesting of a JSON document.
const maxJSONDepth = 64

// ReadJSON reads one JSON value into the node tree YAML would give, with lines: objects become
// mappings, numbers !!int or !!float scalars as written, strings double-quoted !!str scalars.
func (d *Dialect) ReadJSON(data []byte) (*yaml.Node, error) {
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
	syntax := func(err error) error {
		return d.Err(lineAt(), "", RuleSyntax, "not valid JSON: "+err.Error(), err)
	}
	var value func(depth int) (*yaml.Node, error)
	value = func(depth int) (*yaml.Node, error) {
		if depth > maxJSONDepth {
			return nil, d.Err(lineAt(), "", RuleSize, fmt.Sprintf("JSON nested more than %d deep", maxJSONDepth), nil)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
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
						return nil, syntax(err)
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
				return nil, d.Err(lineAt(), "", RuleSyntax, fmt.Sprintf("not valid JSON: unexpected %q", t), nil)
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return nil, syntax(err)
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
		return nil, d.Err(lineAt(), "", RuleSyntax, "trailing data after the JSON object", nil)
	}
	return n, nil
}
