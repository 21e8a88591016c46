package catalog

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// baseYAML is a small valid catalog; badCases break it one rule at a time.
const baseYAML = `categories:
  - no: 1
    key: tax
    name_zh: 纳税信息
    name_en: Tax
    items:
      - key: tax_arrears_history
        name_zh: 历史欠税信息
        name_en: Tax arrears history
        subject: enterprise
        sharing: national_api_authorized
        sensitivity: 2
        needs_authorization: true
        fields:
          - {key: uscc, name_zh: 统一社会信用代码, name_en: Credit code, type: id, id_kind: uscc, sensitivity: 1, from_annex: false}
          - {key: arrears_count_24m, name_zh: 欠税次数, name_en: Arrears count, type: int, min: 0, sensitivity: 2, from_annex: false}
          - {key: grade, name_zh: 等级, name_en: Grade, type: enum, values: [A, B], sensitivity: 2, from_annex: false}
`

const secondItem = `      - key: tax_arrears_history
        name_zh: 历史欠税信息
        name_en: Tax arrears history
        subject: enterprise
        sharing: national_physical
        sensitivity: 2
        needs_authorization: false
        fields:
          - {key: arrears_count_24m, name_zh: 欠税次数, name_en: Arrears count, type: int, sensitivity: 2, from_annex: false}
`

type badCase struct {
	name string
	yaml string
	line int      // the line the error must name; 0: the message itself names it
	want []string // substrings of the message
}

