package consent_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/keys"
	"insitu/enclave/store"
	"insitu/enclave/store/storetest"
)

var ctx = context.Background()

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var (
	idOnce sync.Once
	encID  *keys.Identity
)

func enclaveID() *keys.Identity {
	idOnce.Do(func() {
		var err error
		if encID, err = keys.NewIdentity(keys.RoleEnclave, "enclave"); err != nil {
			panic(err)
		}
	})
	return encID
}

type fixture struct {
	db    *store.DB
	log   *audit.Log
	reg   *consent.Registry
	clock *clock
}

// cst is China Standard Time, the registry's default zone.
var cst = consent.ChinaStandardTime

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), store.FileName), audit.Migrations, consent.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2026, 6, 1, 10, 0, 0, 0, cst)}
	l := audit.New(db, enclaveID(), audit.Options{Now: c.Now})
	return &fixture{db: db, log: l, reg: consent.New(db, l, consent.Options{Now: c.Now}), clock: c}
}

// subjects returns n valid credit codes.
func subjects(n int) []string {
	r := rand.New(rand.NewPCG(11, uint64(n)))
	out := make([]string, n)
	for i := range out {
		out[i] = ident.NewUSCC(r, "350100")
	}
	return out
}

const evidence1 = "form-1.pdf#sha256=1111111111111111111111111111111111111111111111111111111111111111"

func grant(id string) consent.Grant {
	return consent.Grant{IDType: ident.KindUSCC, Identifier: id, Grantee: "bank-a", Purpose: consent.PurposeModelDevelopment,
		PurposeDetail: "joint modeling lab", Items: []string{"tax_arrears_history", "financial_filings", "legal_representative"},
		ValidFrom: "2026-01-01", ValidUntil: "2026-12-31", Evidence: evidence1}
}

