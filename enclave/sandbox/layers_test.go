//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Each test here applies one layer (and what it needs to work) and checks the errno that layer
// alone produces.

func TestSeccompAlone(t *testing.T) {
	needLayers(t, LayerSeccomp)
	spec := only(LayerSeccomp)
	ln := tcpListener(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fork"}, "errno EPERM"},
		{[]string{"forkbomb"}, "errno EPERM"},
		{[]string{"exec", "/bin/true"}, "errno EPERM"},
		{[]string{"tcp", ln.Addr().String()}, "errno EPERM"},
		{[]string{"udp", "127.0.0.1:9"}, "errno EPERM"},
		{[]string{"socket", "inet6"}, "errno EPERM"},
		{[]string{"socket", "netlink"}, "errno EPERM"},
		{[]string{"socket", "unix"}, "ok socket"},
		{[]string{"ptrace", strconv.Itoa(os.Getpid())}, "errno EPERM"},
		{[]string{"unshare"}, "errno EPERM"},
		{[]string{"mount", t.TempDir()}, "errno EPERM"},
		{[]string{"bpf"}, "errno EPERM"},
		{[]string{"iouring"}, "errno EPERM"},
		{[]string{"threads", "8"}, "ok 8 threads"},
	} {
		o := expect(t, spec, c.want, c.args...)
		if o.res.Layers&^LayerSeccomp != 0 {
			t.Fatalf("applied %s, want seccomp alone", o.res.Layers)
		}
	}
	ln.assertNone(t)
}

func TestNetworkNamespaceAlone(t *testing.T) {
	needLayers(t, LayerNetNS)
	ln := tcpListener(t)
	spec := only(LayerNetNS)
	expect(t, spec, "errno ENETUNREACH", "tcp", ln.Addr().String())
	expect(t, spec, "errno ENETUNREACH", "udp", "127.0.0.1:9")
	ln.assertNone(t)
}

func TestPIDNamespaceAlone(t *testing.T) {
	needLayers(t, LayerPIDNS)
	spec := only(LayerPIDNS)
	host := strconv.Itoa(os.Getpid())
	expect(t, spec, "errno ESRCH", "kill0", host)
	expect(t, spec, "errno ESRCH", "ptrace", host)
}

func TestReadOnlyRootAlone(t *testing.T) {
	needLayers(t, LayerRootFS|LayerMountNS)
	sock, conns := plantedSocket(t)
	spec := only(LayerRootFS)
	spec.SocketDir = socketDir(t)
	o := expect(t, spec, "errno ENOENT", "read", "/etc/passwd")
	if o.res.Layers != LayerRootFS|LayerMountNS {
		t.Errorf("applied %s, want the read-only root and its mount namespace", o.res.Layers)
	}
	expect(t, spec, "errno EROFS", "write", "/probe-was-here")
	expect(t, spec, "errno ENOENT", "unixsock", sock)
	expect(t, spec, "errno ENOENT", "read", probeProgram(t))
	expect(t, spec, "ok written", "write", filepath.Join(spec.SocketDir, "f"))
	expect(t, spec, "ok listening", "listen", filepath.Join(spec.SocketDir, "plugin.sock"))
	if n := conns.Load(); n != 0 {
		t.Errorf("planted socket saw %d connections", n)
	}
	if _, err := os.Stat("/probe-was-here"); err == nil {
		os.Remove("/probe-was-here")
		t.Error("the probe wrote to the host's root")
	}
}

func TestLandlockAlone(t *testing.T) {
	needLayers(t, LayerLandlock)
	ln := tcpListener(t)
	sock, conns := plantedSocket(t)
	spec := only(LayerLandlock)
	spec.SocketDir = socketDir(t)
	outside := t.TempDir()
	o := expect(t, spec, "errno EACCES", "read", "/etc/passwd")
	if o.res.LandlockABI < 1 || o.res.Layers != LayerLandlock {
		t.Errorf("landlock ABI %d, layers %s", o.res.LandlockABI, o.res.Layers)
	}
	expect(t, spec, "errno EACCES", "write", filepath.Join(outside, "x"))
	expect(t, spec, "ok written", "write", filepath.Join(spec.SocketDir, "f"))
	expect(t, spec, "ok listening", "listen", filepath.Join(spec.SocketDir, "plugin.sock"))
	if o.res.LandlockABI >= 4 {
		expect(t, spec, "errno EACCES", "tcp", ln.Addr().String())
		ln.assertNone(t)
	}
	// Below ABI 9 Landlock cannot stop connecting to a path-named unix socket: the read-only
	// root is what hides it (TestReadOnlyRootAlone).
	if o.res.LandlockABI >= 9 {
		expect(t, spec, "errno EACCES", "unixsock", sock)
	} else {
		expect(t, spec, "ok connected", "unixsock", sock)
		// The listener counts the connection in its own goroutine: give it a moment.
		for deadline := time.Now().Add(5 * time.Second); conns.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if conns.Load() != 1 {
			t.Errorf("planted socket saw %d connections, want 1", conns.Load())
		}
	}
}

func TestUserNamespaceAlone(t *testing.T) {
	needLayers(t, LayerUserNS)
	// Root of a user namespace holds capabilities only over what the namespace owns: not over the
	// host's mount namespace.
	expect(t, only(LayerUserNS), "errno EPERM", "mount", t.TempDir())
}

