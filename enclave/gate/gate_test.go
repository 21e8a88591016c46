package gate

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"insitu/enclave/audit"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/modeling/metrics"
	"insitu/plugins/sdk"
)

func TestReleasePlaintext(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{})
	e := cohort(1, 800, 200)
	opt := optimum(t, e, 1) // no hyperparameter: λ = 1
	out := weightsOutput(e, opt.Weights, opt.Intercept)
	out.Metrics = map[string]float64{"auc": 0.999, "row_17": 0.42} // the plugin's own metrics, declared or not, never leave
	out.Scores = []sdk.Score{{Subject: "p1", Value: 0.5}}
	rec, err := f.gate.Release(ctx, f.request(j, st, e, out))
	if err != nil {
		t.Fatal(err)
	}

	// The receipt binds the request.
	if rec.Job != j.ID || rec.ManifestHash != j.ManifestHash || rec.Bank != "bank-a" || rec.Plugin != j.Plugin {
		t.Errorf("receipt names %s %s %s %s", rec.Job, rec.ManifestHash, rec.Bank, rec.Plugin)
	}
	if len(rec.Approvals) != 2 || rec.Quorum != 2 || rec.Cohort != (CohortSummary{1000, 800, 200}) {
		t.Errorf("approvals %d quorum %d cohort %+v", len(rec.Approvals), rec.Quorum, rec.Cohort)
	}
	step := 10.0 / 4096
	if rec.Gate.Result != VerdictVerified || rec.Gate.Step != step || rec.Gate.Lambda != 1 || rec.Gate.Parameters != 7 {
		t.Errorf("verdict %+v", rec.Gate)
	}
	theta := append(slices.Clone(opt.Weights), opt.Intercept)
	for k := range theta {
		theta[k] = roundTo(theta[k], step)
	}
	if want := BitsBound(7, PublicRadius(theta, 0.6, 1), step, 10); rec.Gate.BitsBound != want || want <= 0 {
		t.Errorf("bits bound %v, want %v", rec.Gate.BitsBound, want)
	}

	// Result gives the files; the receipt verifies offline with the stewards' keys.
	sealed, receipt, err := f.gate.Result(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	stewards := []keys.PublicIdentity{f.steward.Public(), f.steward2.Public()}
	vr, err := VerifyReceipt(receipt, f.encl.Public(), VerifyOptions{Stewards: stewards})
	if err != nil {
		t.Fatal(err)
	}
	if vr.Audit != rec.Audit || vr.Audit.Seq < 1 {
		t.Errorf("audit head %+v, want %+v", vr.Audit, rec.Audit)
	}

	// The bank opens the result; it matches the receipt.
	b, err := OpenResult(sealed, f.bank)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(vr); err != nil {
		t.Fatal(err)
	}
	for k, v := range b.Weights.Values {
		if v != theta[k] {
			t.Errorf("weight %d = %v, want the rounded optimum %v", k, v, theta[k])
		}
	}
	if b.Weights.Intercept != theta[6] || !slices.Equal(b.Weights.Names, e.Features) {
		t.Errorf("intercept %v names %v", b.Weights.Intercept, b.Weights.Names)
	}
	// Scores: one per cohort subject, recomputed from the released weights, never the plugin's.
	if len(b.Scores) != 1000 {
		t.Fatalf("%d scores", len(b.Scores))
	}
	i := 917 // a test row
	z := b.Weights.Intercept
	for k := range b.Weights.Values {
		z += b.Weights.Values[k] * e.TestX[k][i-800]
	}
	want := math.Round(1/(1+math.Exp(-z))*1e4) / 1e4
	idx := slices.IndexFunc(b.Scores, func(s Score) bool { return s.Subject == e.Subjects[i] })
	if idx < 0 || math.Abs(b.Scores[idx].Score-want) > 1e-12 {
		t.Errorf("score of %s = %+v, want %v", e.Subjects[i], b.Scores[idx], want)
	}
	if slices.ContainsFunc(b.Scores, func(s Score) bool { return s.Subject == "p1" }) {
		t.Error("the plugin's score was released")
	}
	// Metrics: the enclave's, on the held-out rows.
	test := make([]float64, 200)
	for k := range test {
		test[k] = b.Scores[slices.IndexFunc(b.Scores, func(s Score) bool { return s.Subject == e.Subjects[800+k] })].Score
	}
	auc, _ := metrics.AUC(e.TestY, test)
	ks, _ := metrics.KS(e.TestY, test)
	if b.Metrics["auc"] != auc || b.Metrics["ks"] != ks || b.Metrics["auc"] == 0.999 || len(b.Metrics) != 3 {
		t.Errorf("metrics %v, want auc %v ks %v", b.Metrics, auc, ks)
	}
	if auc < 0.75 {
		t.Errorf("held-out AUC %v: the synthetic model should rank well", auc)
	}

	// Another party's key does not open the result.
	if _, err := OpenResult(sealed, identity(t, keys.RoleBank, "bank-b")); !errors.Is(err, ErrResult) {
		t.Errorf("bank-b opened the result: %v", err)
	}

	// The job is released; the audit log verifies with the receipt's head, and the release record
	// says what the usage report needs.
	if jj, _ := f.board.Get(ctx, j.ID); jj.State != job.Released {
		t.Errorf("job is %s", jj.State)
	}
	rep, err := audit.Verify(ctx, f.db, f.encl.Public(), []audit.Head{vr.Audit})
	if err != nil || !rep.OK() {
		t.Fatalf("audit verify: %v %+v", err, rep)
	}
	recs, _ := f.log.Records(ctx, vr.Audit.Seq-1, 1)
	var ev ReleaseEvent
	if len(recs) != 1 || recs[0].Kind != audit.KindRelease || json.Unmarshal(recs[0].Payload, &ev) != nil {
		t.Fatalf("release record %+v", recs)
	}
	if ev.Bank != "bank-a" || ev.Purpose != "credit_approval" || ev.Cohort.Total != 1000 || ev.BitsBound != rec.Gate.BitsBound ||
		!slices.Equal(ev.Items, []string{"shareholders_and_contributions", "tax_arrears_history", "tax_deferral"}) ||
		len(ev.Fields) != 6 || ev.Outputs.Sealed != rec.Outputs.Sealed || ev.Dataset != "sme-credit" || ev.DatasetVersion != "3" {
		t.Errorf("release event %+v", ev)
	}
	if strings.Contains(string(recs[0].Payload), e.Subjects[0]) {
		t.Error("the audit record names a subject")
	}

	// A second release of the same job is refused by state.
	if _, err := f.gate.Release(ctx, f.request(j, st, e, out)); !errors.Is(err, ErrState) {
		t.Errorf("second release: %v", err)
	}
}

