package enclave

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"insitu/enclave/store"
)

// ErrNonceUsed is returned by UseNonce for a (party, nonce) pair it has recorded before.
var ErrNonceUsed = errors.New("request nonce already used")

// noncePruneBatch bounds the expired nonces UseNonce deletes per call, so that its cost per request
// stays bounded however long the table went unpruned; one insert per call means the deletions keep
// ahead of the inserts.
const noncePruneBatch = 64

// nonceMigrations create the table of the signed API requests' nonces (enclave/api's replay
// protection), kept in the database so that a restart does not forget them.
var nonceMigrations = []store.Migration{{
	Scope: "api_nonces", Version: 1, Name: "create api_nonces",
	SQL: `CREATE TABLE api_nonces (
		party TEXT NOT NULL,
		nonce BLOB NOT NULL,
		ts    INTEGER NOT NULL,
		PRIMARY KEY (party, nonce)
	) WITHOUT ROWID;
	CREATE INDEX api_nonces_ts ON api_nonces (ts)`,
}}

// UseNonce records that party has used nonce in a request signed at ts, or fails with ErrNonceUsed
// if it has before: the table's primary key refuses the second use atomically, across restarts. In
// the same transaction it deletes up to a small batch of nonces signed before pruneBefore, which the
// caller chooses beyond its acceptance window.
func (e *Enclave) UseNonce(ctx context.Context, party string, nonce []byte, ts, pruneBefore time.Time) error {
	err := e.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_nonces WHERE (party, nonce) IN
			(SELECT party, nonce FROM api_nonces WHERE ts < ? ORDER BY ts LIMIT ?)`, pruneBefore.Unix(), noncePruneBatch); err != nil {
			return fmt.Errorf("prune expired request nonces: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO api_nonces (party, nonce, ts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			party, nonce, ts.Unix())
		if err != nil {
			return fmt.Errorf("record the request nonce of %s: %w", party, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("record the request nonce of %s: %w", party, err)
		} else if n == 0 {
			return ErrNonceUsed
		}
		return nil
	})
	return err
}
