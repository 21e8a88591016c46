package sandbox

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Reason says why a sandboxed process ended.
type Reason int

const (
	// ReasonExited: the process exited on its own; see Result.ExitCode.
	ReasonExited Reason = iota
	// ReasonSignaled: a signal not explained by a limit ended it; see Result.Signal.
	ReasonSignaled
	// ReasonOutOfMemory: the kernel killed it for exceeding the cgroup memory limit.
	ReasonOutOfMemory
	// ReasonCPULimit: the kernel killed it at the CPU-time limit (RLIMIT_CPU).
	ReasonCPULimit
	// ReasonTimeout: the sandbox killed it at the wall-clock limit.
	ReasonTimeout
	// ReasonKilled: Kill was called (or the context of Run was cancelled).
	ReasonKilled
)

var reasonNames = [...]string{"exited", "signaled", "out of memory", "cpu limit", "timeout", "killed"}

func (r Reason) String() string {
	if r >= 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Sentinels matched by errors.Is against the *ExitError that Wait returns.
var (
	ErrExitStatus  = errors.New("exited with non-zero status")
	ErrSignaled    = errors.New("killed by a signal")
	ErrOutOfMemory = errors.New("memory limit exceeded")
	ErrCPULimit    = errors.New("cpu time limit exceeded")
	ErrTimeout     = errors.New("wall-clock limit exceeded")
	ErrKilled      = errors.New("killed")
)

var reasonErrs = [...]error{ErrExitStatus, ErrSignaled, ErrOutOfMemory, ErrCPULimit, ErrTimeout, ErrKilled}

// Result is what Wait learned about a sandboxed process that ended.
type Result struct {
	Reason Reason
	// ExitCode is the exit status, or -1 when a signal ended the process.
	ExitCode int
	// Signal is the signal that ended the process, or 0.
	Signal syscall.Signal
	// OOMKills counts the kernel's out-of-memory kills in the run's cgroup (0 without a cgroup).
	OOMKills int
	// CPUTime is the user plus system time the process used; WallTime runs from Start to exit.
	CPUTime, WallTime time.Duration
	// MaxRSS is the peak resident set size, in bytes.
	MaxRSS int64
	// Limits are the limits in force.
	Limits Limits
	// Layers are the isolation layers that were applied.
	Layers Layer
	// Weakened are the layers not applied, whether missing from the machine or disabled.
	Weakened Layer
	// Warnings describe what is weaker than the strict sandbox, for the log and the job's record.
	Warnings []string
	// LandlockABI is the Landlock ABI version in force, 0 without Landlock.
	LandlockABI int
	// Cgroup is "v1", "v2" or "" when no cgroup limit applied.
	Cgroup string
}

// Err returns nil for a process that exited with status 0, and an *ExitError otherwise.
func (r *Result) Err() error {
	if r.Reason == ReasonExited && r.ExitCode == 0 {
		return nil
	}
	return &ExitError{Result: r}
}

// String describes how the process ended, e.g. "out of memory (memory limit 256 MiB, 1 oom kill)".
func (r *Result) String() string {
	switch r.Reason {
	case ReasonExited:
		return fmt.Sprintf("exited with status %d", r.ExitCode)
	case ReasonSignaled:
		return fmt.Sprintf("killed by signal %s", SignalName(r.Signal))
	case ReasonOutOfMemory:
		return fmt.Sprintf("out of memory (memory limit %s, %d oom kill(s))", formatBytes(r.Limits.Memory), r.OOMKills)
	case ReasonCPULimit:
		return fmt.Sprintf("cpu limit exceeded (%s of cpu time, limit %ds)", r.CPUTime.Round(time.Millisecond), r.Limits.cpuSeconds())
	case ReasonTimeout:
		return fmt.Sprintf("wall-clock limit exceeded (killed after %s, limit %s)", r.WallTime.Round(time.Millisecond), r.Limits.WallClock)
	case ReasonKilled:
		return "killed on request"
	}
	return r.Reason.String()
}

// ExitError is returned by Wait when the process did not exit with status 0. errors.Is matches it
// against ErrExitStatus, ErrSignaled, ErrOutOfMemory, ErrCPULimit, ErrTimeout and ErrKilled.
type ExitError struct {
	Result *Result
}

func (e *ExitError) Error() string { return "sandboxed plugin " + e.Result.String() }

// Is reports whether target is the sentinel of the result's reason.
func (e *ExitError) Is(target error) bool {
	r := e.Result.Reason
	return r >= 0 && int(r) < len(reasonErrs) && reasonErrs[r] == target
}

func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
