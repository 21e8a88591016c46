package job

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/keys"
	"insitu/enclave/store/storetest"
)

// failingAuditor fails every append once armed.
type failingAuditor struct {
	log   *audit.Log
	armed bool
}

var errAuditDown = errors.New("audit log unavailable")

func (f *failingAuditor) AppendTx(ctx context.Context, tx *sql.Tx, ev audit.Event) (audit.Record, error) {
	if f.armed {
		return audit.Record{}, errAuditDown
	}
	return f.log.AppendTx(ctx, tx, ev)
}

// TestTransitionAtomic checks that a transition whose audit append or commit fails leaves the job,
// its approvals and the audit log as they were.
func TestTransitionAtomic(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank, s1 := identity(t, keys.RoleBank, "bank-a"), identity(t, keys.RoleSteward, "steward-1")
	e.register(t, bank, s1)
	_, data := signedManifest(t, "bank-a", "atomic", bank)
	j, err := e.board.Submit(ctx, data, "atomic")
	if err != nil {
		t.Fatal(err)
	}
	head, _ := e.log.Head(ctx)

	fa := &failingAuditor{log: e.log, armed: true}
	withFailingAudit := New(e.db, fa, Options{})
	if _, err := approve(t, withFailingAudit, j, s1); !errors.Is(err, errAuditDown) {
		t.Fatalf("approval with failing audit: %v", err)
	}
	faulty := storetest.NewFaulty(e.db)
	withFaultyDB := New(faulty, e.log, Options{})
	faulty.Fail(1, storetest.FailCommit)
	if _, err := approve(t, withFaultyDB, j, s1); !errors.Is(err, storetest.ErrInjected) {
		t.Fatalf("approval with failing commit: %v", err)
	}
	st, err := e.board.Status(ctx, j.ID)
	if err != nil || st.State != Submitted || st.Approvals != 0 || len(st.Decisions) != 0 {
		t.Fatalf("after failed approvals: %+v %v", st, err)
	}
	if h, _ := e.log.Head(ctx); h != head {
		t.Fatalf("audit head moved from %v to %v", head, h)
	}
	if st, err := approve(t, e.board, j, s1); err != nil || st.State != Approved {
		t.Fatalf("approval: %+v %v", st, err)
	}
	if _, err := e.board.Queue(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.board.Start(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := withFailingAudit.Recover(ctx); !errors.Is(err, errAuditDown) {
		t.Fatalf("recover with failing audit: %v", err)
	}
	if got, _ := e.board.Get(ctx, j.ID); got.State != Running {
		t.Fatalf("state %s after failed recover, want running", got.State)
	}
	e.verifyAudit(t)
}

func TestApproveExpired(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank, s1 := identity(t, keys.RoleBank, "bank-a"), identity(t, keys.RoleSteward, "steward-1")
	e.register(t, bank, s1)
	_, data := signedManifest(t, "bank-a", "lapses", bank)
	j, err := e.board.Submit(ctx, data, "lapses")
	if err != nil {
		t.Fatal(err)
	}
	later := New(e.db, e.log, Options{Now: func() time.Time { return time.Now().AddDate(0, 3, 0) }})
	if _, err := approve(t, later, j, s1); !errors.Is(err, ErrExpired) {
		t.Fatalf("approved an expired request: %v", err)
	}
}

func TestReleaseTx(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank, s1 := identity(t, keys.RoleBank, "bank-a"), identity(t, keys.RoleSteward, "steward-1")
	e.register(t, bank, s1)
	_, data := signedManifest(t, "bank-a", "release", bank)
	j, _ := e.board.Submit(ctx, data, "release")
	if _, err := approve(t, e.board, j, s1); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(context.Context, string) (*Job, error){e.board.Queue, e.board.Start} {
		if _, err := f(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.board.Succeed(ctx, j.ID, nil); err != nil {
		t.Fatal(err)
	}
	// The gate's own write fails after ReleaseTx: the job stays succeeded.
	gateErr := errors.New("receipt not written")
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := e.board.ReleaseTx(ctx, tx, j.ID, map[string]any{"outputs": 1}); err != nil {
			return err
		}
		return gateErr
	})
	if !errors.Is(err, gateErr) {
		t.Fatal(err)
	}
	if got, _ := e.board.Get(ctx, j.ID); got.State != Succeeded {
		t.Fatalf("half-released: %s", got.State)
	}
	err = e.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := e.board.ReleaseTx(ctx, tx, j.ID, map[string]any{"outputs": 1})
		return err
	})
	if got, _ := e.board.Get(ctx, j.ID); err != nil || got.State != Released {
		t.Fatalf("release: %v %v", got.State, err)
	}
	e.verifyAudit(t)
}
