package dataset

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/ident"
)

// benchSource is a generated enterprise CSV with its mapping, made once per size and shared by the
// benchmark's runs.
type benchSource struct {
	spec  string
	bytes int64
}

var (
	benchMu      sync.Mutex
	benchSources = map[string]*benchSource{}
)

// The first 12 columns map onto catalog fields; a wide source adds custom fields.
var benchCatalogColumns = []string{
	"tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m",
	"tax_arrears_history.latest_arrears_date", "tax_arrears_history.arrears_outstanding",
	"tax_arrears_history.outstanding_arrears_amount", "tax_arrears_history.max_arrears_days_24m",
	"tax_arrears_history.tax_credit_grade",
	"dishonest_judgment_debtors.is_listed", "dishonest_judgment_debtors.case_count",
	"dishonest_judgment_debtors.amount_outstanding", "dishonest_judgment_debtors.first_listed_date",
	"dishonest_judgment_debtors.consumption_restricted",
}

// benchValue writes a plausible value for column j of a row.
func benchValue(buf []byte, rng *rand.Rand, j int) []byte {
	switch j % 12 {
	case 0, 4, 9: // amounts in CNY, some missing
		if rng.IntN(5) == 0 {
			return buf
		}
		return strconv.AppendFloat(buf, float64(rng.IntN(50_000_000))/100, 'f', 2, 64)
	case 1, 5, 8: // counts and days
		return strconv.AppendInt(buf, int64(rng.IntN(40)), 10)
	case 2, 10: // dates
		return fmt.Appendf(buf, "20%02d-%02d-%02d", 15+rng.IntN(10), 1+rng.IntN(12), 1+rng.IntN(28))
	case 3, 7, 11: // flags
		return append(buf, "01"[rng.IntN(2)])
	default: // grade
		return append(buf, "ABMCD"[rng.IntN(5)])
	}
}

func benchFieldType(j int) string {
	switch j % 12 {
	case 0, 4, 9:
		return "float"
	case 1, 5, 8:
		return "int"
	case 2, 10:
		return "date"
	case 3, 7, 11:
		return "bool"
	default:
		return "enum\n    values: [A, B, M, C, D]"
	}
}

func makeBenchSource(b *testing.B, rows, cols int) *benchSource {
	key := fmt.Sprintf("%d/%d", rows, cols)
	benchMu.Lock()
	defer benchMu.Unlock()
	if s := benchSources[key]; s != nil {
		return s
	}
	dir, err := os.MkdirTemp("", "insitu-bench-*")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		benchMu.Lock()
		delete(benchSources, key)
		benchMu.Unlock()
		os.RemoveAll(dir)
	})
	f, err := os.Create(filepath.Join(dir, "enterprises.csv"))
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("credit_code")
	for j := range cols {
		fmt.Fprintf(w, ",c%02d", j)
	}
	w.WriteByte('\n')
	rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
	seen := make(map[string]struct{}, rows)
	line := make([]byte, 0, 512)
	for len(seen) < rows {
		code := ident.NewUSCC(rng, "330106")
		if _, dup := seen[code]; dup {
			continue
		}
		seen[code] = struct{}{}
		line = append(line[:0], code...)
		for j := range cols {
			line = append(line, ',')
			line = benchValue(line, rng, j)
		}
		line = append(line, '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()

	var m []byte
	m = fmt.Appendf(m, "source: enterprises\nprovider: bench_provider\nformat: csv\npath: enterprises.csv\n"+
		"subject: {column: credit_code, kind: uscc}\ncolumns:\n")
	for j := range cols {
		field := ""
		if j < len(benchCatalogColumns) {
			field = benchCatalogColumns[j]
		} else {
			field = fmt.Sprintf("custom.c%02d", j)
		}
		m = fmt.Appendf(m, "  - {column: c%02d, field: %s}\n", j, field)
	}
	if cols > len(benchCatalogColumns) {
		m = append(m, "custom_fields:\n"...)
		for j := len(benchCatalogColumns); j < cols; j++ {
			m = fmt.Appendf(m, "  - key: c%02d\n    type: %s\n", j, benchFieldType(j))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "enterprises.yaml"), m, 0o600); err != nil {
		b.Fatal(err)
	}
	spec := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(spec, []byte("dataset: bench\nclass: synthetic\nsubject: uscc\nmappings: [enterprises.yaml]\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	s := &benchSource{spec: spec, bytes: st.Size()}
	benchSources[key] = s
	return s
}

// heapSampler records the largest heap in use (objects plus fragmentation) while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan uint64
}

func heapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan uint64)}
	go func() {
		peak := heapInUse()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				h.done <- max(peak, heapInUse())
				return
			case <-t.C:
				peak = max(peak, heapInUse())
			}
		}
	}()
	return h
}

func (h *heapSampler) peak() uint64 { close(h.stop); return <-h.done }

// BenchmarkIngest ingests a generated enterprise CSV (a credit code and cols columns per row) into an
// encrypted dataset. It reports throughput over the CSV's bytes, MB/cpu-s (the same per CPU-second
// used, which other load on the machine does not change) and peak-MB, the largest heap in use during
// the ingest: it grows with the number of subjects (rows), not with the width of a row.
func BenchmarkIngest(b *testing.B) {
	for _, c := range []struct{ rows, cols int }{{100_000, 12}, {1_000_000, 12}, {100_000, 48}} {
		b.Run(fmt.Sprintf("rows=%d/cols=%d", c.rows, c.cols), func(b *testing.B) {
			src := makeBenchSource(b, c.rows, c.cols)
			spec, maps, err := connectors.LoadDatasetSpec(src.spec)
			if err != nil {
				b.Fatal(err)
			}
			s, _ := newTestStore(b)
			b.SetBytes(src.bytes)
			runtime.GC()
			h := startHeapSampler()
			cpu0 := processCPU()
			b.ResetTimer()
			for b.Loop() {
				m, _, err := s.Ingest(context.Background(), spec, maps, IngestOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if m.Subjects != int64(c.rows) {
					b.Fatalf("%d subjects, want %d", m.Subjects, c.rows)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(h.peak())/(1<<20), "peak-MB")
			if cpu := processCPU() - cpu0; cpu > 0 {
				// Throughput per CPU-second does not depend on what else the machine runs.
				b.ReportMetric(float64(src.bytes)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
			}
		})
	}
}
