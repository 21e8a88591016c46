// Package job keeps the enclave's job board: the registered parties whose keys sign manifests and
// approvals, the jobs banks submit, the stewards' approvals and rejections, and each job's state.
//
// Open the state database with Migrations (and audit.Migrations), call New with it and the audit log,
// then Recover once at start. Register parties with AddParty; a bank's signed manifest enters with
// Submit; stewards Approve (a signature over the manifest hash, ApprovalMessage) or Reject; the runner
// moves an approved job through Queue, Start and Succeed or Fail; the output gate calls Release.
// Cancel stops a job before it ends.
//
// # States
//
//	submitted → approved | rejected | cancelled
//	approved  → queued | cancelled
//	queued    → running | cancelled
//	running   → succeeded | failed | cancelled
//	succeeded → released
//
// Every transition is one database transaction that also appends its audit event, so the state and
// the audit log never disagree. Any other transition is refused with a *TransitionError naming the
// job and both states. After a crash Recover marks every job left running as failed with the reason
// "enclave restarted"; jobs in other states are consistent as they are.
//
// # Approval
//
// A job becomes approved when the number of distinct registered stewards that approved it reaches the
// quorum (SettingQuorum, default 1). A steward who approves twice counts once; a bank, or a party not
// registered, cannot approve; the approval of a steward removed before the quorum is reached no
// longer counts. One steward's rejection rejects the job, with a reason the bank sees.
//
// A steward signs a decision with its ML-DSA key (Approve, Reject), or in the console with a passkey
// enrolled under that key (EnrollPasskey; then ApprovePasskey, RejectPasskey): the assertion's
// challenge is the manifest hash (PasskeyChallenge), and the decision records the assertion and the
// enrolment, so that a receipt verifies it offline (package passkey).
package job

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job/manifest"
	"insitu/enclave/store"
)

// State is a job's state.
type State string

// The states of a job.
const (
	Submitted State = "submitted"
	Approved  State = "approved"
	Rejected  State = "rejected"
	Queued    State = "queued"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Released  State = "released"
)

// transitions lists, for each state, the states a job may move to.
var transitions = map[State][]State{
	Submitted: {Approved, Rejected, Cancelled},
	Approved:  {Queued, Cancelled},
	Queued:    {Running, Cancelled},
	Running:   {Succeeded, Failed, Cancelled},
	Succeeded: {Released},
}

