// Package storetest helps test code that keeps state in the enclave's database: Faulty wraps a
// database and makes chosen transactions fail, before they start, at commit, or after they commit
// (the case where the caller cannot know the outcome).
//
// Call Open for a fresh database in a test's temporary folder, wrap it with NewFaulty, and plan
// failures with Fail.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"insitu/enclave/store"
)

// TxRunner is what Faulty wraps and offers: the two methods of *store.DB that packages use.
type TxRunner interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	ReadTx(ctx context.Context, fn func(*sql.Tx) error) error
}

var (
	_ TxRunner = (*store.DB)(nil)
	_ TxRunner = (*Faulty)(nil)
)

// ErrInjected is returned (wrapped) by every failure Faulty makes.
var ErrInjected = errors.New("injected fault")

// Fault is where a planned failure strikes.
type Fault int

const (
	// FailBegin fails the transaction before fn runs.
	FailBegin Fault = iota + 1
	// FailCommit runs fn, then rolls the transaction back and reports the failure: nothing fn wrote
	// is kept.
	FailCommit
	// FailAfterCommit runs fn and commits, then reports a failure anyway: everything fn wrote is
	// kept although the caller was told otherwise.
	FailAfterCommit
)

// Faulty wraps a database and injects planned failures into its write transactions (Tx); ReadTx is
// passed through unless FailReads is set. It is safe for concurrent use.
type Faulty struct {
	db TxRunner

	mu        sync.Mutex
	calls     int
	plan      map[int]Fault
	failReads bool
}

// NewFaulty wraps db.
func NewFaulty(db TxRunner) *Faulty { return &Faulty{db: db, plan: map[int]Fault{}} }

// Fail plans a fault for the nth write transaction from now (1 is the next one).
func (f *Faulty) Fail(n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan[f.calls+n] = fault
}

// FailReads makes every ReadTx fail before it starts while on is true.
func (f *Faulty) FailReads(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failReads = on
}

// Calls returns how many write transactions were asked for so far.
func (f *Faulty) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Tx runs fn through the wrapped database, failing it as planned.
func (f *Faulty) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	f.mu.Lock()
	f.calls++
	fault := f.plan[f.calls]
	delete(f.plan, f.calls)
	f.mu.Unlock()
	switch fault {
	case FailBegin:
		return errors.Join(errors.New("begin transaction"), ErrInjected)
	case FailCommit:
		err := f.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return ErrInjected
		})
		return err
	case FailAfterCommit:
		if err := f.db.Tx(ctx, fn); err != nil {
			return err
		}
		return errors.Join(errors.New("commit outcome lost"), ErrInjected)
	}
	return f.db.Tx(ctx, fn)
}

// ReadTx runs fn through the wrapped database.
func (f *Faulty) ReadTx(ctx context.Context, fn func(*sql.Tx) error) error {
	f.mu.Lock()
	fail := f.failReads
	f.mu.Unlock()
	if fail {
		return errors.Join(errors.New("begin read transaction"), ErrInjected)
	}
	return f.db.ReadTx(ctx, fn)
}

// Open opens a new database in t's temporary folder with the given migrations and closes it when
// the test ends.
func Open(t testing.TB, migrations ...[]store.Migration) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), store.FileName), migrations...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
