package gate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"insitu/enclave/datadir"
	"insitu/enclave/keys"
	"insitu/enclave/store"
)

// Migrations create the gate's tables, scope "gate": the committed releases (which files Result
// returns) and stewards' waivers.
var Migrations = []store.Migration{{
	Scope: "gate", Version: 1, Name: "releases and waivers",
	SQL: `
CREATE TABLE gate_releases (
	job_id         TEXT    PRIMARY KEY REFERENCES jobs (id),
	sealed_file    TEXT    NOT NULL,
	sealed_sha256  TEXT    NOT NULL,
	receipt_file   TEXT    NOT NULL,
	receipt_sha256 TEXT    NOT NULL,
	audit_seq      INTEGER NOT NULL,
	released_at    INTEGER NOT NULL
) STRICT;
CREATE TABLE gate_waivers (
	job_id      TEXT    PRIMARY KEY REFERENCES jobs (id),
	steward     TEXT    NOT NULL,
	fingerprint TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	signature   BLOB    NOT NULL,
	at          INTEGER NOT NULL
) STRICT;`,
}}

// SealInfo is the HPKE info string results are sealed under.
const SealInfo = "insitu result v1"

// BundleFormat is the value of Bundle.Format.
const BundleFormat = "insitu-result-v1"

// Bundle is the released result, sealed to the bank: the rounded weights, the enclave's scores of
// every cohort subject (keyed by the bank's identifiers, sorted), the enclave's held-out metrics and
// the gate's verdict.
type Bundle struct {
	Format       string             `json:"format"`
	Job          string             `json:"job"`
	Bank         string             `json:"bank"`
	ManifestHash string             `json:"manifest_hash"`
	Weights      *Weights           `json:"weights,omitempty"`
	Trees        *Trees             `json:"trees,omitempty"`
	Scorecard    *Scorecard         `json:"scorecard,omitempty"`
	Scores       []Score            `json:"scores,omitempty"`
	Metrics      map[string]float64 `json:"metrics,omitempty"`
	Gate         Verdict            `json:"gate"`

	raw    []byte // the canonical bytes, as sealed
	sealed string // hex SHA-256 of the sealed file
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// hashes returns the output hashes of the bundle's parts (not the bundle or sealed file).
func (b *Bundle) hashes() (OutputHashes, error) {
	var h OutputHashes
	if b.Weights != nil {
		j, err := canonicalJSON(b.Weights)
		if err != nil {
			return h, err
		}
		h.Weights = sha256Hex(j)
	}
	if b.Trees != nil {
		j, err := canonicalJSON(b.Trees)
		if err != nil {
			return h, err
		}
		h.Trees = sha256Hex(j)
	}
	if b.Scorecard != nil {
		j, err := canonicalJSON(b.Scorecard)
		if err != nil {
			return h, err
		}
		h.Scorecard = sha256Hex(j)
	}
	if b.Scores != nil {
		j, err := canonicalJSON(b.Scores)
		if err != nil {
			return h, err
		}
		h.Scores, h.ScoreCount = sha256Hex(j), len(b.Scores)
	}
	if b.Metrics != nil {
		j, err := canonicalJSON(b.Metrics)
		if err != nil {
			return h, err
		}
		h.Metrics = sha256Hex(j)
		for k := range b.Metrics {
			h.MetricNames = append(h.MetricNames, k)
		}
		slices.Sort(h.MetricNames)
	}
	return h, nil
}

// commit builds, seals, writes and records the release.
func (g *Gate) commit(ctx context.Context, r Request, res *outcome, waiver *Waiver) (*Receipt, error) {
	j, m := r.Job, r.Job.Manifest
	fail := func(err error) (*Receipt, error) { return nil, fmt.Errorf("gate: release %s: %w", j.ID, err) }
	b := &Bundle{Format: BundleFormat, Job: j.ID, Bank: j.Bank, ManifestHash: j.ManifestHash,
		Weights: res.weights, Trees: res.trees, Scorecard: res.scorecard, Scores: res.scores, Metrics: res.metrics, Gate: res.verdict}
	hashes, err := b.hashes()
	if err != nil {
		return fail(err)
	}
	body, err := canonicalJSON(b)
	if err != nil {
		return fail(err)
	}
	sealed, err := r.Bank.Seal(body, SealInfo)
	if err != nil {
		return fail(fmt.Errorf("seal the result to %s: %w", r.Bank.Name, err))
	}
	hashes.Bundle, hashes.BundleBytes = sha256Hex(body), int64(len(body))
	hashes.Sealed, hashes.SealedBytes = sha256Hex(sealed), int64(len(sealed))

	now := g.opts.Now().UTC()
	rec := &Receipt{Format: ReceiptFormat, Job: j.ID, Bank: j.Bank, BankFingerprint: r.Bank.Fingerprint(),
		Enclave: g.id.Public().Fingerprint(), ManifestHash: j.ManifestHash, Purpose: string(m.Purpose), Mode: string(m.Mode),
		Quorum: r.Approvals.Quorum, Waiver: waiver, Dataset: r.Dataset, Plugin: r.Plugin, AuthorizationDigest: r.AuthorizationDigest,
		Cohort: r.Cohort, Outputs: hashes, Gate: res.verdict, ReleasedAt: now}
	if a := r.Aggregate; a != nil {
		rec.Privacy = &Privacy{Epsilon: a.Epsilon, Delta: a.Delta}
	}
	for _, d := range r.Approvals.Decisions {
		if d.Approve && d.Registered {
			rec.Approvals = append(rec.Approvals, Approval{Steward: d.Steward, Fingerprint: d.Fingerprint, Signature: d.Signature, WebAuthn: d.WebAuthn, At: d.At.UTC()})
		}
	}
	details := releaseDetails(r, rec)

	jobDir := filepath.Join(g.dir, j.ID)
	// The job is not released (Release checked it under the job's lock): whatever its folder holds
	// was left by an attempt that did not commit.
	if err := os.RemoveAll(jobDir); err != nil {
		return fail(fmt.Errorf("remove files of an earlier attempt: %w", err))
	}
	if err := os.MkdirAll(jobDir, 0o700); err != nil {
		return fail(err)
	}
	var written []string
	var receiptHash string
	err = g.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := g.jobs.ReleaseTx(ctx, tx, j.ID, details); err != nil {
			return err
		}
		head, err := g.log.HeadTx(ctx, tx)
		if err != nil {
			return err
		}
		rec.Audit = head
		env, err := signReceipt(rec, g.id)
		if err != nil {
			return err
		}
		receiptHash = sha256Hex(env)
		sealedFile, receiptFile := "result-"+hashes.Sealed[:16]+".sealed", "receipt-"+receiptHash[:16]+".json"
		for _, f := range []struct {
			name string
			data []byte
		}{{sealedFile, sealed}, {receiptFile, env}} {
			path := filepath.Join(jobDir, f.name)
			written = append(written, path)
			if err := datadir.WriteFileAtomic(path, f.data, 0o600); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO gate_releases (job_id, sealed_file, sealed_sha256, receipt_file, receipt_sha256, audit_seq, released_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, j.ID, sealedFile, hashes.Sealed, receiptFile, receiptHash, head.Seq, now.UnixNano()); err != nil {
			return err
		}
		if r.OnCommit != nil {
			if err := r.OnCommit(ctx, tx, b, rec); err != nil {
				return err
			}
		}
		_, err = g.log.CheckpointTx(ctx, tx)
		return err
	})
	if err != nil {
		// The commit may have happened although Tx reports a failure: files a committed release
		// names must stay.
		committed, qerr := g.releasedWith(ctx, j.ID, receiptHash)
		if qerr == nil && committed {
			return rec, nil
		}
		if qerr == nil {
			for _, p := range written {
				os.Remove(p)
			}
		}
		return fail(err)
	}
	return rec, nil
}

