package synthetic

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"insitu/connectors"
	"insitu/connectors/catalog"
	"insitu/modeling/features"
	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
)

// readCSV reads a whole CSV file: its header and rows.
func readCSV(t testing.TB, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var rows [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rows = append(rows, rec)
	}
	return header, rows
}

// readMapping reads a generated mapping file as plain YAML (without the loader's checks).
func readMapping(t testing.TB, path string) connectors.Mapping {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m connectors.Mapping
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// mappedField is a mapped column with its field definition.
type mappedField struct {
	source, column, name string
	field                *catalog.Field
	item                 *catalog.Item // nil for a custom field
}

// mappedFields returns every mapped column of the generated data set in dir.
func mappedFields(t testing.TB, dir string) []mappedField {
	t.Helper()
	cat := catalog.Default()
	var out []mappedField
	for _, d := range sourceDefs {
		m := readMapping(t, filepath.Join(dir, "mappings", d.key+".yaml"))
		custom := map[string]*catalog.Field{}
		for _, cf := range m.CustomFields {
			f := &catalog.Field{Key: cf.Key, Type: catalog.FieldType(cf.Type), Values: cf.Values, IDKind: cf.IDKind,
				Role: catalog.FieldRole(cf.Role), Min: cf.Min, Max: cf.Max}
			if f.Role == "" {
				switch f.Type {
				case catalog.TypeID:
					f.Role = catalog.RoleIdentifier
				case catalog.TypeString:
					f.Role = catalog.RoleDescriptive
				default:
					f.Role = catalog.RoleFeature
				}
			}
			custom[cf.Key] = f
		}
		for _, c := range m.Columns {
			item, key, _ := strings.Cut(c.Field, ".")
			mf := mappedField{source: m.Source, column: c.Column, name: c.Field}
			if item == "custom" {
				mf.field = custom[key]
				if mf.field == nil {
					t.Fatalf("%s: column %s maps to undeclared %s", m.Source, c.Column, c.Field)
				}
			} else {
				it, f, err := cat.Field(item, key)
				if err != nil {
					t.Fatalf("%s: column %s: %v", m.Source, c.Column, err)
				}
				mf.item, mf.field = it, f
			}
			out = append(out, mf)
		}
	}
	return out
}

// table is the generated data joined on the credit code: for each mapped feature column, the
// string value of each labelled enterprise ("" when missing or when the source has no row).
type table struct {
	uscc   []string
	label  []float64
	fields []mappedField
	cells  [][]string // [field][row]
}

func loadLabelled(t testing.TB, dir string) *table {
	t.Helper()
	_, labels := readCSV(t, filepath.Join(dir, "labels.csv"))
	tb := &table{}
	row := map[string]int{}
	for _, l := range labels {
		row[l[0]] = len(tb.uscc)
		tb.uscc = append(tb.uscc, l[0])
		tb.label = append(tb.label, map[string]float64{"0": 0, "1": 1}[l[1]])
	}
	fields := mappedFields(t, dir)
	bySource := map[string][]mappedField{}
	for _, f := range fields {
		bySource[f.source] = append(bySource[f.source], f)
	}
	for _, d := range sourceDefs {
		header, rows := readCSV(t, filepath.Join(dir, "sources", d.key+".csv"))
		colIdx := map[string]int{}
		for i, h := range header {
			colIdx[h] = i
		}
		for _, f := range bySource[d.key] {
			cells := make([]string, len(tb.uscc))
			ci := colIdx[f.column]
			for _, r := range rows {
				if k, ok := row[r[0]]; ok {
					cells[k] = r[ci]
				}
			}
			tb.fields = append(tb.fields, f)
			tb.cells = append(tb.cells, cells)
		}
	}
	return tb
}

// numericColumns turns the table's numeric, boolean and date feature fields into feature columns.
func (tb *table) numericColumns(t testing.TB, rows []int) []features.Column {
	t.Helper()
	var cols []features.Column
	for fi, f := range tb.fields {
		if f.field.Role != catalog.RoleFeature {
			continue
		}
		name := f.source + ":" + f.column
		switch f.field.Type {
		case catalog.TypeInt, catalog.TypeFloat, catalog.TypeBool:
			vals := make([]float64, len(rows))
			for k, i := range rows {
				vals[k] = parseNumber(t, f, tb.cells[fi][i])
			}
			cols = append(cols, features.NumericColumn(name, vals, nil))
		case catalog.TypeDate:
			days := make([]int32, len(rows))
			missing := make([]bool, len(rows))
			for k, i := range rows {
				s := tb.cells[fi][i]
				if s == "" {
					missing[k] = true
					continue
				}
				d, err := time.Parse(time.DateOnly, s)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				days[k] = features.DayNumber(d)
			}
			cols = append(cols, features.DateColumn(name, days, missing))
		}
	}
	return cols
}

func parseNumber(t testing.TB, f mappedField, s string) float64 {
	switch s {
	case "":
		return math.NaN()
	case "true":
		return 1
	case "false":
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s.%s: %q: %v", f.source, f.column, s, err)
	}
	return v
}

// defaultSpec is the plain reference preprocessing: dates become ages in years, missing values
// take the training mean, and every column is standardised.
func defaultSpec(cols []features.Column, asOf string) features.Spec {
	var spec features.Spec
	for _, c := range cols {
		var steps []features.Step
		if c.Kind == features.Date {
			steps = append(steps, features.Step{Age: &features.Age{Reference: asOf}})
		}
		steps = append(steps,
			features.Step{Impute: &features.Impute{Strategy: features.ImputeMean}},
			features.Step{Scale: &features.Scale{Method: features.ScaleStandard}})
		spec.Columns = append(spec.Columns, features.ColumnSpec{Column: c.Name, Steps: steps})
	}
	return spec
}

// realism fits the plaintext reference logistic regression (λ = 1) by 3-fold cross-validation over
// the labelled enterprises and returns its mean test AUC, the default rate of the labels and the
// number of features.
func realism(t testing.TB, dir string) (auc, defaultRate float64, nFeatures int) {
	t.Helper()
	tb := loadLabelled(t, dir)
	const folds = 3
	for fold := range folds {
		var train, test []int
		for i := range tb.uscc {
			if i%folds == fold {
				test = append(test, i)
			} else {
				train = append(train, i)
			}
		}
		a, d := foldAUC(t, tb, train, test)
		auc += a / folds
		nFeatures = d
	}
	defaults := 0.0
	for _, y := range tb.label {
		defaults += y
	}
	return auc, defaults / float64(len(tb.label)), nFeatures
}

// foldAUC fits on the train rows and returns the AUC on the test rows.
func foldAUC(t testing.TB, tb *table, train, test []int) (float64, int) {
	trainCols, testCols := tb.numericColumns(t, train), tb.numericColumns(t, test)
	// Columns constant on the training rows carry nothing; standard scaling cannot use them.
	var keepTrain, keepTest []features.Column
	for k, c := range trainCols {
		if !constant(c) {
			keepTrain, keepTest = append(keepTrain, c), append(keepTest, testCols[k])
		}
	}
	fitted, err := features.Fit(defaultSpec(keepTrain, DefaultAsOf.Format(time.DateOnly)), keepTrain)
	if err != nil {
		t.Fatal(err)
	}
	xTrain, _, err := fitted.Transform(keepTrain)
	if err != nil {
		t.Fatal(err)
	}
	xTest, _, err := fitted.Transform(keepTest)
	if err != nil {
		t.Fatal(err)
	}
	pick := func(rows []int) []float64 {
		y := make([]float64, len(rows))
		for k, i := range rows {
			y[k] = tb.label[i]
		}
		return y
	}
	model, err := logreg.Fit(logreg.Problem{X: xTrain, Y: pick(train), Lambda: 1}, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	auc, err := metrics.AUC(pick(test), model.PredictProba(xTest))
	if err != nil {
		t.Fatal(err)
	}
	return auc, len(keepTrain)
}

func constant(c features.Column) bool {
	seen, first := false, 0.0
	for i := range c.Len() {
		if c.Missing != nil && c.Missing[i] {
			continue
		}
		v := 0.0
		switch c.Kind {
		case features.Numeric:
			v = c.Values[i]
			if math.IsNaN(v) {
				continue
			}
		case features.Date:
			v = float64(c.Days[i])
		}
		if !seen {
			seen, first = true, v
		} else if v != first {
			return false
		}
	}
	return true
}

// TestRealism checks issue 2's realism targets on three seeds at 20,000 enterprises (the size of
// the acceptance run): the default rate among the bank's borrowers lies in 3-15 % and the reference
// logistic regression's cross-validated AUC in 0.70-0.85. (At 8,000 enterprises the default-settings
// regression, with about 170 features and some 190 defaults per training fold, overfits enough that
// its AUC wanders near 0.70, so the test runs the acceptance size.)
func TestRealism(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 3 × 20,000 enterprises")
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			sum, err := Generate(Config{Enterprises: 20000, Seed: seed}, dir)
			if err != nil {
				t.Fatal(err)
			}
			auc, rate, d := realism(t, dir)
			t.Logf("seed %d: default rate %.4f, 3-fold AUC %.4f over %d features", seed, rate, auc, d)
			if rate != sum.DefaultRate {
				t.Errorf("labels give a default rate of %.4f, the summary %.4f", rate, sum.DefaultRate)
			}
			if rate < 0.03 || rate > 0.15 {
				t.Errorf("default rate %.4f outside 3-15 %%", rate)
			}
			if auc < 0.70 || auc > 0.85 {
				t.Errorf("AUC %.4f outside 0.70-0.85", auc)
			}
		})
	}
}
