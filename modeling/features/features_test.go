package features

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

var nan = math.NaN()

func mustFit(t *testing.T, spec Spec, cols ...Column) *Fitted {
	t.Helper()
	f, err := Fit(spec, cols)
	if err != nil {
		t.Fatalf("Fit: %v", err)
	}
	return f
}

func mustTransform(t *testing.T, f *Fitted, cols ...Column) (*mat.Dense, []string) {
	t.Helper()
	X, names, err := f.Transform(cols)
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	return X, names
}

func colOf(X *mat.Dense, j int) []float64 { return mat.Col(nil, j, X) }

func approx(a, b []float64) bool { return floats.EqualApprox(a, b, 1e-12) }

// Impute the median (3) with an indicator, clip at the learned 0.75-quantile (4), min-max to [−1, 1].
func TestNumericPipeline(t *testing.T) {
	spec := Spec{Columns: []ColumnSpec{{Column: "x", Steps: []Step{
		{Impute: &Impute{Strategy: ImputeMedian, Indicator: true}},
		{Clip: &Clip{UpperQuantile: ptr(0.75)}},
		{Scale: &Scale{Method: ScaleMinMax, Range: []float64{-1, 1}}},
	}}}}
	f := mustFit(t, spec, NumericColumn("x", []float64{1, 2, nan, 4, 100}, nil))
	X, names := mustTransform(t, f, NumericColumn("x", []float64{1, 2, nan, 4, 100}, nil))
	if !slices.Equal(names, []string{"x", "x_missing"}) {
		t.Fatalf("names = %v", names)
	}
	if got := colOf(X, 0); !approx(got, []float64{-1, -1.0 / 3, 1.0 / 3, 1, 1}) {
		t.Errorf("x = %v", got)
	}
	if got := colOf(X, 1); !slices.Equal(got, []float64{0, 0, 1, 0, 0}) {
		t.Errorf("x_missing = %v", got)
	}
	st := f.Columns[0].Steps
	if *st[0].Impute.Value != 3 || *st[1].Clip.Max != 4 || st[1].Clip.Min != nil || st[2].Scale.Min != 1 || st[2].Scale.Max != 4 {
		t.Errorf("learned %+v %+v %+v", st[0].Impute, st[1].Clip, st[2].Scale)
	}
	// New data outside the training range saturates; the missing value takes the training median.
	X, _ = mustTransform(t, f, NumericColumn("x", []float64{0, 10, 3}, []bool{false, false, true}))
	if got := colOf(X, 0); !approx(got, []float64{-1, 1, 1.0 / 3}) {
		t.Errorf("new rows = %v", got)
	}
}

func TestStandardAndMean(t *testing.T) {
	spec := Spec{Columns: []ColumnSpec{
		{Column: "a", Steps: []Step{{Scale: &Scale{Method: ScaleStandard}}}},
		{Column: "b", Steps: []Step{{Impute: &Impute{Strategy: ImputeMean}}, {Scale: &Scale{Method: ScaleStandard}}}},
		{Column: "c", Steps: []Step{{Scale: &Scale{Method: ScaleStandard}}, {Scale: &Scale{Method: ScaleMinMax}}}},
	}}
	a := NumericColumn("a", []float64{1, 2, 3, 4}, nil)
	b := NumericColumn("b", []float64{2, 0, 4, 7}, []bool{false, false, false, true}) // mean 2
	c := NumericColumn("c", []float64{5, 5, 5, 5}, nil)                               // constant: std 1, minmax → 0
	f := mustFit(t, spec, a, b, c)
	X, _ := mustTransform(t, f, c, b, a) // column order of the input does not matter
	sd := math.Sqrt(1.25)
	if got := colOf(X, 0); !approx(got, []float64{-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd}) {
		t.Errorf("a = %v", got)
	}
	sdb := math.Sqrt((0 + 4 + 4 + 0) / 4.0) // after imputing 2: values 2, 0, 4, 2
	if got := colOf(X, 1); !approx(got, []float64{0, -2 / sdb, 2 / sdb, 0}) {
		t.Errorf("b = %v", got)
	}
	if got := colOf(X, 2); !slices.Equal(got, []float64{0, 0, 0, 0}) || f.Columns[2].Steps[0].Scale.Std != 1 {
		t.Errorf("constant c = %v (std %v)", got, f.Columns[2].Steps[0].Scale.Std)
	}
}

