// Package registry is the enclave's model registry: every model the output gate released, with its
// receipt, family, input columns, fitted transforms, version and owner bank, so that it can be
// listed, exported (JSON, PMML) and served (package scoring) — and revoked.
//
// Call New with the state database (opened with Migrations) and the audit log. The job executor
// registers a released model inside the release's own transaction (RegisterTx, from the gate's
// Request.OnCommit), so a release and its registry entry commit together. Then List, Get and
// Revoke; Setting and SetSetting hold the steward's serving settings (SettingMinFeatures).
//
// A revoked model stays listed, with who revoked it, when and why, and never scores again.
// Registration, revocation and setting changes are audited.
package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/gate"
	"insitu/enclave/store"
	"insitu/modeling/features"
	"insitu/modeling/pmml"
)

// Audit kinds the registry records.
const (
	KindRegister audit.Kind = "model_register"
	KindRevoke   audit.Kind = "model_revoke"
	KindSetting  audit.Kind = "model_setting"
)

// SettingMinFeatures is the steward's minimum number of input columns a served model must read
// (DefaultMinFeatures): a model of fewer inputs would let a bank read a value back through its
// scores.
const SettingMinFeatures = "serving.min_features"

// DefaultMinFeatures is SettingMinFeatures until a steward sets it.
const DefaultMinFeatures = 3

// MaxReason bounds a revocation's reason, in bytes.
const MaxReason = 500

// Sentinel errors.
var (
	// ErrNotFound: no such model (or, for a bank, not one of its own).
	ErrNotFound = errors.New("model not found")
	// ErrRevoked: the model was revoked.
	ErrRevoked = errors.New("model revoked")
	// ErrFamily: the release holds no model the registry can keep (no weights, trees or scorecard,
	// or one that does not fit the transforms' features).
	ErrFamily = errors.New("model family cannot be registered")
	// ErrInvalid: a request breaks a rule (reason, setting value).
	ErrInvalid = errors.New("invalid registry request")
)

// Migrations create the registry's tables, scope "registry".
var Migrations = []store.Migration{{
	Scope: "registry", Version: 1, Name: "models, revocations and serving settings",
	SQL: `
CREATE TABLE registry_models (
	id              TEXT    PRIMARY KEY,
	bank            TEXT    NOT NULL,
	name            TEXT    NOT NULL,
	version         INTEGER NOT NULL,
	family          TEXT    NOT NULL,
	document        TEXT    NOT NULL,
	receipt         TEXT    NOT NULL,
	registered_at   INTEGER NOT NULL,
	UNIQUE (bank, name, version)
) STRICT;
CREATE TABLE registry_revocations (
	model_id   TEXT    PRIMARY KEY REFERENCES registry_models (id),
	actor      TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	revoked_at INTEGER NOT NULL
) STRICT;
CREATE TABLE registry_settings (
	key   TEXT    PRIMARY KEY,
	value INTEGER NOT NULL
) STRICT;
CREATE TRIGGER registry_models_no_update BEFORE UPDATE ON registry_models
	BEGIN SELECT RAISE(ABORT, 'registered models do not change: revoke and release anew'); END;
CREATE TRIGGER registry_models_no_delete BEFORE DELETE ON registry_models
	BEGIN SELECT RAISE(ABORT, 'registered models are kept: revoke them'); END;
CREATE TRIGGER registry_revocations_no_delete BEFORE DELETE ON registry_revocations
	BEGIN SELECT RAISE(ABORT, 'revocations are facts'); END;`,
}}

// Store is the state database; *store.DB is one.
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	ReadTx(ctx context.Context, fn func(*sql.Tx) error) error
}

// Auditor records events in the caller's transaction; *audit.Log is one.
type Auditor interface {
	AppendTx(ctx context.Context, tx *sql.Tx, ev audit.Event) (audit.Record, error)
}

var _ Auditor = (*audit.Log)(nil)

// Registry is the model registry. It is safe for concurrent use.
type Registry struct {
	db  Store
	log Auditor
	now func() time.Time
}

