package suite

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadCSV feeds arbitrary files to the data loader: it returns a table or an error, never
// panics, and a table it returns survives the round trip through the flat CSV unchanged.
func FuzzLoadCSV(f *testing.F) {
	f.Add([]byte("ID,x,default.payment.next.month\n1,5e+05,0\n5,-2,1\n"))
	f.Add([]byte("id,label,a,b\n1,0,,3\n2,1,NA,4.5\n10,0,1,\n"))
	f.Add([]byte(",SeriousDlqin2yrs,age\r\n1,1,45\r\n2,0,NA\r\n"))
	f.Add([]byte("id,label\n"))
	f.Add([]byte("id,label,x\nseven,0,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in.csv")
		if err := os.WriteFile(in, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, label := range []string{"default.payment.next.month", "label", "SeriousDlqin2yrs"} {
			tab, err := LoadCSV(in, "fuzz", "", label)
			if err != nil {
				continue
			}
			out := filepath.Join(dir, "flat.csv")
			if err := tab.WriteCSV(out); err != nil {
				t.Fatal(err)
			}
			back, err := ReadTable(out, "fuzz")
			if err != nil {
				t.Fatalf("the flat CSV of a loaded table does not read back: %v", err)
			}
			if len(back.IDs) != len(tab.IDs) || len(back.Cols) != len(tab.Cols) {
				t.Fatalf("round trip: %d×%d rows×cols, want %d×%d", len(back.IDs), len(back.Cols), len(tab.IDs), len(tab.Cols))
			}
			for j := range tab.Cols {
				for i, v := range tab.Cols[j] {
					w := back.Cols[j][i]
					if v != w && !(math.IsNaN(v) && math.IsNaN(w)) {
						t.Fatalf("round trip: column %d row %d: %v became %v", j, i, v, w)
					}
				}
			}
		}
	})
}

// FuzzReadReport feeds arbitrary JSON to ReadReport: a report or an error, never a panic, and a
// report it accepts renders as Markdown and compares with itself.
func FuzzReadReport(f *testing.F) {
	f.Add([]byte(`{"schema":"insitu-bench/v1","rows":[{"id":"a/b/c","status":"ok","auc":0.7,"wall_s":1}]}`))
	f.Add([]byte(`{"schema":"insitu-bench/v0"}`))
	f.Add([]byte(`{"schema":"insitu-bench/v1","rows":[{"id":"x","status":"skipped","reason":"r","epsilon":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "r.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := ReadReport(p)
		if err != nil {
			return
		}
		var sink discard
		r.Markdown(&sink)
		Compare(&sink, r, r)
		if _, err := json.Marshal(r); err != nil && r.Schema != SchemaVersion {
			t.Fatal(err)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
