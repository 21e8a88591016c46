package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"insitu/enclave/sandbox"
	"insitu/plugins/sdk/host"
)

// exitGrace is how long a run whose connection broke waits for the plugin's process to end on
// its own (so that a kill by a limit is named as such) before the runner kills it.
const exitGrace = time.Second

// session is one plugin process and its go-plugin client.
type session struct {
	spec   *RunSpec
	dir    string
	bin    *os.File
	rf     runnerFunc
	stdout *capture
	stderr *capture
	logs   *host.LogSink // the plugin's log lines as records of RunSpec.Logger, rate-limited; or nil
	client *plugin.Client

	mu        sync.Mutex
	proc      *procRunner
	proxy     *proxy
	killed    atomic.Bool
	procStart time.Time

	// gate holds back go-plugin's notice that the process ended until its client is connected (or
	// failed to): go-plugin v1.8.0 leaks the gRPC connection it is making when the process ends
	// in between (its stdio stream then fails with Canceled rather than Unavailable).
	gate     chan struct{}
	gateOnce sync.Once
}

func (s *session) openGate() { s.gateOnce.Do(func() { close(s.gate) }) }

// maxSocketPath is the longest unix socket path (sun_path holds 108 bytes with the NUL), and
// socketSuffix the most go-plugin adds to the per-run folder: "/plugin-dir<10 digits>/plugin<10 digits>".
const (
	maxSocketPath = 107
	socketSuffix  = len("/plugin-dir/plugin") + 20
)

func newSession(spec *RunSpec, tempDir string, bin *os.File, rf runnerFunc) (*session, error) {
	prefix := runDirPrefix + sandbox.OwnerTag() + "-"
	if n := len(filepath.Join(tempDir, prefix)) + 10 + socketSuffix; n > maxSocketPath {
		return nil, fmt.Errorf("runner: temp dir %s is too long: the plugin's socket path would take %d bytes, and a unix socket path at most %d; use a temp dir of at most %d bytes",
			tempDir, n, maxSocketPath, len(tempDir)-(n-maxSocketPath))
	}
	dir, err := os.MkdirTemp(tempDir, prefix)
	if err != nil {
		return nil, fmt.Errorf("runner: per-run folder: %w", err)
	}
	// The plugin's uid must reach go-plugin's socket dir inside it.
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("runner: per-run folder: %w", err)
	}
	capBytes := spec.CaptureBytes
	if capBytes <= 0 {
		capBytes = DefaultCaptureBytes
	}
	s := &session{spec: spec, dir: dir, bin: bin, rf: rf, stdout: newCapture(capBytes), stderr: newCapture(capBytes), gate: make(chan struct{})}
	if spec.Logger != nil {
		s.logs = host.NewLogSink(spec.Logger.With("plugin", spec.Digest.String()).Handler())
	}
	if s.rf == nil {
		s.rf = sandboxed
	}
	return s, nil
}