func auditRecords(t *testing.T, f *fixture) []audit.Record {
	t.Helper()
	recs, err := f.log.Records(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestGrantListAndAudit(t *testing.T) {
	f := newFixture(t)
	s := subjects(1)[0]
	g := grant(strings.ToLower(s))
	g.Evidence = "form-1.pdf#sha256=" + strings.Repeat("AB", 32) // a digest given in upper case
	a, err := f.reg.Grant(ctx, "steward-1", g)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != 1 || a.Subject != ident.Mask(s) || a.Status != consent.StatusCurrent || a.GrantedBy != "steward-1" || a.Source != consent.SourceAPI {
		t.Errorf("authorization %+v", a)
	}
	if !slices.Equal(a.Items, []string{"legal_representative", "tax_arrears_history", "financial_filings"}) {
		t.Errorf("items %v, want catalog order", a.Items)
	}
	if a.EvidenceDigest != strings.Repeat("ab", 32) || a.Evidence != "form-1.pdf#sha256="+strings.Repeat("ab", 32) {
		t.Errorf("evidence %q digest %q", a.Evidence, a.EvidenceDigest)
	}
	for _, fl := range []consent.Filter{{Grantee: "bank-a"}, {IDType: ident.KindUSCC, Identifier: s}, {Status: consent.StatusCurrent}, {Purpose: consent.PurposeModelDevelopment}} {
		list, err := f.reg.List(ctx, fl)
		if err != nil || len(list) != 1 || list[0].ID != 1 {
			t.Errorf("List(%+v): %v, %v", fl, list, err)
		}
	}
	for _, fl := range []consent.Filter{{Grantee: "bank-b"}, {IDType: ident.KindUSCC, Identifier: subjects(2)[1]}, {Status: consent.StatusExpired}} {
		if list, err := f.reg.List(ctx, fl); err != nil || len(list) != 0 {
			t.Errorf("List(%+v): %v, %v", fl, list, err)
		}
	}
	if list, _ := f.reg.List(ctx, consent.Filter{At: time.Date(2027, 1, 1, 0, 0, 0, 0, cst)}); len(list) != 1 || list[0].Status != consent.StatusExpired {
		t.Errorf("status in 2027: %+v", list)
	}
	recs := auditRecords(t, f)
	if len(recs) != 1 || recs[0].Kind != audit.KindAuthorizationGrant || recs[0].Actor != "steward-1" || recs[0].Subject != "authorization/1" {
		t.Fatalf("audit records %+v", recs)
	}
	var p map[string]any
	json.Unmarshal(recs[0].Payload, &p)
	if p["evidence_sha256"] != strings.Repeat("ab", 32) || p["grantee"] != "bank-a" || p["added"] != 1.0 {
		t.Errorf("audit payload %s", recs[0].Payload)
	}
	if strings.Contains(string(recs[0].Payload), s) || strings.Contains(string(recs[0].Payload), s[4:14]) {
		t.Errorf("audit payload holds the identifier: %s", recs[0].Payload)
	}
}

func TestGrantRejects(t *testing.T) {
	f := newFixture(t)
	s := subjects(1)[0]
	person := "350102198005175841"
	for _, tc := range []struct {
		edit        func(*consent.Grant)
		field, rule string
	}{
		{func(g *consent.Grant) { g.IDType = "passport" }, "id_type", consent.RuleIDType},
		{func(g *consent.Grant) { g.Identifier = s[:17] + "?" }, "id", ident.RuleCharset},
		{func(g *consent.Grant) { g.IDType, g.Identifier = ident.KindResidentID, person[:17]+"2" }, "id", ident.RuleCheck},
		{func(g *consent.Grant) { g.Grantee = "Bank A" }, "grantee", consent.RuleGrantee},
		{func(g *consent.Grant) { g.Grantee = person }, "grantee", consent.RuleGrantee},
		{func(g *consent.Grant) { g.Purpose = "marketing" }, "purpose", consent.RulePurpose},
		{func(g *consent.Grant) { g.PurposeDetail = strings.Repeat("长", 501) }, "purpose_detail", consent.RuleText},
		{func(g *consent.Grant) { g.PurposeDetail = "a\x00b" }, "purpose_detail", consent.RuleText},
		{func(g *consent.Grant) { g.Items = nil }, "items", consent.RuleItems},
		{func(g *consent.Grant) { g.Items = []string{"water", "water"} }, "items", consent.RuleItems},
		{func(g *consent.Grant) { g.Items = []string{"credit_score"} }, "items", consent.RuleItems},
		{func(g *consent.Grant) { g.ValidFrom = "2026-1-1" }, "valid_from", consent.RuleDate},
		{func(g *consent.Grant) { g.ValidUntil = "2026-02-29" }, "valid_until", consent.RuleDate},
		{func(g *consent.Grant) { g.ValidUntil = "2025-12-31" }, "valid_until", consent.RuleValidity},
		{func(g *consent.Grant) { g.Evidence = "form-1.pdf" }, "evidence", consent.RuleEvidence},
		{func(g *consent.Grant) { g.Evidence = "sha256=" + strings.Repeat("1", 63) }, "evidence", consent.RuleEvidence},
	} {
		g := grant(s)
		tc.edit(&g)
		_, err := f.reg.Grant(ctx, "steward-1", g)
		var fe *consent.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, consent.ErrInvalid) || fe.Field != tc.field || fe.Rule != tc.rule {
			t.Errorf("%s/%s: %v", tc.field, tc.rule, err)
			continue
		}
		for _, id := range []string{s, person, person[:17] + "2"} {
			if strings.Contains(err.Error(), id) || strings.Contains(fe.Value, id) {
				t.Errorf("%s/%s: error shows an identifier: %v", tc.field, tc.rule, err)
			}
		}
	}
	if list, _ := f.reg.List(ctx, consent.Filter{}); len(list) != 0 || len(auditRecords(t, f)) != 0 {
		t.Errorf("refused grants were recorded")
	}
}

func TestGrantTwiceAndConflict(t *testing.T) {
	f := newFixture(t)
	s := subjects(1)[0]
	a, err := f.reg.Grant(ctx, "steward-1", grant(s))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.reg.Grant(ctx, "steward-2", grant(s))
	if err != nil || b.ID != a.ID || b.GrantedBy != "steward-1" {
		t.Errorf("same grant again: %+v, %v", b, err)
	}
	g := grant(s)
	g.Items = []string{"tax_arrears_history"}
	_, err = f.reg.Grant(ctx, "steward-1", g)
	var fe *consent.FieldError
	if !errors.As(err, &fe) || fe.Rule != consent.RuleConflict {
		t.Errorf("other terms on the same evidence: %v", err)
	}
	// Other evidence is another authorization.
	g.Evidence = "form-2.pdf#sha256=" + strings.Repeat("2", 64)
	if c, err := f.reg.Grant(ctx, "steward-1", g); err != nil || c.ID != 2 {
		t.Errorf("new evidence: %+v, %v", c, err)
	}
	if n := len(auditRecords(t, f)); n != 2 {
		t.Errorf("%d audit records, want 2", n)
	}
}

// failingAuditor makes the audit append fail, as a full disk would.
type failingAuditor struct{}

func (failingAuditor) AppendTx(context.Context, *sql.Tx, audit.Event) (audit.Record, error) {
	return audit.Record{}, errors.New("disk full")
}

func TestGrantAndItsAuditEventCommitTogether(t *testing.T) {
	f := newFixture(t)
	s := subjects(1)[0]
	reg := consent.New(f.db, failingAuditor{}, consent.Options{Now: f.clock.Now})
	if _, err := reg.Grant(ctx, "steward-1", grant(s)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("grant with a failing audit log: %v", err)
	}
	faulty := storetest.NewFaulty(f.db)
	reg = consent.New(faulty, audit.New(faulty, enclaveID(), audit.Options{Now: f.clock.Now}), consent.Options{Now: f.clock.Now})
	faulty.Fail(1, storetest.FailCommit)
	if _, err := reg.Grant(ctx, "steward-1", grant(s)); !errors.Is(err, storetest.ErrInjected) {
		t.Fatalf("grant with a failing commit: %v", err)
	}
	if list, _ := f.reg.List(ctx, consent.Filter{}); len(list) != 0 || len(auditRecords(t, f)) != 0 {
		t.Fatalf("a failed grant left %d authorizations and %d audit records", len(list), len(auditRecords(t, f)))
	}
	if _, err := reg.Grant(ctx, "steward-1", grant(s)); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.reg.List(ctx, consent.Filter{}); len(list) != 1 || len(auditRecords(t, f)) != 1 {
		t.Fatalf("%d authorizations and %d audit records after a grant", len(list), len(auditRecords(t, f)))
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t)
	ss := subjects(2)
	a, _ := f.reg.Grant(ctx, "steward-1", grant(ss[0]))
	f.clock.Set(time.Date(2026, 6, 15, 9, 30, 0, 0, cst))
	const reason = "the enterprise withdrew its authorization by letter of 2026-06-14"
	r, err := f.reg.Revoke(ctx, "steward-2", a.ID, reason)
	if err != nil {
		t.Fatal(err)
	}
	if r.Revocation == nil || r.Revocation.By != "steward-2" || r.Revocation.Reason != reason || !r.Revocation.At.Equal(f.clock.Now()) || r.Status != consent.StatusRevoked {
		t.Errorf("revoked authorization %+v %+v", r, r.Revocation)
	}
	// The authorization is still there, with its revocation.
	list, _ := f.reg.List(ctx, consent.Filter{})
	if len(list) != 1 || list[0].Revocation == nil {
		t.Errorf("list after revocation %+v", list)
	}
	// Before the revocation it was current.
	if list, _ := f.reg.List(ctx, consent.Filter{At: time.Date(2026, 6, 15, 9, 0, 0, 0, cst)}); list[0].Status != consent.StatusCurrent {
		t.Errorf("status before the revocation %s", list[0].Status)
	}
	if _, err := f.reg.Revoke(ctx, "steward-2", a.ID, reason); !errors.Is(err, consent.ErrAlreadyRevoked) {
		t.Errorf("second revocation: %v", err)
	}
	if _, err := f.reg.Revoke(ctx, "steward-2", 99, reason); !errors.Is(err, consent.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := f.reg.Revoke(ctx, "steward-2", a.ID, " "); !errors.Is(err, consent.ErrInvalid) {
		t.Errorf("empty reason: %v", err)
	}
	recs := auditRecords(t, f)
	if len(recs) != 2 || recs[1].Kind != audit.KindAuthorizationRevoke || recs[1].Subject != "authorization/1" ||
		strings.Contains(string(recs[1].Payload), "withdrew") || !strings.Contains(string(recs[1].Payload), `"reason_sha256":"`) {
		t.Errorf("audit records %+v", recs)
	}
	// Facts are not edited in place.
	for _, q := range []string{`UPDATE consent_authorizations SET valid_until = '2099-12-31'`, `DELETE FROM consent_revocations`, `DELETE FROM consent_authorizations`} {
		if err := f.db.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(q); return err }); err == nil {
			t.Errorf("%s succeeded", q)
		}
	}

	// RevokeSubject revokes what is left of one subject's authorizations for a bank.
	f.reg.Grant(ctx, "steward-1", grant(ss[1]))
	g := grant(ss[1])
	g.Purpose, g.Evidence = consent.PurposeCreditApproval, "sha256="+strings.Repeat("3", 64)
	f.reg.Grant(ctx, "steward-1", g)
	g.Grantee = "bank-b"
	f.reg.Grant(ctx, "steward-1", g)
	n, err := f.reg.RevokeSubject(ctx, "steward-1", consent.Selector{IDType: ident.KindUSCC, Identifier: ss[1], Grantee: "bank-a"}, "withdrawn")
	if err != nil || n != 2 {
		t.Errorf("RevokeSubject: %d, %v", n, err)
	}
	if n, err := f.reg.RevokeSubject(ctx, "steward-1", consent.Selector{IDType: ident.KindUSCC, Identifier: ss[1], Grantee: "bank-a"}, "withdrawn"); err != nil || n != 0 {
		t.Errorf("RevokeSubject again: %d, %v", n, err)
	}
	if list, _ := f.reg.List(ctx, consent.Filter{Grantee: "bank-b", Status: consent.StatusCurrent}); len(list) != 1 {
		t.Errorf("bank-b's authorization was revoked too: %+v", list)
	}
}

