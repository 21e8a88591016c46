package scoring_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"insitu/connectors/ident"
	"insitu/enclave/consent"
	"insitu/enclave/scoring"
)

// storedValue reads one subject's value of a column through the dataset, for the test's claims.
func storedFlag(t *testing.T, f *fixture, column string, subject string) (value, present bool) {
	t.Helper()
	res, err := f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: column, Subject: subject, Claim: "true", Purpose: purpose})
	if err != nil {
		t.Fatal(err)
	}
	switch res.Answer {
	case scoring.AnswerMatch:
		return true, true
	case scoring.AnswerNoMatch:
		return false, true
	}
	return false, false
}

func TestVerify(t *testing.T) {
	f := newFixture(t, 200, scoring.Options{MaxClaims: 2})
	const field = "innovation_evaluation.high_tech_enterprise"
	items := []string{"innovation_evaluation", "legal_rep_marital_status"}
	f.authorize(t, 30, bankT, purpose, items)

	// A claim and its opposite: exactly one matches, for a subject holding the value.
	var subj string
	var val bool
	for _, s := range f.subjects[:30] {
		v, ok := storedFlag(t, f, field, s)
		if ok {
			subj, val = s, v
			break
		}
	}
	if subj == "" {
		t.Fatal("no authorized subject holds the field")
	}
	claim := map[bool]string{true: "false", false: "true"}[val]
	res, err := f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: field, Subject: strings.ToLower(subj), Claim: claim, Purpose: purpose})
	if err != nil || res.Answer != scoring.AnswerNoMatch || res.Dataset != f.dm.Name {
		t.Fatalf("opposite claim: %+v, %v", res, err)
	}
	// The third question about the same field of the same subject is past the cap.
	_, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: field, Subject: subj, Claim: "true", Purpose: purpose})
	wantRefusal(t, "third claim", err, scoring.CodeRateLimited)

	// An enum field: an invalid claim value is refused, a valid one answered.
	_, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: "legal_rep_marital_status.marital_status", Subject: subj, Claim: "complicated", Purpose: purpose})
	wantRefusal(t, "enum value", err, scoring.CodeInvalid)
	res, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: "legal_rep_marital_status.marital_status", Subject: subj, Claim: "married", Purpose: purpose})
	if err != nil || (res.Answer != scoring.AnswerMatch && res.Answer != scoring.AnswerNoMatch && res.Answer != scoring.AnswerUnknown) {
		t.Fatalf("marital status: %+v, %v", res, err)
	}

	// Refusals: no authorization, another bank, an item not shared by verification, an identifier.
	_, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: field, Subject: f.subjects[100], Claim: "true", Purpose: purpose})
	wantRefusal(t, "unauthorized subject", err, scoring.CodeNotAuthorized)
	_, err = f.svc.Verify(ctx, bankU, scoring.VerifyRequest{Field: field, Subject: f.subjects[1], Claim: "true", Purpose: purpose})
	wantRefusal(t, "another bank", err, scoring.CodeNotAuthorized)
	_, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: f.model.Inputs[0], Subject: f.subjects[1], Claim: "1", Purpose: purpose})
	wantRefusal(t, "item not shared by verification", err, scoring.CodeNotVerifiable)
	_, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: "legal_rep_marital_status.resident_id", Subject: f.subjects[1], Claim: "x", Purpose: purpose})
	wantRefusal(t, "identifier field", err, scoring.CodeNotVerifiable)
	_, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: "nope.nope", Subject: f.subjects[1], Claim: "x", Purpose: purpose})
	wantRefusal(t, "unknown field", err, scoring.CodeInvalid)

	// An authorized subject the platform does not hold: unknown.
	other := ident.NewUSCC(rand.New(rand.NewPCG(1, 2)), "110000")
	if _, err := f.e.Consent.Grant(ctx, "steward-1", consent.Grant{IDType: ident.KindUSCC, Identifier: other, Grantee: bankT,
		Purpose: purpose, PurposeDetail: "test", Items: items, ValidFrom: "2020-01-01", ValidUntil: "2099-12-31",
		Evidence: "form-x.pdf#sha256=" + strings.Repeat("9", 64)}); err != nil {
		t.Fatal(err)
	}
	res, err = f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: field, Subject: other, Claim: "true", Purpose: purpose})
	if err != nil || res.Answer != scoring.AnswerUnknown {
		t.Fatalf("subject not held: %+v, %v", res, err)
	}

	// Audited, without the claim or the subject.
	n, rec := countKind(t, f, scoring.KindVerify)
	if n < 8 || strings.Contains(string(rec.Payload), other) || strings.Contains(string(rec.Payload), `"claim"`) {
		t.Errorf("%d records, last %s", n, rec.Payload)
	}
}

