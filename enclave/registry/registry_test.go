package registry_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/gate"
	"insitu/enclave/keys"
	"insitu/enclave/registry"
	"insitu/enclave/store"
	"insitu/enclave/store/storetest"
	"insitu/modeling/features"
	"insitu/modeling/pmml"
)

var ctx = context.Background()

// fittedJSON has every kind of step with its statistics written out, so that the expected scores
// can be computed by hand.
const fittedJSON = `{"columns":[
 {"column":"tax.amount","name":"tax.amount","kind":"numeric","steps":[
   {"impute":{"value":100,"indicator":true}},{"clip":{"min":0,"max":1000}},
   {"scale":{"method":"minmax","mean":0,"std":0,"min":0,"max":1000,"range":[-1,1]}}],
  "outputs":["tax.amount","tax.amount_missing"]},
 {"column":"reg.industry","name":"reg.industry","kind":"categorical","steps":[
   {"impute":{"category":"unknown"}},{"onehot":{"categories":["retail","mfg"],"unknown":"other"}}],
  "outputs":["reg.industry=retail","reg.industry=mfg","reg.industry=__other__"]},
 {"column":"emp.staff","name":"emp.staff","kind":"numeric","steps":[
   {"clip":{"min":0,"max":500}},{"scale":{"method":"standard","mean":50,"std":25,"min":0,"max":0}}],
  "outputs":["emp.staff"]}
]}`

