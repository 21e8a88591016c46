package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"insitu/enclave/pluginstore"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// hostileCase is one thing the hostile plugin does, and how the run must end.
type hostileCase struct {
	name string
	args []string
	// edit adjusts the spec (limits, output limits).
	edit func(*RunSpec)
	want Reason
	// metric is the one metric a completed in-plugin attack must report ("errno:EPERM").
	metric string
	// check makes further assertions.
	check func(t *testing.T, res *Result, err error)
}

// TestHostilePlugins runs every hostile behaviour under the strict sandbox, asserts its specific
// reason (or, for attacks from inside, the errno the plugin met), and after each one runs the
// reference plugin to completion under the same sandbox.
func TestHostilePlugins(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	ln := newTCPListener(t)
	planted := newUnixListener(t)
	outside := filepath.Join(f.dir, "written-by-plugin")
	nextToSocket := filepath.Join(tmp, "written-by-plugin")
	hostPID := strconv.Itoa(os.Getpid())
	limits := func(l sandbox.Limits) func(*RunSpec) {
		return func(s *RunSpec) {
			if l.Memory == 0 {
				l.Memory = s.Sandbox.Limits.Memory
			}
			if l.WallClock == 0 {
				l.WallClock = s.Sandbox.Limits.WallClock
			}
			s.Sandbox.Limits = l
		}
	}
	handshake := func(rest string) string { return "1|" + strconv.Itoa(sdk.ProtocolVersion) + "|" + rest }

	cases := []hostileCase{
		// Network: seccomp refuses every socket but AF_UNIX (and there is no interface anyway).
		{name: "tcp to the test's listener", args: []string{"tcp", ln.Addr().String()}, want: ReasonCompleted, metric: "errno:EPERM"},
		{name: "udp", args: []string{"udp", ln.Addr().String()}, want: ReasonCompleted, metric: "errno:EPERM"},
		{name: "dns", args: []string{"dns", "example.com"}, want: ReasonCompleted, metric: "errno:EPERM"},
		{name: "unix socket planted by path", args: []string{"unixsock", planted.path}, want: ReasonCompleted, metric: "errno:ENOENT"},
		// Files: the root is a read-only tmpfs holding only the socket dir.
		{name: "read /etc/passwd", args: []string{"read", "/etc/passwd"}, want: ReasonCompleted, metric: "errno:ENOENT"},
		{name: "read the enclave's data directory", args: []string{"read", f.secret}, want: ReasonCompleted, metric: "errno:ENOENT"},
		{name: "write to the root", args: []string{"write", "/hostile-was-here"}, want: ReasonCompleted, metric: "errno:EROFS"},
		{name: "write to the enclave's data directory", args: []string{"write", outside}, want: ReasonCompleted, metric: "errno:ENOENT",
			check: func(t *testing.T, _ *Result, _ error) {
				if _, err := os.Stat(outside); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the plugin's file exists on the host: %v", err)
				}
			}},
		// The folders above the socket dir exist in the sandbox's root, read-only.
		{name: "write next to its socket dir", args: []string{"write", nextToSocket}, want: ReasonCompleted, metric: "errno:EROFS",
			check: func(t *testing.T, _ *Result, _ error) {
				if _, err := os.Stat(nextToSocket); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the plugin's file exists on the host: %v", err)
				}
			}},
		// Processes.
		{name: "fork", args: []string{"fork"}, want: ReasonCompleted, metric: "errno:EPERM"},
		{name: "fork bomb", args: []string{"forkbomb"}, want: ReasonCompleted, metric: "errno:EPERM"},
		{name: "ptrace its parent", args: []string{"ptrace"}, want: ReasonCompleted, metric: "errno:EPERM"},
		{name: "ptrace the enclave", args: []string{"ptrace", hostPID}, want: ReasonCompleted, metric: "errno:EPERM"},
		// Limits.
		{name: "allocate past the memory limit", args: []string{"alloc", "1024"}, edit: limits(sandbox.Limits{Memory: 256 << 20}), want: ReasonOutOfMemory,
			check: func(t *testing.T, res *Result, _ error) {
				if res.Process.OOMKills == 0 {
					t.Errorf("no out-of-memory kill counted: %+v", res.Process)
				}
			}},
		{name: "allocate past the memory limit before the handshake", args: []string{"alloc-early", "1024"}, edit: limits(sandbox.Limits{Memory: 256 << 20}), want: ReasonOutOfMemory},
		{name: "spin past the cpu limit", args: []string{"spin"}, edit: limits(sandbox.Limits{CPUTime: time.Second}), want: ReasonCPULimit},
		{name: "hang past the timeout", args: []string{"hang"}, edit: limits(sandbox.Limits{WallClock: 2 * time.Second}), want: ReasonTimeout},
		// Ending badly.
		// The SDK turns a panic in Train into the plugin's error; one on another goroutine ends
		// the process with Go's status 2.
		{name: "panic in Train", args: []string{"panic"}, want: ReasonPluginError,
			check: func(t *testing.T, res *Result, _ error) {
				if !strings.Contains(res.Detail, "hostile plugin panics") {
					t.Errorf("detail %q", res.Detail)
				}
			}},
		{name: "panic on another goroutine", args: []string{"panic-goroutine"}, want: ReasonExited,
			check: func(t *testing.T, res *Result, _ error) {
				if res.ExitCode != 2 || !strings.Contains(res.Stderr.String(), "panics on another goroutine") {
					t.Errorf("exit code %d, stderr %q", res.ExitCode, res.Stderr.String())
				}
			}},
		{name: "SIGSEGV", args: []string{"segv"}, want: ReasonSignaled,
			check: func(t *testing.T, res *Result, _ error) {
				if res.Signal != syscall.SIGSEGV {
					t.Errorf("signal %v, want SIGSEGV", res.Signal)
				}
			}},
		{name: "exit the moment the enclave connects", args: []string{"listen-exit", "5"}, want: ReasonExited,
			check: func(t *testing.T, res *Result, _ error) {
				if res.ExitCode != 5 {
					t.Errorf("exit code %d, want 5", res.ExitCode)
				}
			}},
		{name: "exit with status 3", args: []string{"exit", "3"}, want: ReasonExited,
			check: func(t *testing.T, res *Result, _ error) {
				if res.ExitCode != 3 {
					t.Errorf("exit code %d, want 3", res.ExitCode)
				}
			}},
		// Output.
		{name: "flood stdout and stderr", args: []string{"flood", "8"}, want: ReasonCompleted, metric: "ok:flooded",
			check: func(t *testing.T, res *Result, _ error) {
				// The plugin wrote 8 MiB to each real descriptor, which go-plugin reads as they come,
				// and 8 MiB more to each over gRPC, which may still be in flight when it is killed.
				for name, c := range map[string]Capture{"stdout": res.Stdout, "stderr": res.Stderr} {
					kept := len(c.Head) + len(c.Tail)
					if kept > DefaultCaptureBytes || c.Total < 7<<20 || c.Dropped != c.Total-int64(kept) {
						t.Errorf("%s: kept %d of %d bytes (dropped %d); want at most %d kept of at least 7 MiB",
							name, kept, c.Total, c.Dropped, DefaultCaptureBytes)
					}
				}
			}},
		// go-plugin's own parser of plugin log lines panics on this one; the runner must not use it.
		{name: "a log line whose message is not a string", args: []string{"stderr", `{"@level":"error","@message":{"x":1},"@timestamp":"2026-01-01T00:00:00.000000Z"}`},
			want: ReasonCompleted, metric: "ok:written"},
		{name: "an output of 10^8 floats", args: []string{"output-huge"}, want: ReasonOutputTooLarge},
		{name: "an output over the job's limit, its own check disabled", args: []string{"output-lie", "20000"},
			edit: func(s *RunSpec) { s.OutputLimits = sdk.Limits{MaxOutputFloats: 10000} }, want: ReasonOutputTooLarge,
			check: func(t *testing.T, res *Result, _ error) {
				if !strings.Contains(res.Detail, "announced more than 10000") {
					t.Errorf("detail %q: want the enclave's own refusal of the announced size", res.Detail)
				}
			}},
		{name: "an output that is not a number", args: []string{"nan"}, want: ReasonInvalidOutput},
		{name: "a description of another mode", args: []string{"declare-aggregate"}, want: ReasonIncompatible},
		// Protocol.
		{name: "garbage on the gRPC connection", args: []string{"garbage"}, want: ReasonProtocolError},
		{name: "handshake naming 169.254.169.254:80", args: []string{"handshake", handshake("tcp|169.254.169.254:80|grpc||true")}, want: ReasonForbiddenAddress,
			check: func(t *testing.T, _ *Result, err error) {
				if !errors.Is(err, sandbox.ErrForbiddenAddress) || !strings.Contains(err.Error(), "169.254.169.254:80") {
					t.Errorf("error %v: want sandbox.ErrForbiddenAddress naming the address", err)
				}
			}},
		{name: "handshake naming the test's TCP listener", args: []string{"handshake", handshake("tcp|" + ln.Addr().String() + "|grpc||true")}, want: ReasonForbiddenAddress},
		{name: "handshake naming a unix socket outside the socket dir", args: []string{"handshake", handshake("unix|" + planted.path + "|grpc||true")}, want: ReasonForbiddenAddress},
		{name: "handshake naming a socket in its dir that nobody listens on", args: []string{"handshake", handshake("unix|$PLUGIN_UNIX_SOCKET_DIR/nobody|grpc||true")}, want: ReasonHandshakeFailed},
		{name: "handshake that is not one", args: []string{"handshake", "hello, I am a plugin"}, want: ReasonHandshakeFailed},
		{name: "handshake of an unknown protocol version", args: []string{"handshake", "1|99|unix|/x/plugin|grpc||true"}, want: ReasonHandshakeFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := f.hostileSpec(p, tmp, c.args...)
			if c.edit != nil {
				c.edit(&spec)
			}
			if c.want == ReasonOutOfMemory && probed.Available&sandbox.LayerCgroup == 0 {
				t.Skip("no cgroup memory limit on this machine")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := Run(ctx, spec)
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			if res.Reason != c.want {
				t.Fatalf("reason %s, want %s (%v; stderr %.400q)", res.Reason, c.want, err, res.Stderr.String())
			}
			if want := c.want.Err(); want != nil && !errors.Is(err, want) || want == nil && err != nil {
				t.Errorf("error %v does not match reason %s", err, c.want)
			}
			if c.metric != "" {
				if res.Output == nil || len(res.Output.Metrics) != 1 || res.Output.Metrics[c.metric] != 1 {
					t.Errorf("plugin reported %v, want only %q", res.Output, c.metric)
				}
			}
			if c.check != nil {
				c.check(t, res, err)
			}
			if res.Weakened&^(sandbox.LayerCgroup|sandbox.LayerLandlock) != 0 {
				t.Errorf("strict run weakened %s", res.Weakened)
			}
			f.runLogreg(t, p, tmp)
			assertEmpty(t, tmp)
		})
	}
	if n := ln.n.Load(); n != 0 {
		t.Errorf("the test's TCP listener saw %d connection(s), want 0", n)
	}
	if n := planted.n.Load(); n != 0 {
		t.Errorf("the planted unix socket saw %d connection(s), want 0", n)
	}
}

