package connectors_test

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"insitu/connectors"
)

// typedTax reads testdata/tax.csv into typed Arrow records of at most perBatch rows, as a Parquet or
// Arrow producer would have written the same table: numbers as numbers, dates as dates, NA as null.
func typedTax(t *testing.T, perBatch int) (*arrow.Schema, []arrow.Record) {
	t.Helper()
	f, err := os.Open("testdata/tax.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "uscc", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "company", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "arrears_amount_wan", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "arrears_count", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "latest_arrears", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "outstanding", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "grade", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	var recs []arrow.Record
	null := func(s string) bool { return s == "" || s == "NA" }
	for i, row := range all[1:] {
		b.Field(0).(*array.StringBuilder).Append(row[0])
		b.Field(1).(*array.LargeStringBuilder).Append(row[1])
		if v, err := strconv.ParseFloat(row[2], 64); err == nil {
			b.Field(2).(*array.Float64Builder).Append(v)
		} else {
			b.Field(2).AppendNull()
		}
		if v, err := strconv.ParseInt(row[3], 10, 32); err == nil {
			b.Field(3).(*array.Int32Builder).Append(int32(v))
		} else {
			b.Field(3).AppendNull()
		}
		if d, err := time.Parse("20060102", row[4]); err == nil {
			b.Field(4).(*array.Date32Builder).Append(arrow.Date32FromTime(d))
		} else {
			b.Field(4).AppendNull()
		}
		if null(row[5]) {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.BooleanBuilder).Append(row[5] == "是")
		}
		if null(row[6]) {
			b.Field(6).AppendNull()
		} else {
			b.Field(6).(*array.StringBuilder).Append(row[6])
		}
		if (i+1)%perBatch == 0 || i == len(all)-2 {
			recs = append(recs, b.NewRecord())
		}
	}
	return sc, recs
}

func TestFormatsRoundTrip(t *testing.T) {
	csvMapping := loadMapping(t, "testdata/tax.yaml")
	want, wantRep, err := readAll(t, csvMapping, connectors.Options{Rejects: connectors.NewRejectBudget(1)})
	if err != nil {
		t.Fatal(err)
	}
	sc, recs := typedTax(t, 7)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	dir := t.TempDir()
	write := map[string]func(*os.File) error{
		"parquet": func(f *os.File) error {
			w, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(6)), pqarrow.DefaultWriterProps())
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					return err
				}
			}
			return w.Close()
		},
		"arrow": func(f *os.File) error {
			w, err := ipc.NewFileWriter(f, ipc.WithSchema(sc))
			if err != nil {
				return err
			}
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					return err
				}
			}
			return w.Close()
		},
		"arrow-stream": func(f *os.File) error {
			w := ipc.NewWriter(f, ipc.WithSchema(sc))
			for _, r := range recs {
				if err := w.Write(r); err != nil {
					return err
				}
			}
			return w.Close()
		},
	}
	text, err := os.ReadFile("testdata/tax.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"parquet", "arrow", "arrow-stream"} {
		t.Run(format, func(t *testing.T) {
			name := "tax." + format
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := write[format](f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			mtext := strings.NewReplacer("format: csv", "format: "+format, "path: tax.csv", "path: "+name).Replace(string(text))
			mp := filepath.Join(dir, format+".yaml")
			os.WriteFile(mp, []byte(mtext), 0o600)
			m := loadMapping(t, mp)

			for _, batch := range []int{4, 100} {
				got, rep, err := readAll(t, m, connectors.Options{Rejects: connectors.NewRejectBudget(1), BatchRows: batch})
				if err != nil {
					t.Fatal(err)
				}
				for _, fld := range want[0].Schema().Fields() {
					g, w := column(t, got, fld.Name), column(t, want, fld.Name)
					if strings.Join(g, "|") != strings.Join(w, "|") {
						t.Errorf("batch %d, column %s\n got %v\nwant %v", batch, fld.Name, g, w)
					}
				}
				for i, fld := range got[0].Schema().Fields() {
					w := want[0].Schema().Field(i)
					if fld.Name != w.Name || !arrow.TypeEqual(fld.Type, w.Type) || !fld.Metadata.Equal(w.Metadata) {
						t.Errorf("field %d: %v, csv gave %v", i, fld, w)
					}
				}
				if v, _ := got[0].Schema().Metadata().GetValue(connectors.MetaFormat); v != format {
					t.Errorf("schema format metadata %q", v)
				}
				if len(rep.Rejects) != 1 || rep.Rejects[0].Row != 17 || rep.Rejects[0].Line != 0 || rep.Rejects[0].Rule != "check-character" {
					t.Errorf("rejects %+v", rep.Rejects)
				}
				wantMsg := filepath.Join(dir, name) + ` (source tax): data row 17, column "uscc": invalid uscc`
				if !strings.HasPrefix(rep.Rejects[0].Error(), wantMsg) {
					t.Errorf("message %q", rep.Rejects[0].Error())
				}
				for i := range rep.Fields {
					g, w := rep.Fields[i], wantRep.Fields[i]
					if g.Nulls != w.Nulls || g.Valid != w.Valid || g.Invalid != w.Invalid || g.Distinct != w.Distinct || g.Rows != w.Rows {
						t.Errorf("field %s: %+v, csv gave %+v", g.Column, g, w)
					}
				}
				if rep.SHA256 == "" || rep.Bytes == 0 || !rep.Complete {
					t.Errorf("report %+v", rep)
				}
			}
		})
	}
}

