package manifest

import (
	"errors"
	"strings"
	"testing"
)

func TestCustomFieldsAndLabelColumn(t *testing.T) {
	m := mustParse(t, "good-he-public-custom.yaml")
	if m.LabelColumn != "custom.default_next_month" || m.Labels != "" {
		t.Fatalf("labels %q, label_column %q", m.Labels, m.LabelColumn)
	}
	for i, f := range m.Fields {
		if !f.Custom() {
			t.Errorf("fields[%d] %s is not custom", i, f.Key)
		}
	}
	if m.Fields[1].Name != "pay_status_sep" {
		t.Errorf("name %q", m.Fields[1].Name)
	}
	// The steps' defaults are spelled out as for catalog fields.
	if r := m.Fields[1].Steps[1].Scale.Range; len(r) != 2 || r[0] != 0 || r[1] != 1 {
		t.Errorf("minmax range %v", r)
	}
	c := string(m.Canonical())
	if !strings.Contains(c, `"label_column":"custom.default_next_month"`) || strings.Contains(c, `"labels"`) {
		t.Errorf("canonical form: %s", c)
	}
	// A manifest without label_column keeps its canonical bytes: the key is left out.
	he, err := Parse([]byte(heYAML), "he.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(he.Canonical()), "label_column") {
		t.Errorf("canonical form of a manifest without label_column names it: %s", he.Canonical())
	}

	// Neither labels nor label_column in he mode: the labels are missing.
	m2 := mustParse(t, "good-he-public-custom.yaml")
	m2.LabelColumn = ""
	var e *Error
	if err := m2.Validate(); !errors.As(err, &e) || e.Path != "labels" || e.Rule != RuleRequired || !strings.Contains(e.Message, "label_column") {
		t.Fatalf("he job without labels: %v", err)
	}
	// A label column that is not a column name.
	m2.LabelColumn = "default next month"
	if err := m2.Validate(); !errors.As(err, &e) || e.Path != "label_column" || e.Rule != RuleLabels {
		t.Fatalf("label column with spaces: %v", err)
	}
}

func TestCheckCustom(t *testing.T) {
	m := mustParse(t, "good-he-public-custom.yaml")
	before := string(m.Canonical())
	cases := []struct {
		field int
		col   CustomColumn
		rule  string // "" when the column is accepted
	}{
		{0, CustomColumn{Type: "int", Sensitivity: 1}, ""},
		{0, CustomColumn{Type: "float", Role: "feature", Sensitivity: 2}, ""},
		{1, CustomColumn{Type: "bool", Sensitivity: 1}, ""},
		{2, CustomColumn{Type: "enum", Sensitivity: 1}, ""},
		{2, CustomColumn{Type: "int", Sensitivity: 1}, "steps"},       // most_frequent imputes categories, not numbers
		{0, CustomColumn{Type: "date", Sensitivity: 1}, "steps"},      // a date must start with age
		{0, CustomColumn{Type: "enum", Sensitivity: 1}, "steps"},      // clip and scale do not apply to categories
		{0, CustomColumn{Type: "string", Sensitivity: 1}, "column"},   // free text is no feature
		{0, CustomColumn{Type: "id", Sensitivity: 1}, "column"},       // nor is an identifier
		{0, CustomColumn{Type: "int", Role: "descriptive"}, "column"}, // nor a descriptive field
		{0, CustomColumn{Type: "int", Sensitivity: 3}, "personal"},    // personal without personal: true
	}
	for _, c := range cases {
		err := m.CheckCustom(c.field, c.col)
		if c.rule == "" {
			if err != nil {
				t.Errorf("fields[%d] on %+v: %v", c.field, c.col, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) || e.Rule != c.rule || !strings.HasPrefix(e.Path, "fields[") {
			t.Errorf("fields[%d] on %+v: %v, want rule %s", c.field, c.col, err, c.rule)
		}
	}
	m.Fields[0].Personal = true
	if err := m.CheckCustom(0, CustomColumn{Type: "int", Sensitivity: 3}); err != nil {
		t.Errorf("personal column requested with personal: true: %v", err)
	}
	m.Fields[0].Personal = false
	if after := string(m.Canonical()); after != before {
		t.Errorf("CheckCustom changed the manifest:\n%s\n%s", before, after)
	}
}
