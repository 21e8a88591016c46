package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// badCases are the invalid files of testdata with the line, path and rule of their error.
var badCases = map[string]struct {
	line       int
	path, rule string
}{
	"bad-after-onehot.yaml":       {10, "fields[1].steps[1].scale", RuleSteps},
	"bad-alias.yaml":              {14, "model.family", RuleSyntax},
	"bad-catalog-key.yaml":        {7, "fields[1].key", RuleCatalog},
	"bad-clip-min.yaml":           {11, "fields[3].steps[0].clip.min", RuleSteps},
	"bad-date-no-age.yaml":        {10, "fields[2].steps[0].clip", RuleSteps},
	"bad-digest.yaml":             {15, "plugin", RuleDigest},
	"bad-duplicate-key.json":      {4, "bank", RuleDuplicate},
	"bad-epsilon-he.yaml":         {20, "epsilon", RuleMode},
	"bad-epsilon.json":            {13, "epsilon", RuleEpsilon},
	"bad-expiry.yaml":             {19, "expires", RuleExpiry},
	"bad-mode.yaml":               {13, "mode", RuleMode},
	"bad-not-feature.yaml":        {8, "fields[2].key", RuleNotFeature},
	"bad-personal.yaml":           {8, "fields[2].key", RulePersonal},
	"bad-purpose.yaml":            {3, "purpose", RulePurpose},
	"bad-scorecard-family.yaml":   {11, "outputs.scorecard", RuleOutputs},
	"bad-trees-leaves.yaml":       {14, "outputs.trees.max_leaves", RuleOutputs},
	"bad-too-many-weights.yaml":   {17, "outputs.weights.max_weights", RuleOutputs},
	"bad-two-docs.yaml":           {20, "", RuleSyntax},
	"bad-two-ops.json":            {6, "fields[0].steps[0]", RuleSteps},
	"bad-unbounded.yaml":          {11, "fields[3].steps", RuleUnbounded},
	"bad-unknown-field.yaml":      {11, "fields[3].steps[0].clip.minimum", RuleUnknownField},
	"bad-version-number.yaml":     {4, "dataset.version", RuleType},
	"bad-wrong-type.json":         {10, "outputs.weights.max_weights", RuleType},
	"bad-labels-both.yaml":        {16, "label_column", RuleLabels},
	"bad-label-column-field.yaml": {15, "label_column", RuleLabels},
	"bad-custom-no-steps.yaml":    {8, "fields[1].steps", RuleSteps},
	"bad-custom-unbounded.yaml":   {8, "fields[0].steps", RuleUnbounded},
	"bad-custom-key.json":         {6, "fields[0].key", RuleCatalog},
}

func testFiles(t testing.TB) []string {
	var files []string
	for _, pat := range []string{"testdata/*.yaml", "testdata/*.json"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("only %d test files", len(files))
	}
	return files
}

func TestTestdata(t *testing.T) {
	seen := 0
	for _, f := range testFiles(t) {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(data, name)
			if strings.HasPrefix(name, "good-") {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if _, err := Parse(m.Canonical(), "canonical"); err != nil {
					t.Fatalf("canonical form does not parse: %v", err)
				}
				return
			}
			want, ok := badCases[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			seen++
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, want an *Error wrapping ErrInvalid", err)
			}
			if e.File != name || e.Line != want.line || e.Path != want.path || e.Rule != want.rule {
				t.Errorf("got file %q line %d path %q rule %q, want %q %d %q %q (%v)", e.File, e.Line, e.Path, e.Rule, name, want.line, want.path, want.rule, err)
			}
			if !strings.Contains(err.Error(), name) || e.Message == "" {
				t.Errorf("message %q lacks the file or a description", err)
			}
		})
	}
	if seen != len(badCases) {
		t.Errorf("%d bad files checked, %d expected", seen, len(badCases))
	}
}

