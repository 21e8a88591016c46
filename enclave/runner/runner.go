package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/hashicorp/go-plugin/runner"

	"insitu/enclave/pluginstore"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// Defaults of RunSpec.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultCaptureBytes = 64 << 10
)

// RunSpec describes one run of a plugin: which binary, in which sandbox, on which data.
type RunSpec struct {
	// Plugins is the enclave's plugin store and Digest the approved plugin. The runner copies the
	// stored bytes into a sealed memfd, checks their SHA-256 there and executes that memfd.
	Plugins *pluginstore.Store
	Digest  pluginstore.Digest

	// Mode is the job's mode; the plugin must declare the same. The runner streams plaintext rows
	// (sdk.ModePlaintextPublic) from Input, encrypted batches with the refresh service (sdk.ModeHE)
	// from HE, and offers no rows but the aggregate query service (sdk.ModeAggregate) from
	// Aggregate.
	Mode sdk.Mode
	// Input selects the rows of a ModePlaintextPublic job.
	Input *PlainInput
	// HE is the prepared cohort of a ModeHE job.
	HE *HEInput
	// Aggregate is the prepared cohort's query service of a ModeAggregate job.
	Aggregate *AggregateInput
	// Hyperparameters are handed to the plugin as they are.
	Hyperparameters sdk.Hyperparameters
	// OutputLimits bound the plugin's output; zero fields take sdk.DefaultLimits.
	OutputLimits sdk.Limits

	// Sandbox configures the isolation: Mode (sandbox.Strict unless set; sandbox.AllowWeaker is
	// for development and is recorded in the Result), Limits, UID and GID, CgroupName, TempDir,
	// and for tests Disable and Unavailable. The runner sets Binary, Name, Args, Env and
	// SocketDir; Binds, Stdout and Stderr must be left empty.
	Sandbox sandbox.Spec
	// Args and Env are the plugin's arguments after argv[0] and its whole environment besides
	// what go-plugin sets; nothing of the enclave's environment is passed.
	Args, Env []string
	// TempDir holds the runner's per-run folders (go-plugin's socket dir is made inside one) and,
	// unless Sandbox.TempDir is set, the sandbox's; os.TempDir() when empty. Its path must be
	// searchable by the plugin's uid.
	TempDir string
	// StartTimeout bounds the time from starting the process to its handshake;
	// DefaultStartTimeout when 0, and never more than the sandbox's wall-clock limit.
	StartTimeout time.Duration
	// CaptureBytes bounds what is kept of each of the plugin's stdout and stderr
	// (DefaultCaptureBytes when 0). The plugin may write any amount: the rest is counted and
	// dropped.
	CaptureBytes int
	// Logger, when set, receives the outcome of the run (with the reason, the sandbox's layers and
	// any weakening) and the plugin's log lines, parsed safely and rate-limited (host.LogSink).
	Logger *slog.Logger

	// observe, set by tests, sees every message the runner sends the plugin.
	observe *observer
}

func (s *RunSpec) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("runner: "+format, args...)
	}
	if s.Plugins == nil {
		return bad("no plugin store")
	}
	if !s.Mode.Valid() {
		return bad("job mode %q is not one of %q, %q, %q", s.Mode, sdk.ModePlaintextPublic, sdk.ModeHE, sdk.ModeAggregate)
	}
	switch s.Mode {
	case sdk.ModePlaintextPublic:
		if s.Input == nil || s.HE != nil || s.Aggregate != nil {
			return bad("a %q job needs a PlainInput and no HEInput or AggregateInput", s.Mode)
		}
	case sdk.ModeHE:
		if s.HE == nil || s.Input != nil || s.Aggregate != nil {
			return bad("a %q job needs an HEInput and no PlainInput or AggregateInput", s.Mode)
		}
	case sdk.ModeAggregate:
		if s.Aggregate == nil || s.Aggregate.Service == nil || s.Input != nil || s.HE != nil {
			return bad("a %q job needs an AggregateInput with its service, and no PlainInput or HEInput", s.Mode)
		}
	}
	sp := &s.Sandbox
	if sp.Binary != nil || sp.SocketDir != "" || len(sp.Binds) > 0 || sp.Stdout != nil || sp.Stderr != nil ||
		sp.Name != "" || sp.Args != nil || sp.Env != nil {
		return bad("RunSpec.Sandbox must not set Binary, Name, Args, Env, SocketDir, Binds, Stdout or Stderr: the runner sets them")
	}
	return nil
}

// job is what Train streams and names.
type job struct {
	rows  array.RecordReader
	plain *plainReader // rows, when they come from a PlainInput
	// open, when set, makes the rows once the plugin said whether it needs labels (HE batches).
	open     func(label bool) (array.RecordReader, error)
	he       sdk.HEContext
	agg      sdk.AggregateClient
	features []string
	label    string
	subject  string
	summary  *InputSummary
}

