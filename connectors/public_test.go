package connectors_test

import (
	"os"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/connectors"
)

// sharedData returns the path of a file under ../shared/data, or skips the test when it is absent.
func sharedData(t *testing.T, rel string) string {
	t.Helper()
	p := "../../shared/data/" + rel
	if _, err := os.Stat(p); err != nil {
		t.Skipf("public data set %s is absent (%v)", rel, err)
	}
	return p
}

func sumInt64(t *testing.T, recs []arrow.Record, name string) (sum int64) {
	t.Helper()
	for _, rec := range recs {
		col := rec.Column(rec.Schema().FieldIndices(name)[0]).(*array.Int64)
		for i := 0; i < col.Len(); i++ {
			if col.IsValid(i) {
				sum += col.Value(i)
			}
		}
	}
	return sum
}

func TestPublicTaiwan(t *testing.T) {
	data := sharedData(t, "default_credit/UCI_Credit_Card.csv")
	m := loadMapping(t, "../examples/public-taiwan/mapping.yaml")
	recs, rep, err := readAll(t, m, connectors.Options{Path: data})
	if err != nil {
		t.Fatal(err)
	}
	if rows(recs) != 30000 || rep.RowsRead != 30000 || rep.RowsRejected != 0 || rep.Fields[0].Distinct != 30000 {
		t.Fatalf("%d rows, report %+v", rows(recs), rep)
	}
	if got := sumInt64(t, recs, "custom.default_next_month"); got != 6636 {
		t.Fatalf("%d positives, want 6636", got)
	}
	lim := rep.Fields[1]
	if lim.Column != "custom.limit_bal" || *lim.Max != 1_000_000 || *lim.Min != 10_000 || lim.Nulls != 0 || lim.Completeness != 1 {
		t.Fatalf("LIMIT_BAL report %+v", lim)
	}
	if rep.SHA256 != "a0f0ab49d6326671d6cd83be5c88dcf18007025fe9a53ecd699119c871176ca1" {
		t.Fatalf("sha256 %s", rep.SHA256)
	}
	if _, _, err := connectors.LoadDatasetSpec("../examples/public-taiwan/dataset.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestPublicGiveMeSomeCredit(t *testing.T) {
	data := sharedData(t, "give_me_some_credit/cs-training.csv.gz")
	m := loadMapping(t, "../examples/public-give-me-some-credit/mapping.yaml")
	recs, rep, err := readAll(t, m, connectors.Options{Path: data})
	if err != nil {
		t.Fatal(err)
	}
	if rows(recs) != 150000 || rep.RowsRejected != 0 || rep.Fields[0].Distinct != 150000 {
		t.Fatalf("%d rows, report %+v", rows(recs), rep)
	}
	if got := sumInt64(t, recs, "custom.serious_dlq_2yrs"); got != 10026 {
		t.Fatalf("%d positives, want 10026", got)
	}
	byName := map[string]connectors.FieldReport{}
	for _, f := range rep.Fields {
		byName[f.Column] = f
	}
	if f := byName["custom.monthly_income"]; f.Nulls != 29731 {
		t.Fatalf("monthly income %+v", f)
	}
	if f := byName["custom.dependents"]; f.Nulls != 3924 {
		t.Fatalf("dependents %+v", f)
	}
	if f := byName["custom.age"]; *f.Min != 0 {
		t.Fatalf("age %+v", f)
	}
	if rep.SHA256 != "b2d5b080b10ca9d559fa799b1ff5530fe20f5c90576c13a34c8bde981b7c6582" {
		t.Fatalf("sha256 %s", rep.SHA256)
	}
	if _, _, err := connectors.LoadDatasetSpec("../examples/public-give-me-some-credit/dataset.yaml"); err != nil {
		t.Fatal(err)
	}
}