// sandboxed is the runnerFunc of every real run: the command becomes a sandbox.Process.
func sandboxed(s *session, cmd *exec.Cmd, dir string) (runner.Runner, error) {
	sp := s.spec.Sandbox
	sp.Binary = s.bin
	sp.Name = "plugin"
	sp.Args = append([]string{}, s.spec.Args...)
	sp.Env = append([]string(nil), s.spec.Env...)
	sp.SocketDir = dir
	if sp.TempDir == "" {
		sp.TempDir = s.spec.TempDir
	}
	p, err := sandbox.FromCmd(cmd, sp)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// stderrWriter is where the plugin's stderr goes: the capture and, with a logger, the log sink.
func (s *session) stderrWriter() io.Writer {
	if s.logs == nil {
		return s.stderr
	}
	return io.MultiWriter(s.stderr, s.logs)
}

func (s *session) config() *plugin.ClientConfig {
	startTimeout := s.spec.StartTimeout
	if startTimeout <= 0 {
		startTimeout = DefaultStartTimeout
	}
	if wall := s.spec.Sandbox.Limits.WallClock; wall > 0 && wall < startTimeout {
		startTimeout = wall
	}
	return &plugin.ClientConfig{
		HandshakeConfig:     host.Handshake(),
		VersionedPlugins:    host.VersionedPlugins(host.Config{Limits: s.spec.OutputLimits}),
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCBrokerMultiplex: true,
		// 1 MiB write and read buffers: fewer, larger writes of the row stream (measured +20 %).
		GRPCDialOptions: append(append(host.DialOptions(),
			grpc.WithWriteBufferSize(1<<20), grpc.WithReadBufferSize(1<<20)), s.spec.observe.dialOptions()...),
		SkipHostEnv:      true,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: s.dir},
		StartTimeout:     startTimeout,
		Stderr:           s.stderrWriter(),
		SyncStdout:       s.stdout,
		SyncStderr:       s.stderrWriter(),
		// Level Off: go-plugin then only copies the plugin's stderr lines to Stderr. Its own parser
		// of them panics on a JSON line whose "@message" is not a string.
		Logger: host.ClientLogger(),
		RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, dir string) (runner.Runner, error) {
			cmd.Stdin = nil // go-plugin sets os.Stdin; the plugin gets /dev/null
			r, err := s.rf(s, cmd, dir)
			if err != nil {
				return nil, err
			}
			pr := &procRunner{Runner: r, s: s}
			s.mu.Lock()
			s.proc = pr
			s.mu.Unlock()
			return pr, nil
		},
	}
}

// execute runs the plugin and fills res with the output and the reason.
func (s *session) execute(ctx context.Context, j *job, res *Result) {
	s.client = plugin.NewClient(s.config())
	_, err := s.client.Start()
	if err != nil {
		s.openGate()
		s.finish(ctx, res, stageHandshake, err)
		return
	}
	rpc, err := s.client.Client()
	s.openGate()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		s.finish(ctx, res, stageConnect, err)
		return
	}
	model, err := host.Dispense(rpc)
	if err != nil {
		s.finish(ctx, res, stageDescribe, err)
		return
	}
	desc, err := model.Describe(ctx)
	if err != nil {
		s.finish(ctx, res, stageDescribe, err)
		return
	}
	res.StartToDescribe = time.Since(s.started())
	res.Description = &desc
	label := ""
	if desc.Needs.Labels {
		label = j.label
	}
	if j.plain != nil {
		j.plain.withLabel(label != "")
	}
	rows := j.rows
	if j.open != nil {
		r, err := j.open(label != "")
		if err != nil {
			s.finish(ctx, res, stageTrain, &host.Error{Op: "train", Err: host.ErrInput, Detail: err.Error(), Cause: err})
			return
		}
		defer r.Release()
		rows = r
	}
	counted := &countingReader{RecordReader: rows}
	var streamed array.RecordReader = counted
	if rows == nil {
		streamed = nil // aggregate mode: no rows, only the aggregate service
	}
	out, err := model.Train(ctx, host.TrainRequest{
		Mode:            s.spec.Mode,
		Rows:            streamed,
		Features:        j.features,
		Label:           label,
		Subject:         j.subject,
		Hyperparameters: s.spec.Hyperparameters,
		HE:              j.he,
		Aggregate:       j.agg,
		Limits:          s.spec.OutputLimits,
	})
	if j.summary != nil {
		j.summary.Batches, j.summary.Bytes = counted.batches, counted.bytes
	}
	if err != nil {
		s.finish(ctx, res, stageTrain, err)
		return
	}
	res.Output = out
	s.finish(ctx, res, stageDone, nil)
}

type stage int

const (
	stageHandshake stage = iota
	stageConnect
	stageDescribe
	stageTrain
	stageDone
)

var stageNames = [...]string{"start-up", "connect", "describe", "train", "done"}

