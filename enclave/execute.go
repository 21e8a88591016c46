package enclave

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/aggregate"
	"insitu/enclave/cohort"
	"insitu/enclave/gate"
	"insitu/enclave/he"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/enclave/registry"
	"insitu/enclave/runner"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// RunOptions configure how the enclave runs approved jobs.
type RunOptions struct {
	// Sandbox is the isolation of every run: Mode (sandbox.Strict unless AllowWeaker is set here),
	// Limits (sandbox defaults where zero), UID and GID, CgroupName, TempDir.
	Sandbox sandbox.Spec
	// TempDir holds the runner's per-run folders; os.TempDir() when empty.
	TempDir string
	// Args are the plugin's arguments after argv[0]: e.g. "plugin serve-builtin helr" when the
	// uploaded binary is insitu itself. Empty for a plugin's own main.
	Args []string
	// Now returns the time a job's authorizations are checked at; time.Now when nil.
	Now func() time.Time
	// Logger receives the runs' outcomes and the plugins' log lines; nil discards them.
	Logger *slog.Logger
	// Progress, when set, is told what a running job is doing, in words.
	Progress func(jobID, what string)
	// HEParams are the CKKS parameters of HE jobs; he.DefaultLiteral's when nil.
	HEParams *he.Parameters
	// MaxRefreshes bounds the refreshes of one HE job; DefaultMaxRefreshes when 0.
	MaxRefreshes int
}

// DefaultMaxRefreshes bounds the refreshes of one HE job: plugins/helr needs (features+1) per
// iteration, 216 for 23 features and 10 iterations.
const DefaultMaxRefreshes = 4096

// RunReport is what running one job did.
type RunReport struct {
	Job    *job.Job
	Cohort *Cohort
	// Run is the runner's result: nil when the run never started (the cohort could not be
	// prepared, or the enclave refused the job before starting the plugin).
	Run *runner.Result
	// Receipt is the output gate's receipt when the outputs were released; Refusal the gate's
	// refusal when they were not (the job then stays succeeded).
	Receipt *gate.Receipt
	Refusal *gate.RefusalError
}

