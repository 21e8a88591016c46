package scoring_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/keys"
	"insitu/enclave/registry"
	"insitu/enclave/scoring"
	"insitu/modeling/features"
	"insitu/modeling/pmml"
)

var ctx = context.Background()

const (
	bankT   = "bank-t"
	bankU   = "bank-u"
	purpose = consent.PurposeCreditApproval
)

// fixture is an enclave with a synthetic dataset, a model of bank-t registered on four of its
// columns, and authorizations of bank-t for the first `authorized` subjects.
type fixture struct {
	e          *enclave.Enclave
	dm         *dataset.Manifest
	model      *registry.Model
	subjects   []string // every subject of the dataset, in scan order
	authorized int
	grants     int
	table      *cohort.Table
	svc        *scoring.Service
}

func newFixture(t testing.TB, enterprises int, o scoring.Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	synth := filepath.Join(dir, "synth")
	if _, err := synthetic.Generate(synthetic.Config{Enterprises: enterprises, Seed: 7}, synth); err != nil {
		t.Fatal(err)
	}
	init, err := datadir.Init(filepath.Join(dir, "dd"), filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := datadir.Open(init.Dir, keys.Source{File: filepath.Join(dir, "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{}
	if f.e, err = enclave.OpenDataDir(ctx, d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.e.Close() })
	f.ingest(t, synth)
	f.registerModel(t, "job-t1", bankT, 4)
	f.authorize(t, 40, bankT, purpose, f.model.Items)
	f.svc = f.service(o)
	t.Cleanup(f.svc.Close)
	return f
}

func (f *fixture) service(o scoring.Options) *scoring.Service {
	return scoring.New(scoring.Config{DB: f.e.DB, Audit: f.e.Audit, Datasets: f.e.Datasets, Consent: f.e.Consent, Models: f.e.Models, Options: o})
}

func (f *fixture) ingest(t testing.TB, synth string) {
	t.Helper()
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(synth, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.dm, _, err = f.e.Ingest(ctx, "test", spec, mappings, dataset.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
}

// registerModel fits bounded transforms of n numeric columns on the whole dataset and registers a
// model with fixed weights for bank, as a release would.
func (f *fixture) registerModel(t testing.TB, id, bank string, n int) *registry.Model {
	t.Helper()
	return f.registerFamily(t, id, bank, n, nil)
}

// registerFamily is registerModel with the model's parameters set by family (the linear weights
// when nil), given the fitted transforms' feature names.
func (f *fixture) registerFamily(t testing.TB, id, bank string, n int, family func(d *registry.Document)) *registry.Model {
	t.Helper()
	var cols []dataset.Column
	var spec features.Spec
	items := map[string]bool{}
	for _, c := range cohort.FeatureColumns(f.dm) {
		if c.Item == "custom" || (c.CatalogType != "int" && c.CatalogType != "float") {
			continue
		}
		cols = append(cols, c)
		spec.Columns = append(spec.Columns, features.Bounded(c.Name, 0.01, 0.99))
		items[c.Item] = true
		if len(cols) == n {
			break
		}
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	sc, err := f.e.Datasets.Scan(ctx, f.dm.Name, f.dm.Version, dataset.ScanOptions{Columns: names})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cohort.CollectAll(ctx, sc, cols)
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}
	f.table, f.subjects = tbl, tbl.Subjects
	fitted, err := features.Fit(spec, tbl.Columns)
	if err != nil {
		t.Fatal(err)
	}
	var itemList []string
	for it := range items {
		itemList = append(itemList, it)
	}
	w := make([]float64, len(fitted.Names()))
	for j := range w {
		w[j] = 0.4 - 0.3*float64(j)
	}
	doc := &registry.Document{Format: registry.DocumentFormat, ID: id, Bank: bank, Family: registry.FamilyLogisticRegression,
		Purpose: string(consent.PurposeModelDevelopment), Dataset: f.dm.Name, DatasetVersion: f.dm.Version, Items: itemList,
		Inputs: names, Features: fitted.Names(), Transforms: fitted, Linear: &pmml.Linear{Weights: w, Intercept: -1.5},
		Points: pmml.DefaultPoints, ProbabilityStep: registry.DefaultProbabilityStep, Release: registry.Release{Job: id}}
	if family != nil {
		doc.Linear = nil
		family(doc)
	}
	var m *registry.Model
	if err := f.e.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		m, err = f.e.Models.RegisterTx(ctx, tx, doc, &gate.Receipt{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if f.model == nil {
		f.model = m
	}
	return m
}

// authorize grants bank authorizations for purpose and items to the first n subjects.
func (f *fixture) authorize(t testing.TB, n int, bank string, p consent.Purpose, items []string) {
	t.Helper()
	for i, s := range f.subjects[:n] {
		g := consent.Grant{IDType: ident.KindUSCC, Identifier: s, Grantee: bank, Purpose: p, PurposeDetail: "online scoring test",
			Items: items, ValidFrom: "2020-01-01", ValidUntil: "2099-12-31",
			Evidence: fmt.Sprintf("form-%d.pdf#sha256=%064x", i, f.grants+i+1)}
		if _, err := f.e.Consent.Grant(ctx, "steward-1", g); err != nil {
			t.Fatal(err)
		}
	}
	f.grants += n
	if n > f.authorized && bank == bankT {
		f.authorized = n
	}
}

// expected computes subject i's probability of default independently of the service: the raw
// columns of the row, the model's transforms, the weights.
func (f *fixture) expected(t testing.TB, i int) float64 {
	t.Helper()
	cols, _ := f.table.Rows([]int{i})
	x, _, err := f.model.Transforms.Transform(cols)
	if err != nil {
		t.Fatal(err)
	}
	return f.model.Probability(x.RawRowView(0))
}

// filepath0 regenerates the fixture's synthetic source files (same seed) for a second ingest.
func filepath0(t testing.TB, f *fixture) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "synth2")
	if _, err := synthetic.Generate(synthetic.Config{Enterprises: len(f.subjects), Seed: 7}, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}
