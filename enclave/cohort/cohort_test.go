package cohort

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
	"insitu/modeling/features"
)

func TestSplitStable(t *testing.T) {
	ids := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19"}
	train, test := Split(ids, 5)
	// Pinned: the assignment is SHA-256 based and must not change between releases, machines or runs,
	// or a model's test figures would silently move.
	wantTest := []int{1, 3, 8, 10, 13, 17}
	if !slices.Equal(test, wantTest) {
		t.Errorf("test rows = %v, want %v", test, wantTest)
	}
	if len(train)+len(test) != len(ids) {
		t.Errorf("train %d + test %d rows, want %d", len(train), len(test), len(ids))
	}
	all := append(slices.Clone(train), test...)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("train and test do not partition the rows: %v %v", train, test)
		}
	}
}

func TestSplitShareAndOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = ident.NewUSCC(rng, "330100")
	}
	train, test := Split(ids, 5)
	share := float64(len(test)) / float64(len(ids))
	// Binomial(10000, 0.2) has a standard deviation of 0.4 %; the band is five of them.
	if share < 0.18 || share > 0.22 {
		t.Errorf("test share %.4f, want 0.20 ± 0.02", share)
	}
	if len(train)+len(test) != len(ids) {
		t.Fatalf("rows lost: %d + %d", len(train), len(test))
	}
	testSet := map[string]bool{}
	for _, i := range test {
		testSet[ids[i]] = true
	}
	// Same call, same answer.
	_, again := Split(ids, 5)
	if !slices.Equal(test, again) {
		t.Error("Split is not deterministic")
	}
	// Another order: the same subjects are in the test set.
	shuffled := slices.Clone(ids)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	_, test2 := Split(shuffled, 5)
	if len(test2) != len(test) {
		t.Fatalf("shuffled: %d test rows, want %d", len(test2), len(test))
	}
	for _, i := range test2 {
		if !testSet[shuffled[i]] {
			t.Fatalf("subject %s is in the test set only in the shuffled order", shuffled[i])
		}
	}
	// A subset keeps each subject's side.
	_, test3 := Split(ids[:500], 5)
	for _, i := range test3 {
		if !testSet[ids[i]] {
			t.Fatalf("subject %s changed side in a subset", ids[i])
		}
	}
	// Ten folds put about 10 % in the test set.
	_, test10 := Split(ids, 10)
	if s := float64(len(test10)) / float64(len(ids)); s < 0.085 || s > 0.115 {
		t.Errorf("10 folds: test share %.4f", s)
	}
}

func TestSplitPanicsOnOneFold(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Split with 1 fold did not panic")
		}
	}()
	Split([]string{"a"}, 1)
}

func TestDefaultSpec(t *testing.T) {
	asOf := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	tbl := &Table{Columns: []features.Column{
		features.NumericColumn("num_full", []float64{1, 2, 3, 4}, []bool{false, false, false, false}),
		features.NumericColumn("num_gaps", []float64{1, 0, 3, 4}, []bool{false, true, false, false}),
		features.NumericColumn("num_const", []float64{7, 7, 7, 7}, []bool{false, false, false, false}),
		features.NumericColumn("num_const_gaps", []float64{7, 0, 7, 0}, []bool{false, true, false, true}),
		features.NumericColumn("num_empty", []float64{0, 0, 0, 0}, []bool{true, true, true, true}),
		features.DateColumn("date_full", []int32{19000, 19100, 19200, 19300}, []bool{false, false, false, false}),
		features.DateColumn("date_gaps", []int32{19000, 0, 19200, 19300}, []bool{false, true, false, false}),
		features.DateColumn("date_const", []int32{19000, 19000, 19000, 19000}, []bool{false, false, false, false}),
		features.CategoricalColumn("cat", []string{"A", "B", "A", "C"}, []bool{false, false, false, false}),
		features.CategoricalColumn("cat_gaps", []string{"A", "", "B", "A"}, []bool{false, true, false, false}),
		features.CategoricalColumn("cat_const", []string{"A", "A", "A", "A"}, []bool{false, false, false, false}),
	}}
	spec := DefaultSpec(tbl, asOf)
	var got []string
	for _, c := range spec.Columns {
		got = append(got, c.Column+":"+stepOps(c.Steps))
	}
	want := []string{
		"num_full:impute(median),clip(0.005,0.995),scale(standard)",
		"num_gaps:impute(median,indicator),clip(0.005,0.995),scale(standard)",
		"date_full:age(2026-06-30),impute(median),clip(0.005,0.995),scale(standard)",
		"date_gaps:age(2026-06-30),impute(median,indicator),clip(0.005,0.995),scale(standard)",
		"cat:impute(most_frequent),onehot(12)",
		"cat_gaps:impute(most_frequent),onehot(12)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultSpec =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if err := spec.Validate(); err != nil {
		t.Errorf("the proposed spec is invalid: %v", err)
	}
	// The spec fits and transforms the table it was proposed for.
	fitted, err := features.Fit(spec, tbl.Columns)
	if err != nil {
		t.Fatal(err)
	}
	x, names, err := fitted.Transform(tbl.Columns)
	if err != nil {
		t.Fatal(err)
	}
	if r, c := x.Dims(); r != 4 || c != len(names) {
		t.Errorf("transform: %d×%d with %d names", r, c, len(names))
	}
	for _, n := range names {
		if strings.Contains(n, "const") || strings.Contains(n, "empty") {
			t.Errorf("output %s comes from a constant column", n)
		}
	}
}

