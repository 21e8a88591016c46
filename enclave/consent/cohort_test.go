package consent_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/enclave/consent"
)

// needing are items that need authorization; free are items that do not (catalog.Default()).
var (
	needing = []string{"tax_arrears_history", "financial_filings", "legal_representative"}
	free    = []string{"dishonest_judgment_debtors", "water"}
)

func query(at time.Time, items ...string) consent.CohortQuery {
	return consent.CohortQuery{IDType: ident.KindUSCC, Grantee: "bank-a", Purpose: consent.PurposeModelDevelopment, Items: items, At: at}
}

func cohort(t *testing.T, f *fixture, q consent.CohortQuery, ss []string) ([]string, map[consent.Reason]int) {
	t.Helper()
	kept, lost, err := f.reg.Cohort(ctx, q, slices.Values(ss))
	if err != nil {
		t.Fatal(err)
	}
	return kept, lost
}

func TestCohortRevokedSubjectLeavesTheNextCohort(t *testing.T) {
	f := newFixture(t)
	ss := subjects(3)
	var revokeID int64
	for i, s := range ss {
		a, err := f.reg.Grant(ctx, "steward-1", grant(s))
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			revokeID = a.ID
		}
	}
	run1 := time.Date(2026, 6, 10, 12, 0, 0, 0, cst)
	if kept, lost := cohort(t, f, query(run1, needing...), ss); !slices.Equal(kept, ss) || len(lost) != 0 {
		t.Fatalf("before revocation: kept %d, lost %v", len(kept), lost)
	}
	f.clock.Set(time.Date(2026, 6, 11, 8, 0, 0, 0, cst))
	if _, err := f.reg.Revoke(ctx, "steward-1", revokeID, "withdrawn by the enterprise"); err != nil {
		t.Fatal(err)
	}
	run2 := time.Date(2026, 6, 12, 12, 0, 0, 0, cst)
	kept, lost := cohort(t, f, query(run2, needing...), ss)
	if want := []string{ss[0], ss[2]}; !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	if !maps.Equal(lost, map[consent.Reason]int{consent.ReasonRevoked: 1}) {
		t.Errorf("lost %v", lost)
	}
	// What the bank may learn is the cohort's size: it does not depend on which subject left.
	f2 := newFixture(t)
	for i, s := range ss {
		a, _ := f2.reg.Grant(ctx, "steward-1", grant(s))
		if i == 0 {
			f2.reg.Revoke(ctx, "steward-1", a.ID, "withdrawn by the enterprise")
		}
	}
	kept2, lost2 := cohort(t, f2, query(run2, needing...), ss)
	if len(kept2) != len(kept) || !maps.Equal(lost2, lost) {
		t.Errorf("another subject revoked gives %d kept and %v, want the same counts as %d and %v", len(kept2), lost2, len(kept), lost)
	}
	// A job that ran before the revocation is judged as of its time.
	if kept, _ := cohort(t, f, query(run1, needing...), ss); len(kept) != 3 {
		t.Errorf("cohort as of before the revocation keeps %d", len(kept))
	}
}

func TestCohortValidityBoundaries(t *testing.T) {
	f := newFixture(t)
	s := subjects(1)
	f.reg.Grant(ctx, "steward-1", grant(s[0])) // 2026-01-01 to 2026-12-31, China Standard Time
	for _, tc := range []struct {
		at   time.Time
		kept bool
		why  consent.Reason
	}{
		{time.Date(2025, 12, 31, 23, 59, 59, 0, cst), false, consent.ReasonNotYetValid},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, cst), true, ""},
		{time.Date(2025, 12, 31, 16, 0, 0, 0, time.UTC), true, ""}, // 2026-01-01 00:00 in Beijing
		{time.Date(2026, 12, 31, 23, 59, 59, 999999999, cst), true, ""},
		{time.Date(2026, 12, 31, 15, 59, 59, 0, time.UTC), true, ""},
		{time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC), false, consent.ReasonExpired}, // 2027-01-01 00:00 in Beijing
		{time.Date(2027, 1, 1, 0, 0, 0, 0, cst), false, consent.ReasonExpired},
	} {
		kept, lost := cohort(t, f, query(tc.at, needing...), s)
		if (len(kept) == 1) != tc.kept || (!tc.kept && lost[tc.why] != 1) {
			t.Errorf("at %v: kept %d, lost %v; want kept %v (%s)", tc.at, len(kept), lost, tc.kept, tc.why)
		}
	}
}