// replaced returns baseYAML with each old string of the old, new pairs replaced once.
func replaced(pairs ...string) string {
	s := baseYAML
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			panic("test case does not apply: " + pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

var badCases = []badCase{
	{"unknown key", replaced("        sensitivity: 2\n", "        sensitivity: 2\n        colour: red\n"), 0,
		[]string{"line 13", "field colour not found"}},
	{"unknown field key", replaced("type: int, min: 0,", "type: int, minimum: 0,"), 0,
		[]string{"line 16", "field minimum not found"}},
	{"duplicate item", baseYAML + secondItem, 18,
		[]string{"categories[0].items[1] (tax_arrears_history)", "duplicate item key", "category 1 already has"}},
	{"wrong item sensitivity", replaced("        sensitivity: 2\n", "        sensitivity: 1\n"), 7,
		[]string{"categories[0].items[0] (tax_arrears_history)", "sensitivity 1, but its most sensitive field has 2"}},
	{"sensitivity out of range", replaced("values: [A, B], sensitivity: 2", "values: [A, B], sensitivity: 4"), 17,
		[]string{"fields[2] (grade)", "sensitivity 4 is not 1 (public), 2 (confidential) or 3 (personal)"}},
	{"enum without values", replaced("type: enum, values: [A, B],", "type: enum,"), 17,
		[]string{"categories[0].items[0] (tax_arrears_history).fields[2] (grade)", "enum without values"}},
	{"repeated enum value", replaced("values: [A, B]", "values: [A, A]"), 17, []string{"(grade)", `enum value "A" is empty or repeated`}},
	{"values on an int", replaced("type: int, min: 0,", "type: int, values: [1, 2],"), 16, []string{"values given for a int field"}},
	{"resident id not personal", replaced("id_kind: uscc, sensitivity: 1", "id_kind: resident_id, sensitivity: 2"), 15,
		[]string{"(uscc)", "resident_id field with sensitivity 2"}},
	{"unknown id kind", replaced("id_kind: uscc", "id_kind: passport"), 15, []string{"unknown identifier kind \"passport\""}},
	{"authorized mode without authorization", replaced("needs_authorization: true", "needs_authorization: false"), 7,
		[]string{"sharing mode national_api_authorized requires the subject's authorization"}},
	{"personal without authorization", replaced("sharing: national_api_authorized\n        sensitivity: 2\n        needs_authorization: true",
		"sharing: local_physical\n        sensitivity: 3\n        needs_authorization: false") +
		"          - {key: owner_name, name_zh: 姓名, name_en: Name, type: string, sensitivity: 3, from_annex: false}\n", 7,
		[]string{"holds personal information, so needs_authorization must be true"}},
	{"person without authorization", replaced("subject: enterprise\n        sharing: national_api_authorized\n        sensitivity: 2\n        needs_authorization: true",
		"subject: person\n        sharing: local_physical\n        sensitivity: 2\n        needs_authorization: false"), 7,
		[]string{"is about a natural person, so needs_authorization must be true"}},
	{"unknown subject", replaced("subject: enterprise", "subject: household"), 7, []string{`subject "household" is not enterprise or person`}},
	{"unknown sharing mode", replaced("sharing: national_api_authorized", "sharing: email"), 7, []string{`sharing mode "email" is unknown`}},
	{"string as a feature", replaced("name_en: Credit code, type: id, id_kind: uscc,", "name_en: Credit code, type: string, role: feature,"), 15,
		[]string{"role feature for a string field"}},
	{"unknown role", replaced("type: int, min: 0,", "type: int, role: target,"), 16, []string{`role "target" is unknown`}},
	{"no feature", replaced("values: [A, B],", "values: [A, B], role: descriptive,", "type: int, min: 0,", "type: int, role: identifier, min: 0,"), 7,
		[]string{"no feature field"}},
	{"range on a bool", replaced("type: int, min: 0,", "type: bool, min: 0,"), 16, []string{"min or max given for a bool field"}},
	{"min above max", replaced("type: int, min: 0,", "type: int, min: 5, max: 1,"), 16, []string{"min 5 is above max 1"}},
	{"duplicate field", replaced("{key: grade,", "{key: arrears_count_24m,"), 17, []string{"duplicate field key within the item"}},
	{"missing field name", replaced("name_zh: 等级, ", ""), 17, []string{"(grade)", "name_zh and name_en are required"}},
	{"bad item key", replaced("- key: tax_arrears_history", "- key: Tax-Arrears"), 7, []string{`key "Tax-Arrears" is not snake_case`}},
	{"category numbering", replaced("- no: 1", "- no: 3"), 2, []string{"categories[0]", "number 3, want 1"}},
	{"no items", replaced("    items:\n", "    items: []\n    x_items:\n"), 0, []string{"field x_items not found"}},
	{"null item", "categories:\n  - {no: 1, key: tax, name_zh: 纳税, name_en: Tax, items: [~]}\n", 2, []string{"items[0]", "empty item"}},
	{"null field", strings.Replace(baseYAML, "          - {key: grade,", "          - ~\n          - {key: grade,", 1), 17,
		[]string{"fields[2]", "empty field"}},
	{"no categories", "categories: []\n", 1, []string{"no categories"}},
	{"empty", "", 0, []string{"empty file"}},
	{"not yaml", "categories: [\n", 0, []string{"yaml:"}},
	{"repeated yaml key", replaced("    name_en: Tax\n", "    name_en: Tax\n    name_en: Taxes\n"), 0, []string{`mapping key "name_en" already defined`}},
}

func TestParseBase(t *testing.T) {
	c, err := Parse([]byte(baseYAML))
	if err != nil {
		t.Fatal(err)
	}
	_, f, err := c.Field("tax_arrears_history", "uscc")
	if err != nil || f.Role != RoleIdentifier {
		t.Fatalf("uscc: role %q, err %v; want identifier", f.Role, err)
	}
	_, f, _ = c.Field("tax_arrears_history", "grade")
	if f.Role != RoleFeature {
		t.Errorf("grade: role %q, want feature", f.Role)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse accepted it: %d categories", len(c.Categories))
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error", err)
			}
			if ce.Line != tc.line {
				t.Errorf("line %d, want %d (%v)", ce.Line, tc.line, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "catalog: ") {
				t.Errorf("message %q does not start with catalog:", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestCheckFieldAllowsEmptyRole(t *testing.T) {
	f := &Field{Key: "employees", NameZH: "员工数", NameEN: "Employees", Type: TypeInt, Sensitivity: Confidential}
	if err := CheckField(f); err != nil {
		t.Fatal(err)
	}
	if f.Role != "" {
		t.Errorf("CheckField changed the role to %q", f.Role)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(embedded)
	f.Add([]byte(baseYAML))
	for _, tc := range badCases {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v (%T) is not an *Error wrapping ErrInvalid", err, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, it := range c.Items() {
			if seen[it.Key] {
				t.Fatalf("duplicate item %s accepted", it.Key)
			}
			seen[it.Key] = true
			if got, err := c.Item(it.Key); err != nil || got != it || it.Category == nil {
				t.Fatalf("item %s: lookup %v, %v", it.Key, got, err)
			}
			var highest Sensitivity
			for _, fd := range it.Fields {
				highest = max(highest, fd.Sensitivity)
				if fd.Role == "" || (fd.Type == TypeEnum && len(fd.Values) == 0) {
					t.Fatalf("%s.%s: accepted role %q type %s values %v", it.Key, fd.Key, fd.Role, fd.Type, fd.Values)
				}
			}
			if highest != it.Sensitivity || (it.Sharing.Authorized() && !it.NeedsAuthorization) {
				t.Fatalf("%s: accepted sensitivity %d (fields %d), authorization %v", it.Key, it.Sensitivity, highest, it.NeedsAuthorization)
			}
		}
		var b bytes.Buffer
		if err := c.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		for _, l := range []string{"zh", "en"} {
			if err := c.WriteTable(&b, l); err != nil {
				t.Fatal(err)
			}
		}
	})
}