// TestDefaultSpecMissingForms checks DefaultSpec with the other forms of missing values that
// features.Column allows: a nil Missing (nothing missing) and NaN in a numeric column.
func TestDefaultSpecMissingForms(t *testing.T) {
	asOf := time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)
	tbl := &Table{Columns: []features.Column{
		features.NumericColumn("nil_mask", []float64{1, 2, 3}, nil),
		features.NumericColumn("nil_mask_const", []float64{5, 5, 5}, nil),
		features.NumericColumn("nan", []float64{1, math.NaN(), 3}, nil),
		features.NumericColumn("nan_const", []float64{math.NaN(), 4, 4}, []bool{false, false, false}),
		features.DateColumn("date_nil_mask", []int32{19000, 19001, 19002}, nil),
		features.CategoricalColumn("cat_nil_mask", []string{"x", "y", "x"}, nil),
	}}
	var got []string
	for _, c := range DefaultSpec(tbl, asOf).Columns {
		got = append(got, c.Column+":"+stepOps(c.Steps))
	}
	want := []string{
		"nil_mask:impute(median),clip(0.005,0.995),scale(standard)",
		"nan:impute(median,indicator),clip(0.005,0.995),scale(standard)",
		"date_nil_mask:age(2026-06-30),impute(median),clip(0.005,0.995),scale(standard)",
		"cat_nil_mask:impute(most_frequent),onehot(12)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultSpec =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func stepOps(steps []features.Step) string {
	var ops []string
	for _, s := range steps {
		switch {
		case s.Age != nil:
			ops = append(ops, "age("+s.Age.Reference+")")
		case s.Impute != nil:
			o := "impute(" + string(s.Impute.Strategy)
			if s.Impute.Indicator {
				o += ",indicator"
			}
			ops = append(ops, o+")")
		case s.Clip != nil:
			ops = append(ops, "clip("+fmtPtr(s.Clip.LowerQuantile)+","+fmtPtr(s.Clip.UpperQuantile)+")")
		case s.Scale != nil:
			ops = append(ops, "scale("+string(s.Scale.Method)+")")
		case s.OneHot != nil:
			ops = append(ops, "onehot("+strconv.Itoa(s.OneHot.MaxCategories)+")")
		default:
			ops = append(ops, "?")
		}
	}
	return strings.Join(ops, ",")
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

func TestFeatureColumns(t *testing.T) {
	m := &dataset.Manifest{Columns: []dataset.Column{
		{Name: "subject_id", CatalogType: "id", Role: "identifier"},
		{Name: "a.int", CatalogType: "int", Role: "feature", Sensitivity: 2},
		{Name: "a.float", CatalogType: "float", Role: "feature", Sensitivity: 1},
		{Name: "a.bool", CatalogType: "bool", Role: "feature", Sensitivity: 2},
		{Name: "a.date", CatalogType: "date", Role: "feature", Sensitivity: 2},
		{Name: "a.enum", CatalogType: "enum", Role: "feature", Sensitivity: 2},
		{Name: "a.norole", CatalogType: "int", Sensitivity: 2},
		{Name: "a.personal", CatalogType: "enum", Role: "feature", Sensitivity: 3},
		{Name: "a.id", CatalogType: "id", Role: "identifier", Sensitivity: 3},
		{Name: "a.text", CatalogType: "string", Role: "descriptive", Sensitivity: 1},
		{Name: "a.enumdesc", CatalogType: "enum", Role: "descriptive", Sensitivity: 1},
		{Name: "a.string_feature", CatalogType: "string", Role: "feature", Sensitivity: 1},
	}}
	var got []string
	for _, c := range FeatureColumns(m) {
		got = append(got, c.Name)
	}
	want := []string{"a.int", "a.float", "a.bool", "a.date", "a.enum", "a.norole"}
	if !slices.Equal(got, want) {
		t.Errorf("FeatureColumns = %v, want %v", got, want)
	}
}

// Credit codes of the Collect fixture: subjects A to F.
const (
	subjA = "913301069AGJA1NDUY"
	subjB = "91330106D42PLU3NJ1"
	subjC = "913301060BMP3DQHHP"
	subjD = "913301061774FTGM26"
	subjE = "91330106FJ20E8E20K"
	subjF = "91330106YK2GK0MKYC"
)

// collectFixture ingests a two-source dataset through the real pipeline: tax holds A, B, C and D,
// water holds B, C and E.
func collectFixture(t *testing.T) (*dataset.Store, *dataset.Manifest) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"tax.csv": "uscc,arrears_count,arrears_amount,latest_arrears,outstanding,grade,company\n" +
			subjA + ",2,1500.5,2024-03-01,true,B,Alpha\n" +
			subjB + ",0,0,,false,A,Beta\n" +
			subjC + ",5,NA,2023-11-30,true,D,Gamma\n" +
			subjD + ",1,10,2022-01-15,false,M,Delta\n",
		"water.csv": "uscc,late_payments,arrears,opened,address\n" +
			subjB + ",3,120.25,2015-06-01,Road 1\n" +
			strings.ToLower(subjC) + ",0,,2019-09-09,Road 2\n" +
			subjE + ",7,880,2010-01-01,Road 3\n",
		"tax.yaml": `source: tax
provider: tax_bureau
format: csv
path: tax.csv
subject: {column: uscc, kind: uscc}
columns:
  - {column: arrears_count, field: tax_arrears_history.arrears_count_24m}
  - {column: arrears_amount, field: tax_arrears_history.arrears_amount_24m}
  - {column: latest_arrears, field: tax_arrears_history.latest_arrears_date}
  - {column: outstanding, field: tax_arrears_history.arrears_outstanding}
  - {column: grade, field: tax_arrears_history.tax_credit_grade}
  - {column: company, field: custom.company_name}
custom_fields:
  - {key: company_name, type: string, sensitivity: 1}
`,
		"water.yaml": `source: water
provider: water_utility
format: csv
path: water.csv
subject: {column: uscc, kind: uscc}
columns:
  - {column: late_payments, field: water.late_payments_12m}
  - {column: arrears, field: water.arrears_amount}
  - {column: opened, field: water.account_open_date}
  - {column: address, field: water.address}
`,
		"dataset.yaml": "dataset: joined\nclass: platform\nsubject: uscc\nmappings: [tax.yaml, water.yaml]\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	keyFile := filepath.Join(dir, "master.key")
	if _, err := datadir.Init(filepath.Join(dir, "dd"), keyFile); err != nil {
		t.Fatal(err)
	}
	dd, err := datadir.Open(filepath.Join(dir, "dd"), keys.Source{File: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	store, err := dataset.Open(dd)
	if err != nil {
		t.Fatal(err)
	}
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(dir, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := store.Ingest(context.Background(), spec, mappings, dataset.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return store, m
}

func TestCollect(t *testing.T) {
	ctx := context.Background()
	store, m := collectFixture(t)
	if m.Subjects != 5 {
		t.Fatalf("dataset has %d subjects, want 5", m.Subjects)
	}
	cols := FeatureColumns(m)
	var names []string
	for _, c := range cols {
		names = append(names, c.Name)
	}
	wantNames := []string{
		"tax_arrears_history.arrears_count_24m", "tax_arrears_history.arrears_amount_24m",
		"tax_arrears_history.latest_arrears_date", "tax_arrears_history.arrears_outstanding",
		"tax_arrears_history.tax_credit_grade",
		"water.late_payments_12m", "water.arrears_amount", "water.account_open_date",
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("FeatureColumns = %v, want %v", names, wantNames)
	}
	labels, err := ParseLabels(strings.NewReader("uscc,label\n"+
		subjA+",1\n"+subjB+",0\n"+subjC+",1\n"+subjE+",0\n"+subjF+",1\n"), "labels.csv")
	if err != nil {
		t.Fatal(err)
	}
	// A small batch size makes Collect join across several records.
	sc, err := store.Scan(ctx, m.Name, m.Version, dataset.ScanOptions{Columns: names, BatchRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Collect(ctx, sc, cols, labels)
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if tbl.Unmatched != 1 {
		t.Errorf("Unmatched = %d, want 1 (F is labelled but not in the dataset)", tbl.Unmatched)
	}
	wantKinds := []features.Kind{features.Numeric, features.Numeric, features.Date, features.Numeric, features.Categorical,
		features.Numeric, features.Numeric, features.Date}
	for k, c := range tbl.Columns {
		if c.Name != wantNames[k] || c.Kind != wantKinds[k] || len(c.Missing) != len(tbl.Subjects) {
			t.Errorf("column %d: %s %v with %d missing flags", k, c.Name, c.Kind, len(c.Missing))
		}
	}
	day := func(s string) int32 {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return features.DayNumber(d)
	}
	// nil is a missing value.
	want := map[string]struct {
		label float64
		cells []any
	}{
		subjA: {1, []any{2.0, 1500.5, day("2024-03-01"), 1.0, "B", nil, nil, nil}},
		subjB: {0, []any{0.0, 0.0, nil, 0.0, "A", 3.0, 120.25, day("2015-06-01")}},
		subjC: {1, []any{5.0, nil, day("2023-11-30"), 1.0, "D", 0.0, nil, day("2019-09-09")}},
		subjE: {0, []any{nil, nil, nil, nil, nil, 7.0, 880.0, day("2010-01-01")}},
	}
	if len(tbl.Subjects) != len(want) || len(tbl.Label) != len(want) {
		t.Fatalf("cohort subjects %v, want A, B, C and E", tbl.Subjects)
	}
	// Rows come in the order subjects first appear in the parts: tax first, then water.
	if !slices.Equal(tbl.Subjects, []string{subjA, subjB, subjC, subjE}) {
		t.Errorf("subject order %v", tbl.Subjects)
	}
	for i, s := range tbl.Subjects {
		w, ok := want[s]
		if !ok {
			t.Errorf("row %d: unexpected subject %s", i, s)
			continue
		}
		if tbl.Label[i] != w.label {
			t.Errorf("%s: label %v, want %v", s, tbl.Label[i], w.label)
		}
		for k, c := range tbl.Columns {
			if got, wantCell := cell(c, i), w.cells[k]; got != wantCell {
				t.Errorf("%s %s = %v (%T), want %v (%T)", s, c.Name, got, got, wantCell, wantCell)
			}
		}
	}

	// Rows selects and reorders rows of every column and the labels.
	rc, y := tbl.Rows([]int{3, 0})
	if !slices.Equal(y, []float64{0, 1}) {
		t.Errorf("Rows labels %v", y)
	}
	for k, c := range rc {
		if c.Name != tbl.Columns[k].Name || c.Kind != tbl.Columns[k].Kind {
			t.Errorf("Rows column %d: %s %v", k, c.Name, c.Kind)
		}
		for j, i := range []int{3, 0} {
			if got, w := cell(c, j), cell(tbl.Columns[k], i); got != w {
				t.Errorf("Rows column %s row %d = %v, want %v", c.Name, j, got, w)
			}
		}
	}
}

// cell returns row i of c as float64, int32 (days) or string, or nil when missing.
func cell(c features.Column, i int) any {
	if c.Missing[i] {
		return nil
	}
	switch c.Kind {
	case features.Date:
		return c.Days[i]
	case features.Categorical:
		return c.Strings[i]
	default:
		if math.IsNaN(c.Values[i]) {
			return "NaN"
		}
		return c.Values[i]
	}
}

func TestCollectUnknownColumn(t *testing.T) {
	ctx := context.Background()
	store, m := collectFixture(t)
	labels, err := ParseLabels(strings.NewReader("uscc,label\n"+subjA+",1\n"), "labels.csv")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := store.Scan(ctx, m.Name, m.Version, dataset.ScanOptions{Columns: []string{"water.late_payments_12m"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	cols := []dataset.Column{{Name: "tax_arrears_history.arrears_count_24m", CatalogType: "int"}}
	if _, err := Collect(ctx, sc, cols, labels); err == nil || !strings.Contains(err.Error(), "not in the scanned records") {
		t.Errorf("Collect of a column the scan left out: err = %v", err)
	}
}