// releasedWith reports whether job id's committed release has the receipt hash given.
func (g *Gate) releasedWith(ctx context.Context, id, receiptHash string) (bool, error) {
	var got string
	err := g.db.ReadTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT receipt_sha256 FROM gate_releases WHERE job_id = ?`, id).Scan(&got)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil && got == receiptHash && got != "", err
}

// ReleaseEvent is the payload of a release's audit record: what left, to whom, from what, for which
// purpose — hashes, sizes and names, no data value and no subject identifier. Usage reports to data
// providers are built from it (package report).
type ReleaseEvent struct {
	Bank                string        `json:"bank"`
	Purpose             string        `json:"purpose"`
	Mode                string        `json:"mode"`
	Family              string        `json:"family"`
	Dataset             string        `json:"dataset"`
	DatasetVersion      string        `json:"dataset_version"`
	DatasetManifest     string        `json:"dataset_manifest_hash,omitempty"`
	Fields              []string      `json:"fields"`
	Items               []string      `json:"items"`
	Plugin              string        `json:"plugin"`
	AuthorizationDigest string        `json:"authorization_digest,omitempty"`
	Cohort              CohortSummary `json:"cohort"`
	Outputs             OutputHashes  `json:"outputs"`
	Verdict             string        `json:"verdict"`
	BitsBound           float64       `json:"bits_bound"`
	Run                 RunSummary    `json:"run"`
}

func releaseDetails(r Request, rec *Receipt) map[string]any {
	m := r.Job.Manifest
	ev := ReleaseEvent{Bank: rec.Bank, Purpose: rec.Purpose, Mode: rec.Mode, Family: m.Model.Family,
		Dataset: r.Dataset.Name, DatasetVersion: r.Dataset.Version, DatasetManifest: r.Dataset.ManifestHash,
		Plugin: r.Plugin, AuthorizationDigest: r.AuthorizationDigest, Cohort: r.Cohort, Outputs: rec.Outputs,
		Verdict: rec.Gate.Result, BitsBound: rec.Gate.BitsBound, Run: r.Run}
	for _, f := range m.Fields {
		ev.Fields = append(ev.Fields, f.Key)
		if item, _, ok := strings.Cut(f.Key, "."); ok && !slices.Contains(ev.Items, item) {
			ev.Items = append(ev.Items, item)
		}
	}
	slices.Sort(ev.Items)
	// The board merges these keys into its own release payload (from, to, manifest_hash).
	b, _ := json.Marshal(ev)
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return out
}

// Result returns the sealed result and the signed receipt of released job id. A job without a
// committed release gives an error wrapping ErrNotReleased, whatever files its folder may hold;
// files that do not match what the release recorded give an error wrapping ErrResult.
func (g *Gate) Result(ctx context.Context, id string) (sealed, receipt []byte, err error) {
	if !idRE.MatchString(id) {
		return nil, nil, fmt.Errorf("gate: result %s: %w: not a job id", id, ErrNotReleased)
	}
	var sf, sh, rf, rh string
	err = g.db.ReadTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT sealed_file, sealed_sha256, receipt_file, receipt_sha256 FROM gate_releases WHERE job_id = ?`, id).
			Scan(&sf, &sh, &rf, &rh)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("gate: result %s: %w", id, ErrNotReleased)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("gate: result %s: %w", id, err)
	}
	dir := filepath.Join(g.dir, id)
	if sealed, err = os.ReadFile(filepath.Join(dir, sf)); err != nil {
		return nil, nil, fmt.Errorf("gate: result %s: %w: %w", id, ErrResult, err)
	}
	if receipt, err = os.ReadFile(filepath.Join(dir, rf)); err != nil {
		return nil, nil, fmt.Errorf("gate: result %s: %w: %w", id, ErrResult, err)
	}
	if sha256Hex(sealed) != sh || sha256Hex(receipt) != rh {
		return nil, nil, fmt.Errorf("gate: result %s: %w: the files in %s are not the ones released", id, ErrResult, dir)
	}
	return sealed, receipt, nil
}

