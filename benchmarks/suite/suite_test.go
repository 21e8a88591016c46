package suite

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"insitu/enclave/he"
	"insitu/enclave/sandbox"
)

// TestMain lets the test binary serve as a case's child process, as the insitu binary does with
// "insitu bench case".
func TestMain(m *testing.M) {
	sandbox.MaybeRunTrampoline()
	if id := os.Getenv("INSITU_BENCH_TEST_CASE"); id != "" {
		err := RunCase(context.Background(), os.Getenv("INSITU_BENCH_TEST_CONFIG"), id, os.Getenv("INSITU_BENCH_TEST_OUT"), os.Stderr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testInsecureLogN11 is a small CKKS set far below 128-bit security, for tests only: 2048 real slots
// and the seven levels plugins/helr's degree-7 sigmoid needs.
var testInsecureLogN11 = he.Literal{LogN: 11, LogQ: []int{55, 45, 45, 45, 45, 45, 45, 45}, LogP: []int{61},
	LogDefaultScale: 45, RealOnly: true, InsecureForTesting: true}

func childCmd(configFile, caseID, outFile string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INSITU_BENCH_TEST_CASE="+caseID, "INSITU_BENCH_TEST_CONFIG="+configFile,
		"INSITU_BENCH_TEST_OUT="+outFile)
	return cmd
}

func tinyConfig(t *testing.T) Config {
	var log bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("progress:\n%s", log.String())
		}
	})
	return Config{
		Enterprises: 2000, HEParams: &testInsecureLogN11, HEIterations: 3, PSISizes: [][2]int{{300, 2000}},
		SandboxRuns: 1, WorkDir: t.TempDir(), Progress: &log, Child: childCmd, Command: "go test",
	}
}

func rowByID(t *testing.T, rep *Report, id string) *Row {
	t.Helper()
	for i := range rep.Rows {
		if rep.Rows[i].ID == id {
			return &rep.Rows[i]
		}
	}
	t.Fatalf("no row %s among %d rows", id, len(rep.Rows))
	return nil
}

