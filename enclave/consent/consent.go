// Package consent is the enclave's authorization registry: which subjects (enterprises, persons)
// authorized which bank to use which catalog items, for which purpose, from when to when, on what
// evidence — and the run-time check that keeps a job's cohort to the subjects whose authorizations
// cover it.
//
// Open the state database with Migrations and audit.Migrations, call New with it and the audit log,
// then Grant, Import (a CSV file in the format connectors/synthetic writes), Revoke, List and Counts;
// Cohort filters a job's subjects.
//
// Authorizations are facts: once recorded they are never changed or deleted. A revocation is a new
// fact about an authorization; a changed authorization is a new one with new evidence. Every grant,
// import and revocation appends an audit event in the same transaction; the event carries counts,
// the evidence digest and the authorization id, never the subject's identifier.
//
// The registry keeps identifiers in canonical form, since the enclave is trusted with them, but never
// reports one back in full: lists show them masked (ident.Mask) and errors mask them too.
//
// # Validity
//
// valid_from and valid_until are calendar days, both included, in the registry's time zone (China
// Standard Time, UTC+8, unless Options.Location says otherwise). A revocation takes effect at the
// instant it is recorded; Cohort at an earlier time still counts the authorization.
package consent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/enclave/audit"
	"insitu/enclave/store"
)

// Store is the database the registry lives in; *store.DB is one.
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	ReadTx(ctx context.Context, fn func(*sql.Tx) error) error
}

// Auditor records events in the caller's transaction; *audit.Log is one.
type Auditor interface {
	AppendTx(ctx context.Context, tx *sql.Tx, ev audit.Event) (audit.Record, error)
}

var (
	_ Store   = (*store.DB)(nil)
	_ Auditor = (*audit.Log)(nil)
)

// ChinaStandardTime is the default Options.Location: UTC+8, without daylight saving time.
var ChinaStandardTime = time.FixedZone("CST", 8*60*60)

// Options tune a Registry.
type Options struct {
	// Catalog checks item keys; catalog.Default() when nil.
	Catalog *catalog.Catalog
	// Now returns the time of grants and revocations; time.Now when nil.
	Now func() time.Time
	// Location is the time zone of the validity dates; ChinaStandardTime when nil.
	Location *time.Location
}

// Registry is the authorization registry. It is safe for concurrent use.
type Registry struct {
	db  Store
	log Auditor
	cat *catalog.Catalog
	now func() time.Time
	loc *time.Location
}

