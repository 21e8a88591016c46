package aggregate

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"insitu/enclave/audit"

	"insitu/plugins/sdk"
)

func TestSetBudgetDelta(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t)
	for _, d := range []float64{-1e-6, 2e-5, math.NaN(), math.Inf(1)} {
		if err := l.SetBudgetDelta(ctx, "steward-1", "bank-a", "ds", 1, d); !errors.Is(err, ErrSetting) {
			t.Errorf("δ %v: %v, want ErrSetting", d, err)
		}
	}
	if err := l.SetBudgetDelta(ctx, "steward-1", "bank-a", "ds", 2, 1e-8); err != nil {
		t.Fatal(err)
	}
	a, err := l.Account(ctx, "bank-a", "ds")
	if err != nil || a.Delta != 1e-8 || a.Epsilon != 2 || a.Rho != sdk.EpsilonToRho(2, 1e-8) {
		t.Fatalf("account %+v, %v", a, err)
	}
	// Setting ε alone keeps the δ; another pair keeps the ledger's.
	if err := l.SetBudget(ctx, "steward-1", "bank-a", "ds", 3); err != nil {
		t.Fatal(err)
	}
	if a, err = l.Account(ctx, "bank-a", "ds"); err != nil || a.Delta != 1e-8 || a.Epsilon != 3 {
		t.Fatalf("after SetBudget %+v, %v", a, err)
	}
	if b, err := l.Account(ctx, "bank-b", "ds"); err != nil || b.Delta != DefaultDelta {
		t.Fatalf("other pair %+v, %v", b, err)
	}
	// Audited with the old and new δ.
	recs, err := l.log.(*audit.Log).Records(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, r := range recs {
		if r.Kind == KindBudgetChange {
			changes = append(changes, string(r.Payload))
		}
	}
	if len(changes) != 2 || !strings.Contains(changes[0], `"delta":1e-8`) || !strings.Contains(changes[0], `"old_delta":0.000001`) {
		t.Errorf("budget_change records: %q", changes)
	}
}