func mustParse(t testing.TB, file string) *Manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data, file)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseValues(t *testing.T) {
	m := mustParse(t, "good-he.yaml")
	if m.Bank != "bank-a" || m.Purpose != "credit_approval" || m.Mode != sdk.ModeHE || m.Dataset.Version != "2025-06" {
		t.Errorf("header: %+v", m)
	}
	if m.Expires != "2030-12-31T15:59:59Z" {
		t.Errorf("expires %q, want UTC", m.Expires)
	}
	if got := m.Outputs.Metrics.Names; strings.Join(got, ",") != "auc,ks" {
		t.Errorf("metrics %v, want sorted", got)
	}
	if r := m.Outputs.Scores.Range; len(r) != 2 || r[0] != 0 || r[1] != 1 {
		t.Errorf("scores range %v, want the default [0 1]", r)
	}
	if m.Model.Hyperparameters["iterations"] != 20.0 || m.Model.Hyperparameters["l2"] != 0.01 {
		t.Errorf("hyperparameters %v", m.Model.Hyperparameters)
	}
	// Field 2 (tax_credit_grade) takes the enum default: one-hot over the catalog's grades.
	st := m.Fields[2].Steps
	if len(st) != 2 || st[1].OneHot == nil || strings.Join(st[1].OneHot.Categories, ",") != "A,B,M,C,D" || st[1].OneHot.Unknown != features.UnknownOther {
		t.Errorf("enum default steps %+v", st)
	}
	// Field 1's minmax scale gets its default range spelled out.
	if r := m.Fields[1].Steps[3].Scale.Range; len(r) != 2 || r[0] != 0 || r[1] != 1 {
		t.Errorf("minmax range %v", r)
	}
	if !m.Fields[4].Personal {
		t.Error("personal mark lost")
	}
	spec := m.Spec()
	if len(spec.Columns) != 5 || spec.Columns[1].Name != "years_since_arrears" || spec.Columns[0].Column != "tax_arrears_history.arrears_amount_24m" {
		t.Errorf("spec %+v", spec)
	}
	if err := spec.Validate(); err != nil {
		t.Error(err)
	}
	a := mustParse(t, "good-aggregate.json")
	if a.Plugin != strings.ToLower(a.Plugin) || a.Epsilon == nil || *a.Epsilon != 1.5 {
		t.Errorf("aggregate: plugin %q epsilon %v", a.Plugin, a.Epsilon)
	}
	p := mustParse(t, "good-plaintext-public.yaml")
	if p.Mode != sdk.ModePlaintextPublic || p.Labels != "" {
		t.Errorf("plaintext: mode %q labels %q", p.Mode, p.Labels)
	}
}

// The defaults are bounded, so that a field named without steps is accepted in he mode, and each
// steps list applies to its column kind (checked by fitting on a few values).
func TestDefaultStepsFit(t *testing.T) {
	cases := []struct {
		key string
		col features.Column
	}{
		{"tax_arrears_history.arrears_amount_24m", features.NumericColumn("x", []float64{1, 5, 9, 100}, []bool{false, true, false, false})},
		{"tax_arrears_history.arrears_outstanding", features.NumericColumn("x", []float64{0, 1, 1, 0}, nil)},
		{"tax_arrears_history.latest_arrears_date", features.DateColumn("x", []int32{18000, 19000, 19500, 20000}, nil)},
		{"tax_arrears_history.tax_credit_grade", features.CategoricalColumn("x", []string{"A", "B", "Z", "A"}, []bool{false, false, false, true})},
	}
	for _, c := range cases {
		item, field, _ := strings.Cut(c.key, ".")
		_, cf, err := catalogDefault().Field(item, field)
		if err != nil {
			t.Fatal(err)
		}
		steps, err := DefaultSteps(cf)
		if err != nil {
			t.Fatal(err)
		}
		f := Field{Key: c.key, Steps: steps}
		if err := checkSteps(&f, cf, "fields[0]", true); err != nil {
			t.Errorf("%s: default steps refused in he mode: %v", c.key, err)
		}
		col := c.col
		col.Name = c.key
		fit, err := features.Fit(features.Spec{Columns: []features.ColumnSpec{f.ColumnSpec()}}, []features.Column{col})
		if err != nil {
			t.Fatalf("%s: fit: %v", c.key, err)
		}
		if err := fit.RequireBounded(-4, 4); err != nil {
			t.Errorf("%s: %v", c.key, err)
		}
	}
	_, cf, _ := catalogDefault().Field("legal_representative", "uscc")
	if _, err := DefaultSteps(cf); !errors.Is(err, ErrNoDefault) {
		t.Errorf("identifier default: %v", err)
	}
}

const heYAML = `format: insitu-job-manifest-v1
bank: bank-a
purpose: pre_screening
dataset: {name: sme-credit, version: "7"}
fields:
  - key: tax_arrears_history.arrears_count_24m
  - key: tax_arrears_history.tax_credit_grade
    name: grade
mode: he
model: {family: logistic_regression, hyperparameters: {l2: 0.5, iterations: 10, solver: {name: gd, momentum: [0.9, 0.99]}}}
plugin: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
outputs:
  weights: {max_weights: 16, max_abs: 100}
  metrics: {names: [ks, auc]}
labels: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
expires: 2030-12-31T23:59:59+08:00
`

