package gbdt

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/metrics"
)

type xgbFixture struct {
	X    [][]*float64 `json:"x"`
	Y    []float64    `json:"y"`
	Runs []struct {
		Params struct {
			NEstimators    int     `json:"n_estimators"`
			MaxDepth       int     `json:"max_depth"`
			LearningRate   float64 `json:"learning_rate"`
			RegLambda      float64 `json:"reg_lambda"`
			MinChildWeight float64 `json:"min_child_weight"`
			Gamma          float64 `json:"gamma"`
		}
		Margin []float64
	}
}

func loadFixture(t testing.TB) (*mat.Dense, []float64, xgbFixture) {
	b, err := os.ReadFile("testdata/xgboost.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx xgbFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	X := mat.NewDense(len(fx.X), len(fx.X[0]), nil)
	for i, row := range fx.X {
		for j, v := range row {
			if v == nil {
				X.Set(i, j, math.NaN())
			} else {
				X.Set(i, j, *v)
			}
		}
	}
	return X, fx.Y, fx
}

func TestAgainstXGBoost(t *testing.T) {
	X, y, fx := loadFixture(t)
	cuts := QuantileCuts(X, []string{"x0", "x1", "x2"}, 256)
	for k, run := range fx.Runs {
		p, err := NewExact(X, y, cuts)
		if err != nil {
			t.Fatal(err)
		}
		o := DefaultOptions()
		o.NumTrees, o.MaxDepth, o.LearningRate = run.Params.NEstimators, run.Params.MaxDepth, run.Params.LearningRate
		o.Lambda, o.MinChildWeight, o.Gamma = run.Params.RegLambda, run.Params.MinChildWeight, run.Params.Gamma
		m, err := Train(context.Background(), p, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		row := make([]float64, 3)
		for i := range y {
			mat.Row(row, i, X)
			worst = max(worst, math.Abs(m.Margin(row)-run.Margin[i]))
		}
		t.Logf("run %d: largest margin difference from xgboost %.2g", k, worst)
		// xgboost computes in float32.
		if worst > 2e-5 {
			t.Errorf("run %d: margins differ from xgboost by up to %v", k, worst)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("run %d: trained model does not validate: %v", k, err)
		}
		if d, _ := m.Stats(); d > o.MaxDepth {
			t.Errorf("run %d: depth %d > %d", k, d, o.MaxDepth)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	X, y, _ := loadFixture(t)
	p, err := NewExact(X, y, QuantileCuts(X, []string{"x0", "x1", "x2"}, 256))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.NumTrees = 3
	m, err := Train(context.Background(), p, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseModel(b)
	if err != nil {
		t.Fatal(err)
	}
	a, c := m.PredictProba(X), back.PredictProba(X)
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("row %d: %v after round trip, %v before", i, c[i], a[i])
		}
	}
}

func TestParseModelRejects(t *testing.T) {
	good := `{"feature_names":["a"],"edges":[[1,2]],"base_score":0,"trees":[{"nodes":[{"feature":0,"bin":1,"threshold":2,"left":1,"right":2,"value":0},{"feature":-1,"value":0.5},{"feature":-1,"value":-0.5}]}]}`
	m, err := ParseModel([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.Margin([]float64{2}) != 0.5 || m.Margin([]float64{2.5}) != -0.5 || m.Margin([]float64{math.NaN()}) != -0.5 {
		t.Errorf("routing: threshold is upper-inclusive, missing goes right by default")
	}
	bad := map[string]string{
		"threshold-not-an-edge": `{"feature_names":["a"],"edges":[[1,2]],"base_score":0,"trees":[{"nodes":[{"feature":0,"bin":1,"threshold":1.5,"left":1,"right":2},{"feature":-1},{"feature":-1}]}]}`,
		"cycle":                 `{"feature_names":["a"],"edges":[[1,2]],"base_score":0,"trees":[{"nodes":[{"feature":0,"bin":0,"threshold":1,"left":0,"right":1},{"feature":-1}]}]}`,
		"orphan":                `{"feature_names":["a"],"edges":[[1]],"base_score":0,"trees":[{"nodes":[{"feature":-1},{"feature":-1}]}]}`,
		"shared-child":          `{"feature_names":["a"],"edges":[[1]],"base_score":0,"trees":[{"nodes":[{"feature":0,"bin":0,"threshold":1,"left":1,"right":1},{"feature":-1}]}]}`,
		"edges-descending":      `{"feature_names":["a"],"edges":[[2,1]],"base_score":0,"trees":[]}`,
		"names-edges":           `{"feature_names":["a","b"],"edges":[[1]],"base_score":0,"trees":[]}`,
		"unknown-field":         `{"feature_names":[],"edges":[],"base_score":0,"trees":[],"x":1}`,
		"feature-range":         `{"feature_names":["a"],"edges":[[1]],"base_score":0,"trees":[{"nodes":[{"feature":3,"bin":0,"threshold":1,"left":1,"right":2},{"feature":-1},{"feature":-1}]}]}`,
		"empty-tree":            `{"feature_names":["a"],"edges":[[1]],"base_score":0,"trees":[{"nodes":[]}]}`,
	}
	for name, s := range bad {
		if _, err := ParseModel([]byte(s)); !errors.Is(err, ErrModel) && !errors.Is(err, ErrCuts) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseModel(f *testing.F) {
	f.Add([]byte(`{"feature_names":["a"],"edges":[[1,2]],"base_score":0,"trees":[{"nodes":[{"feature":0,"bin":1,"threshold":2,"left":1,"right":2,"value":0},{"feature":-1,"value":0.5},{"feature":-1,"value":-0.5}]}]}`))
	if b, err := os.ReadFile("testdata/fuzz_seed_model.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseModel(b)
		if err != nil {
			return
		}
		// A model that parses must predict without panicking or looping, on any row.
		x := make([]float64, len(m.FeatureNames))
		for _, v := range []float64{math.NaN(), -1e300, 0, 1e300} {
			for i := range x {
				x[i] = v
			}
			if s := m.Score(x); math.IsNaN(s) {
				t.Fatalf("score NaN")
			}
		}
		d, l := m.Stats()
		if d < 0 || l < 0 {
			t.Fatal("stats")
		}
	})
}

func TestEarlyStoppingAndLimits(t *testing.T) {
	X, y, _ := loadFixture(t)
	cuts := QuantileCuts(X, []string{"x0", "x1", "x2"}, 256)
	n, _ := X.Dims()
	tr, va := X.Slice(0, 200, 0, 3), X.Slice(200, n, 0, 3)
	p, err := NewExact(tr, y[:200], cuts)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.NumTrees, o.LearningRate, o.EarlyStoppingRounds, o.MaxLeaves, o.Subsample, o.Seed = 300, 0.5, 5, 3, 0.8, 9
	o.PriorBaseScore = true
	m, err := Train(context.Background(), p, NewExactValidator(va, y[200:]), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Trees) >= 300 || len(m.ValidLoss) != len(m.Trees)+5 {
		t.Errorf("%d trees kept, %d losses recorded: early stopping did not stop 5 rounds after the best", len(m.Trees), len(m.ValidLoss))
	}
	best := m.ValidLoss[len(m.Trees)-1]
	for _, l := range m.ValidLoss {
		if l < best {
			t.Errorf("kept round has loss %v but %v was seen", best, l)
		}
	}
	if _, leaves := m.Stats(); leaves > 3 {
		t.Errorf("%d leaves > MaxLeaves 3", leaves)
	}
	var pos float64
	for _, v := range y[:200] {
		pos += v
	}
	if want := math.Log(pos / (200 - pos)); math.Abs(m.BaseScore-want) > 1e-9 {
		t.Errorf("prior base score %v, want %v", m.BaseScore, want)
	}
	auc, err := metrics.AUC(y[200:], m.PredictProba(va))
	if err != nil || auc < 0.7 {
		t.Errorf("validation AUC %v (%v)", auc, err)
	}
}

// badProvider answers with the wrong shape.
type badProvider struct{ *Exact }

func (b badProvider) Histograms(ctx context.Context, n []NodeRequest) ([]Histogram, error) {
	h, err := b.Exact.Histograms(ctx, n)
	h[0].G[0] = h[0].G[0][:1]
	return h, err
}

func TestOptionAndProviderErrors(t *testing.T) {
	X, y, _ := loadFixture(t)
	p, _ := NewExact(X, y, QuantileCuts(X, []string{"x0", "x1", "x2"}, 256))
	for _, mod := range []func(*Options){
		func(o *Options) { o.NumTrees = 0 }, func(o *Options) { o.MaxDepth = 0 }, func(o *Options) { o.LearningRate = 0 },
		func(o *Options) { o.Lambda = -1 }, func(o *Options) { o.Subsample = 1.5 }, func(o *Options) { o.EarlyStoppingRounds = 3 },
	} {
		o := DefaultOptions()
		mod(&o)
		if _, err := Train(context.Background(), p, nil, o); !errors.Is(err, ErrOptions) {
			t.Errorf("options %+v: %v", o, err)
		}
	}
	if _, err := Train(context.Background(), badProvider{p}, nil, DefaultOptions()); !errors.Is(err, ErrProvider) {
		t.Errorf("bad provider: %v", err)
	}
	if _, err := NewExact(X, make([]float64, len(y)-0), Cuts{Names: []string{"a", "b", "c"}, Edges: [][]float64{{2, 1}, nil, nil}}); !errors.Is(err, ErrCuts) {
		t.Errorf("descending cuts: %v", err)
	}
}

// Noisy sums (negative Hessians included) must still give a valid model with finite leaves that
// split only at declared edges.
func TestTrainOnNoisyHistograms(t *testing.T) {
	X, y, _ := loadFixture(t)
	ex, err := NewExact(X, y, QuantileCuts(X, []string{"x0", "x1", "x2"}, 256))
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.NumTrees, o.MinChildWeight = 20, 0
	m, err := Train(context.Background(), &simulatedNoiseProvider{Exact: ex, sigma: 5, rng: rand.New(rand.NewPCG(3, 3))}, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if d, _ := m.Stats(); d > o.MaxDepth {
		t.Errorf("depth %d", d)
	}
}
