// Package store opens the enclave's SQLite state database — jobs, authorizations, budgets and the
// audit chain live in it — and brings its schema up to date with versioned migrations.
//
// Call Open (or OpenDataDir for <datadir>/state.db) once at start with the migrations of every
// package that keeps tables in the database, then run writes with (*DB).Tx and reads with
// (*DB).ReadTx. Packages take the database through a small interface of their own holding those two
// methods, so tests can hand them storetest.Faulty instead.
//
// # Migrations
//
// Each package that owns tables exports its migrations as a []Migration, all with the package's
// Scope (e.g. "audit", "consent") and Versions 1, 2, 3, … in order; Open takes any number of such
// lists. The versions of different scopes are independent, so packages never coordinate numbers.
// Open applies each pending migration in its own transaction together with its row in the
// schema_version table, so a migration that fails leaves the database at the previous version.
// Open refuses a database that records, for one of the scopes it is given, a version newer than
// the binary knows (ErrTooNew) or a migration of another name than the binary's (ErrMismatch).
// Scopes recorded in the database but not given to Open are left alone.
//
// # Connection settings
//
// The database runs in WAL mode with synchronous=FULL (a commit is on disk when Tx returns),
// foreign keys on and a busy timeout. Writes go through a single connection whose transactions begin
// IMMEDIATE, so writers queue instead of failing on a lock upgrade; reads use a separate pool of
// read-only connections and see a consistent snapshot while writes go on.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"insitu/enclave/datadir"
)

// FileName is the name of the state database in the data directory.
const FileName = "state.db"

// BusyTimeout is how long a connection waits for a lock held by another process before failing.
const BusyTimeout = 10 * time.Second

var (
	// ErrTooNew is wrapped when the database has a schema version newer than this binary knows.
	ErrTooNew = errors.New("database schema is newer than this insitu")
	// ErrMismatch is wrapped when a migration recorded in the database is not the binary's.
	ErrMismatch = errors.New("database schema does not match this insitu")
	// ErrMigration is wrapped when a migration fails to apply.
	ErrMigration = errors.New("schema migration failed")
	// ErrMigrationList is wrapped when the migrations given to Open are not well formed: a scope
	// that is not a lower-case name, versions that are not 1, 2, 3, … in order, a scope given
	// twice, or a migration with neither SQL nor Func.
	ErrMigrationList = errors.New("invalid migration list")
)

// Error is a failure to open or migrate the database at Path.
type Error struct {
	Op      string // "open" or "migrate"
	Path    string
	Scope   string // the migration scope concerned, if any
	Version int    // the migration version concerned, if any
	Err     error
}

func (e *Error) Error() string {
	if e.Scope != "" {
		return fmt.Sprintf("%s state database %s: %s v%d: %v", e.Op, e.Path, e.Scope, e.Version, e.Err)
	}
	return fmt.Sprintf("%s state database %s: %v", e.Op, e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Migration is one step of a package's schema. Exactly one of SQL and Func does the work; SQL may
// hold several statements separated by semicolons.
type Migration struct {
	// Scope names the package that owns the tables: 1 to 32 lower-case letters, digits and '_'.
	Scope string
	// Version is the step's number within its scope: 1 for the first, then 2, 3, …
	Version int
	// Name says what the step does, e.g. "create audit_records". It is recorded with the version and
	// checked on every Open, so a step must never be renamed or changed once released.
	Name string
	SQL  string
	Func func(ctx context.Context, tx *sql.Tx) error
}

var scopeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// DB is the open state database. It is safe for concurrent use.
type DB struct {
	path  string
	write *sql.DB // one connection, BEGIN IMMEDIATE
	read  *sql.DB // read-only connections
}

// OpenDataDir opens (creating it if needed) the state database FileName of a data directory.
func OpenDataDir(ctx context.Context, d *datadir.DataDir, migrations ...[]Migration) (*DB, error) {
	return Open(ctx, filepath.Join(d.Path(), FileName), migrations...)
}

// Open opens the SQLite database at path, creating it (mode 0600) if it does not exist, and applies
// the pending migrations of every list given. See the package documentation for the rules.
func Open(ctx context.Context, path string, migrations ...[]Migration) (*DB, error) {
	fail := func(err error) (*DB, error) { return nil, &Error{Op: "open", Path: path, Err: err} }
	scopes, err := checkMigrations(migrations)
	if err != nil {
		return fail(err)
	}
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return fail(fmt.Errorf("%q is not a plain file path", path))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fail(err)
	}
	// Create the file ourselves so that it, and the -wal and -shm files SQLite derives from its mode,
	// are readable by the owner only.
	if f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return fail(err)
	}
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1&_synchronous=FULL", BusyTimeout.Milliseconds())
	w, err := sql.Open("sqlite", abs+"?"+common+"&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return fail(err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return fail(err)
	}
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		w.Close()
		return fail(fmt.Errorf("journal mode is %q, not WAL (%v)", mode, err))
	}
	r, err := sql.Open("sqlite", abs+"?"+common+"&_query_only=1&_txlock=deferred")
	if err != nil {
		w.Close()
		return fail(err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4)
	db := &DB{path: abs, write: w, read: r}
	if err := db.migrate(ctx, scopes); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Path returns the database file's absolute path.
func (db *DB) Path() string { return db.path }

// Close closes every connection.
func (db *DB) Close() error {
	return errors.Join(db.read.Close(), db.write.Close())
}

// Tx runs fn in a write transaction and commits it when fn returns nil; otherwise, or if fn panics,
// it rolls the transaction back. When Tx returns nil the transaction is on disk. Transactions are
// serialized; fn must not call Tx or ReadTx on the same DB.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return run(ctx, db.write, nil, fn)
}

// ReadTx runs fn in a read-only transaction: it sees one consistent snapshot of the database and
// does not block writers. Writes inside fn fail.
func (db *DB) ReadTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return run(ctx, db.read, &sql.TxOptions{ReadOnly: true}, fn)
}

func run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(*sql.Tx) error) (err error) {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
