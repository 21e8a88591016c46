// Package gate is the enclave's output gate: the only way a job's outputs leave the enclave.
//
// Call New once with the state database (opened with Migrations), the audit log, the job board,
// the enclave's identity and the folder results are kept in. After a plugin run succeeded, the job
// executor fills a Request and calls Release; a bank fetches what was released with Result, opens it
// with OpenResult and checks it with (*Bundle).Check; anyone checks a receipt offline, with public
// keys only, with VerifyReceipt.
//
// # What Release does
//
// In order, refusing with a *RefusalError (a code and a reason that carries no number computed from
// the data) at the first step that fails; a refused job stays succeeded and unreleased, and the
// refusal is audited (KindRefusal):
//
//  1. Declared shape: only the outputs the job's manifest declares (the plugin's own metrics are
//     dropped, whatever their names); weights named exactly as the cohort's features, in order;
//     finite; every weight and the intercept within max_abs.
//  2. HE mode: only the ciphertexts of the declared weights are decrypted, "weight/<feature>" and
//     "intercept" (CiphertextWeightPrefix, CiphertextIntercept); a job whose output holds any other
//     ciphertext, or plaintext weights, is refused before anything is decrypted.
//  3. Model verification: the weights are rounded to the step (Options.Step, by default max_abs/4096)
//     and, for the family logistic_regression, the rounded weights θ̂ = (w, b) must lie near the
//     enclave's own exact optimum θ* of the declared objective (package modeling/logreg, on the
//     training part of the cohort): ‖θ̂ − θ*‖₂ ≤ ρ·max(‖θ*‖₂, floor) and the mean excess objective
//     (f(θ̂) − f(θ*))/n ≤ ε (Options). A gbdt job that declares outputs.trees and a scorecard job
//     that declares outputs.scorecard are checked for structure instead (see models.go and
//     ModelBitsBound): splits and bin edges only at the edges the aggregate service answered for the
//     job (Request.Aggregate), trees, depth, leaves and bins within the declared bounds, every value
//     within max_abs and rounded; a scorecard's points are computed by the gate from the declared
//     scaling and bounded by max_points. Other families are refused unless a steward waived the
//     verification for the job (Waive).
//  4. The receipt states the worst-case number of bits a plugin could still hide in the released
//     weights: log2 of the number of rounded vectors the check accepts (BitsBound; ModelBitsBound for
//     trees and scorecards), and in aggregate mode the privacy budget the job's answers spent
//     (Receipt.Privacy, from Request.Aggregate).
//  5. Scores are never the plugin's: the enclave recomputes every cohort subject's score σ(ŵ·x + b̂)
//     from the released weights (σ of the released trees' margin; the probability of default of a
//     scorecard's points), rounds it to Options.ScoreStep and keys it by the bank's own subject
//     identifier. AUC, KS, Gini and log-loss are computed by the enclave on the held-out part of the
//     cohort from those scores, for the metrics the manifest declares. The plugin's own scores and
//     metrics never leave.
//  6. Every released artefact is hashed; the result Bundle is sealed to the bank (HPKE), the sealed
//     file and the signed Receipt are written into the results folder, and in one database
//     transaction the job moves to released with its audit record (hashes, sizes, bits bound,
//     verdict), the release is recorded for Result and the audit head is checkpointed. The receipt
//     carries the head (seq, hash) of the release record.
//
// A crash or failed commit between writing the files and the commit leaves the job succeeded: the
// files are not referenced by any committed release, Result does not return them, and the next
// Release of the job removes them.
//
// # The tolerance and the bits bound
//
// Defaults (DefaultOptions): ρ = 0.6 with floor 1, ε = 0.03 nats per training row, step max_abs·2⁻¹²,
// scores to 1e-4. The tolerances are generous on purpose: an HE training runs few iterations with a
// polynomial sigmoid, so its weights are near but not at the optimum. A plaintext simulation of such a
// training on the default-credit benchmark split (23 features clipped and scaled to [−1, 1], l2 = 1e-3,
// Nesterov gradient descent with step 4/L) measured: with the degree-3 least-squares sigmoid on
// [−8, 8] the iterates settle at relative distance 0.18 and excess 0.019 nats per row (the polynomial
// moves the optimum), and where the test AUC first reaches the benchmark goal (about 60 iterations)
// the relative distance is 0.52–0.53 and the excess 0.004 (degree 7) to 0.023 (degree 3). ρ = 0.6 and
// ε = 0.03 pass those runs; weights that carry a data row, or anything not fitted to the cohort, lie
// at a relative distance near 1 or beyond. TestHELikeRunPasses repeats the check on synthetic data.
//
// A plugin that hides data in its weights can only move them inside the accepted ball, and after
// rounding only to the grid points inside it; the receipt's BitsBound counts those points, so the
// tolerance is traded openly against the bits it allows. For 24 parameters of norm 3.5 with max_abs
// 10 (step 2.4e-3) the bound is 257 bits, against 312 bits for weights released unverified; each
// doubling of the step removes about one bit per parameter. TestSmugglerInsideToleranceWithinBound
// measures a smuggler that knows the optimum: 63 bits through 7 parameters, under a bound of 78.75.
package gate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job"
	"insitu/enclave/keys"
	"insitu/plugins/sdk"
)

