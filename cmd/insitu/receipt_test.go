package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"insitu/enclave"
	"insitu/enclave/gate"
	"insitu/enclave/keys"
	"insitu/modeling/logreg"
	"insitu/plugins/sdk"

	"gonum.org/v1/gonum/mat"
)

// copyDB copies the state database (and its WAL files, if any) of a closed enclave.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		data, err := os.ReadFile(from + suffix)
		if os.IsNotExist(err) {
			os.Remove(to + suffix)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReceiptVerifyAndRollback(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	run := func(args ...string) result { t.Helper(); return mustRun(t, tmp, nil, append(args, flags...)...) }
	for _, p := range [][2]string{{"bank", "bank-a"}, {"steward", "steward-1"}, {"steward", "steward-2"}} {
		mustRun(t, tmp, nil, "keys", "new", "--role", p[0], "--name", p[1], "--out", p[1]+".key")
		run("party", "add", p[1]+".pub.json")
	}
	run("config", "set", "approvals.quorum", "2")
	writeFile(t, filepath.Join(tmp, "a1.yaml"), `format: insitu-job-manifest-v1
bank: bank-a
purpose: credit_approval
dataset: {name: sme-credit, version: "3"}
fields:
  - key: tax_arrears_history.arrears_amount_24m
  - key: tax_arrears_history.arrears_count_24m
  - key: tax_deferral.deferrals_24m
  - key: shareholders_and_contributions.shareholder_count
mode: plaintext_public
model: {family: logistic_regression}
plugin: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
outputs:
  weights: {max_weights: 8, max_abs: 10}
  scores: {}
  metrics: {names: [auc, ks]}
expires: `+time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)+"\n")
	mustRun(t, tmp, nil, "job", "sign", "a1.yaml", "--key", "bank-a.key", "--out", "a1.signed")
	id := submit(t, tmp, flags, "a1.signed")
	run("job", "approve", id, "--key", "steward-1.key")
	run("job", "approve", id, "--key", "steward-2.key")
	writeFile(t, filepath.Join(tmp, "enclave.pub"), run("identity").stdout)

	// Run the job to succeeded, keep a copy of the database, then release through the gate.
	ctx := context.Background()
	dd, dbPath := filepath.Join(tmp, "dd"), filepath.Join(tmp, "dd", "state.db")
	e, err := enclave.Open(ctx, dd, keys.Source{File: filepath.Join(tmp, "dd.key")})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func(context.Context, string) (any, error){
		func(ctx context.Context, id string) (any, error) { return e.Jobs.Queue(ctx, id) },
		func(ctx context.Context, id string) (any, error) { return e.Jobs.Start(ctx, id) },
		func(ctx context.Context, id string) (any, error) { return e.Jobs.Succeed(ctx, id, nil) },
	} {
		if _, err := step(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	copyDB(t, dbPath, filepath.Join(tmp, "before-release.db"))
	if e, err = enclave.Open(ctx, dd, keys.Source{File: filepath.Join(tmp, "dd.key")}); err != nil {
		t.Fatal(err)
	}
	j, _ := e.Jobs.Get(ctx, id)
	st, _ := e.Jobs.Status(ctx, id)
	bankFile, _ := os.ReadFile(filepath.Join(tmp, "bank-a.key"))
	bank, err := keys.ParsePartyFile(bankFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &gate.Evaluation{TrainX: make([][]float64, 4), TestX: make([][]float64, 4)}
	for k := range 4 {
		ev.Features = append(ev.Features, fmt.Sprintf("f%d", k))
	}
	for i := range 300 {
		y := float64(i % 2)
		for k := range 4 {
			v := math.Sin(float64(i*(k+3)))*0.8 + 0.3*y*float64(k%2)
			if i < 200 {
				ev.TrainX[k] = append(ev.TrainX[k], v)
			} else {
				ev.TestX[k] = append(ev.TestX[k], v)
			}
		}
		if i < 200 {
			ev.TrainY = append(ev.TrainY, y)
		} else {
			ev.TestY = append(ev.TestY, y)
		}
		ev.Subjects = append(ev.Subjects, fmt.Sprintf("S%04d", i))
	}
	// The plugin's weights: the optimum of the declared objective (no hyperparameter: λ = 1).
	w, b := fitForTest(t, ev, 1)
	_, err = e.Gate.Release(ctx, gate.Request{Job: j, Approvals: st, Bank: bank.Public(),
		Dataset: gate.DatasetRef{Name: j.Manifest.Dataset.Name, Version: j.Manifest.Dataset.Version},
		Cohort:  gate.CohortSummary{Total: 300, Train: 200, Test: 100}, Plugin: j.Plugin,
		Output: &sdk.Output{Weights: &sdk.Weights{Names: ev.Features, Values: w, Intercept: b}}, Eval: ev})
	if err != nil {
		t.Fatal(err)
	}
	sealed, receipt, err := e.Gate.Result(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	writeFile(t, filepath.Join(tmp, "r.json"), string(receipt))
	writeFile(t, filepath.Join(tmp, "r.sealed"), string(sealed))

	out := mustRun(t, tmp, nil, "receipt", "verify", "r.json", "--enclave", "enclave.pub",
		"--steward", "steward-1.pub.json", "--steward", "steward-2.pub.json", "--result", "r.sealed", "--key", "bank-a.key").stdout
	if !strings.Contains(out, "receipt of job "+id+" for bank-a") || !strings.Contains(out, "verified against the stewards' keys") ||
		!strings.Contains(out, "matches the receipt: 4 weights, 300 scores") || !strings.HasSuffix(out, "ok\n") {
		t.Errorf("receipt verify:\n%s", out)
	}
	// Failures: a tampered receipt, a missing steward, another bank's key.
	writeFile(t, filepath.Join(tmp, "bad.json"), strings.Replace(string(receipt), `"total":300`, `"total":299`, 1))
	mustRun(t, tmp, nil, "keys", "new", "--role", "bank", "--name", "bank-b", "--out", "bank-b.key")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bad.json", "--enclave", "enclave.pub"}, "signature does not verify"},
		{[]string{"r.json", "--enclave", "enclave.pub", "--steward", "steward-1.pub.json"}, "1 approvals verify"},
		{[]string{"r.json", "--enclave", "steward-1.pub.json"}, "not by the key given"},
		{[]string{"r.json", "--enclave", "enclave.pub", "--result", "r.sealed", "--key", "bank-b.key"}, "does not open"},
	} {
		r := insitu(t, tmp, nil, append([]string{"receipt", "verify"}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("receipt verify %v: want failure %q, got %s", c.args, c.want, r)
		}
	}

	// The usage report lists the release under the shareholders category (2); the dataset is not in
	// this data directory, so no provider is known.
	if r := run("report", "usage", "--category", "2", "--format", "csv"); !strings.Contains(r.stdout, id+",bank-a,credit_approval,sme-credit,3,shareholders_and_contributions,shareholders_and_contributions.shareholder_count,,300,") {
		t.Errorf("report usage: %s", r)
	}
	if r := run("report", "usage", "--provider", "tax-bureau", "--format", "md"); !strings.Contains(r.stdout, "0 jobs") {
		t.Errorf("report usage of another provider: %s", r)
	}
	if r := insitu(t, tmp, nil, append([]string{"report", "usage", "--format", "md"}, flags...)...); r.code != 2 {
		t.Errorf("report usage without a provider or category: %s", r)
	}

	// The audit log verifies with the receipt; a copy from before the release does not.
	if r := run("audit", "verify", "--receipt", "r.json"); !strings.Contains(r.stdout, "ok") {
		t.Errorf("audit verify: %s", r)
	}
	copyDB(t, filepath.Join(tmp, "before-release.db"), dbPath)
	if r := insitu(t, tmp, nil, append([]string{"audit", "verify", "--receipt", "r.json"}, flags...)...); r.code == 0 || !strings.Contains(r.stdout, "rollback") {
		t.Errorf("audit verify of a rolled-back database: %s", r)
	}
}

// fitForTest fits the L2 logistic regression the gate verifies against (λ in the sum-of-losses form).
func fitForTest(t *testing.T, ev *gate.Evaluation, lambda float64) ([]float64, float64) {
	t.Helper()
	n, d := len(ev.TrainY), len(ev.Features)
	data := make([]float64, 0, n*d)
	for i := range n {
		for k := range d {
			data = append(data, ev.TrainX[k][i])
		}
	}
	m, err := logreg.Fit(logreg.Problem{X: mat.NewDense(n, d, data), Y: ev.TrainY, Lambda: lambda}, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m.Weights, m.Intercept
}
