package connectors_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"insitu/connectors"
	"insitu/connectors/catalog"
)

const baseMapping = `source: tax
provider: zhejiang_tax_bureau
format: csv
path: tax.csv
subject:
  column: uscc
  kind: uscc
columns:
  - column: amount
    field: tax_arrears_history.arrears_amount_24m
  - column: count
    field: tax_arrears_history.arrears_count_24m
  - column: when
    field: tax_arrears_history.latest_arrears_date
  - column: flag
    field: tax_arrears_history.arrears_outstanding
  - column: name
    field: custom.name
custom_fields:
  - key: name
    type: string
`

func TestLoadMappingAcceptsBase(t *testing.T) {
	m, err := connectors.ParseMapping([]byte(baseMapping), "dir/m.yaml", catalog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if m.ResolvedPath() != filepath.Join("dir", "tax.csv") || m.SubjectKind() != "uscc" || len(m.Columns) != 5 {
		t.Fatalf("mapping %+v", m)
	}
}

func TestLoadMappingErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		old, new   string // replace old with new in baseMapping
		path, want string
		line       int
	}{
		{"unknown key", "    field: tax_arrears_history.arrears_outstanding", "    fielx: tax_arrears_history.arrears_outstanding",
			"columns[3].fielx", `unknown key "fielx" (known keys: column, date_format, false, field, scale, true)`, 16},
		{"unknown top key", "format: csv", "format: csv\nformt: csv", "formt", "unknown key", 4},
		{"repeated key", "format: csv", "format: csv\nformat: csv", "format", "given twice", 4},
		{"not a list", "columns:\n", "columns: 3\nx:\n", "columns", "want a list", 8},
		{"bad source", "source: tax", "source: Tax Data", "source", "source name \"Tax Data\"", 1},
		{"bad provider", "provider: zhejiang_tax_bureau", "provider: \"\"", "provider", "provider key", 2},
		{"unknown format", "format: csv", "format: xlsx", "format", `unknown format "xlsx"`, 3},
		{"no path", "path: tax.csv\n", "", "path", "needs a path", 0},
		{"query on csv", "path: tax.csv", "path: tax.csv\nquery: select 1", "query", "postgres sources only", 5},
		{"postgres without query", "format: csv\npath: tax.csv", "format: postgres", "query", "needs a query", 0},
		{"bad dsn env", "format: csv\npath: tax.csv", "format: postgres\nquery: select 1\ndsn_env: 'a b'", "dsn_env", "not an environment variable", 5},
		{"bad kind", "kind: uscc", "kind: passport", "subject.kind", `unknown identifier kind "passport"`, 7},
		{"no subject column", "  column: uscc\n", "", "subject.column", "the subject needs a column", 6},
		{"unknown field", "field: tax_arrears_history.arrears_count_24m", "field: tax_arrears_history.nope",
			"columns[1].field", `"tax_arrears_history.nope" is not a field of the catalog`, 12},
		{"unknown item", "field: tax_arrears_history.arrears_count_24m", "field: taxes.count", "columns[1].field", "not a field of the catalog", 12},
		{"field without item", "field: tax_arrears_history.arrears_count_24m", "field: count", "columns[1].field", "write <item>.<field>", 12},
		{"undeclared custom", "field: custom.name", "field: custom.nom", "columns[4].field", `custom field "nom" is not declared`, 18},
		{"column twice", "- column: count", "- column: amount", "columns[1].column", `column "amount" is already mapped at columns[0]`, 11},
		{"field twice", "field: tax_arrears_history.arrears_count_24m", "field: tax_arrears_history.arrears_amount_24m",
			"columns[1].field", "already mapped at columns[0]", 12},
		{"scale on a date", "field: tax_arrears_history.latest_arrears_date", "field: tax_arrears_history.latest_arrears_date\n    scale: 10",
			"columns[2].scale", "scale is for int and float fields", 15},
		{"zero scale", "field: tax_arrears_history.arrears_amount_24m", "field: tax_arrears_history.arrears_amount_24m\n    scale: 0",
			"columns[0].scale", "positive number", 11},
		{"scale not a number", "field: tax_arrears_history.arrears_amount_24m", "field: tax_arrears_history.arrears_amount_24m\n    scale: lots",
			"columns[0].scale", `"lots" is not a number`, 11},
		{"date format on a number", "field: tax_arrears_history.arrears_amount_24m", "field: tax_arrears_history.arrears_amount_24m\n    date_format: \"20060102\"",
			"columns[0].date_format", "date_format is for date fields", 11},
		{"bad date format", "field: tax_arrears_history.latest_arrears_date", "field: tax_arrears_history.latest_arrears_date\n    date_format: YYYYMMDD",
			"columns[2].date_format", "not a Go date layout", 15},
		{"true on a number", "field: tax_arrears_history.arrears_count_24m", "field: tax_arrears_history.arrears_count_24m\n    true: [Y]",
			"columns[1].true", "true and false spellings are for bool fields", 13},
		{"true and false overlap", "field: tax_arrears_history.arrears_outstanding", "field: tax_arrears_history.arrears_outstanding\n    true: [Y, 1]\n    false: [N, 1]",
			"columns[3].false", `"1" is listed both as true and as false`, 18},
		{"bad custom type", "    type: string", "    type: text", "custom_fields[0]", `type "text" is unknown`, 20},
		{"custom id without kind", "    type: string", "    type: id", "custom_fields[0]", "id field", 20},
		{"custom declared twice", "    type: string\n", "    type: string\n  - key: name\n    type: int\n", "custom_fields[1].key", "declared twice", 22},
		{"custom unused", "    type: string\n", "    type: string\n  - key: spare\n    type: int\n", "custom_fields[1]", "no column maps to it", 22},
		{"alias", "  kind: uscc", "  kind: &k uscc", "subject.kind", "anchors and aliases are not allowed", 7},
		{"no columns", baseMapping[strings.Index(baseMapping, "columns:"):], "columns: []\n", "columns", "no columns mapped", 8},
		{"csv options on parquet", "format: csv", "format: parquet\ncsv: {delimiter: ';'}", "csv", "csv options given for a parquet source", 4},
		{"bad delimiter", "format: csv", "format: csv\ncsv: {delimiter: '\"'}", "csv.delimiter", "one character other than a quote", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(baseMapping, tc.old) {
				t.Fatalf("test case does not apply: %q", tc.old)
			}
			text := strings.Replace(baseMapping, tc.old, tc.new, 1)
			_, err := connectors.ParseMapping([]byte(text), "m.yaml", catalog.Default())
			var me *connectors.MappingError
			if !errors.As(err, &me) || !errors.Is(err, connectors.ErrInvalidMapping) {
				t.Fatalf("error %v (%T), want a *MappingError", err, err)
			}
			if me.Path != tc.path || !strings.Contains(me.Message, tc.want) || me.Line != tc.line || me.File != "m.yaml" {
				t.Fatalf("got %s (path %q, line %d)\nwant path %q, line %d, message with %q", err, me.Path, me.Line, tc.path, tc.line, tc.want)
			}
		})
	}
}

func TestLoadMappingFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, want string }{
		{"", "the file is empty"},
		{"source: [", "not valid YAML"},
		{"source: a\n---\nsource: b\n", "more than one YAML document"},
		{"- a\n- b\n", "want a set of 'key: value' lines"},
	} {
		p := filepath.Join(dir, "m.yaml")
		os.WriteFile(p, []byte(tc.text), 0o600)
		_, err := connectors.LoadMapping(p)
		if !errors.Is(err, connectors.ErrInvalidMapping) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
			t.Errorf("%q: error %v, want one naming the file with %q", tc.text, err, tc.want)
		}
	}
	if _, err := connectors.LoadMapping(filepath.Join(dir, "absent.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

func TestPersonItemNeedsPersonSubject(t *testing.T) {
	var personal *catalog.Item
	for _, it := range catalog.Default().Items() {
		if it.Subject == catalog.SubjectPerson {
			personal = it
			break
		}
	}
	if personal == nil {
		t.Skip("the catalog has no item about persons yet")
	}
	text := strings.Replace(baseMapping, "field: tax_arrears_history.arrears_count_24m", "field: "+personal.Key+"."+personal.Fields[0].Key, 1)
	_, err := connectors.ParseMapping([]byte(text), "m.yaml", catalog.Default())
	var me *connectors.MappingError
	if !errors.As(err, &me) || me.Path != "columns[1].field" || !strings.Contains(me.Message, "is about a person") {
		t.Fatalf("error %v", err)
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDatasetSpec(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "tax.yaml", baseMapping)
	other := strings.NewReplacer("source: tax", "source: deferral",
		"tax_arrears_history.arrears_amount_24m", "tax_deferral.deferred_amount_24m",
		"tax_arrears_history.arrears_count_24m", "tax_deferral.deferrals_24m",
		"tax_arrears_history.latest_arrears_date", "tax_deferral.latest_deferral_start",
		"tax_arrears_history.arrears_outstanding", "tax_deferral.deferral_outstanding",
		"custom.name", "custom.name2", "key: name", "key: name2").Replace(baseMapping)
	writeFile(t, dir, "deferral.yaml", other)
	spec := writeFile(t, dir, "spec.yaml", "dataset: zj\nclass: platform\nsubject: uscc\nmappings: [tax.yaml, deferral.yaml]\n")
	s, ms, err := connectors.LoadDatasetSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dataset != "zj" || len(ms) != 2 || ms[1].Source != "deferral" || ms[0].ResolvedPath() != filepath.Join(dir, "tax.csv") {
		t.Fatalf("spec %+v, mappings %v", s, ms)
	}

	writeFile(t, dir, "opaque.yaml", strings.NewReplacer("kind: uscc", "kind: opaque", "source: tax", "source: other").Replace(other))
	writeFile(t, dir, "bad.yaml", strings.Replace(baseMapping, "format: csv", "format: xlsx", 1))
	for _, tc := range []struct{ text, path, want string }{
		{"dataset: zj\nclass: secret\nsubject: uscc\nmappings: [tax.yaml]\n", "class", `class "secret"`},
		{"dataset: zj\nclass: public\nsubject: person\nmappings: [tax.yaml]\n", "subject", "unknown identifier kind"},
		{"dataset: zj\nclass: public\nsubject: uscc\nmappings: []\n", "mappings", "no mappings"},
		{"dataset: zj\nclass: public\nsubject: uscc\nmappings: [tax.yaml, tax.yaml]\n", "mappings[1]", "already listed"},
		{"dataset: zj\nclass: public\nsubject: uscc\nmappings: [tax.yaml, opaque.yaml]\n", "mappings[1]", "keyed by opaque identifiers"},
		{"dataset: zj\nclass: public\nsubject: uscc\nmappings: [tax.yaml, bad.yaml]\n", "mappings[1]", `unknown format "xlsx"`},
		{"dataset: zj\nclass: public\nsubject: uscc\nmappings: [tax.yaml, missing.yaml]\n", "mappings[1]", "cannot read the mapping file"},
		{"dataset: zj\nclass: public\nsubject: uscc\nmapping: [tax.yaml]\n", "mapping", "unknown key"},
	} {
		p := writeFile(t, dir, "bad-spec.yaml", tc.text)
		_, _, err := connectors.LoadDatasetSpec(p)
		var me *connectors.MappingError
		if !errors.As(err, &me) || me.Path != tc.path || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want path %q with %q", tc.text, err, tc.path, tc.want)
		}
	}
	// The same field from two sources, and the same source name twice.
	writeFile(t, dir, "dupfield.yaml", strings.Replace(baseMapping, "source: tax", "source: tax2", 1))
	writeFile(t, dir, "dupsource.yaml", other)
	for _, tc := range []struct{ list, want string }{
		{"[tax.yaml, dupfield.yaml]", `field "tax_arrears_history.arrears_amount_24m" of source "tax2" is also mapped by mappings[0]`},
		{"[deferral.yaml, dupsource.yaml]", `source name "deferral" is also used by mappings[0]`},
	} {
		p := writeFile(t, dir, "dup-spec.yaml", "dataset: zj\nclass: public\nsubject: uscc\nmappings: "+tc.list+"\n")
		if _, _, err := connectors.LoadDatasetSpec(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.list, err, tc.want)
		}
	}
}

func FuzzLoadMapping(f *testing.F) {
	for _, p := range []string{"testdata/tax.yaml", "testdata/quality.yaml", "../examples/public-taiwan/mapping.yaml",
		"../examples/public-give-me-some-credit/mapping.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(baseMapping))
	f.Add([]byte("source: &a x\nprovider: *a\n"))
	f.Add([]byte("columns: [{column: a, field: custom.a, scale: .inf}]\ncustom_fields: [{key: a, type: float, min: 2, max: 1}]"))
	cat := catalog.Default()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := connectors.ParseMapping(data, "fuzz.yaml", cat)
		if err != nil {
			var me *connectors.MappingError
			if !errors.As(err, &me) || me.File != "fuzz.yaml" || !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %v (%T) is not a *MappingError naming the file", err, err)
			}
			return
		}
		if _, err := m.Schema(cat); err != nil {
			t.Fatalf("a loaded mapping has no schema: %v", err)
		}
	})
}