// Store is the database the gate keeps its releases in, the one the job board and the audit log
// live in; *store.DB is one.
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	ReadTx(ctx context.Context, fn func(*sql.Tx) error) error
}

// Audit kinds the gate records besides the release itself (audit.KindRelease, appended by the job
// board's ReleaseTx).
const (
	// KindRefusal records a refused release: the job id, the refusal code and reason.
	KindRefusal audit.Kind = "release_refused"
	// KindWaiver records a steward's waiver of model verification for a job.
	KindWaiver audit.Kind = "verification_waiver"
)

// Ciphertext names of an HE job's weights: CiphertextWeightPrefix followed by the feature name for
// each weight, and CiphertextIntercept. Slot 0 of each holds the value.
const (
	CiphertextWeightPrefix = "weight/"
	CiphertextIntercept    = "intercept"
)

// Sentinel errors. A refusal wraps ErrRefused; the others are failures of the caller or of storage.
var (
	// ErrRefused is wrapped by *RefusalError: the outputs failed a check and did not leave.
	ErrRefused = errors.New("outputs refused by the output gate")
	// ErrRequest is wrapped when a Request is malformed (the executor's mistake, not the plugin's).
	ErrRequest = errors.New("invalid release request")
	// ErrState is wrapped when the job is not in a state the gate can release from.
	ErrState = errors.New("job cannot be released in its state")
	// ErrNotReleased is wrapped by Result when the job has no committed release.
	ErrNotReleased = errors.New("job has not been released")
	// ErrReceipt is wrapped when a receipt is malformed or does not verify.
	ErrReceipt = errors.New("receipt does not verify")
	// ErrResult is wrapped when a sealed result does not open or does not match its receipt.
	ErrResult = errors.New("result does not verify")
	// ErrWaiver is wrapped when a waiver is refused.
	ErrWaiver = errors.New("waiver refused")
)

