package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/connectors"
	"insitu/enclave/datadir"
)

func TestIngestListShowVerify(t *testing.T) {
	ctx := context.Background()
	s, root := newTestStore(t)
	f := newFixture(t, 100, 60, 0)
	var progress []Progress
	m, rep := ingest(t, s, f, IngestOptions{Progress: func(p Progress) { progress = append(progress, p) }})

	if m.Name != "credit" || m.Version != 1 || m.Class != "synthetic" || m.SubjectKind != "uscc" || m.Description != "test fixture" {
		t.Fatalf("manifest header %+v", m)
	}
	// tax: subjects 0..99; court: 50..109.
	if m.Subjects != 110 || m.Rows() != 160 {
		t.Fatalf("subjects %d rows %d, want 110 and 160", m.Subjects, m.Rows())
	}
	wantCols := []string{"subject_id",
		"tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m",
		"tax_arrears_history.latest_arrears_date", "tax_arrears_history.arrears_outstanding",
		"tax_arrears_history.tax_credit_grade",
		"dishonest_judgment_debtors.is_listed", "dishonest_judgment_debtors.case_count",
		"dishonest_judgment_debtors.amount_outstanding"}
	var gotCols []string
	for _, c := range m.Columns {
		gotCols = append(gotCols, c.Name)
	}
	if !slices.Equal(gotCols, wantCols) {
		t.Fatalf("columns %v, want %v", gotCols, wantCols)
	}
	c, _ := m.Column("tax_arrears_history.arrears_amount_24m")
	if c.Item != "tax_arrears_history" || c.Field != "arrears_amount_24m" || c.Type != "float64" || c.Unit != "CNY" ||
		c.Provider != "zhejiang_tax_bureau" || c.Source != "tax" || c.CatalogType != "float" || c.Sensitivity != 2 {
		t.Fatalf("column %+v", c)
	}
	if c, _ := m.Column("dishonest_judgment_debtors.is_listed"); c.Provider != "zhejiang_high_court" || c.Type != "bool" {
		t.Fatalf("column %+v", c)
	}
	if m.Columns[0].IDKind != "uscc" {
		t.Fatalf("subject column %+v", m.Columns[0])
	}
	if len(m.Parts) != 2 || m.Parts[0].Rows != 100 || m.Parts[0].Subjects != 100 || m.Parts[1].Rows != 60 ||
		m.Parts[0].File != "part-tax.arrows.enc" || len(m.Parts[0].PlainSHA256) != 64 || len(m.Parts[0].CipherSHA256) != 64 {
		t.Fatalf("parts %+v", m.Parts)
	}
	taxCSV, _ := os.ReadFile(filepath.Join(f.dir, "tax.csv"))
	src := m.Sources[0]
	if src.Name != "tax" || src.Provider != "zhejiang_tax_bureau" || src.ProviderName != "浙江省税务局" || src.Format != "csv" ||
		src.File != "tax.csv" || src.FileBytes != int64(len(taxCSV)) || src.FileSHA256 != sha256hex(taxCSV) || len(src.MappingSHA256) != 64 {
		t.Fatalf("source %+v", src)
	}
	q := m.Quality[0]
	if q.RowsRead != 100 || q.RowsAccepted != 100 || q.RowsRejected != 0 || q.InvalidIDs != 0 || q.Duplicates != 0 {
		t.Fatalf("quality %+v", q)
	}
	// Every 7th row (i%7==3) lacks arrears: 14 of 100.
	if got := q.Completeness["tax_arrears_history.arrears_amount_24m"]; got != 0.86 {
		t.Fatalf("arrears completeness %v, want 0.86", got)
	}
	if rep == nil || rep.RowsAccepted != 160 || len(rep.Sources) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if len(progress) == 0 || !progress[len(progress)-1].Done || progress[len(progress)-1].Source != "court" ||
		progress[len(progress)-1].Rows != 60 || progress[len(progress)-1].Parts != 2 {
		t.Fatalf("progress %+v", progress)
	}

	// The manifest holds no data value; the parts hold no plaintext.
	raw, _ := os.ReadFile(filepath.Join(root, "credit", "v1", manifestFile))
	for _, v := range []string{f.subjects[0], f.tax[f.subjects[0]][0]} {
		if bytes.Contains(raw, []byte(v)) {
			t.Fatalf("manifest holds the value %q", v)
		}
	}
	for _, file := range []string{partFile("tax"), partFile("court"), qualityFile} {
		b, _ := os.ReadFile(filepath.Join(root, "credit", "v1", file))
		if bytes.Contains(b, []byte(f.subjects[60])) || bytes.Contains(b, []byte("subject_id")) {
			t.Fatalf("%s holds plaintext", file)
		}
	}

	m2, _ := ingest(t, s, f, IngestOptions{})
	if m2.Version != 2 {
		t.Fatalf("second ingest is v%d, want v2", m2.Version)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Version != 1 || list[1].Version != 2 || list[1].Subjects != 110 ||
		list[1].Columns != 8 || !slices.Equal(list[1].Sources, []string{"tax", "court"}) || list[1].Problem != "" {
		t.Fatalf("list %+v", list)
	}

	sm, sq, err := s.Show(ctx, "credit", 0)
	if err != nil {
		t.Fatal(err)
	}
	if sm.Version != 2 || sq.Version != 2 || sq.Report.Sources[1].Source != "court" || sq.Report.Sources[0].Fields[0].Distinct != 100 {
		t.Fatalf("show: v%d, report %+v", sm.Version, sq)
	}
	if _, _, err := s.Show(ctx, "credit", 3); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "latest is v2") {
		t.Fatalf("show v3: %v", err)
	}
	if _, _, err := s.Show(ctx, "nothing", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("show of a missing dataset: %v", err)
	}

	res, err := s.Verify(ctx, "credit", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Version != 1 || len(res.Checks) != 1+2*5+2 {
		t.Fatalf("verify %+v", res)
	}
}

func sha256hex(b []byte) string {
	h := newHashWriter(io.Discard)
	h.Write(b)
	return h.sum()
}

// scanAll returns the scanned table as subject → column name → value rendered as text ("" for null).
func scanAll(t *testing.T, s *Store, opts ScanOptions) (map[string]map[string]string, []string, int) {
	t.Helper()
	ctx := context.Background()
	sc, err := s.Scan(ctx, "credit", 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	out := map[string]map[string]string{}
	var order []string
	batches := 0
	for {
		rec, err := sc.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Schema().Equal(sc.Schema()) {
			t.Fatal("record schema differs from Schema()")
		}
		if opts.BatchRows > 0 && rec.NumRows() > int64(opts.BatchRows) {
			t.Fatalf("record of %d rows, batch %d", rec.NumRows(), opts.BatchRows)
		}
		batches++
		for i := range int(rec.NumRows()) {
			subj := rec.Column(0).(*array.String).Value(i)
			if _, dup := out[subj]; dup {
				t.Fatalf("subject %s twice", subj)
			}
			order = append(order, subj)
			row := map[string]string{}
			for j := 1; j < int(rec.NumCols()); j++ {
				col := rec.Column(j)
				if col.IsNull(i) {
					row[rec.ColumnName(j)] = ""
					continue
				}
				row[rec.ColumnName(j)] = render(col, i)
			}
			out[subj] = row
		}
		rec.Release()
	}
	if _, err := sc.Next(ctx); err != io.EOF {
		t.Fatalf("Next after the end: %v", err)
	}
	return out, order, batches
}

func render(col arrow.Array, i int) string {
	switch a := col.(type) {
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'f', 2, 64)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Date32:
		return a.Value(i).FormattedString()
	case *array.String:
		return a.Value(i)
	}
	return fmt.Sprintf("?%T", col)
}

func TestScan(t *testing.T) {
	s, _ := newTestStore(t)
	f := newFixture(t, 300, 200, 0)
	ingest(t, s, f, IngestOptions{})
	got, order, _ := scanAll(t, s, ScanOptions{})
	if len(got) != 350 {
		t.Fatalf("%d subjects, want 350", len(got))
	}
	// Order of first appearance: the tax subjects, then the court-only ones.
	if !slices.Equal(order, f.subjects[:350]) {
		t.Fatal("rows are not in order of first appearance")
	}
	yesNo := map[string]string{"是": "true", "否": "false"}
	for subj, row := range got {
		tax, inTax := f.tax[subj]
		court, inCourt := f.court[subj]
		if !inTax && !inCourt {
			t.Fatalf("unknown subject %s", subj)
		}
		want := map[string]string{}
		for _, c := range []string{"arrears_amount_24m", "arrears_count_24m", "latest_arrears_date", "arrears_outstanding", "tax_credit_grade"} {
			want["tax_arrears_history."+c] = ""
		}
		for _, c := range []string{"is_listed", "case_count", "amount_outstanding"} {
			want["dishonest_judgment_debtors."+c] = ""
		}
		if inTax {
			want["tax_arrears_history.arrears_amount_24m"] = tax[0]
			want["tax_arrears_history.arrears_count_24m"] = tax[1]
			want["tax_arrears_history.latest_arrears_date"] = tax[2]
			want["tax_arrears_history.arrears_outstanding"] = tax[3]
			want["tax_arrears_history.tax_credit_grade"] = tax[4]
		}
		if inCourt {
			want["dishonest_judgment_debtors.is_listed"] = yesNo[court[0]]
			want["dishonest_judgment_debtors.case_count"] = court[1]
			want["dishonest_judgment_debtors.amount_outstanding"] = court[2] + ".00"
		}
		for k, v := range want {
			if row[k] != v {
				t.Fatalf("subject %s column %s: %q, want %q", subj, k, row[k], v)
			}
		}
	}

	// Small batches and a budget that forces several windows give the same table.
	small, order2, batches := scanAll(t, s, ScanOptions{BatchRows: 16, MemoryBudget: 1})
	if batches != (350+15)/16 {
		t.Fatalf("%d batches of 16, want %d", batches, (350+15)/16)
	}
	if !slices.Equal(order, order2) || len(small) != len(got) {
		t.Fatal("windowed scan differs")
	}
	for subj, row := range got {
		for k, v := range row {
			if small[subj][k] != v {
				t.Fatalf("windowed scan: subject %s column %s: %q, want %q", subj, k, small[subj][k], v)
			}
		}
	}

	// A column selection keeps every subject.
	sel, _, _ := scanAll(t, s, ScanOptions{Columns: []string{"dishonest_judgment_debtors.case_count"}})
	if len(sel) != 350 || len(sel[f.subjects[0]]) != 1 || sel[f.subjects[0]]["dishonest_judgment_debtors.case_count"] != "" {
		t.Fatalf("selection: %d subjects, first row %v", len(sel), sel[f.subjects[0]])
	}
	if _, err := s.Scan(context.Background(), "credit", 0, ScanOptions{Columns: []string{"nope"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown column: %v", err)
	}
}

func TestIngestInvalidRow(t *testing.T) {
	ctx := context.Background()
	s, root := newTestStore(t)
	f := newFixture(t, 40, 10, 17)
	spec, maps := f.load(t)
	_, _, err := s.Ingest(ctx, spec, maps, IngestOptions{})
	var re *connectors.RowError
	if !errors.As(err, &re) || !errors.Is(err, connectors.ErrInvalidRow) {
		t.Fatalf("ingest error %v, want a *connectors.RowError", err)
	}
	if re.Row != 17 || re.Line != 18 || re.Column != "credit_code" || re.Source != "tax" {
		t.Fatalf("row error %+v, want data row 17, line 18, column credit_code", re)
	}
	for _, w := range []string{"data row 17", "line 18", "credit_code"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not name %q", err, w)
		}
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Fatalf("a failed ingest left %v", list)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "credit"))
	for _, e := range ents {
		if e.Name() != ".lock" {
			t.Fatalf("a failed ingest left %s", e.Name())
		}
	}

	m, rep, err := s.Ingest(ctx, spec, maps, IngestOptions{MaxRejects: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || m.Quality[0].RowsRejected != 1 || m.Quality[0].InvalidIDs != 1 || m.Parts[0].Rows != 39 {
		t.Fatalf("with one reject: v%d quality %+v", m.Version, m.Quality[0])
	}
	if len(rep.Sources[0].Rejects) != 1 || rep.Sources[0].Rejects[0].Row != 17 {
		t.Fatalf("rejects %+v", rep.Sources[0].Rejects)
	}
	_, q, err := s.Show(ctx, "credit", 1)
	if err != nil || len(q.Report.Sources[0].Rejects) != 1 || q.Report.Sources[0].Rejects[0].Line != 18 {
		t.Fatalf("stored report lists %+v (%v)", q, err)
	}
}

func TestIngestRejectsBadSpec(t *testing.T) {
	s, _ := newTestStore(t)
	f := newFixture(t, 10, 10, 0)
	spec, maps := f.load(t)
	ctx := context.Background()
	for name, mod := range map[string]func(*connectors.DatasetSpec) []*connectors.Mapping{
		"class":   func(sp *connectors.DatasetSpec) []*connectors.Mapping { sp.Class = "secret"; return maps },
		"name":    func(sp *connectors.DatasetSpec) []*connectors.Mapping { sp.Dataset = "../x"; return maps },
		"subject": func(sp *connectors.DatasetSpec) []*connectors.Mapping { sp.Subject = "resident_id"; return maps },
		"none":    func(sp *connectors.DatasetSpec) []*connectors.Mapping { return nil },
		"twice":   func(sp *connectors.DatasetSpec) []*connectors.Mapping { return []*connectors.Mapping{maps[0], maps[0]} },
	} {
		sp := *spec
		if _, _, err := s.Ingest(ctx, &sp, mod(&sp), IngestOptions{}); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: %v, want ErrInvalidSpec", name, err)
		}
	}
}

func TestConcurrentIngests(t *testing.T) {
	s, _ := newTestStore(t)
	f := newFixture(t, 50, 20, 0)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			spec, maps := f.load(t)
			_, _, errs[i] = s.Ingest(context.Background(), spec, maps, IngestOptions{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	list, _ := s.List(context.Background())
	if len(list) != 3 || list[2].Version != 3 {
		t.Fatalf("list %+v", list)
	}
	for v := 1; v <= 3; v++ {
		if _, err := s.Verify(context.Background(), "credit", v); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenFromDataDir(t *testing.T) {
	base := t.TempDir()
	res, err := datadir.Init(filepath.Join(base, "data"), filepath.Join(base, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := datadir.OpenWithKey(res.Dir, testMaster(9))
	if !errors.Is(err, datadir.ErrWrongKey) {
		t.Fatalf("open with a wrong key: %v", err)
	}
	dd, err := datadir.Open(res.Dir, keysSource(res.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dd)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, 20, 5, 0)
	ingest(t, s, f, IngestOptions{})
	if _, err := os.Stat(filepath.Join(res.Dir, DatasetsDir, "credit", "v1", manifestFile)); err != nil {
		t.Fatal(err)
	}
	_ = d
}

// A source whose every row is left out gives an empty part; the dataset still scans and verifies.
func TestEmptyPart(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	f := newFixture(t, 20, 10, 0)
	write(t, filepath.Join(f.dir, "court.csv"), "code,listed,cases,amount\n")
	m, _ := ingest(t, s, f, IngestOptions{})
	if m.Parts[1].Rows != 0 || m.Parts[1].Batches != 0 || m.Subjects != 20 {
		t.Fatalf("parts %+v, %d subjects", m.Parts, m.Subjects)
	}
	if _, err := s.Verify(ctx, "credit", 0); err != nil {
		t.Fatal(err)
	}
	got, _, _ := scanAll(t, s, ScanOptions{})
	if len(got) != 20 || got[f.subjects[0]]["dishonest_judgment_debtors.case_count"] != "" {
		t.Fatalf("scan of a dataset with an empty part: %d rows", len(got))
	}
}
