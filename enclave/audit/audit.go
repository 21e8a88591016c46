// Package audit keeps the enclave's audit log: an append-only hash chain, in the state database, of
// every security-relevant event — ingests, authorization changes, plugin uploads, job submissions,
// approvals, runs, releases, failed logins, configuration changes — with checkpoints signed by the
// enclave's identity.
//
// Open the state database with Migrations (store.Open), call New with it and the enclave's identity,
// then Append events; use AppendTx to record an event in the same transaction as the change it
// describes. Checkpoint signs the current head on demand (a release does, so that its receipt carries
// a signed head). Verify checks a database, offline if need be, against the enclave's public identity
// and the heads carried by receipts already issued.
//
// # Chain
//
// Record n holds seq n, the time, kind, actor, subject and a JSON payload, the hash of record n-1
// (32 zero bytes for record 1) and its own hash: SHA-256 over Record.Canonical. Every CheckpointEvery
// records, and on demand, the enclave signs (seq, hash, time) of the head with ML-DSA-65 under the
// context CheckpointContext. Records and checkpoints are never updated or deleted; triggers in the
// database refuse it.
//
// Payloads carry no personal data: subjects appear only as pseudonyms or counts. Append refuses an
// actor, subject or payload holding a valid credit code or resident identity number (ErrPersonalData).
//
// # What Verify can and cannot tell
//
// Anything changed in records up to the newest valid signed checkpoint or known head is detected.
// Records after that anchor can be rewritten, or the tail dropped, by someone with write access to
// the database file and no access to the enclave's key, unless a receipt carrying a later head is
// brought to Verify; Report.Unanchored says how many records are in that position. Checkpoint often
// (each release does) and keep receipts to keep it small.
package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"insitu/enclave/store"
)

// Kind names what happened. The constants are the kinds insitu records; other packages may add
// kinds matching ^[a-z][a-z0-9_]{0,47}$.
type Kind string

const (
	KindIngest              Kind = "ingest"               // a dataset version was ingested
	KindAuthorizationGrant  Kind = "authorization_grant"  // authorizations were granted or imported
	KindAuthorizationRevoke Kind = "authorization_revoke" // an authorization was revoked
	KindPluginUpload        Kind = "plugin_upload"        // a plugin entered the plugin store
	KindJobSubmit           Kind = "job_submit"           // a bank submitted a signed manifest
	KindApproval            Kind = "approval"             // a steward approved a job
	KindRejection           Kind = "rejection"            // a steward rejected a job
	KindJobCancel           Kind = "job_cancel"           // a job was cancelled
	KindRunStart            Kind = "run_start"            // a job started running
	KindRunEnd              Kind = "run_end"              // a job ended (succeeded, failed, cancelled)
	KindRelease             Kind = "release"              // outputs left through the gate, with their hashes
	KindLoginFailed         Kind = "login_failed"         // a request failed authentication
	KindConfigChange        Kind = "config_change"        // configuration or a party registration changed
)

var kindRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

// Sizes allowed for Event.Actor and Event.Subject, in bytes.
const (
	MaxActor   = 128
	MaxSubject = 256
)

var (
	// ErrInvalidEvent is wrapped by *EventError: an event Append refuses.
	ErrInvalidEvent = errors.New("invalid audit event")
	// ErrPersonalData is wrapped when an event holds a credit code or resident identity number.
	ErrPersonalData = errors.New("personal data in an audit event")
	// ErrEmpty is returned by Checkpoint when the log holds no record yet.
	ErrEmpty = errors.New("audit log is empty")
)

// EventError says which field of an event is refused and why.
type EventError struct {
	Field  string // kind, actor, subject or payload (with a JSON path)
	Reason string
	Err    error // ErrPersonalData or nil
}

func (e *EventError) Error() string { return fmt.Sprintf("audit event: %s: %s", e.Field, e.Reason) }

// Unwrap returns ErrInvalidEvent and, if set, Err.
func (e *EventError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidEvent, e.Err}
	}
	return []error{ErrInvalidEvent}
}

// Event is what a caller records.
type Event struct {
	Kind Kind
	// Actor is who caused the event: a party name, or "enclave" for the enclave itself.
	Actor string
	// Subject is what the event is about: a job id, a dataset and version, a plugin digest, … May
	// be empty.
	Subject string
	// Payload holds the details: nil for none, json.RawMessage or []byte holding a JSON object, or
	// a value that encoding/json marshals to an object. It is stored in canonical form
	// (CanonicalJSON).
	Payload any
}