// Run starts the plugin with the approved digest in the sandbox through go-plugin, checks the
// address its handshake names, calls Describe, streams the job to Train, collects the output, and
// kills the plugin. Cancelling ctx ends the run (ReasonCancelled).
//
// In sdk.ModeHE, Run draws a fresh key set, encrypts the HEInput's cohort as it streams it, offers
// the refresh service, and returns the key set in Result.HE for the output gate.
//
// Errors in the spec or the input (an unknown dataset, a platform dataset in plaintext mode,
// wrapping ErrPlatformData; an HE cohort value outside its feature's bounds, wrapping ErrInput and
// he.ErrCohort) are returned before any plugin starts, with a nil Result. From then
// on Run returns a Result whatever the plugin does, and a *RunError (nil only for
// ReasonCompleted) naming the reason; the enclave keeps serving.
func Run(ctx context.Context, spec RunSpec) (*Result, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	switch spec.Mode {
	case sdk.ModeHE:
		return runHE(ctx, &spec)
	case sdk.ModeAggregate:
		return runAggregate(ctx, &spec)
	}
	m, err := spec.Input.checkClass(ctx)
	if err != nil {
		return nil, err
	}
	r, sum, err := spec.Input.prepare(ctx, m)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	j := &job{rows: r, plain: r, features: sum.Features, label: LabelColumn, subject: SubjectColumn, summary: sum}
	return run(ctx, &spec, j, nil)
}

// runnerFunc starts a plugin command; the sandboxed one unless a benchmark replaces it.
type runnerFunc func(s *session, cmd *exec.Cmd, dir string) (runner.Runner, error)

func run(ctx context.Context, spec *RunSpec, j *job, rf runnerFunc) (*Result, error) {
	begin := time.Now()
	res := &Result{Digest: spec.Digest, ExitCode: -1, SandboxMode: spec.Sandbox.Mode, Input: j.summary}
	tempDir := spec.TempDir
	if tempDir == "" {
		tempDir = os.TempDir()
	}
	sweepOnce(SweepOptions{TempDir: tempDir, CgroupName: spec.Sandbox.CgroupName})

	bin, err := spec.Plugins.OpenSealed(ctx, spec.Digest)
	if errors.Is(err, pluginstore.ErrDigestMismatch) {
		res.Reason, res.Detail, res.cause = ReasonDigestMismatch, clip(err.Error(), 512), err
		res.Wall = time.Since(begin)
		spec.logOutcome(ctx, res)
		return res, res.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	defer bin.Close()

	s, err := newSession(spec, tempDir, bin, rf)
	if err != nil {
		return nil, err
	}
	defer s.cleanup()
	stop := context.AfterFunc(ctx, s.killProcess)
	defer stop()

	s.execute(ctx, j, res)

	if s.logs != nil {
		s.logs.Flush()
	}
	res.Stdout, res.Stderr = s.stdout.snapshot(), s.stderr.snapshot()
	if j.summary != nil {
		res.Input = j.summary
	}
	res.Wall = time.Since(begin)
	spec.logOutcome(ctx, res)
	return res, res.Err()
}

// logOutcome reports the run's end to the spec's logger, loudly when the sandbox was weakened.
func (s *RunSpec) logOutcome(ctx context.Context, res *Result) {
	if s.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if res.Reason != ReasonCompleted {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("digest", res.Digest.String()),
		slog.String("reason", string(res.Reason)),
		slog.String("sandbox_mode", res.SandboxMode.String()),
		slog.String("layers", res.Layers.String()),
		slog.Duration("wall", res.Wall),
	}
	if res.Detail != "" {
		attrs = append(attrs, slog.String("detail", res.Detail))
	}
	if res.Reason == ReasonExited {
		attrs = append(attrs, slog.Int("exit_code", res.ExitCode))
	}
	if res.Reason == ReasonSignaled {
		attrs = append(attrs, slog.String("signal", sandbox.SignalName(res.Signal)))
	}
	if res.Reason == ReasonSandboxRefused {
		attrs = append(attrs, slog.String("refused_layer", res.RefusedLayer.String()))
	}
	if res.Weakened != 0 {
		attrs = append(attrs, slog.String("weakened", res.Weakened.String()))
	}
	s.Logger.LogAttrs(ctx, level, "plugin run ended", attrs...)
	for _, w := range res.Warnings {
		s.Logger.LogAttrs(ctx, slog.LevelWarn, "plugin sandbox weaker than strict", slog.String("digest", res.Digest.String()), slog.String("warning", w))
	}
}
