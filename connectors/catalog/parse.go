package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"insitu/connectors/ident"
)

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid catalog")

// Error says where a catalog file breaks a rule and which rule.
type Error struct {
	// Line is the 1-based line of the YAML where the offending category, item or field starts; 0 when
	// the YAML itself could not be read (its own message then names the line).
	Line int
	// Path names the place, e.g. `categories[2].items[0] (tax_deferral).fields[3] (arrears_count_24m)`.
	Path string
	// Msg is the broken rule and what to do.
	Msg string
	// Err is the YAML decoder's error, when the YAML could not be read.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("catalog: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid and, when there is one, the YAML decoder's error.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// Parse reads a catalog from YAML and checks it: categories numbered in order, unique snake_case keys,
// names in both languages, known subjects, sharing modes, types, roles and sensitivities, values for
// enums and only for enums, id kinds for ids, ranges only on numbers, resident-id fields Personal, at
// least one feature per item, each item's sensitivity equal to the highest of its fields', and the
// authorization rule of the package documentation. Unknown YAML keys are errors. Every error is an
// *Error naming the line and place.
func Parse(data []byte) (*Catalog, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: "empty file: a catalog needs a categories list"}
		}
		return nil, yamlError(err)
	}
	loc := locator{root: &root}
	if len(c.Categories) == 0 {
		return nil, &Error{Line: 1, Msg: "no categories: a catalog needs a categories list"}
	}
	c.items = map[string]*Item{}
	catKeys := map[string]bool{}
	for ci, cat := range c.Categories {
		fail := func(format string, args ...any) error {
			return &Error{Line: loc.line(ci, -1, -1), Path: fmt.Sprintf("categories[%d]", ci), Msg: fmt.Sprintf(format, args...)}
		}
		if cat == nil {
			return nil, fail("empty category")
		}
		if cat.No != ci+1 {
			return nil, fail("number %d, want %d: categories are numbered 1, 2, ... in annex order", cat.No, ci+1)
		}
		if !keyRE.MatchString(cat.Key) || catKeys[cat.Key] {
			return nil, fail("key %q is not a unique snake_case key", cat.Key)
		}
		catKeys[cat.Key] = true
		if cat.NameZH == "" || cat.NameEN == "" || len(cat.Items) == 0 {
			return nil, fail("category %s: name_zh, name_en and at least one item are required", cat.Key)
		}
		for ii, it := range cat.Items {
			path := fmt.Sprintf("categories[%d].items[%d]", ci, ii)
			if it == nil {
				return nil, &Error{Line: loc.line(ci, ii, -1), Path: path, Msg: "empty item"}
			}
			path += " (" + it.Key + ")"
			if fi, msg := checkItem(it); msg != "" {
				line := loc.line(ci, ii, fi)
				if fi >= 0 {
					path += fmt.Sprintf(".fields[%d]", fi)
					if f := it.Fields[fi]; f != nil {
						path += " (" + f.Key + ")"
					}
				}
				return nil, &Error{Line: line, Path: path, Msg: msg}
			}
			if prev, dup := c.items[it.Key]; dup {
				return nil, &Error{Line: loc.line(ci, ii, -1), Path: path,
					Msg: fmt.Sprintf("duplicate item key: category %d already has an item %q; item keys are unique across the catalog", prev.Category.No, it.Key)}
			}
			it.Category = cat
			c.items[it.Key] = it
		}
	}
	return &c, nil
}

func yamlError(err error) *Error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	return &Error{Msg: msg, Err: err}
}

// checkItem checks an item and sets the default role of its fields. It returns the index of the
// offending field (-1 for the item itself) and the broken rule, or "" when the item is valid.
func checkItem(it *Item) (int, string) {
	if !keyRE.MatchString(it.Key) {
		return -1, fmt.Sprintf("key %q is not snake_case", it.Key)
	}
	if it.NameZH == "" || it.NameEN == "" {
		return -1, "name_zh and name_en are required"
	}
	switch it.Subject {
	case SubjectEnterprise, SubjectPerson:
	default:
		return -1, fmt.Sprintf("subject %q is not enterprise or person", it.Subject)
	}
	if !it.Sharing.Valid() {
		return -1, fmt.Sprintf("sharing mode %q is unknown (want national_api_authorized, national_physical, local_physical or verification_authorized)", it.Sharing)
	}
	if len(it.Fields) == 0 {
		return -1, "no fields"
	}
	fieldKeys := map[string]bool{}
	var highest Sensitivity
	features := 0
	for fi, f := range it.Fields {
		if f == nil {
			return fi, "empty field"
		}
		if f.Role == "" {
			f.Role = defaultRole(f.Type)
		}
		if err := CheckField(f); err != nil {
			return fi, err.Error()
		}
		if f.NameZH == "" || f.NameEN == "" {
			return fi, "name_zh and name_en are required"
		}
		if fieldKeys[f.Key] {
			return fi, "duplicate field key within the item"
		}
		fieldKeys[f.Key] = true
		highest = max(highest, f.Sensitivity)
		if f.Feature() {
			features++
		}
	}
	if features == 0 {
		return -1, "no feature field: give the item at least one int, float, bool, date or enum field a model can use"
	}
	if it.Sensitivity != highest {
		return -1, fmt.Sprintf("sensitivity %d, but its most sensitive field has %d: an item's sensitivity is the highest of its fields'", it.Sensitivity, highest)
	}
	if !it.NeedsAuthorization {
		switch {
		case it.Sharing.Authorized():
			return -1, fmt.Sprintf("sharing mode %s requires the subject's authorization, so needs_authorization must be true", it.Sharing)
		case it.Sensitivity == Personal:
			return -1, "holds personal information, so needs_authorization must be true"
		case it.Subject == SubjectPerson:
			return -1, "is about a natural person, so needs_authorization must be true"
		}
	}
	return -1, ""
}

