package connectors_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"insitu/connectors"
)

// TestQualityReportExact checks every number of the report on testdata/quality.csv, which has one
// invalid value of each kind (see the comments).
func TestQualityReportExact(t *testing.T) {
	m := loadMapping(t, "testdata/quality.yaml")
	recs, rep, err := readAll(t, m, connectors.Options{Rejects: connectors.NewRejectBudget(10)})
	if err != nil {
		t.Fatal(err)
	}
	// Rows 3 (check character), 4 (amount below 0), 5 (duplicate of row 1), 6 (count 1.5), 7 (Feb 30)
	// and 9 (no credit code) are rejected.
	if rows(recs) != 4 || rep.RowsRead != 10 || rep.RowsAccepted != 4 || rep.RowsRejected != 6 ||
		rep.InvalidIdentifiers != 2 || rep.DuplicateSubjects != 1 || !rep.Complete {
		t.Fatalf("source counts: %d rows out, report %+v", rows(recs), rep)
	}
	var got []string
	for _, e := range rep.Rejects {
		got = append(got, e.Rule)
		if e.Line != e.Row+1 {
			t.Errorf("reject at row %d has line %d", e.Row, e.Line)
		}
	}
	if strings.Join(got, ",") != "check-character,range,unique-subject,integer,date,non-empty" {
		t.Fatalf("reject rules %v", got)
	}
	if rep.Rejects[2].Row != 5 || !strings.Contains(rep.Rejects[2].Message, "already appeared at data row 1") {
		t.Fatalf("duplicate reject %+v", rep.Rejects[2])
	}
	if rep.SHA256 == "" || rep.Bytes == 0 || rep.Format != "csv" || rep.Provider != "zhejiang_tax_bureau" {
		t.Fatalf("source identity %+v", rep)
	}

	f := func(v float64) *float64 { return &v }
	want := []connectors.FieldReport{
		{Column: "subject_id", SourceColumn: "uscc", Type: "id", Rows: 10, Nulls: 1, Valid: 8, Invalid: 1, Distinct: 7},
		{Column: "tax_arrears_history.arrears_amount_24m", SourceColumn: "arrears_amount_wan", Type: "float", Unit: "CNY",
			Rows: 10, Nulls: 2, Valid: 7, Invalid: 1, Distinct: 7, Min: f(2500), Max: f(100000)},
		{Column: "tax_arrears_history.arrears_count_24m", SourceColumn: "arrears_count", Type: "int",
			Rows: 10, Nulls: 1, Valid: 8, Invalid: 1, Distinct: 5, Min: f(0), Max: f(5)},
		{Column: "tax_arrears_history.latest_arrears_date", SourceColumn: "latest_arrears", Type: "date",
			Rows: 10, Nulls: 2, Valid: 7, Invalid: 1, Distinct: 7, MinDate: "2019-12-31", MaxDate: "2024-02-29"},
		{Column: "tax_arrears_history.arrears_outstanding", SourceColumn: "outstanding", Type: "bool",
			Rows: 10, Nulls: 1, Valid: 8, Invalid: 1, Distinct: 2},
		{Column: "tax_arrears_history.tax_credit_grade", SourceColumn: "grade", Type: "enum",
			Rows: 10, Nulls: 1, Valid: 8, Invalid: 1, Distinct: 5},
		{Column: "custom.company_name", SourceColumn: "company", Type: "string",
			Rows: 10, Nulls: 1, Valid: 9, Invalid: 0, Distinct: 8},
	}
	if len(rep.Fields) != len(want) {
		t.Fatalf("%d field reports, want %d", len(rep.Fields), len(want))
	}
	for i, w := range want {
		g := rep.Fields[i]
		w.Completeness = float64(w.Rows-w.Nulls) / float64(w.Rows)
		w.Validity = float64(w.Valid) / float64(w.Rows-w.Nulls)
		gj, _ := json.Marshal(g)
		wj, _ := json.Marshal(w)
		if !bytes.Equal(gj, wj) {
			t.Errorf("field %d\n got %s\nwant %s", i, gj, wj)
		}
	}
	if math.Abs(rep.Fields[0].Completeness-0.9) > 1e-15 || math.Abs(rep.Fields[1].Validity-0.875) > 1e-15 {
		t.Errorf("ratios %v %v", rep.Fields[0].Completeness, rep.Fields[1].Validity)
	}

	// JSON field names are part of the contract.
	var all connectors.Report
	all.MaxRejects = 10
	all.Add(rep)
	var buf bytes.Buffer
	if err := all.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"rows_read": 10`, `"rows_accepted": 4`, `"rows_rejected": 6`, `"invalid_identifiers": 2`,
		`"duplicate_subjects": 1`, `"completeness": 0.9`, `"validity": 0.875`, `"distinct": 7`, `"min": 2500`,
		`"max_date": "2024-02-29"`, `"rule": "unique-subject"`, `"sha256": "`, `"max_rejects": 10`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	var back connectors.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Sources[0].Fields[3].MaxDate != "2024-02-29" {
		t.Fatalf("JSON does not read back: %v", err)
	}

	buf.Reset()
	if err := all.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, s := range []string{"1 sources, 10 rows read, 4 accepted, 6 rejected (--max-rejects 10)",
		"tax_arrears_history.arrears_amount_24m   arrears_amount_wan  float (CNY)  80.0%     87.5%   2      1        7         2500        100000\n",
		"2019-12-31", "rejected rows (6):", "line 10 (data row 9)"} {
		if !strings.Contains(text, s) {
			t.Errorf("text report lacks %q:\n%s", s, text)
		}
	}
}

// TestDistinctLargeAndDeterministic: above the exact range the count is approximate, within 2 %, and
// the same whatever the number of workers and the batch size.
func TestDistinctLargeAndDeterministic(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,amount,note\n")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, "r%d,%d,%d\n", i, i%5000, i%700)
	}
	m := writeCSVMapping(t, "data.csv", []byte(b.String()), strings.Replace(openMapping, "%s", "data.csv", 1))
	var first []uint64
	for _, o := range []connectors.Options{{Workers: 1, BatchRows: 8192}, {Workers: 3, BatchRows: 97}, {Workers: 2, BatchRows: 1000}} {
		_, rep, err := readAll(t, m, o)
		if err != nil {
			t.Fatal(err)
		}
		got := []uint64{rep.Fields[0].Distinct, rep.Fields[1].Distinct, rep.Fields[2].Distinct}
		if got[0] != 20000 || got[2] != 700 || math.Abs(float64(got[1])-5000) > 100 {
			t.Fatalf("distinct counts %v, want 20000, about 5000, 700", got)
		}
		if first == nil {
			first = got
		} else if got[1] != first[1] {
			t.Fatalf("distinct count %d with %+v, %d before", got[1], o, first[1])
		}
	}
}
