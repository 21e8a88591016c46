package runner

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"insitu/enclave/sandbox"
)

func TestLogregCompletes(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	res := f.runLogreg(t, p, runDir(t))
	t.Logf("%s: %d rows, %d features, start to describe %s, wall %s, layers %s, weakened %s, warnings %q",
		res.Reason, res.Input.Rows, len(res.Input.Features), res.StartToDescribe, res.Wall, res.Layers, res.Weakened, res.Warnings)
	t.Logf("stderr %q", res.Stderr.String())
}

// TestPlatformDatasetRefused: a plaintext job on a platform dataset fails before any plugin
// starts or any row is read.
func TestPlatformDatasetRefused(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	spec := f.spec(p, p.logreg, tmp)
	spec.Input.Dataset = platformName
	res, err := Run(t.Context(), spec)
	if res != nil || !errors.Is(err, ErrPlatformData) || !strings.Contains(err.Error(), platformName) ||
		!strings.Contains(err.Error(), "HE or aggregate mode") {
		t.Fatalf("result %v, error %v: want ErrPlatformData naming the dataset and what to do", res, err)
	}
	assertEmpty(t, tmp)
}

// TestInputStreamed checks what a plugin that needs no labels receives: every cohort row, the
// subject pseudonym and the features, and no label column.
func TestInputStreamed(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	res, err := Run(t.Context(), f.hostileSpec(p, runDir(t), "drain"))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Output.Metrics
	in := res.Input
	if in.Class != "synthetic" || in.Rows != f.labels.Len()-in.Unmatched || in.Rows == 0 {
		t.Errorf("input %+v, %d labels", in, f.labels.Len())
	}
	if m["rows"] != float64(in.Rows) || m["columns"] != float64(len(in.Features)+1) {
		t.Errorf("plugin read %v rows and %v columns; the cohort has %d rows and %d features (plus the subject, no label)",
			m["rows"], m["columns"], in.Rows, len(in.Features))
	}
	// The plugin's count lacks the validity bitmaps the IPC stream leaves out for columns without nulls.
	if min := float64(in.Rows * len(in.Features) * 8); in.Batches == 0 || m["bytes"] < min || m["bytes"] > float64(in.Bytes) {
		t.Errorf("streamed %d batches, %d bytes; the plugin counted %v bytes", in.Batches, in.Bytes, m["bytes"])
	}
	if in.Transforms == nil || len(in.Transforms.Names()) != len(in.Features) {
		t.Errorf("fitted transforms %v for features %v", in.Transforms, in.Features)
	}
}

// TestCancel cancels a run whose plugin hangs in Train.
func TestCancel(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(500*time.Millisecond, cancel)
	res, err := Run(ctx, f.hostileSpec(p, tmp, "hang"))
	if res == nil || res.Reason != ReasonCancelled || !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("result %v, error %v", res, err)
	}
	// Under load the cancellation may come before the process started; if it ran, it was killed.
	if res.Process != nil && res.Process.Reason != sandbox.ReasonKilled {
		t.Errorf("process %v: want killed", res.Process)
	}
	f.runLogreg(t, p, tmp)
	assertEmpty(t, tmp)
}

// TestNoLeaks runs plugins that end in different ways and checks that the enclave holds no more
// goroutines or file descriptors afterwards than before.
func TestNoLeaks(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	run := func(args ...string) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		spec := f.hostileSpec(p, tmp, args...)
		spec.Sandbox.Limits.WallClock = 2 * time.Second
		Run(ctx, spec)
	}
	// Warm up: the first run starts the sandbox's long-lived thread and caches.
	f.runLogreg(t, p, tmp)
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	f.runLogreg(t, p, tmp)
	run("garbage")
	run("handshake", "1|1|tcp|169.254.169.254:80|grpc||true")
	run("handshake", "not a handshake")
	run("handshake", "1|1|unix|$PLUGIN_UNIX_SOCKET_DIR/nobody|grpc||true")
	run("listen-exit", "5")
	run("panic")
	run("panic-goroutine")
	run("output-huge")
	run("hang")
	run("drain")
	var g1, fd1 int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		g1, fd1 = runtime.NumGoroutine(), openFDs(t)
		if g1 <= g0 && fd1 <= fd0 {
			break
		}
	}
	if g1 > g0 || fd1 > fd0 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines %d → %d, open files %d → %d\n%s", g0, g1, fd0, fd1, buf[:runtime.Stack(buf, true)])
	}
	assertEmpty(t, tmp)
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, runDirPrefix+"999999999.1-123")
	live := filepath.Join(dir, runDirPrefix+sandbox.OwnerTag()+"-456")
	other := filepath.Join(dir, "unrelated")
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "plugin-dir1"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Sweep(SweepOptions{TempDir: dir, CgroupName: "insitu-runner-sweep-test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != stale {
		t.Errorf("removed %v, want only %s", removed, stale)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// records is a slog.Handler that keeps records, for tests.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// find returns the attributes of the first record with message msg, or nil.
func (r *records) find(msg string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]string{"level": rec.Level.String()}
		rec.Attrs(func(a slog.Attr) bool {
			attrs[a.Key] = a.Value.String()
			return true
		})
		return attrs
	}
	return nil
}

// TestLogger checks what a run tells the logger: its end with the reason and the layers, the
// plugin's own log lines, and loud warnings when the sandbox was weakened.
func TestLogger(t *testing.T) {
	f := getFixture(t)
	p := newPlugins(t)
	tmp := runDir(t)
	recs := &records{}
	spec := f.spec(p, p.logreg, tmp)
	spec.Logger = slog.New(recs)
	if _, err := Run(t.Context(), spec); err != nil {
		t.Fatal(err)
	}
	end := recs.find("plugin run ended")
	if end == nil || end["reason"] != "completed" || end["level"] != "INFO" || !strings.Contains(end["layers"], "seccomp") {
		t.Errorf("end record %v", end)
	}
	if fit := recs.find("fitting"); fit == nil || fit["rows"] == "" {
		t.Errorf("the plugin's log line: %v", fit)
	}

	recs = &records{}
	spec = f.hostileSpec(p, tmp, "exit", "4")
	spec.Logger = slog.New(recs)
	spec.Sandbox.Mode = sandbox.AllowWeaker
	spec.Sandbox.Unavailable = sandbox.LayerSeccomp
	Run(t.Context(), spec)
	end = recs.find("plugin run ended")
	if end == nil || end["reason"] != "exited" || end["exit_code"] != "4" || end["level"] != "WARN" ||
		end["sandbox_mode"] != "allow-weaker" || !strings.Contains(end["weakened"], "seccomp") {
		t.Errorf("end record %v", end)
	}
	if w := recs.find("plugin sandbox weaker than strict"); w == nil || w["level"] != "WARN" || !strings.Contains(w["warning"], "SANDBOX WEAKENED") {
		t.Errorf("weakening warning %v", w)
	}
}