// Options configure a Registry.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// New returns the registry kept in db. It panics if db or log is nil (programmer error).
func New(db Store, log Auditor, o Options) *Registry {
	if db == nil || log == nil {
		panic("registry: New needs a database and an audit log")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Registry{db: db, log: log, now: o.Now}
}

// Model is a registry entry: the document, when it was registered and, if it was, its revocation.
type Model struct {
	Document
	RegisteredAt time.Time   `json:"registered_at"`
	Revocation   *Revocation `json:"revocation,omitempty"`
}

// Revoked reports whether the model was revoked.
func (m *Model) Revoked() bool { return m.Revocation != nil }

// Revocation says who revoked a model, when and why.
type Revocation struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// ReleaseInfo is what the job executor hands FromRelease: the release's bundle and receipt and what the
// cohort kept of the manifest.
type ReleaseInfo struct {
	Bundle  *gate.Bundle
	Receipt *gate.Receipt
	Family  string
	Dataset string
	Version int
	// Inputs are the model's input columns and Items their catalog items.
	Inputs []string
	Items  []string
	// Transforms are the transforms fitted on the cohort: the features the weights apply to.
	Transforms *features.Fitted
}

// FromRelease builds the document of a release. The family switch is open: a bundle with weights
// is a linear model (whatever the family's name, the gate releases σ(w·x + b)), a bundle with trees
// a tree ensemble (σ of the base score plus the leaves' values), a bundle with a scorecard a points
// table, served with up to DefaultReasonCodes reason codes and scaled by its own scaling; another
// kind of released model gives ErrFamily until the registry knows it. Name and Version are set by
// RegisterTx.
func FromRelease(r ReleaseInfo) (*Document, error) {
	b, rec := r.Bundle, r.Receipt
	if b == nil || rec == nil || r.Transforms == nil {
		return nil, fmt.Errorf("%w: no bundle, receipt or transforms", ErrFamily)
	}
	d := &Document{Format: DocumentFormat, ID: b.Job, Bank: b.Bank, Family: r.Family, Purpose: rec.Purpose,
		Dataset: r.Dataset, DatasetVersion: r.Version, Items: r.Items, Inputs: r.Inputs,
		Features: r.Transforms.Names(), Transforms: r.Transforms, Points: pmml.DefaultPoints, ProbabilityStep: DefaultProbabilityStep,
		Release: Release{Job: b.Job, ManifestHash: b.ManifestHash, WeightsSHA256: rec.Outputs.Weights, TreesSHA256: rec.Outputs.Trees,
			ScorecardSHA256: rec.Outputs.Scorecard, BundleSHA256: rec.Outputs.Bundle,
			AuditSeq: rec.Audit.Seq, AuditHash: rec.Audit.Hash.String(), Verdict: rec.Gate.Result, ReleasedAt: rec.ReleasedAt}}
	kinds := 0
	for _, set := range []bool{b.Weights != nil, b.Trees != nil, b.Scorecard != nil} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, fmt.Errorf("%w: the release holds more than one kind of model", ErrFamily)
	}
	switch {
	case b.Weights != nil:
		if len(b.Weights.Names) != len(d.Features) {
			return nil, fmt.Errorf("%w: %d released weights for %d features", ErrFamily, len(b.Weights.Names), len(d.Features))
		}
		for j, n := range b.Weights.Names {
			if n != d.Features[j] {
				return nil, fmt.Errorf("%w: weight %d is named %q, feature %q", ErrFamily, j+1, n, d.Features[j])
			}
		}
		d.Linear = &pmml.Linear{Weights: append([]float64(nil), b.Weights.Values...), Intercept: b.Weights.Intercept}
	case b.Trees != nil:
		t, err := treesFromRelease(b.Trees, d.Features)
		if err != nil {
			return nil, err
		}
		d.Trees = t
	case b.Scorecard != nil:
		sc, err := scorecardFromRelease(b.Scorecard)
		if err != nil {
			return nil, err
		}
		idx, err := characteristicIndex(sc, d.Features)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFamily, err)
		}
		d.Scorecard, d.ReasonCodes, d.Points = sc, min(DefaultReasonCodes, len(sc.Characteristics)), scorecardPoints(sc)
		d.charIndex = idx
	default:
		return nil, fmt.Errorf("%w: family %q released no weights, trees or scorecard", ErrFamily, r.Family)
	}
	return d, nil
}

