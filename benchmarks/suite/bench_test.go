package suite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/enclave/he"
	"insitu/plugins/helr/model"
	"insitu/plugins/sdk"
)

// BenchmarkEncryptedGradientStep times one iteration of plugins/helr (the polynomial sigmoid of
// the margins, the gradient summed over the slots, the weight update; no refresh is needed after a
// single iteration) on one ciphertext block of rows × features, at the production parameters. Key
// generation and encryption are outside the timer; reading the ciphertexts into the plugin is
// inside, as in a job.
//
//	go test ./benchmarks/suite -run '^$' -bench EncryptedGradientStep -benchtime 3x
func BenchmarkEncryptedGradientStep(b *testing.B) {
	params, err := he.NewParameters(he.DefaultLiteral)
	if err != nil {
		b.Fatal(err)
	}
	const d = 23
	n := params.Slots()
	b.Run(fmt.Sprintf("logN=%d/rows=%d/features=%d/degree=7", params.Literal().LogN, n, d), func(b *testing.B) {
		k, err := he.NewJobKeys(params)
		if err != nil {
			b.Fatal(err)
		}
		defer k.Close()
		r := rand.New(rand.NewPCG(1, 2))
		c := he.Cohort{X: make([][]float64, d), Y: make([]float64, n)}
		for j := range d {
			c.Features = append(c.Features, fmt.Sprintf("x%d", j))
			c.Bounds = append(c.Bounds, [2]float64{-4, 4})
			c.X[j] = make([]float64, n)
			for i := range n {
				c.X[j][i] = math.Max(-4, math.Min(4, r.NormFloat64()))
			}
		}
		for i := range n {
			if r.Float64() < 0.2 {
				c.Y[i] = 1
			}
		}
		ref := k.NewRefresher(0)
		for b.Loop() {
			b.StopTimer()
			rr, err := k.Batches(context.Background(), c)
			if err != nil {
				b.Fatal(err)
			}
			// Encrypt outside the timer: read the whole stream once into memory.
			var recs []arrow.Record
			for rr.Next() {
				rec := rr.Record()
				rec.Retain()
				recs = append(recs, rec)
			}
			schema := rr.Schema()
			rr.Release()
			in, err := array.NewRecordReader(schema, recs)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			_, err = model.New().Train(context.Background(), &sdk.TrainInput{
				Mode: sdk.ModeHE, Rows: in, Features: c.Features, Label: sdk.HELabel, Subject: "subject",
				Hyperparameters: sdk.MustHyperparameters(map[string]any{"iterations": 1}), HE: ref,
				Limits: sdk.DefaultLimits(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			b.StopTimer()
			in.Release()
			for _, r := range recs {
				r.Release()
			}
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
