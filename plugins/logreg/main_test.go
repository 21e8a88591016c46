package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-plugin"
	"gonum.org/v1/gonum/mat"

	"insitu/modeling/logreg"
	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/plugintest"
)

// serveEnv makes the test binary run this plugin's main instead of the tests, so the
// out-of-process test needs no separate build.
const serveEnv = "INSITU_LOGREG_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSubprocess runs the plugin as its own process through go-plugin, as the enclave does
// (without the sandbox): handshake, multiplexed broker, a training RPC.
func TestSubprocess(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{serveEnv + "=1", "TMPDIR=" + t.TempDir()}
	var logs recorder
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     host.Handshake(),
		VersionedPlugins:    host.VersionedPlugins(host.Config{}),
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCBrokerMultiplex: true,
		GRPCDialOptions:     host.DialOptions(),
		Cmd:                 cmd,
		SkipHostEnv:         true,
		Logger:              host.ClientLogger(),
		Stderr:              host.NewLogSink(&logs),
	})
	defer c.Kill()
	rpc, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	client, err := host.Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	const n = 500
	tab := &plugintest.Table{Features: []string{"x"}, Columns: [][]float64{make([]float64, n)}}
	for i := range n {
		x := rng.NormFloat64()
		tab.Columns[0][i] = x
		tab.Subjects = append(tab.Subjects, fmt.Sprint("s", i))
		tab.Labels = append(tab.Labels, float64(boolInt(rng.Float64() < 1/(1+math.Exp(-2*x)))))
	}
	out, err := client.Train(context.Background(), tab.Request(sdk.Hyperparameters{}))
	if err != nil {
		t.Fatal(err)
	}
	direct, err := logreg.Fit(logreg.Problem{X: mat.NewDense(n, 1, tab.Columns[0]), Y: tab.Labels, Lambda: 1}, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(out.Weights.Values[0]-direct.Weights[0]) > 1e-9 || math.Abs(out.Weights.Intercept-direct.Intercept) > 1e-9 || len(out.Scores) != n {
		t.Fatalf("plugin %+v, direct %v %v", out.Weights, direct.Weights, direct.Intercept)
	}
	c.Kill() // waits for the stderr reader
	if got := logs.String(); !strings.Contains(got, "INFO fitting features=1 lambda=1 rows=500") {
		t.Fatalf("plugin log records:\n%s", got)
	}
}

// recorder is a slog.Handler keeping records as text lines.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	return nil
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestRunByHand: started without go-plugin's handshake the plugin says what it is and exits 1.
func TestRunByHand(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{serveEnv + "=1"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "This binary is a plugin") {
		t.Fatalf("exit %v, output %q", err, out)
	}
}

// TestImportGraph: the reference plugin is what a bank could build importing only the SDK and the
// modeling packages; nothing of the enclave, the connectors or the command line.
func TestImportGraph(t *testing.T) {
	checkImports(t, ".", "insitu/plugins/sdk", "insitu/modeling/", "insitu/plugins/logreg")
	checkImports(t, "../sdk", "insitu/plugins/sdk")
}

// checkImports runs go list on pkg and fails on any dependency inside the module that does not
// start with one of the allowed prefixes.
func checkImports(t *testing.T, pkg string, allowed ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	var inModule int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		dep := sc.Text()
		if dep != "insitu" && !strings.HasPrefix(dep, "insitu/") {
			continue
		}
		inModule++
		ok := false
		for _, a := range allowed {
			if dep == strings.TrimSuffix(a, "/") || strings.HasPrefix(dep, strings.TrimSuffix(a, "/")+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s imports %s", pkg, dep)
		}
	}
	if inModule == 0 {
		t.Fatalf("go list %s found no package of the module: %s", pkg, out)
	}
}
