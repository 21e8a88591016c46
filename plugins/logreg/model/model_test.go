package model_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
	"insitu/plugins/logreg/model"
	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/plugintest"
)

// synthetic returns n rows of d features drawn from a logistic model with known weights.
func synthetic(n, d int, seed uint64) *plugintest.Table {
	rng := rand.New(rand.NewPCG(seed, 1))
	tab := &plugintest.Table{BatchRows: 97}
	w := make([]float64, d)
	for j := range d {
		tab.Features = append(tab.Features, fmt.Sprintf("x%d", j+1))
		tab.Columns = append(tab.Columns, make([]float64, n))
		w[j] = rng.NormFloat64()
	}
	for i := range n {
		z := -1.0
		for j := range d {
			v := rng.NormFloat64() * float64(j+1)
			tab.Columns[j][i] = v
			z += w[j] * v / float64(j+1)
		}
		y := 0.0
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			y = 1
		}
		tab.Subjects = append(tab.Subjects, fmt.Sprintf("p_%06d", i))
		tab.Labels = append(tab.Labels, y)
	}
	return tab
}

func rowMajor(tab *plugintest.Table) *mat.Dense {
	n, d := len(tab.Subjects), len(tab.Features)
	X := mat.NewDense(n, d, nil)
	for j, c := range tab.Columns {
		X.SetCol(j, c)
	}
	return X
}

func TestTrainMatchesDirectFit(t *testing.T) {
	tab := synthetic(3000, 5, 7)
	out, err := plugintest.Train(t, model.New(), tab.Request(sdk.MustHyperparameters(map[string]any{"lambda": 2.5})))
	if err != nil {
		t.Fatal(err)
	}
	X := rowMajor(tab)
	direct, err := logreg.Fit(logreg.Problem{X: X, Y: tab.Labels, Lambda: 2.5}, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(out.Weights.Names, ","), "x1,x2,x3,x4,x5"; got != want {
		t.Fatalf("weight names %s, want %s", got, want)
	}
	for j, w := range direct.Weights {
		if d := math.Abs(out.Weights.Values[j] - w); d > 1e-9 {
			t.Errorf("weight %d: plugin %.15g, direct %.15g (diff %.3g)", j, out.Weights.Values[j], w, d)
		}
	}
	if d := math.Abs(out.Weights.Intercept - direct.Intercept); d > 1e-9 {
		t.Errorf("intercept: plugin %.15g, direct %.15g", out.Weights.Intercept, direct.Intercept)
	}
	p := direct.PredictProba(X)
	if len(out.Scores) != len(p) {
		t.Fatalf("%d scores for %d rows", len(out.Scores), len(p))
	}
	for i, s := range out.Scores {
		if s.Subject != tab.Subjects[i] || math.Abs(s.Value-p[i]) > 1e-9 {
			t.Fatalf("score %d: %+v, want %s %.12g", i, s, tab.Subjects[i], p[i])
		}
	}
	sum, err := metrics.Evaluate(tab.Labels, p)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(out.Metrics["auc"]-sum.AUC) > 1e-12 || out.Metrics["rows"] != 3000 || out.Metrics["positives"] != float64(sum.Positives) {
		t.Fatalf("metrics %v, want auc %v over 3000 rows with %d positives", out.Metrics, sum.AUC, sum.Positives)
	}
	if sum.AUC < 0.7 {
		t.Fatalf("AUC %.3f: the generated data should be learnable", sum.AUC)
	}
}

func TestDescribe(t *testing.T) {
	d, err := plugintest.Start(t, model.New()).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "logreg" || d.Family != sdk.FamilyLogisticRegression || d.Mode != sdk.ModePlaintextPublic ||
		!d.Needs.Labels || !d.Declares(sdk.OutputWeights) || !d.Declares(sdk.OutputScores) || d.Declares(sdk.OutputTrees) {
		t.Fatalf("%+v", d)
	}
}

func TestTrainFailures(t *testing.T) {
	tab := synthetic(200, 2, 3)
	cases := []struct {
		name string
		hp   map[string]any
		edit func(*plugintest.Table)
		want string
	}{
		{"misspelt hyperparameter", map[string]any{"lamda": 1}, nil, `unknown field "lamda"`},
		{"negative lambda", map[string]any{"lambda": -1}, nil, "need lambda >= 0"},
		{"one class", nil, func(tb *plugintest.Table) {
			for i := range tb.Labels {
				tb.Labels[i] = 1
			}
		}, "only one class"},
		{"label not 0/1", nil, func(tb *plugintest.Table) { tb.Labels[41] = 2 }, `data row 42: "label": label is 2`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := *tab
			tb.Labels = append([]float64(nil), tab.Labels...)
			if c.edit != nil {
				c.edit(&tb)
			}
			_, err := plugintest.Train(t, model.New(), tb.Request(sdk.MustHyperparameters(c.hp)))
			if !errors.Is(err, host.ErrPluginFailed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrPluginFailed mentioning %q", err, c.want)
			}
		})
	}
}
