package runner

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"insitu/enclave/pluginstore"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// Reason says how a run ended. Every run that got as far as opening the plugin's binary ends with
// exactly one.
type Reason string

// The reasons a run ends.
const (
	// ReasonCompleted: the plugin trained and returned an output within the job's limits.
	ReasonCompleted Reason = "completed"
	// ReasonExited: the plugin's process exited on its own before it answered (Result.ExitCode;
	// a Go panic exits with 2).
	ReasonExited Reason = "exited"
	// ReasonSignaled: a signal not explained by a limit ended the process (Result.Signal).
	ReasonSignaled Reason = "signal"
	// ReasonOutOfMemory: the kernel killed the plugin at the cgroup memory limit.
	ReasonOutOfMemory Reason = "out_of_memory"
	// ReasonCPULimit: the kernel killed the plugin at the CPU-time limit.
	ReasonCPULimit Reason = "cpu_limit"
	// ReasonTimeout: the sandbox killed the plugin at the wall-clock limit.
	ReasonTimeout Reason = "timeout"
	// ReasonProtocolError: the plugin broke the plugin protocol (malformed or out-of-order
	// messages, bytes that are not gRPC on its connection, a connection it dropped while running).
	ReasonProtocolError Reason = "protocol_error"
	// ReasonForbiddenAddress: the plugin's handshake named an address other than a unix socket in
	// its socket dir (a TCP address, a socket elsewhere); nothing was dialled.
	ReasonForbiddenAddress Reason = "forbidden_address"
	// ReasonOutputTooLarge: the output exceeded the job's limits (announced or sent), or the
	// plugin's SDK refused to send one that did.
	ReasonOutputTooLarge Reason = "output_too_large"
	// ReasonInvalidOutput: the output was well framed but invalid (an undeclared kind, a value
	// that is not finite, a repeated name).
	ReasonInvalidOutput Reason = "invalid_output"
	// ReasonPluginError: the plugin reported a failure of its own (Train or Describe returned an
	// error); Result.Detail quotes it, sanitised.
	ReasonPluginError Reason = "plugin_error"
	// ReasonIncompatible: the plugin's description does not fit the job (another mode, labels the
	// job does not give).
	ReasonIncompatible Reason = "incompatible"
	// ReasonDigestMismatch: the stored binary no longer hashes to the approved digest.
	ReasonDigestMismatch Reason = "digest_mismatch"
	// ReasonHandshakeFailed: the plugin did not complete go-plugin's handshake (a malformed line, an
	// unknown protocol version, a protocol other than gRPC, no line before the start timeout).
	ReasonHandshakeFailed Reason = "handshake_failed"
	// ReasonCancelled: the caller's context ended the run.
	ReasonCancelled Reason = "cancelled"
	// ReasonSandboxRefused: strict mode refused to start because an isolation layer is missing or
	// failed to set up (Result.RefusedLayer names it).
	ReasonSandboxRefused Reason = "sandbox_refused"
	// ReasonInputError: reading or streaming the job's rows failed on the enclave's side.
	ReasonInputError Reason = "input_error"
)

// Sentinel errors, one per reason other than ReasonCompleted; a *RunError matches its reason's
// with errors.Is.
var (
	ErrExited           = errors.New("plugin exited")
	ErrSignaled         = errors.New("plugin killed by a signal")
	ErrOutOfMemory      = errors.New("plugin exceeded its memory limit")
	ErrCPULimit         = errors.New("plugin exceeded its cpu time limit")
	ErrTimeout          = errors.New("plugin exceeded its wall-clock limit")
	ErrProtocol         = errors.New("plugin broke the protocol")
	ErrForbiddenAddress = errors.New("plugin advertised a forbidden address")
	ErrOutputTooLarge   = errors.New("plugin output too large")
	ErrInvalidOutput    = errors.New("plugin output invalid")
	ErrPluginFailed     = errors.New("plugin reported a failure")
	ErrIncompatible     = errors.New("plugin does not fit the job")
	ErrDigestMismatch   = errors.New("plugin binary does not match the approved digest")
	ErrHandshake        = errors.New("plugin handshake failed")
	ErrCancelled        = errors.New("run cancelled")
	ErrSandboxRefused   = errors.New("sandbox refused to start the plugin")
	ErrInput            = errors.New("job input failed")
)

