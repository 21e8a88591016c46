// Package sandbox runs an untrusted plugin binary in layers of Linux isolation, each of which can
// be probed, turned off for a test, and reported in the run's Result.
//
// Call MaybeRunTrampoline first thing in main of the insitu binary, and in TestMain of every
// package whose tests start sandboxed processes: the sandbox re-executes /proc/self/exe (the test
// binary under go test) as its set-up trampoline, and that call is where the trampoline takes over.
//
// Then build a Spec around a sealed memfd (pluginstore.OpenSealed) and start it:
//
//	res, err := sandbox.Run(ctx, sandbox.Spec{Binary: mfd, Args: args, SocketDir: dir})
//
// or, with go-plugin, return a Process from ClientConfig.RunnerFunc — *Process implements
// go-plugin's runner.Runner, and its PluginToHost refuses any address but a unix socket in the
// socket dir:
//
//	RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, dir string) (runner.Runner, error) {
//		spec.SocketDir = dir
//		p, err := sandbox.FromCmd(cmd, spec)
//		proc = p // keep it: proc.Result() says why the plugin ended
//		return p, err
//	}
//
// # What the trampoline does, in order
//
// The parent clones the trampoline into new user, mount, pid, network, IPC and UTS namespaces,
// with one uid and one gid mapped (namespace root = the plugin's dedicated host uid, 65533 by
// default), Pdeathsig SIGKILL and a new session; it puts it into the run's cgroup (v1 memory and
// pids here, v2 where the root offers those controllers) and only then sends it the Spec. The
// trampoline, on one locked OS thread: enters a new cgroup namespace; sets the host name; mounts
// a 64 KiB tmpfs, binds /dev/null, the socket dir (same path, writable) and any Binds into it,
// remounts it read-only and pivot_roots into it, detaching the old root; empties the capability
// bounding set and locks the securebits; switches ids when there is no user namespace; clears all
// capabilities; sets no_new_privs; enforces Landlock (best effort up to the kernel's ABI); sets
// the rlimits (CPU with hard = soft + 1, threads, open files, file size, address space, no core
// dumps, no locked memory); marks every descriptor above 2 close-on-exec; loads the seccomp filter
// and execveat's the sealed memfd. A failure is reported on a pipe and Start returns a *LayerError
// naming the layer.
//
// # Modes
//
// Strict (the default) refuses to start unless every Mandatory layer (namespaces, read-only root,
// seccomp, no_new_privs, capabilities, rlimits, non-root uid) is available and enabled; the error
// is a *LayerError wrapping ErrLayerUnavailable or ErrLayerDisabled. Without a cgroup it runs with
// the address-space backstop and a warning in Result.Warnings. AllowWeaker (development only)
// runs with what Probe found and records the rest in Result.Weakened and Result.Warnings.
//
// # How a process ended
//
// Wait returns nil for exit status 0 and an *ExitError otherwise; errors.Is matches it against
// ErrExitStatus, ErrSignaled, ErrOutOfMemory, ErrCPULimit, ErrTimeout and ErrKilled, and Result
// carries the exit code, signal, out-of-memory kill count, CPU and wall time, peak RSS, the layers
// applied and the warnings.
//
// Sweep, called at start-up, removes run folders and cgroups left by a previous enclave process
// that died.
package sandbox