// The same manifest as JSON, keys reordered, numbers and time spelled otherwise, defaults written out.
const heJSON = `{"expires": "2030-12-31T15:59:59.000Z", "labels": "sha256:2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE",
 "outputs": {"metrics": {"names": ["auc", "ks"]}, "weights": {"max_abs": 1.0e2, "max_weights": 16}},
 "plugin": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
 "model": {"hyperparameters": {"solver": {"momentum": [0.90, 9.9e-1], "name": "gd"}, "iterations": 10.0, "l2": 5e-1}, "family": "logistic_regression"},
 "mode": "he",
 "fields": [
   {"steps": [{"impute": {"strategy": "median"}}, {"clip": {"upper_quantile": 0.99, "lower_quantile": 0.01}}, {"scale": {"method": "standard"}}, {"clip": {"max": 4e0, "min": -4}}],
    "key": "tax_arrears_history.arrears_count_24m", "name": "tax_arrears_history.arrears_count_24m", "personal": false},
   {"key": "tax_arrears_history.tax_credit_grade", "name": "grade",
    "steps": [{"impute": {"strategy": "most_frequent"}}, {"onehot": {"categories": ["A", "B", "M", "C", "D"]}}]}
 ],
 "dataset": {"version": "7", "name": "sme-credit"}, "purpose_detail": "", "purpose": "pre_screening", "bank": "bank-a",
 "format": "insitu-job-manifest-v1", "epsilon": null}`

func TestCanonicalSameManifest(t *testing.T) {
	a, err := Parse([]byte(heYAML), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(heJSON), "b.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Canonical(), b.Canonical()) {
		t.Fatalf("canonical differs:\n%s\n%s", a.Canonical(), b.Canonical())
	}
	if a.Hash() != b.Hash() || !strings.HasPrefix(a.HashString(), "sha256:") || len(a.HashString()) != 71 {
		t.Errorf("hash %s vs %s", a.HashString(), b.HashString())
	}
	c := a.Canonical()
	if bytes.ContainsAny(c, " \n\t") {
		t.Errorf("canonical has whitespace: %s", c)
	}
	var tree map[string]any
	if err := json.Unmarshal(c, &tree); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(c, []byte(`{"bank":"bank-a","dataset":{"name":"sme-credit","version":"7"},"expires":"2030-12-31T15:59:59Z",`)) {
		t.Errorf("canonical is not sorted and normalised: %s", c)
	}
	if !bytes.Contains(c, []byte(`"hyperparameters":{"iterations":10,"l2":0.5,"solver":{"momentum":[0.9,0.99],"name":"gd"}}`)) {
		t.Errorf("hyperparameters not canonical: %s", c)
	}
}