var reasonErrs = map[Reason]error{
	ReasonExited:           ErrExited,
	ReasonSignaled:         ErrSignaled,
	ReasonOutOfMemory:      ErrOutOfMemory,
	ReasonCPULimit:         ErrCPULimit,
	ReasonTimeout:          ErrTimeout,
	ReasonProtocolError:    ErrProtocol,
	ReasonForbiddenAddress: ErrForbiddenAddress,
	ReasonOutputTooLarge:   ErrOutputTooLarge,
	ReasonInvalidOutput:    ErrInvalidOutput,
	ReasonPluginError:      ErrPluginFailed,
	ReasonIncompatible:     ErrIncompatible,
	ReasonDigestMismatch:   ErrDigestMismatch,
	ReasonHandshakeFailed:  ErrHandshake,
	ReasonCancelled:        ErrCancelled,
	ReasonSandboxRefused:   ErrSandboxRefused,
	ReasonInputError:       ErrInput,
}

// Err returns the sentinel error of a reason, nil for ReasonCompleted.
func (r Reason) Err() error { return reasonErrs[r] }

// Result is what a run produced and how it ended. Run returns it whenever it got as far as
// opening the plugin's binary, whatever the plugin did.
type Result struct {
	// Reason says how the run ended; Detail says what happened, in one line. Detail may quote the
	// plugin (sanitised, bounded) and never holds data values.
	Reason Reason
	Detail string
	// ExitCode is the exit status when the plugin's process exited on its own, -1 otherwise.
	ExitCode int
	// Signal is the signal that ended the process (ReasonSignaled), or 0.
	Signal syscall.Signal
	// RefusedLayer names the layer a sandbox_refused run lacked.
	RefusedLayer sandbox.Layer

	// Digest is the plugin binary that ran (or was refused).
	Digest pluginstore.Digest
	// Description is what the plugin declared, when it answered Describe.
	Description *sdk.Description
	// Output is the plugin's checked output; set only for ReasonCompleted.
	Output *sdk.Output
	// Input describes what was streamed to the plugin.
	Input *InputSummary
	// HE holds, for an sdk.ModeHE run, the run's key set (for a completed run) and its refresh
	// counts; nil for other modes.
	HE *HEResult

	// SandboxMode is the mode the sandbox ran in. Layers are the isolation layers applied,
	// Weakened those not applied (missing on this machine or disabled; empty in a strict run but
	// for a missing cgroup), and Warnings say what that means. A run in sandbox.AllowWeaker mode
	// must be marked as such wherever it is recorded.
	SandboxMode sandbox.Mode
	Layers      sandbox.Layer
	Weakened    sandbox.Layer
	Warnings    []string
	// Process is how the plugin's process ended, as the sandbox saw it (limits in force, CPU and
	// wall time, out-of-memory kills); nil when no process started.
	Process *sandbox.Result

	// Stdout and Stderr hold the start and the end of what the plugin wrote, bounded; their
	// Total counts everything it wrote. Stderr holds the plugin's log lines.
	Stdout, Stderr Capture

	// StartToDescribe is the time from starting the process to the answer of Describe, the
	// first RPC; Wall is the whole run.
	StartToDescribe, Wall time.Duration

	cause error
}

// Err returns nil for a completed run and a *RunError otherwise.
func (r *Result) Err() error {
	if r.Reason == ReasonCompleted {
		return nil
	}
	return &RunError{Result: r, Cause: r.cause}
}

// String describes the outcome in one line, e.g. "exited with status 2".
func (r *Result) String() string {
	s := string(r.Reason)
	switch r.Reason {
	case ReasonExited:
		s = fmt.Sprintf("exited with status %d", r.ExitCode)
	case ReasonSignaled:
		s = "killed by signal " + sandbox.SignalName(r.Signal)
	case ReasonSandboxRefused:
		s = "sandbox_refused (" + r.RefusedLayer.String() + ")"
	}
	if r.Detail != "" {
		s += ": " + r.Detail
	}
	return s
}

// RunError is the error of a run that did not complete. errors.Is matches it against its
// reason's sentinel (ErrTimeout, ErrForbiddenAddress, …) and against the cause it wraps
// (sandbox.ErrCPULimit, sandbox.ErrForbiddenAddress, pluginstore.ErrDigestMismatch,
// context.Canceled, a *sandbox.LayerError, …).
type RunError struct {
	Result *Result
	// Cause is the underlying error, or nil.
	Cause error
}

func (e *RunError) Error() string {
	return fmt.Sprintf("plugin run %s: %s", e.Result.Digest, e.Result.String())
}

// Is matches the sentinel of the run's reason.
func (e *RunError) Is(target error) bool {
	s := e.Result.Reason.Err()
	return s != nil && s == target
}

// Unwrap returns the cause.
func (e *RunError) Unwrap() error { return e.Cause }
