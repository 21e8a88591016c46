package enclave

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"insitu/enclave/aggregate"
	"insitu/enclave/audit"
	"insitu/enclave/keys"
	"insitu/enclave/store"
	"insitu/modeling/features"
	"insitu/modeling/metrics"
	gbdtmodel "insitu/plugins/gbdt/model"
	scmodel "insitu/plugins/scorecard/model"
)

// publicSplit is a public benchmark data set split as ../shared/baselines/plaintext.py splits it:
// rows whose id % 5 == 0 are the test rows. Columns are column-major, NaN where the file says NA.
type publicSplit struct {
	names         []string
	train, test   [][]float64
	trainY, testY []float64
}

// errNoPublicData: the shared data folder is not where loadPublic looks (INSITU_DATA, or
// ../../shared/data from the package folder).
var errNoPublicData = errors.New("public benchmark data not present: set INSITU_DATA to the shared data folder")

// loadPublic reads a CSV whose column 0 is the id, features start at column first, and the label
// is at column label (features run to the end when label < first, and stop before it otherwise).
func loadPublic(rel string, first, label int) (*publicSplit, error) {
	dir := os.Getenv("INSITU_DATA")
	if dir == "" {
		dir = "../../shared/data"
	}
	path := filepath.Join(dir, rel)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errNoPublicData, path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if filepath.Ext(path) == ".gz" {
		if r, err = gzip.NewReader(r); err != nil {
			return nil, err
		}
	}
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	end := len(recs[0])
	if label > first {
		end = label
	}
	d := &publicSplit{names: recs[0][first:end]}
	d.train, d.test = make([][]float64, len(d.names)), make([][]float64, len(d.names))
	for k, rec := range recs[1:] {
		id, err := strconv.Atoi(rec[0])
		if err != nil {
			return nil, fmt.Errorf("%s row %d: id %q", path, k+1, rec[0])
		}
		y, err := strconv.ParseFloat(rec[label], 64)
		if err != nil {
			return nil, fmt.Errorf("%s row %d: label %q", path, k+1, rec[label])
		}
		cols := &d.train
		if id%5 == 0 {
			cols, d.testY = &d.test, append(d.testY, y)
		} else {
			d.trainY = append(d.trainY, y)
		}
		for j, s := range rec[first:end] {
			v := math.NaN()
			if s != "NA" {
				if v, err = strconv.ParseFloat(s, 64); err != nil {
					return nil, fmt.Errorf("%s row %d column %s: %v", path, k+1, d.names[j], err)
				}
			}
			(*cols)[j] = append((*cols)[j], v)
		}
	}
	return d, nil
}

// publicSets are the benchmark data sets.
var publicSets = []struct {
	name        string
	rel         string
	first, last int
}{
	{"taiwan", "default_credit/UCI_Credit_Card.csv", 1, 24},
	{"gmsc", "give_me_some_credit/cs-training.csv.gz", 2, 1},
}

// publicService is the enclave's aggregate service over the training rows of d for one job that may
// spend eps, with a ledger of its own (the bank's total set high enough not to bind).
func publicService(tb testing.TB, d *publicSplit, eps float64) *aggregate.Service {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(tb.TempDir(), "state.db"), audit.Migrations, aggregate.Migrations)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	id, err := keys.NewIdentity(keys.RoleEnclave, "bench-enclave")
	if err != nil {
		tb.Fatal(err)
	}
	led := aggregate.NewLedger(db, audit.New(db, id, audit.Options{}))
	if err := led.SetBudget(ctx, "bench", "bank", "public", 1000); err != nil {
		tb.Fatal(err)
	}
	bounds := make([]features.Interval, len(d.names))
	for j := range bounds {
		bounds[j] = features.Interval{Low: math.Inf(-1), High: math.Inf(1)}
	}
	svc, err := aggregate.NewService(ctx, aggregate.Config{Ledger: led, Job: "bench-job", Bank: "bank", Dataset: "public", Epsilon: eps,
		Cohort: aggregate.Cohort{Features: d.names, Bounds: bounds, X: d.train, Y: d.trainY}})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

// maxRSSMB is the process's peak resident memory so far, in MiB.
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Maxrss) / 1024
}

// BenchmarkAggregatePublic trains the reference scorecard and GBDT plugins' models on the public
// benchmark data through the enclave's aggregate service in-process (exact discrete Gaussian noise
// from crypto/rand, thresholding, the ledger) at each ε, and reports the held-out AUC, the ε spent,
// the time of one fit and the process's peak RSS. The goals: scorecard on Give Me Some
// Credit AUC >= 0.85 at ε = 2; GBDT Taiwan >= 0.775 and Give Me Some Credit >= 0.850 at ε = 8. Run:
//
//	INSITU_DATA=../../shared/data go test ./enclave -run '^$' -bench AggregatePublic -benchtime 1x
func BenchmarkAggregatePublic(b *testing.B) {
	for _, set := range publicSets {
		d, err := loadPublic(set.rel, set.first, set.last)
		if errors.Is(err, errNoPublicData) {
			b.Skip(err)
		}
		if err != nil {
			b.Fatal(err)
		}
		for _, model := range []string{"scorecard", "gbdt"} {
			for _, eps := range []float64{1, 2, 4, 8} {
				b.Run(fmt.Sprintf("%s/%s/eps=%g", model, set.name, eps), func(b *testing.B) {
					for range b.N {
						svc := publicService(b, d, eps)
						ctx := context.Background()
						start := time.Now()
						var score func(x []float64) float64
						var spent float64
						switch model {
						case "scorecard":
							f, err := scmodel.Fit(ctx, svc, d.names, scmodel.DefaultHyperparameters())
							if err != nil {
								b.Fatal(err)
							}
							score, spent = f.Margin, f.EpsilonSpent
						case "gbdt":
							m, s, err := gbdtmodel.Fit(ctx, svc, d.names, gbdtmodel.DefaultHyperparameters())
							if err != nil {
								b.Fatal(err)
							}
							score, spent = m.Margin, s
						}
						b.ReportMetric(time.Since(start).Seconds(), "s/fit")
						b.ReportMetric(publicAUC(b, d, score), "auc")
						b.ReportMetric(spent, "eps_spent")
						b.ReportMetric(maxRSSMB(), "peak_MiB")
					}
				})
			}
		}
	}
}

// publicAUC is the AUC of score on d's test rows.
func publicAUC(tb testing.TB, d *publicSplit, score func([]float64) float64) float64 {
	s := make([]float64, len(d.testY))
	x := make([]float64, len(d.test))
	for i := range s {
		for j := range x {
			x[j] = d.test[j][i]
		}
		s[i] = score(x)
	}
	auc, err := metrics.AUC(d.testY, s)
	if err != nil {
		tb.Fatal(err)
	}
	return auc
}