// TestSuiteSynthetic runs every workload but the sandbox's and scoring's on tiny synthetic data, each case in a
// child process, and checks the figures, the report files and the comparison.
func TestSuiteSynthetic(t *testing.T) {
	cfg := tinyConfig(t)
	cfg.Suite = []string{"he-lr", "scorecard", "gbdt", "psi", "ingest"}
	cfg.HEPath = "in-process"
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Data) != 1 || rep.Data[0].Name != "synthetic" || rep.Data[0].Test == 0 || rep.Data[0].Train < 3*rep.Data[0].Test {
		t.Fatalf("data %+v", rep.Data)
	}
	for _, id := range []string{"he-lr/synthetic/he", "he-lr/synthetic/plain", "scorecard/synthetic/plain", "gbdt/synthetic/plain"} {
		r := rowByID(t, rep, id)
		if r.Status != StatusOK || r.AUC == nil || *r.AUC <= 0.55 || *r.AUC > 1 || r.KS == nil || *r.KS <= 0 {
			t.Fatalf("%s: %s %s, AUC %v", id, r.Status, r.Reason, r.AUC)
		}
		if r.WallS == nil || *r.WallS <= 0 || r.CPUS == nil || *r.CPUS <= 0 || r.PeakRSSMB == nil || *r.PeakRSSMB < 5 {
			t.Fatalf("%s: resources wall %v cpu %v peak %v", id, r.WallS, r.CPUS, r.PeakRSSMB)
		}
		if r.Isolation != "child process" || *r.Test != rep.Data[0].Test {
			t.Fatalf("%s: isolation %q, test %d", id, r.Isolation, *r.Test)
		}
	}
	heRow, plain := rowByID(t, rep, "he-lr/synthetic/he"), rowByID(t, rep, "he-lr/synthetic/plain")
	d := *heRow.Features
	if *heRow.Refreshes != (d+1)*(cfg.HEIterations-1) || *heRow.Decrypted != d+1 {
		t.Fatalf("HE: %d refreshes and %d decrypted values for %d features and %d iterations", *heRow.Refreshes, *heRow.Decrypted, d, cfg.HEIterations)
	}
	if diff := *plain.AUC - *heRow.AUC; diff > 0.08 {
		t.Fatalf("HE AUC %.4f is %.4f below the plaintext optimum's", *heRow.AUC, diff)
	}
	if !strings.Contains(heRow.Path, "in-process") || heRow.Notes["refreshes"] == "" {
		t.Fatalf("HE path %q, notes %v", heRow.Path, heRow.Notes)
	}
	p := rowByID(t, rep, "psi/bank=300_platform=2000/ecdh")
	if p.Status != StatusOK || p.Extra["matched"] != 150 || p.Extra["floor_s"] <= 0 || p.Notes["auc"] == "" {
		t.Fatalf("psi row %+v", p)
	}
	in := rowByID(t, rep, "ingest/synthetic/dataset")
	if in.Status != StatusOK || in.Extra["subjects"] != float64(cfg.Enterprises) || in.Extra["mb_per_s"] <= 0 {
		t.Fatalf("ingest row %+v", in)
	}
	// Aggregate mode: the ε spent is positive and within the job's budget; the scorecard beats chance
	// (the GBDT's noisy gradient sums over 800 training rows may leave its trees without a split).
	for _, id := range []string{"scorecard/synthetic/aggregate-eps8", "gbdt/synthetic/aggregate-eps8"} {
		r := rowByID(t, rep, id)
		if r.Status != StatusOK || r.AUC == nil || r.Epsilon == nil || r.Delta == nil {
			t.Fatalf("%s: %s %q", id, r.Status, r.Reason)
		}
		if *r.Epsilon <= 0 || *r.Epsilon > 8+1e-9 || r.Extra["queries"] < 1 || *r.Delta != 1e-6 {
			t.Fatalf("%s: ε spent %v at δ %v after %v queries", id, *r.Epsilon, *r.Delta, r.Extra["queries"])
		}
		if *r.AUC < 0 || *r.AUC > 1 || (strings.HasPrefix(id, "scorecard") && *r.AUC < 0.6) {
			t.Fatalf("%s: AUC %.4f", id, *r.AUC)
		}
	}
	// The Python baselines ran, or say why not.
	for _, id := range []string{"he-lr/synthetic/lr-python", "gbdt/synthetic/xgb-python"} {
		r := rowByID(t, rep, id)
		switch {
		case rep.Python.Available && r.Status == StatusOK && r.AUC != nil:
		case !rep.Python.Available && r.Status == StatusSkipped && r.Reason != "":
		default:
			t.Fatalf("%s with python %+v: %s %s", id, rep.Python, r.Status, r.Reason)
		}
	}

	// Every empty cell of the Markdown table carries a numbered reason that is listed.
	out := filepath.Join(cfg.WorkDir, "out")
	jsonPath, mdPath, err := rep.Write(out)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	checkMarkdown(t, string(md))
	back, err := ReadReport(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	// (A test binary records no dependency versions; the insitu binary does.)
	if len(back.Rows) != len(rep.Rows) || back.Machine.Cores != runtime.NumCPU() || back.Build.Go != runtime.Version() ||
		back.Machine.CPUModel == "" || back.Seeds["synthetic"] != 1 {
		t.Fatalf("report read back: %d rows, machine %+v, build %+v", len(back.Rows), back.Machine, back.Build)
	}
	var cmp bytes.Buffer
	Compare(&cmp, back, back)
	if !strings.Contains(cmp.String(), "| he-lr/synthetic/he | 1.00× | 1.00× | 1.00× |") {
		t.Fatalf("compare of a report with itself:\n%s", cmp.String())
	}
}

var emptyCell = regexp.MustCompile(`\| – ⁽(\d+)⁾ `)

func checkMarkdown(t *testing.T, md string) {
	t.Helper()
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| workload") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i, c := range cells[:14] {
			if strings.TrimSpace(c) == "" || strings.TrimSpace(c) == "–" && i != 3 {
				t.Fatalf("an empty cell without a reason in %q", line)
			}
		}
		for _, m := range emptyCell.FindAllStringSubmatch(line, -1) {
			if !strings.Contains(md, "\n"+m[1]+". ") {
				t.Fatalf("footnote %s is not listed", m[1])
			}
		}
	}
}

