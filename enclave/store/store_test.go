package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"insitu/enclave/datadir"
	"insitu/enclave/keys"
	"insitu/enclave/store"
	"insitu/enclave/store/storetest"
)

var ctx = context.Background()

func migrations(scope string, sqls ...string) []store.Migration {
	var out []store.Migration
	for i, s := range sqls {
		out = append(out, store.Migration{Scope: scope, Version: i + 1, Name: scope + " step " + string(rune('a'+i)), SQL: s})
	}
	return out
}

func tables(t *testing.T, db *store.DB) []string {
	t.Helper()
	var names []string
	err := db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			names = append(names, n)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func versions(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	a, err := db.Applied(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, x := range a {
		out[x.Scope] = max(out[x.Scope], x.Version)
	}
	return out
}

func TestOpenSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	check := func(name string, run func(context.Context, func(*sql.Tx) error) error) {
		err := run(ctx, func(tx *sql.Tx) error {
			for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "2", "busy_timeout": "10000"} {
				var got string
				if err := tx.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					return err
				}
				if got != want {
					t.Errorf("%s: PRAGMA %s = %s, want %s", name, pragma, got, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check("write", db.Tx)
	check("read", db.ReadTx)
}

func TestOpenRefusesURIs(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "a?mode=ro")} {
		if _, err := store.Open(ctx, p); err == nil {
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestOpenDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if _, err := datadir.Init(dir, keyFile); err != nil {
		t.Fatal(err)
	}
	d, err := datadir.Open(dir, keys.Source{File: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDataDir(ctx, d, migrations("t", "CREATE TABLE t (x INTEGER) STRICT"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Path() != filepath.Join(d.Path(), store.FileName) {
		t.Errorf("path %s", db.Path())
	}
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
		t.Error(err)
	}
}

func TestMigrationsApplyOnceInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	a := migrations("alpha", "CREATE TABLE a1 (x INTEGER) STRICT", "CREATE TABLE a2 (x INTEGER) STRICT; INSERT INTO a1 VALUES (7)")
	b := migrations("beta", "CREATE TABLE b1 (x INTEGER) STRICT")
	db, err := store.Open(ctx, path, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tables(t, db), ","); got != "a1,a2,b1,schema_version" {
		t.Errorf("tables %s", got)
	}
	if v := versions(t, db); v["alpha"] != 2 || v["beta"] != 1 {
		t.Errorf("versions %v", v)
	}
	db.Close()
	// Reopening applies nothing again (a1 would hold two rows), and a scope not given is left alone.
	db, err = store.Open(ctx, path, a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.ReadTx(ctx, func(tx *sql.Tx) error { return tx.QueryRow(`SELECT COUNT(*) FROM a1`).Scan(&n) }); err != nil || n != 1 {
		t.Errorf("a1 holds %d rows (%v), want 1", n, err)
	}
	if v := versions(t, db); v["beta"] != 1 {
		t.Errorf("versions %v", v)
	}
}

func TestFailedMigrationKeepsPreviousVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	good := migrations("s", "CREATE TABLE one (x INTEGER) STRICT")
	db, err := store.Open(ctx, path, good)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	// The second step creates a table, fills the first and then fails: none of it may remain.
	bad := append(good, store.Migration{Scope: "s", Version: 2, Name: "s step b",
		SQL: "CREATE TABLE two (x INTEGER) STRICT; INSERT INTO one VALUES (1); INSERT INTO missing VALUES (1)"})
	_, err = store.Open(ctx, path, bad)
	var se *store.Error
	if !errors.Is(err, store.ErrMigration) || !errors.As(err, &se) || se.Scope != "s" || se.Version != 2 {
		t.Fatalf("Open with a failing migration: %v", err)
	}
	if !strings.Contains(err.Error(), "no such table: missing") {
		t.Errorf("error does not give the cause: %v", err)
	}
	// A failing Func migration is rolled back as well.
	badFunc := append(good, store.Migration{Scope: "s", Version: 2, Name: "s step b", Func: func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE two (x INTEGER) STRICT"); err != nil {
			return err
		}
		return errors.New("conversion failed")
	}})
	if _, err := store.Open(ctx, path, badFunc); !errors.Is(err, store.ErrMigration) {
		t.Fatalf("Open with a failing Func migration: %v", err)
	}

	db, err = store.Open(ctx, path, good)
	if err != nil {
		t.Fatal(err)
	}
	if v := versions(t, db); v["s"] != 1 {
		t.Errorf("version %d after a failed migration, want 1", v["s"])
	}
	if got := strings.Join(tables(t, db), ","); got != "one,schema_version" {
		t.Errorf("tables %s after a failed migration", got)
	}
	var n int
	db.ReadTx(ctx, func(tx *sql.Tx) error { return tx.QueryRow(`SELECT COUNT(*) FROM one`).Scan(&n) })
	if n != 0 {
		t.Errorf("table one holds %d rows after a failed migration", n)
	}
	db.Close()

	fixed := append(good, store.Migration{Scope: "s", Version: 2, Name: "s step b", SQL: "CREATE TABLE two (x INTEGER) STRICT"})
	db, err = store.Open(ctx, path, fixed)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v := versions(t, db); v["s"] != 2 {
		t.Errorf("version %d after the fixed migration, want 2", v["s"])
	}
}

func TestRefusesNewerDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	newer := migrations("s", "CREATE TABLE one (x INTEGER) STRICT", "CREATE TABLE two (x INTEGER) STRICT")
	db, err := store.Open(ctx, path, newer)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = store.Open(ctx, path, newer[:1], migrations("other", "CREATE TABLE o (x INTEGER) STRICT"))
	if !errors.Is(err, store.ErrTooNew) {
		t.Fatalf("Open of a newer database: %v", err)
	}
	if !strings.Contains(err.Error(), "version 2") || !strings.Contains(err.Error(), "up to version 1") {
		t.Errorf("error does not say which versions: %v", err)
	}
	// Nothing was applied: the other scope's table is not there.
	db, err = store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := strings.Join(tables(t, db), ","); got != "one,schema_version,two" {
		t.Errorf("tables %s", got)
	}
}

func TestRefusesRenamedMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	m := migrations("s", "CREATE TABLE one (x INTEGER) STRICT")
	db, err := store.Open(ctx, path, m)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	m[0].Name = "something else"
	if _, err := store.Open(ctx, path, m); !errors.Is(err, store.ErrMismatch) {
		t.Fatalf("Open with a renamed migration: %v", err)
	}
}

func TestInvalidMigrationLists(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	ok := store.Migration{Scope: "s", Version: 1, Name: "n", SQL: "SELECT 1"}
	for name, lists := range map[string][][]store.Migration{
		"bad scope":      {{{Scope: "S-1", Version: 1, Name: "n", SQL: "SELECT 1"}}},
		"starts at 2":    {{{Scope: "s", Version: 2, Name: "n", SQL: "SELECT 1"}}},
		"repeated":       {{ok}, {ok}},
		"no work":        {{{Scope: "s", Version: 1, Name: "n"}}},
		"both":           {{{Scope: "s", Version: 1, Name: "n", SQL: "SELECT 1", Func: func(context.Context, *sql.Tx) error { return nil }}}},
		"no name":        {{{Scope: "s", Version: 1, SQL: "SELECT 1"}}},
		"not contiguous": {{ok, {Scope: "t", Version: 1, Name: "n", SQL: "SELECT 1"}, {Scope: "s", Version: 2, Name: "m", SQL: "SELECT 1"}}},
	} {
		if _, err := store.Open(ctx, path, lists...); !errors.Is(err, store.ErrMigrationList) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTxRollsBack(t *testing.T) {
	db := storetest.Open(t, migrations("s", "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER) STRICT"))
	count := func() int {
		var n int
		if err := db.ReadTx(ctx, func(tx *sql.Tx) error { return tx.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	boom := errors.New("boom")
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO kv VALUES ('a', 1)`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || count() != 0 {
		t.Fatalf("Tx error %v, %d rows kept", err, count())
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic not passed on")
			}
		}()
		db.Tx(ctx, func(tx *sql.Tx) error {
			tx.Exec(`INSERT INTO kv VALUES ('a', 1)`)
			panic("programmer error")
		})
	}()
	if count() != 0 {
		t.Fatal("a panicking Tx kept its write")
	}
	// The connection is usable after the panic.
	if err := db.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO kv VALUES ('a', 1)`); return err }); err != nil || count() != 1 {
		t.Fatalf("Tx after panic: %v, %d rows", err, count())
	}
	if err := db.ReadTx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO kv VALUES ('b', 1)`); return err }); err == nil {
		t.Error("ReadTx allowed a write")
	}
}

func TestReadDuringWrite(t *testing.T) {
	db := storetest.Open(t, migrations("s", "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER) STRICT; INSERT INTO kv VALUES ('a', 1)"))
	inWrite, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`UPDATE kv SET v = 2`); err != nil {
				return err
			}
			close(inWrite)
			<-release
			return nil
		})
	}()
	<-inWrite
	// A reader is not blocked by the open write transaction and sees the committed value.
	var v int
	if err := db.ReadTx(ctx, func(tx *sql.Tx) error { return tx.QueryRow(`SELECT v FROM kv`).Scan(&v) }); err != nil || v != 1 {
		t.Errorf("read during write: %d, %v", v, err)
	}
	close(release)
	wg.Wait()
	if err := db.ReadTx(ctx, func(tx *sql.Tx) error { return tx.QueryRow(`SELECT v FROM kv`).Scan(&v) }); err != nil || v != 2 {
		t.Errorf("read after write: %d, %v", v, err)
	}
}

func TestFaulty(t *testing.T) {
	db := storetest.Open(t, migrations("s", "CREATE TABLE kv (k TEXT PRIMARY KEY) STRICT"))
	f := storetest.NewFaulty(db)
	insert := func(k string) func(*sql.Tx) error {
		return func(tx *sql.Tx) error { _, err := tx.Exec(`INSERT INTO kv VALUES (?)`, k); return err }
	}
	has := func(k string) bool {
		var n int
		if err := f.ReadTx(ctx, func(tx *sql.Tx) error { return tx.QueryRow(`SELECT COUNT(*) FROM kv WHERE k = ?`, k).Scan(&n) }); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	f.Fail(1, storetest.FailBegin)
	f.Fail(2, storetest.FailCommit)
	f.Fail(3, storetest.FailAfterCommit)
	ran := false
	if err := f.Tx(ctx, func(tx *sql.Tx) error { ran = true; return nil }); !errors.Is(err, storetest.ErrInjected) || ran {
		t.Errorf("FailBegin: %v, fn ran %v", err, ran)
	}
	if err := f.Tx(ctx, insert("b")); !errors.Is(err, storetest.ErrInjected) || has("b") {
		t.Errorf("FailCommit: %v, kept %v", err, has("b"))
	}
	if err := f.Tx(ctx, insert("c")); !errors.Is(err, storetest.ErrInjected) || !has("c") {
		t.Errorf("FailAfterCommit: %v, kept %v", err, has("c"))
	}
	if err := f.Tx(ctx, insert("d")); err != nil || !has("d") {
		t.Errorf("unplanned Tx: %v", err)
	}
	if f.Calls() != 4 {
		t.Errorf("%d calls", f.Calls())
	}
	f.FailReads(true)
	if err := f.ReadTx(ctx, func(*sql.Tx) error { return nil }); !errors.Is(err, storetest.ErrInjected) {
		t.Errorf("FailReads: %v", err)
	}
}