func TestVerifyRateLimit(t *testing.T) {
	f := newFixture(t, 100, scoring.Options{VerifyRate: 0.001, VerifyBurst: 2})
	f.authorize(t, 5, bankT, purpose, []string{"innovation_evaluation"})
	for i := range 2 {
		if _, err := f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: "innovation_evaluation.tech_sme", Subject: f.subjects[i], Claim: "true", Purpose: purpose}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.svc.Verify(ctx, bankT, scoring.VerifyRequest{Field: "innovation_evaluation.tech_sme", Subject: f.subjects[3], Claim: "true", Purpose: purpose})
	wantRefusal(t, "past the rate limit", err, scoring.CodeRateLimited)
}

func TestUnknownSubjectScore(t *testing.T) {
	f := newFixture(t, 100, scoring.Options{})
	other := ident.NewUSCC(rand.New(rand.NewPCG(3, 4)), "110000")
	if _, err := f.e.Consent.Grant(ctx, "steward-1", consent.Grant{IDType: ident.KindUSCC, Identifier: other, Grantee: bankT,
		Purpose: purpose, PurposeDetail: "test", Items: f.model.Items, ValidFrom: "2020-01-01", ValidUntil: "2099-12-31",
		Evidence: "form-y.pdf#sha256=" + strings.Repeat("8", 64)}); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: f.model.ID, Purpose: purpose, Subjects: []string{other}})
	if err != nil || res.Results[0].Refused != scoring.CodeUnknownSubject {
		t.Fatalf("%+v, %v", res, err)
	}
}

func TestMonitor(t *testing.T) {
	f := newFixture(t, 300, scoring.Options{MinPopulation: 50})
	f.authorize(t, 200, bankT, purpose, f.model.Items)
	// The same data ingested again: a second version with the same population, perfectly stable.
	f.ingest(t, filepath0(t, f))
	rep, err := f.svc.Monitor(ctx, bankT, scoring.MonitorRequest{Model: f.model.ID, Purpose: purpose})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Baseline != 1 || rep.Current != 2 || rep.Score.PSI != 0 || len(rep.Features) != len(f.model.Features) || len(rep.Score.Bins) < 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, fs := range rep.Features {
		if fs.PSI != 0 {
			t.Errorf("feature %s: psi %v on identical data", fs.Feature, fs.PSI)
		}
	}
	// Too few authorized subjects for another purpose: no report.
	_, err = f.svc.Monitor(ctx, bankT, scoring.MonitorRequest{Model: f.model.ID, Purpose: consent.PurposePreScreening})
	wantRefusal(t, "small population", err, scoring.CodeTooFewSubjects)
	// Another bank's model: not found; a steward ("") may ask.
	_, err = f.svc.Monitor(ctx, bankU, scoring.MonitorRequest{Model: f.model.ID})
	wantRefusal(t, "another bank", err, scoring.CodeNotFound)
	if _, err := f.svc.Monitor(ctx, "", scoring.MonitorRequest{Model: f.model.ID, Purpose: purpose, Baseline: 1, Current: 1}); err != nil {
		t.Fatal(err)
	}
	if n, _ := countKind(t, f, scoring.KindMonitor); n != 4 {
		t.Errorf("%d monitor records", n)
	}
}
