package sandbox

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// trampolineArg is argv[1] of the re-executed binary that sets the sandbox up.
const trampolineArg = "__insitu_sandbox_init__"

// MaybeRunTrampoline turns the process into the sandbox's set-up trampoline when it was started as
// one, and never returns in that case; otherwise it returns at once. Call it first thing in main of
// the insitu binary, and in TestMain of every package whose tests start sandboxed processes (under
// go test, /proc/self/exe is the test binary):
//
//	func TestMain(m *testing.M) {
//		sandbox.MaybeRunTrampoline()
//		os.Exit(m.Run())
//	}
func MaybeRunTrampoline() {
	if len(os.Args) < 2 || os.Args[1] != trampolineArg {
		return
	}
	// Capabilities, no_new_privs, Landlock and seccomp are per thread: everything happens on this
	// thread, and the plugin is executed from it. The thread is never unlocked.
	runtime.LockOSThread()
	status := os.NewFile(fdStatus, "status")
	unix.CloseOnExec(fdStatus)
	rep := trampoline()
	b, _ := json.Marshal(rep)
	status.Write(b)
	if rep.isProbe() {
		os.Exit(0)
	}
	os.Exit(125)
}

// isProbe reports whether the report is the answer to a probe rather than a failure.
func (r *initReport) isProbe() bool { return r.Step == "" && r.Msg == "" }

func fail(layer Layer, step string, err error) *initReport {
	r := &initReport{Layer: layer, Step: step, Msg: err.Error()}
	var errno unix.Errno
	if errors.As(err, &errno) {
		r.Errno = int(errno)
	}
	return r
}

// trampoline sets up the layers in order and executes the plugin. It returns only on failure, or
// with the answer to a probe.
func trampoline() *initReport {
	b, err := io.ReadAll(io.LimitReader(os.NewFile(fdSpec, "spec"), maxInitSpec+1))
	if err != nil {
		return fail(0, "read spec", err)
	}
	unix.Close(fdSpec)
	s, err := decodeInitSpec(b)
	if err != nil {
		return fail(0, "decode spec", err)
	}
	if s.Probe {
		return probeInside(s)
	}
	// The parent has placed this process in its cgroup by now; a new cgroup namespace is rooted there.
	if s.Layers&LayerCgroupNS != 0 {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fail(LayerCgroupNS, "unshare", err)
		}
	}
	if s.Layers&LayerUTSNS != 0 && s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fail(LayerUTSNS, "sethostname", err)
		}
	}
	if s.Layers&LayerRootFS != 0 {
		if err := makeRoot(s.Root, s.Mounts); err != nil {
			return fail(LayerRootFS, "build root", err)
		}
	}
	if s.Layers&LayerCapabilities != 0 {
		if err := dropBoundingSet(); err != nil {
			return fail(LayerCapabilities, "drop bounding set", err)
		}
	}
	if s.Layers&LayerNonRootUID != 0 && s.Layers&LayerUserNS == 0 {
		// Without a user namespace the trampoline is host root: switch to the plugin's ids.
		if err := switchIDs(s.UID, s.GID); err != nil {
			return fail(LayerNonRootUID, "switch ids", err)
		}
	}
	if s.Layers&LayerCapabilities != 0 {
		if err := clearCaps(); err != nil {
			return fail(LayerCapabilities, "clear", err)
		}
	}
	if s.Layers&LayerNoNewPrivs != 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fail(LayerNoNewPrivs, "prctl", err)
		}
	}
	if s.Layers&LayerLandlock != 0 {
		if err := restrictLandlock(s.Mounts); err != nil {
			return fail(LayerLandlock, "restrict", err)
		}
	}
	// Limits last before seccomp, so the trampoline's own threads and memory do not run into them.
	if s.Layers&LayerRlimits != 0 {
		for _, r := range s.Rlimits {
			lim := unix.Rlimit{Cur: r.Cur, Max: r.Max}
			var old unix.Rlimit
			if err := unix.Prlimit(0, r.Resource, nil, &old); err == nil && lim.Max > old.Max {
				// Raising a hard limit needs CAP_SYS_RESOURCE in the initial namespace: keep the
				// stricter existing one.
				lim.Max = old.Max
				lim.Cur = min(lim.Cur, lim.Max)
			}
			if err := unix.Prlimit(0, r.Resource, &lim, nil); err != nil {
				return fail(LayerRlimits, "setrlimit", err)
			}
		}
	}
	// Credential changes clear the parent-death signal: set it again.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fail(0, "pdeathsig", err)
	}
	// Only standard input, output and error reach the plugin.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fail(0, "close_range", err)
	}
	if s.Layers&LayerSeccomp != 0 {
		if err := installSeccomp(); err != nil {
			return fail(LayerSeccomp, "install filter", err)
		}
	}
	return fail(0, "execveat", execveat(fdBinary, s.Argv, s.Env))
}

// execveat executes the program open at fd.
func execveat(fd int, argv, env []string) error {
	empty, err := unix.BytePtrFromString("")
	if err != nil {
		return err
	}
	argvp, err := ptrs(argv)
	if err != nil {
		return err
	}
	envp, err := ptrs(env)
	if err != nil {
		return err
	}
	_, _, errno := unix.RawSyscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	runtime.KeepAlive(argvp)
	runtime.KeepAlive(envp)
	return errno
}

// ptrs converts strings to a NULL-terminated array of C strings.
func ptrs(ss []string) ([]*byte, error) {
	out := make([]*byte, len(ss)+1)
	for i, s := range ss {
		p, err := unix.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func closeFD(fd int) { unix.Close(fd) }
