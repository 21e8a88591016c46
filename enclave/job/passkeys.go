package job

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job/manifest"
	"insitu/enclave/job/passkey"
	"insitu/enclave/keys"
)

// Passkeys: a steward or admin registers a WebAuthn credential in the console, which files a
// request (RequestPasskey) holding the unsigned enrolment statement under a short code; the party
// signs the statement with its ML-DSA key (insitu steward enroll-passkey) and EnrollPasskey checks
// the signature and enrols the credential. An enrolled credential signs in (AssertPasskey) and, for a
// steward, approves or rejects jobs (ApprovePasskey, RejectPasskey) with an assertion whose challenge
// is PasskeyChallenge of the decision's message.

const passkeyMigration = `
CREATE TABLE passkeys (
	credential_id BLOB    PRIMARY KEY,
	party         TEXT    NOT NULL,
	fingerprint   TEXT    NOT NULL,
	statement     BLOB    NOT NULL,
	signature     BLOB    NOT NULL,
	sign_count    INTEGER NOT NULL,
	added_at      INTEGER NOT NULL,
	used_at       INTEGER,
	removed_at    INTEGER
) STRICT;
CREATE INDEX passkeys_party ON passkeys (party);
CREATE TABLE passkey_requests (
	code       TEXT    PRIMARY KEY,
	party      TEXT    NOT NULL,
	statement  BLOB    NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
ALTER TABLE decisions ADD COLUMN webauthn BLOB;`

// KindPasskey is the audit kind of passkey enrolments and removals.
const KindPasskey audit.Kind = "passkey"

// PasskeyRequestTTL is how long a passkey request waits for its signed statement.
const PasskeyRequestTTL = 15 * time.Minute

// ErrPasskey is wrapped when a passkey is unknown, removed, or its assertion does not verify.
var ErrPasskey = errors.New("passkey refused")

// Passkey is an enrolled WebAuthn credential.
type Passkey struct {
	Party       string
	Fingerprint string
	Statement   *passkey.Statement
	Enrolment   passkey.Enrolment
	SignCount   uint32
	AddedAt     time.Time
	UsedAt      time.Time // zero if never used
}

// PasskeyChallenge is the WebAuthn challenge of a decision over msg: for an approval the manifest
// hash itself (msg is ApprovalMessage), for a rejection the SHA-256 of the rejection context and
// RejectionMessage, so that the one never verifies as the other.
func PasskeyChallenge(msg []byte, sctx string) []byte {
	if sctx == ApprovalContext {
		return append([]byte(nil), msg...)
	}
	h := sha256.New()
	h.Write([]byte(sctx))
	h.Write([]byte{0})
	h.Write(msg)
	return h.Sum(nil)
}

const codeAlphabet = "ABCDEFGHJKMNPQRSTVWXYZ23456789"

// newCode returns a 10-character code of 49 random bits, grouped as XXXXX-XXXXX.
func newCode() string {
	var b [10]byte
	out := make([]byte, 0, 11)
	for i := range b {
		for {
			rand.Read(b[i : i+1])
			if int(b[i]) < 256-256%len(codeAlphabet) {
				break
			}
		}
		if i == 5 {
			out = append(out, '-')
		}
		out = append(out, codeAlphabet[int(b[i])%len(codeAlphabet)])
	}
	return string(out)
}

// NormalizeCode reads a passkey request code as a person types it: any case, spaces ignored.
func NormalizeCode(s string) string {
	s = strings.ToUpper(strings.Join(strings.Fields(s), ""))
	if len(s) == 10 {
		s = s[:5] + "-" + s[5:]
	}
	return s
}