// ModelName is the name a bank's model of family on dataset is registered under.
func ModelName(dataset, family string) string {
	return strings.ToLower(dataset + "." + family)
}

// RegisterTx registers d inside tx (the release's transaction): it numbers the version among the
// bank's models of the same name, stores the document and the receipt, and audits the registration.
func (r *Registry) RegisterTx(ctx context.Context, tx *sql.Tx, d *Document, rec *gate.Receipt) (*Model, error) {
	if d.Name == "" {
		d.Name = ModelName(d.Dataset, d.Family)
	}
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM registry_models WHERE bank = ? AND name = ?`, d.Bank, d.Name).Scan(&last); err != nil {
		return nil, fmt.Errorf("registry: register %s: %w", d.ID, err)
	}
	d.Version = int(last.Int64) + 1
	if err := d.Check(); err != nil {
		return nil, fmt.Errorf("registry: register %s: %w", d.ID, err)
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	receipt, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO registry_models (id, bank, name, version, family, document, receipt, registered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, d.ID, d.Bank, d.Name, d.Version, d.Family, string(doc), string(receipt), now.UnixNano()); err != nil {
		return nil, fmt.Errorf("registry: register %s: %w", d.ID, err)
	}
	if _, err := r.log.AppendTx(ctx, tx, audit.Event{Kind: KindRegister, Actor: "enclave", Subject: "model " + d.ID,
		Payload: map[string]any{"bank": d.Bank, "name": d.Name, "version": d.Version, "family": d.Family,
			"dataset": d.Dataset, "dataset_version": d.DatasetVersion, "inputs": len(d.Inputs), "features": len(d.Features),
			"items": d.Items, "release_seq": d.Release.AuditSeq}}); err != nil {
		return nil, err
	}
	return &Model{Document: *d, RegisteredAt: now}, nil
}

// Filter selects models for List.
type Filter struct {
	// Bank keeps one bank's models; all when empty.
	Bank string
	// Active leaves revoked models out.
	Active bool
}

// List returns the registered models, newest first.
func (r *Registry) List(ctx context.Context, f Filter) ([]*Model, error) {
	q := `SELECT m.document, m.registered_at, v.actor, v.reason, v.revoked_at FROM registry_models m
		LEFT JOIN registry_revocations v ON v.model_id = m.id WHERE (?1 = '' OR m.bank = ?1)`
	if f.Active {
		q += ` AND v.model_id IS NULL`
	}
	q += ` ORDER BY m.registered_at DESC, m.id DESC`
	var out []*Model
	err := r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, f.Bank)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanModel(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("registry: list: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanModel(s scanner) (*Model, error) {
	var doc string
	var at int64
	var actor, reason sql.NullString
	var revokedAt sql.NullInt64
	if err := s.Scan(&doc, &at, &actor, &reason, &revokedAt); err != nil {
		return nil, err
	}
	d, err := ParseDocument([]byte(doc))
	if err != nil {
		return nil, fmt.Errorf("stored document: %w", err)
	}
	m := &Model{Document: *d, RegisteredAt: time.Unix(0, at).UTC()}
	if revokedAt.Valid {
		m.Revocation = &Revocation{Actor: actor.String, Reason: reason.String, At: time.Unix(0, revokedAt.Int64).UTC()}
	}
	return m, nil
}

// Get returns model id. bank, when not empty, must own it: another bank's model gives ErrNotFound,
// as an unknown id does.
func (r *Registry) Get(ctx context.Context, id, bank string) (*Model, error) {
	var m *Model
	err := r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		m, err = getTx(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if bank != "" && m.Bank != bank {
		return nil, fmt.Errorf("registry: model %s: %w", id, ErrNotFound)
	}
	return m, nil
}

func getTx(ctx context.Context, tx *sql.Tx, id string) (*Model, error) {
	row := tx.QueryRowContext(ctx, `SELECT m.document, m.registered_at, v.actor, v.reason, v.revoked_at FROM registry_models m
		LEFT JOIN registry_revocations v ON v.model_id = m.id WHERE m.id = ?`, id)
	m, err := scanModel(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registry: model %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: model %s: %w", id, err)
	}
	return m, nil
}

// Receipt returns the gate's receipt of model id's release, as registered.
func (r *Registry) Receipt(ctx context.Context, id string) (*gate.Receipt, error) {
	var raw string
	err := r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT receipt FROM registry_models WHERE id = ?`, id).Scan(&raw)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registry: model %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var rec gate.Receipt
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, fmt.Errorf("registry: model %s: stored receipt: %w", id, err)
	}
	return &rec, nil
}

