//go:build linux

package sandbox

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin/runner"

	"insitu/enclave/pluginstore"
)

var _ runner.Runner = (*Process)(nil)

func TestStrictContainsHostilePrograms(t *testing.T) {
	needLayers(t, Mandatory)
	ln := tcpListener(t)
	sock, conns := plantedSocket(t)
	spec := Spec{SocketDir: socketDir(t)}
	host := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"fork"}, "errno EPERM"},
		{[]string{"forkbomb"}, "errno EPERM"},
		{[]string{"exec", "/bin/true"}, "errno EPERM"},
		{[]string{"tcp", ln.Addr().String()}, "errno EPERM"},
		{[]string{"udp", "127.0.0.1:53"}, "errno EPERM"},
		{[]string{"read", "/etc/passwd"}, "errno ENOENT"},
		{[]string{"read", "/proc/self/status"}, "errno ENOENT"},
		{[]string{"write", "/probe-was-here"}, "errno EROFS"},
		{[]string{"write", "/dev/null"}, "ok written"},
		{[]string{"write", filepath.Join(spec.SocketDir, "scratch")}, "ok written"},
		{[]string{"listen", filepath.Join(spec.SocketDir, "plugin.sock")}, "ok listening"},
		{[]string{"unixsock", sock}, "errno ENOENT"},
		{[]string{"ptrace", host}, "errno EPERM"},
		{[]string{"kill0", host}, "errno ESRCH"},
		{[]string{"mount", "/"}, "errno EPERM"},
		{[]string{"unshare"}, "errno EPERM"},
		{[]string{"bpf"}, "errno EPERM"},
	} {
		expect(t, spec, c.want, c.args...)
	}
	// With no /etc/resolv.conf the resolver can only try the loopback address, and seccomp
	// denies the socket.
	expect(t, spec, "errno ENOENT", "read", "/etc/resolv.conf")
	o := run(t, spec, "dns", "example.com")
	if strings.HasPrefix(o.out, "ok") {
		t.Errorf("dns resolved in the sandbox: %s", o.out)
	}
	ln.assertNone(t)
	if n := conns.Load(); n != 0 {
		t.Errorf("planted socket saw %d connections", n)
	}
}

func TestAllowWeakerRecordsWeakenedLayers(t *testing.T) {
	needLayers(t, Mandatory)
	spec := Spec{Mode: AllowWeaker, Unavailable: LayerSeccomp | LayerCgroup}
	o := expect(t, spec, "ok forked", "fork")
	if o.res.Weakened != LayerSeccomp|LayerCgroup || o.res.Layers.Has(LayerSeccomp) {
		t.Errorf("weakened %s, applied %s", o.res.Weakened, o.res.Layers)
	}
	joined := strings.Join(o.res.Warnings, "\n")
	if !strings.Contains(joined, "SANDBOX WEAKENED") || !strings.Contains(joined, "seccomp") || !strings.Contains(joined, "address-space backstop") {
		t.Errorf("warnings %q", o.res.Warnings)
	}
}

func TestStrictWithoutCgroupWarns(t *testing.T) {
	needLayers(t, Mandatory)
	o := expect(t, Spec{Unavailable: LayerCgroup}, "ok hello from the sandbox", "hello")
	if o.res.Weakened != LayerCgroup|(LayerLandlock&^o.res.Layers) || o.res.Cgroup != "" {
		t.Errorf("weakened %s, cgroup %q", o.res.Weakened, o.res.Cgroup)
	}
	if len(o.res.Warnings) == 0 || !strings.Contains(o.res.Warnings[0], "address-space backstop") {
		t.Errorf("warnings %q", o.res.Warnings)
	}
}

func TestSetupFailureNamesLayer(t *testing.T) {
	needLayers(t, Mandatory)
	// A socket dir below a folder the plugin's uid cannot search cannot be bound into its root.
	dir := filepath.Join(t.TempDir(), "sock")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(dir), 0o700)
	p, err := New(Spec{Binary: sealedProbe(t), Args: []string{"hello"}, SocketDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start(t.Context())
	var le *LayerError
	if !errors.As(err, &le) || le.Layer != LayerRootFS || !errors.Is(err, ErrLayerUnavailable) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("got %v, want the read-only root named, wrapping EACCES", err)
	}
}

