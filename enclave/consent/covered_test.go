package consent_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/consent"
)

// TestCoveredAgreesWithCohort grants every kind of near miss and checks that Covered keeps exactly
// the subjects Cohort keeps, for items needing authorization and for items that need none.
func TestCoveredAgreesWithCohort(t *testing.T) {
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
	mk(ss[0], nil)
	mk(ss[1], func(g *consent.Grant) { g.Items = needing[:2] })
	mk(ss[2], func(g *consent.Grant) { g.ValidFrom = "2026-07-01" })
	mk(ss[3], func(g *consent.Grant) { g.ValidFrom, g.ValidUntil = "2024-01-01", "2025-12-31" })
	mk(ss[4], nil)
	mk(ss[5], func(g *consent.Grant) { g.Purpose = consent.PurposeCreditApproval })
	mk(ss[6], func(g *consent.Grant) { g.Grantee = "bank-b" })
	mk(ss[8], func(g *consent.Grant) { g.Evidence = fmt.Sprintf("sha256=%064d", 8) })
	if n, err := f.reg.RevokeSubject(ctx, "steward-1", consent.Selector{IDType: ident.KindUSCC, Identifier: ss[4]}, "withdrawn"); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	at := time.Date(2026, 6, 15, 0, 0, 0, 0, cst)
	for _, items := range [][]string{needing, needing[:1], free} {
		kept, _, err := f.reg.Cohort(ctx, query(at, items...), slices.Values(ss))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.reg.Covered(ctx, query(at, items...), ss)
		if err != nil {
			t.Fatal(err)
		}
		var gotKept []string
		for _, s := range ss {
			if got[s] {
				gotKept = append(gotKept, s)
			}
		}
		if !slices.Equal(gotKept, kept) {
			t.Errorf("items %v: Covered keeps %v, Cohort %v", items, gotKept, kept)
		}
	}
	if kept, _ := f.reg.Covered(ctx, query(at, needing...), ss); !kept[ss[0]] || kept[ss[7]] || kept[ss[4]] {
		t.Errorf("covered %v", kept)
	}
	if _, err := f.reg.Covered(ctx, consent.CohortQuery{IDType: "passport", Grantee: "bank-a", Purpose: consent.PurposeModelDevelopment, At: at}, ss); err == nil {
		t.Error("an unknown identifier type is accepted")
	}
}
