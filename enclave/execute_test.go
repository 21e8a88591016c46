package enclave

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/connectors/synthetic"
	"insitu/enclave/audit"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/he"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/enclave/runner"
	"insitu/modeling/metrics"
)

func TestUploadLabels(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 600)
	sealed := l.sealedLabels(t)
	info, err := l.e.UploadLabels(ctx, l.bank.Name, "labels.csv", sealed)
	if err != nil {
		t.Fatal(err)
	}
	if info.Subjects != l.sum.Labelled || info.Positives != l.sum.Defaults || !strings.HasPrefix(info.Digest, "sha256:") {
		t.Fatalf("info = %+v, want %d subjects and %d positives", info, l.sum.Labelled, l.sum.Defaults)
	}
	again, err := l.e.UploadLabels(ctx, l.bank.Name, "labels.csv", sealed)
	if err != nil || again.Digest != info.Digest {
		t.Fatalf("second upload: %+v, %v", again, err)
	}
	if _, err := l.e.UploadLabels(ctx, "other-bank", "labels.csv", sealed); err == nil || !strings.Contains(err.Error(), "another party") {
		t.Fatalf("upload of the same file by another bank: %v", err)
	}
	list, err := l.e.ListLabels(ctx, l.bank.Name)
	if err != nil || len(list) != 1 || list[0].Digest != info.Digest {
		t.Fatalf("ListLabels = %+v, %v", list, err)
	}
	if list, _ := l.e.ListLabels(ctx, "other-bank"); len(list) != 0 {
		t.Fatalf("another bank lists %d label files", len(list))
	}
	labels, err := l.e.OpenJobLabels(ctx, l.bank.Name, info.Digest)
	if err != nil || labels.Len() != l.sum.Labelled {
		t.Fatalf("OpenJobLabels: %v, %v", labels, err)
	}
	if _, err := l.e.OpenJobLabels(ctx, "other-bank", info.Digest); !errors.Is(err, ErrLabelsNotFound) {
		t.Fatalf("another bank opens the labels: %v", err)
	}

	// A label file with a bad row is refused with the row, and nothing is stored.
	bad := "uscc,label\n" + strings.Repeat("", 0) + "91330100MA27XYZ12X,2\n"
	s2, _, err := sealUnchecked(l, []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.e.UploadLabels(ctx, l.bank.Name, "bad.csv", s2)
	var le *cohort.LabelError
	if !errors.As(err, &le) || le.Row != 1 {
		t.Fatalf("bad labels: want a *cohort.LabelError at data row 1, got %v", err)
	}
	if list, _ := l.e.ListLabels(ctx, ""); len(list) != 1 {
		t.Fatalf("after a refused upload %d label files are listed", len(list))
	}
	if _, err := l.e.UploadLabels(ctx, l.bank.Name, "junk", []byte("{}")); !errors.Is(err, cohort.ErrSealed) {
		t.Fatalf("junk: %v", err)
	}
}

// sealUnchecked seals data to the enclave without the bank-side validation, as a careless or
// hostile bank could.
func sealUnchecked(l *lab, data []byte) ([]byte, string, error) {
	pub := l.e.Identity.Public()
	ct, err := pub.Seal(data, cohort.LabelsInfo)
	if err != nil {
		return nil, "", err
	}
	out, err := json.Marshal(map[string]any{"format": "insitu-sealed-labels-v1", "to": pub.Fingerprint(), "subjects": 1,
		"sealed": base64.StdEncoding.EncodeToString(ct)})
	return out, "", err
}

func subjectSelector(l *lab, id string) consent.Selector {
	return consent.Selector{IDType: ident.Kind(l.dataset.SubjectKind), Identifier: id}
}

