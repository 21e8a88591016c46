package gate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
)

// WaiverContext is the ML-DSA-65 context string of a steward's waiver signature.
const WaiverContext = "insitu verification waiver v1"

// Waiver is a steward's signed waiver of model verification for one job: the gate then releases the
// job's weights of a family it cannot verify, rounded, with the bits bound of the whole max_abs box.
type Waiver struct {
	Steward     string    `json:"steward"`
	Fingerprint string    `json:"fingerprint"`
	Reason      string    `json:"reason"`
	Signature   []byte    `json:"signature"`
	At          time.Time `json:"at"`
}

// WaiverMessage is what a steward signs, under WaiverContext, to waive verification for the manifest
// whose SHA-256 is manifestHash (manifest.Hash): the hash followed by the reason's bytes.
func WaiverMessage(manifestHash []byte, reason string) []byte {
	return append(append([]byte(nil), manifestHash...), reason...)
}

// Waive records steward's waiver of model verification for job id: sig is the steward's signature
// over WaiverMessage(manifest hash, reason) under WaiverContext. Only a registered steward may waive,
// only before the job is released, with a reason of 1 to manifest.MaxText bytes; the waiver is
// audited (KindWaiver) and listed in the receipt. A second waiver of the same job replaces nothing:
// the first stands.
func (g *Gate) Waive(ctx context.Context, id, steward string, sig []byte, reason string) error {
	if reason == "" || len(reason) > manifest.MaxText {
		return fmt.Errorf("gate: waive %s: %w: give a reason of 1 to %d bytes", id, ErrWaiver, manifest.MaxText)
	}
	j, err := g.jobs.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("gate: waive %s: %w", id, err)
	}
	switch j.State {
	case job.Released, job.Rejected, job.Failed, job.Cancelled:
		return fmt.Errorf("gate: waive %s: %w: the job is %s", id, ErrWaiver, j.State)
	}
	p, err := g.jobs.Party(ctx, steward)
	if err != nil {
		return fmt.Errorf("gate: waive %s: %w: %w", id, ErrWaiver, err)
	}
	if p.Role != keys.RoleSteward {
		return fmt.Errorf("gate: waive %s: %w: %s is a %s; only a steward may waive verification", id, ErrWaiver, steward, p.Role)
	}
	h := j.Manifest.Hash()
	if !p.Verify(WaiverMessage(h[:], reason), WaiverContext, sig) {
		return fmt.Errorf("gate: waive %s: %w: not %s's signature over the waiver of manifest %s", id, ErrWaiver, steward, j.ManifestHash)
	}
	err = g.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO gate_waivers (job_id, steward, fingerprint, reason, signature, at) VALUES (?, ?, ?, ?, ?, ?)`,
			id, steward, p.Fingerprint, reason, sig, g.opts.Now().UnixNano())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		_, err = g.log.AppendTx(ctx, tx, audit.Event{Kind: KindWaiver, Actor: steward, Subject: id,
			Payload: map[string]any{"manifest_hash": j.ManifestHash, "family": j.Manifest.Model.Family, "fingerprint": p.Fingerprint}})
		return err
	})
	if err != nil {
		return fmt.Errorf("gate: waive %s: %w", id, err)
	}
	return nil
}

// waiver returns the job's waiver, nil if none.
func (g *Gate) waiver(ctx context.Context, j *job.Job) (*Waiver, error) {
	var w *Waiver
	err := g.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var x Waiver
		var at int64
		err := tx.QueryRowContext(ctx, `SELECT steward, fingerprint, reason, signature, at FROM gate_waivers WHERE job_id = ?`, j.ID).
			Scan(&x.Steward, &x.Fingerprint, &x.Reason, &x.Signature, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		x.At = time.Unix(0, at).UTC()
		w = &x
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read waiver: %w", err)
	}
	return w, nil
}
