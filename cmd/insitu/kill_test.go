package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/cohort"
	"insitu/enclave/dataset"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// TestKillServeDuringRun kills insitu serve with SIGKILL while its job worker runs an HE job in the
// sandbox, then starts it again: the job is failed with the reason "enclave restarted", job show
// says so, the audit log verifies, and the daemon serves again.
func TestKillServeDuringRun(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	tmp, err := os.MkdirTemp("", "insitu-kill-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	os.Chmod(tmp, 0o711)
	flags := newEnclaveDir(t, tmp)
	id := approvedHEJob(t, tmp, 400)

	srv, logs := startServe(t, tmp, flags, "--allow-weaker-sandbox")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if st := jobState(t, tmp, id); st == job.Running {
			break
		} else if st != job.Approved && st != job.Queued {
			t.Fatalf("job went %s before the kill; log:\n%s", st, logs.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not start running; log:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the plugin is training
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Wait()

	srv2, logs2 := startServe(t, tmp, flags, "--no-worker")
	srv2.Process.Signal(syscall.SIGTERM)
	if err := srv2.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; log:\n%s", err, logs2.String())
	}
	// Wait has copied the whole log.
	if !strings.Contains(logs2.String(), "marked failed") || !strings.Contains(logs2.String(), id) {
		t.Errorf("the restarted daemon did not say it failed the running job; log:\n%s", logs2.String())
	}
	r := mustRun(t, tmp, nil, append([]string{"job", "show", id}, flags...)...)
	if !strings.Contains(r.stdout, "failed") || !strings.Contains(r.stdout, job.ReasonRestarted) {
		t.Fatalf("job show after the restart: %s", r)
	}
	if r := mustRun(t, tmp, nil, append([]string{"audit", "verify"}, flags...)...); !strings.Contains(r.stdout, "ok:") {
		t.Fatalf("audit verify after the kill: %s", r)
	}
}

// TestKillIngest kills insitu ingest with SIGKILL at several moments: afterwards every dataset
// version listed verifies, no temporary file is left in the datasets folder, and an ingest runs to
// the end.
func TestKillIngest(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	if _, err := synthetic.Generate(synthetic.Config{Enterprises: 20000, Seed: 3}, filepath.Join(tmp, "synth")); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ingest := append([]string{"ingest", "--spec", filepath.Join("synth", "dataset.yaml"), "--quiet"}, flags...)
	for _, after := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, 800 * time.Millisecond} {
		cmd := exec.Command(exe, ingest...)
		cmd.Dir = tmp
		cmd.Env = append(childEnviron(), childEnv+"=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(after)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		list := mustRun(t, tmp, nil, append([]string{"dataset", "list"}, flags...)...)
		for _, line := range strings.Split(list.stdout, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == synthetic.DatasetName {
				mustRun(t, tmp, nil, append([]string{"dataset", "verify", f[0] + "@v" + strings.TrimPrefix(f[1], "v")}, flags...)...)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(tmp, "dd", "datasets", "*", ".tmp*")); len(left) > 0 {
			t.Fatalf("killed after %s: temporary files left: %v", after, left)
		}
	}
	mustRun(t, tmp, nil, ingest...)
	if r := mustRun(t, tmp, nil, append([]string{"dataset", "list"}, flags...)...); !strings.Contains(r.stdout, synthetic.DatasetName) {
		t.Fatalf("after a full ingest: %s", r)
	}
}

// childEnviron is the test's environment without INSITU_* variables.
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSITU_") {
			env = append(env, kv)
		}
	}
	return env
}

// startServe starts insitu serve on a free port and waits until it listens.
func startServe(t *testing.T, dir string, flags []string, extra ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(exe, append(append([]string{"serve", "--listen", "127.0.0.1:0"}, extra...), flags...)...)
	srv.Dir = dir
	srv.Env = append(childEnviron(), childEnv+"=1")
	logs := &bytes.Buffer{}
	srv.Stderr = logs
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			go func() {
				for sc.Scan() {
				}
			}()
			return srv, logs
		}
	}
	t.Fatalf("serve did not start; log:\n%s", logs.String())
	return nil, nil
}

// jobState reads a job's state from the data directory under dir.
func jobState(t *testing.T, dir, id string) job.State {
	t.Helper()
	e, err := enclave.Open(context.Background(), filepath.Join(dir, "dd"), keys.Source{File: filepath.Join(dir, "dd.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	j, err := e.Jobs.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j.State
}

// approvedHEJob prepares the enclave under dir (data directory dd, key dd.key): synthetic data
// ingested, authorizations, a bank and a steward, plugins/helr uploaded, sealed labels, and an
// approved HE job of many iterations, so that it runs long enough to be killed. It returns the job.
func approvedHEJob(t *testing.T, dir string, iterations int) string {
	t.Helper()
	ctx := context.Background()
	bin := filepath.Join(dir, "helr")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "insitu/plugins/helr")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build plugins/helr: %v\n%s", err, out)
	}
	sum, err := synthetic.Generate(synthetic.Config{Enterprises: 1500, Seed: 5}, filepath.Join(dir, "synth"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := enclave.Open(ctx, filepath.Join(dir, "dd"), keys.Source{File: filepath.Join(dir, "dd.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(dir, "synth", "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dm, _, err := e.Ingest(ctx, "test", spec, mappings, dataset.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	af, err := os.Open(filepath.Join(dir, "synth", "authorizations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Consent.Import(ctx, "test", "authorizations.csv", af)
	af.Close()
	if err != nil {
		t.Fatal(err)
	}
	bank, _ := keys.NewIdentity(keys.RoleBank, sum.Bank)
	steward, _ := keys.NewIdentity(keys.RoleSteward, "steward-1")
	for _, p := range []*keys.Identity{bank, steward} {
		if _, err := e.Jobs.AddParty(ctx, "test", p.Public()); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	pinfo, _, err := e.UploadPlugin(ctx, f, pluginstore.Meta{Name: "helr", Uploader: bank.Name})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "synth", "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, _, err := cohort.SealLabels(e.Identity.Public(), data, "labels.csv")
	if err != nil {
		t.Fatal(err)
	}
	li, err := e.UploadLabels(ctx, bank.Name, "labels.csv", sealed)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := -4.0, 4.0
	m := &manifest.Manifest{Format: manifest.FormatV1, Bank: bank.Name, Purpose: "model_development",
		Dataset: manifest.Dataset{Name: dm.Name, Version: fmt.Sprint(dm.Version)}, Mode: sdk.ModeHE,
		Model:  manifest.Model{Family: sdk.FamilyLogisticRegression, Hyperparameters: map[string]any{"iterations": iterations}},
		Plugin: pinfo.Digest.String(), Labels: li.Digest,
		Outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 8, MaxAbs: 16}},
		Expires: time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}
	for _, key := range []string{"tax_arrears_history.arrears_count_24m", "electricity.defaults_last_2y", "water.late_payments_12m"} {
		m.Fields = append(m.Fields, manifest.Field{Key: key, Steps: []features.Step{
			{Impute: &features.Impute{Strategy: features.ImputeMedian}},
			{Scale: &features.Scale{Method: features.ScaleStandard}},
			{Clip: &features.Clip{Min: &lo, Max: &hi}}}})
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	signed, err := manifest.Sign(m, bank)
	if err != nil {
		t.Fatal(err)
	}
	j, err := e.Jobs.Submit(ctx, signed.Marshal(), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := steward.Sign(job.ApprovalMessage(m), job.ApprovalContext)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Jobs.Approve(ctx, j.ID, steward.Name, sig); err != nil {
		t.Fatal(err)
	}
	return j.ID
}