// Options tune the gate's checks. The zero value of a field means its default (DefaultOptions).
type Options struct {
	// MaxRelDistance is ρ: the rounded weights θ̂ (intercept included) pass when
	// ‖θ̂ − θ*‖₂ ≤ ρ·max(‖θ*‖₂, DistanceFloor). It must be below 1. Default 0.6.
	MaxRelDistance float64
	// DistanceFloor keeps the tolerance meaningful when the optimum is near zero. Default 1.
	DistanceFloor float64
	// MaxExcessLoss is ε: the mean excess objective per training row, (f(θ̂) − f(θ*))/n, in nats.
	// Default 0.03.
	MaxExcessLoss float64
	// Step is the absolute rounding step of released weights. Zero means max_abs·RelativeStep, so the
	// bank sets the precision through the max_abs it declares.
	Step float64
	// RelativeStep is the step as a fraction of max_abs when Step is zero. Default 2⁻¹².
	RelativeStep float64
	// ScoreStep is the rounding step of released scores. Default 1e-4.
	ScoreStep float64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DefaultOptions returns the defaults, spelled out.
func DefaultOptions() Options {
	return Options{MaxRelDistance: 0.6, DistanceFloor: 1, MaxExcessLoss: 0.03, RelativeStep: 1.0 / 4096, ScoreStep: 1e-4}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MaxRelDistance <= 0 {
		o.MaxRelDistance = d.MaxRelDistance
	}
	if o.MaxRelDistance >= 1 {
		panic("gate: Options.MaxRelDistance must be below 1")
	}
	if o.DistanceFloor <= 0 {
		o.DistanceFloor = d.DistanceFloor
	}
	if o.MaxExcessLoss <= 0 {
		o.MaxExcessLoss = d.MaxExcessLoss
	}
	if o.RelativeStep <= 0 {
		o.RelativeStep = d.RelativeStep
	}
	if o.ScoreStep <= 0 {
		o.ScoreStep = d.ScoreStep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Gate is the output gate. It is safe for concurrent use; releases of one job are serialised.
type Gate struct {
	db   Store
	log  *audit.Log
	jobs *job.Board
	id   *keys.Identity
	dir  string
	opts Options

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// New returns the gate. db is the state database (opened with Migrations, audit.Migrations and
// job.Migrations), log and jobs the audit log and job board kept in it, id the enclave's identity,
// which signs receipts, and dir the folder results are written to (created if missing). It panics
// if db, log, jobs or id is nil, or on invalid Options (programmer errors).
func New(db Store, log *audit.Log, jobs *job.Board, id *keys.Identity, dir string, opts Options) *Gate {
	if db == nil || log == nil || jobs == nil || id == nil {
		panic("gate: New needs a database, an audit log, a job board and the enclave's identity")
	}
	return &Gate{db: db, log: log, jobs: jobs, id: id, dir: dir, opts: opts.withDefaults(), locks: map[string]*sync.Mutex{}}
}

// Request is what the job executor hands Release after a plugin run succeeded.
type Request struct {
	// Job is the job, in state succeeded.
	Job *job.Job
	// Approvals is the job's approval status; its approving decisions (with their signatures) go into
	// the receipt.
	Approvals job.Status
	// Bank is the bank's registered public identity: results are sealed to it.
	Bank keys.PublicIdentity
	// Dataset names the dataset version the cohort came from.
	Dataset DatasetRef
	// AuthorizationDigest is the digest of the authorization snapshot the cohort was drawn under.
	AuthorizationDigest string
	// Cohort holds the cohort's sizes.
	Cohort CohortSummary
	// Plugin is the digest of the plugin that ran.
	Plugin string
	// Run describes the run, without data values.
	Run RunSummary
	// Output is the plugin's output, checked by the runner against its description and limits.
	Output *sdk.Output
	// Decrypt decrypts slot 0 of a marshalled ciphertext of the job's HE key; nil outside HE mode.
	Decrypt func(ct []byte) (float64, error)
	// Eval is the enclave's plaintext cohort, for verification, scores and metrics.
	Eval *Evaluation
	// Aggregate is what the aggregate query service recorded of the run, required in aggregate mode
	// and nil in the other modes.
	Aggregate *AggregateRecord
	// OnCommit, when set, is called inside the release's database transaction, after the release
	// is recorded, with the released bundle and the receipt: the enclave registers the released
	// model there (package registry), so a release and its registry entry commit or roll back
	// together. An error rolls the release back.
	OnCommit func(ctx context.Context, tx *sql.Tx, b *Bundle, rec *Receipt) error
}

// AggregateRecord is what the aggregate query service recorded of an aggregate-mode run: the bin
// edges its answers used and the privacy budget they spent.
type AggregateRecord struct {
	// Edges holds, per feature name, every bin edge of the answers the service gave the job (any
	// order, repeats allowed). The splits of released trees and the bins of a released scorecard
	// must lie at these edges.
	Edges map[string][]float64
	// Epsilon and Delta are the privacy budget the job's answers spent: (ε, δ)-differential privacy
	// for the job as a whole.
	Epsilon, Delta float64
}

// DatasetRef names a dataset version.
type DatasetRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// ManifestHash is the hash of the dataset version's manifest.
	ManifestHash string `json:"manifest_hash"`
}

// CohortSummary holds a cohort's sizes only.
type CohortSummary struct {
	Total int `json:"total"`
	Train int `json:"train"`
	Test  int `json:"test"`
}

// RunSummary describes a plugin run without any data value.
type RunSummary struct {
	Reason      string        `json:"reason,omitempty"`
	SandboxMode string        `json:"sandbox_mode,omitempty"`
	Layers      []string      `json:"sandbox_layers,omitempty"`
	Weakened    bool          `json:"sandbox_weakened,omitempty"`
	WallTime    time.Duration `json:"wall_time_ns,omitempty"`
	Refreshes   int           `json:"refreshes,omitempty"`
}

// Evaluation is the enclave's plaintext cohort.
type Evaluation struct {
	// Features names the columns, in the order the plugin saw them.
	Features []string
	// TrainX and TestX hold the features column-major, X[j][i], transformed exactly as the plugin's
	// input was.
	TrainX, TestX [][]float64
	// TrainY and TestY hold the labels, 0 or 1.
	TrainY, TestY []float64
	// Subjects holds the bank's own subject identifier of every cohort row, train rows then test rows.
	Subjects []string
}

// Code names why the gate refused.
type Code string

// Refusal codes.
const (
	CodeUndeclaredOutput     Code = "undeclared_output"
	CodeWeightsMissing       Code = "weights_missing"
	CodeWeightNames          Code = "weight_names"
	CodeTooManyWeights       Code = "too_many_weights"
	CodeNotFinite            Code = "not_finite"
	CodeWeightBound          Code = "weight_bound"
	CodePlaintextWeightsInHE Code = "plaintext_weights_in_he"
	CodeUndeclaredCiphertext Code = "undeclared_ciphertext"
	CodeMissingCiphertext    Code = "missing_ciphertext"
	CodeCiphertext           Code = "ciphertext_invalid"
	CodeFamily               Code = "family_unverifiable"
	CodeHyperparameters      Code = "hyperparameters"
	CodeReferenceFit         Code = "reference_fit_failed"
	CodeFarFromOptimum       Code = "far_from_optimum"
	CodeExcessLoss           Code = "excess_loss"
	CodeScoreRange           Code = "score_range"
	CodeMetrics              Code = "metrics_undefined"
)

// RefusalError is a refused release. Code and Reason are what the bank sees: they carry no number
// computed from the data. The audit log also records a detail for the stewards.
type RefusalError struct {
	Job    string
	Code   Code
	Reason string
	detail string
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("gate: job %s: outputs refused (%s): %s", e.Job, e.Code, e.Reason)
}

// Unwrap returns ErrRefused.
func (e *RefusalError) Unwrap() error { return ErrRefused }

func refuse(code Code, reason string) *RefusalError { return &RefusalError{Code: code, Reason: reason} }

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

func (g *Gate) lock(id string) func() {
	g.mu.Lock()
	l, ok := g.locks[id]
	if !ok {
		l = &sync.Mutex{}
		g.locks[id] = l
	}
	g.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Release checks the job's outputs, and releases them: see the package documentation. It returns
// the signed receipt. A refusal is a *RefusalError (wrapping ErrRefused), already audited; the job
// stays succeeded. Other errors leave the job succeeded as well, with nothing released.
func (g *Gate) Release(ctx context.Context, r Request) (*Receipt, error) {
	if r.Job == nil || r.Output == nil || r.Eval == nil {
		return nil, fmt.Errorf("gate: release: %w: the request needs the job, the plugin's output and the evaluation cohort", ErrRequest)
	}
	if !idRE.MatchString(r.Job.ID) {
		return nil, fmt.Errorf("gate: release: %w: job id %q", ErrRequest, r.Job.ID)
	}
	defer g.lock(r.Job.ID)()
	j, err := g.jobs.Get(ctx, r.Job.ID)
	if err != nil {
		return nil, fmt.Errorf("gate: release %s: %w", r.Job.ID, err)
	}
	if j.State != job.Succeeded {
		return nil, fmt.Errorf("gate: release %s: %w: the job is %s; only a succeeded job can be released", j.ID, ErrState, j.State)
	}
	if j.ManifestHash != r.Job.ManifestHash {
		return nil, fmt.Errorf("gate: release %s: %w: the request's manifest is not the job's", j.ID, ErrRequest)
	}
	// The requesting party is a bank, or a researcher (whose jobs run on public and synthetic data).
	if r.Bank.Name != j.Bank || (r.Bank.Role != keys.RoleBank && r.Bank.Role != keys.RoleResearcher) {
		return nil, fmt.Errorf("gate: release %s: %w: results are sealed to the job's bank %s, not to %s %s", j.ID, ErrRequest, j.Bank, r.Bank.Role, r.Bank.Name)
	}
	r.Job = j
	if err := checkEval(r); err != nil {
		return nil, fmt.Errorf("gate: release %s: %w", j.ID, err)
	}
	if (j.Manifest.Mode == sdk.ModeAggregate) != (r.Aggregate != nil) {
		return nil, fmt.Errorf("gate: release %s: %w: the aggregate service's record is required in aggregate mode and only there", j.ID, ErrRequest)
	}
	waiver, err := g.waiver(ctx, j)
	if err != nil {
		return nil, fmt.Errorf("gate: release %s: %w", j.ID, err)
	}
	res, rerr := g.decide(r, waiver)
	if rerr != nil {
		rerr.Job = j.ID
		return nil, g.recordRefusal(ctx, j, rerr)
	}
	return g.commit(ctx, r, res, waiver)
}

func (g *Gate) recordRefusal(ctx context.Context, j *job.Job, rerr *RefusalError) error {
	payload := map[string]any{"code": string(rerr.Code), "reason": rerr.Reason, "manifest_hash": j.ManifestHash}
	if rerr.detail != "" {
		payload["detail"] = rerr.detail
	}
	if _, err := g.log.Append(ctx, audit.Event{Kind: KindRefusal, Actor: "enclave", Subject: j.ID, Payload: payload}); err != nil {
		return fmt.Errorf("%w; recording the refusal in the audit log failed: %w", rerr, err)
	}
	return rerr
}

// checkEval checks that the evaluation cohort is consistent with itself and with the summary.
func checkEval(r Request) error {
	e := r.Eval
	d := len(e.Features)
	bad := func(what string) error { return fmt.Errorf("%w: evaluation cohort: %s", ErrRequest, what) }
	if d == 0 {
		return bad("no features")
	}
	if len(e.TrainX) != d || len(e.TestX) != d {
		return bad("TrainX and TestX need one column per feature")
	}
	nTrain, nTest := len(e.TrainY), len(e.TestY)
	for j := range d {
		if len(e.TrainX[j]) != nTrain || len(e.TestX[j]) != nTest {
			return bad(fmt.Sprintf("column %s does not have one value per label", e.Features[j]))
		}
	}
	if len(e.Subjects) != nTrain+nTest {
		return bad("Subjects needs one identifier per train and test row")
	}
	seen := make(map[string]struct{}, len(e.Subjects))
	for _, s := range e.Subjects {
		if _, dup := seen[s]; dup || s == "" {
			return bad("subject identifiers must be distinct and not empty")
		}
		seen[s] = struct{}{}
	}
	if r.Cohort.Train != nTrain || r.Cohort.Test != nTest || r.Cohort.Total != nTrain+nTest {
		return bad("the cohort summary does not match the evaluation cohort's sizes")
	}
	if nTrain == 0 {
		return bad("no training rows")
	}
	return nil
}