// refusalCases are outputs the declared shape refuses, on a plaintext job declaring 16 weights of at
// most 10, scores and the metrics auc, ks and log_loss.
func refusalCases(e *Evaluation, w []float64, b float64) []struct {
	name string
	out  *sdk.Output
	code Code
} {
	good := func() *sdk.Output { return weightsOutput(e, slices.Clone(w), b) }
	with := func(fn func(o *sdk.Output)) *sdk.Output { o := good(); fn(o); return o }
	return []struct {
		name string
		out  *sdk.Output
		code Code
	}{
		{"trees", with(func(o *sdk.Output) {
			o.Trees = &sdk.TreeEnsemble{Features: e.Features, Trees: []sdk.Tree{{Nodes: []sdk.TreeNode{{Feature: -1, Value: 1}}}}}
		}), CodeUndeclaredOutput},
		{"no weights", &sdk.Output{Scores: []sdk.Score{{Subject: "a", Value: 0.1}}}, CodeWeightsMissing},
		{"names reordered", with(func(o *sdk.Output) { o.Weights.Names[0], o.Weights.Names[1] = o.Weights.Names[1], o.Weights.Names[0] }), CodeWeightNames},
		{"name missing", with(func(o *sdk.Output) { o.Weights.Names, o.Weights.Values = o.Weights.Names[1:], o.Weights.Values[1:] }), CodeWeightNames},
		{"NaN", with(func(o *sdk.Output) { o.Weights.Values[2] = math.NaN() }), CodeNotFinite},
		{"infinite intercept", with(func(o *sdk.Output) { o.Weights.Intercept = math.Inf(-1) }), CodeNotFinite},
		{"over max_abs", with(func(o *sdk.Output) { o.Weights.Values[3] = 10.5 }), CodeWeightBound},
		{"ciphertexts in plaintext mode", with(func(o *sdk.Output) { o.Ciphertexts = []sdk.Ciphertext{{Name: "intercept", Data: []byte{1}}} }), CodeUndeclaredCiphertext},
	}
}

func TestShapeRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{})
	e := cohort(2, 400, 100)
	opt := optimum(t, e, 1)
	for _, c := range refusalCases(e, opt.Weights, opt.Intercept) {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.gate.Release(ctx, f.request(j, st, e, c.out))
			var re *RefusalError
			if !errors.As(err, &re) || re.Code != c.code || !errors.Is(err, ErrRefused) {
				t.Fatalf("got %v, want refusal %s", err, c.code)
			}
			if strings.ContainsAny(strings.ReplaceAll(re.Reason, "max_abs 10", ""), "0123456789") {
				t.Errorf("reason %q carries a number", re.Reason)
			}
		})
	}
	// Too many weights for a job declaring 4.
	j4, st4 := f.succeededJob(t, jobSpec{detail: "four", fields: 3, outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 4, MaxAbs: 10}}})
	_, err := f.gate.Release(ctx, f.request(j4, st4, e, weightsOutput(e, opt.Weights, opt.Intercept)))
	var re *RefusalError
	if !errors.As(err, &re) || re.Code != CodeTooManyWeights {
		t.Errorf("6 weights declared 4: %v", err)
	}
	// The plugin's scores on a job that declares none are dropped: no score leaves.
	jw, stw := f.succeededJob(t, jobSpec{detail: "weights only", outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 8, MaxAbs: 10}}})
	out := weightsOutput(e, opt.Weights, opt.Intercept)
	out.Scores = []sdk.Score{{Subject: "x", Value: 0.3}}
	if _, err := f.gate.Release(ctx, f.request(jw, stw, e, out)); err != nil {
		t.Errorf("release with the plugin's undeclared scores: %v", err)
	} else if sealed, _, err := f.gate.Result(ctx, jw.ID); err != nil {
		t.Error(err)
	} else if b, err := OpenResult(sealed, f.bank); err != nil || len(b.Scores) != 0 || b.Weights == nil {
		t.Errorf("weights-only release: %+v, %v", b, err)
	}

	// Every refusal left the job succeeded, released nothing and was audited with its code.
	if jj, _ := f.board.Get(ctx, j.ID); jj.State != job.Succeeded {
		t.Errorf("job is %s after refusals", jj.State)
	}
	if _, _, err := f.gate.Result(ctx, j.ID); !errors.Is(err, ErrNotReleased) {
		t.Errorf("Result after refusals: %v", err)
	}
	recs, _ := f.log.Records(ctx, 0, 0)
	var codes []string
	for _, r := range recs {
		if r.Kind == KindRefusal {
			var p struct{ Code string }
			json.Unmarshal(r.Payload, &p)
			codes = append(codes, p.Code)
		}
	}
	if len(codes) != len(refusalCases(e, opt.Weights, opt.Intercept))+1 || codes[0] != string(CodeUndeclaredOutput) || codes[5] != string(CodeNotFinite) {
		t.Errorf("audited refusals %v", codes)
	}
}

