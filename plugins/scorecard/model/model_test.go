package model

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"insitu/modeling/metrics"
	"insitu/plugins/internal/aggfake"
	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/plugintest"
)

// synthetic draws rows whose risk is monotone in three features, with missing values, and one
// noise feature.
func synthetic(seed uint64, n int) ([]string, [][]float64, []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	names := []string{"age", "util", "late", "noise"}
	X := make([][]float64, 4)
	y := make([]float64, n)
	for i := range n {
		age, util, late, noise := 20+50*r.Float64(), r.Float64()*1.5, float64(r.IntN(5)), r.NormFloat64()
		z := -2.5 + 0.7*late - 0.03*(age-45) + 1.5*math.Min(util, 1)
		if r.Float64() < 0.1 {
			util = math.NaN()
		}
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y[i] = 1
		}
		X[0], X[1], X[2], X[3] = append(X[0], age), append(X[1], util), append(X[2], late), append(X[3], noise)
	}
	return names, X, y
}

func auc(t testing.TB, f *Fitted, X [][]float64, y []float64) float64 {
	s := make([]float64, len(y))
	x := make([]float64, len(X))
	for i := range y {
		for k := range X {
			x[k] = X[k][i]
		}
		s[i] = f.Margin(x)
	}
	a, err := metrics.AUC(y, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestTrainThroughTransport(t *testing.T) {
	names, X, y := synthetic(1, 30000)
	_, Xt, yt := synthetic(2, 10000)
	fake := aggfake.New(names, X, y, 2, 1e-6, 3)
	out, err := plugintest.Train(t, New(), host.TrainRequest{Mode: sdk.ModeAggregate, Features: names, Label: "y", Subject: "id", Aggregate: fake})
	if err != nil {
		t.Fatal(err)
	}
	if out.Trees == nil || out.Weights == nil || len(out.Trees.Trees) != len(out.Weights.Values) {
		t.Fatalf("output %+v", out)
	}
	if names := out.Weights.Names; len(names) != 3 || names[0] != "age" || names[2] != "late" {
		t.Errorf("kept features %v, want age, util, late (noise has no information value)", names)
	}
	for j, tr := range out.Trees.Trees {
		for _, n := range tr.Nodes {
			if n.Feature >= 0 && out.Trees.Features[n.Feature] != out.Weights.Names[j] {
				t.Fatalf("tree %d splits on %s, its coefficient names %s", j, out.Trees.Features[n.Feature], out.Weights.Names[j])
			}
		}
		if out.Weights.Values[j] >= 0 {
			t.Errorf("coefficient of %s is %v: WoE = ln(%%good/%%bad) needs a negative coefficient", out.Weights.Names[j], out.Weights.Values[j])
		}
	}
	b, _ := fake.Budget(context.Background())
	if b.RhoSpent > b.Rho*(1+1e-9) || b.RhoSpent < 0.99*b.Rho {
		t.Errorf("spent ρ %v of %v", b.RhoSpent, b.Rho)
	}
	// Refit outside the transport with the same seed to score the test rows.
	f, err := Fit(context.Background(), aggfake.New(names, X, y, 2, 1e-6, 3), names, DefaultHyperparameters())
	if err != nil {
		t.Fatal(err)
	}
	exact, err := Fit(context.Background(), noNoise(aggfake.New(names, X, y, 2, 1e-6, 3)), names, DefaultHyperparameters())
	if err != nil {
		t.Fatal(err)
	}
	a, ae := auc(t, f, Xt, yt), auc(t, exact, Xt, yt)
	if a < ae-0.01 || ae < 0.7 {
		t.Errorf("test AUC %.4f at ε = 2, %.4f without noise", a, ae)
	}
	t.Logf("test AUC %.4f at ε = 2, %.4f without noise", a, ae)
}

func noNoise(c *aggfake.Client) *aggfake.Client { c.NoNoise = true; return c }

func TestRefusals(t *testing.T) {
	names, X, y := synthetic(1, 500)
	for _, hp := range []map[string]any{{"method": "manual"}, {"max_bins": 1}, {"steps": 0}, {"edge_share": 0.7, "hist_share": 0.4}} {
		_, err := plugintest.Train(t, New(), host.TrainRequest{Mode: sdk.ModeAggregate, Features: names, Label: "y", Subject: "id",
			Hyperparameters: sdk.MustHyperparameters(hp), Aggregate: aggfake.New(names, X, y, 1, 1e-6, 1)})
		if err == nil {
			t.Errorf("hyperparameters %v accepted", hp)
		}
	}
}

// BenchmarkGMSC fits the scorecard on Give Me Some Credit through the fake service at several ε (and
// without noise) and reports the test AUC and the ε spent. The goal: AUC >= 0.85 at ε = 2.
//
//	go test ./plugins/scorecard/model -run '^$' -bench GMSC -benchtime 1x
func BenchmarkGMSC(b *testing.B) {
	d, err := aggfake.GMSC(os.Getenv("INSITU_DATA"))
	if errors.Is(err, aggfake.ErrNoData) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, eps := range []float64{1, 2, 4, 8, 0} {
		name := "eps=none"
		if eps > 0 {
			name = "eps=" + string(rune('0'+int(eps)))
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				fake := aggfake.New(d.Names, d.Train, d.TrainY, eps+2*boolf(eps == 0), 1e-6, 5)
				fake.NoNoise = eps == 0
				start := time.Now()
				f, err := Fit(context.Background(), fake, d.Names, DefaultHyperparameters())
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "s/fit")
				b.ReportMetric(auc(b, f, d.Test, d.TestY), "auc")
				b.ReportMetric(f.EpsilonSpent, "eps_spent")
				b.ReportMetric(float64(len(f.Bins)), "features")
			}
		})
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
