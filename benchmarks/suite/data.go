package suite

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"insitu/connectors"
	"insitu/connectors/synthetic"
	"insitu/enclave/cohort"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
)

// DataSet is one data set of a run: where it came from and the flat table the cases read.
type DataSet struct {
	// Name is "taiwan", "gmsc" or "synthetic".
	Name string `json:"name"`
	// Source describes the original file (or the generator and its seed).
	Source string `json:"source"`
	// Original is the original file, for the ingest workload; empty for synthetic data.
	Original string `json:"original,omitempty"`
	// IDColumn and LabelColumn name those columns of Original.
	IDColumn    string `json:"id_column,omitempty"`
	LabelColumn string `json:"label_column,omitempty"`
	// SynthDir holds the generated provider files of synthetic data.
	SynthDir string `json:"synth_dir,omitempty"`
	// Flat is the prepared CSV: id, label, then the features (empty cells are missing).
	Flat string `json:"-"`
	// Rows, Train, Test, Features and Positives are the flat table's sizes.
	Rows      int `json:"rows"`
	Train     int `json:"train"`
	Test      int `json:"test"`
	Features  int `json:"features"`
	Positives int `json:"positives"`
}

// Table is a data set as the model workloads read it: one row per subject, numeric features with
// NaN for missing values.
type Table struct {
	Name  string
	IDs   []int64
	Y     []float64
	Names []string
	// Cols holds the features column by column.
	Cols [][]float64
}