func TestNonRootUIDAlone(t *testing.T) {
	needLayers(t, LayerNonRootUID)
	dir, err := os.MkdirTemp("", "insitu-secret-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := only(LayerNonRootUID)
	expect(t, spec, "errno EACCES", "read", secret)
	o := run(t, spec, "id")
	if !strings.HasPrefix(o.out, "ok uid=65533 gid=65533 groups=[] ") {
		t.Errorf("id: %s", o.out)
	}
}

func TestCapabilitiesAlone(t *testing.T) {
	needLayers(t, LayerCapabilities)
	spec := only(LayerCapabilities)
	expect(t, spec, "errno EPERM", "mount", t.TempDir())
	o := run(t, spec, "id")
	if !strings.Contains(o.out, " capeff=0 capprm=0 bset=0 nnp=0 ") {
		t.Errorf("id: %s", o.out)
	}
}

func TestNoNewPrivsAlone(t *testing.T) {
	needLayers(t, LayerNoNewPrivs)
	o := run(t, only(LayerNoNewPrivs), "id")
	if !strings.Contains(o.out, " nnp=1 seccomp=0 ") {
		t.Errorf("id: %s", o.out)
	}
}

func TestRlimitCPU(t *testing.T) {
	needLayers(t, LayerRlimits)
	spec := only(LayerRlimits)
	spec.Limits.CPUTime = time.Second
	o := run(t, spec, "spin")
	if o.res.Reason != ReasonCPULimit || o.res.Signal != syscall.SIGKILL || o.res.CPUTime < time.Second {
		t.Errorf("spin under a 1 s CPU limit: %v (signal %v, cpu %v)", o.res, o.res.Signal, o.res.CPUTime)
	}
	if !errorsIs(o.err, ErrCPULimit) {
		t.Errorf("error %v does not match ErrCPULimit", o.err)
	}
}

func TestRlimitThreads(t *testing.T) {
	// RLIMIT_NPROC is not enforced for root: it needs the dedicated uid.
	needLayers(t, LayerRlimits|LayerUserNS|LayerNonRootUID)
	spec := only(LayerRlimits | LayerUserNS | LayerNonRootUID)
	spec.Limits.Threads = 12
	o := run(t, spec, "threads", "40")
	if o.res.Reason != ReasonExited || o.res.ExitCode != 2 || !strings.Contains(o.errOut, "failed to create new OS thread") {
		t.Errorf("40 threads under RLIMIT_NPROC 12: %v, stderr %.300s", o.res, o.errOut)
	}
}

func TestRlimitFiles(t *testing.T) {
	needLayers(t, LayerRlimits)
	spec := only(LayerRlimits)
	spec.Limits.OpenFiles = 20
	expect(t, spec, "errno EMFILE", "files", "50")
}

func TestRlimitFileSize(t *testing.T) {
	needLayers(t, LayerRlimits)
	spec := only(LayerRlimits)
	spec.Limits.FileSize = 4096
	expect(t, spec, "errno EFBIG", "write", filepath.Join(t.TempDir(), "big")+":100000")
}

func TestRlimitAddressSpace(t *testing.T) {
	needLayers(t, LayerRlimits)
	spec := only(LayerRlimits)
	spec.Limits.AddressSpace = 1536 << 20
	o := run(t, spec, "alloc", "3000")
	if o.res.Reason != ReasonExited || o.res.ExitCode != 2 || !strings.Contains(o.errOut, "out of memory") {
		t.Errorf("3000 MiB under RLIMIT_AS 1.5 GiB: %v, stderr %.200s", o.res, o.errOut)
	}
}

func TestCgroupMemory(t *testing.T) {
	needLayers(t, LayerCgroup)
	spec := only(LayerCgroup)
	spec.Limits.Memory = 128 << 20
	o := run(t, spec, "alloc", "512")
	if o.res.Reason != ReasonOutOfMemory || o.res.OOMKills < 1 || o.res.Signal != syscall.SIGKILL {
		t.Errorf("512 MiB under a 128 MiB cgroup: %v (oom kills %d, signal %v)", o.res, o.res.OOMKills, o.res.Signal)
	}
	if !errorsIs(o.err, ErrOutOfMemory) {
		t.Errorf("error %v does not match ErrOutOfMemory", o.err)
	}
	expect(t, spec, "ok 16 MiB", "alloc", "16")
}

func TestCgroupPids(t *testing.T) {
	needLayers(t, LayerCgroup)
	spec := only(LayerCgroup)
	spec.Limits.Pids = 10
	o := run(t, spec, "threads", "40")
	if o.res.Reason != ReasonExited || o.res.ExitCode != 2 || !strings.Contains(o.errOut, "failed to create new OS thread") {
		t.Errorf("40 threads under pids.max 10: %v, stderr %.300s", o.res, o.errOut)
	}
}

func TestWallClock(t *testing.T) {
	needRoot(t)
	spec := only(0)
	spec.Limits.WallClock = 300 * time.Millisecond
	o := run(t, spec, "hang")
	if o.res.Reason != ReasonTimeout || o.res.WallTime < 300*time.Millisecond || !errorsIs(o.err, ErrTimeout) {
		t.Errorf("hang under a 300 ms wall clock: %v, %v", o.res, o.err)
	}
}