func TestCohortItemsWithoutAuthorization(t *testing.T) {
	f := newFixture(t)
	ss := subjects(4)
	g := grant(ss[0])
	g.Items = []string{"tax_arrears_history"}
	f.reg.Grant(ctx, "steward-1", g)
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, cst)
	// Items that need no authorization keep every subject, with or without one.
	if kept, lost := cohort(t, f, query(at, free...), ss); !slices.Equal(kept, ss) || len(lost) != 0 {
		t.Errorf("free items: kept %d, lost %v", len(kept), lost)
	}
	// Mixed: only the items needing authorization must be covered.
	if kept, lost := cohort(t, f, query(at, "tax_arrears_history", "water", "dishonest_judgment_debtors"), ss); !slices.Equal(kept, ss[:1]) ||
		!maps.Equal(lost, map[consent.Reason]int{consent.ReasonNoAuthorization: 3}) {
		t.Errorf("mixed items: kept %d, lost %v", len(kept), lost)
	}
	if kept, lost := cohort(t, f, query(at, "tax_arrears_history", "financial_filings", "water"), ss); len(kept) != 0 || lost[consent.ReasonMissingItems] != 1 {
		t.Errorf("uncovered item: kept %d, lost %v", len(kept), lost)
	}
	need, err := consent.NeedingAuthorization(catalog.Default(), []string{"water", "financial_filings", "legal_representative", "dishonest_judgment_debtors"})
	if err != nil || !slices.Equal(need, []string{"legal_representative", "financial_filings"}) {
		t.Errorf("NeedingAuthorization: %v, %v", need, err)
	}
}

func TestCohortReasons(t *testing.T) {
	f := newFixture(t)
	ss := subjects(9)
	mk := func(s string, edit func(*consent.Grant)) {
		g := grant(s)
		if edit != nil {
			edit(&g)
		}
		if _, err := f.reg.Grant(ctx, "steward-1", g); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(n int) string { return fmt.Sprintf("sha256=%064d", n) }
	mk(ss[0], nil)
	mk(ss[1], func(g *consent.Grant) { g.Items = needing[:2] })
	mk(ss[2], func(g *consent.Grant) { g.ValidFrom = "2026-07-01" })
	mk(ss[3], func(g *consent.Grant) { g.ValidFrom, g.ValidUntil = "2024-01-01", "2025-12-31" })
	mk(ss[4], nil)
	mk(ss[5], func(g *consent.Grant) { g.Purpose = consent.PurposeCreditApproval })
	mk(ss[6], func(g *consent.Grant) { g.Grantee = "bank-b" })
	// ss[7] has none. ss[8] has an expired one, a revoked one and a current one lacking an item:
	// the closest, missing_items, counts.
	mk(ss[8], func(g *consent.Grant) { g.ValidFrom, g.ValidUntil, g.Evidence = "2024-01-01", "2025-12-31", ev(1) })
	mk(ss[8], func(g *consent.Grant) { g.Evidence = ev(2) })
	mk(ss[8], func(g *consent.Grant) { g.Items, g.Evidence = needing[1:], ev(3) })
	if n, err := f.reg.RevokeSubject(ctx, "steward-1", consent.Selector{IDType: ident.KindUSCC, Identifier: ss[4]}, "withdrawn"); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	list, _ := f.reg.List(ctx, consent.Filter{IDType: ident.KindUSCC, Identifier: ss[8]})
	for _, a := range list {
		if a.Evidence == ev(2) {
			if _, err := f.reg.Revoke(ctx, "steward-1", a.ID, "withdrawn"); err != nil {
				t.Fatal(err)
			}
		}
	}
	at := time.Date(2026, 6, 15, 0, 0, 0, 0, cst)
	input := append(slices.Clone(ss), ss[0], ss[7]) // repeated subjects count once
	kept, lost, err := f.reg.Cohort(ctx, query(at, needing...), slices.Values(input))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kept, ss[:1]) {
		t.Errorf("kept %v", kept)
	}
	want := map[consent.Reason]int{consent.ReasonMissingItems: 2, consent.ReasonNotYetValid: 1, consent.ReasonExpired: 1,
		consent.ReasonRevoked: 1, consent.ReasonOtherPurpose: 1, consent.ReasonOtherBank: 1, consent.ReasonNoAuthorization: 1}
	if !maps.Equal(lost, want) {
		t.Errorf("lost %v, want %v", lost, want)
	}
	// The lost counts name no subject.
	for r := range lost {
		for _, s := range ss {
			if strings.Contains(string(r), s) {
				t.Fatal("a reason names a subject")
			}
		}
	}
}

