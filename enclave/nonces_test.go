package enclave

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"insitu/enclave/store"
)

func TestUseNonce(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nonceMigrations)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e := &Enclave{DB: db}
	t0 := time.Unix(1_800_000_000, 0)
	if err := e.UseNonce(ctx, "bank-a", []byte("n1"), t0, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.UseNonce(ctx, "bank-a", []byte("n1"), t0, t0.Add(-time.Hour)); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("second use: %v, want ErrNonceUsed", err)
	}
	// Another party may use the same nonce.
	if err := e.UseNonce(ctx, "bank-b", []byte("n1"), t0, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// 200 more nonces, then one call with everything expired prunes one batch, not all.
	for i := range 200 {
		if err := e.UseNonce(ctx, "bank-a", []byte{byte(i), byte(i >> 8), 'x'}, t0.Add(time.Duration(i)*time.Second), t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	later := t0.Add(time.Hour)
	if err := e.UseNonce(ctx, "bank-a", []byte("n2"), later, later.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		t.Helper()
		if err := db.ReadTx(ctx, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, `SELECT count(*) FROM api_nonces`).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := count(), 202+1-noncePruneBatch; got != want {
		t.Errorf("%d nonces after one pruning call, want %d", got, want)
	}
	// The oldest went first: the pruned n1 may be used again, as its timestamp is out of any window.
	if err := e.UseNonce(ctx, "bank-a", []byte("n1"), later, later.Add(-time.Minute)); err != nil {
		t.Errorf("reuse of a pruned nonce: %v", err)
	}
	// A refused nonce prunes nothing (its transaction rolls back); accepted ones go on pruning.
	if err := e.UseNonce(ctx, "bank-a", []byte("n2"), later, later.Add(-time.Minute)); !errors.Is(err, ErrNonceUsed) {
		t.Fatalf("second use of n2: %v", err)
	}
	if got, want := count(), 202+2-2*noncePruneBatch; got != want {
		t.Errorf("%d nonces after a refused call, want %d", got, want)
	}
	for i := range 3 {
		if err := e.UseNonce(ctx, "bank-c", []byte{'z', byte(i)}, later, later.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(); got != 5 {
		t.Errorf("%d nonces once all expired ones are pruned, want 5 (n2, n1, z0, z1, z2)", got)
	}
}
