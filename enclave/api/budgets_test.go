package api_test

import (
	"context"
	"testing"

	"insitu/enclave/aggregate"
	"insitu/enclave/api"
	"insitu/enclave/api/client"
)

// TestBudgetsOverTheAPI: a steward sets a bank's privacy budget on a dataset and the minimum cell
// count through the API, sees them listed with what was spent, and an out-of-range setting is
// refused with the rule; a bank may do neither.
func TestBudgetsOverTheAPI(t *testing.T) {
	f := newFixture(t, api.Options{})
	ctx := context.Background()
	steward, bank := f.client(t, asSteward), f.client(t, asBank)
	bankName := f.ids[asBank].Name

	got, err := steward.Budgets(ctx, bankName, f.ds.Name)
	if err != nil || len(got.Budgets) != 1 || !got.Budgets[0].Default || got.Budgets[0].Epsilon != aggregate.DefaultTotalEpsilon ||
		got.MinCount != aggregate.DefaultMinCount {
		t.Fatalf("budgets before any setting: %+v, %v", got, err)
	}
	b, err := steward.SetBudget(ctx, bankName, f.ds.Name, 6)
	if err != nil || b.Default || b.Epsilon != 6 || b.Remaining != 6 || b.Spent != 0 || b.Delta != aggregate.DefaultDelta {
		t.Fatalf("SetBudget: %+v, %v", b, err)
	}
	if err := steward.SetMinCount(ctx, 25); err != nil {
		t.Fatal(err)
	}
	got, err = steward.Budgets(ctx, "", "")
	if err != nil || len(got.Budgets) != 1 || got.Budgets[0].Bank != bankName || got.Budgets[0].Epsilon != 6 || got.MinCount != 25 {
		t.Fatalf("budgets after the settings: %+v, %v", got, err)
	}
	if a, err := f.e.Privacy.Account(ctx, bankName, f.ds.Name); err != nil || a.Epsilon != 6 {
		t.Fatalf("the ledger's account: %+v, %v", a, err)
	}
	_, err = steward.SetBudget(ctx, bankName, f.ds.Name, -1)
	wantErr(t, "a negative budget", err, client.ErrInvalid)
	wantErr(t, "a minimum cell count of 0", steward.SetMinCount(ctx, 0), client.ErrInvalid)
	_, err = bank.SetBudget(ctx, bankName, f.ds.Name, 100)
	wantErr(t, "a bank raises its own budget", err, client.ErrForbidden)
	_, err = bank.Budgets(ctx, bankName, "")
	wantErr(t, "a bank lists budgets", err, client.ErrForbidden)
}