// finish ends the plugin's process and decides the reason. Verdicts the host reached from what
// the plugin sent come first; a broken connection is explained by how the process ended.
func (s *session) finish(ctx context.Context, res *Result, st stage, err error) {
	res.cause = err
	p := s.process()
	var le *sandbox.LayerError
	var ae *sandbox.AddressError
	var he *host.Error
	verdict := Reason("")
	switch {
	case err == nil:
		verdict = ReasonCompleted
	case ctx.Err() != nil:
		verdict = ReasonCancelled
	case errors.As(err, &le):
		verdict = ReasonSandboxRefused
		res.RefusedLayer = le.Layer
	case errors.Is(err, sandbox.ErrNoTrampoline), errors.Is(err, sandbox.ErrNotSealed):
		verdict = ReasonSandboxRefused
	case errors.As(err, &ae) || p != nil && p.addrErr.Load() != nil:
		verdict = ReasonForbiddenAddress
	case errors.As(err, &he):
		switch {
		case errors.Is(he.Err, host.ErrOutputTooLarge):
			verdict = ReasonOutputTooLarge
		case errors.Is(he.Err, host.ErrInvalidOutput):
			verdict = ReasonInvalidOutput
		case errors.Is(he.Err, host.ErrProtocol) && !transportFailure(he):
			verdict = ReasonProtocolError
		case errors.Is(he.Err, host.ErrPluginFailed):
			verdict = ReasonPluginError
		case errors.Is(he.Err, host.ErrRequest):
			verdict = ReasonIncompatible
		case errors.Is(he.Err, host.ErrInput):
			verdict = ReasonInputError
		}
	}
	if p != nil && p.started.Load() {
		if verdict == "" {
			// The connection broke or the handshake failed: give the process time to be
			// reaped, so a limit that killed it is named rather than our own kill.
			p.waitEnd(exitGrace)
		}
		s.killProcess()
		if pr := p.waitEnd(30 * time.Second); pr != nil {
			res.Process = pr
		}
		if ap, ok := p.Runner.(interface {
			Layers() (sandbox.Layer, sandbox.Layer, []string)
		}); ok {
			res.Layers, res.Weakened, res.Warnings = ap.Layers()
		}
	}
	if res.Process != nil {
		res.Layers, res.Weakened, res.Warnings = res.Process.Layers, res.Process.Weakened, res.Process.Warnings
	}
	if verdict == "" {
		verdict = s.fromProcess(res, st)
	}
	res.Reason = verdict
	if err != nil && res.Detail == "" {
		res.Detail = fmt.Sprintf("%s: %s", stageNames[st], clip(err.Error(), 512))
	}
	if verdict == ReasonCompleted {
		res.cause = nil
	}
}

// transportFailure reports whether a protocol error is the transport's (bytes that are not HTTP/2,
// or none at all): a plugin that died mid-handshake causes those too, so how the process ended
// decides, and a live process is still named protocol_error.
func transportFailure(he *host.Error) bool {
	c := status.Code(he.Cause)
	return c == codes.Unavailable || c == codes.Canceled
}

// fromProcess names the reason of a run whose connection broke from how the process ended.
func (s *session) fromProcess(res *Result, st stage) Reason {
	pr := res.Process
	if pr == nil || pr.Reason == sandbox.ReasonKilled {
		// Still running when we killed it: it broke the protocol, or never shook hands.
		if st == stageHandshake {
			return ReasonHandshakeFailed
		}
		return ReasonProtocolError
	}
	switch pr.Reason {
	case sandbox.ReasonOutOfMemory:
		return ReasonOutOfMemory
	case sandbox.ReasonCPULimit:
		return ReasonCPULimit
	case sandbox.ReasonTimeout:
		return ReasonTimeout
	case sandbox.ReasonSignaled:
		res.Signal = pr.Signal
		return ReasonSignaled
	}
	res.ExitCode = pr.ExitCode
	if st == stageHandshake && pr.ExitCode == 0 {
		return ReasonHandshakeFailed
	}
	return ReasonExited
}