func TestCanonicalChanges(t *testing.T) {
	base, err := Parse([]byte(heYAML), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string][2]string{
		"bank":        {"bank: bank-a", "bank: bank-b"},
		"purpose":     {"purpose: pre_screening", "purpose: credit_approval"},
		"detail":      {"purpose: pre_screening", "purpose: pre_screening\npurpose_detail: x"},
		"version":     {`version: "7"`, `version: "8"`},
		"field order": {"  - key: tax_arrears_history.arrears_count_24m\n  - key: tax_arrears_history.tax_credit_grade\n    name: grade", "  - key: tax_arrears_history.tax_credit_grade\n    name: grade\n  - key: tax_arrears_history.arrears_count_24m"},
		"name":        {"name: grade", "name: grade2"},
		"steps":       {"  - key: tax_arrears_history.arrears_count_24m\n", "  - key: tax_arrears_history.arrears_count_24m\n    steps: [{clip: {min: 0, max: 50}}, {scale: {method: minmax}}]\n"},
		"hyper":       {"l2: 0.5", "l2: 0.25"},
		"hyper type":  {"iterations: 10", `iterations: "10"`},
		"plugin":      {"plugin: sha256:9f86", "plugin: sha256:0f86"},
		"labels":      {"labels: sha256:2c26", "labels: sha256:3c26"},
		"max weights": {"max_weights: 16", "max_weights: 17"},
		"max abs":     {"max_abs: 100", "max_abs: 100.5"},
		"metric":      {"names: [ks, auc]", "names: [ks, auc, log_loss]"},
		"scores":      {"  metrics:", "  scores: {}\n  metrics:"},
		"expiry":      {"23:59:59+08:00", "23:59:58+08:00"},
		"family":      {"family: logistic_regression", "family: scorecard"},
	}
	for name, ch := range changes {
		src := strings.Replace(heYAML, ch[0], ch[1], 1)
		if src == heYAML {
			t.Fatalf("%s: replacement did not apply", name)
		}
		m, err := Parse([]byte(src), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Hash() == base.Hash() {
			t.Errorf("%s: hash unchanged", name)
		}
	}
}

func TestNumbers(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"1e+3", "1000"}, {"0.000001", "0.000001"}, {"1e-7", "1e-7"}, {"-0.0", "0"}, {"1e21", "1e+21"},
		{"100000000000000000000", "100000000000000000000"}, {"0x10", "16"}, {"-3", "-3"},
	} {
		src := strings.Replace(heYAML, "l2: 0.5", "l2: "+c.in, 1)
		m, err := Parse([]byte(src), "n.yaml")
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if !bytes.Contains(m.Canonical(), []byte(`"l2":`+c.want+`,`)) {
			t.Errorf("%s: canonical %s, want l2 %s", c.in, m.Canonical(), c.want)
		}
	}
	for _, bad := range []string{".inf", ".nan", "9007199254740993"} {
		src := strings.Replace(heYAML, "l2: 0.5", "l2: "+bad, 1)
		_, err := Parse([]byte(src), "n.yaml")
		var e *Error
		if !errors.As(err, &e) || e.Path != "model.hyperparameters.l2" || e.Rule != RuleType {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestCheckSubmission(t *testing.T) {
	m, err := Parse([]byte(heYAML), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2030, 12, 31, 15, 59, 59, 0, time.UTC)
	if !m.ExpiresAt().Equal(exp) {
		t.Fatalf("ExpiresAt %v", m.ExpiresAt())
	}
	for _, c := range []struct {
		now time.Time
		ok  bool
	}{
		{exp.Add(-time.Hour), true},
		{exp.Add(-MaxValidity * 24 * time.Hour), true},
		{exp.Add(-MaxValidity*24*time.Hour - time.Second), false},
		{exp, false},
		{exp.Add(time.Hour), false},
	} {
		err := m.CheckSubmission(c.now)
		var e *Error
		if c.ok != (err == nil) || (err != nil && (!errors.As(err, &e) || e.Rule != RuleExpiry || e.Path != "expires")) {
			t.Errorf("now %v: %v", c.now, err)
		}
	}
}

func TestMoreRules(t *testing.T) {
	cases := []struct {
		name, old, new, path, rule string
	}{
		{"no format", "format: insitu-job-manifest-v1\n", "", "format", RuleRequired},
		{"format", "format: insitu-job-manifest-v1", "format: insitu-job-manifest-v2", "format", RuleFormat},
		{"bank name", "bank: bank-a", "bank: Bank A", "bank", RuleName},
		{"no fields", "fields:\n  - key: tax_arrears_history.arrears_count_24m\n  - key: tax_arrears_history.tax_credit_grade\n    name: grade\n", "fields: []\n", "fields", RuleRequired},
		{"dup field", "    name: grade\n", "    name: grade\n  - key: tax_arrears_history.tax_credit_grade\n", "fields[2].key", RuleDuplicate},
		{"dup name", "    name: grade\n", "    name: tax_arrears_history.arrears_count_24m\n", "fields[1].name", RuleDuplicate},
		{"personal mark", "    name: grade\n", "    name: grade\n    personal: true\n", "fields[1].personal", RulePersonal},
		{"no item dot", "tax_arrears_history.arrears_count_24m", "arrears_count_24m", "fields[0].key", RuleCatalog},
		{"family", "family: logistic_regression", "family: Logistic Regression", "model.family", RuleModel},
		{"hyper not object", "hyperparameters: {l2: 0.5, iterations: 10, solver: {name: gd, momentum: [0.9, 0.99]}}", "hyperparameters: [1]", "model.hyperparameters", RuleType},
		{"no labels in he", "labels: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\n", "", "labels", RuleRequired},
		{"no outputs", "outputs:\n  weights: {max_weights: 16, max_abs: 100}\n  metrics: {names: [ks, auc]}\n", "outputs: {}\n", "outputs", RuleOutputs},
		{"max abs", "max_abs: 100", "max_abs: 0", "outputs.weights.max_abs", RuleOutputs},
		{"metric dup", "names: [ks, auc]", "names: [ks, ks]", "outputs.metrics.names[1]", RuleDuplicate},
		{"scores range", "  metrics:", "  scores: {range: [1, 0]}\n  metrics:", "outputs.scores.range", RuleOutputs},
		{"no epsilon", "mode: he", "mode: aggregate", "epsilon", RuleRequired},
		{"quantile", "  - key: tax_arrears_history.arrears_count_24m\n", "  - key: tax_arrears_history.arrears_count_24m\n    steps: [{clip: {lower_quantile: 2}}]\n", "fields[0].steps[0].clip.lower_quantile", RuleSteps},
		{"enum no onehot", "    name: grade\n", "    name: grade\n    steps: [{impute: {strategy: most_frequent}}]\n", "fields[1].steps", RuleSteps},
		{"bad strategy", "  - key: tax_arrears_history.arrears_count_24m\n", "  - key: tax_arrears_history.arrears_count_24m\n    steps: [{impute: {strategy: guess}}]\n", "fields[0].steps[0].impute", RuleSteps},
		{"bool type", "    name: grade\n", "    name: grade\n    personal: yes\n", "fields[1].personal", RuleType},
		{"detail control", "purpose: pre_screening", "purpose: pre_screening\npurpose_detail: \"a\\x07b\"", "purpose_detail", RuleSize},
	}
	for _, c := range cases {
		src := strings.Replace(heYAML, c.old, c.new, 1)
		if src == heYAML {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		_, err := Parse([]byte(src), "x.yaml")
		var e *Error
		if !errors.As(err, &e) || e.Path != c.path || e.Rule != c.rule {
			t.Errorf("%s: got %v, want path %q rule %q", c.name, err, c.path, c.rule)
		}
	}
	if _, err := Parse(bytes.Repeat([]byte("#"), MaxSize+1), "big"); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversize: %v", err)
	}
	if _, err := Parse([]byte("  \n"), "empty"); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty: %v", err)
	}
}

// The example in the package documentation is a valid manifest.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var y strings.Builder
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "//\t") {
			y.WriteString(strings.TrimPrefix(l, "//\t") + "\n")
		}
	}
	m, err := Parse([]byte(y.String()), "doc.go")
	if err != nil {
		t.Fatalf("%v\n%s", err, y.String())
	}
	if len(m.Fields) != 4 || m.Mode != sdk.ModeHE {
		t.Errorf("parsed %d fields, mode %s", len(m.Fields), m.Mode)
	}
}

