package job

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job/manifest"
	"insitu/enclave/job/passkey"
	"insitu/enclave/keys"
	"insitu/enclave/store"
)

// Signature contexts of stewards' decisions.
const (
	ApprovalContext  = "insitu job approval v1"
	RejectionContext = "insitu job rejection v1"
)

// ApprovalMessage is what a steward signs, under ApprovalContext, to approve the manifest: its
// SHA-256 (manifest.Hash).
func ApprovalMessage(m *manifest.Manifest) []byte {
	h := m.Hash()
	return h[:]
}

// RejectionMessage is what a steward signs, under RejectionContext, to reject the manifest with
// reason: its SHA-256 followed by the reason's bytes.
func RejectionMessage(m *manifest.Manifest, reason string) []byte {
	h := m.Hash()
	return append(h[:], reason...)
}

// Settings stewards set, with their defaults.
const (
	// SettingQuorum is the number of distinct stewards whose approvals approve a job.
	SettingQuorum = "approvals.quorum"
	DefaultQuorum = 1
	// SettingMinCohort is the smallest cohort a job may run on.
	SettingMinCohort  = "cohort.min_size"
	DefaultMinCohort  = 100
	maxSettingInteger = 1 << 30
)

var settingDefaults = map[string]int{SettingQuorum: DefaultQuorum, SettingMinCohort: DefaultMinCohort}

// Decision is one steward's recorded approval or rejection.
type Decision struct {
	Steward     string
	Fingerprint string
	Approve     bool
	Reason      string
	At          time.Time
	// Registered is whether the key that signed the decision is still registered: approvals of
	// stewards removed since count no more.
	Registered bool
	// Signature is the steward's signature as recorded: over ApprovalMessage under ApprovalContext
	// for an approval, over RejectionMessage under RejectionContext for a rejection. For a decision
	// made with a passkey (WebAuthn set) it is the assertion's ES256 signature, whose challenge is
	// PasskeyChallenge of the same message.
	Signature []byte
	// WebAuthn is the rest of the passkey assertion and the steward's enrolment of the credential,
	// for a decision made in the console; nil for an ML-DSA signature.
	WebAuthn *passkey.Evidence
}

// Status is where a job's approval stands.
type Status struct {
	State State
	// Approvals counts the distinct stewards, still registered with the key they signed with, that
	// approved; Quorum is how many are needed; Stewards is
	// how many are registered (the M of N-of-M).
	Approvals, Quorum, Stewards int
	Decisions                   []Decision
}

// Approve records steward's approval of job id: sig is the steward's signature over
// ApprovalMessage under ApprovalContext. When the quorum is reached the job becomes approved, in the
// same transaction. An approval the steward already gave changes nothing.
func (b *Board) Approve(ctx context.Context, id, steward string, sig []byte) (Status, error) {
	return b.decide(ctx, id, steward, sig, true, "")
}

// Reject rejects job id on steward's decision: sig is the steward's signature over RejectionMessage
// under RejectionContext. reason is what the bank sees; it must not be empty.
func (b *Board) Reject(ctx context.Context, id, steward string, sig []byte, reason string) (Status, error) {
	if reason == "" || len(reason) > manifest.MaxText {
		return Status{}, fmt.Errorf("job: reject %s: give a reason of 1 to %d bytes: the bank sees it", id, manifest.MaxText)
	}
	return b.decide(ctx, id, steward, sig, false, reason)
}

func (b *Board) decide(ctx context.Context, id, steward string, sig []byte, approve bool, reason string) (Status, error) {
	return b.decideWith(ctx, id, steward, approve, reason, func(_ context.Context, _ *sql.Tx, p Party, msg []byte, sctx string) ([]byte, []byte, error) {
		if !p.Verify(msg, sctx, sig) {
			return nil, nil, fmt.Errorf("%w: not %s's signature over %s", ErrSignature, p.Name, hashString(msg))
		}
		return sig, nil, nil
	})
}

// verifier checks a steward's decision over msg (under sctx for an ML-DSA signature) in the
// decision's transaction and returns the signature and, for a passkey, the evidence to record.
type verifier func(ctx context.Context, tx *sql.Tx, p Party, msg []byte, sctx string) (sig, evidence []byte, err error)