func TestCounts(t *testing.T) {
	f := newFixture(t)
	ss := subjects(4)
	f.reg.Grant(ctx, "s", grant(ss[0]))
	g := grant(ss[0])
	g.Evidence, g.ValidFrom, g.ValidUntil = "sha256="+strings.Repeat("5", 64), "2024-01-01", "2025-12-31"
	f.reg.Grant(ctx, "s", g) // expired, same subject
	a, _ := f.reg.Grant(ctx, "s", grant(ss[1]))
	f.reg.Revoke(ctx, "s", a.ID, "withdrawn")
	g = grant(ss[2])
	g.ValidFrom = "2026-09-01"
	f.reg.Grant(ctx, "s", g)
	g = grant(ss[3])
	g.Grantee = "bank-b"
	f.reg.Grant(ctx, "s", g)
	counts, err := f.reg.Counts(ctx, "", f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []consent.BankCounts{
		{Grantee: "bank-a", Authorizations: 4, Subjects: 3, CurrentSubjects: 1, Current: 1, NotYetValid: 1, Expired: 1, Revoked: 1},
		{Grantee: "bank-b", Authorizations: 1, Subjects: 1, CurrentSubjects: 1, Current: 1},
	}
	if !slices.Equal(counts, want) {
		t.Errorf("counts\n got %+v\nwant %+v", counts, want)
	}
	if counts, _ := f.reg.Counts(ctx, "bank-b", f.clock.Now()); len(counts) != 1 || counts[0] != want[1] {
		t.Errorf("counts of bank-b %+v", counts)
	}
}
