package connectors_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/ident"
)

const benchMapping = `source: enterprises
provider: bench
format: csv
path: enterprises.csv
subject: {column: uscc, kind: uscc}
columns:
  - {column: revenue_wan, field: custom.revenue, scale: 10000}
  - {column: employees, field: custom.employees}
  - {column: founded, field: custom.founded}
  - {column: listed, field: custom.listed}
  - {column: arrears, field: custom.arrears}
  - {column: arrears_count, field: custom.arrears_count}
  - {column: grade, field: custom.grade}
  - {column: water_m3, field: custom.water}
  - {column: power_kwh, field: custom.power}
  - {column: insured, field: custom.insured}
  - {column: si_arrears, field: custom.si_arrears}
  - {column: last_paid, field: custom.last_paid, date_format: "20060102"}
custom_fields:
  - {key: revenue, type: float, unit: CNY, min: 0}
  - {key: employees, type: int, min: 0}
  - {key: founded, type: date}
  - {key: listed, type: bool}
  - {key: arrears, type: float, unit: CNY, min: 0}
  - {key: arrears_count, type: int, min: 0}
  - {key: grade, type: enum, values: [A, B, M, C, D]}
  - {key: water, type: float, unit: m3, min: 0}
  - {key: power, type: float, unit: kWh, min: 0}
  - {key: insured, type: int, min: 0}
  - {key: si_arrears, type: float, unit: CNY, min: 0}
  - {key: last_paid, type: date}
`

// writeEnterprises writes a CSV of n enterprise-like rows (a credit code and 12 numeric, date, bool
// and enum columns, some missing) and its mapping, and returns the mapping's path and the file size.
func writeEnterprises(tb testing.TB, dir string, n int) (string, int64) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	f, err := os.Create(filepath.Join(dir, "enterprises.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("uscc,revenue_wan,employees,founded,listed,arrears,arrears_count,grade,water_m3,power_kwh,insured,si_arrears,last_paid\n")
	base := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	std := rand.New(rand.NewChaCha8([32]byte{1}))
	grades := []string{"A", "B", "M", "C", "D"}
	for i := 0; i < n; i++ {
		code := ident.NewUSCC(std, "330100")
		arrears := "0"
		if rng.IntN(10) == 0 {
			arrears = strconv.FormatFloat(float64(rng.IntN(5000000))/100, 'f', 2, 64)
		}
		power := strconv.FormatFloat(rng.ExpFloat64()*20000, 'f', 1, 64)
		if rng.IntN(20) == 0 {
			power = "NA"
		}
		fmt.Fprintf(w, "%s,%.2f,%d,%s,%s,%s,%d,%s,%.1f,%s,%d,%.2f,%s\n", code, rng.ExpFloat64()*800, rng.IntN(500),
			base.AddDate(0, 0, rng.IntN(12000)).Format("2006-01-02"), []string{"是", "否"}[rng.IntN(2)], arrears,
			rng.IntN(4), grades[rng.IntN(5)], rng.ExpFloat64()*3000, power, rng.IntN(300), rng.ExpFloat64()*100,
			base.AddDate(33, 0, rng.IntN(700)).Format("20060102"))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	mp := filepath.Join(dir, "mapping.yaml")
	os.WriteFile(mp, []byte(benchMapping), 0o600)
	return mp, st.Size()
}

func BenchmarkCSV(b *testing.B) {
	for _, n := range []int{100_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			mp, size := writeEnterprises(b, b.TempDir(), n)
			m := loadMapping(b, mp)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r, err := connectors.Open(context.Background(), m, connectors.Options{})
				if err != nil {
					b.Fatal(err)
				}
				var got int64
				for {
					rec, err := r.Next(context.Background())
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					got += rec.NumRows()
					rec.Release()
				}
				r.Close()
				if got != int64(n) {
					b.Fatalf("%d rows, want %d", got, n)
				}
			}
		})
	}
}
