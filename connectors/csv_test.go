package connectors_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"insitu/connectors"
	"insitu/connectors/ident"
)

// readAll opens a mapping's source and reads every record, checking that all memory is released.
func readAll(t testing.TB, m *connectors.Mapping, opts connectors.Options) ([]arrow.Record, *connectors.SourceReport, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	if opts.Allocator == nil {
		opts.Allocator = mem
	}
	r, err := connectors.Open(context.Background(), m, opts)
	if err != nil {
		return nil, nil, err
	}
	var recs []arrow.Record
	for {
		rec, err := r.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			rep := r.Report()
			r.Close()
			for _, rc := range recs {
				rc.Release()
			}
			return nil, rep, err
		}
		if !rec.Schema().Equal(r.Schema()) {
			t.Fatalf("record schema %v differs from reader schema %v", rec.Schema(), r.Schema())
		}
		recs = append(recs, rec)
	}
	rep := r.Report()
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	t.Cleanup(func() {
		for _, rc := range recs {
			rc.Release()
		}
		if opts.Allocator == mem {
			mem.AssertSize(t, 0)
		}
	})
	return recs, rep, nil
}

func loadMapping(t testing.TB, path string) *connectors.Mapping {
	t.Helper()
	m, err := connectors.LoadMapping(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// column returns the values of a named column over all records, as strings ("<null>" for nulls).
func column(t testing.TB, recs []arrow.Record, name string) []string {
	t.Helper()
	var out []string
	for _, rec := range recs {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			t.Fatalf("no column %q in %v", name, rec.Schema())
		}
		col := rec.Column(idx[0])
		for i := 0; i < col.Len(); i++ {
			if col.IsNull(i) {
				out = append(out, "<null>")
				continue
			}
			out = append(out, col.ValueStr(i))
		}
	}
	return out
}

func rows(recs []arrow.Record) int64 {
	var n int64
	for _, r := range recs {
		n += r.NumRows()
	}
	return n
}

func TestInvalidCreditCodeFailsAtRow17(t *testing.T) {
	m := loadMapping(t, "testdata/tax.yaml")
	_, rep, err := readAll(t, m, connectors.Options{})
	var re *connectors.RowError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *RowError", err, err)
	}
	if re.Row != 17 || re.Line != 18 || re.Column != "uscc" || re.Rule != ident.RuleCheck || re.Value != "91330100716105852G" {
		t.Fatalf("got row %d line %d column %q rule %q value %q", re.Row, re.Line, re.Column, re.Rule, re.Value)
	}
	want := `testdata/tax.csv (source tax): line 18 (data row 17), column "uscc": invalid uscc "91330100716105852G": check character is 'G', GB 32100 mod-31 gives 'F' (rule check-character); correct the value at the source, or pass --max-rejects to leave such rows out`
	if err.Error() != want {
		t.Fatalf("message\n got %s\nwant %s", err, want)
	}
	if !errors.Is(err, connectors.ErrInvalidRow) || !errors.Is(err, ident.ErrInvalid) || errors.Is(err, connectors.ErrTooManyRejects) {
		t.Fatalf("error chain of %v is wrong", err)
	}
	if rep.Complete {
		t.Fatal("report of a failed read says complete")
	}
}