// RunJob runs an approved (or queued) job: it queues and starts it, prepares its cohort (labels ∩
// dataset ∩ valid authorizations, at least the steward's minimum size; on a public dataset the
// labelled subjects, labelled by the bank or by the dataset's label column, with no authorization
// applying: see PrepareCohort), runs the approved plugin in the sandbox, and marks the job
// succeeded or failed with the reason. The error is nil when the job
// reached a final state; the job's own outcome is in the report.
func (e *Enclave) RunJob(ctx context.Context, id string, opts RunOptions) (*RunReport, error) {
	j, err := e.Jobs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.State == job.Approved {
		if j, err = e.Jobs.Queue(ctx, id); err != nil {
			return nil, err
		}
	}
	if j, err = e.Jobs.Start(ctx, id); err != nil {
		return nil, err
	}
	rep := &RunReport{Job: j}
	progress := func(what string) {
		if opts.Progress != nil {
			opts.Progress(id, what)
		}
	}
	fail := func(reason string) (*RunReport, error) {
		fj, err := e.Jobs.Fail(context.WithoutCancel(ctx), id, reason)
		if err != nil {
			return rep, fmt.Errorf("job %s: marking it failed (%s): %w", id, reason, err)
		}
		rep.Job = fj
		return rep, nil
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	m := j.Manifest
	if !now().Before(m.ExpiresAt()) {
		return fail("the job's manifest expired before it ran")
	}
	if m.Labels == "" && m.LabelColumn == "" {
		return fail("the job names no labels: upload sealed labels and name their digest in the manifest (or, on a public dataset, name the outcome column in label_column)")
	}
	// A researcher's jobs run on public and synthetic datasets only (the API refuses the others at
	// submission; this holds whatever way the job came in).
	if p, err := e.Jobs.Party(ctx, m.Bank); err != nil {
		return fail("the requesting party " + m.Bank + " is no longer registered")
	} else if p.Role == keys.RoleResearcher {
		v, err := DatasetVersion(m.Dataset.Version)
		if err != nil {
			return fail(err.Error())
		}
		dm, err := e.Datasets.Manifest(ctx, m.Dataset.Name, v)
		if err != nil {
			return fail(fmt.Sprintf("dataset %s v%d: %v", m.Dataset.Name, v, err))
		}
		if dm.Class != "public" && dm.Class != "synthetic" {
			return fail(fmt.Sprintf("dataset %s is of class %s: a researcher's jobs run on public and synthetic datasets only", dm.Name, dm.Class))
		}
	}
	var labels *cohort.Labels
	if m.Labels != "" {
		progress("opening the bank's sealed labels")
		if labels, err = e.OpenJobLabels(ctx, m.Bank, m.Labels); err != nil {
			if errors.Is(err, ErrLabelsNotFound) {
				return fail(fmt.Sprintf("labels %s were not uploaded by %s", m.Labels, m.Bank))
			}
			return fail("the labels could not be opened: " + err.Error())
		}
		progress("assembling the cohort: labelled subjects in the dataset with a covering authorization")
	} else {
		progress("assembling the cohort: the subjects labelled by the dataset's column " + m.LabelColumn)
	}
	c, err := e.PrepareCohort(ctx, id, m, labels, now())
	if err != nil {
		var pe *PrepareError
		if errors.As(err, &pe) {
			return fail(pe.Reason)
		}
		return fail("the cohort could not be prepared: " + err.Error())
	}
	rep.Cohort = c
	digest, err := pluginstore.ParseDigest(m.Plugin)
	if err != nil {
		return fail("the manifest's plugin digest is invalid: " + err.Error())
	}
	spec := runner.RunSpec{
		Plugins: e.Plugins, Digest: digest, Mode: m.Mode,
		Sandbox: opts.Sandbox, TempDir: opts.TempDir, Logger: progressLogger(opts, progress), Args: opts.Args,
	}
	if spec.Hyperparameters, err = hyperparameters(m.Model.Hyperparameters); err != nil {
		return fail("the manifest's hyperparameters: " + err.Error())
	}
	var aggSvc *aggregate.Service
	switch m.Mode {
	case sdk.ModePlaintextPublic:
		// The plugin gets the training part only: the bank's labels of it, or the label column's
		// values as the cohort read them.
		var trainLabels *cohort.Labels
		if labels != nil {
			train := make(map[string]bool, c.Train)
			for _, s := range c.Subjects[:c.Train] {
				train[s] = true
			}
			trainLabels = labels.Subset(func(s string) bool { return train[s] })
		} else if trainLabels, err = cohort.NewLabels(ident.Kind(c.Dataset.SubjectKind), c.Subjects[:c.Train], c.YTrain); err != nil {
			return fail("the label column's values: " + err.Error())
		}
		spec.Input = &runner.PlainInput{Datasets: e.Datasets, Dataset: c.Dataset.Name, Version: c.Dataset.Version,
			Columns: fieldKeys(m), Labels: trainLabels, Transforms: ptr(m.Spec())}
	case sdk.ModeHE:
		params := opts.HEParams
		if params == nil {
			p, err := he.NewParameters(he.DefaultLiteral)
			if err != nil {
				return rep, err
			}
			params = &p
		}
		bounds := make([][2]float64, len(c.Bounds))
		for i, b := range c.Bounds {
			bounds[i] = [2]float64{b.Low, b.High}
		}
		maxRefresh := opts.MaxRefreshes
		if maxRefresh <= 0 {
			maxRefresh = DefaultMaxRefreshes
		}
		spec.HE = &runner.HEInput{Params: *params, Features: c.Features, Bounds: bounds,
			X: ColumnMajor(c.XTrain), Y: c.YTrain, MaxRefreshes: maxRefresh,
			Dataset: c.Dataset.Name, Version: c.Dataset.Version, Class: c.Dataset.Class, Transforms: c.Fitted}
	case sdk.ModeAggregate:
		if m.Epsilon == nil {
			return fail("an aggregate job needs epsilon in its manifest: the privacy budget it may spend")
		}
		if err := e.Privacy.CheckFits(ctx, id, m.Bank, c.Dataset.Name, *m.Epsilon); err != nil {
			return fail("the job's privacy budget: " + err.Error())
		}
		svc, err := aggregate.NewService(ctx, aggregate.Config{Ledger: e.Privacy, Job: id, Bank: m.Bank, Dataset: c.Dataset.Name,
			Epsilon: *m.Epsilon, Label: runner.LabelColumn,
			Cohort: aggregate.Cohort{Features: c.Features, Bounds: c.Bounds, X: ColumnMajor(c.XTrain), Y: c.YTrain}})
		if err != nil {
			return fail("the aggregate query service could not start: " + err.Error())
		}
		aggSvc = svc
		spec.Aggregate = &runner.AggregateInput{Service: svc, Features: c.Features, Rows: c.Train,
			Dataset: c.Dataset.Name, Version: c.Dataset.Version, Class: c.Dataset.Class, Transforms: c.Fitted}
	default:
		return fail(fmt.Sprintf("mode %s is not offered by this enclave", m.Mode))
	}
	progress(fmt.Sprintf("running plugin %s in the sandbox on %d subjects", digest.Hex()[:12], c.Train))
	res, err := runner.Run(ctx, spec)
	rep.Run = res
	if aggSvc != nil {
		if _, _, _, aerr := e.Privacy.RecordJob(context.WithoutCancel(ctx), id, m.Bank, c.Dataset.Name); aerr != nil {
			return rep, fmt.Errorf("job %s: recording its privacy spend in the audit log: %w", id, aerr)
		}
	}
	if res == nil {
		return fail("the run could not start: " + err.Error())
	}
	if res.Reason != runner.ReasonCompleted {
		return fail(fmt.Sprintf("the plugin run ended: %s", res))
	}
	sj, err := e.Jobs.Succeed(context.WithoutCancel(ctx), id, map[string]any{
		"wall_ms": res.Wall.Milliseconds(), "sandbox": res.SandboxMode.String(), "cohort": len(c.Subjects)})
	if err != nil {
		return rep, err
	}
	rep.Job = sj

	progress("passing the outputs through the output gate: verify, round, seal to the bank, sign the receipt")
	req, err := e.gateRequest(ctx, sj, c, res)
	if err != nil {
		return rep, err
	}
	if aggSvc != nil {
		r := aggSvc.Record()
		req.Aggregate = &gate.AggregateRecord{Edges: r.Edges, Epsilon: r.Epsilon, Delta: r.Delta}
	}
	if res.HE != nil && res.HE.Keys != nil {
		defer res.HE.Keys.Close()
	}
	req.OnCommit = e.recordCurve(c, e.registerModel(c, m))
	rec, err := e.Gate.Release(context.WithoutCancel(ctx), req)
	var refusal *gate.RefusalError
	switch {
	case errors.As(err, &refusal):
		rep.Refusal = refusal
		return rep, nil
	case err != nil:
		return rep, fmt.Errorf("job %s: release: %w", id, err)
	}
	rep.Receipt = rec
	if rep.Job, err = e.Jobs.Get(ctx, id); err != nil {
		return rep, err
	}
	return rep, nil
}

// gateRequest assembles what the output gate needs to release a succeeded job's outputs.
func (e *Enclave) gateRequest(ctx context.Context, j *job.Job, c *Cohort, res *runner.Result) (gate.Request, error) {
	st, err := e.Jobs.Status(ctx, j.ID)
	if err != nil {
		return gate.Request{}, err
	}
	bank, err := e.Jobs.Party(ctx, j.Bank)
	if err != nil {
		return gate.Request{}, fmt.Errorf("job %s: the bank's key: %w", j.ID, err)
	}
	req := gate.Request{
		Job: j, Approvals: st, Bank: bank.PublicIdentity,
		Dataset:             gate.DatasetRef{Name: c.Dataset.Name, Version: fmt.Sprint(c.Dataset.Version), ManifestHash: c.Dataset.Hash()},
		AuthorizationDigest: c.AuthorizationDigest,
		Cohort:              gate.CohortSummary{Total: len(c.Subjects), Train: c.Train, Test: c.Test},
		Plugin:              res.Digest.String(),
		Run: gate.RunSummary{Reason: string(res.Reason), SandboxMode: res.SandboxMode.String(),
			Weakened: res.Weakened != 0, WallTime: res.Wall},
		Output: res.Output,
		Eval: &gate.Evaluation{Features: c.Features, TrainX: ColumnMajor(c.XTrain), TestX: ColumnMajor(c.XTest),
			TrainY: c.YTrain, TestY: c.YTest, Subjects: c.Subjects},
	}
	for _, l := range res.Layers.Each() {
		req.Run.Layers = append(req.Run.Layers, l.String())
	}
	if res.HE != nil {
		req.Run.Refreshes = res.HE.Refreshes
		if res.HE.Keys != nil {
			req.Decrypt = res.HE.Keys.DecryptSlot0
		}
	}
	return req, nil
}

// registerModel returns the gate's OnCommit hook that registers the released model in the model
// registry inside the release's transaction, with the transforms fitted on the cohort. A release of
// a kind the registry does not keep (no weights) is released all the same, unregistered.
func (e *Enclave) registerModel(c *Cohort, m *manifest.Manifest) func(context.Context, *sql.Tx, *gate.Bundle, *gate.Receipt) error {
	return func(ctx context.Context, tx *sql.Tx, b *gate.Bundle, rec *gate.Receipt) error {
		d, err := registry.FromRelease(registry.ReleaseInfo{Bundle: b, Receipt: rec, Family: m.Model.Family,
			Dataset: c.Dataset.Name, Version: c.Dataset.Version, Inputs: fieldKeys(m), Items: Items(m), Transforms: c.Fitted})
		if errors.Is(err, registry.ErrFamily) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = e.Models.RegisterTx(ctx, tx, d, rec)
		return err
	}
}

// fieldKeys returns the dataset columns a manifest requests: its fields' catalog keys.
func fieldKeys(m *manifest.Manifest) []string {
	out := make([]string, len(m.Fields))
	for i, f := range m.Fields {
		out[i] = f.Key
	}
	return out
}

// hyperparameters encodes a manifest's hyperparameters for the plugin.
func hyperparameters(h map[string]any) (sdk.Hyperparameters, error) {
	if len(h) == 0 {
		return sdk.Hyperparameters{}, nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return sdk.Hyperparameters{}, err
	}
	return sdk.NewHyperparameters(b)
}

func ptr[T any](v T) *T { return &v }