// CanMove reports whether a job in state from may move to state to.
func CanMove(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// ReasonRestarted is the reason Recover gives a job it finds running.
const ReasonRestarted = "enclave restarted"

var (
	// ErrNotFound is wrapped when a job or party does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTransition is wrapped when a job cannot move from its state to the one asked.
	ErrTransition = errors.New("illegal job transition")
	// ErrParty is wrapped when a party may not do what it asked: not registered, or of the wrong role.
	ErrParty = errors.New("party not allowed")
	// ErrSignature is wrapped when an approval or rejection signature does not verify.
	ErrSignature = errors.New("signature does not verify")
	// ErrDuplicate is wrapped when a manifest is submitted again.
	ErrDuplicate = errors.New("manifest already submitted")
	// ErrExpired is wrapped when a job's request has lapsed.
	ErrExpired = errors.New("job request expired")
	// ErrCohortTooSmall is wrapped when a cohort is below the steward-set minimum.
	ErrCohortTooSmall = errors.New("cohort below the minimum size")
)

// TransitionError is a refused transition.
type TransitionError struct {
	ID       string
	From, To State
}

func (e *TransitionError) Error() string {
	allowed := "none: it is final"
	if ts := transitions[e.From]; len(ts) > 0 {
		allowed = fmt.Sprint(ts)
	}
	return fmt.Sprintf("job %s is %s and cannot become %s (from %s it may become %s)", e.ID, e.From, e.To, e.From, allowed)
}

// Unwrap returns ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// Store is the database the board lives in; *store.DB is one.
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

// Options tune a Board.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Board is the job board. It is safe for concurrent use.
type Board struct {
	db    Store
	audit Auditor
	now   func() time.Time
}

// New returns the board kept in db (opened with Migrations). It panics if db or log is nil.
func New(db Store, log Auditor, opts Options) *Board {
	if db == nil || log == nil {
		panic("job: New needs a database and an audit log")
	}
	b := &Board{db: db, audit: log, now: opts.Now}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// Job is a submitted job.
type Job struct {
	ID    string
	Bank  string
	State State
	// Reason says why the job was rejected, failed or cancelled.
	Reason       string
	ManifestHash string // manifest.HashString
	Plugin       string
	SubmittedAt  time.Time
	UpdatedAt    time.Time
	// Signed is the signed envelope as submitted.
	Signed []byte
	// Manifest is the envelope's manifest.
	Manifest *manifest.Manifest
}

// IDFor returns the id a manifest with the given hash receives: "job-" and 16 hex digits of the hash.
func IDFor(m *manifest.Manifest) string { return "job-" + m.HashString()[len("sha256:"):][:16] }

// Submit verifies a signed manifest against its bank's registered key, checks its expiry and records
// it as a submitted job. name names the envelope in errors.
func (b *Board) Submit(ctx context.Context, signed []byte, name string) (*Job, error) {
	s, err := manifest.ParseSigned(signed, name)
	if err != nil {
		return nil, err
	}
	m := s.Manifest
	now := b.now()
	if err := m.CheckSubmission(now); err != nil {
		return nil, err
	}
	j := &Job{ID: IDFor(m), Bank: m.Bank, State: Submitted, ManifestHash: m.HashString(), Plugin: m.Plugin,
		SubmittedAt: now.UTC(), UpdatedAt: now.UTC(), Signed: s.Marshal(), Manifest: m}
	err = b.db.Tx(ctx, func(tx *sql.Tx) error {
		p, err := partyTx(ctx, tx, m.Bank)
		if err != nil {
			return fmt.Errorf("%w: the manifest names bank %q: %w", ErrParty, m.Bank, err)
		}
		if err := s.Verify(p.PublicIdentity); err != nil {
			return err
		}
		var have string
		switch err := tx.QueryRowContext(ctx, `SELECT id FROM jobs WHERE manifest_hash = ?`, j.ManifestHash).Scan(&have); {
		case err == nil:
			return fmt.Errorf("%w: %s is job %s", ErrDuplicate, j.ManifestHash, have)
		case !isNoRows(err):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, bank, state, reason, manifest_hash, plugin, signed, submitted_at, updated_at)
			VALUES (?, ?, ?, '', ?, ?, ?, ?, ?)`, j.ID, j.Bank, string(j.State), j.ManifestHash, j.Plugin, j.Signed,
			now.UnixNano(), now.UnixNano()); err != nil {
			return err
		}
		_, err = b.audit.AppendTx(ctx, tx, audit.Event{Kind: audit.KindJobSubmit, Actor: m.Bank, Subject: j.ID,
			Payload: map[string]any{"manifest_hash": j.ManifestHash, "purpose": string(m.Purpose), "mode": string(m.Mode),
				"dataset": m.Dataset.Name + "@" + m.Dataset.Version, "plugin": m.Plugin, "fields": len(m.Fields), "expires": m.Expires}})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("job: submit %s: %w", name, err)
	}
	return j, nil
}

// transition moves job id to state to inside tx, with reason, after checking the move is legal; it
// appends ev with the job id as subject and the move, the reason and ev's own payload as payload.
func (b *Board) transition(ctx context.Context, tx *sql.Tx, id string, to State, reason string, ev audit.Event) (*Job, error) {
	j, err := jobTx(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if !CanMove(j.State, to) {
		return nil, &TransitionError{ID: id, From: j.State, To: to}
	}
	now := b.now()
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state = ?`,
		string(to), reason, now.UnixNano(), id, string(j.State)); err != nil {
		return nil, err
	}
	payload := map[string]any{"from": string(j.State), "to": string(to), "manifest_hash": j.ManifestHash}
	if reason != "" {
		payload["reason"] = reason
	}
	if extra, ok := ev.Payload.(map[string]any); ok {
		for k, v := range extra {
			payload[k] = v
		}
	}
	ev.Subject, ev.Payload = id, payload
	if _, err := b.audit.AppendTx(ctx, tx, ev); err != nil {
		return nil, err
	}
	j.State, j.Reason, j.UpdatedAt = to, reason, now.UTC()
	return j, nil
}

func (b *Board) move(ctx context.Context, id string, to State, reason string, ev audit.Event) (*Job, error) {
	var j *Job
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = b.transition(ctx, tx, id, to, reason, ev)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("job: %s %s: %w", to, id, err)
	}
	return j, nil
}

// KindJobQueue is the audit kind of a job entering the run queue.
const KindJobQueue audit.Kind = "job_queue"

// Queue puts an approved job in the run queue.
func (b *Board) Queue(ctx context.Context, id string) (*Job, error) {
	return b.move(ctx, id, Queued, "", audit.Event{Kind: KindJobQueue, Actor: "enclave"})
}

// Start marks a queued job running.
func (b *Board) Start(ctx context.Context, id string) (*Job, error) {
	return b.move(ctx, id, Running, "", audit.Event{Kind: audit.KindRunStart, Actor: "enclave"})
}

// Succeed marks a running job succeeded; details (a JSON object, or nil) go into the audit event.
func (b *Board) Succeed(ctx context.Context, id string, details map[string]any) (*Job, error) {
	return b.move(ctx, id, Succeeded, "", audit.Event{Kind: audit.KindRunEnd, Actor: "enclave", Payload: details})
}

// Fail marks a running job failed with reason.
func (b *Board) Fail(ctx context.Context, id, reason string) (*Job, error) {
	return b.move(ctx, id, Failed, reason, audit.Event{Kind: audit.KindRunEnd, Actor: "enclave"})
}

// Cancel cancels a job that has not ended, on actor's request, with reason (may be empty).
func (b *Board) Cancel(ctx context.Context, id, actor, reason string) (*Job, error) {
	return b.move(ctx, id, Cancelled, reason, audit.Event{Kind: audit.KindJobCancel, Actor: actor})
}

// Release marks a succeeded job released; details (output hashes and the like) go into the audit
// event.
func (b *Board) Release(ctx context.Context, id string, details map[string]any) (*Job, error) {
	return b.move(ctx, id, Released, "", audit.Event{Kind: audit.KindRelease, Actor: "enclave", Payload: details})
}

// ReleaseTx is Release inside tx, a write transaction on the board's database, so that the output
// gate records what left and the job's new state together: either both commit or neither does.
func (b *Board) ReleaseTx(ctx context.Context, tx *sql.Tx, id string, details map[string]any) (*Job, error) {
	j, err := b.transition(ctx, tx, id, Released, "", audit.Event{Kind: audit.KindRelease, Actor: "enclave", Payload: details})
	if err != nil {
		return nil, fmt.Errorf("job: released %s: %w", id, err)
	}
	return j, nil
}

// Recover marks every job left running failed with ReasonRestarted, each with its run_end event, in
// one transaction, and returns their ids. Call it once when the enclave opens, before anything runs.
func (b *Board) Recover(ctx context.Context) ([]string, error) {
	var ids []string
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM jobs WHERE state = ? ORDER BY id`, string(Running))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := b.transition(ctx, tx, id, Failed, ReasonRestarted, audit.Event{Kind: audit.KindRunEnd, Actor: "enclave"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("job: recover: %w", err)
	}
	return ids, nil
}

const jobSelect = `SELECT id, bank, state, reason, manifest_hash, plugin, signed, submitted_at, updated_at FROM jobs`

func scanJobs(rows *sql.Rows) ([]*Job, error) {
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j := &Job{}
		var st string
		var sub, upd int64
		if err := rows.Scan(&j.ID, &j.Bank, &st, &j.Reason, &j.ManifestHash, &j.Plugin, &j.Signed, &sub, &upd); err != nil {
			return nil, err
		}
		j.State, j.SubmittedAt, j.UpdatedAt = State(st), time.Unix(0, sub).UTC(), time.Unix(0, upd).UTC()
		s, err := manifest.ParseSigned(j.Signed, j.ID)
		if err != nil {
			return nil, fmt.Errorf("job %s: stored manifest: %w", j.ID, err)
		}
		j.Manifest = s.Manifest
		out = append(out, j)
	}
	return out, rows.Err()
}

func jobTx(ctx context.Context, tx *sql.Tx, id string) (*Job, error) {
	rows, err := tx.QueryContext(ctx, jobSelect+` WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	js, err := scanJobs(rows)
	if err != nil {
		return nil, err
	}
	if len(js) == 0 {
		return nil, fmt.Errorf("%w: no job %q", ErrNotFound, id)
	}
	return js[0], nil
}

// Get returns job id.
func (b *Board) Get(ctx context.Context, id string) (*Job, error) {
	var j *Job
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		j, err = jobTx(ctx, tx, id)
		return err
	})
	return j, err
}

// List returns the jobs of bank (all banks if empty) in submission order.
func (b *Board) List(ctx context.Context, bank string) ([]*Job, error) {
	var js []*Job
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, jobSelect+` WHERE ? = '' OR bank = ? ORDER BY submitted_at, id`, bank, bank)
		if err != nil {
			return err
		}
		js, err = scanJobs(rows)
		return err
	})
	return js, err
}

// PluginHistory returns the jobs submitted before job id that named the same plugin digest, in
// submission order: what a steward weighs when judging an unfamiliar plugin.
func (b *Board) PluginHistory(ctx context.Context, id string) ([]*Job, error) {
	var js []*Job
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		j, err := jobTx(ctx, tx, id)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, jobSelect+` WHERE plugin = ? AND id <> ? AND (submitted_at < ? OR (submitted_at = ? AND id < ?)) ORDER BY submitted_at, id`,
			j.Plugin, j.ID, j.SubmittedAt.UnixNano(), j.SubmittedAt.UnixNano(), j.ID)
		if err != nil {
			return err
		}
		js, err = scanJobs(rows)
		return err
	})
	return js, err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
