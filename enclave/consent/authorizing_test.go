package consent_test

import (
	"slices"
	"testing"
	"time"

	"insitu/enclave/consent"
)

func TestAuthorizing(t *testing.T) {
	f := newFixture(t)
	ss := subjects(7)
	g := func(i int) consent.Grant { return grant(ss[i]) }
	// 0: current; 1: current with one item only; 2: other bank; 3: other purpose; 4: revoked;
	// 5: valid only from 2027; 6: no authorization.
	one := g(1)
	one.Items = []string{"tax_arrears_history"}
	other := g(2)
	other.Grantee = "bank-b"
	purpose := g(3)
	purpose.Purpose = consent.PurposeCreditApproval
	later := g(5)
	later.ValidFrom, later.ValidUntil = "2027-01-01", "2027-12-31"
	for _, gr := range []consent.Grant{g(0), one, other, purpose, g(4), later} {
		a, err := f.reg.Grant(ctx, "steward-1", gr)
		if err != nil {
			t.Fatal(err)
		}
		if gr.Identifier == ss[4] {
			f.clock.Set(time.Date(2026, 6, 2, 10, 0, 0, 0, cst))
			if _, err := f.reg.Revoke(ctx, "steward-1", a.ID, "withdrawn"); err != nil {
				t.Fatal(err)
			}
		}
	}
	at := time.Date(2026, 6, 10, 12, 0, 0, 0, cst)
	in := append([]string{ss[1]}, ss...) // ss[1] repeated
	kept, err := f.reg.Authorizing(ctx, query(at), slices.Values(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ss[1], ss[0]}; !slices.Equal(kept, want) {
		t.Errorf("kept %v, want %v", kept, want)
	}
	// Before the revocation, subject 4 still counts.
	kept, err = f.reg.Authorizing(ctx, query(time.Date(2026, 6, 1, 12, 0, 0, 0, cst)), slices.Values(ss))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ss[0], ss[1], ss[4]}; !slices.Equal(kept, want) {
		t.Errorf("before the revocation kept %v, want %v", kept, want)
	}
	if _, err := f.reg.Authorizing(ctx, consent.CohortQuery{IDType: "uscc", Grantee: "bank-a", Purpose: "fun", At: at}, slices.Values(ss)); err == nil {
		t.Error("an unknown purpose is accepted")
	}
}
