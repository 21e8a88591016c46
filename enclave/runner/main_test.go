package runner

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/synthetic"
	"insitu/enclave/cohort"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// The plugin uid of these tests, apart from the sandbox tests' default that may run at the same time.
const (
	testUID    = 65531
	testCgroup = "insitu-runner-test"
)

var (
	// binDir holds the plugins built once per test binary: hostile, logreg and heprobe.
	binDir string
	// baseDir holds the fixture: a data directory with datasets, and the runs' temp dirs.
	baseDir string
)

func TestMain(m *testing.M) {
	sandbox.MaybeRunTrampoline()
	code := func() int {
		if runtime.GOOS != "linux" || os.Geteuid() != 0 {
			return m.Run() // every sandboxed test skips
		}
		var err error
		if binDir, err = os.MkdirTemp("", "insitu-runner-bin-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(binDir)
		if baseDir, err = os.MkdirTemp("", "irt-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(baseDir)
		os.Chmod(baseDir, 0o711)
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-o", binDir+"/", "insitu/plugins/testdata/hostile", "insitu/plugins/logreg", "insitu/enclave/runner/testdata/heprobe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build the test plugins: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// needRoot skips tests that start sandboxes unless they run as root on Linux, as CI does.
func needRoot(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		tb.Skip("runner tests start sandboxed plugins: they need root on Linux (CI runs them so)")
	}
	probeOnce.Do(func() { probed = sandbox.Probe() })
	if missing := sandbox.Mandatory &^ probed.Available; missing != 0 {
		tb.Skipf("this machine lacks mandatory sandbox layers: %s", missing)
	}
}

var (
	probeOnce sync.Once
	probed    *sandbox.ProbeResult
)

// fixture is the enclave state the runs share: a data directory with a synthetic and a platform
// dataset of the same rows, and the bank's labels.
type fixture struct {
	dir      string
	secret   string // a file of the data directory, which a plugin must not read
	datasets *dataset.Store
	labels   *cohort.Labels
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

const (
	synthName    = synthetic.DatasetName
	platformName = "sme_platform"
)

func getFixture(tb testing.TB) *fixture {
	tb.Helper()
	needRoot(tb)
	fixOnce.Do(func() { fix, fixErr = makeFixture() })
	if fixErr != nil {
		tb.Fatal(fixErr)
	}
	return fix
}

func makeFixture() (*fixture, error) {
	ctx := context.Background()
	root := filepath.Join(baseDir, "fixture")
	synthDir := filepath.Join(root, "synth")
	if _, err := synthetic.Generate(synthetic.Config{Enterprises: 400, Seed: 11}, synthDir); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(root, "master.key")
	init, err := datadir.Init(filepath.Join(root, "enclave"), keyFile)
	if err != nil {
		return nil, err
	}
	dd, err := datadir.Open(init.Dir, keys.Source{File: keyFile})
	if err != nil {
		return nil, err
	}
	store, err := dataset.Open(dd)
	if err != nil {
		return nil, err
	}
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(synthDir, "dataset.yaml"))
	if err != nil {
		return nil, err
	}
	if spec.Class != connectors.ClassSynthetic {
		return nil, fmt.Errorf("generated dataset is of class %q", spec.Class)
	}
	if _, _, err := store.Ingest(ctx, spec, mappings, dataset.IngestOptions{}); err != nil {
		return nil, err
	}
	spec.Dataset, spec.Class = platformName, connectors.ClassPlatform
	if _, _, err := store.Ingest(ctx, spec, mappings, dataset.IngestOptions{}); err != nil {
		return nil, err
	}
	labels, err := cohort.ReadLabels(filepath.Join(synthDir, "labels.csv"))
	if err != nil {
		return nil, err
	}
	secret := filepath.Join(init.Dir, datadir.FormatFile)
	if _, err := os.Stat(secret); err != nil {
		return nil, err
	}
	return &fixture{dir: init.Dir, secret: secret, datasets: store, labels: labels}, nil
}

// plugins is a plugin store in t.TempDir() holding the hostile, the logreg and the heprobe plugin.
type plugins struct {
	store                    *pluginstore.Store
	hostile, logreg, heprobe pluginstore.Digest
}

func newPlugins(tb testing.TB) *plugins {
	tb.Helper()
	s, err := pluginstore.Open(filepath.Join(tb.TempDir(), "plugins"), pluginstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	up := func(name string) pluginstore.Digest {
		f, err := os.Open(filepath.Join(binDir, name))
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		info, _, err := s.Put(context.Background(), f, pluginstore.Meta{Uploader: "test_bank", Name: name})
		if err != nil {
			tb.Fatal(err)
		}
		return info.Digest
	}
	return &plugins{store: s, hostile: up("hostile"), logreg: up("logreg"), heprobe: up("heprobe")}
}

// runDir returns a folder for RunSpec.TempDir that the plugin's uid can search.
func runDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp(baseDir, "r-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(d, 0o711)
	tb.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// spec returns a strict run of digest over the synthetic dataset with the bank's labels.
func (f *fixture) spec(p *plugins, d pluginstore.Digest, tempDir string) RunSpec {
	return RunSpec{
		Plugins: p.store,
		Digest:  d,
		Mode:    sdk.ModePlaintextPublic,
		Input:   &PlainInput{Datasets: f.datasets, Dataset: synthName, Labels: f.labels},
		Sandbox: sandbox.Spec{
			UID: testUID, GID: testUID, CgroupName: testCgroup,
			Limits: sandbox.Limits{WallClock: 60 * time.Second, Memory: 512 << 20},
		},
		Hyperparameters: sdk.MustHyperparameters(map[string]any{"lambda": 1}),
		TempDir:         tempDir,
	}
}

// hostileSpec is spec for the hostile plugin doing args.
func (f *fixture) hostileSpec(p *plugins, tempDir string, args ...string) RunSpec {
	s := f.spec(p, p.hostile, tempDir)
	s.Args = args
	return s
}

// runLogreg runs the reference plugin to completion under the strict sandbox and checks its
// output: the proof that the enclave still serves.
func (f *fixture) runLogreg(tb testing.TB, p *plugins, tempDir string) *Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, f.spec(p, p.logreg, tempDir))
	if err != nil {
		if res == nil {
			tb.Fatalf("logreg after a hostile run: %v", err)
		}
		tb.Fatalf("logreg after a hostile run: %v (stderr %.500s)", err, res.Stderr)
	}
	if res.Reason != ReasonCompleted || res.Output == nil || res.Output.Weights == nil {
		tb.Fatalf("logreg: reason %s, output %+v", res.Reason, res.Output)
	}
	if res.Weakened&^(sandbox.LayerCgroup|sandbox.LayerLandlock) != 0 || !res.Layers.Has(sandbox.Mandatory) {
		tb.Fatalf("logreg ran with layers %s, weakened %s", res.Layers, res.Weakened)
	}
	w := res.Output.Weights
	if len(w.Names) != len(res.Input.Features) || len(res.Output.Scores) != res.Input.Rows {
		tb.Fatalf("logreg returned %d weights for %d features, %d scores for %d rows",
			len(w.Names), len(res.Input.Features), len(res.Output.Scores), res.Input.Rows)
	}
	if auc := res.Output.Metrics["auc"]; !(auc > 0.6 && auc <= 1) {
		tb.Fatalf("logreg training AUC %v", auc)
	}
	return res
}

// tcpListener is a listener on 127.0.0.1 that counts the connections it accepts.
type tcpListener struct {
	net.Listener
	n atomic.Int64
}

func newTCPListener(tb testing.TB) *tcpListener {
	tb.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ln := &tcpListener{Listener: l}
	go ln.serve()
	tb.Cleanup(func() { l.Close() })
	return ln
}

func (l *tcpListener) serve() {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		l.n.Add(1)
		c.Close()
	}
}

// unixListener is a unix socket at a path outside anything given to the plugin, counting
// connections.
type unixListener struct {
	path string
	n    atomic.Int64
}

func newUnixListener(tb testing.TB) *unixListener {
	tb.Helper()
	d, err := os.MkdirTemp("", "insitu-planted-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(d, 0o755)
	u := &unixListener{path: filepath.Join(d, "sock")}
	l, err := net.Listen("unix", u.path)
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(u.path, 0o777)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u.n.Add(1)
			c.Close()
		}
	}()
	tb.Cleanup(func() { l.Close(); os.RemoveAll(d) })
	return u
}
