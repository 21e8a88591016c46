package scoring_test

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/registry"
	"insitu/enclave/scoring"
)

func wantRefusal(t *testing.T, what string, err error, code string) *scoring.Error {
	t.Helper()
	var e *scoring.Error
	if !errors.As(err, &e) || e.Code != code || !errors.Is(err, scoring.ErrRefused) {
		t.Fatalf("%s: %v, want refusal %s", what, err, code)
	}
	if e.Reason == "" {
		t.Fatalf("%s: a refusal without a reason", what)
	}
	return e
}

func countKind(t *testing.T, f *fixture, kind audit.Kind) (n int, last audit.Record) {
	t.Helper()
	recs, err := f.e.Audit.Records(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind == kind {
			n++
			last = r
		}
	}
	return n, last
}

func TestScoreAnswersAuthorizedSubjects(t *testing.T) {
	f := newFixture(t, 300, scoring.Options{})
	subjects := []string{f.subjects[0], f.subjects[1], f.subjects[50], strings.ToLower(f.subjects[2]), "not-an-id", f.subjects[100]}
	res, err := f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: f.model.ID, Purpose: purpose, Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || res.DatasetVersion != f.dm.Version || len(res.Results) != len(subjects) {
		t.Fatalf("response %+v", res)
	}
	for k, i := range map[int]int{0: 0, 1: 1, 3: 2} {
		r := res.Results[k]
		if r.Refused != "" || r.PD == nil || r.Score == nil {
			t.Fatalf("subject %d: %+v", k, r)
		}
		p := f.expected(t, i)
		if want := math.Round(p*1000) / 1000; *r.PD != want {
			t.Errorf("subject %d: pd %v, want %v", k, *r.PD, want)
		}
		if want := math.Round(600 + 20/math.Ln2*math.Log((1-p)/p/50)); *r.Score != want {
			t.Errorf("subject %d: score %v, want %v", k, *r.Score, want)
		}
	}
	for k, code := range map[int]string{2: scoring.CodeNotAuthorized, 4: scoring.CodeInvalid, 5: scoring.CodeNotAuthorized} {
		if r := res.Results[k]; r.Refused != code || r.PD != nil || r.Score != nil {
			t.Errorf("subject %d: %+v, want refused %s", k, r, code)
		}
	}
	// The audit record is written: counts, no identifier, no score.
	n, rec := countKind(t, f, scoring.KindScore)
	if n != 1 || rec.Seq != res.AuditSeq || rec.Actor != bankT {
		t.Fatalf("%d records, last %+v", n, rec)
	}
	for _, s := range subjects[:4] {
		if strings.Contains(string(rec.Payload), strings.ToUpper(s)) {
			t.Errorf("the audit record names a subject: %s", rec.Payload)
		}
	}
	if !strings.Contains(string(rec.Payload), `"scored":3`) {
		t.Errorf("payload %s", rec.Payload)
	}
	// Another purpose is not authorized.
	res, err = f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: f.model.ID, Purpose: consent.PurposePostLoanMonitoring, Subjects: subjects[:1]})
	if err != nil || res.Results[0].Refused != scoring.CodeNotAuthorized {
		t.Errorf("other purpose: %+v, %v", res, err)
	}
	// A subject whose authorization is revoked is refused from then on.
	if _, err := f.e.Consent.RevokeSubject(ctx, "steward-1", consent.Selector{IDType: "uscc", Identifier: f.subjects[0]}, "withdrawn"); err != nil {
		t.Fatal(err)
	}
	res, err = f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: f.model.ID, Purpose: purpose, Subjects: subjects[:2]})
	if err != nil || res.Results[0].Refused != scoring.CodeNotAuthorized || res.Results[1].Refused != "" {
		t.Errorf("after revoking the first subject's authorization: %+v, %v", res, err)
	}
}

