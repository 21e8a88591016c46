package main

import (
	"bufio"
	"context"
	"errors"
	"math"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-plugin"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/plugintest"
)

// table is README.md's example: x1 separates the classes (means 4 and 1, pooled variance 2),
// x2 does not (means 2 and 2).
func table() *plugintest.Table {
	return &plugintest.Table{
		Subjects: []string{"p_a", "p_b", "p_c", "p_d"},
		Features: []string{"x1", "x2"},
		Columns:  [][]float64{{3, 5, 0, 2}, {1, 3, 1, 3}},
		Labels:   []float64{1, 1, 0, 0},
	}
}

// TestPlugin runs the plugin through plugintest, the same transport the enclave uses, and checks
// the weights worked out by hand: w1 = (4−1)/2 = 1.5, w2 = 0, b = log(2/2) − 1.5·(4+1)/2 = −3.75.
func TestPlugin(t *testing.T) {
	out, err := plugintest.Train(t, &NaiveBayes{}, table().Request(sdk.Hyperparameters{}))
	if err != nil {
		t.Fatal(err)
	}
	if out.Weights.Values[0] != 1.5 || out.Weights.Values[1] != 0 || out.Weights.Intercept != -3.75 {
		t.Fatalf("weights %+v, want [1.5 0] and intercept -3.75", out.Weights)
	}
	for i, x1 := range table().Columns[0] {
		want := 1 / (1 + math.Exp(-(1.5*x1 - 3.75)))
		if s := out.Scores[i]; s.Subject != table().Subjects[i] || math.Abs(s.Value-want) > 1e-15 {
			t.Fatalf("score %d = %+v, want %.6f", i, s, want)
		}
	}
	if out.Metrics["auc"] != 1 || out.Metrics["rows"] != 4 {
		t.Fatalf("metrics %v", out.Metrics)
	}
}

// TestPluginRefusesBadInput shows how a plugin's error reaches the enclave.
func TestPluginRefusesBadInput(t *testing.T) {
	tab := table()
	tab.Labels = []float64{1, 1, 1, 1}
	_, err := plugintest.Train(t, &NaiveBayes{}, tab.Request(sdk.MustHyperparameters(map[string]any{"min_variance": 0.5})))
	if !errors.Is(err, host.ErrPluginFailed) || !strings.Contains(err.Error(), "need both classes") {
		t.Fatalf("err = %v", err)
	}
	_, err = plugintest.Train(t, &NaiveBayes{}, table().Request(sdk.MustHyperparameters(map[string]any{"min_varaince": 0.5})))
	if !errors.Is(err, host.ErrPluginFailed) || !strings.Contains(err.Error(), "min_varaince") {
		t.Fatalf("misspelt hyperparameter: %v", err)
	}
}

// goTool returns the go command running the tests.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// TestBuildAndRun follows README.md: go build, then the binary answers go-plugin's handshake and
// trains, as the enclave will start it (without the sandbox).
func TestBuildAndRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	bin := filepath.Join(t.TempDir(), "mymodel")
	if out, err := exec.Command(goTool(t), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"TMPDIR=" + t.TempDir()}
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:     host.Handshake(),
		VersionedPlugins:    host.VersionedPlugins(host.Config{}),
		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCBrokerMultiplex: true,
		GRPCDialOptions:     host.DialOptions(),
		Cmd:                 cmd,
		SkipHostEnv:         true,
		Logger:              host.ClientLogger(),
	})
	defer c.Kill()
	rpc, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	model, err := host.Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := model.Describe(context.Background())
	if err != nil || desc.Family != "naive_bayes" {
		t.Fatalf("describe: %+v, %v", desc, err)
	}
	out, err := model.Train(context.Background(), table().Request(sdk.Hyperparameters{}))
	if err != nil || out.Weights.Values[0] != 1.5 {
		t.Fatalf("train: %+v, %v", out, err)
	}
}

// TestImports: the plugin needs nothing of insitu but the SDK and the modeling packages.
func TestImports(t *testing.T) {
	out, err := exec.Command(goTool(t), "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		dep := sc.Text()
		if !strings.HasPrefix(dep, "insitu/") || strings.HasPrefix(dep, "insitu/examples/bank-plugin") {
			continue
		}
		if !strings.HasPrefix(dep, "insitu/plugins/sdk") && !strings.HasPrefix(dep, "insitu/modeling/") {
			t.Errorf("the example imports %s", dep)
		}
	}
}