func fitted(t testing.TB) *features.Fitted {
	f, err := features.ParseFitted([]byte(fittedJSON))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// release is a gate bundle and receipt of job "job-1" of bank-a with weights for fittedJSON.
func release(t testing.TB, job string) registry.ReleaseInfo {
	f := fitted(t)
	names := f.Names()
	b := &gate.Bundle{Format: gate.BundleFormat, Job: job, Bank: "bank-a", ManifestHash: "sha256:" + strings.Repeat("ab", 32),
		Weights: &gate.Weights{Names: names, Values: []float64{0.5, 0.3, -0.2, 0.1, 0.4, -0.6}, Intercept: -1}}
	rec := &gate.Receipt{Format: gate.ReceiptFormat, Job: job, Bank: "bank-a", Purpose: "credit_approval",
		Outputs: gate.OutputHashes{Weights: strings.Repeat("cd", 32), Bundle: strings.Repeat("ef", 32)},
		Gate:    gate.Verdict{Result: gate.VerdictVerified}, Audit: audit.Head{Seq: 7}, ReleasedAt: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	return registry.ReleaseInfo{Bundle: b, Receipt: rec, Family: registry.FamilyLogisticRegression, Dataset: "sme", Version: 2,
		Inputs: []string{"tax.amount", "reg.industry", "emp.staff"}, Items: []string{"emp", "reg", "tax"}, Transforms: f}
}

type fixture struct {
	db  *store.DB
	log *audit.Log
	reg *registry.Registry
}

func newFixture(t *testing.T) *fixture {
	db := storetest.Open(t, audit.Migrations, registry.Migrations)
	id, err := keys.NewIdentity(keys.RoleEnclave, "enclave")
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, id, audit.Options{})
	return &fixture{db: db, log: log, reg: registry.New(db, log, registry.Options{})}
}

func (f *fixture) register(t *testing.T, r registry.ReleaseInfo) *registry.Model {
	t.Helper()
	d, err := registry.FromRelease(r)
	if err != nil {
		t.Fatal(err)
	}
	var m *registry.Model
	if err := f.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		m, err = f.reg.RegisterTx(ctx, tx, d, r.Receipt)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRegisterListGetRevoke(t *testing.T) {
	f := newFixture(t)
	m1 := f.register(t, release(t, "job-1"))
	m2 := f.register(t, release(t, "job-2"))
	if m1.Name != "sme.logistic_regression" || m1.Version != 1 || m2.Version != 2 {
		t.Fatalf("names and versions: %s v%d, %s v%d", m1.Name, m1.Version, m2.Name, m2.Version)
	}
	other := release(t, "job-3")
	other.Bundle.Bank, other.Receipt.Bank = "bank-b", "bank-b"
	if m3 := f.register(t, other); m3.Version != 1 {
		t.Errorf("bank-b's first model is version %d", m3.Version)
	}
	all, err := f.reg.List(ctx, registry.Filter{})
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %d, %v", len(all), err)
	}
	mine, err := f.reg.List(ctx, registry.Filter{Bank: "bank-a"})
	if err != nil || len(mine) != 2 {
		t.Fatalf("bank-a's: %d, %v", len(mine), err)
	}
	got, err := f.reg.Get(ctx, "job-1", "bank-a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Linear.Weights[5] != -0.6 || got.Linear.Intercept != -1 || got.Release.WeightsSHA256 != strings.Repeat("cd", 32) ||
		got.Release.AuditSeq != 7 || got.Transforms == nil || len(got.Inputs) != 3 {
		t.Errorf("stored model %+v", got)
	}
	if _, err := f.reg.Get(ctx, "job-1", "bank-b"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("bank-b gets bank-a's model: %v", err)
	}
	if _, err := f.reg.Get(ctx, "nope", ""); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("unknown model: %v", err)
	}
	if rec, err := f.reg.Receipt(ctx, "job-1"); err != nil || rec.Audit.Seq != 7 {
		t.Errorf("receipt %+v, %v", rec, err)
	}

	if _, err := f.reg.Revoke(ctx, "bank-b", "bank-b", "job-1", "not mine"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("bank-b revokes bank-a's model: %v", err)
	}
	if _, err := f.reg.Revoke(ctx, "bank-a", "bank-a", "job-1", " "); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("empty reason: %v", err)
	}
	r, err := f.reg.Revoke(ctx, "bank-a", "bank-a", "job-1", "superseded by v2")
	if err != nil || !r.Revoked() || r.Revocation.Actor != "bank-a" {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	if _, err := f.reg.Revoke(ctx, "steward-1", "", "job-1", "again"); !errors.Is(err, registry.ErrRevoked) {
		t.Errorf("second revocation: %v", err)
	}
	active, _ := f.reg.List(ctx, registry.Filter{Bank: "bank-a", Active: true})
	if len(active) != 1 || active[0].ID != "job-2" {
		t.Errorf("active models %v", active)
	}
	// Registration and revocation are audited, with no weight in the payload.
	recs, err := f.log.Records(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[audit.Kind]int{}
	for _, r := range recs {
		kinds[r.Kind]++
		if strings.Contains(string(r.Payload), "-0.6") {
			t.Errorf("record %d carries a weight: %s", r.Seq, r.Payload)
		}
	}
	if kinds[registry.KindRegister] != 3 || kinds[registry.KindRevoke] != 1 {
		t.Errorf("audit kinds %v", kinds)
	}
	// Stored models cannot be changed or deleted in the database.
	if err := f.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM registry_revocations`)
		return err
	}); err == nil {
		t.Error("a revocation was deleted")
	}
}

func TestRegistrationRollsBackWithTheRelease(t *testing.T) {
	f := newFixture(t)
	r := release(t, "job-1")
	d, err := registry.FromRelease(r)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("commit failed")
	err = f.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := f.reg.RegisterTx(ctx, tx, d, r.Receipt); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if ms, _ := f.reg.List(ctx, registry.Filter{}); len(ms) != 0 {
		t.Errorf("%d models after a rolled back release", len(ms))
	}
}

func TestFromReleaseFamilies(t *testing.T) {
	r := release(t, "job-1")
	r.Bundle.Weights = nil
	if _, err := registry.FromRelease(r); !errors.Is(err, registry.ErrFamily) {
		t.Errorf("no model: %v", err)
	}
	r = release(t, "job-1")
	r.Bundle.Weights.Names[0] = "other"
	if _, err := registry.FromRelease(r); !errors.Is(err, registry.ErrFamily) {
		t.Errorf("weights named otherwise: %v", err)
	}
}

func TestSettings(t *testing.T) {
	f := newFixture(t)
	if v, err := f.reg.Setting(ctx, registry.SettingMinFeatures); err != nil || v != registry.DefaultMinFeatures {
		t.Fatalf("default %d, %v", v, err)
	}
	if err := f.reg.SetSetting(ctx, "steward-1", registry.SettingMinFeatures, 5); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.reg.Setting(ctx, registry.SettingMinFeatures); v != 5 {
		t.Errorf("set to 5, reads %d", v)
	}
	for _, bad := range []int{0, -1, registry.MaxMinFeatures + 1} {
		if err := f.reg.SetSetting(ctx, "steward-1", registry.SettingMinFeatures, bad); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("value %d: %v", bad, err)
		}
	}
	if err := f.reg.SetSetting(ctx, "steward-1", "nope", 3); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("unknown key: %v", err)
	}
}

// TestJSONExportMatchesHandComputedScores scores raw rows with the exported JSON document, read back
// with ParseDocument, and compares with values computed by hand from fittedJSON and the weights.
func TestJSONExportMatchesHandComputedScores(t *testing.T) {
	d, err := registry.FromRelease(release(t, "job-1"))
	if err != nil {
		t.Fatal(err)
	}
	d.Name, d.Version = "sme.logistic_regression", 1
	raw, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	back, err := registry.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	cols := []features.Column{
		features.NumericColumn("tax.amount", []float64{250, 0, 5000}, []bool{false, true, false}),
		features.CategoricalColumn("reg.industry", []string{"retail", "", "mfg"}, []bool{false, true, false}),
		features.NumericColumn("emp.staff", []float64{100, 1000, 50}, nil),
	}
	z := []float64{
		// 250 → −0.5; retail; (100−50)/25 = 2.
		-1 + 0.5*-0.5 + 0.3*0 - 0.2*1 + 0.1*0 + 0.4*0 - 0.6*2,
		// missing → 100 → −0.8, indicator 1; unknown → other; 1000 → 500 → 18.
		-1 + 0.5*-0.8 + 0.3*1 - 0.2*0 + 0.1*0 + 0.4*1 - 0.6*18,
		// 5000 → 1000 → 1; mfg; 50 → 0.
		-1 + 0.5*1 + 0.3*0 - 0.2*0 + 0.1*1 + 0.4*0 - 0.6*0,
	}
	pd, score, err := back.ScoreColumns(cols)
	if err != nil {
		t.Fatal(err)
	}
	for i, zi := range z {
		p := 1 / (1 + math.Exp(-zi))
		wantPD := math.Round(p*1000) / 1000
		wantScore := math.Round(600 + 20/math.Ln2*(math.Log((1-p)/p)-math.Log(50)))
		if pd[i] != wantPD || score[i] != wantScore {
			t.Errorf("row %d: pd %v score %v, want %v and %v", i+1, pd[i], score[i], wantPD, wantScore)
		}
	}
	// The PMML export of the same document is well formed and names the model.
	doc, err := back.PMML("test")
	if err != nil || !strings.Contains(string(doc), `modelName="sme.logistic_regression v1"`) {
		t.Errorf("pmml: %v", err)
	}
	if _, err := back.PMML("test"); errors.Is(err, pmml.ErrFamily) {
		t.Error("a linear model has no PMML writer")
	}
}

func TestParseDocumentRejects(t *testing.T) {
	d, err := registry.FromRelease(release(t, "job-1"))
	if err != nil {
		t.Fatal(err)
	}
	d.Name, d.Version = "sme.logistic_regression", 1
	good, _ := json.Marshal(d)
	if _, err := registry.ParseDocument(good); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(string) string{
		"unknown key":   func(s string) string { return strings.Replace(s, `{"format"`, `{"extra":1,"format"`, 1) },
		"format":        func(s string) string { return strings.Replace(s, registry.DocumentFormat, "v0", 1) },
		"weights count": func(s string) string { return strings.Replace(s, `"weights":[0.5,`, `"weights":[`, 1) },
		"no family":     func(s string) string { return strings.Replace(s, `"linear":{`, `"linear_":{`, 1) },
		"trailing":      func(s string) string { return s + "{}" },
		"step": func(s string) string {
			return strings.Replace(s, `"probability_step":0.001`, `"probability_step":0`, 1)
		},
	} {
		if _, err := registry.ParseDocument([]byte(edit(string(good)))); !errors.Is(err, registry.ErrDocument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseDocument(f *testing.F) {
	d, err := registry.FromRelease(release(f, "job-1"))
	if err != nil {
		f.Fatal(err)
	}
	d.Name, d.Version = "sme.logistic_regression", 1
	good, _ := json.Marshal(d)
	f.Add(good)
	for _, r := range []registry.ReleaseInfo{treesRelease(f), scorecardRelease(f)} {
		d, err := registry.FromRelease(r)
		if err != nil {
			f.Fatal(err)
		}
		d.Name, d.Version = "sme."+r.Family, 1
		doc, _ := json.Marshal(d)
		f.Add(doc)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"insitu-model-v1","linear":{"weights":[1e400]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := registry.ParseDocument(data)
		if err != nil {
			return
		}
		if err := d.Check(); err != nil {
			t.Fatalf("a parsed document fails Check: %v", err)
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := registry.ParseDocument(again); err != nil {
			t.Fatalf("a parsed document does not read back: %v", err)
		}
	})
}