// started returns when the plugin's process was started.
func (s *session) started() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procStart
}

// process returns the plugin's runner once go-plugin has made it.
func (s *session) process() *procRunner {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// killProcess kills the plugin's process (and everything in its sandbox) now.
func (s *session) killProcess() {
	s.killed.Store(true)
	if p := s.process(); p != nil {
		p.Runner.Kill(context.Background())
	}
}

// cleanup ends go-plugin's client (its goroutines and socket dir) and removes the run folder.
func (s *session) cleanup() {
	s.openGate()
	s.killProcess()
	if s.client != nil {
		s.client.Kill()
	}
	s.mu.Lock()
	px := s.proxy
	s.mu.Unlock()
	if px != nil {
		px.close()
	}
	os.RemoveAll(s.dir)
}

// procRunner wraps the plugin's runner to see its standard output (captured and counted) and
// the addresses its handshake names.
type procRunner struct {
	runner.Runner
	s       *session
	out     io.ReadCloser
	once    sync.Once
	addrErr atomic.Pointer[error]
	started atomic.Bool
}

func (r *procRunner) Start(ctx context.Context) error {
	r.s.mu.Lock()
	r.s.procStart = time.Now()
	r.s.mu.Unlock()
	if r.s.killed.Load() {
		return context.Canceled
	}
	if err := r.Runner.Start(ctx); err != nil {
		return err
	}
	r.started.Store(true)
	return nil
}

// Kill does nothing: the runner alone kills the process (killProcess), after it has given a
// process whose connection broke time to end on its own. go-plugin kills on a failed start, which
// would otherwise win the race with a kernel kill at a limit and hide it.
func (r *procRunner) Kill(context.Context) error { return nil }

// Wait waits for the process, then for the gate.
func (r *procRunner) Wait(ctx context.Context) error {
	err := r.Runner.Wait(ctx)
	<-r.s.gate
	return err
}

// Stdout tees what go-plugin's handshake reader reads into the run's capture.
func (r *procRunner) Stdout() io.ReadCloser {
	r.once.Do(func() {
		src := r.Runner.Stdout()
		r.out = struct {
			io.Reader
			io.Closer
		}{io.TeeReader(src, r.s.stdout), src}
	})
	return r.out
}

// PluginToHost checks the address the plugin's handshake names (the sandbox accepts only a unix
// socket directly inside the socket dir, and a refusal decides the run's reason), connects to it,
// and returns the runner's relay socket for go-plugin to dial instead.
func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	n, a, err := r.Runner.PluginToHost(network, addr)
	if err != nil {
		r.addrErr.Store(&err)
		return "", "", err
	}
	px, path, err := startProxy(r.s.dir, n, a)
	if err != nil {
		return "", "", err
	}
	r.s.mu.Lock()
	r.s.proxy = px
	r.s.mu.Unlock()
	return "unix", path, nil
}

// waitEnd waits up to d for the process to end and returns the sandbox's view of it, or nil.
func (r *procRunner) waitEnd(d time.Duration) *sandbox.Result {
	p, ok := r.Runner.(*sandbox.Process)
	if !ok {
		// An unsandboxed benchmark runner: wait for it through the runner interface.
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		r.Runner.Wait(ctx)
		return nil
	}
	deadline := time.Now().Add(d)
	for {
		if res := p.Result(); res != nil {
			return res
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingReader counts the record batches and buffer bytes read through it.
type countingReader struct {
	array.RecordReader
	batches, bytes int64
}

func (c *countingReader) Next() bool {
	if !c.RecordReader.Next() {
		return false
	}
	c.batches++
	c.bytes += recordBytes(c.Record())
	return true
}

func recordBytes(rec arrow.Record) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, col := range rec.Columns() {
		add(col.Data())
	}
	return n
}
