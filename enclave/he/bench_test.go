package he

import (
	"context"
	"fmt"
	"testing"
)

// Measured on a shared 2-vCPU machine, Go 1.26, with
//
//	go test ./enclave/he -run XXX -bench . -benchtime 3x
//
// at logN=14, 7 levels: key generation 1.18 s (standard ring) / 1.24 s (real-only); encrypting the
// 24,000 × 23 cohort with labels 2.0 s, 72 ciphertexts, 144 MiB (standard) / 0.79 s, 48 ciphertexts,
// 96 MiB (real-only); a refresh 13 / 28 ms from level 0 / 7 (standard), 23 / 35 ms (real-only).

func benchLiterals() []Literal {
	real := DefaultLiteral
	real.RealOnly = !DefaultLiteral.RealOnly
	return []Literal{DefaultLiteral, real}
}

func benchName(l Literal) string {
	return fmt.Sprintf("logN=%d/levels=%d/real=%v", l.LogN, len(l.LogQ)-1, l.RealOnly)
}

func BenchmarkNewJobKeys(b *testing.B) {
	for _, l := range benchLiterals() {
		p, err := NewParameters(l)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(benchName(l), func(b *testing.B) {
			for b.Loop() {
				if _, err := NewJobKeys(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBatches encrypts a cohort of 24,000 samples × 23 features and labels (the Taiwan
// default-credit training split's shape); the bytes are the cohort's float64 values.
func BenchmarkBatches(b *testing.B) {
	const n, d = 24000, 23
	c := testCohort(n, d, 1)
	for _, l := range benchLiterals() {
		k := testKeys(b, l)
		b.Run(benchName(l)+fmt.Sprintf("/rows=%d/features=%d", n, d), func(b *testing.B) {
			b.SetBytes(int64(n * (d + 1) * 8))
			cts, ctBytes := 0, 0
			for b.Loop() {
				rr, err := k.Batches(context.Background(), c)
				if err != nil {
					b.Fatal(err)
				}
				for rr.Next() {
					cts++
					ctBytes += len(rr.Record().Column(3).Data().Buffers()[2].Bytes())
				}
				if err := rr.Err(); err != nil {
					b.Fatal(err)
				}
				rr.Release()
			}
			b.ReportMetric(float64(cts)/float64(b.N), "ciphertexts/op")
			b.ReportMetric(float64(ctBytes)/float64(b.N)/(1<<20), "MiB-out/op")
		})
	}
}

func BenchmarkRefresh(b *testing.B) {
	for _, l := range benchLiterals() {
		k := testKeys(b, l)
		for _, level := range []int{0, k.params.MaxLevel()} {
			ct := marshal(b, encryptAt(b, k, []float64{0.5, -0.25}, level))
			r := k.NewRefresher(1 << 30)
			b.Run(benchName(l)+fmt.Sprintf("/level=%d", level), func(b *testing.B) {
				for b.Loop() {
					if _, err := r.Refresh(context.Background(), ct); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
