package publicgmsc_test

import (
	"context"
	"math"
	"os"
	"testing"

	"insitu/examples/internal/lab"
)

const data = "../../../shared/data/give_me_some_credit/cs-training.csv.gz"

// TestGiveMeSomeCreditWalkthrough runs README.md's steps and the reference fit of plaintext.py.
func TestGiveMeSomeCreditWalkthrough(t *testing.T) {
	if _, err := os.Stat(data); err != nil {
		t.Skipf("public data absent (%v); see ../shared/data/README.md", err)
	}
	ctx := context.Background()
	store, err := lab.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, rep, err := lab.Ingest(ctx, store, "dataset.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Class != "public" || m.Subjects != 150000 || rep.RowsRejected != 0 {
		t.Fatalf("dataset %s class %s, %d subjects, %d rejected", m.Name, m.Class, m.Subjects, rep.RowsRejected)
	}
	ref, err := lab.FitReference(ctx, store, m, "custom.serious_dlq_2yrs")
	if err != nil {
		t.Fatal(err)
	}
	if ref.Subjects != 150000 || ref.Positives != 10026 || ref.Test != 30000 || ref.Features != 10 {
		t.Fatalf("%+v", ref)
	}
	// plaintext.py imputes medians of the whole file; here they are the training rows' medians, as a
	// model must not look at its test set. The figures agree to within a few thousandths.
	t.Logf("test AUC %.4f KS %.4f (scikit-learn: 0.6950, 0.3119)", ref.Eval.AUC, ref.Eval.KS)
	if math.Abs(ref.Eval.AUC-0.6950) > 0.003 || math.Abs(ref.Eval.KS-0.3119) > 0.006 {
		t.Fatalf("AUC %.4f KS %.4f, want 0.6950±0.003 and 0.3119±0.006", ref.Eval.AUC, ref.Eval.KS)
	}
}