// TestSwappedBinary changes the stored file after upload: the run refuses the bytes that no longer
// hash to the approved digest, and the approved bytes of another plugin run as usual.
func TestSwappedBinary(t *testing.T) {
	f := getFixture(t)
	tmp := runDir(t)
	for _, c := range []struct {
		name string
		swap func(t *testing.T, path string, p *plugins)
	}{
		{"another plugin's binary in its place", func(t *testing.T, path string, p *plugins) {
			b, err := os.ReadFile(filepath.Join(p.store.Dir(), p.logreg.Hex()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o400); err != nil {
				t.Fatal(err)
			}
		}},
		{"one byte changed", func(t *testing.T, path string, _ *plugins) {
			fh, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			b := make([]byte, 1)
			fh.ReadAt(b, 4096)
			b[0] ^= 0x40
			if _, err := fh.WriteAt(b, 4096); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPlugins(t)
			c.swap(t, filepath.Join(p.store.Dir(), p.hostile.Hex()), p)
			res, err := Run(t.Context(), f.hostileSpec(p, tmp, "fork"))
			if res == nil || res.Reason != ReasonDigestMismatch || !errors.Is(err, ErrDigestMismatch) || !errors.Is(err, pluginstore.ErrDigestMismatch) {
				t.Fatalf("result %v, error %v: want digest_mismatch", res, err)
			}
			if res.Process != nil || res.Output != nil {
				t.Errorf("something ran: %+v", res.Process)
			}
			f.runLogreg(t, p, tmp)
		})
	}
}

// TestUnknownDigest runs a digest the store does not hold: nothing starts.
func TestUnknownDigest(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	spec := f.spec(p, pluginstore.Digest{1, 2, 3}, tmp)
	res, err := Run(t.Context(), spec)
	if res != nil || !errors.Is(err, pluginstore.ErrNotFound) {
		t.Fatalf("result %v, error %v: want pluginstore.ErrNotFound", res, err)
	}
	assertEmpty(t, tmp)
}

// TestStrictRefusesMissingLayer makes each mandatory layer unavailable in turn: the run refuses,
// names the layer, and starts nothing.
func TestStrictRefusesMissingLayer(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	for _, l := range []sandbox.Layer{sandbox.LayerSeccomp, sandbox.LayerNetNS, sandbox.LayerRootFS, sandbox.LayerNonRootUID} {
		spec := f.spec(p, p.logreg, tmp)
		spec.Sandbox.Unavailable = l
		res, err := Run(t.Context(), spec)
		if res == nil || res.Reason != ReasonSandboxRefused || res.RefusedLayer != l || !errors.Is(err, ErrSandboxRefused) ||
			!errors.Is(err, sandbox.ErrLayerUnavailable) || !strings.Contains(err.Error(), l.String()) {
			t.Fatalf("%s unavailable: result %v, error %v", l, res, err)
		}
		if res.Process != nil || res.Description != nil {
			t.Errorf("%s unavailable: the plugin ran", l)
		}
	}
	f.runLogreg(t, p, tmp)
	assertEmpty(t, tmp)
}

// TestAllowWeakerRecordsWeakenedLayers runs the reference plugin without seccomp in
// development mode: it completes, and the result says which layers were missing and warns.
func TestAllowWeakerRecordsWeakenedLayers(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	spec := f.spec(p, p.logreg, runDir(t))
	spec.Sandbox.Mode = sandbox.AllowWeaker
	spec.Sandbox.Unavailable = sandbox.LayerSeccomp
	res, err := Run(t.Context(), spec)
	if err != nil || res.Reason != ReasonCompleted {
		t.Fatalf("reason %v, error %v", res, err)
	}
	if res.SandboxMode != sandbox.AllowWeaker || !res.Weakened.Has(sandbox.LayerSeccomp) || res.Layers.Has(sandbox.LayerSeccomp) {
		t.Errorf("mode %s, layers %s, weakened %s", res.SandboxMode, res.Layers, res.Weakened)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "SANDBOX WEAKENED") || !strings.Contains(w, "seccomp") {
		t.Errorf("warnings %q", res.Warnings)
	}
}

// assertEmpty checks that runs left nothing in their temp dir.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		names := make([]string, len(ents))
		for i, e := range ents {
			names[i] = e.Name()
		}
		t.Errorf("runs left %v in %s", names, dir)
	}
}

