package job

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"testing"

	"insitu/enclave/keys"
)

func TestNewCurve(t *testing.T) {
	// A perfect ranker and a staircase: AUC and KS computed on every point, then thinned.
	c := NewCurve([]float64{0, 0, 1}, []float64{0, 1, 1}, 3, 4)
	if c.AUC != 1 || c.KS != 1 || len(c.FPR) != 3 {
		t.Fatalf("perfect ranker: %+v", c)
	}
	n := 1001
	fpr, tpr := make([]float64, n), make([]float64, n)
	for i := range n {
		fpr[i] = float64(i) / float64(n-1)
		tpr[i] = math.Sqrt(fpr[i])
	}
	c = NewCurve(fpr, tpr, 500, 500)
	if len(c.FPR) > MaxCurvePoints+1 || c.FPR[0] != 0 || c.FPR[len(c.FPR)-1] != 1 || c.TPR[len(c.TPR)-1] != 1 {
		t.Fatalf("thinned to %d points, first %v last %v", len(c.FPR), c.FPR[0], c.FPR[len(c.FPR)-1])
	}
	if math.Abs(c.AUC-2.0/3) > 1e-3 || math.Abs(c.KS-0.25) > 1e-3 {
		t.Fatalf("AUC %v (want 2/3), KS %v (want 1/4)", c.AUC, c.KS)
	}
}

func TestCurveStored(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank := identity(t, keys.RoleBank, "bank-a")
	e.register(t, bank)
	_, data := signedManifest(t, "bank-a", "curve", bank)
	j, err := e.board.Submit(ctx, data, "m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.board.Curve(ctx, j.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no curve yet: %v", err)
	}
	want := NewCurve([]float64{0, 0.5, 1}, []float64{0, 0.75, 1}, 4, 6)
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return e.board.SetCurveTx(ctx, tx, j.ID, want) }); err != nil {
		t.Fatal(err)
	}
	got, err := e.board.Curve(ctx, j.ID)
	if err != nil || got.AUC != want.AUC || got.Positives != 4 || len(got.TPR) != 3 || got.TPR[1] != 0.75 {
		t.Fatalf("stored curve %+v, %v; want %+v", got, err, want)
	}
}