// Record is an event as the log holds it.
type Record struct {
	Seq      int64           `json:"seq"`
	Time     time.Time       `json:"time"`
	Kind     Kind            `json:"kind"`
	Actor    string          `json:"actor"`
	Subject  string          `json:"subject"`
	Payload  json.RawMessage `json:"payload"`
	PrevHash Digest          `json:"prev_hash"`
	Hash     Digest          `json:"hash"`
}

// Head names a record of the chain by seq and hash: receipts carry the head at their release.
type Head struct {
	Seq  int64  `json:"seq"`
	Hash Digest `json:"hash"`
}

// Head returns the record's seq and hash.
func (r *Record) Head() Head { return Head{Seq: r.Seq, Hash: r.Hash} }

// Signer signs checkpoints; *keys.Identity is one.
type Signer interface {
	Sign(msg []byte, context string) ([]byte, error)
}

// Store is the database the log lives in; *store.DB is one.
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	ReadTx(ctx context.Context, fn func(*sql.Tx) error) error
}

var _ Store = (*store.DB)(nil)

// DefaultCheckpointEvery is Options.CheckpointEvery when left zero.
const DefaultCheckpointEvery = 100

// Options tune a Log.
type Options struct {
	// CheckpointEvery makes Append sign a checkpoint whenever seq is a multiple of it. Zero means
	// DefaultCheckpointEvery, a negative value never (Checkpoint still signs on demand).
	CheckpointEvery int
	// Now returns the time recorded with each event; time.Now when nil.
	Now func() time.Time
}

// Log appends to the audit chain. It is safe for concurrent use: appends are serialized by the
// database's write transactions.
type Log struct {
	db     Store
	signer Signer
	every  int
	now    func() time.Time
}

// New returns the log kept in db (opened with Migrations), signing checkpoints with signer. It
// panics if db or signer is nil (programmer error).
func New(db Store, signer Signer, opts Options) *Log {
	if db == nil || signer == nil {
		panic("audit: New needs a database and a signer")
	}
	l := &Log{db: db, signer: signer, every: opts.CheckpointEvery, now: opts.Now}
	if l.every == 0 {
		l.every = DefaultCheckpointEvery
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Append records ev in its own transaction. When Append returns without error the record is on
// disk.
func (l *Log) Append(ctx context.Context, ev Event) (Record, error) {
	p, err := prepare(ev)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	err = l.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		rec, err = l.appendPrepared(ctx, tx, p)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", ev.Kind, err)
	}
	return rec, nil
}

// AppendTx records ev inside tx, a write transaction on the log's database, so that the event and
// the change it describes commit or roll back together. The record is durable once tx commits.
func (l *Log) AppendTx(ctx context.Context, tx *sql.Tx, ev Event) (Record, error) {
	p, err := prepare(ev)
	if err != nil {
		return Record{}, err
	}
	rec, err := l.appendPrepared(ctx, tx, p)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append %s: %w", ev.Kind, err)
	}
	return rec, nil
}

// prepared is a checked event with its canonical payload.
type prepared struct {
	kind             Kind
	actor, subject   string
	canonicalPayload json.RawMessage
}

func prepare(ev Event) (*prepared, error) {
	if !kindRE.MatchString(string(ev.Kind)) {
		return nil, &EventError{Field: "kind", Reason: fmt.Sprintf("%q is not a kind: use 1-48 lower-case letters, digits and '_'", ev.Kind)}
	}
	if ev.Actor == "" {
		return nil, &EventError{Field: "actor", Reason: "empty; name the party, or \"enclave\""}
	}
	if err := checkText("actor", ev.Actor, MaxActor); err != nil {
		return nil, err
	}
	if err := checkText("subject", ev.Subject, MaxSubject); err != nil {
		return nil, err
	}
	var raw []byte
	switch p := ev.Payload.(type) {
	case nil:
		raw = []byte("{}")
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, &EventError{Field: "payload", Reason: err.Error()}
		}
		raw = b
	}
	c, v, err := canonicalJSON(raw)
	if err != nil {
		return nil, &EventError{Field: "payload", Reason: err.Error()}
	}
	if len(c) > MaxPayload {
		return nil, &EventError{Field: "payload", Reason: fmt.Sprintf("%d bytes, at most %d allowed", len(c), MaxPayload)}
	}
	if path := findIdentifier(v, "payload"); path != "" {
		return nil, &EventError{Field: path, Reason: "holds a credit code or resident identity number; use a pseudonym or a count", Err: ErrPersonalData}
	}
	return &prepared{kind: ev.Kind, actor: ev.Actor, subject: ev.Subject, canonicalPayload: c}, nil
}