// OpenResult opens a sealed result with the bank's identity and reads the bundle strictly. Call
// (*Bundle).Check with the verified receipt to check the bundle against the receipt's hashes.
// Errors wrap ErrResult.
func OpenResult(sealed []byte, bank *keys.Identity) (*Bundle, error) {
	body, err := bank.Open(sealed, SealInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResult, err)
	}
	var b Bundle
	if err := strictDecode(body, &b); err != nil {
		return nil, fmt.Errorf("%w: bundle: %v", ErrResult, err)
	}
	if b.Format != BundleFormat {
		return nil, fmt.Errorf("%w: bundle format %q, want %q", ErrResult, b.Format, BundleFormat)
	}
	b.raw, b.sealed = body, sha256Hex(sealed)
	return &b, nil
}

// Check checks the bundle against a receipt (verified with VerifyReceipt): the sealed file's and the
// bundle's hashes and sizes, every artefact's hash, the job, bank and manifest, the verdict, and the
// bits bound recomputed from the released weights. Errors wrap ErrResult.
func (b *Bundle) Check(r *Receipt) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrResult, fmt.Sprintf(format, args...))
	}
	o := r.Outputs
	switch {
	case b.raw == nil:
		return bad("the bundle was not opened with OpenResult")
	case b.sealed != o.Sealed:
		return bad("the sealed file is not the one the receipt names")
	case sha256Hex(b.raw) != o.Bundle || int64(len(b.raw)) != o.BundleBytes:
		return bad("the bundle is not the one the receipt names")
	case b.Job != r.Job || b.Bank != r.Bank || b.ManifestHash != r.ManifestHash:
		return bad("the bundle is of job %s for %s, the receipt of job %s for %s", b.Job, b.Bank, r.Job, r.Bank)
	}
	if canon, err := canonicalJSON(b); err != nil || !bytes.Equal(canon, b.raw) {
		return bad("the bundle is not in its canonical encoding")
	}
	h, err := b.hashes()
	if err != nil {
		return bad("%v", err)
	}
	if h.Weights != o.Weights || h.Trees != o.Trees || h.Scorecard != o.Scorecard || h.Scores != o.Scores || h.ScoreCount != o.ScoreCount || h.Metrics != o.Metrics || !slices.Equal(h.MetricNames, o.MetricNames) {
		return bad("an artefact's hash differs from the receipt's")
	}
	if b.Gate != r.Gate {
		return bad("the bundle's verdict differs from the receipt's")
	}
	if b.Gate.Result == VerdictStructure {
		return b.checkStructure()
	}
	if w := b.Weights; w != nil {
		theta := append(slices.Clone(w.Values), w.Intercept)
		g := b.Gate
		if !(g.Step > 0 && g.MaxAbs > 0) || (g.Result == VerdictVerified && !(g.MaxRelDistance > 0 && g.MaxRelDistance < 1)) {
			return bad("the verdict's parameters are out of range")
		}
		if len(theta) != b.Gate.Parameters {
			return bad("%d parameters, the verdict counts %d", len(theta), b.Gate.Parameters)
		}
		radius := 0.0
		if b.Gate.Result == VerdictVerified {
			radius = PublicRadius(theta, b.Gate.MaxRelDistance, b.Gate.DistanceFloor)
		}
		if radius != b.Gate.Radius || BitsBound(len(theta), radius, b.Gate.Step, b.Gate.MaxAbs) != b.Gate.BitsBound {
			return bad("the bits bound does not follow from the released weights")
		}
	}
	return nil
}