// Split returns the row indices of the training (id % 5 != 0) and test (id % 5 == 0) rows.
func (t *Table) Split() (train, test []int) {
	for i, id := range t.IDs {
		if id%5 == 0 {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	return train, test
}

// Rows returns the columns and labels of the given rows.
func (t *Table) Rows(idx []int) ([][]float64, []float64) {
	cols := make([][]float64, len(t.Cols))
	for j, c := range t.Cols {
		v := make([]float64, len(idx))
		for k, i := range idx {
			v[k] = c[i]
		}
		cols[j] = v
	}
	y := make([]float64, len(idx))
	for k, i := range idx {
		y[k] = t.Y[i]
	}
	return cols, y
}

// HasMissing reports whether feature j has a missing value.
func (t *Table) HasMissing(j int) bool {
	for _, v := range t.Cols[j] {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

// publicSets are the public data sets the suite knows, as ../shared/data lays them out.
var publicSets = []struct {
	name, path, id, label, source string
}{
	{"taiwan", "default_credit/UCI_Credit_Card.csv", "ID", "default.payment.next.month",
		"UCI 350 default of credit card clients (Yeh & Lien 2009, CC BY 4.0)"},
	{"gmsc", "give_me_some_credit/cs-training.csv.gz", "", "SeriousDlqin2yrs",
		"Kaggle Give Me Some Credit cs-training (2011, research use)"},
}

// prepare builds the run's data sets in the work folder and probes the Python baselines.
func prepare(ctx context.Context, cfg *Config, logf func(string, ...any)) (*Env, error) {
	env := &Env{Config: cfg, Log: logf}
	if cfg.Data != "" {
		for _, p := range publicSets {
			if cfg.Quick && p.name != "taiwan" {
				continue
			}
			path := filepath.Join(cfg.Data, p.path)
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				logf("data: %s not found at %s, left out", p.name, path)
				continue
			}
			start := time.Now()
			t, err := LoadCSV(path, p.name, p.id, p.label)
			if err != nil {
				return nil, err
			}
			ds := DataSet{Name: p.name, Source: p.source + ", " + path, Original: path, IDColumn: p.id, LabelColumn: p.label,
				Flat: filepath.Join(cfg.WorkDir, p.name+".csv")}
			if err := addSet(env, &ds, t); err != nil {
				return nil, err
			}
			logf("data: %s, %d rows × %d features (%.1f s)", p.name, ds.Rows, ds.Features, time.Since(start).Seconds())
		}
		if len(env.Sets) == 0 {
			return nil, fmt.Errorf("%w: no known data set under %s (want default_credit/UCI_Credit_Card.csv or "+
				"give_me_some_credit/cs-training.csv.gz, as ../shared/data lays them out)", ErrConfig, cfg.Data)
		}
	} else {
		start := time.Now()
		t, dir, err := syntheticTable(ctx, cfg)
		if err != nil {
			return nil, err
		}
		ds := DataSet{Name: "synthetic", Source: fmt.Sprintf("connectors/synthetic, %d enterprises, seed %d, the bank's labelled borrowers",
			cfg.Enterprises, cfg.Seed), SynthDir: dir, Flat: filepath.Join(cfg.WorkDir, "synthetic.csv")}
		if err := addSet(env, &ds, t); err != nil {
			return nil, err
		}
		logf("data: synthetic, %d labelled borrowers × %d features (%.1f s)", ds.Rows, ds.Features, time.Since(start).Seconds())
	}
	if needsPlugins(cfg) && cfg.PluginBinary == "" {
		start := time.Now()
		if dir, err := buildPlugins(ctx, cfg); err != nil {
			logf("plugins: %v", err)
		} else {
			cfg.PluginBinary = dir
			logf("plugins: plugins/helr and plugins/logreg built statically for the sandbox (%.1f s)", time.Since(start).Seconds())
		}
	}
	env.Python = probePython(ctx, cfg.Python)
	if env.Python.Available {
		logf("baselines: %s with scikit-learn %s, xgboost %s", env.Python.Path, orDash(env.Python.Sklearn), orDash(env.Python.XGBoost))
	} else {
		logf("baselines: scikit-learn/xgboost not available (%s)", env.Python.Note)
	}
	return env, writeJSON(filepath.Join(cfg.WorkDir, "env.json"), env.snapshot())
}

type envSnapshot struct {
	Sets   []DataSet  `json:"sets"`
	Flats  []string   `json:"flats"`
	Python PythonInfo `json:"python"`
}

func (e *Env) snapshot() envSnapshot {
	s := envSnapshot{Sets: e.Sets, Python: e.Python}
	for _, d := range e.Sets {
		s.Flats = append(s.Flats, d.Flat)
	}
	return s
}

// reopen rebuilds the parent's Env in a case's child process from what prepare wrote.
func reopen(cfg *Config, logf func(string, ...any)) (*Env, error) {
	var s envSnapshot
	b, err := os.ReadFile(filepath.Join(cfg.WorkDir, "env.json"))
	if err != nil {
		return nil, fmt.Errorf("bench case: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	for i := range s.Sets {
		s.Sets[i].Flat = s.Flats[i]
	}
	return &Env{Config: cfg, Sets: s.Sets, Python: s.Python, Log: logf}, nil
}

func addSet(env *Env, ds *DataSet, t *Table) error {
	if err := t.WriteCSV(ds.Flat); err != nil {
		return err
	}
	tr, te := t.Split()
	ds.Rows, ds.Train, ds.Test, ds.Features = len(t.IDs), len(tr), len(te), len(t.Names)
	for _, y := range t.Y {
		ds.Positives += int(y)
	}
	env.Sets = append(env.Sets, *ds)
	if env.tables == nil {
		env.tables = map[string]*Table{}
	}
	env.tables[ds.Name] = t
	return nil
}

// LoadCSV reads a public data set: idCol names the id column ("" for the first column), label the
// label column; every other column is a feature; "NA" and "" are missing. A gzip file is read
// through gzip when its name ends in .gz.
func LoadCSV(path, name, idCol, label string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	if strings.HasSuffix(path, ".gz") {
		if r, err = gzip.NewReader(r); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", path, err)
		}
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("bench: %s: header: %w", path, err)
	}
	header = append([]string(nil), header...)
	idIdx, yIdx := 0, -1
	for j, h := range header {
		if idCol != "" && h == idCol {
			idIdx = j
		}
		if h == label {
			yIdx = j
		}
	}
	if yIdx < 0 {
		return nil, fmt.Errorf("bench: %s: no label column %q in the header", path, label)
	}
	t := &Table{Name: name}
	var feat []int
	for j, h := range header {
		if j != idIdx && j != yIdx {
			feat = append(feat, j)
			t.Names = append(t.Names, h)
		}
	}
	t.Cols = make([][]float64, len(feat))
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bench: %s: %w", path, err)
		}
		id, err := strconv.ParseInt(rec[idIdx], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bench: %s line %d: id %q is not an integer", path, line, rec[idIdx])
		}
		y, err := strconv.ParseFloat(rec[yIdx], 64)
		if err != nil || (y != 0 && y != 1) {
			return nil, fmt.Errorf("bench: %s line %d: label %q is not 0 or 1", path, line, rec[yIdx])
		}
		t.IDs, t.Y = append(t.IDs, id), append(t.Y, y)
		for c, j := range feat {
			v := math.NaN()
			if s := rec[j]; s != "NA" && s != "" {
				if v, err = strconv.ParseFloat(s, 64); err != nil {
					return nil, fmt.Errorf("bench: %s line %d column %s: %q is not a number", path, line, header[j], s)
				}
			}
			t.Cols[c] = append(t.Cols[c], v)
		}
	}
	return t, nil
}

// WriteCSV writes the table as id,label,features (missing values, and a NaN label, as empty cells;
// numbers exact).
func (t *Table) WriteCSV(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("id,label")
	for _, n := range t.Names {
		w.WriteString("," + csvName(n))
	}
	w.WriteByte('\n')
	var buf []byte
	for i, id := range t.IDs {
		buf = strconv.AppendInt(buf[:0], id, 10)
		buf = append(buf, ',')
		if !math.IsNaN(t.Y[i]) {
			buf = strconv.AppendFloat(buf, t.Y[i], 'g', -1, 64)
		}
		for _, c := range t.Cols {
			buf = append(buf, ',')
			if !math.IsNaN(c[i]) {
				buf = strconv.AppendFloat(buf, c[i], 'g', -1, 64)
			}
		}
		buf = append(buf, '\n')
		w.Write(buf)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("bench: %w", err)
	}
	return f.Close()
}

// csvName makes a feature name safe as a CSV header cell and a custom field key.
func csvName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "_")
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "f_" + out
	}
	return out
}

