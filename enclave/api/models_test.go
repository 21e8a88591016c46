package api_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/registry"
	"insitu/enclave/scoring"
	"insitu/modeling/features"
	"insitu/modeling/pmml"
)

// servedModel is a model registered for the tests: its id, its raw table and its document.
type servedModel struct {
	id    string
	table *cohort.Table
	doc   *registry.Document
}

var modelSeq int

// registerModel registers, as a release would, a logistic regression of bank on four numeric
// columns of the fixture's dataset with bounded transforms fitted on the whole version.
func registerModel(t *testing.T, f *fixture, bank string) servedModel {
	t.Helper()
	ctx := context.Background()
	var cols []dataset.Column
	var spec features.Spec
	items := map[string]bool{}
	for _, c := range cohort.FeatureColumns(f.ds) {
		if c.Item == "custom" || (c.CatalogType != "int" && c.CatalogType != "float") {
			continue
		}
		cols = append(cols, c)
		spec.Columns = append(spec.Columns, features.Bounded(c.Name, 0.01, 0.99))
		items[c.Item] = true
		if len(cols) == 4 {
			break
		}
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	sc, err := f.e.Datasets.Scan(ctx, f.ds.Name, f.ds.Version, dataset.ScanOptions{Columns: names})
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cohort.CollectAll(ctx, sc, cols)
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}
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
		w[j] = 0.5 - 0.25*float64(j)
	}
	modelSeq++
	id := fmt.Sprintf("job-model-%d", modelSeq)
	doc := &registry.Document{Format: registry.DocumentFormat, ID: id, Bank: bank, Family: registry.FamilyLogisticRegression,
		Purpose: string(consent.PurposeCreditApproval), Dataset: f.ds.Name, DatasetVersion: f.ds.Version, Items: itemList,
		Inputs: names, Features: fitted.Names(), Transforms: fitted, Linear: &pmml.Linear{Weights: w, Intercept: -1},
		Points: pmml.DefaultPoints, ProbabilityStep: registry.DefaultProbabilityStep, Release: registry.Release{Job: id}}
	if err := f.e.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := f.e.Models.RegisterTx(ctx, tx, doc, &gate.Receipt{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return servedModel{id: id, table: tbl, doc: doc}
}

var grantSeq int

// grantFor records an authorization of bank for purpose and items to subject, valid for years.
func grantFor(t *testing.T, f *fixture, subject, bank string, p consent.Purpose, items []string) {
	t.Helper()
	grantSeq++
	if _, err := f.e.Consent.Grant(context.Background(), "steward-1", consent.Grant{IDType: ident.KindUSCC, Identifier: subject,
		Grantee: bank, Purpose: p, PurposeDetail: "online use", Items: items, ValidFrom: "2020-01-01", ValidUntil: "2099-12-31",
		Evidence: fmt.Sprintf("form-%d.pdf#sha256=%064x", grantSeq, grantSeq)}); err != nil {
		t.Fatal(err)
	}
}

// TestModelsOverTheAPI is the bank's use of a released model over the API: list, show, export as
// JSON and PMML (the JSON document scores a row as the enclave does), score one and a batch,
// verify a claim, and the refusals with their reasons: no authorization, another bank's model,
// past the rate limit, a revoked model.
func TestModelsOverTheAPI(t *testing.T) {
	f := newFixture(t, api.Options{Scoring: scoring.Options{ScoreRate: 0.001, ScoreBurst: 12}})
	ctx := context.Background()
	bankName := f.ids[asBank].Name
	sm := registerModel(t, f, bankName)
	bankA, bankB, steward := f.client(t, asBank), f.client(t, asOtherBank), f.client(t, asSteward)
	subj := sm.table.Subjects
	for _, s := range subj[:5] {
		grantFor(t, f, s, bankName, consent.PurposeCreditApproval, append(append([]string(nil), sm.doc.Items...), "innovation_evaluation"))
	}

	ms, err := bankA.ListModels(ctx, "", false)
	if err != nil || len(ms) != 1 || ms[0].ID != sm.id || ms[0].Version != 1 {
		t.Fatalf("bank A's models: %+v, %v", ms, err)
	}
	if ms, err := bankB.ListModels(ctx, "", false); err != nil || len(ms) != 0 {
		t.Fatalf("bank B lists %d models, %v", len(ms), err)
	}
	_, err = bankB.Model(ctx, sm.id)
	wantErr(t, "bank B shows A's model", err, client.ErrNotFound)
	if info, err := steward.ModelInfo(ctx, sm.id); err != nil || info.Bank != bankName || info.Features != len(sm.doc.Features) {
		t.Fatalf("steward's view: %+v, %v", info, err)
	}
	m, err := bankA.Model(ctx, sm.id)
	if err != nil || m.Linear == nil || len(m.Linear.Weights) != len(sm.doc.Features) {
		t.Fatalf("bank A's model: %v", err)
	}

	raw, err := bankA.ExportModel(ctx, sm.id, "json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := registry.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	xml, err := bankA.ExportModel(ctx, sm.id, "pmml")
	if err != nil || !strings.Contains(string(xml), `<RegressionModel`) || !strings.Contains(string(xml), `normalizationMethod="logit"`) {
		t.Fatalf("pmml export: %v", err)
	}
	_, err = bankB.ExportModel(ctx, sm.id, "pmml")
	wantErr(t, "bank B exports A's model", err, client.ErrNotFound)

	// One subject, then a batch with one unauthorized subject.
	res, err := bankA.Score(ctx, scoring.ScoreRequest{Model: sm.id, Purpose: consent.PurposeCreditApproval, Subjects: subj[:1]})
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := sm.table.Rows([]int{0})
	pds, scores, err := doc.ScoreColumns(cols)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Results[0]; r.PD == nil || *r.PD != pds[0] || *r.Score != scores[0] || math.IsNaN(*r.PD) {
		t.Fatalf("served %+v, the exported document gives %v and %v", r, pds[0], scores[0])
	}
	// The batch: the five granted above and three without a covering authorization (the synthetic
	// authorizations cover some subjects already: pick others).
	q := consent.CohortQuery{IDType: ident.KindUSCC, Grantee: bankName, Purpose: consent.PurposeCreditApproval, Items: sm.doc.Items, At: time.Now()}
	cov, err := f.e.Consent.Covered(ctx, q, subj)
	if err != nil {
		t.Fatal(err)
	}
	batch := append([]string(nil), subj[:5]...)
	for _, s := range subj[5:] {
		if !cov[s] && len(batch) < 8 {
			batch = append(batch, s)
		}
	}
	res, err = bankA.Score(ctx, scoring.ScoreRequest{Model: sm.id, Purpose: consent.PurposeCreditApproval, Subjects: batch})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Results {
		if (i < 5) != (r.Refused == "") || (i >= 5 && r.Refused != scoring.CodeNotAuthorized) {
			t.Errorf("batch subject %d: %+v", i, r)
		}
	}
	_, err = bankB.Score(ctx, scoring.ScoreRequest{Model: sm.id, Purpose: consent.PurposeCreditApproval, Subjects: subj[:1]})
	wantErr(t, "bank B scores with A's model", err, client.ErrNotFound)
	if client.Refusal(err) != scoring.CodeNotFound {
		t.Errorf("refusal %q", client.Refusal(err))
	}
	_, err = steward.Score(ctx, scoring.ScoreRequest{Model: sm.id, Subjects: subj[:1]})
	wantErr(t, "a steward scores", err, client.ErrForbidden)

	// Verification: answered for the authorized subject, refused for another bank.
	vr, err := bankA.Verify(ctx, scoring.VerifyRequest{Field: "innovation_evaluation.high_tech_enterprise", Subject: subj[0], Claim: "true", Purpose: consent.PurposeCreditApproval})
	if err != nil || (vr.Answer != scoring.AnswerMatch && vr.Answer != scoring.AnswerNoMatch && vr.Answer != scoring.AnswerUnknown) {
		t.Fatalf("verify: %+v, %v", vr, err)
	}
	_, err = bankB.Verify(ctx, scoring.VerifyRequest{Field: "innovation_evaluation.high_tech_enterprise", Subject: subj[0], Claim: "true", Purpose: consent.PurposeCreditApproval})
	wantErr(t, "bank B verifies", err, client.ErrForbidden)
	if client.Refusal(err) != scoring.CodeNotAuthorized {
		t.Errorf("refusal %q", client.Refusal(err))
	}

	// 1 + 8 subjects scored so far of a burst of 12: a batch of 4 is past the limit.
	_, err = bankA.Score(ctx, scoring.ScoreRequest{Model: sm.id, Purpose: consent.PurposeCreditApproval, Subjects: subj[:4]})
	wantErr(t, "past the rate limit", err, client.ErrRateLimited)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 429 {
		t.Errorf("rate limit answer %v", err)
	}

	// Revoked: never scores again.
	_, err = bankB.RevokeModel(ctx, sm.id, "not mine")
	wantErr(t, "bank B revokes", err, client.ErrNotFound)
	if info, err := bankA.RevokeModel(ctx, sm.id, "superseded"); err != nil || info.Revocation == nil {
		t.Fatalf("revoke: %+v, %v", info, err)
	}
	_, err = bankA.Score(ctx, scoring.ScoreRequest{Model: sm.id, Purpose: consent.PurposeCreditApproval, Subjects: subj[:1]})
	wantErr(t, "revoked model", err, client.ErrConflict)
	if client.Refusal(err) != scoring.CodeRevoked {
		t.Errorf("refusal %q", client.Refusal(err))
	}
	if ms, _ := bankA.ListModels(ctx, "", true); len(ms) != 0 {
		t.Errorf("%d active models after the revocation", len(ms))
	}
	if st, err := steward.SetServingSetting(ctx, registry.SettingMinFeatures, 4); err != nil || st.MinFeatures != 4 {
		t.Fatalf("serving setting: %+v, %v", st, err)
	}
}
