package demo

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"insitu/enclave/cohort"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/keys"
	"insitu/enclave/sandbox"
)

// helrBin and scorecardBin are plugins/helr and plugins/scorecard, built statically once per test
// binary when the tests run as root on Linux.
var helrBin, scorecardBin string

func TestMain(m *testing.M) {
	sandbox.MaybeRunTrampoline()
	code := func() int {
		if runtime.GOOS == "linux" && os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "insitu-demo-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			helrBin, scorecardBin = filepath.Join(dir, "helr"), filepath.Join(dir, "scorecard")
			cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", dir+"/", "insitu/plugins/helr", "insitu/plugins/scorecard")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "go build plugins/helr and plugins/scorecard: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// needRoot skips a test that runs the sandboxed plugin unless it runs as root on Linux, as CI does.
func needRoot(t *testing.T) {
	if helrBin == "" {
		t.Skip("the demo runs a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "work") // does not exist yet: Run creates it
	var out bytes.Buffer
	needRoot(t)
	res, err := Run(ctx, Config{Enterprises: 6000, Seed: 1, Dir: dir, PluginBinary: helrBin, ScorecardPlugin: scorecardBin,
		ScorecardEpsilon: 8}, &out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	printed := out.String()

	if res.Dir != dir {
		t.Errorf("Dir = %s, want %s", res.Dir, dir)
	}
	m := res.Dataset
	if m == nil || m.Subjects != 6000 || len(m.Sources) != 20 || len(m.Parts) != 20 || m.Class != "synthetic" {
		t.Fatalf("dataset: %+v", m)
	}
	if res.Report.RowsRejected != 0 || res.Report.RowsRead != res.Report.RowsAccepted || res.Report.RowsRead < 6000 {
		t.Errorf("report: %d read, %d accepted, %d rejected", res.Report.RowsRead, res.Report.RowsAccepted, res.Report.RowsRejected)
	}
	for _, s := range res.Report.Sources {
		if s.InvalidIdentifiers != 0 || s.DuplicateSubjects != 0 {
			t.Errorf("source %s: %d invalid ids, %d duplicates", s.Source, s.InvalidIdentifiers, s.DuplicateSubjects)
		}
	}

	// The kept data directory verifies again, with the same number of checks, all passing.
	dd, err := datadir.Open(filepath.Join(dir, "enclave"), keys.Source{File: filepath.Join(dir, "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	store, err := dataset.Open(dd)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := store.Verify(ctx, m.Name, m.Version)
	if err != nil {
		t.Fatal(err)
	}
	if res.ChecksOK == 0 || len(vr.Checks) != res.ChecksOK || len(vr.Failed()) != 0 {
		t.Errorf("checks: demo %d ok, verify again %d with %d failed", res.ChecksOK, len(vr.Checks), len(vr.Failed()))
	}

	// Every labelled enterprise is in the dataset; the cohort keeps those with a covering
	// authorization, and every other one is counted under one reason.
	labels, err := cohort.ReadLabels(filepath.Join(dir, "synth", "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, n := range res.Lost {
		lost += n
	}
	// The bank sealed the labels of the borrowers the PSI found: those with some authorization for
	// it and the purpose; the cohort keeps those whose authorizations cover every requested item.
	if res.Borrowers != labels.Len() || res.Aligned >= res.Borrowers || res.Aligned < res.Borrowers/3 || res.Labelled != res.Aligned {
		t.Errorf("%d borrowers, %d aligned by PSI, %d labels sealed", res.Borrowers, res.Aligned, res.Labelled)
	}
	if res.Unmatched != 0 || res.Cohort+lost != res.Labelled || res.Cohort < res.Labelled/2 {
		t.Errorf("cohort %d + lost %d (%v), unmatched %d; %d labels sealed", res.Cohort, lost, res.Lost, res.Unmatched, res.Labelled)
	}
	if !res.AuditOK {
		t.Error("audit log not verified")
	}
	if res.Train+res.Test != res.Cohort || res.Test < res.Cohort/10 || res.Test > res.Cohort*3/10 {
		t.Errorf("split: %d train + %d test of %d", res.Train, res.Test, res.Cohort)
	}
	if res.Features < 20 || res.Iterations != 10 || res.Refreshes != (res.Features+1)*9 {
		t.Errorf("%d features, %d iterations, %d refreshes", res.Features, res.Iterations, res.Refreshes)
	}
	if !res.ReceiptOK || res.Bundle == nil || res.Bundle.Gate.Result != gate.VerdictVerified {
		t.Fatalf("receipt verified %v, bundle %+v", res.ReceiptOK, res.Bundle)
	}
	// The demo ends with the released model in use: three applicants scored, one claim verified.
	if res.Applicants != 3 || (res.VerifyAnswer != "match" && res.VerifyAnswer != "no_match" && res.VerifyAnswer != "unknown") {
		t.Errorf("%d applicants scored, verification answer %q", res.Applicants, res.VerifyAnswer)
	}
	// The encrypted training matches the plaintext fit of the same objective on the same data.
	he, plain := res.Bundle.Metrics["auc"], res.Plain.AUC
	if plain < 0.65 || math.Abs(he-plain) > 0.02 {
		t.Errorf("held-out AUC: HE %.4f, plaintext %.4f", he, plain)
	}
	if len(res.Bundle.Scores) != res.Cohort {
		t.Errorf("%d scores for a cohort of %d", len(res.Bundle.Scores), res.Cohort)
	}
	// Aggregate mode: the stewards saw the job's privacy impact before approving; the released
	// scorecard has a points table and held-out figures, and the job spent at most its ε.
	sc := res.Scorecard
	if sc == nil || sc.Bundle == nil || sc.Bundle.Scorecard == nil || len(sc.Bundle.Scorecard.Characteristics) == 0 {
		t.Fatalf("scorecard step: %+v", sc)
	}
	if sc.Review.Requested != 8 || !sc.Review.Fits || sc.Review.Spent != 0 || sc.Review.Total != 16 {
		t.Errorf("the stewards' review of the scorecard job: %+v", sc.Review)
	}
	if !(sc.EpsilonSpent > 0) || sc.EpsilonSpent > 8*(1+1e-9) || math.Abs(sc.EpsilonLeft-(16-sc.EpsilonSpent)) > 1e-6 {
		t.Errorf("ε spent %v, left %v", sc.EpsilonSpent, sc.EpsilonLeft)
	}
	// A cohort of a few hundred is noisy even at ε = 8 (at ε = 2 the noise can leave every
	// coefficient at 0): the scorecard ranks better than chance.
	if auc := sc.Bundle.Metrics["auc"]; !(auc > 0.5) || len(sc.Bundle.Scores) != sc.Cohort || sc.Cohort < res.Cohort {
		t.Errorf("scorecard: held-out AUC %v, %d scores for a cohort of %d (the HE job's: %d)", auc, len(sc.Bundle.Scores), sc.Cohort, res.Cohort)
	}
	for _, h := range []string{
		"[1/12] synthetic platform data",
		"[2/12] enclave data directory",
		"[3/12] ingest into an encrypted dataset",
		"[4/12] enterprises' authorizations",
		"[5/12] verify the dataset and the audit log",
		"[6/12] the bank aligns its borrowers (PSI), uploads its plugin and sealed labels",
		"PSI (ECDH over ristretto255)",
		"[7/12] the stewards review the request and approve it",
		"[8/12] the enclave runs the plugin in the sandbox on CKKS-encrypted data",
		"[9/12] the output gate verifies and releases",
		"[10/12] verify the receipt offline and the audit log",
		"[11/12] the bank scores three new applicants online and asks one verification query",
		"[12/12] the bank asks for a scorecard in aggregate mode",
		"this job asks for ε 8, which fits",
		"points table (PDO 20",
		fmt.Sprintf("scorecard from noisy aggregates  AUC %.4f", sc.Bundle.Metrics["auc"]),
		fmt.Sprintf("the job spent ε %.3f of its 8", sc.EpsilonSpent),
		"iteration 10/10",
		fmt.Sprintf("%d checks passed", res.ChecksOK),
		fmt.Sprintf("AUC %.4f", he),
		fmt.Sprintf("%d with a covering authorization", res.Cohort),
		"6000 enterprises (seed 1)",
	} {
		if !strings.Contains(printed, h) {
			t.Errorf("output lacks %q:\n%s", h, printed)
		}
	}
	if strings.Index(printed, "[4/12]") < strings.Index(printed, "[3/12]") || strings.Index(printed, "[12/12]") < strings.Index(printed, "[11/12]") {
		t.Error("steps printed out of order")
	}
}

func TestRunRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Enterprises: 100, Dir: dir}, &out)
	if err == nil || res != nil {
		t.Fatalf("Run in a non-empty folder: result %v, err %v", res, err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("err = %v, want one naming the folder and saying it is not empty", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("Run wrote into the refused folder: %d entries", len(ents))
	}
	if b, _ := os.ReadFile(keep); string(b) != "mine" {
		t.Error("Run changed a file of the refused folder")
	}
	if out.Len() != 0 {
		t.Errorf("Run printed before refusing:\n%s", out.String())
	}
}