// TestEachLayerAlone runs in-plugin attacks through the whole runner (go-plugin handshake,
// relay, Train) with one isolation layer at a time, in development mode, and asserts the errno
// that layer alone produces: each layer holds on its own, not only behind the others.
func TestEachLayerAlone(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	ln := newTCPListener(t)
	planted := newUnixListener(t)
	hostPID := strconv.Itoa(os.Getpid())
	cases := []struct {
		layer  sandbox.Layer
		args   []string
		metric string
	}{
		{sandbox.LayerSeccomp, []string{"fork"}, "errno:EPERM"},
		{sandbox.LayerSeccomp, []string{"forkbomb"}, "errno:EPERM"},
		{sandbox.LayerSeccomp, []string{"tcp", ln.Addr().String()}, "errno:EPERM"},
		{sandbox.LayerSeccomp, []string{"ptrace", hostPID}, "errno:EPERM"},
		{sandbox.LayerNetNS, []string{"tcp", ln.Addr().String()}, "errno:ENETUNREACH"},
		{sandbox.LayerNetNS, []string{"udp", ln.Addr().String()}, "errno:ENETUNREACH"},
		{sandbox.LayerPIDNS, []string{"ptrace", hostPID}, "errno:ESRCH"},
		{sandbox.LayerRootFS, []string{"read", "/etc/passwd"}, "errno:ENOENT"},
		{sandbox.LayerRootFS, []string{"read", f.secret}, "errno:ENOENT"},
		{sandbox.LayerRootFS, []string{"write", "/hostile-was-here"}, "errno:EROFS"},
		{sandbox.LayerRootFS, []string{"unixsock", planted.path}, "errno:ENOENT"},
		{sandbox.LayerLandlock, []string{"read", "/etc/passwd"}, "errno:EACCES"},
	}
	for _, c := range cases {
		t.Run(c.layer.String()+"/"+strings.Join(c.args, " "), func(t *testing.T) {
			if probed.Available&c.layer == 0 {
				t.Skipf("this machine lacks %s", c.layer)
			}
			spec := f.hostileSpec(p, tmp, c.args...)
			spec.Sandbox.Mode = sandbox.AllowWeaker
			spec.Sandbox.Disable = sandbox.AllLayers &^ c.layer
			res, err := Run(t.Context(), spec)
			if err != nil {
				t.Fatalf("%v (stderr %.300q)", err, res.Stderr.String())
			}
			if applied := res.Layers &^ sandbox.LayerMountNS; applied != c.layer {
				t.Fatalf("applied %s, want %s alone", res.Layers, c.layer)
			}
			if res.Output == nil || len(res.Output.Metrics) != 1 || res.Output.Metrics[c.metric] != 1 {
				t.Errorf("plugin reported %v, want only %q", res.Output, c.metric)
			}
		})
	}
	if n := ln.n.Load(); n != 0 {
		t.Errorf("the test's TCP listener saw %d connection(s), want 0", n)
	}
	if n := planted.n.Load(); n != 0 {
		t.Errorf("the planted unix socket saw %d connection(s), want 0", n)
	}
	assertEmpty(t, tmp)
}