// Revoke revokes model id, audited, with actor's reason (1 to MaxReason bytes). bank, when not
// empty, must own the model (a steward passes ""). Revoking a revoked model gives ErrRevoked.
func (r *Registry) Revoke(ctx context.Context, actor, bank, id, reason string) (*Model, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > MaxReason {
		return nil, fmt.Errorf("registry: revoke %s: %w: give a reason of 1 to %d bytes", id, ErrInvalid, MaxReason)
	}
	var m *Model
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if m, err = getTx(ctx, tx, id); err != nil {
			return err
		}
		if bank != "" && m.Bank != bank {
			return fmt.Errorf("registry: model %s: %w", id, ErrNotFound)
		}
		if m.Revoked() {
			return fmt.Errorf("registry: model %s was revoked on %s: %w", id, m.Revocation.At.Format(time.RFC3339), ErrRevoked)
		}
		now := r.now().UTC()
		if _, err := tx.ExecContext(ctx, `INSERT INTO registry_revocations (model_id, actor, reason, revoked_at) VALUES (?, ?, ?, ?)`,
			id, actor, reason, now.UnixNano()); err != nil {
			return err
		}
		m.Revocation = &Revocation{Actor: actor, Reason: reason, At: now}
		_, err = r.log.AppendTx(ctx, tx, audit.Event{Kind: KindRevoke, Actor: actor, Subject: "model " + id,
			Payload: map[string]any{"bank": m.Bank, "name": m.Name, "version": m.Version, "reason": reason}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// settingDefaults are the known settings and their defaults.
var settingDefaults = map[string]int{SettingMinFeatures: DefaultMinFeatures}

// MaxMinFeatures bounds SettingMinFeatures.
const MaxMinFeatures = 1000

// Setting returns a serving setting's value (its default until set).
func (r *Registry) Setting(ctx context.Context, key string) (int, error) {
	def, ok := settingDefaults[key]
	if !ok {
		return 0, fmt.Errorf("registry: %w: unknown setting %q (known: %s)", ErrInvalid, key, SettingMinFeatures)
	}
	v := def
	err := r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM registry_settings WHERE key = ?`, key).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return v, err
}

// SetSetting sets a serving setting, audited as actor's.
func (r *Registry) SetSetting(ctx context.Context, actor, key string, value int) error {
	if _, ok := settingDefaults[key]; !ok {
		return fmt.Errorf("registry: %w: unknown setting %q (known: %s)", ErrInvalid, key, SettingMinFeatures)
	}
	if value < 1 || value > MaxMinFeatures {
		return fmt.Errorf("registry: %w: setting %s: %d is out of range: give an integer from 1 to %d", ErrInvalid, key, value, MaxMinFeatures)
	}
	return r.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO registry_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
			return err
		}
		_, err := r.log.AppendTx(ctx, tx, audit.Event{Kind: KindSetting, Actor: actor, Subject: "setting " + key,
			Payload: map[string]any{"key": key, "value": value}})
		return err
	})
}

// State returns model id's owner and revocation (nil when in force) without reading its document:
// the check online scoring makes on every request.
func (r *Registry) State(ctx context.Context, id string) (bank string, rev *Revocation, err error) {
	err = r.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var actor, reason sql.NullString
		var at sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT m.bank, v.actor, v.reason, v.revoked_at FROM registry_models m
			LEFT JOIN registry_revocations v ON v.model_id = m.id WHERE m.id = ?`, id).Scan(&bank, &actor, &reason, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("registry: model %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if at.Valid {
			rev = &Revocation{Actor: actor.String, Reason: reason.String, At: time.Unix(0, at.Int64).UTC()}
		}
		return nil
	})
	return bank, rev, err
}
