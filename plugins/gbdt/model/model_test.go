package model

import (
	"context"
	"errors"
	"fmt"
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

// synthetic draws rows with a non-linear risk: an interaction and a threshold.
func synthetic(seed uint64, n int) ([]string, [][]float64, []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	names := []string{"age", "debt", "late"}
	X := make([][]float64, 3)
	y := make([]float64, n)
	for i := range n {
		age, debt, late := 20+50*r.Float64(), r.ExpFloat64()*3, float64(r.IntN(4))
		z := -2 + 1.2*late - 0.04*(age-45) + 0.8*math.Min(debt, 4)*boolf(age < 35)
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y[i] = 1
		}
		X[0], X[1], X[2] = append(X[0], age), append(X[1], debt), append(X[2], late)
	}
	return names, X, y
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func margin(e *sdk.TreeEnsemble, x []float64) float64 {
	z := e.BaseScore
	for _, t := range e.Trees {
		i := 0
		for t.Nodes[i].Feature >= 0 {
			n := t.Nodes[i]
			switch v := x[n.Feature]; {
			case math.IsNaN(v) && n.MissingLeft, !math.IsNaN(v) && v < n.Threshold:
				i = n.Left
			default:
				i = n.Right
			}
		}
		z += t.Nodes[i].Value
	}
	return z
}

func testAUC(t testing.TB, e *sdk.TreeEnsemble, X [][]float64, y []float64) float64 {
	s := make([]float64, len(y))
	x := make([]float64, len(X))
	for i := range y {
		for f := range X {
			x[f] = X[f][i]
		}
		s[i] = margin(e, x)
	}
	auc, err := metrics.AUC(y, s)
	if err != nil {
		t.Fatal(err)
	}
	return auc
}

func TestTrainThroughTransport(t *testing.T) {
	names, X, y := synthetic(1, 20000)
	_, Xt, yt := synthetic(2, 5000)
	fake := aggfake.New(names, X, y, 4, 1e-6, 7)
	hp := sdk.MustHyperparameters(map[string]any{"trees": 20, "depth": 3, "bins": 16})
	out, err := plugintest.Train(t, New(), host.TrainRequest{Mode: sdk.ModeAggregate, Features: names, Label: "y", Subject: "id",
		Hyperparameters: hp, Aggregate: fake})
	if err != nil {
		t.Fatal(err)
	}
	e := out.Trees
	if e == nil || len(e.Trees) != 20 || out.Weights != nil {
		t.Fatalf("output trees %v weights %v", e != nil, out.Weights)
	}
	for _, tr := range e.Trees {
		depth := map[int]int{0: 0}
		for i, n := range tr.Nodes {
			if n.Feature >= 0 {
				depth[n.Left], depth[n.Right] = depth[i]+1, depth[i]+1
			} else if depth[i] > 3 {
				t.Fatalf("a leaf at depth %d", depth[i])
			}
		}
	}
	b, _ := fake.Budget(context.Background())
	if b.RhoSpent > b.Rho*(1+1e-9) || b.RhoSpent < 0.99*b.Rho || fake.Queries != 1+20*3 {
		t.Errorf("spent ρ %v of %v in %d answers, want nearly all in 61", b.RhoSpent, b.Rho, fake.Queries)
	}
	if auc := testAUC(t, e, Xt, yt); auc < 0.75 {
		t.Errorf("test AUC %.4f, want at least 0.75 on this synthetic risk", auc)
	}
}

func TestRefusals(t *testing.T) {
	names, X, y := synthetic(1, 500)
	for _, hp := range []map[string]any{{"trees": 0}, {"bins": 1}, {"learning_rate": 2}, {"edge_share": 1}, {"tres": 3}} {
		_, err := plugintest.Train(t, New(), host.TrainRequest{Mode: sdk.ModeAggregate, Features: names, Label: "y", Subject: "id",
			Hyperparameters: sdk.MustHyperparameters(hp), Aggregate: aggfake.New(names, X, y, 1, 1e-6, 1)})
		if err == nil {
			t.Errorf("hyperparameters %v accepted", hp)
		}
	}
	// A job whose budget is spent trains nothing.
	fake := aggfake.New(names, X, y, 1, 1e-6, 1)
	if _, err := fake.Histogram(context.Background(), sdk.HistogramQuery{Features: []sdk.Bins{{Column: "age", Edges: []float64{30}}}, Rho: fake.Rho()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Fit(context.Background(), fake, names, DefaultHyperparameters()); !errors.Is(err, sdk.ErrInput) {
		t.Errorf("Fit without budget = %v, want ErrInput", err)
	}
}

// BenchmarkPublic trains on the public data through the fake service at several ε with the noisy
// defaults, and without noise (the fake's NoNoise: exact answers, no thresholding, the budget check
// only counting) with ExactHyperparameters, and reports the test AUC, the ε spent and the time. The
// issue's goals: Taiwan AUC >= 0.775 at ε = 8 and >= 0.782 without noise, Give Me Some Credit >=
// 0.850 at ε = 8 and >= 0.858 without noise. The runs at ε > 0 through the enclave's own service
// are enclave's BenchmarkAggregatePublic. Run:
//
//	go test ./plugins/gbdt/model -run '^$' -bench Public -benchtime 1x
func BenchmarkPublic(b *testing.B) {
	for _, set := range []struct {
		name string
		load func(string) (*aggfake.Data, error)
	}{{"taiwan", aggfake.Taiwan}, {"gmsc", aggfake.GMSC}} {
		d, err := set.load(os.Getenv("INSITU_DATA"))
		if errors.Is(err, aggfake.ErrNoData) {
			b.Skip(err)
		}
		if err != nil {
			b.Fatal(err)
		}
		for _, eps := range []float64{1, 2, 4, 8, 0} {
			hp := DefaultHyperparameters()
			if eps == 0 {
				hp = ExactHyperparameters()
			}
			b.Run(fmt.Sprintf("%s/eps=%s/bins=%d/trees=%d/depth=%d", set.name, epsName(eps), hp.Bins, hp.Trees, hp.Depth), func(b *testing.B) {
				for range b.N {
					fake := aggfake.New(d.Names, d.Train, d.TrainY, eps+8*boolf(eps == 0), 1e-6, 11)
					fake.NoNoise = eps == 0
					start := time.Now()
					m, spent, err := Fit(context.Background(), fake, d.Names, hp)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(time.Since(start).Seconds(), "s/fit")
					b.ReportMetric(testAUC(b, Ensemble(m), d.Test, d.TestY), "auc")
					b.ReportMetric(spent, "eps_spent")
				}
			})
		}
	}
}

func epsName(eps float64) string {
	if eps == 0 {
		return "none"
	}
	return string(rune('0' + int(eps)))
}

// TestScreening: with max_features below the job's features, one screening answer picks the
// features the trees split on (the informative ones), gives the base score, and the ensemble still
// names every job feature in order.
func TestScreening(t *testing.T) {
	names, X, y := synthetic(3, 20000)
	// Two pure-noise features after the three informative ones.
	r := rand.New(rand.NewPCG(9, 9))
	for _, n := range []string{"noise1", "noise2"} {
		col := make([]float64, len(y))
		for i := range col {
			col[i] = r.NormFloat64()
		}
		names, X = append(names, n), append(X, col)
	}
	fake := aggfake.New(names, X, y, 8, 1e-6, 3)
	hp := DefaultHyperparameters()
	hp.MaxFeatures, hp.Trees = 3, 6
	m, _, err := Fit(context.Background(), fake, names, hp)
	if err != nil {
		t.Fatal(err)
	}
	if fake.Queries != 2+hp.Trees*hp.Depth {
		t.Errorf("%d answers, want edges, screening and %d levels", fake.Queries, hp.Trees*hp.Depth)
	}
	e := Ensemble(m)
	if len(e.Features) != len(names) || e.Features[4] != "noise2" {
		t.Fatalf("ensemble features %v", e.Features)
	}
	var pos float64
	for _, v := range y {
		pos += v
	}
	if want := math.Log(pos / (float64(len(y)) - pos)); math.Abs(e.BaseScore-want) > 0.05 {
		t.Errorf("base score %v, want the label's log-odds %v", e.BaseScore, want)
	}
	for _, tr := range e.Trees {
		for _, n := range tr.Nodes {
			if n.Feature >= 3 {
				t.Fatalf("a split on %s, a noise feature the screening should have dropped", names[n.Feature])
			}
		}
	}
}
