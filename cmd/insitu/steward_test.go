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
	"insitu/enclave/job"
	"insitu/enclave/job/passkey"
	"insitu/enclave/job/passkey/passkeytest"
	"insitu/enclave/keys"
	"insitu/plugins/sdk"
)

// TestReceiptVerifyPasskeyApproval: a job approved with a passkey (as the console does) is
// released, and insitu receipt verify checks that approval offline with the steward's public key
// like an ML-DSA one; another steward's key does not verify it.
func TestReceiptVerifyPasskeyApproval(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	run := func(args ...string) result { t.Helper(); return mustRun(t, tmp, nil, append(args, flags...)...) }
	for _, p := range [][2]string{{"bank", "bank-a"}, {"steward", "steward-1"}, {"steward", "steward-2"}} {
		mustRun(t, tmp, nil, "keys", "new", "--role", p[0], "--name", p[1], "--out", p[1]+".key")
		run("party", "add", p[1]+".pub.json")
	}
	writeFile(t, filepath.Join(tmp, "a1.yaml"), `format: insitu-job-manifest-v1
bank: bank-a
purpose: credit_approval
dataset: {name: sme-credit, version: "3"}
fields:
  - key: tax_arrears_history.arrears_amount_24m
  - key: shareholders_and_contributions.shareholder_count
mode: plaintext_public
model: {family: logistic_regression}
plugin: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
outputs:
  weights: {max_weights: 8, max_abs: 10}
expires: `+time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)+"\n")
	mustRun(t, tmp, nil, "job", "sign", "a1.yaml", "--key", "bank-a.key", "--out", "a1.signed")
	id := submit(t, tmp, flags, "a1.signed")
	writeFile(t, filepath.Join(tmp, "enclave.pub"), run("identity").stdout)

	ctx := context.Background()
	e, err := enclave.Open(ctx, filepath.Join(tmp, "dd"), keys.Source{File: filepath.Join(tmp, "dd.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	readKey := func(name string) *keys.Identity {
		data, err := os.ReadFile(filepath.Join(tmp, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		id, err := keys.ParsePartyFile(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	steward, bank := readKey("steward-1"), readKey("bank-a")
	// The console's enrolment: a request filed by the console, the statement signed by the steward.
	a := passkeytest.New("localhost", "http://localhost:8443")
	code, err := e.Jobs.RequestPasskey(ctx, a.Statement(steward.Public()))
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := e.Jobs.PasskeyRequest(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := steward.Sign(data, passkey.EnrolContext)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Jobs.EnrollPasskey(ctx, "steward-1", code, passkey.Enrolment{Statement: data, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	j, err := e.Jobs.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Jobs.ApprovePasskey(ctx, id, "steward-1", a.Assert(job.ApprovalMessage(j.Manifest))); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func(context.Context, string) (*job.Job, error){e.Jobs.Queue, e.Jobs.Start,
		func(ctx context.Context, id string) (*job.Job, error) { return e.Jobs.Succeed(ctx, id, nil) }} {
		if _, err := step(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := e.Jobs.Status(ctx, id)
	ev := &gate.Evaluation{TrainX: make([][]float64, 2), TestX: make([][]float64, 2), Features: []string{"f0", "f1"}}
	for i := range 200 {
		y := float64(i % 2)
		for k := range 2 {
			v := math.Sin(float64(i*(k+3)))*0.8 + 0.3*y*float64(k)
			if i < 150 {
				ev.TrainX[k] = append(ev.TrainX[k], v)
			} else {
				ev.TestX[k] = append(ev.TestX[k], v)
			}
		}
		if i < 150 {
			ev.TrainY = append(ev.TrainY, y)
		} else {
			ev.TestY = append(ev.TestY, y)
		}
		ev.Subjects = append(ev.Subjects, fmt.Sprintf("S%04d", i))
	}
	w, b := fitForTest(t, ev, 1)
	if _, err := e.Gate.Release(ctx, gate.Request{Job: j, Approvals: st, Bank: bank.Public(),
		Dataset: gate.DatasetRef{Name: "sme-credit", Version: "3"}, Cohort: gate.CohortSummary{Total: 200, Train: 150, Test: 50},
		Plugin: j.Plugin, Output: &sdk.Output{Weights: &sdk.Weights{Names: ev.Features, Values: w, Intercept: b}}, Eval: ev}); err != nil {
		t.Fatal(err)
	}
	_, receipt, err := e.Gate.Result(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tmp, "r.json"), string(receipt))
	out := mustRun(t, tmp, nil, "receipt", "verify", "r.json", "--enclave", "enclave.pub", "--steward", "steward-1.pub.json").stdout
	if !strings.Contains(out, "verified against the stewards' keys") || !strings.HasSuffix(out, "ok\n") {
		t.Errorf("receipt verify of a passkey approval:\n%s", out)
	}
	if r := insitu(t, tmp, nil, "receipt", "verify", "r.json", "--enclave", "enclave.pub", "--steward", "steward-2.pub.json"); r.code == 0 {
		t.Errorf("the passkey approval verified with another steward's key: %s", r)
	}
}
