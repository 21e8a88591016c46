package gbdt

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/metrics"
)

// The public credit data sets of ../shared/data (see its README). INSITU_DATA overrides the folder.
func dataDir() string {
	if d := os.Getenv("INSITU_DATA"); d != "" {
		return d
	}
	return "../../../shared/data"
}

type dataset struct {
	names    []string
	xtr, xte *mat.Dense
	ytr, yte []float64
}

// loadPublic reads "taiwan" (UCI_Credit_Card.csv) or "gmsc" (cs-training.csv.gz) and splits it as
// ../shared/baselines/plaintext.py does: a row is test data when its id % 5 == 0. "NA" is missing.
func loadPublic(tb testing.TB, name string) dataset {
	var path string
	var idCol, yCol int
	switch name {
	case "taiwan":
		path, idCol, yCol = filepath.Join(dataDir(), "default_credit/UCI_Credit_Card.csv"), 0, 24
	case "gmsc":
		path, idCol, yCol = filepath.Join(dataDir(), "give_me_some_credit/cs-training.csv.gz"), 0, 1
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("public data not present at %s (set INSITU_DATA to the shared data folder)", path)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		if r, err = gzip.NewReader(r); err != nil {
			tb.Fatal(err)
		}
	}
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	header := recs[0]
	var d dataset
	var feat []int
	for j, h := range header {
		if j != idCol && j != yCol {
			feat = append(feat, j)
			d.names = append(d.names, h)
		}
	}
	var tr, te []float64
	for k, rec := range recs[1:] {
		id, err := strconv.Atoi(rec[idCol])
		if err != nil {
			tb.Fatalf("%s row %d: id %q", path, k+1, rec[idCol])
		}
		row := make([]float64, len(feat))
		for c, j := range feat {
			if rec[j] == "NA" {
				row[c] = math.NaN()
			} else if row[c], err = strconv.ParseFloat(rec[j], 64); err != nil {
				tb.Fatalf("%s row %d column %s: %v", path, k+1, header[j], err)
			}
		}
		y, err := strconv.ParseFloat(rec[yCol], 64)
		if err != nil {
			tb.Fatal(err)
		}
		if id%5 == 0 {
			te, d.yte = append(te, row...), append(d.yte, y)
		} else {
			tr, d.ytr = append(tr, row...), append(d.ytr, y)
		}
	}
	d.xtr = mat.NewDense(len(d.ytr), len(feat), tr)
	d.xte = mat.NewDense(len(d.yte), len(feat), te)
	return d
}

// peakRSSMiB reads the process's peak resident set size (VmHWM) from /proc, or NaN elsewhere.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return math.NaN()
}

// simulatedNoiseProvider is a simulation of the enclave's noise for benchmarks only: it adds
// floating-point Gaussian noise N(0, σ²) from a fixed seed to every cell and total of the exact
// histograms. It is not a privacy mechanism (the enclave samples discrete noise from crypto/rand).
type simulatedNoiseProvider struct {
	*Exact
	sigma float64
	rng   *rand.Rand
}

func (s *simulatedNoiseProvider) Histograms(ctx context.Context, nodes []NodeRequest) ([]Histogram, error) {
	hs, err := s.Exact.Histograms(ctx, nodes)
	if err != nil {
		return nil, err
	}
	out := make([]Histogram, len(hs))
	for k, h := range hs {
		n := Histogram{SumG: h.SumG + s.sigma*s.rng.NormFloat64(), SumH: h.SumH + s.sigma*s.rng.NormFloat64()}
		for f := range h.G {
			g, hh := make([]float64, len(h.G[f])), make([]float64, len(h.H[f]))
			for b := range g {
				g[b] = h.G[f][b] + s.sigma*s.rng.NormFloat64()
				hh[b] = h.H[f][b] + s.sigma*s.rng.NormFloat64()
			}
			n.G, n.H = append(n.G, g), append(n.H, hh)
		}
		out[k] = n
	}
	return out, nil
}