// TestAttacksWorkWithoutSandbox is the control of the tests above: with every layer turned off,
// the same attacks succeed, so the errnos they assert come from the sandbox.
func TestAttacksWorkWithoutSandbox(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	ln := newTCPListener(t)
	planted := newUnixListener(t)
	for _, c := range []struct {
		args   []string
		metric string
	}{
		{[]string{"read", f.secret}, "ok:"},
		{[]string{"tcp", ln.Addr().String()}, "ok:connected"},
		{[]string{"unixsock", planted.path}, "ok:connected"},
		{[]string{"fork"}, "ok:forked"},
	} {
		spec := f.hostileSpec(p, tmp, c.args...)
		spec.Sandbox.Mode = sandbox.AllowWeaker
		spec.Sandbox.Disable = sandbox.AllLayers
		res, err := Run(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if res.Layers != 0 || res.Weakened != sandbox.AllLayers {
			t.Errorf("layers %s, weakened %s", res.Layers, res.Weakened)
		}
		var got string
		for k := range res.Output.Metrics {
			got = k
		}
		if !strings.HasPrefix(got, c.metric) {
			t.Errorf("%v without a sandbox: %q, want %q", c.args, got, c.metric)
		}
	}
	if ln.n.Load() != 1 || planted.n.Load() != 1 {
		t.Errorf("listeners saw %d and %d connections, want 1 each", ln.n.Load(), planted.n.Load())
	}
}