func TestOneHot(t *testing.T) {
	train := CategoricalColumn("cat", []string{"b", "a", "c", "a", "b", "a", "d"}, nil)
	spec := Spec{Columns: []ColumnSpec{{Column: "cat", Steps: []Step{{OneHot: &OneHot{MaxCategories: 2}}}}}}
	f := mustFit(t, spec, train)
	X, names := mustTransform(t, f, CategoricalColumn("cat", []string{"a", "b", "c", "zzz"}, nil))
	if !slices.Equal(names, []string{"cat=a", "cat=b", "cat=__other__"}) {
		t.Fatalf("names = %v", names)
	}
	want := mat.NewDense(4, 3, []float64{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1})
	if !mat.Equal(X, want) {
		t.Errorf("X = %v", mat.Formatted(X))
	}

	spec.Columns[0].Steps[0].OneHot = &OneHot{Unknown: UnknownIgnore}
	f = mustFit(t, spec, train)
	X, names = mustTransform(t, f, CategoricalColumn("cat", []string{"d", "e"}, nil))
	if !slices.Equal(names, []string{"cat=a", "cat=b", "cat=c", "cat=d"}) || !mat.Equal(X, mat.NewDense(2, 4, []float64{0, 0, 0, 1, 0, 0, 0, 0})) {
		t.Errorf("ignore: %v %v", names, mat.Formatted(X))
	}

	spec.Columns[0].Steps[0].OneHot = &OneHot{Categories: []string{"z", "a"}, Unknown: UnknownError}
	var fe *Error
	if _, err := Fit(spec, []Column{train}); !errors.Is(err, ErrUnknownCategory) || !errors.As(err, &fe) || fe.Row != 1 {
		t.Errorf("training value outside the given categories: %v", err)
	}
	f = mustFit(t, spec, CategoricalColumn("cat", []string{"a", "a"}, nil))
	_, _, err := f.Transform([]Column{CategoricalColumn("cat", []string{"a", "z", "q"}, nil)})
	if !errors.Is(err, ErrUnknownCategory) || !errors.As(err, &fe) || fe.Row != 3 || fe.Step != 1 || !strings.Contains(err.Error(), `"q"`) {
		t.Errorf("unknown category: %v", err)
	}
	if names := f.Names(); !slices.Equal(names, []string{"cat=z", "cat=a"}) {
		t.Errorf("given categories: names %v", names)
	}

	// A numeric column of codes.
	spec = Spec{Columns: []ColumnSpec{{Column: "edu", Steps: []Step{{OneHot: &OneHot{Unknown: UnknownIgnore}}}}}}
	f = mustFit(t, spec, NumericColumn("edu", []float64{1, 2, 2, 3.5}, nil))
	if names := f.Names(); !slices.Equal(names, []string{"edu=1", "edu=2", "edu=3.5"}) {
		t.Errorf("codes: names %v", names)
	}
}

func TestCategoricalImpute(t *testing.T) {
	c := CategoricalColumn("c", []string{"x", "", "y", "x"}, []bool{false, true, false, false})
	for _, tc := range []struct {
		imp  Impute
		want []float64 // column c=x
	}{
		{Impute{Strategy: ImputeMostFrequent}, []float64{1, 1, 0, 1}},
		{Impute{Strategy: ImputeConstant, Category: ptr("y")}, []float64{1, 0, 0, 1}},
	} {
		f := mustFit(t, Spec{Columns: []ColumnSpec{{Column: "c", Steps: []Step{{Impute: &tc.imp}, {OneHot: &OneHot{Unknown: UnknownIgnore}}}}}}, c)
		X, _ := mustTransform(t, f, c)
		if got := colOf(X, 0); !slices.Equal(got, tc.want) {
			t.Errorf("%s: c=x = %v; want %v", tc.imp.Strategy, got, tc.want)
		}
	}
}