func (l *Log) appendPrepared(ctx context.Context, tx *sql.Tx, p *prepared) (Record, error) {
	head, err := headTx(ctx, tx)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Seq: head.Seq + 1, Time: l.now().UTC(), Kind: p.kind, Actor: p.actor, Subject: p.subject,
		Payload: p.canonicalPayload, PrevHash: head.Hash}
	rec.Hash = rec.ComputeHash()
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_records (seq, time_ns, kind, actor, subject, payload, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, rec.Seq, rec.Time.UnixNano(), string(rec.Kind), rec.Actor, rec.Subject,
		string(rec.Payload), rec.PrevHash[:], rec.Hash[:])
	if err != nil {
		return Record{}, err
	}
	if l.every > 0 && rec.Seq%int64(l.every) == 0 {
		if _, err := l.checkpointTx(ctx, tx, rec.Head()); err != nil {
			return Record{}, err
		}
	}
	return rec, nil
}

// headTx returns the last record's seq and hash, or seq 0 and the zero hash for an empty log.
func headTx(ctx context.Context, tx *sql.Tx) (Head, error) {
	var h Head
	var hash []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, err
	}
	if len(hash) != len(h.Hash) {
		return Head{}, fmt.Errorf("record %d has a hash of %d bytes; run insitu audit verify", h.Seq, len(hash))
	}
	copy(h.Hash[:], hash)
	return h, nil
}

// HeadTx returns the seq and hash of the last record as tx sees it: inside a write transaction that
// appended with AppendTx, the record just appended. Seq is 0 when the log is empty.
func (l *Log) HeadTx(ctx context.Context, tx *sql.Tx) (Head, error) {
	h, err := headTx(ctx, tx)
	if err != nil {
		return Head{}, fmt.Errorf("audit: head: %w", err)
	}
	return h, nil
}

// Head returns the seq and hash of the last record; seq 0 when the log is empty.
func (l *Log) Head(ctx context.Context) (Head, error) {
	var h Head
	err := l.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		h, err = headTx(ctx, tx)
		return err
	})
	if err != nil {
		return Head{}, fmt.Errorf("audit: head: %w", err)
	}
	return h, nil
}

// Records returns up to limit records (1000 when limit <= 0) with seq > after, in seq order.
func (l *Log) Records(ctx context.Context, after int64, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []Record
	err := l.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, time_ns, kind, actor, subject, payload, prev_hash, hash
			FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				return err
			}
			out = append(out, r.Record)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("audit: read records: %w", err)
	}
	return out, nil
}

// scanned is a row of audit_records and whether its hash columns had the right length.
type scanned struct {
	Record
	malformed string // why the row cannot be a record, or ""
}

func scanRecord(rows *sql.Rows) (scanned, error) {
	var s scanned
	var ns int64
	var kind, payload string
	var prev, hash []byte
	if err := rows.Scan(&s.Seq, &ns, &kind, &s.Actor, &s.Subject, &payload, &prev, &hash); err != nil {
		return s, err
	}
	s.Time, s.Kind, s.Payload = time.Unix(0, ns).UTC(), Kind(kind), json.RawMessage(payload)
	if len(prev) != len(s.PrevHash) || len(hash) != len(s.Hash) {
		s.malformed = fmt.Sprintf("prev_hash of %d bytes and hash of %d bytes, want %d", len(prev), len(hash), len(s.Hash))
	}
	copy(s.PrevHash[:], prev)
	copy(s.Hash[:], hash)
	return s, nil
}

// Migrations create the log's tables; pass them to store.Open.
var Migrations = []store.Migration{{
	Scope: "audit", Version: 1, Name: "create audit_records and audit_checkpoints",
	SQL: `
CREATE TABLE audit_records (
	seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
	time_ns   INTEGER NOT NULL,
	kind      TEXT    NOT NULL,
	actor     TEXT    NOT NULL,
	subject   TEXT    NOT NULL,
	payload   TEXT    NOT NULL,
	prev_hash BLOB    NOT NULL,
	hash      BLOB    NOT NULL
) STRICT;
CREATE TABLE audit_checkpoints (
	seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
	hash      BLOB    NOT NULL,
	time_ns   INTEGER NOT NULL,
	signature BLOB    NOT NULL
) STRICT;
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
	BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
	BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
	BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
	BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
`}}
