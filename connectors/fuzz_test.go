package connectors_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"insitu/connectors"
	"insitu/connectors/ident"
)

// FuzzCSVMapping feeds random CSV bytes through the mapping of testdata/quality.yaml: reading never
// panics, every error is a *RowError or a *SourceError naming the file, and a successful read accounts
// for every row.
func FuzzCSVMapping(f *testing.F) {
	for _, p := range []string{"testdata/tax.csv", "testdata/quality.csv"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(3))
	}
	header := "uscc,company,arrears_amount_wan,arrears_count,latest_arrears,outstanding,grade\r\n"
	f.Add([]byte(header+"91330100AY4CL12T8H,\"a\r\nb\",1,2,20230101,是,A\r\n"), uint8(1))
	f.Add([]byte(header+"91330100AY4CL12T8H,x,1,2\n"), uint8(2))
	f.Add([]byte(header+"91330100AY4CL12T8H,\"x,1,2,20230101,是,A\n"), uint8(5))
	f.Add([]byte("\ufeff"+header+"\n\n91330100AY4CL12T8H,x,NA,NA,NA,NA,NA\n"), uint8(1))
	f.Add([]byte(header+"91330100AY4CL12T8H,x,1e400,9e18,99999999,1,Z\n"), uint8(4))
	f.Add([]byte(header), uint8(1))

	m := loadMapping(f, "testdata/quality.yaml")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, batch uint8) {
		path := filepath.Join(dir, "fuzz.csv")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		budget := connectors.NewRejectBudget(3)
		recs, rep, err := readAll(t, m, connectors.Options{Path: path, BatchRows: int(batch%8) + 1, Rejects: budget, Workers: 2})
		var re *connectors.RowError
		var se *connectors.SourceError
		switch {
		case err == nil:
		case errors.As(err, &re):
			if re.File != path || re.Row < 1 || re.Line < 1 || re.Rule == "" || !errors.Is(err, connectors.ErrTooManyRejects) {
				t.Fatalf("row error %+v", re)
			}
			return
		case errors.As(err, &se):
			if se.File != path {
				t.Fatalf("source error %v does not name the file", err)
			}
			return
		default:
			t.Fatalf("error %v (%T) is neither a *RowError nor a *SourceError", err, err)
		}
		if rep.RowsAccepted+rep.RowsRejected != rep.RowsRead || rows(recs) != rep.RowsAccepted || int64(len(rep.Rejects)) != rep.RowsRejected || rep.RowsRejected > 3 {
			t.Fatalf("report does not add up: %d records, %+v", rows(recs), rep)
		}
		for i, e := range rep.Rejects {
			if e.Line < 1 || e.Row < 1 || (i > 0 && e.Row <= rep.Rejects[i-1].Row) {
				t.Fatalf("rejects out of order or without place: %+v", rep.Rejects)
			}
		}
		seen := map[string]bool{}
		for _, id := range column(t, recs, "subject_id") {
			if ident.Validate(ident.KindUSCC, id) != nil || seen[id] {
				t.Fatalf("subject %q is invalid or repeated in the output", id)
			}
			seen[id] = true
		}
	})
}