func TestMaxRejectsOneLeavesRow17Out(t *testing.T) {
	m := loadMapping(t, "testdata/tax.yaml")
	budget := connectors.NewRejectBudget(1)
	recs, rep, err := readAll(t, m, connectors.Options{Rejects: budget})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(recs); got != 19 {
		t.Fatalf("%d rows, want 19", got)
	}
	if rep.RowsRead != 20 || rep.RowsAccepted != 19 || rep.RowsRejected != 1 || rep.InvalidIdentifiers != 1 || !rep.Complete {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Rejects) != 1 || rep.Rejects[0].Row != 17 || rep.Rejects[0].Line != 18 || rep.Rejects[0].Rule != ident.RuleCheck {
		t.Fatalf("rejects %+v", rep.Rejects)
	}
	if budget.Used() != 1 {
		t.Fatalf("budget used %d", budget.Used())
	}
	ids := column(t, recs, "subject_id")
	for _, id := range ids {
		if id == "91330100716105852G" {
			t.Fatal("the rejected row is in the output")
		}
	}
	// Values of the first rows: scale 10000 turns 万元 into CNY; dates from 20060102; 是/否.
	amounts := column(t, recs, "tax_arrears_history.arrears_amount_24m")
	if strings.Join(amounts[:5], ",") != "15000,127500,<null>,3000,50000" {
		t.Fatalf("amounts %v", amounts[:5])
	}
	if d := column(t, recs, "tax_arrears_history.latest_arrears_date")[:4]; strings.Join(d, ",") != "<null>,2022-11-30,2024-02-29,<null>" {
		t.Fatalf("dates %v", d)
	}
	if b := column(t, recs, "tax_arrears_history.arrears_outstanding")[:4]; strings.Join(b, ",") != "true,true,false,<null>" {
		t.Fatalf("bools %v", b)
	}
	if c := column(t, recs, "custom.company_name")[0]; c != "浙江恒信建设有限公司1" {
		t.Fatalf("company %q", c)
	}

	// A budget is shared by the sources of one ingest: a second read of the same file now fails, and
	// says the budget ran out.
	_, _, err = readAll(t, m, connectors.Options{Rejects: budget})
	if !errors.Is(err, connectors.ErrTooManyRejects) || !strings.Contains(err.Error(), "--max-rejects 1") {
		t.Fatalf("second source with a spent budget: %v", err)
	}
}

func TestSchemaMetadata(t *testing.T) {
	m := loadMapping(t, "testdata/tax.yaml")
	sc, err := m.Schema(nil)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"subject_id", "tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m",
		"tax_arrears_history.latest_arrears_date", "tax_arrears_history.arrears_outstanding",
		"tax_arrears_history.tax_credit_grade", "custom.company_name"}
	types := []arrow.DataType{arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float64, arrow.PrimitiveTypes.Int64,
		arrow.FixedWidthTypes.Date32, arrow.FixedWidthTypes.Boolean, arrow.BinaryTypes.String, arrow.BinaryTypes.String}
	if sc.NumFields() != len(names) {
		t.Fatalf("schema %v", sc)
	}
	for i, f := range sc.Fields() {
		if f.Name != names[i] || !arrow.TypeEqual(f.Type, types[i]) {
			t.Fatalf("field %d is %s %s, want %s %s", i, f.Name, f.Type, names[i], types[i])
		}
	}
	meta := func(i int, k string) string {
		v, _ := sc.Field(i).Metadata.GetValue(k)
		return v
	}
	if meta(0, connectors.MetaIDKind) != "uscc" || sc.Field(0).Nullable {
		t.Fatalf("subject field %v", sc.Field(0))
	}
	checks := map[string]string{connectors.MetaItem: "tax_arrears_history", connectors.MetaField: "arrears_amount_24m",
		connectors.MetaType: "float", connectors.MetaUnit: "CNY", connectors.MetaProvider: "zhejiang_tax_bureau",
		connectors.MetaSource: "tax", connectors.MetaSensitivity: "2"}
	for k, want := range checks {
		if got := meta(1, k); got != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	if meta(6, connectors.MetaItem) != "custom" || meta(6, connectors.MetaField) != "company_name" || meta(6, connectors.MetaSensitivity) != "1" {
		t.Errorf("custom field metadata %v", sc.Field(6).Metadata)
	}
}

// writeCSVMapping writes a csv file and a mapping for it into a temporary folder.
func writeCSVMapping(t testing.TB, name string, data []byte, mapping string) *connectors.Mapping {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(dir, "mapping.yaml")
	if err := os.WriteFile(mp, []byte(mapping), 0o600); err != nil {
		t.Fatal(err)
	}
	return loadMapping(t, mp)
}

const openMapping = `
source: s
provider: p
format: csv
path: %s
subject: {column: id, kind: opaque}
columns:
  - {column: amount, field: custom.amount}
  - {column: note, field: custom.note}
custom_fields:
  - {key: amount, type: float, min: 0}
  - {key: note, type: string}
`