// RequestPasskey files the unsigned statement of a credential registered in the console and
// returns the code its party signs it under. The statement must name a registered steward or admin
// with its current key.
func (b *Board) RequestPasskey(ctx context.Context, st *passkey.Statement) (string, error) {
	data, err := st.Marshal()
	if err != nil {
		return "", fmt.Errorf("job: passkey request: %w", err)
	}
	code := newCode()
	err = b.db.Tx(ctx, func(tx *sql.Tx) error {
		p, err := partyTx(ctx, tx, st.Party)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrParty, err)
		}
		if p.Role != keys.RoleSteward && p.Role != keys.RoleAdmin {
			return fmt.Errorf("%w: %s is a %s: only stewards and admins use the console", ErrParty, p.Name, p.Role)
		}
		if p.Fingerprint != st.Fingerprint {
			return fmt.Errorf("%w: the statement names key %s; %s's registered key is %s", ErrParty, st.Fingerprint, p.Name, p.Fingerprint)
		}
		now := b.now()
		if _, err := tx.ExecContext(ctx, `DELETE FROM passkey_requests WHERE expires_at <= ?`, now.UnixNano()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO passkey_requests (code, party, statement, expires_at) VALUES (?, ?, ?, ?)`,
			code, st.Party, data, now.Add(PasskeyRequestTTL).UnixNano())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("job: passkey request for %s: %w", st.Party, err)
	}
	return code, nil
}

// PasskeyRequest returns the statement filed under code, as the bytes its party signs.
func (b *Board) PasskeyRequest(ctx context.Context, code string) (*passkey.Statement, []byte, error) {
	var data []byte
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		data, err = requestTx(ctx, tx, code, b.now())
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("job: passkey request %s: %w", code, err)
	}
	st, err := passkey.ParseStatement(data)
	return st, data, err
}

func requestTx(ctx context.Context, tx *sql.Tx, code string, now time.Time) ([]byte, error) {
	var data []byte
	err := tx.QueryRowContext(ctx, `SELECT statement FROM passkey_requests WHERE code = ? AND expires_at > ?`,
		NormalizeCode(code), now.UnixNano()).Scan(&data)
	if isNoRows(err) {
		return nil, fmt.Errorf("%w: no pending passkey request with this code (they last %s): register the passkey again in the console",
			ErrNotFound, PasskeyRequestTTL)
	}
	return data, err
}

// EnrollPasskey enrols the credential of request code with its party's signed statement e, audited
// as passkey enrolment by actor. The statement must be the one filed, signed by the party's
// registered key.
func (b *Board) EnrollPasskey(ctx context.Context, actor, code string, e passkey.Enrolment) (Passkey, error) {
	var pk Passkey
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		now := b.now()
		filed, err := requestTx(ctx, tx, code, now)
		if err != nil {
			return err
		}
		if !bytes.Equal(filed, e.Statement) {
			return fmt.Errorf("%w: the statement signed is not the one filed under this code", passkey.ErrStatement)
		}
		st, err := passkey.ParseStatement(e.Statement)
		if err != nil {
			return err
		}
		p, err := partyTx(ctx, tx, st.Party)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrParty, err)
		}
		if _, err := e.Verify(p.PublicIdentity); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO passkeys (credential_id, party, fingerprint, statement, signature, sign_count, added_at)
			VALUES (?, ?, ?, ?, ?, 0, ?)`, st.CredentialID, p.Name, p.Fingerprint, e.Statement, e.Signature, now.UnixNano()); err != nil {
			return fmt.Errorf("%w: this credential is enrolled already (or was, and was removed): register a new passkey", ErrDuplicate)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM passkey_requests WHERE code = ?`, NormalizeCode(code)); err != nil {
			return err
		}
		pk = Passkey{Party: p.Name, Fingerprint: p.Fingerprint, Statement: st, Enrolment: e, AddedAt: now.UTC()}
		_, err = b.audit.AppendTx(ctx, tx, audit.Event{Kind: KindPasskey, Actor: actor, Subject: "party " + p.Name,
			Payload: map[string]any{"change": "enrol", "party": p.Name, "fingerprint": p.Fingerprint,
				"credential": credentialString(st.CredentialID), "rp_id": st.RPID, "origin": st.Origin}})
		return err
	})
	if err != nil {
		return Passkey{}, fmt.Errorf("job: enrol passkey %s: %w", code, err)
	}
	return pk, nil
}

// credentialString shortens a credential id for logs and pages: hex of its SHA-256, 16 digits.
func credentialString(id []byte) string {
	h := sha256.Sum256(id)
	return fmt.Sprintf("%x", h[:8])
}

// CredentialString is how pages and audit records name a credential.
func CredentialString(id []byte) string { return credentialString(id) }

const passkeySelect = `SELECT k.party, k.fingerprint, k.statement, k.signature, k.sign_count, k.added_at, k.used_at FROM passkeys k
	JOIN parties p ON p.name = k.party AND p.fingerprint = k.fingerprint AND p.removed_at IS NULL
	WHERE k.removed_at IS NULL`

func scanPasskey(rows *sql.Rows) (Passkey, error) {
	var pk Passkey
	var added int64
	var used sql.NullInt64
	var count int64
	if err := rows.Scan(&pk.Party, &pk.Fingerprint, &pk.Enrolment.Statement, &pk.Enrolment.Signature, &count, &added, &used); err != nil {
		return pk, err
	}
	pk.SignCount = uint32(count)
	pk.AddedAt = time.Unix(0, added).UTC()
	if used.Valid {
		pk.UsedAt = time.Unix(0, used.Int64).UTC()
	}
	st, err := passkey.ParseStatement(pk.Enrolment.Statement)
	pk.Statement = st
	return pk, err
}

// Passkeys lists the enrolled credentials of party (every party's when empty) whose party is still
// registered with the key that enrolled them.
func (b *Board) Passkeys(ctx context.Context, party string) ([]Passkey, error) {
	var out []Passkey
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		q, args := passkeySelect+` ORDER BY k.added_at`, []any{}
		if party != "" {
			q, args = passkeySelect+` AND k.party = ? ORDER BY k.added_at`, []any{party}
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			pk, err := scanPasskey(rows)
			if err != nil {
				return err
			}
			out = append(out, pk)
		}
		return rows.Err()
	})
	return out, err
}

// RemovePasskey ends the enrolment of credential id of party, audited by actor.
func (b *Board) RemovePasskey(ctx context.Context, actor, party string, id []byte) error {
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE passkeys SET removed_at = ? WHERE credential_id = ? AND party = ? AND removed_at IS NULL`,
			b.now().UnixNano(), id, party)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s has no passkey %s", ErrNotFound, party, credentialString(id))
		}
		_, err = b.audit.AppendTx(ctx, tx, audit.Event{Kind: KindPasskey, Actor: actor, Subject: "party " + party,
			Payload: map[string]any{"change": "remove", "party": party, "credential": credentialString(id)}})
		return err
	})
	if err != nil {
		return fmt.Errorf("job: remove passkey: %w", err)
	}
	return nil
}

