package enclave

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"insitu/connectors/synthetic"
	"insitu/enclave/audit"
	"insitu/enclave/pluginstore"
	"insitu/enclave/registry"
	"insitu/enclave/sandbox"
)

// TestReleaseRegistersModel runs a job to its release and checks the registry entry made in the
// release's transaction: the released weights, the transforms fitted on the cohort, the receipt's
// hashes and audit head; and that the registered model, applied to the cohort's features, gives
// the scores the gate released.
func TestReleaseRegistersModel(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	ctx := context.Background()
	l := newLab(t, 1500)
	bin, err := os.Open(filepath.Join(binDir, "logreg"))
	if err != nil {
		t.Fatal(err)
	}
	pinfo, _, err := l.e.UploadPlugin(ctx, bin, pluginstore.Meta{Name: "logreg", Uploader: l.bank.Name})
	bin.Close()
	if err != nil {
		t.Fatal(err)
	}
	linfo, err := l.e.UploadLabels(ctx, l.bank.Name, "labels.csv", l.sealedLabels(t))
	if err != nil {
		t.Fatal(err)
	}
	m := l.manifest(t, pinfo.Digest, linfo.Digest)
	id := submitAndApprove(t, l, m)
	rep, err := l.e.RunJob(ctx, id, RunOptions{
		Sandbox: sandbox.Spec{Mode: sandbox.AllowWeaker, UID: 65529, GID: 65529, CgroupName: "insitu-enclave-test", Limits: sandbox.Limits{WallClock: 2 * time.Minute}},
		TempDir: l.dir,
		Now:     func() time.Time { return synthetic.DefaultAsOf },
	})
	if err != nil {
		t.Fatal(err)
	}
	b := checkReleased(t, l, rep)
	mod, err := l.e.Models.Get(ctx, id, l.bank.Name)
	if err != nil {
		t.Fatal(err)
	}
	if mod.Bank != l.bank.Name || mod.Version != 1 || mod.Family != m.Model.Family || mod.Dataset != l.dataset.Name ||
		mod.DatasetVersion != l.dataset.Version || mod.Release.AuditSeq != rep.Receipt.Audit.Seq ||
		mod.Release.WeightsSHA256 != rep.Receipt.Outputs.Weights || len(mod.Inputs) != len(m.Fields) {
		t.Fatalf("registered %+v", mod.Document)
	}
	for j, w := range b.Weights.Values {
		if mod.Linear.Weights[j] != w {
			t.Fatalf("weight %d: registered %v, released %v", j, mod.Linear.Weights[j], w)
		}
	}
	released := map[string]float64{}
	for _, s := range b.Scores {
		released[s.Subject] = s.Score
	}
	n, _ := rep.Cohort.XTrain.Dims()
	for i := range min(n, 200) {
		p := mod.Probability(rep.Cohort.XTrain.RawRowView(i))
		if got := released[rep.Cohort.Subjects[i]]; math.Abs(p-got) > 1e-4 {
			t.Fatalf("subject %d: registered model %v, released score %v", i, p, got)
		}
	}
	recs, err := l.e.Audit.Records(ctx, rep.Receipt.Audit.Seq, 10)
	if err != nil || len(recs) == 0 || recs[0].Kind != registry.KindRegister {
		t.Fatalf("the record after the release: %v, %v", recs, err)
	}
	if ar, err := l.e.VerifyAudit(ctx, []audit.Head{rep.Receipt.Audit}); err != nil || ar.Err() != nil {
		t.Fatalf("audit: %v %v", err, ar.Err())
	}
}