func (b *Board) decideWith(ctx context.Context, id, steward string, approve bool, reason string, verify verifier) (Status, error) {
	var st Status
	verb := "approve"
	if !approve {
		verb = "reject"
	}
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		j, err := jobTx(ctx, tx, id)
		if err != nil {
			return err
		}
		target := Approved
		if !approve {
			target = Rejected
		}
		if j.State != Submitted {
			return &TransitionError{ID: id, From: j.State, To: target}
		}
		if approve && !b.now().Before(j.Manifest.ExpiresAt()) {
			return fmt.Errorf("%w: job %s expired at %s: the bank must submit a new request", ErrExpired, id, j.Manifest.Expires)
		}
		p, err := partyTx(ctx, tx, steward)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrParty, err)
		}
		if p.Role != keys.RoleSteward {
			return fmt.Errorf("%w: %s is a %s: only a steward may %s a job", ErrParty, steward, p.Role, verb)
		}
		msg, sctx := ApprovalMessage(j.Manifest), ApprovalContext
		if !approve {
			msg, sctx = RejectionMessage(j.Manifest, reason), RejectionContext
		}
		sig, evidence, err := verify(ctx, tx, p, msg, sctx)
		if err != nil {
			return err
		}
		now := b.now()
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO decisions (job_id, steward, fingerprint, approve, reason, signature, at, webauthn)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, steward, p.Fingerprint, approve, reason, sig, now.UnixNano(), evidence)
		if err != nil {
			return err
		}
		if st, err = statusTx(ctx, tx, j); err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // the steward approved before: counted once
		}
		details := map[string]any{"steward": steward, "fingerprint": p.Fingerprint, "approvals": st.Approvals, "quorum": st.Quorum}
		if evidence != nil {
			details["by"] = "passkey"
		}
		if !approve {
			_, err = b.transition(ctx, tx, id, Rejected, reason, audit.Event{Kind: audit.KindRejection, Actor: steward, Payload: details})
			st.State = Rejected
			return err
		}
		if st.Approvals >= st.Quorum {
			_, err = b.transition(ctx, tx, id, Approved, "", audit.Event{Kind: audit.KindApproval, Actor: steward, Payload: details})
			st.State = Approved
			return err
		}
		details["manifest_hash"], details["state"] = j.ManifestHash, string(j.State)
		_, err = b.audit.AppendTx(ctx, tx, audit.Event{Kind: audit.KindApproval, Actor: steward, Subject: id, Payload: details})
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("job: %s %s: %w", verb, id, err)
	}
	return st, nil
}