func TestNotSealedBinaryRefused(t *testing.T) {
	f, err := os.Open(probeProgram(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := New(Spec{Binary: f})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("got %v, want ErrNotSealed", err)
	}
}

func TestFromCmd(t *testing.T) {
	needLayers(t, Mandatory)
	dir := socketDir(t)
	// What go-plugin hands a RunnerFunc: an empty command with arguments and environment.
	cmd := exec.Command("")
	cmd.Args = []string{"", "id"}
	cmd.Env = append(os.Environ(), "PLUGIN_UNIX_SOCKET_DIR="+dir, "MAGIC=cookie")
	cmd.Stdin = os.Stdin
	p, err := FromCmd(cmd, Spec{Binary: sealedProbe(t)})
	if err != nil {
		t.Fatal(err)
	}
	if p.spec.SocketDir != dir {
		t.Errorf("socket dir %q, want %q", p.spec.SocketDir, dir)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.Stderr())
	out, err := io.ReadAll(p.Stdout())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := " env=PLUGIN_UNIX_SOCKET_DIR=" + dir + ",MAGIC=cookie\n"
	if !strings.HasSuffix(string(out), want) {
		t.Errorf("output %q lacks %q: the host environment must not reach the plugin", out, want)
	}
	if p.Name() != "sandbox:plugin" || p.Result().Reason != ReasonExited {
		t.Errorf("name %q, result %v", p.Name(), p.Result())
	}
	if _, err := FromCmd(cmd, Spec{Binary: sealedProbe(t), Stderr: os.Stderr}); err == nil {
		t.Error("FromCmd accepted a spec with its own Stderr, which would leave go-plugin no pipe")
	}
	q, err := New(Spec{Binary: sealedProbe(t)})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(q.Stdout()); err != nil || len(b) != 0 {
		t.Errorf("Stdout of a New process: %q, %v", b, err)
	}
}

func TestPluginToHost(t *testing.T) {
	p := &Process{spec: Spec{SocketDir: "/tmp/plugin-dir123"}}
	for _, c := range []struct {
		network, addr string
		ok            bool
	}{
		{"unix", "/tmp/plugin-dir123/plugin456", true},
		{"tcp", "169.254.169.254:80", false},
		{"tcp", "127.0.0.1:1234", false},
		{"unix", "/tmp/other/plugin", false},
		{"unix", "/tmp/plugin-dir123/../x", false},
		{"unix", "/tmp/plugin-dir123", false},
		{"unix", "/tmp/plugin-dir123/a/b", false},
		{"unix", "plugin-dir123/p", false},
		{"unix", "@abstract", false},
		{"unixgram", "/tmp/plugin-dir123/p", false},
	} {
		n, a, err := p.PluginToHost(c.network, c.addr)
		if c.ok && (err != nil || n != c.network || a != c.addr) {
			t.Errorf("%s %s: %v", c.network, c.addr, err)
		}
		var ae *AddressError
		if !c.ok && (!errors.Is(err, ErrForbiddenAddress) || !errors.As(err, &ae) || ae.Addr != c.addr) {
			t.Errorf("%s %s: got %v, want ErrForbiddenAddress", c.network, c.addr, err)
		}
		if _, _, err2 := p.HostToPlugin(c.network, c.addr); (err2 == nil) != c.ok {
			t.Errorf("HostToPlugin %s %s: %v", c.network, c.addr, err2)
		}
	}
	if _, _, err := (&Process{}).PluginToHost("unix", "/x/y"); err == nil {
		t.Error("an address was accepted without a socket dir")
	}
}

func TestSweep(t *testing.T) {
	needRoot(t)
	tmp := t.TempDir()
	name := "insitu-test-sweep-" + strconv.Itoa(os.Getpid())
	deadID := "2147483646.1-deadbeef"
	liveID := runID()
	for _, id := range []string{deadID, liveID} {
		if err := os.MkdirAll(filepath.Join(tmp, runDirPrefix+id, "root"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(tmp, "unrelated")
	os.Mkdir(other, 0o700)
	var cgroups []string
	if v, _ := detectCgroup(); v != "" {
		dead, err := newCgroup(v, name, deadID, DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		live, err := newCgroup(v, name, liveID, DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		cgroups = dead.dirs
		t.Cleanup(func() {
			dirs := live.dirs
			live.remove()
			for _, d := range dirs {
				os.Remove(filepath.Dir(d))
			}
		})
	}
	removed, err := Sweep(SweepOptions{TempDir: tmp, CgroupName: name})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{filepath.Join(tmp, runDirPrefix+deadID)}, cgroups...)
	if strings.Join(removed, "\n") != strings.Join(want, "\n") {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, p := range []string{filepath.Join(tmp, runDirPrefix+liveID), other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s of a live owner was removed: %v", p, err)
		}
	}
}

func FuzzDecodeInitSpec(f *testing.F) {
	seed, _ := json.Marshal(&initSpec{
		Layers: AllLayers, Argv: []string{"plugin", "serve"}, Env: []string{"A=1"}, Root: "/tmp/insitu-sandbox-1/root",
		Mounts: []initBind{{Path: "/dev/null", File: true, Device: true}, {Path: "/tmp/plugin-dir1", Writable: true, Socket: true}},
		UID:    65533, GID: 65533, Hostname: "insitu-sandbox", Rlimits: []rlimit{{0, 1, 2}},
	})
	f.Add(seed)
	f.Add([]byte(`{"probe":true,"layers":128,"root":"/tmp/x/root"}`))
	f.Add([]byte(`{"layers":4294967295,"argv":["a"]}`))
	f.Add([]byte(`{"argv":["a"],"mounts":[{"path":"/"}]}`))
	f.Add([]byte(`{"argv":["a"],"rlimits":[{"resource":99,"cur":1,"max":0}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeInitSpec(b)
		if err != nil {
			return
		}
		if s.Layers&LayerRootFS != 0 && (s.Root == "/" || !filepath.IsAbs(s.Root)) {
			t.Fatalf("accepted root %q", s.Root)
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeInitSpec(again); err != nil {
			t.Fatalf("re-encoded spec rejected: %v", err)
		}
	})
}

// TestStoreToSandbox runs a binary the way the runner will: uploaded to the plugin store, opened
// as a sealed memfd by digest, executed by the strict sandbox.
func TestStoreToSandbox(t *testing.T) {
	needLayers(t, Mandatory)
	s, err := pluginstore.Open(t.TempDir(), pluginstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(probeProgram(t))
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := s.Put(t.Context(), f, pluginstore.Meta{Uploader: "bank-a", Name: "probe"})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	mfd, err := s.OpenSealed(t.Context(), info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer mfd.Close()
	var out strings.Builder
	res, err := Run(t.Context(), Spec{Binary: mfd, Args: []string{"hello"}, SocketDir: socketDir(t), Stdout: &out})
	if err != nil || out.String() != "ok hello from the sandbox\n" {
		t.Fatalf("output %q, result %v, err %v", out.String(), res, err)
	}
}

// TestParentDeath kills an enclave-like parent with SIGKILL: its sandboxed plugin dies with it
// (Pdeathsig), and Sweep removes the run folder and cgroups it left.
func TestParentDeath(t *testing.T) {
	needLayers(t, Mandatory)
	tmp, err := os.MkdirTemp("", "insitu-parent-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o755)
	cgName := "insitu-test-parent-" + strconv.Itoa(os.Getpid())
	parent := exec.Command(os.Args[0])
	parent.Env = append(os.Environ(), parentHelperEnv+"="+probeProgram(t), "TMPDIR="+tmp, "INSITU_SANDBOX_TEST_CGROUP="+cgName)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		parent.Process.Kill()
		t.Fatalf("helper: %v %q", err, line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		parent.Process.Kill()
		t.Fatalf("helper said %q", line)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("plugin %d not running: %v", pid, err)
	}
	parent.Process.Kill()
	parent.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			break // gone, or a zombie waiting for init to reap it
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("plugin %d survived its parent", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	removed, err := Sweep(SweepOptions{TempDir: tmp, CgroupName: cgName})
	if err != nil {
		t.Fatal(err)
	}
	want := 1 // the run folder
	if v, _ := detectCgroup(); v == "v1" {
		want = 3 // and the memory and pids cgroups
	} else if v == "v2" {
		want = 2
	}
	if len(removed) != want {
		t.Errorf("Sweep removed %q, want %d entries", removed, want)
	}
	for _, c := range []string{"memory", "pids", ""} {
		os.Remove(filepath.Join(cgroupRoot, c, cgName))
	}
}