func TestCohortRejectsBadQueries(t *testing.T) {
	f := newFixture(t)
	at := time.Date(2026, 6, 15, 0, 0, 0, 0, cst)
	for name, q := range map[string]consent.CohortQuery{
		"id type": {IDType: "passport", Grantee: "bank-a", Purpose: consent.PurposeModelDevelopment, At: at},
		"grantee": {IDType: ident.KindUSCC, Grantee: "", Purpose: consent.PurposeModelDevelopment, At: at},
		"purpose": {IDType: ident.KindUSCC, Grantee: "bank-a", Purpose: "marketing", At: at},
		"items":   {IDType: ident.KindUSCC, Grantee: "bank-a", Purpose: consent.PurposeModelDevelopment, Items: []string{"nope"}, At: at},
		"time":    {IDType: ident.KindUSCC, Grantee: "bank-a", Purpose: consent.PurposeModelDevelopment},
	} {
		if _, _, err := f.reg.Cohort(ctx, q, slices.Values(subjects(1))); !errors.Is(err, consent.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func BenchmarkCohort(b *testing.B) {
	for _, n := range []int{100000} {
		b.Run(fmt.Sprintf("subjects=%d", n), func(b *testing.B) {
			f := newFixture(b)
			ss := subjects(n)
			// Nine in ten subjects have authorizations; a few for other banks, expired or missing an item.
			var csv strings.Builder
			csv.WriteString(strings.Join(consent.Header, ",") + "\n")
			for i, s := range ss {
				if i%10 == 9 {
					continue
				}
				grantee, until, items := "bank-a", "2027-12-31", strings.Join(needing, ";")
				switch i % 10 {
				case 3:
					grantee = "bank-b"
				case 5:
					until = "2025-12-31"
				case 7:
					items = needing[0]
				}
				fmt.Fprintf(&csv, "uscc,%s,%s,model_development,joint modeling lab,%s,2025-01-01,%s,auth-%06d.pdf#sha256=%064x\n", s, grantee, items, until, i, i)
			}
			res, err := f.reg.Import(ctx, "steward-1", "bench.csv", strings.NewReader(csv.String()))
			if err != nil {
				b.Fatal(err)
			}
			q := query(time.Date(2026, 6, 30, 12, 0, 0, 0, cst), append(slices.Clone(needing), free...)...)
			b.ResetTimer()
			for b.Loop() {
				kept, lost, err := f.reg.Cohort(ctx, q, slices.Values(ss))
				if err != nil || len(kept) != n*6/10 || lost[consent.ReasonNoAuthorization] != n/10 {
					b.Fatalf("kept %d of %d (%d imported), lost %v, %v", len(kept), n, res.Added, lost, err)
				}
			}
		})
	}
}