func TestAge(t *testing.T) {
	d := func(s string) int32 {
		v, err := ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if d("1970-01-02") != 1 || d("1969-12-31") != -1 {
		t.Fatalf("ParseDate is not days since 1970-01-01")
	}
	dates := DateColumn("founded", []int32{d("2020-06-30"), d("2024-07-10"), d("2024-06-30"), 0}, []bool{false, false, false, true})
	for _, tc := range []struct {
		unit AgeUnit
		want []float64
	}{
		// The missing date takes the median age, 0.
		{AgeDays, []float64{1461, -10, 0, 0}},
		{AgeYears, []float64{4, -10 / 365.25, 0, 0}},
	} {
		spec := Spec{Columns: []ColumnSpec{{Column: "founded", Name: "age", Steps: []Step{
			{Age: &Age{Reference: "2024-06-30", Unit: tc.unit}},
			{Impute: &Impute{Strategy: ImputeMedian}},
		}}}}
		f := mustFit(t, spec, dates)
		X, names := mustTransform(t, f, dates)
		if got := colOf(X, 0); names[0] != "age" || !approx(got, tc.want) {
			t.Errorf("%s: %v = %v; want %v", tc.unit, names, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	num := NumericColumn("x", []float64{1, nan, 3}, nil)
	cat := CategoricalColumn("c", []string{"a", "b", "a"}, nil)
	date := DateColumn("d", []int32{1, 2, 3}, nil)
	scale := Step{Scale: &Scale{Method: ScaleStandard}}
	cases := []struct {
		name string
		spec []ColumnSpec
		cols []Column
		want error
		col  string
		step int
		row  int
	}{
		{"no-column", []ColumnSpec{{Column: "y"}}, []Column{num}, ErrNoColumn, "y", 0, 0},
		{"missing-no-impute", []ColumnSpec{{Column: "x", Steps: []Step{scale}}}, []Column{num}, ErrMissingValue, "x", 0, 2},
		{"infinite", []ColumnSpec{{Column: "x"}}, []Column{NumericColumn("x", []float64{1, math.Inf(-1)}, nil)}, ErrNotFinite, "x", 0, 2},
		{"scale-categorical", []ColumnSpec{{Column: "c", Steps: []Step{scale}}}, []Column{cat}, ErrKind, "c", 1, 0},
		{"categorical-needs-onehot", []ColumnSpec{{Column: "c"}}, []Column{cat}, ErrKind, "c", 0, 0},
		{"date-needs-age", []ColumnSpec{{Column: "d"}}, []Column{date}, ErrKind, "d", 0, 0},
		{"age-on-numeric", []ColumnSpec{{Column: "x", Steps: []Step{{Age: &Age{Reference: "2024-01-01"}}}}}, []Column{num}, ErrKind, "x", 1, 0},
		{"step-after-onehot", []ColumnSpec{{Column: "c", Steps: []Step{{OneHot: &OneHot{}}, scale}}}, []Column{cat}, ErrKind, "c", 2, 0},
		{"onehot-missing", []ColumnSpec{{Column: "c", Steps: []Step{{OneHot: &OneHot{}}}}}, []Column{CategoricalColumn("c", []string{"a", "b"}, []bool{false, true})}, ErrMissingValue, "c", 1, 2},
		{"no-data", []ColumnSpec{{Column: "x", Steps: []Step{{Impute: &Impute{Strategy: ImputeMean}}}}}, []Column{NumericColumn("x", []float64{nan, nan}, nil)}, ErrNoData, "x", 1, 0},
		{"lengths", []ColumnSpec{{Column: "x"}}, []Column{num, NumericColumn("z", []float64{1}, nil)}, ErrColumns, "z", 0, 0},
		{"duplicate-input", []ColumnSpec{{Column: "x"}}, []Column{num, num}, ErrColumns, "x", 0, 0},
		{"duplicate-output", []ColumnSpec{{Column: "x", Steps: []Step{{Impute: &Impute{Strategy: ImputeMean}}}}, {Column: "x", Steps: []Step{{Impute: &Impute{Strategy: ImputeMean}}}}}, []Column{num}, ErrSpec, "x", 0, 0},
		{"empty", []ColumnSpec{{Column: "x"}}, []Column{NumericColumn("x", nil, nil)}, ErrEmpty, "", 0, 0},
		{"bad-spec", []ColumnSpec{{Column: "x", Steps: []Step{{}}}}, []Column{num}, ErrSpec, "x", 1, 0},
	}
	for _, c := range cases {
		_, err := Fit(Spec{Columns: c.spec}, c.cols)
		var fe *Error
		if !errors.Is(err, c.want) || !errors.As(err, &fe) || fe.Column != c.col || fe.Step != c.step || fe.Row != c.row {
			t.Errorf("%s: err = %v (%+v); want %v in column %q step %d row %d", c.name, err, fe, c.want, c.col, c.step, c.row)
		}
	}
	// Transform checks kinds and missing values again.
	f := mustFit(t, Spec{Columns: []ColumnSpec{{Column: "x", Steps: []Step{scale}}}}, NumericColumn("x", []float64{1, 2}, nil))
	if _, _, err := f.Transform([]Column{CategoricalColumn("x", []string{"a"}, nil)}); !errors.Is(err, ErrKind) {
		t.Errorf("transform with a categorical x: %v", err)
	}
	_, _, err := f.Transform([]Column{num})
	if !errors.Is(err, ErrMissingValue) || !strings.Contains(err.Error(), `column "x": row 2: missing value: add an impute step`) {
		t.Errorf("transform with a missing x: %v", err)
	}
}

func TestSpecFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) < 8 {
		t.Fatalf("found %d spec files in testdata", len(files))
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseSpec(data)
		valid := strings.HasPrefix(filepath.Base(file), "valid_")
		if valid && err != nil {
			t.Errorf("%s: %v", file, err)
		}
		if !valid && !errors.Is(err, ErrSpec) {
			t.Errorf("%s: err = %v; want ErrSpec", file, err)
		}
	}
}

// The YAML example of the package documentation decodes and fits.
func TestYAMLSpec(t *testing.T) {
	doc := `
columns:
  - column: tax_arrears.amount_24m
    steps:
      - impute: {strategy: median, indicator: true}
      - clip: {lower_quantile: 0.01, upper_quantile: 0.99}
      - scale: {method: minmax, range: [-1, 1]}
  - column: registration.established_on
    name: enterprise_age
    steps:
      - age: {reference: "2024-06-30", unit: years}
      - clip: {min: 0, max: 50}
      - scale: {method: standard}
  - column: registration.industry
    steps:
      - impute: {strategy: constant, category: unknown}
      - onehot: {max_categories: 20, unknown: other}
`
	var spec Spec
	if err := yaml.Unmarshal([]byte(doc), &spec); err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	n := 500
	amt, days, ind := make([]float64, n), make([]int32, n), make([]string, n)
	miss := make([]bool, n)
	for i := range n {
		amt[i] = math.Exp(r.NormFloat64() * 2)
		if i%7 == 0 {
			amt[i] = nan
		}
		days[i] = 19000 - int32(r.IntN(9000))
		ind[i] = []string{"retail", "manufacturing", "agriculture", "services"}[r.IntN(4)]
		miss[i] = i%11 == 0
	}
	cols := []Column{
		NumericColumn("tax_arrears.amount_24m", amt, nil),
		DateColumn("registration.established_on", days, nil),
		CategoricalColumn("registration.industry", ind, miss),
	}
	f := mustFit(t, spec, cols...)
	want := []string{"tax_arrears.amount_24m", "tax_arrears.amount_24m_missing", "enterprise_age",
		"registration.industry=agriculture", "registration.industry=manufacturing", "registration.industry=retail",
		"registration.industry=services", "registration.industry=unknown", "registration.industry=__other__"}
	if !slices.Equal(f.Names(), want) {
		t.Errorf("names = %v", f.Names())
	}
	if *f.Columns[1].Steps[0].Age != (AgeFit{Reference: "2024-06-30", Unit: AgeYears}) {
		t.Errorf("age = %+v", f.Columns[1].Steps[0].Age)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	data, _ := os.ReadFile("testdata/valid_bounded.json")
	spec, err := ParseSpec(data)
	if err != nil {
		t.Fatal(err)
	}
	cols := []Column{
		NumericColumn("amount", []float64{5, nan, 1, 8, 1e6, 3}, nil),
		CategoricalColumn("industry", []string{"a", "b", "a", "c", "d", ""}, []bool{false, false, false, false, false, true}),
		DateColumn("founded", []int32{18000, 15000, 19000, 20000, 10000, 17000}, nil),
	}
	f := mustFit(t, spec, cols...)
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseFitted(b)
	if err != nil {
		t.Fatalf("ParseFitted(%s): %v", b, err)
	}
	X1, n1 := mustTransform(t, f, cols...)
	X2, n2 := mustTransform(t, g, cols...)
	if !mat.Equal(X1, X2) || !slices.Equal(n1, n2) {
		t.Errorf("transform differs after a JSON round trip")
	}
	b2, _ := json.Marshal(g)
	if string(b) != string(b2) {
		t.Errorf("JSON differs after a round trip:\n%s\n%s", b, b2)
	}
	// A tampered pipeline is rejected.
	for _, bad := range []struct{ from, to string }{
		{`"method":"standard"`, `"method":"robust"`},
		{`"kind":"date"`, `"kind":"categorical"`},
		{`"outputs":["age_years"]`, `"outputs":["age"]`},
		{`"unknown":"other"`, `"unknown":"sometimes"`},
	} {
		s := strings.Replace(string(b), bad.from, bad.to, 1)
		if s == string(b) {
			t.Fatalf("%q not found in %s", bad.from, b)
		}
		if _, err := ParseFitted([]byte(s)); err == nil {
			t.Errorf("tampered pipeline (%s → %s) accepted", bad.from, bad.to)
		}
	}
}

func TestBounds(t *testing.T) {
	x := NumericColumn("x", []float64{-3, 0, 1, 2, 50, nan}, nil)
	c := CategoricalColumn("c", []string{"a", "b", "a", "a", "b", "a"}, nil)
	spec := Spec{Columns: []ColumnSpec{
		Bounded("x", 0.1, 0.9),
		{Column: "c", Steps: []Step{{OneHot: &OneHot{}}}},
	}}
	f := mustFit(t, spec, x, c)
	if err := f.RequireBounded(-1, 1); err != nil {
		t.Errorf("bounded pipeline: %v", err)
	}
	if b := f.Bounds(); !slices.Equal(b, []Interval{{-1, 1}, {0, 1}, {0, 1}, {0, 1}}) {
		t.Errorf("bounds = %v", b)
	}
	// Standard scaling alone is unbounded; after a fixed clip it is bounded.
	spec = Spec{Columns: []ColumnSpec{{Column: "x", Steps: []Step{{Impute: &Impute{Strategy: ImputeConstant, Value: ptr(0.0)}}, {Scale: &Scale{Method: ScaleStandard}}}}}}
	f = mustFit(t, spec, x)
	err := f.RequireBounded(-1, 1)
	if !errors.Is(err, ErrUnbounded) || !strings.Contains(err.Error(), `output "x" may range over [-Inf, +Inf]`) {
		t.Errorf("standard scaling: %v", err)
	}
	spec.Columns[0].Steps = append([]Step{{Clip: &Clip{Min: ptr(-2.0), Max: ptr(2.0)}}}, spec.Columns[0].Steps...)
	f = mustFit(t, spec, x)
	sc := f.Columns[0].Steps[2].Scale
	if b := f.Bounds()[0]; !b.Bounded() || b.Low != (-2-sc.Mean)/sc.Std || b.High != (2-sc.Mean)/sc.Std {
		t.Errorf("clipped standard scaling: bounds %v", b)
	}
}

// Whatever the data, a Bounded pipeline's outputs lie in [−1, 1].
func TestBoundedProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	for trial := range 200 {
		n := 1 + r.IntN(40)
		gen := func() []float64 {
			v := make([]float64, n)
			for i := range v {
				switch r.IntN(6) {
				case 0:
					v[i] = nan
				case 1:
					v[i] = r.NormFloat64() * 1e12
				default:
					v[i] = r.NormFloat64()
				}
			}
			v[0] = r.Float64() // at least one value present
			return v
		}
		f, err := Fit(Spec{Columns: []ColumnSpec{Bounded("x", r.Float64()/2, 0.5+r.Float64()/2)}}, []Column{NumericColumn("x", gen(), nil)})
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		X, _ := mustTransform(t, f, NumericColumn("x", gen(), nil))
		for _, v := range X.RawMatrix().Data {
			if !(v >= -1 && v <= 1) {
				t.Fatalf("trial %d: output %v outside [−1, 1]", trial, v)
			}
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	cols := []Column{
		NumericColumn("x", []float64{1, nan, 3, 4}, nil), NumericColumn("amount", []float64{1, 2, 3, nan}, nil),
		CategoricalColumn("industry", []string{"a", "b", "", "a"}, []bool{false, false, true, false}),
		CategoricalColumn("region", []string{"north", "south", "north", "north"}, nil),
		DateColumn("founded", []int32{1, 2, 3, 4}, nil), NumericColumn("y", []float64{0, 1, 0, 1}, nil),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || !errors.Is(err, ErrSpec) {
				t.Fatalf("error %v is not a *Error wrapping ErrSpec", err)
			}
			return
		}
		fitted, err := Fit(spec, cols)
		if err != nil {
			return
		}
		b, err := json.Marshal(fitted)
		if err != nil {
			t.Fatal(err)
		}
		g, err := ParseFitted(b)
		if err != nil {
			t.Fatalf("fitted pipeline does not read back: %v\n%s", err, b)
		}
		X1, _, err1 := fitted.Transform(cols)
		X2, _, err2 := g.Transform(cols)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && !mat.Equal(X1, X2)) {
			t.Fatalf("transform differs after a round trip: %v / %v", err1, err2)
		}
	})
}

func FuzzParseFitted(f *testing.F) {
	spec, _ := ParseSpec([]byte(`{"columns":[{"column":"x","steps":[{"impute":{"strategy":"mean","indicator":true}},{"clip":{"lower_quantile":0.1}},{"scale":{"method":"minmax"}}]},
		{"column":"c","steps":[{"onehot":{"unknown":"ignore"}}]},{"column":"d","steps":[{"age":{"reference":"2020-01-01","unit":"days"}},{"scale":{"method":"standard"}}]}]}`))
	cols := []Column{NumericColumn("x", []float64{1, nan, 5}, nil), CategoricalColumn("c", []string{"p", "q", "p"}, nil), DateColumn("d", []int32{5, 9, 7}, nil)}
	fitted, err := Fit(spec, cols)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := json.Marshal(fitted)
	f.Add(b)
	f.Add([]byte(`{"columns":[{"column":"x","name":"x","kind":"numeric","outputs":["x"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseFitted(data)
		if err != nil {
			return
		}
		// A pipeline that parses transforms without panicking and reports one bound per output.
		if len(g.Bounds()) != len(g.Names()) {
			t.Fatalf("%d bounds for %d outputs", len(g.Bounds()), len(g.Names()))
		}
		g.Transform(cols)
	})
}