func TestModelOutputs(t *testing.T) {
	sc := mustParse(t, "good-aggregate-scorecard.yaml").Outputs.Scorecard
	if sc == nil || sc.MaxBins != 8 || sc.MaxAbs != 20 || sc.PDO != 40 || sc.BaseScore != 600 || sc.BaseOdds != 50 || sc.MaxPoints != DefaultMaxPoints {
		t.Errorf("scorecard output %+v: want max_bins 8, max_abs 20, pdo 40 and the defaults base_score 600, base_odds 50, max_points %v", sc, DefaultMaxPoints)
	}
	m := mustParse(t, "good-aggregate-gbdt.json")
	if tr := m.Outputs.Trees; tr == nil || tr.MaxTrees != 50 || tr.MaxDepth != 3 || tr.MaxLeaves != 8 || tr.MaxAbs != 4 {
		t.Errorf("trees output %+v: want 50 trees, depth 3, the default 8 leaves, max_abs 4", tr)
	}
	if !strings.Contains(string(m.Canonical()), `"trees":{"max_abs":4,"max_depth":3,"max_leaves":8,"max_trees":50}`) {
		t.Errorf("canonical form does not spell out the default leaves: %s", m.Canonical())
	}
	for _, c := range []struct{ yaml, path string }{
		{"trees: {max_trees: 0, max_depth: 3, max_abs: 4}", "outputs.trees.max_trees"},
		{"trees: {max_trees: 5, max_depth: 17, max_abs: 4}", "outputs.trees.max_depth"},
		{"trees: {max_trees: 5, max_depth: 3, max_abs: 0}", "outputs.trees.max_abs"},
		{"scorecard: {max_bins: 300, max_abs: 4}", "outputs.scorecard.max_bins"},
		{"scorecard: {max_bins: 8, max_abs: -1}", "outputs.scorecard.max_abs"},
		{"scorecard: {max_bins: 8, max_abs: 4, pdo: -20}", "outputs.scorecard.pdo"},
	} {
		data, _ := os.ReadFile("testdata/good-aggregate-scorecard.yaml")
		src := strings.Replace(string(data), "scorecard: {max_bins: 8, max_abs: 20, pdo: 40}", c.yaml, 1)
		_, err := Parse([]byte(src), "x.yaml")
		var e *Error
		if !errors.As(err, &e) || e.Path != c.path || e.Rule != RuleOutputs {
			t.Errorf("%s: got %v, want an error at %s", c.yaml, err, c.path)
		}
	}
}
