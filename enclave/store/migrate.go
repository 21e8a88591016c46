package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// schemaVersionDDL creates the table that records every migration applied.
const schemaVersionDDL = `CREATE TABLE IF NOT EXISTS schema_version (
	scope      TEXT    NOT NULL,
	version    INTEGER NOT NULL CHECK (version >= 1),
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL,
	PRIMARY KEY (scope, version)
) STRICT`

// scopeList is the migrations of one scope, checked: versions 1..len in order.
type scopeList struct {
	scope string
	steps []Migration
}

func checkMigrations(lists [][]Migration) ([]scopeList, error) {
	var out []scopeList
	seen := map[string]bool{}
	for _, list := range lists {
		for i, m := range list {
			if !scopeRE.MatchString(m.Scope) {
				return nil, fmt.Errorf("%w: scope %q: use 1-32 lower-case letters, digits and '_', starting with a letter", ErrMigrationList, m.Scope)
			}
			if i == 0 || m.Scope != list[i-1].Scope {
				if seen[m.Scope] {
					return nil, fmt.Errorf("%w: scope %q given twice or not contiguous", ErrMigrationList, m.Scope)
				}
				seen[m.Scope] = true
				out = append(out, scopeList{scope: m.Scope})
			}
			cur := &out[len(out)-1]
			if m.Version != len(cur.steps)+1 {
				return nil, fmt.Errorf("%w: scope %q: version %d where %d was expected", ErrMigrationList, m.Scope, m.Version, len(cur.steps)+1)
			}
			if m.Name == "" || (m.SQL == "") == (m.Func == nil) {
				return nil, fmt.Errorf("%w: scope %q v%d: give a name and exactly one of SQL and Func", ErrMigrationList, m.Scope, m.Version)
			}
			cur.steps = append(cur.steps, m)
		}
	}
	return out, nil
}

// Applied is a migration recorded in the database.
type Applied struct {
	Scope     string
	Version   int
	Name      string
	AppliedAt time.Time
}

// Applied lists the migrations recorded in the database, by scope and version.
func (db *DB) Applied(ctx context.Context) ([]Applied, error) {
	var out []Applied
	err := db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = applied(ctx, tx)
		return err
	})
	return out, err
}

func applied(ctx context.Context, tx *sql.Tx) ([]Applied, error) {
	rows, err := tx.QueryContext(ctx, `SELECT scope, version, name, applied_at FROM schema_version ORDER BY scope, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Applied
	for rows.Next() {
		var a Applied
		var at string
		if err := rows.Scan(&a.Scope, &a.Version, &a.Name, &at); err != nil {
			return nil, err
		}
		a.AppliedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// migrate checks the recorded schema against the binary's and applies what is pending, one
// transaction per migration.
func (db *DB) migrate(ctx context.Context, scopes []scopeList) error {
	fail := func(scope string, version int, err error) error {
		return &Error{Op: "migrate", Path: db.path, Scope: scope, Version: version, Err: err}
	}
	var recorded []Applied
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, schemaVersionDDL); err != nil {
			return err
		}
		var err error
		recorded, err = applied(ctx, tx)
		return err
	})
	if err != nil {
		return fail("", 0, err)
	}
	byScope := map[string][]Applied{}
	for _, a := range recorded {
		byScope[a.Scope] = append(byScope[a.Scope], a)
	}
	// Check every scope before changing anything.
	for _, s := range scopes {
		got := byScope[s.scope]
		for i, a := range got {
			if a.Version != i+1 {
				return fail(s.scope, a.Version, fmt.Errorf("%w: versions recorded are not 1, 2, 3, …; the schema_version table was edited", ErrMismatch))
			}
			if a.Version > len(s.steps) {
				return fail(s.scope, a.Version, fmt.Errorf("%w: the database is at %s version %d, this insitu knows up to version %d; use the insitu release that wrote it or a newer one",
					ErrTooNew, s.scope, len(got), len(s.steps)))
			}
			if want := s.steps[i].Name; a.Name != want {
				return fail(s.scope, a.Version, fmt.Errorf("%w: the database recorded %q, this insitu has %q", ErrMismatch, a.Name, want))
			}
		}
	}
	for _, s := range scopes {
		for _, m := range s.steps[len(byScope[s.scope]):] {
			if err := db.apply(ctx, m); err != nil {
				return fail(m.Scope, m.Version, err)
			}
		}
	}
	return nil
}

// apply runs one migration and records it in the same transaction. Another process may have applied
// it meanwhile; then nothing is done.
func (db *DB) apply(ctx context.Context, m Migration) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		var have int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE scope = ?`, m.Scope).Scan(&have); err != nil {
			return err
		}
		switch {
		case have >= m.Version:
			return nil
		case have != m.Version-1:
			return fmt.Errorf("%w: the database is at version %d", ErrMismatch, have)
		}
		var err error
		if m.Func != nil {
			err = m.Func(ctx, tx)
		} else {
			_, err = tx.ExecContext(ctx, m.SQL)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMigration, m.Name, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (scope, version, name, applied_at) VALUES (?, ?, ?, ?)`,
			m.Scope, m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano))
		if err != nil {
			return errors.Join(ErrMigration, err)
		}
		return nil
	})
}