// ReadTable reads a flat CSV that WriteCSV wrote.
func ReadTable(path, name string) (*Table, error) {
	t, err := LoadCSV(path, name, "id", "label")
	if err != nil {
		return nil, err
	}
	return t, nil
}

// syntheticFields are the catalog fields the synthetic workloads use: those the demo's bank asks for
// (tax, social insurance, utilities, court records, legal representative, shareholders, customs).
var syntheticFields = []string{
	"tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m",
	"tax_arrears_history.max_arrears_days_24m", "tax_arrears_history.outstanding_arrears_amount",
	"tax_deferral.deferrals_24m", "financial_filings.revenue", "financial_filings.total_assets",
	"financial_filings.total_liabilities", "financial_filings.net_profit", "financial_filings.taxes_paid",
	"pension_contributions.insured_headcount", "pension_contributions.months_paid_12m",
	"pension_contributions.arrears_months", "pension_contributions.headcount_change_12m",
	"electricity.arrears_amount", "electricity.defaults_last_2y", "electricity.consumption_growth_12m",
	"water.late_payments_12m", "gas.late_payments_12m", "dishonest_judgment_debtors.case_count",
	"dishonest_judgment_debtors.amount_outstanding", "legal_representative.legal_rep_changes_36m",
	"shareholders_and_contributions.shareholder_changes_36m", "customs_duty_payments.overdue_payments_24m",
}

// syntheticTable generates the synthetic platform data and flattens the bank's labelled borrowers:
// every numeric feature column that is not personal information, joined with the labels.
// Borrowers are numbered 1..n in the label file's order; that number is the id of the split.
func syntheticTable(ctx context.Context, cfg *Config) (*Table, string, error) {
	dir := filepath.Join(cfg.WorkDir, "synthetic")
	if _, err := synthetic.Generate(synthetic.Config{Enterprises: cfg.Enterprises, Seed: cfg.Seed}, dir); err != nil {
		return nil, "", err
	}
	store, err := openStore(filepath.Join(cfg.WorkDir, "synthetic-store"))
	if err != nil {
		return nil, "", err
	}
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(dir, "dataset.yaml"))
	if err != nil {
		return nil, "", err
	}
	m, _, err := store.Ingest(ctx, spec, mappings, dataset.IngestOptions{})
	if err != nil {
		return nil, "", err
	}
	labels, err := cohort.ReadLabels(filepath.Join(dir, "labels.csv"))
	if err != nil {
		return nil, "", err
	}
	var cols []dataset.Column
	for _, c := range cohort.FeatureColumns(m) {
		if slices.Contains(syntheticFields, c.Name) && (c.CatalogType == "int" || c.CatalogType == "float") {
			cols = append(cols, c)
		}
	}
	sc, err := store.Scan(ctx, m.Name, m.Version, dataset.ScanOptions{})
	if err != nil {
		return nil, "", err
	}
	tab, err := cohort.Collect(ctx, sc, cols, labels)
	sc.Close()
	if err != nil {
		return nil, "", err
	}
	// Number the borrowers in the label file's order.
	order := map[string]int64{}
	f, err := os.Open(filepath.Join(dir, "labels.csv"))
	if err != nil {
		return nil, "", err
	}
	cr := csv.NewReader(f)
	n := int64(0)
	for {
		rec, err := cr.Read()
		if err != nil {
			break
		}
		if n > 0 {
			order[rec[0]] = n
		}
		n++
	}
	f.Close()
	t := &Table{Name: "synthetic", Cols: make([][]float64, len(tab.Columns))}
	for _, c := range tab.Columns {
		t.Names = append(t.Names, c.Name)
	}
	for i, s := range tab.Subjects {
		id, ok := order[s]
		if !ok {
			return nil, "", fmt.Errorf("bench: synthetic subject missing from labels.csv")
		}
		t.IDs, t.Y = append(t.IDs, id), append(t.Y, tab.Label[i])
		for j, c := range tab.Columns {
			v := math.NaN()
			if !c.IsMissing(i) {
				v = c.Values[i]
			}
			t.Cols[j] = append(t.Cols[j], v)
		}
	}
	return t, dir, nil
}

// openStore creates a throw-away data directory and opens its dataset store.
func openStore(dir string) (*dataset.Store, error) {
	d, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	return dataset.Open(d)
}

// openDir creates a throw-away data directory (its key file beside it) and opens it.
func openDir(dir string) (*datadir.DataDir, error) {
	keyFile := dir + ".key"
	init, err := datadir.Init(dir, keyFile)
	if err != nil {
		return nil, err
	}
	return datadir.Open(init.Dir, keys.Source{File: keyFile})
}

// Len returns the number of rows.
func (t *Table) Len() int { return len(t.IDs) }
