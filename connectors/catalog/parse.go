package catalog

import (
	"bytes"
	"fmt"
	"regexp"

	"go.yaml.in/yaml/v3"
)

var keyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Parse reads a catalog from YAML and checks it: unique keys, known types, sharing modes, subjects and
// sensitivities, enum values for enums, id kinds for ids, and each item's sensitivity equal to the
// highest of its fields'. Unknown YAML keys are errors.
func Parse(data []byte) (*Catalog, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c.items = map[string]*Item{}
	catKeys := map[string]bool{}
	for ci, cat := range c.Categories {
		where := fmt.Sprintf("categories[%d]", ci)
		if cat.No != ci+1 {
			return nil, fmt.Errorf("catalog: %s: number %d, want %d (annex order)", where, cat.No, ci+1)
		}
		if !keyRE.MatchString(cat.Key) || catKeys[cat.Key] {
			return nil, fmt.Errorf("catalog: %s: key %q is not a unique snake_case key", where, cat.Key)
		}
		catKeys[cat.Key] = true
		if cat.NameZH == "" || cat.NameEN == "" || len(cat.Items) == 0 {
			return nil, fmt.Errorf("catalog: %s (%s): names and at least one item are required", where, cat.Key)
		}
		for ii, it := range cat.Items {
			where := fmt.Sprintf("%s.items[%d] (%s)", where, ii, it.Key)
			if err := checkItem(it); err != nil {
				return nil, fmt.Errorf("catalog: %s: %w", where, err)
			}
			if _, dup := c.items[it.Key]; dup {
				return nil, fmt.Errorf("catalog: %s: duplicate item key", where)
			}
			it.Category = cat
			c.items[it.Key] = it
		}
	}
	return &c, nil
}

func checkItem(it *Item) error {
	if !keyRE.MatchString(it.Key) {
		return fmt.Errorf("key %q is not snake_case", it.Key)
	}
	if it.NameZH == "" || it.NameEN == "" {
		return fmt.Errorf("name_zh and name_en are required")
	}
	switch it.Subject {
	case SubjectEnterprise, SubjectPerson:
	default:
		return fmt.Errorf("subject %q is not enterprise or person", it.Subject)
	}
	switch it.Sharing {
	case NationalAPIAuthorized, NationalPhysical, LocalPhysical, VerificationAuthorized:
	default:
		return fmt.Errorf("sharing mode %q is unknown", it.Sharing)
	}
	if len(it.Fields) == 0 {
		return fmt.Errorf("no fields")
	}
	fieldKeys := map[string]bool{}
	var highest Sensitivity
	for _, f := range it.Fields {
		if err := CheckField(f); err != nil {
			return fmt.Errorf("field %q: %w", f.Key, err)
		}
		if fieldKeys[f.Key] {
			return fmt.Errorf("field %q: duplicate key", f.Key)
		}
		fieldKeys[f.Key] = true
		highest = max(highest, f.Sensitivity)
	}
	if it.Sensitivity != highest {
		return fmt.Errorf("sensitivity %d, but its most sensitive field has %d", it.Sensitivity, highest)
	}
	if it.Sensitivity == Personal && !it.NeedsAuthorization {
		return fmt.Errorf("holds personal information, so needs_authorization must be true")
	}
	return nil
}

// CheckField checks one field definition; mapping files use it for their custom fields too.
func CheckField(f *Field) error {
	if !keyRE.MatchString(f.Key) {
		return fmt.Errorf("key %q is not snake_case", f.Key)
	}
	switch f.Type {
	case TypeString, TypeInt, TypeFloat, TypeBool, TypeDate:
	case TypeEnum:
		if len(f.Values) == 0 {
			return fmt.Errorf("enum without values")
		}
	case TypeID:
		switch f.IDKind {
		case "uscc", "resident_id", "opaque":
		default:
			return fmt.Errorf("id field with id_kind %q (want uscc, resident_id or opaque)", f.IDKind)
		}
	default:
		return fmt.Errorf("type %q is unknown (want string, enum, int, float, bool, date or id)", f.Type)
	}
	if f.Type != TypeEnum && len(f.Values) > 0 {
		return fmt.Errorf("values given for a %s field", f.Type)
	}
	if f.Sensitivity < Public || f.Sensitivity > Personal {
		return fmt.Errorf("sensitivity %d is not 1 (public), 2 (confidential) or 3 (personal)", f.Sensitivity)
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		return fmt.Errorf("min %g is above max %g", *f.Min, *f.Max)
	}
	return nil
}