// usePasskeyTx verifies assertion a over challenge against its enrolled credential, checks and
// advances the signature counter, and returns the passkey and its party.
func (b *Board) usePasskeyTx(ctx context.Context, tx *sql.Tx, a *passkey.Assertion, challenge []byte) (Passkey, Party, error) {
	rows, err := tx.QueryContext(ctx, passkeySelect+` AND k.credential_id = ?`, a.CredentialID)
	if err != nil {
		return Passkey{}, Party{}, err
	}
	var pk Passkey
	found := false
	for rows.Next() {
		if pk, err = scanPasskey(rows); err != nil {
			rows.Close()
			return Passkey{}, Party{}, err
		}
		found = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Passkey{}, Party{}, err
	}
	if !found {
		return Passkey{}, Party{}, fmt.Errorf("%w: this passkey is not enrolled (or its party's key changed): enrol it again", ErrPasskey)
	}
	p, err := partyTx(ctx, tx, pk.Party)
	if err != nil {
		return Passkey{}, Party{}, fmt.Errorf("%w: %w", ErrParty, err)
	}
	ev := passkey.NewEvidence(a, pk.Enrolment)
	_, n, err := ev.Verify(p.PublicIdentity, challenge, a.Signature)
	if err != nil {
		return Passkey{}, Party{}, fmt.Errorf("%w: %w", ErrPasskey, err)
	}
	if (n != 0 || pk.SignCount != 0) && n <= pk.SignCount {
		return Passkey{}, Party{}, fmt.Errorf("%w: signature counter %d not above %d: the credential may have been cloned; remove it and enrol a new one",
			ErrPasskey, n, pk.SignCount)
	}
	now := b.now()
	if _, err := tx.ExecContext(ctx, `UPDATE passkeys SET sign_count = ?, used_at = ? WHERE credential_id = ?`, int64(n), now.UnixNano(), a.CredentialID); err != nil {
		return Passkey{}, Party{}, err
	}
	pk.SignCount, pk.UsedAt = n, now.UTC()
	return pk, p, nil
}

// AssertPasskey verifies a sign-in assertion over the server's random challenge and returns the
// passkey, whose party signs in. It records nothing in the audit log: the caller records the
// sign-in.
func (b *Board) AssertPasskey(ctx context.Context, a *passkey.Assertion, challenge []byte) (Passkey, error) {
	var pk Passkey
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		pk, _, err = b.usePasskeyTx(ctx, tx, a, challenge)
		return err
	})
	if err != nil {
		return Passkey{}, fmt.Errorf("job: passkey sign-in: %w", err)
	}
	return pk, nil
}

// ApprovePasskey records an approval of job id by the steward whose enrolled passkey made assertion
// a, whose challenge must be the manifest hash (PasskeyChallenge of ApprovalMessage). steward is the
// signed-in steward: the passkey must be theirs. The decision records the assertion and the
// enrolment, so a receipt verifies it offline like an ML-DSA approval.
func (b *Board) ApprovePasskey(ctx context.Context, id, steward string, a *passkey.Assertion) (Status, error) {
	return b.decideWith(ctx, id, steward, true, "", b.passkeyVerifier(a))
}

// RejectPasskey rejects job id with reason by the steward whose passkey made assertion a over
// PasskeyChallenge of RejectionMessage under RejectionContext.
func (b *Board) RejectPasskey(ctx context.Context, id, steward string, a *passkey.Assertion, reason string) (Status, error) {
	if reason == "" || len(reason) > manifest.MaxText {
		return Status{}, fmt.Errorf("job: reject %s: give a reason of 1 to %d bytes: the bank sees it", id, manifest.MaxText)
	}
	return b.decideWith(ctx, id, steward, false, reason, b.passkeyVerifier(a))
}

func (b *Board) passkeyVerifier(a *passkey.Assertion) verifier {
	return func(ctx context.Context, tx *sql.Tx, p Party, msg []byte, sctx string) ([]byte, []byte, error) {
		pk, owner, err := b.usePasskeyTx(ctx, tx, a, PasskeyChallenge(msg, sctx))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrSignature, err)
		}
		if owner.Name != p.Name || owner.Fingerprint != p.Fingerprint {
			return nil, nil, fmt.Errorf("%w: the passkey is %s's, not %s's", ErrSignature, owner.Name, p.Name)
		}
		ev, err := json.Marshal(passkey.NewEvidence(a, pk.Enrolment))
		if err != nil {
			return nil, nil, err
		}
		return a.Signature, ev, nil
	}
}