func TestFamilyNeedsWaiver(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{family: sdk.FamilyScorecard})
	e := cohort(3, 400, 100)
	w := []float64{0.5, -0.25, 1, 0, 2, -1}
	_, err := f.gate.Release(ctx, f.request(j, st, e, weightsOutput(e, w, 0.125)))
	var re *RefusalError
	if !errors.As(err, &re) || re.Code != CodeFamily {
		t.Fatalf("unverifiable family: %v", err)
	}
	// A bank cannot waive; a steward's signature over another reason does not verify.
	h := j.Manifest.Hash()
	reason := "scorecard reviewed by the model risk committee"
	bsig, _ := f.bank.Sign(WaiverMessage(h[:], reason), WaiverContext)
	if err := f.gate.Waive(ctx, j.ID, "bank-a", bsig, reason); !errors.Is(err, ErrWaiver) {
		t.Errorf("bank waiver: %v", err)
	}
	sig, _ := f.steward.Sign(WaiverMessage(h[:], reason), WaiverContext)
	if err := f.gate.Waive(ctx, j.ID, "steward-1", sig, reason+"!"); !errors.Is(err, ErrWaiver) {
		t.Errorf("waiver with another reason: %v", err)
	}
	if err := f.gate.Waive(ctx, j.ID, "steward-1", sig, reason); err != nil {
		t.Fatal(err)
	}
	rec, err := f.gate.Release(ctx, f.request(j, st, e, weightsOutput(e, w, 0.125)))
	if err != nil {
		t.Fatal(err)
	}
	step := 10.0 / 4096
	if rec.Gate.Result != VerdictWaived || rec.Waiver == nil || rec.Waiver.Steward != "steward-1" || rec.Gate.Radius != 0 {
		t.Errorf("verdict %+v waiver %+v", rec.Gate, rec.Waiver)
	}
	// Unverified weights may sit anywhere in the max_abs box: 7 · log2(8193) bits.
	if want := math.Ceil(7*math.Log2(2*4096+1)*100) / 100; rec.Gate.BitsBound != want {
		t.Errorf("bits bound %v, want %v", rec.Gate.BitsBound, want)
	}
	_, receipt, err := f.gate.Result(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyReceipt(receipt, f.encl.Public(), VerifyOptions{Stewards: []keys.PublicIdentity{f.steward.Public(), f.steward2.Public()}}); err != nil {
		t.Fatal(err)
	}
	_ = step
}

func TestHyperparameterLambda(t *testing.T) {
	m := &manifest.Manifest{}
	for _, c := range []struct {
		hp   map[string]any
		want float64
		code Code
	}{
		{nil, 1, ""},
		{map[string]any{"lambda": 2.5}, 2.5, ""},
		{map[string]any{"l2": 0.01, "iterations": 9.0}, 5, ""},
		{map[string]any{"l2": 0.01, "lambda": 1.0}, 0, CodeHyperparameters},
		{map[string]any{"l2": "big"}, 0, CodeHyperparameters},
		{map[string]any{"lambda": -1.0}, 0, CodeHyperparameters},
	} {
		m.Model.Hyperparameters = c.hp
		got, rerr := objectiveLambda(m, 500)
		if c.code != "" {
			if rerr == nil || rerr.Code != c.code {
				t.Errorf("%v: %v, want %s", c.hp, rerr, c.code)
			}
			continue
		}
		if rerr != nil || math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%v: λ = %v %v, want %v", c.hp, got, rerr, c.want)
		}
	}
}

func TestOrphanFilesAreNotResults(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{})
	e := cohort(4, 300, 100)
	opt := optimum(t, e, 1)
	// Files left by an attempt that died before its commit.
	dir := filepath.Join(f.dir, j.ID)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "receipt-0000000000000000.json"), []byte("{}"), 0o600)
	if _, _, err := f.gate.Result(ctx, j.ID); !errors.Is(err, ErrNotReleased) {
		t.Fatalf("Result with orphan files: %v", err)
	}
	if _, err := f.gate.Release(ctx, f.request(j, st, e, weightsOutput(e, opt.Weights, opt.Intercept))); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 || slices.ContainsFunc(ents, func(d os.DirEntry) bool { return d.Name() == "receipt-0000000000000000.json" }) {
		t.Errorf("job folder holds %v", ents)
	}
	// A result file changed after the release is reported, not returned.
	for _, d := range ents {
		if strings.HasSuffix(d.Name(), ".sealed") {
			os.WriteFile(filepath.Join(dir, d.Name()), []byte("other"), 0o600)
		}
	}
	if _, _, err := f.gate.Result(ctx, j.ID); !errors.Is(err, ErrResult) {
		t.Errorf("Result of a changed file: %v", err)
	}
}