// Goals of issue 6 without noise: Taiwan AUC >= 0.782 (xgboost hist 0.7867), Give Me Some Credit
// >= 0.858 (xgboost 0.8619), both with xgboost's settings: 200 trees, depth 4, η 0.1, 256 bins.
var publicGoal = map[string]float64{"taiwan": 0.782, "gmsc": 0.858}

func fitPublic(tb testing.TB, d dataset, o Options, p Provider) (*Model, float64) {
	m, err := Train(context.Background(), p, nil, o)
	if err != nil {
		tb.Fatal(err)
	}
	auc, err := metrics.AUC(d.yte, m.PredictProba(d.xte))
	if err != nil {
		tb.Fatal(err)
	}
	return m, auc
}

func xgbOptions() Options {
	o := DefaultOptions()
	o.NumTrees, o.MaxDepth, o.LearningRate = 200, 4, 0.1
	return o
}

// BenchmarkPublic trains on the public data with xgboost's baseline settings and reports the test
// AUC, the fit time and the process's peak RSS. Run once:
//
//	go test ./modeling/gbdt -run '^$' -bench 'Public' -benchtime 1x
func BenchmarkPublic(b *testing.B) {
	for _, name := range []string{"taiwan", "gmsc"} {
		b.Run("data="+name+"_trees=200_depth=4_eta=0.1_bins=256", func(b *testing.B) {
			d := loadPublic(b, name)
			cuts := QuantileCuts(d.xtr, d.names, 256)
			var auc float64
			var fit time.Duration
			for b.Loop() {
				start := time.Now()
				p, err := NewExact(d.xtr, d.ytr, cuts)
				if err != nil {
					b.Fatal(err)
				}
				_, auc = fitPublic(b, d, xgbOptions(), p)
				fit = time.Since(start)
			}
			b.ReportMetric(auc, "auc")
			b.ReportMetric(fit.Seconds(), "fit-s")
			b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
			if auc < publicGoal[name] {
				b.Errorf("%s: test AUC %.4f below the goal %.3f", name, auc, publicGoal[name])
			}
		})
	}
}

// noiseConfig is one training configuration of BenchmarkNoise.
type noiseConfig struct {
	name               string
	bins, trees, depth int
	eta                float64
}

// BenchmarkNoise fits the same models from histograms with simulated Gaussian noise of standard
// deviation sigma on every g and h cell and total (simulatedNoiseProvider), to show how AUC degrades.
// With noise, lambda and min child weight grow with sigma (λ = max(1, σ), min child weight =
// max(1, 2σ)) so that splits resting on noise-dominated Hessian sums are not made. Two
// configurations: xgboost's baseline (256 bins, 200 trees of depth 4, η 0.1) and one with fewer
// queries (32 bins, 50 trees of depth 3, η 0.3), since every bin and every tree adds noise. Run once:
//
//	go test ./modeling/gbdt -run '^$' -bench 'Noise' -benchtime 1x
func BenchmarkNoise(b *testing.B) {
	configs := []noiseConfig{{"bins=256_trees=200_depth=4_eta=0.1", 256, 200, 4, 0.1}, {"bins=32_trees=50_depth=3_eta=0.3", 32, 50, 3, 0.3}}
	for _, name := range []string{"taiwan", "gmsc"} {
		for _, c := range configs {
			for _, sigma := range []float64{0, 1, 5, 20, 50} {
				b.Run("data="+name+"_"+c.name+"_sigma="+strconv.FormatFloat(sigma, 'g', -1, 64), func(b *testing.B) {
					d := loadPublic(b, name)
					cuts := QuantileCuts(d.xtr, d.names, c.bins)
					var auc float64
					for b.Loop() {
						ex, err := NewExact(d.xtr, d.ytr, cuts)
						if err != nil {
							b.Fatal(err)
						}
						o := DefaultOptions()
						o.NumTrees, o.MaxDepth, o.LearningRate = c.trees, c.depth, c.eta
						o.Lambda, o.MinChildWeight = max(1, sigma), max(1, 2*sigma)
						_, auc = fitPublic(b, d, o, &simulatedNoiseProvider{Exact: ex, sigma: sigma, rng: rand.New(rand.NewPCG(1, 2))})
					}
					b.ReportMetric(auc, "auc")
				})
			}
		}
	}
}