// TestHEJobPath runs the HE workload through the enclave's job path: ingest, sealed labels, signed
// manifest, approval, the plugin in the strict sandbox, the output gate and the bank's result; and
// the scoring workload, which serves the model such a job released.
func TestHEJobPath(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("the job path starts a sandboxed plugin: it needs root on Linux")
	}
	if testing.Short() {
		t.Skip("builds the static plugins with the go tool")
	}
	cfg := tinyConfig(t)
	// The gate verifies the weights against the optimum: the plugin's default ten iterations get there.
	// With a few hundred rows the optimum needs a larger penalty to be reached in ten iterations.
	cfg.Suite, cfg.HEPath, cfg.Python, cfg.HEIterations, cfg.HEL2 = []string{"he-lr", "scoring"}, "job", "-", 0, 0.01
	cfg.Quick = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rowByID(t, rep, "he-lr/synthetic/he")
	if r.Status != StatusOK || !strings.HasPrefix(r.Path, "enclave job (strict sandbox, output gate verified") {
		t.Fatalf("HE job: %s %s, path %q", r.Status, r.Reason, r.Path)
	}
	if r.AUC == nil || *r.AUC < 0.55 || r.Extra["plugin_cpu_s"] <= 0 || r.Extra["exact_same_rows_auc"] < 0.55 {
		t.Fatalf("HE job figures: AUC %v, extra %v", r.AUC, r.Extra)
	}
	d := *r.Features
	if *r.Refreshes != (d+1)*(10-1) || *r.Decrypted != d+1 || *r.Train >= rep.Data[0].Train {
		t.Fatalf("HE job: %d refreshes, %d decrypted, %d training rows for %d features", *r.Refreshes, *r.Decrypted, *r.Train, d)
	}
	if p := rowByID(t, rep, "he-lr/synthetic/lr-python"); p.Status != StatusSkipped || !strings.Contains(p.Reason, "--python -") {
		t.Fatalf("python row with --python -: %s %q", p.Status, p.Reason)
	}
	s := rowByID(t, rep, "scoring/synthetic/online")
	if s.Status != StatusOK || s.Extra["single_p50_ms"] <= 0 || s.Extra["single_p99_ms"] < s.Extra["single_p50_ms"] ||
		s.Extra["batch100_scores_per_s"] <= 0 || s.Extra["model_features"] != float64(d) {
		t.Fatalf("scoring row: %s %s, extra %v", s.Status, s.Reason, s.Extra)
	}
}

// writeTinyTaiwan writes n rows shaped like the Taiwan data set (its file name, id and label
// columns) under dir, in the layout of ../shared/data; the outcome depends on the features.
func writeTinyTaiwan(t *testing.T, dir string, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 5))
	var b strings.Builder
	b.WriteString("ID,LIMIT_BAL,AGE,PAY_0,default.payment.next.month\n")
	for i := 1; i <= n; i++ {
		limit := math.Round(math.Exp(11.5 + 0.7*r.NormFloat64()))
		age := 21 + r.IntN(45)
		pay := min(8, max(-2, int(math.Round(r.NormFloat64()*1.3))))
		z := -1.3 + 0.8*float64(pay) - 0.6*(math.Log(limit)-11.5)/0.7 - 0.01*float64(age-40)
		y := 0
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y = 1
		}
		fmt.Fprintf(&b, "%d,%g,%d,%d,%d\n", i, limit, age, pay, y)
	}
	path := filepath.Join(dir, "default_credit", "UCI_Credit_Card.csv")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHEJobPathPublic runs the HE workload on a public data set through the enclave's job path: a
// researcher's job on the data ingested as a dataset of class public, whose manifest names custom
// fields and the outcome column; the plugin in the strict sandbox, the output gate, the
// researcher's sealed result, evaluated on the test rows the enclave never saw labelled.
func TestHEJobPathPublic(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("the job path starts a sandboxed plugin: it needs root on Linux")
	}
	if testing.Short() {
		t.Skip("builds the static plugins with the go tool")
	}
	cfg := tinyConfig(t)
	cfg.Data = t.TempDir()
	writeTinyTaiwan(t, cfg.Data, 1500)
	cfg.Suite, cfg.HEPath, cfg.Python, cfg.HEIterations, cfg.HEL2 = []string{"he-lr"}, "job", "-", 0, 0.01
	cfg.Quick = true
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rowByID(t, rep, "he-lr/taiwan/he")
	if r.Status != StatusOK || !strings.HasPrefix(r.Path, "enclave job (strict sandbox, output gate verified") {
		t.Fatalf("HE job: %s %s, path %q", r.Status, r.Reason, r.Path)
	}
	if !strings.Contains(r.Notes["train"], "researcher's job on the public dataset") {
		t.Fatalf("train note %q", r.Notes["train"])
	}
	// The enclave trained on the labelled (training) rows it kept: 4 in 5 of them.
	if r.AUC == nil || *r.AUC < 0.6 || *r.Test != rep.Data[0].Test || *r.Train >= rep.Data[0].Train || *r.Train < rep.Data[0].Train/2 {
		t.Fatalf("HE job figures: AUC %v, train %v test %v (data %+v)", r.AUC, *r.Train, *r.Test, rep.Data[0])
	}
	if d := *r.Features; d != 3 || *r.Refreshes != (d+1)*(10-1) || *r.Decrypted != d+1 {
		t.Fatalf("HE job: %d refreshes, %d decrypted for %d features", *r.Refreshes, *r.Decrypted, d)
	}
}