func defaultRole(t FieldType) FieldRole {
	switch t {
	case TypeID:
		return RoleIdentifier
	case TypeString:
		return RoleDescriptive
	}
	return RoleFeature
}

// CheckField checks one field definition; mapping files use it for their custom fields too. An empty
// Role is allowed (Parse sets the default).
func CheckField(f *Field) error {
	if !keyRE.MatchString(f.Key) {
		return fmt.Errorf("key %q is not snake_case", f.Key)
	}
	switch f.Type {
	case TypeString, TypeInt, TypeFloat, TypeBool, TypeDate:
	case TypeEnum:
		if len(f.Values) == 0 {
			return fmt.Errorf("enum without values: list the allowed values under values")
		}
		seen := map[string]bool{}
		for _, v := range f.Values {
			if v == "" || seen[v] {
				return fmt.Errorf("enum value %q is empty or repeated", v)
			}
			seen[v] = true
		}
	case TypeID:
		k, err := ident.ParseKind(f.IDKind)
		if err != nil {
			return fmt.Errorf("id field: %w", err)
		}
		if k.Personal() && f.Sensitivity != Personal {
			return fmt.Errorf("%s field with sensitivity %d: identifiers of natural persons are personal information (3)", k, f.Sensitivity)
		}
	default:
		return fmt.Errorf("type %q is unknown (want string, enum, int, float, bool, date or id)", f.Type)
	}
	if f.Type != TypeEnum && len(f.Values) > 0 {
		return fmt.Errorf("values given for a %s field: only enums have values", f.Type)
	}
	if f.Type != TypeID && f.IDKind != "" {
		return fmt.Errorf("id_kind given for a %s field: only ids have an id kind", f.Type)
	}
	if f.Sensitivity < Public || f.Sensitivity > Personal {
		return fmt.Errorf("sensitivity %d is not 1 (public), 2 (confidential) or 3 (personal)", f.Sensitivity)
	}
	if (f.Min != nil || f.Max != nil) && !f.Type.Numeric() {
		return fmt.Errorf("min or max given for a %s field: only int and float fields have a range", f.Type)
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		return fmt.Errorf("min %g is above max %g", *f.Min, *f.Max)
	}
	switch f.Role {
	case "":
	case RoleFeature:
		switch f.Type {
		case TypeInt, TypeFloat, TypeBool, TypeDate, TypeEnum:
		default:
			return fmt.Errorf("role feature for a %s field: features are int, float, bool, date or enum", f.Type)
		}
	case RoleIdentifier, RoleDescriptive:
	default:
		return fmt.Errorf("role %q is unknown (want identifier, descriptive or feature)", f.Role)
	}
	return nil
}

// locator finds the lines of categories, items and fields in the parsed YAML tree.
type locator struct{ root *yaml.Node }

// line returns the line of categories[ci], of its items[ii] when ii >= 0, and of that item's
// fields[fi] when fi >= 0; it falls back to the nearest enclosing node, and to 0.
func (l locator) line(ci, ii, fi int) int {
	n := l.root
	if n == nil || n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
		return 0
	}
	n = n.Content[0]
	best := n.Line
	step := func(key string, i int) bool {
		seq := mapValue(n, key)
		if seq == nil || seq.Kind != yaml.SequenceNode || i < 0 || i >= len(seq.Content) {
			return false
		}
		n = seq.Content[i]
		best = n.Line
		return true
	}
	if !step("categories", ci) || ii < 0 || !step("items", ii) || fi < 0 {
		return best
	}
	step("fields", fi)
	return best
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