// New returns the registry kept in db (opened with Migrations), recording its events in log.
func New(db Store, log Auditor, opts Options) *Registry {
	r := &Registry{db: db, log: log, cat: opts.Catalog, now: opts.Now, loc: opts.Location}
	if r.cat == nil {
		r.cat = catalog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.loc == nil {
		r.loc = ChinaStandardTime
	}
	return r
}

// Status is where an authorization stands at a given time.
type Status string

const (
	StatusCurrent     Status = "current"
	StatusNotYetValid Status = "not_yet_valid"
	StatusExpired     Status = "expired"
	StatusRevoked     Status = "revoked"
)

// Authorization is a recorded authorization as the registry reports it.
type Authorization struct {
	ID     int64      `json:"id"`
	IDType ident.Kind `json:"id_type"`
	// Subject is the identifier masked with ident.Mask.
	Subject        string      `json:"subject"`
	Grantee        string      `json:"grantee"`
	Purpose        Purpose     `json:"purpose"`
	PurposeDetail  string      `json:"purpose_detail"`
	Items          []string    `json:"items"`
	ValidFrom      string      `json:"valid_from"`
	ValidUntil     string      `json:"valid_until"`
	Evidence       string      `json:"evidence"`
	EvidenceDigest string      `json:"evidence_digest"`
	GrantedAt      time.Time   `json:"granted_at"`
	GrantedBy      string      `json:"granted_by"`
	Source         string      `json:"source"` // "api", or the import file and data row
	Revocation     *Revocation `json:"revocation,omitempty"`
	// Status is the authorization's status at the time the list was asked for.
	Status Status `json:"status"`
}

// Revocation is the fact that an authorization was revoked.
type Revocation struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// status returns where an authorization stands at t.
func (r *Registry) status(validFrom, validUntil string, revokedAt *time.Time, t time.Time) Status {
	day := t.In(r.loc).Format(time.DateOnly)
	switch {
	case revokedAt != nil && !revokedAt.After(t):
		return StatusRevoked
	case day < validFrom:
		return StatusNotYetValid
	case day > validUntil:
		return StatusExpired
	}
	return StatusCurrent
}

// SourceAPI is the Source of authorizations granted one by one.
const SourceAPI = "api"

// Grant records one authorization and returns it. The actor is the steward's party name.
func (r *Registry) Grant(ctx context.Context, actor string, g Grant) (*Authorization, error) {
	n, fe := check(g, r.cat)
	if fe != nil {
		return nil, fe
	}
	at := r.now().UTC()
	var id int64
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		var existing bool
		var err error
		id, existing, err = insert(ctx, tx, n, at, actor, SourceAPI)
		if err != nil {
			return err
		}
		if existing {
			return nil
		}
		_, err = r.log.AppendTx(ctx, tx, audit.Event{Kind: audit.KindAuthorizationGrant, Actor: actor, Subject: subject(id),
			Payload: map[string]any{
				"source": SourceAPI, "added": 1, "authorization_id": id, "id_type": n.IDType, "grantee": n.Grantee,
				"purpose": n.Purpose, "items": n.Items, "valid_from": n.ValidFrom, "valid_until": n.ValidUntil,
				"evidence_sha256": n.evidenceDigest,
			}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("consent: grant: %w", err)
	}
	return r.get(ctx, id)
}

func subject(id int64) string { return fmt.Sprintf("authorization/%d", id) }

// insert stores a checked grant. When the same authorization (subject, grantee, purpose and
// evidence) is recorded already with the same terms it returns its id and existing=true; with other
// terms it returns a *FieldError of rule RuleConflict.
func insert(ctx context.Context, tx *sql.Tx, n *normalized, at time.Time, actor, source string) (id int64, existing bool, err error) {
	err = tx.QueryRowContext(ctx, `INSERT INTO consent_authorizations
		(id_type, identifier, grantee, purpose, purpose_detail, items, valid_from, valid_until, evidence, evidence_digest, granted_at_ns, granted_by, source)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id_type, identifier, grantee, purpose, evidence_digest) DO NOTHING RETURNING id`,
		string(n.IDType), n.Identifier, n.Grantee, string(n.Purpose), n.PurposeDetail, n.items, n.ValidFrom, n.ValidUntil,
		n.Evidence, n.evidenceDigest, at.UnixNano(), actor, source).Scan(&id)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, false, err
	}
	var detail, items, from, until, evidence string
	err = tx.QueryRowContext(ctx, `SELECT id, purpose_detail, items, valid_from, valid_until, evidence FROM consent_authorizations
		WHERE id_type = ? AND identifier = ? AND grantee = ? AND purpose = ? AND evidence_digest = ?`,
		string(n.IDType), n.Identifier, n.Grantee, string(n.Purpose), n.evidenceDigest).Scan(&id, &detail, &items, &from, &until, &evidence)
	if err != nil {
		return 0, false, err
	}
	if detail != n.PurposeDetail || items != n.items || from != n.ValidFrom || until != n.ValidUntil || evidence != n.Evidence {
		return 0, false, &FieldError{Field: "evidence", Rule: RuleConflict, Value: n.Evidence,
			Message: fmt.Sprintf("authorization %d of this subject, grantee and purpose on the same evidence is recorded with other terms", id),
			Hint:    "an authorization cannot be changed: revoke it and record the new one with its own evidence"}
	}
	return id, true, nil
}

// Revoke records that authorization id is revoked, for a reason (required; kept in the registry,
// only its digest goes to the audit log), and returns the authorization.
func (r *Registry) Revoke(ctx context.Context, actor string, id int64, reason string) (*Authorization, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	at := r.now().UTC()
	err := r.db.Tx(ctx, func(tx *sql.Tx) error { return r.revokeTx(ctx, tx, actor, id, reason, at) })
	if err != nil {
		return nil, fmt.Errorf("consent: revoke authorization %d: %w", id, err)
	}
	return r.get(ctx, id)
}

func checkReason(reason string) error {
	if strings.TrimSpace(reason) == "" {
		return &FieldError{Field: "reason", Rule: RuleText, Message: "empty", Hint: "say why the authorization is revoked"}
	}
	if msg := checkFreeText(reason, MaxReason); msg != "" {
		return &FieldError{Field: "reason", Rule: RuleText, Value: clip(reason), Message: msg}
	}
	return nil
}

func (r *Registry) revokeTx(ctx context.Context, tx *sql.Tx, actor string, id int64, reason string, at time.Time) error {
	var grantee, purpose, digest string
	var revoked sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT a.grantee, a.purpose, a.evidence_digest, v.revoked_at_ns FROM consent_authorizations a
		LEFT JOIN consent_revocations v ON v.authorization_id = a.id WHERE a.id = ?`, id).Scan(&grantee, &purpose, &digest, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if revoked.Valid {
		return fmt.Errorf("%w on %s", ErrAlreadyRevoked, time.Unix(0, revoked.Int64).In(r.loc).Format(time.DateTime))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO consent_revocations (authorization_id, revoked_at_ns, revoked_by, reason) VALUES (?, ?, ?, ?)`,
		id, at.UnixNano(), actor, reason); err != nil {
		return err
	}
	_, err = r.log.AppendTx(ctx, tx, audit.Event{Kind: audit.KindAuthorizationRevoke, Actor: actor, Subject: subject(id),
		Payload: map[string]any{"revoked": 1, "authorization_id": id, "grantee": grantee, "purpose": purpose,
			"evidence_sha256": digest, "reason_sha256": sha256Hex([]byte(reason))}})
	return err
}