func statusTx(ctx context.Context, tx *sql.Tx, j *Job) (Status, error) {
	st := Status{State: j.State}
	var err error
	if st.Quorum, err = settingTx(ctx, tx, SettingQuorum); err != nil {
		return st, err
	}
	if st.Stewards, err = countStewardsTx(ctx, tx); err != nil {
		return st, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT d.steward, d.fingerprint, d.approve, d.reason, d.at, d.signature, d.webauthn,
		EXISTS (SELECT 1 FROM parties p WHERE p.name = d.steward AND p.fingerprint = d.fingerprint AND p.removed_at IS NULL)
		FROM decisions d WHERE d.job_id = ? ORDER BY d.at, d.steward`, j.ID)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var d Decision
		var at int64
		var evidence []byte
		if err := rows.Scan(&d.Steward, &d.Fingerprint, &d.Approve, &d.Reason, &at, &d.Signature, &evidence, &d.Registered); err != nil {
			return st, err
		}
		if evidence != nil {
			d.WebAuthn = new(passkey.Evidence)
			if err := json.Unmarshal(evidence, d.WebAuthn); err != nil {
				return st, fmt.Errorf("job %s: the passkey evidence of %s's decision: %w", j.ID, d.Steward, err)
			}
		}
		d.At = time.Unix(0, at).UTC()
		if d.Approve && d.Registered {
			st.Approvals++
		}
		st.Decisions = append(st.Decisions, d)
	}
	return st, rows.Err()
}

// Status returns where job id's approval stands.
func (b *Board) Status(ctx context.Context, id string) (Status, error) {
	var st Status
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		j, err := jobTx(ctx, tx, id)
		if err != nil {
			return err
		}
		st, err = statusTx(ctx, tx, j)
		return err
	})
	return st, err
}

// Setting returns the value of a setting (SettingQuorum, SettingMinCohort), its default if unset.
func (b *Board) Setting(ctx context.Context, key string) (int, error) {
	var v int
	err := b.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		v, err = settingTx(ctx, tx, key)
		return err
	})
	return v, err
}

func settingTx(ctx context.Context, tx *sql.Tx, key string) (int, error) {
	def, ok := settingDefaults[key]
	if !ok {
		return 0, fmt.Errorf("job: unknown setting %q (known: %s, %s)", key, SettingQuorum, SettingMinCohort)
	}
	var s string
	switch err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&s); {
	case isNoRows(err):
		return def, nil
	case err != nil:
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("job: setting %s holds %q, not an integer", key, s)
	}
	return v, nil
}

// SetSetting sets a setting to a positive integer, audited as a config_change by actor.
func (b *Board) SetSetting(ctx context.Context, actor, key string, value int) error {
	if _, ok := settingDefaults[key]; !ok {
		return fmt.Errorf("job: unknown setting %q (known: %s, %s)", key, SettingQuorum, SettingMinCohort)
	}
	if value < 1 || value > maxSettingInteger {
		return fmt.Errorf("job: setting %s: %d is out of range: give an integer from 1 to %d", key, value, maxSettingInteger)
	}
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		old, err := settingTx(ctx, tx, key)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			key, strconv.Itoa(value)); err != nil {
			return err
		}
		_, err = b.audit.AppendTx(ctx, tx, audit.Event{Kind: audit.KindConfigChange, Actor: actor, Subject: "setting " + key,
			Payload: map[string]any{"change": "setting", "key": key, "old": old, "new": value}})
		return err
	})
	if err != nil {
		return fmt.Errorf("job: set %s: %w", key, err)
	}
	return nil
}

// CheckCohortSize returns an error wrapping ErrCohortTooSmall if a cohort of n subjects is below
// the minimum (SettingMinCohort).
func (b *Board) CheckCohortSize(ctx context.Context, n int) error {
	min, err := b.Setting(ctx, SettingMinCohort)
	if err != nil {
		return err
	}
	if n < min {
		return fmt.Errorf("%w: %d subjects, the stewards' minimum is %d: the job cannot run", ErrCohortTooSmall, n, min)
	}
	return nil
}

// Migrations creates the board's tables, scope "job".
var Migrations = []store.Migration{{
	Scope: "job", Version: 1, Name: "parties, jobs, decisions, settings",
	SQL: `
CREATE TABLE parties (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL,
	role        TEXT    NOT NULL,
	signing_key BLOB    NOT NULL,
	hpke_key    BLOB    NOT NULL,
	fingerprint TEXT    NOT NULL,
	added_at    INTEGER NOT NULL,
	removed_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX parties_active ON parties (name) WHERE removed_at IS NULL;
CREATE TABLE jobs (
	id            TEXT    PRIMARY KEY,
	bank          TEXT    NOT NULL,
	state         TEXT    NOT NULL CHECK (state IN ('submitted','approved','rejected','queued','running','succeeded','failed','cancelled','released')),
	reason        TEXT    NOT NULL,
	manifest_hash TEXT    NOT NULL UNIQUE,
	plugin        TEXT    NOT NULL,
	signed        BLOB    NOT NULL,
	submitted_at  INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX jobs_bank ON jobs (bank, submitted_at);
CREATE INDEX jobs_state ON jobs (state);
CREATE INDEX jobs_plugin ON jobs (plugin, submitted_at);
CREATE TABLE decisions (
	job_id      TEXT    NOT NULL REFERENCES jobs (id),
	steward     TEXT    NOT NULL,
	fingerprint TEXT    NOT NULL,
	approve     INTEGER NOT NULL,
	reason      TEXT    NOT NULL,
	signature   BLOB    NOT NULL,
	at          INTEGER NOT NULL,
	PRIMARY KEY (job_id, steward, approve)
) STRICT;
CREATE TABLE settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;`,
}, {
	Scope: "job", Version: 2, Name: "passkeys, passkey requests, passkey evidence of decisions",
	SQL: passkeyMigration,
}, {
	Scope: "job", Version: 3, Name: "held-out ROC curves of released jobs",
	SQL: curveMigration,
}}

// hashString shows a decision message's leading 32 bytes (the manifest hash) in errors.
func hashString(msg []byte) string {
	if len(msg) < 32 {
		return hex.EncodeToString(msg)
	}
	return "sha256:" + hex.EncodeToString(msg[:32])
}