func TestCRLFGzipNA(t *testing.T) {
	csvText := "\"id\",\"amount\",\"note\"\r\n1,2.5,a\r\n2,NA,\r\n3,5e+05,\"x, y\"\r\n"
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(csvText))
	zw.Close()
	m := writeCSVMapping(t, "data.csv.gz", buf.Bytes(), strings.Replace(openMapping, "%s", "data.csv.gz", 1))
	recs, rep, err := readAll(t, m, connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(column(t, recs, "subject_id"), ","); got != "1,2,3" {
		t.Fatalf("ids %s", got)
	}
	if got := strings.Join(column(t, recs, "custom.amount"), ","); got != "2.5,<null>,500000" {
		t.Fatalf("amounts %s", got)
	}
	if got := strings.Join(column(t, recs, "custom.note"), "|"); got != "a|<null>|x, y" {
		t.Fatalf("notes %s", got)
	}
	if rep.Bytes != int64(buf.Len()) || len(rep.SHA256) != 64 {
		t.Fatalf("file size %d sha %q", rep.Bytes, rep.SHA256)
	}
}

func TestMultiLineQuotedFieldLineNumbers(t *testing.T) {
	// Data row 2 spans lines 3-5; data row 3 starts at line 6 and its bad amount is on line 6; data
	// row 4's note spans lines 7-8 and its bad amount sits after it, on line 8.
	csvText := "id,note,amount\n" +
		"1,plain,1\n" +
		"2,\"two\nline\nnote\",2\n" +
		"3,x,-4\n" +
		"4,\"a\nb\",-5\n"
	mapping := strings.Replace(openMapping, "%s", "data.csv", 1)
	m := writeCSVMapping(t, "data.csv", []byte(csvText), mapping)
	recs, rep, err := readAll(t, m, connectors.Options{Rejects: connectors.NewRejectBudget(5)})
	if err != nil {
		t.Fatal(err)
	}
	if rows(recs) != 2 || len(rep.Rejects) != 2 {
		t.Fatalf("%d rows, rejects %v", rows(recs), rep.Rejects)
	}
	if e := rep.Rejects[0]; e.Row != 3 || e.Line != 6 || e.Rule != connectors.RuleRange || e.Column != "amount" {
		t.Fatalf("first reject %+v", e)
	}
	if e := rep.Rejects[1]; e.Row != 4 || e.Line != 8 || e.Rule != connectors.RuleRange {
		t.Fatalf("second reject %+v", e)
	}
	if got := column(t, recs, "custom.note")[1]; got != "two\nline\nnote" {
		t.Fatalf("note %q", got)
	}
}

