package publictaiwan_test

import (
	"context"
	"math"
	"os"
	"testing"

	"insitu/examples/internal/lab"
)

const data = "../../../shared/data/default_credit/UCI_Credit_Card.csv"

// TestTaiwanWalkthrough runs README.md's steps and the reference fit of plaintext.py.
func TestTaiwanWalkthrough(t *testing.T) {
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
	if m.Class != "public" || m.Subjects != 30000 || rep.RowsRejected != 0 || len(m.Columns) != 25 {
		t.Fatalf("dataset %s class %s, %d subjects, %d columns, %d rejected", m.Name, m.Class, m.Subjects, len(m.Columns), rep.RowsRejected)
	}
	ref, err := lab.FitReference(ctx, store, m, "custom.default_next_month")
	if err != nil {
		t.Fatal(err)
	}
	if ref.Subjects != 30000 || ref.Positives != 6636 || ref.Test != 6000 || ref.Features != 23 {
		t.Fatalf("%+v", ref)
	}
	t.Logf("test AUC %.4f KS %.4f (scikit-learn: 0.7288, 0.3886)", ref.Eval.AUC, ref.Eval.KS)
	if math.Abs(ref.Eval.AUC-0.7288) > 0.002 || math.Abs(ref.Eval.KS-0.3886) > 0.005 {
		t.Fatalf("AUC %.4f KS %.4f, want 0.7288±0.002 and 0.3886±0.005", ref.Eval.AUC, ref.Eval.KS)
	}
}