func TestScoreRefusals(t *testing.T) {
	f := newFixture(t, 200, scoring.Options{ScoreRate: 1, ScoreBurst: 10})
	one := []string{f.subjects[0]}
	req := scoring.ScoreRequest{Model: f.model.ID, Purpose: purpose, Subjects: one}

	// Another bank's model is not found, as an unknown one.
	_, err := f.svc.Score(ctx, bankU, req)
	wantRefusal(t, "another bank's model", err, scoring.CodeNotFound)
	if !errors.Is(err, scoring.ErrNotFound) {
		t.Error("not_found does not wrap ErrNotFound")
	}
	_, err = f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: "job-none", Purpose: purpose, Subjects: one})
	wantRefusal(t, "unknown model", err, scoring.CodeNotFound)
	_, err = f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: f.model.ID, Purpose: "gossip", Subjects: one})
	wantRefusal(t, "unknown purpose", err, scoring.CodeInvalid)
	_, err = f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: f.model.ID, Purpose: purpose})
	wantRefusal(t, "no subjects", err, scoring.CodeInvalid)

	// The rate limit counts subjects: a burst of 10, then refused with a time to retry.
	for range 10 {
		if _, err := f.svc.Score(ctx, bankT, req); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.svc.Score(ctx, bankT, req)
	e := wantRefusal(t, "past the rate limit", err, scoring.CodeRateLimited)
	if !errors.Is(err, scoring.ErrRateLimited) || e.RetryAfter <= 0 {
		t.Errorf("rate limit: %v, retry after %v", err, e.RetryAfter)
	}

	// The stewards' minimum number of inputs.
	if err := f.e.Models.SetSetting(ctx, "steward-1", registry.SettingMinFeatures, 5); err != nil {
		t.Fatal(err)
	}
	svc := f.service(scoring.Options{})
	defer svc.Close()
	_, err = svc.Score(ctx, bankT, req)
	wantRefusal(t, "too few inputs", err, scoring.CodeTooFewFeatures)
	if err := f.e.Models.SetSetting(ctx, "steward-1", registry.SettingMinFeatures, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Score(ctx, bankT, req); err != nil {
		t.Fatal(err)
	}

	// A revoked model never scores again.
	if _, err := f.e.Models.Revoke(ctx, bankT, bankT, f.model.ID, "replaced"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Score(ctx, bankT, req)
	wantRefusal(t, "revoked model", err, scoring.CodeRevoked)
	if !errors.Is(err, scoring.ErrRevoked) {
		t.Error("revoked does not wrap ErrRevoked")
	}

	// Every request, refused or answered, is audited.
	n, _ := countKind(t, f, scoring.KindScore)
	if n != 4+10+1+2+1 {
		t.Errorf("%d score records", n)
	}
}

func TestGroupCommitConcurrentRequests(t *testing.T) {
	for _, group := range []bool{true, false} {
		f := newFixture(t, 150, scoring.Options{NoGroupCommit: !group})
		var wg sync.WaitGroup
		seqs := make(chan int64, 64)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 8 {
					res, err := f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: f.model.ID, Purpose: purpose, Subjects: f.subjects[(g+k)%20 : (g+k)%20+3]})
					if err != nil {
						t.Error(err)
						return
					}
					seqs <- res.AuditSeq
				}
			}()
		}
		wg.Wait()
		close(seqs)
		seen := map[int64]bool{}
		for s := range seqs {
			if seen[s] {
				t.Fatalf("group %v: two requests share audit record %d", group, s)
			}
			seen[s] = true
		}
		if n, _ := countKind(t, f, scoring.KindScore); n != 64 || len(seen) != 64 {
			t.Errorf("group %v: %d records for 64 requests", group, n)
		}
		if rep, err := f.e.VerifyAudit(ctx, nil); err != nil || rep.Err() != nil {
			t.Errorf("group %v: audit: %v %v", group, err, rep.Err())
		}
	}
}

func TestFeaturesFollowTheCurrentVersion(t *testing.T) {
	f := newFixture(t, 150, scoring.Options{VersionCheck: 1})
	req := scoring.ScoreRequest{Model: f.model.ID, Purpose: purpose, Subjects: f.subjects[:2]}
	res, err := f.svc.Score(ctx, bankT, req)
	if err != nil || res.DatasetVersion != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	f.ingest(t, filepath0(t, f))
	res, err = f.svc.Score(ctx, bankT, req)
	if err != nil || res.DatasetVersion != 2 {
		t.Fatalf("after a new version: %+v, %v", res, err)
	}
}