func TestBatchBoundaries(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,amount,note\n")
	for i := 1; i <= 10; i++ {
		b.WriteString(strings.Repeat("", 0))
		b.WriteString(string(rune('0'+i%10)) + "x," + string(rune('0'+i%10)) + ",n\n")
	}
	m := writeCSVMapping(t, "data.csv", []byte(b.String()), strings.Replace(openMapping, "%s", "data.csv", 1))
	for _, workers := range []int{1, 3} {
		recs, rep, err := readAll(t, m, connectors.Options{BatchRows: 3, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int64
		for _, r := range recs {
			sizes = append(sizes, r.NumRows())
		}
		if len(sizes) != 4 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 3 || sizes[3] != 1 {
			t.Fatalf("workers %d: batch sizes %v", workers, sizes)
		}
		if got := strings.Join(column(t, recs, "subject_id"), ","); got != "1x,2x,3x,4x,5x,6x,7x,8x,9x,0x" {
			t.Fatalf("workers %d: order %s", workers, got)
		}
		if rep.RowsRead != 10 || rep.RowsAccepted != 10 {
			t.Fatalf("report %+v", rep)
		}
	}
	// A rejected row inside a batch: the batch is shorter, the order kept.
	csvText := "id,amount,note\na,1,x\nb,-1,x\nc,3,x\nd,4,x\n"
	m = writeCSVMapping(t, "data.csv", []byte(csvText), strings.Replace(openMapping, "%s", "data.csv", 1))
	recs, _, err := readAll(t, m, connectors.Options{BatchRows: 3, Rejects: connectors.NewRejectBudget(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].NumRows() != 2 || strings.Join(column(t, recs, "subject_id"), ",") != "a,c,d" {
		t.Fatalf("records %v", recs)
	}
}

func TestCSVStructuralErrors(t *testing.T) {
	mapping := strings.Replace(openMapping, "%s", "data.csv", 1)
	for _, tc := range []struct {
		name, csv, want string
		line            int64
	}{
		{"empty", "", "a header row naming the columns is required", 1},
		{"missing column", "id,amount\n1,2\n", `column "note" is not in the source`, 1},
		{"bare quote", "id,amount,note\n1,2,ok\n2,3,a\"b\n", "bare \" in non-quoted-field", 3},
		{"duplicate header", "id,amount,note,note\n1,2,3,4\n", `column "note" appears more than once`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := writeCSVMapping(t, "data.csv", []byte(tc.csv), mapping)
			_, _, err := readAll(t, m, connectors.Options{})
			var se *connectors.SourceError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || se.Line != tc.line || !strings.Contains(err.Error(), "data.csv") {
				t.Fatalf("error %v (line %v), want a *SourceError with %q at line %d", err, se, tc.want, tc.line)
			}
		})
	}
	// A row with the wrong number of fields is an invalid row, not a broken file.
	m := writeCSVMapping(t, "data.csv", []byte("id,amount,note\n1,2,x\n2,3\n3,4,z\n"), mapping)
	recs, rep, err := readAll(t, m, connectors.Options{Rejects: connectors.NewRejectBudget(1)})
	if err != nil {
		t.Fatal(err)
	}
	if rows(recs) != 2 || rep.Rejects[0].Rule != connectors.RuleFieldCount || rep.Rejects[0].Line != 3 || rep.Rejects[0].Row != 2 {
		t.Fatalf("rows %d, rejects %+v", rows(recs), rep.Rejects)
	}
	if rep.Fields[1].Rows != 2 {
		t.Fatalf("a broken row counted in field statistics: %+v", rep.Fields[1])
	}
}

func TestIntFieldTakesIntegralExponents(t *testing.T) {
	mapping := `
source: s
provider: p
format: csv
path: data.csv
subject: {column: id, kind: opaque}
columns:
  - {column: n, field: custom.n}
custom_fields:
  - {key: n, type: int}
`
	m := writeCSVMapping(t, "data.csv", []byte("id,n\na,5e+05\nb,1.5\nc,-2E3\nd,12\ne,1e30\n"), mapping)
	recs, rep, err := readAll(t, m, connectors.Options{Rejects: connectors.NewRejectBudget(2)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(column(t, recs, "custom.n"), ","); got != "500000,-2000,12" {
		t.Fatalf("values %s", got)
	}
	if rep.Rejects[0].Rule != connectors.RuleInteger || rep.Rejects[0].Row != 2 || rep.Rejects[1].Rule != connectors.RuleRange {
		t.Fatalf("rejects %+v", rep.Rejects)
	}
	if _, ok := recs[0].Column(1).(*array.Int64); !ok {
		t.Fatalf("column type %T", recs[0].Column(1))
	}
}

func TestPersonalValuesAreMasked(t *testing.T) {
	mapping := `
source: people
provider: p
format: csv
path: data.csv
subject: {column: id, kind: resident_id}
columns:
  - {column: status, field: custom.status}
custom_fields:
  - {key: status, type: enum, values: [married, single], sensitivity: 3}
`
	// Row 1: a resident id whose check character is wrong; row 2: a valid id with a status outside the
	// enum. Neither value may appear whole in an error.
	valid := ident.NewResidentID(rand.New(rand.NewPCG(1, 1)), "110101", time.Date(1990, 3, 7, 0, 0, 0, 0, time.UTC), false)
	bad := valid[:17] + map[bool]string{true: "1", false: "2"}[valid[17] != '1']
	m := writeCSVMapping(t, "data.csv", []byte("id,status\n"+bad+",single\n"+valid+",widowed-secretly\n"), mapping)
	_, rep, err := readAll(t, m, connectors.Options{Rejects: connectors.NewRejectBudget(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rejects) != 2 {
		t.Fatalf("rejects %+v", rep.Rejects)
	}
	for i, raw := range []string{bad, "widowed-secretly"} {
		e := rep.Rejects[i]
		if e.Value != ident.Mask(raw) || strings.Contains(e.Error(), raw) {
			t.Errorf("reject %d shows %q: %s", i, e.Value, e)
		}
	}
}

func TestCancel(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,amount,note\n")
	for i := 0; i < 5000; i++ {
		b.WriteString("x" + strconv.Itoa(i) + ",1,n\n")
	}
	m := writeCSVMapping(t, "data.csv", []byte(b.String()), strings.Replace(openMapping, "%s", "data.csv", 1))
	ctx, cancel := context.WithCancel(context.Background())
	r, err := connectors.Open(ctx, m, connectors.Options{BatchRows: 10})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rec.Release()
	cancel()
	for {
		rec, err = r.Next(context.Background())
		if err != nil {
			break
		}
		rec.Release()
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}
