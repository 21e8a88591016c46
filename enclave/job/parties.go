package job

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/keys"
)

// Party is a registered party's public identity and when it was registered.
type Party struct {
	keys.PublicIdentity
	Fingerprint string
	AddedAt     time.Time
}

// AddParty registers pub, audited as a config_change by actor. A name is registered at most once at a
// time: remove the old registration before adding a new key under the same name.
func (b *Board) AddParty(ctx context.Context, actor string, pub keys.PublicIdentity) (Party, error) {
	if _, err := keys.ParsePublic(mustJSON(pub)); err != nil {
		return Party{}, fmt.Errorf("job: add party %q: %w", pub.Name, err)
	}
	if pub.Role == keys.RoleEnclave {
		return Party{}, fmt.Errorf("job: add party %q: %w: the enclave's own identity is not a party", pub.Name, ErrParty)
	}
	p := Party{PublicIdentity: pub, Fingerprint: pub.Fingerprint(), AddedAt: b.now().UTC()}
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM parties WHERE name = ? AND removed_at IS NULL`, pub.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %q is already registered: remove it first (insitu party remove %s)", ErrParty, pub.Name, pub.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO parties (name, role, signing_key, hpke_key, fingerprint, added_at) VALUES (?, ?, ?, ?, ?, ?)`,
			pub.Name, pub.Role, pub.SigningKey, pub.HPKEKey, p.Fingerprint, p.AddedAt.UnixNano()); err != nil {
			return err
		}
		_, err := b.audit.AppendTx(ctx, tx, audit.Event{Kind: audit.KindConfigChange, Actor: actor, Subject: "party " + pub.Name,
			Payload: map[string]any{"change": "party_add", "name": pub.Name, "role": pub.Role, "fingerprint": p.Fingerprint}})
		return err
	})
	if err != nil {
		return Party{}, fmt.Errorf("job: add party %q: %w", pub.Name, err)
	}
	return p, nil
}

// RemoveParty ends name's registration, audited as a config_change by actor. Its earlier signatures
// stay recorded; it can no longer submit, approve or reject.
func (b *Board) RemoveParty(ctx context.Context, actor, name string) error {
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE parties SET removed_at = ? WHERE name = ? AND removed_at IS NULL`, b.now().UTC().UnixNano(), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %q is not registered", ErrNotFound, name)
		}
		_, err = b.audit.AppendTx(ctx, tx, audit.Event{Kind: audit.KindConfigChange, Actor: actor, Subject: "party " + name,
			Payload: map[string]any{"change": "party_remove", "name": name}})
		return err
	})
	if err != nil {
		return fmt.Errorf("job: remove party %q: %w", name, err)
	}
	return nil
}

// Party returns the party registered under name; the error wraps ErrNotFound if there is none.
func (b *Board) Party(ctx context.Context, name string) (Party, error) {
	var p Party
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = partyTx(ctx, tx, name)
		return err
	})
	return p, err
}

func partyTx(ctx context.Context, tx *sql.Tx, name string) (Party, error) {
	rows, err := tx.QueryContext(ctx, partySelect+` AND name = ?`, name)
	if err != nil {
		return Party{}, err
	}
	ps, err := scanParties(rows)
	if err != nil {
		return Party{}, err
	}
	if len(ps) == 0 {
		return Party{}, fmt.Errorf("%w: no party %q is registered (insitu party add)", ErrNotFound, name)
	}
	return ps[0], nil
}

const partySelect = `SELECT name, role, signing_key, hpke_key, fingerprint, added_at FROM parties WHERE removed_at IS NULL`

// ListParties lists the registered parties by name.
func (b *Board) ListParties(ctx context.Context) ([]Party, error) {
	var ps []Party
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, partySelect+` ORDER BY name`)
		if err != nil {
			return err
		}
		ps, err = scanParties(rows)
		return err
	})
	return ps, err
}

func scanParties(rows *sql.Rows) ([]Party, error) {
	defer rows.Close()
	var out []Party
	for rows.Next() {
		var p Party
		var at int64
		if err := rows.Scan(&p.Name, &p.Role, &p.SigningKey, &p.HPKEKey, &p.Fingerprint, &at); err != nil {
			return nil, err
		}
		p.AddedAt = time.Unix(0, at).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// countStewardsTx counts the registered stewards: the M of an N-of-M quorum.
func countStewardsTx(ctx context.Context, tx *sql.Tx) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM parties WHERE role = ? AND removed_at IS NULL`, keys.RoleSteward).Scan(&n)
	return n, err
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