func TestPrepareCohort(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 1500)
	labels, err := cohort.ReadLabels(filepath.Join(l.synth, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	m := l.manifest(t, pluginstore.Digest{1}, "")
	at := synthetic.DefaultAsOf
	c, err := l.e.PrepareCohort(ctx, "job-1", m, labels, at)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, n := range c.Lost {
		lost += n
	}
	if c.Labelled != l.sum.Labelled || c.Matched != l.sum.Labelled || len(c.Subjects)+lost != c.Matched {
		t.Fatalf("labelled %d matched %d kept %d lost %d (synthetic: %d labelled)", c.Labelled, c.Matched, len(c.Subjects), lost, l.sum.Labelled)
	}
	if c.Train+c.Test != len(c.Subjects) || c.Test == 0 || c.Train < 3*c.Test {
		t.Fatalf("split %d + %d of %d", c.Train, c.Test, len(c.Subjects))
	}
	if r, d := c.XTrain.Dims(); r != c.Train || d != len(c.Features) || len(c.YTrain) != c.Train {
		t.Fatalf("XTrain %d×%d, %d features, %d labels", r, d, len(c.Features), len(c.YTrain))
	}
	// Deterministic: the same inputs give the same digest; another time of check a different one
	// only when the decision changes.
	c2, err := l.e.PrepareCohort(ctx, "job-1", m, labels, at)
	if err != nil || c2.AuthorizationDigest != c.AuthorizationDigest {
		t.Fatalf("second preparation: digest %s vs %s (%v)", c2.AuthorizationDigest, c.AuthorizationDigest, err)
	}

	// Revoking one kept subject's authorizations removes exactly that subject from the next cohort.
	gone := c.Subjects[0]
	n, err := l.e.Consent.RevokeSubject(ctx, "steward-a", subjectSelector(l, gone), "withdrawn by the enterprise")
	if err != nil || n == 0 {
		t.Fatalf("RevokeSubject: %d, %v", n, err)
	}
	c3, err := l.e.PrepareCohort(ctx, "job-2", m, labels, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(c3.Subjects) != len(c.Subjects)-1 {
		t.Fatalf("after one revocation the cohort has %d subjects, want %d", len(c3.Subjects), len(c.Subjects)-1)
	}
	for _, s := range c3.Subjects {
		if s == gone {
			t.Fatal("the revoked subject is still in the cohort")
		}
	}
	if c3.AuthorizationDigest == c.AuthorizationDigest {
		t.Fatal("the authorization digest did not change with the decision")
	}

	// The steward's minimum cohort size stops a job.
	if err := l.e.Jobs.SetSetting(ctx, "steward-a", job.SettingMinCohort, len(c3.Subjects)+1); err != nil {
		t.Fatal(err)
	}
	_, err = l.e.PrepareCohort(ctx, "job-3", m, labels, at)
	var pe *PrepareError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "minimum") {
		t.Fatalf("cohort below the minimum: %v", err)
	}
}

// TestRunJob runs a plaintext-public job of the reference plugin on the synthetic dataset through
// the whole lifecycle: upload, submit, 2-of-2 approval, run in the sandbox, succeeded.
func TestRunJob(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	ctx := context.Background()
	l := newLab(t, 1500)
	plugin, labels := l.upload(t, "logreg")
	m := l.manifest(t, plugin, labels)
	id := submitAndApprove(t, l, m)

	var steps []string
	opts := l.runOptions(nil)
	opts.Progress = func(_, what string) { steps = append(steps, what) }
	rep, err := l.e.RunJob(ctx, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Job.State != job.Released {
		t.Fatalf("job ended %s: %s (run: %v)", rep.Job.State, rep.Job.Reason, rep.Run)
	}
	if rep.Run == nil || rep.Run.Reason != runner.ReasonCompleted || rep.Run.Output.Weights == nil {
		t.Fatalf("run = %v", rep.Run)
	}
	if got, want := len(rep.Run.Output.Weights.Values), len(rep.Cohort.Features); got != want {
		t.Fatalf("%d weights for %d features", got, want)
	}
	if rep.Run.Input == nil || rep.Run.Input.Rows != rep.Cohort.Train {
		t.Fatalf("the plugin got %v rows, the training part has %d", rep.Run.Input, rep.Cohort.Train)
	}
	if len(steps) < 3 {
		t.Fatalf("progress: %q", steps)
	}
	checkReleased(t, l, rep)
}

// checkReleased checks that a job's outputs were released through the gate: the job is released,
// the receipt verifies offline with public keys and the stewards' approvals, and the sealed result
// opens with the bank's key only and matches the receipt.
func checkReleased(t *testing.T, l *lab, rep *RunReport) *gate.Bundle {
	t.Helper()
	ctx := context.Background()
	if rep.Refusal != nil {
		t.Fatalf("the gate refused the release: %v", rep.Refusal)
	}
	if rep.Receipt == nil || rep.Job.State != job.Released {
		t.Fatalf("job %s, receipt %v", rep.Job.State, rep.Receipt)
	}
	sealed, receipt, err := l.e.Gate.Result(ctx, rep.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stewards []keys.PublicIdentity
	for _, s := range l.stewards {
		stewards = append(stewards, s.Public())
	}
	r, err := gate.VerifyReceipt(receipt, l.e.Identity.Public(), gate.VerifyOptions{Stewards: stewards})
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if r.ManifestHash != rep.Job.ManifestHash || r.Cohort.Total != len(rep.Cohort.Subjects) || len(r.Approvals) != 2 ||
		r.AuthorizationDigest != rep.Cohort.AuthorizationDigest || r.Dataset.ManifestHash != rep.Cohort.Dataset.Hash() {
		t.Fatalf("receipt does not describe the job: %+v", r)
	}
	b, err := gate.OpenResult(sealed, l.bank)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(r); err != nil {
		t.Fatal(err)
	}
	if len(b.Scores) != len(rep.Cohort.Subjects) {
		t.Fatalf("bundle: %d scores for %d subjects", len(b.Scores), len(rep.Cohort.Subjects))
	}
	// The released AUC is the enclave's, on the held-out subjects, from the released scores.
	score := map[string]float64{}
	for _, s := range b.Scores {
		score[s.Subject] = s.Score
	}
	var test []float64
	for _, s := range rep.Cohort.Subjects[rep.Cohort.Train:] {
		test = append(test, score[s])
	}
	if auc, err := metrics.AUC(rep.Cohort.YTest, test); err != nil || b.Metrics["auc"] != auc || auc <= 0.5 {
		t.Fatalf("released auc %v, recomputed %v (%v)", b.Metrics["auc"], auc, err)
	}
	if _, err := gate.OpenResult(sealed, l.stewards[0]); err == nil {
		t.Fatal("a steward opened the bank's result")
	}
	// The audit log verifies, with the receipt's head as a known head.
	ar, err := l.e.VerifyAudit(ctx, []audit.Head{r.Audit})
	if err != nil || ar.Err() != nil {
		t.Fatalf("audit: %v %v", err, ar.Err())
	}
	return b
}

// submitAndApprove signs m as the lab's bank, submits it and has both stewards approve it.
func submitAndApprove(t *testing.T, l *lab, m *manifest.Manifest) string {
	t.Helper()
	ctx := context.Background()
	signed, err := manifest.Sign(m, l.bank)
	if err != nil {
		t.Fatal(err)
	}
	j, err := l.e.Jobs.Submit(ctx, signed.Marshal(), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.e.Jobs.SetSetting(ctx, "admin", job.SettingQuorum, 2); err != nil {
		t.Fatal(err)
	}
	for _, s := range l.stewards {
		sig, err := s.Sign(job.ApprovalMessage(m), job.ApprovalContext)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.e.Jobs.Approve(ctx, j.ID, s.Name, sig); err != nil {
			t.Fatal(err)
		}
	}
	st, err := l.e.Jobs.Status(ctx, j.ID)
	if err != nil || st.State != job.Approved || st.Approvals != 2 {
		t.Fatalf("after two approvals: %+v, %v", st, err)
	}
	return j.ID
}

// TestRunApprovedFailsWithReason has the worker pick up an approved job whose labels were never
// uploaded: the job fails, with a reason the bank can act on, and the worker goes on.
func TestRunApprovedFailsWithReason(t *testing.T) {
	l := newLab(t, 600)
	m := l.manifest(t, pluginstore.Digest{7}, "sha256:"+strings.Repeat("ab", 32))
	id := submitAndApprove(t, l, m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *RunReport, 1)
	go l.e.RunApproved(ctx, WorkerOptions{Poll: time.Hour, RunOptions: RunOptions{Now: func() time.Time { return synthetic.DefaultAsOf }},
		Done: func(got string, rep *RunReport, err error) {
			if got != id || err != nil {
				t.Errorf("worker ran %s: %v", got, err)
			}
			done <- rep
		}})
	l.e.Wake()
	select {
	case rep := <-done:
		if rep.Job.State != job.Failed || !strings.Contains(rep.Job.Reason, "were not uploaded by "+l.bank.Name) {
			t.Fatalf("job %s: %s", rep.Job.State, rep.Job.Reason)
		}
	case <-time.After(time.Minute):
		t.Fatal("the worker did not run the approved job")
	}
	j, err := l.e.Jobs.Get(context.Background(), id)
	if err != nil || j.State != job.Failed {
		t.Fatalf("stored job: %v, %v", j, err)
	}
}

// testInsecureLogN11 is a small CKKS set for tests of the HE path (far below 128-bit security): the
// real-only ring of degree 2^11 with the seven levels plugins/helr's degree-7 sigmoid needs.
var testInsecureLogN11 = he.Literal{LogN: 11, LogQ: []int{55, 40, 40, 40, 40, 40, 40, 40}, LogP: []int{61},
	LogDefaultScale: 40, RealOnly: true, InsecureForTesting: true}

// TestRunHEJob runs an HE logistic-regression job of plugins/helr: the plugin sees only ciphertexts,
// the gate decrypts the declared weights, verifies them against the enclave's optimum and
// releases them with scores the enclave computed.
func TestRunHEJob(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	ctx := context.Background()
	l := newLab(t, 1500)
	plugin, labels := l.upload(t, "helr")
	id := submitAndApprove(t, l, l.heManifest(t, plugin, labels))
	params, err := he.NewParameters(testInsecureLogN11)
	if err != nil {
		t.Fatal(err)
	}
	opts := l.runOptions(&params)
	var steps []string
	opts.Progress = func(_, what string) { steps = append(steps, what) }
	rep, err := l.e.RunJob(ctx, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The plugin's iterations reach the progress reports.
	if !slices.Contains(steps, "training: iteration 1/6") || !slices.Contains(steps, "training: iteration 6/6") {
		t.Errorf("progress: %q", steps)
	}
	if rep.Run == nil || rep.Run.HE == nil || rep.Run.HE.Refreshes != (len(rep.Cohort.Features)+1)*5 {
		t.Fatalf("run %v: want (features+1)·(iterations−1) refreshes", rep.Run)
	}
	b := checkReleased(t, l, rep)
	if b.Gate.Result != gate.VerdictVerified || len(b.Weights.Values) != len(rep.Cohort.Features) {
		t.Fatalf("bundle verdict %+v, weights %+v", b.Gate, b.Weights)
	}
}

// TestRevocationBankView revokes one subject's authorization between two runs of the same request:
// the next cohort is one smaller, and the bank's view — the receipt and the sealed result of a job
// that releases weights and metrics — holds the cohort's size and no identifier, so it does not
// say which subject left, nor why.
func TestRevocationBankView(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	ctx := context.Background()
	l := newLab(t, 1500)
	plugin, labels := l.upload(t, "logreg")
	opts := l.runOptions(nil)
	run := func(expires time.Duration) (*RunReport, []byte, []byte) {
		m := l.manifest(t, plugin, labels)
		m.Outputs.Scores = nil // weights and metrics only
		m.Expires = time.Now().Add(expires).UTC().Format(time.RFC3339)
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		rep, err := l.e.RunJob(ctx, submitAndApprove(t, l, m), opts)
		if err != nil || rep.Receipt == nil {
			t.Fatalf("run: %v, %+v", err, rep)
		}
		sealed, receipt, err := l.e.Gate.Result(ctx, rep.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := gate.OpenResult(sealed, l.bank)
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return rep, receipt, bundle
	}
	first, receipt1, bundle1 := run(48 * time.Hour)
	gone := first.Cohort.Subjects[3]
	if n, err := l.e.Consent.RevokeSubject(ctx, "steward-a", subjectSelector(l, gone), "withdrawn by the enterprise"); err != nil || n == 0 {
		t.Fatalf("RevokeSubject: %d, %v", n, err)
	}
	second, receipt2, bundle2 := run(49 * time.Hour)
	if got, want := second.Receipt.Cohort.Total, first.Receipt.Cohort.Total-1; got != want {
		t.Fatalf("cohort after one revocation: %d, want %d", got, want)
	}
	for _, view := range [][]byte{receipt1, receipt2, bundle1, bundle2} {
		for _, s := range first.Cohort.Subjects {
			if strings.Contains(string(view), s) {
				t.Fatalf("the bank's view names subject %s", s)
			}
		}
		for _, r := range []string{"revoked", "withdrawn", "missing_items", "other_purpose", "expired"} {
			if strings.Contains(string(view), r) {
				t.Fatalf("the bank's view says %q", r)
			}
		}
	}
}

// TestReviewCohort: the steward's review shows the cohort the job would get now and why subjects
// were left out; a job whose labels were never uploaded says so.
func TestReviewCohort(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 800)
	linfo, err := l.e.UploadLabels(ctx, l.bank.Name, "labels.csv", l.sealedLabels(t))
	if err != nil {
		t.Fatal(err)
	}
	id := submitAndApprove(t, l, l.manifest(t, pluginstore.Digest{3}, linfo.Digest))
	rv, err := l.e.Review(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	c := rv.Cohort
	if c == nil {
		t.Fatalf("no cohort in the review: %s", rv.CohortError)
	}
	lost := 0
	for _, n := range c.Lost {
		lost += n
	}
	if c.Labelled != l.sum.Labelled || c.Matched != l.sum.Labelled || c.Kept+lost != c.Matched || c.Kept == 0 {
		t.Fatalf("review cohort %+v (synthetic: %d labelled)", c, l.sum.Labelled)
	}
	m := l.manifest(t, pluginstore.Digest{4}, "sha256:"+strings.Repeat("cd", 32))
	id2 := submitAndApprove(t, l, m)
	rv2, err := l.e.Review(ctx, id2)
	if err != nil || rv2.Cohort != nil || !strings.Contains(rv2.CohortError, "labels") {
		t.Fatalf("review of a job without uploaded labels: %+v, %v", rv2, err)
	}
}

// TestResearcherConfinedToPublicData: a researcher's job on a platform dataset fails before
// anything runs, whatever way it reached the job board.
func TestResearcherConfinedToPublicData(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 600)
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(l.synth, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec.Dataset, spec.Class = "platform_copy", connectors.ClassPlatform
	pm, _, err := l.e.Ingest(ctx, "test", spec, mappings, dataset.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := keys.NewIdentity(keys.RoleResearcher, "lab-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.e.Jobs.AddParty(ctx, "test", res.Public()); err != nil {
		t.Fatal(err)
	}
	m := l.manifest(t, pluginstore.Digest{5}, "sha256:"+strings.Repeat("ef", 32))
	m.Bank, m.Dataset.Name, m.Dataset.Version = res.Name, pm.Name, fmt.Sprint(pm.Version)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	signed, err := manifest.Sign(m, res)
	if err != nil {
		t.Fatal(err)
	}
	j, err := l.e.Jobs.Submit(ctx, signed.Marshal(), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := l.stewards[0].Sign(job.ApprovalMessage(m), job.ApprovalContext)
	if _, err := l.e.Jobs.Approve(ctx, j.ID, l.stewards[0].Name, sig); err != nil {
		t.Fatal(err)
	}
	rep, err := l.e.RunJob(ctx, j.ID, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Job.State != job.Failed || !strings.Contains(rep.Job.Reason, "class platform: a researcher's jobs run on public and synthetic datasets only") || rep.Run != nil {
		t.Fatalf("researcher's job on a platform dataset: %s %q", rep.Job.State, rep.Job.Reason)
	}
}

// TestHESmugglerRefused runs a hostile HE plugin that returns, as its weights, the encrypted
// features and label of the first subject it was given: the gate decrypts them, finds them far from
// the cohort's optimum and refuses, with a reason that names no value, and nothing is released.
func TestHESmugglerRefused(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	ctx := context.Background()
	l := newLab(t, 1500)
	plugin, labels := l.upload(t, "smuggler")
	id := submitAndApprove(t, l, l.heManifest(t, plugin, labels))
	params, err := he.NewParameters(testInsecureLogN11)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := l.e.RunJob(ctx, id, l.runOptions(&params))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refusal == nil || rep.Receipt != nil {
		t.Fatalf("the smuggler's weights were not refused: receipt %v", rep.Receipt)
	}
	if rep.Refusal.Code != gate.CodeFarFromOptimum && rep.Refusal.Code != gate.CodeExcessLoss {
		t.Fatalf("refusal %s: %s", rep.Refusal.Code, rep.Refusal.Reason)
	}
	// The reason may state the public tolerance, no number computed from the data.
	if strings.ContainsAny(strings.ReplaceAll(rep.Refusal.Reason, "relative distance 0.6", ""), "0123456789") {
		t.Fatalf("the refusal reason carries a number: %q", rep.Refusal.Reason)
	}
	if j, _ := l.e.Jobs.Get(ctx, id); j.State != job.Succeeded {
		t.Fatalf("job is %s after the refusal, want succeeded and unreleased", j.State)
	}
	if _, _, err := l.e.Gate.Result(ctx, id); !errors.Is(err, gate.ErrNotReleased) {
		t.Fatalf("Result after the refusal: %v", err)
	}
}