func TestTypedSourceErrors(t *testing.T) {
	dir := t.TempDir()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "uscc", Type: arrow.BinaryTypes.String},
		{Name: "arrears_amount_wan", Type: arrow.FixedWidthTypes.Date32},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String)},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("91330100AY4CL12T8H")
	b.Field(1).(*array.Date32Builder).Append(1)
	b.Field(2).AppendNull()
	rec := b.NewRecord()
	defer rec.Release()
	path := filepath.Join(dir, "x.arrow")
	f, _ := os.Create(path)
	w, _ := ipc.NewFileWriter(f, ipc.WithSchema(sc))
	w.Write(rec)
	w.Close()
	f.Close()

	mapping := func(cols string) *connectors.Mapping {
		text := "source: s\nprovider: p\nformat: arrow\npath: x.arrow\nsubject: {column: uscc, kind: uscc}\ncolumns:\n" + cols
		mp := filepath.Join(dir, "m.yaml")
		os.WriteFile(mp, []byte(text), 0o600)
		return loadMapping(t, mp)
	}
	// A date cannot fill a float field: a row error with rule "type".
	_, _, err := readAll(t, mapping("  - {column: arrears_amount_wan, field: tax_arrears_history.arrears_amount_24m}\n"), connectors.Options{})
	var re *connectors.RowError
	if !errors.As(err, &re) || re.Rule != connectors.RuleType || re.Row != 1 || !strings.Contains(re.Message, "a date value (1970-01-02) cannot fill the float field") {
		t.Fatalf("error %v", err)
	}
	// A list column cannot be read at all.
	_, err = connectors.Open(t.Context(), mapping("  - {column: tags, field: tax_arrears_history.tax_credit_grade}\n"), connectors.Options{})
	var se *connectors.SourceError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `column "tags": the source column's Arrow type list<item: utf8, nullable> cannot be read`) {
		t.Fatalf("error %v", err)
	}
	// Not an Arrow file.
	os.WriteFile(path, []byte("id,x\n1,2\n"), 0o600)
	_, err = connectors.Open(t.Context(), mapping("  - {column: tags, field: tax_arrears_history.tax_credit_grade}\n"), connectors.Options{})
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "not an Arrow IPC file") {
		t.Fatalf("error %v", err)
	}
}