// Selector picks a subject's authorizations: IDType and Identifier are required; Grantee and
// Purpose narrow the choice when set.
type Selector struct {
	IDType     ident.Kind
	Identifier string
	Grantee    string
	Purpose    Purpose
}

// RevokeSubject revokes every authorization the selector picks that is not revoked yet, each with
// its own audit event, and returns how many it revoked.
func (r *Registry) RevokeSubject(ctx context.Context, actor string, sel Selector, reason string) (int, error) {
	if err := checkReason(reason); err != nil {
		return 0, err
	}
	kind, id, err := r.selector(sel)
	if err != nil {
		return 0, err
	}
	at := r.now().UTC()
	n := 0
	err = r.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT a.id FROM consent_authorizations a
			WHERE a.id_type = ? AND a.identifier = ? AND (? = '' OR a.grantee = ?) AND (? = '' OR a.purpose = ?)
			AND NOT EXISTS (SELECT 1 FROM consent_revocations v WHERE v.authorization_id = a.id) ORDER BY a.id`,
			string(kind), id, sel.Grantee, sel.Grantee, string(sel.Purpose), string(sel.Purpose))
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var x int64
			if err := rows.Scan(&x); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, x)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, x := range ids {
			if err := r.revokeTx(ctx, tx, actor, x, reason, at); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("consent: revoke: %w", err)
	}
	return n, nil
}

// selector checks a selector and returns the identifier in canonical form.
func (r *Registry) selector(sel Selector) (ident.Kind, string, error) {
	kind, err := ident.ParseKind(string(sel.IDType))
	if err != nil {
		return "", "", &FieldError{Field: "id_type", Rule: RuleIDType, Value: clip(string(sel.IDType)), Message: err.Error()}
	}
	id, err := ident.Normalize(kind, sel.Identifier)
	if err != nil {
		return "", "", &FieldError{Field: "id", Rule: RuleIDType, Value: ident.Mask(strings.TrimSpace(sel.Identifier)), Message: "not a valid " + string(kind)}
	}
	if sel.Grantee != "" && !validGrantee(sel.Grantee) {
		return "", "", &FieldError{Field: "grantee", Rule: RuleGrantee, Value: clip(sel.Grantee), Message: "not a party name"}
	}
	if sel.Purpose != "" {
		if _, err := ParsePurpose(string(sel.Purpose)); err != nil {
			return "", "", &FieldError{Field: "purpose", Rule: RulePurpose, Value: clip(string(sel.Purpose)), Message: "not a purpose"}
		}
	}
	return kind, id, nil
}

// Migrations create the registry's tables; pass them to store.Open.
var Migrations = []store.Migration{{
	Scope: "consent", Version: 1, Name: "create consent_authorizations and consent_revocations",
	SQL: `
CREATE TABLE consent_authorizations (
	id              INTEGER PRIMARY KEY,
	id_type         TEXT    NOT NULL,
	identifier      TEXT    NOT NULL,
	grantee         TEXT    NOT NULL,
	purpose         TEXT    NOT NULL,
	purpose_detail  TEXT    NOT NULL,
	items           TEXT    NOT NULL,
	valid_from      TEXT    NOT NULL,
	valid_until     TEXT    NOT NULL,
	evidence        TEXT    NOT NULL,
	evidence_digest TEXT    NOT NULL,
	granted_at_ns   INTEGER NOT NULL,
	granted_by      TEXT    NOT NULL,
	source          TEXT    NOT NULL,
	UNIQUE (id_type, identifier, grantee, purpose, evidence_digest)
) STRICT;
CREATE INDEX consent_authorizations_by_grantee ON consent_authorizations (grantee, purpose);
CREATE TABLE consent_revocations (
	authorization_id INTEGER PRIMARY KEY REFERENCES consent_authorizations (id),
	revoked_at_ns    INTEGER NOT NULL,
	revoked_by       TEXT    NOT NULL,
	reason           TEXT    NOT NULL
) STRICT;
CREATE TRIGGER consent_authorizations_no_update BEFORE UPDATE ON consent_authorizations
	BEGIN SELECT RAISE(ABORT, 'authorizations are facts: revoke, do not change'); END;
CREATE TRIGGER consent_authorizations_no_delete BEFORE DELETE ON consent_authorizations
	BEGIN SELECT RAISE(ABORT, 'authorizations are facts: revoke, do not delete'); END;
CREATE TRIGGER consent_revocations_no_update BEFORE UPDATE ON consent_revocations
	BEGIN SELECT RAISE(ABORT, 'revocations are facts and cannot be changed'); END;
CREATE TRIGGER consent_revocations_no_delete BEFORE DELETE ON consent_revocations
	BEGIN SELECT RAISE(ABORT, 'revocations are facts and cannot be deleted'); END;
`}}
