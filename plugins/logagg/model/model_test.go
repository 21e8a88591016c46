package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/logreg"
	"insitu/plugins/internal/aggfake"
	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/plugintest"
)

func TestNearTheOptimum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c"}
	n := 20000
	X := make([][]float64, 3)
	y := make([]float64, n)
	rows := make([]float64, 0, 3*n)
	for i := range n {
		z := -0.5
		for j, w := range []float64{1.5, -1, 0.3} {
			v := 2*r.Float64() - 1
			X[j] = append(X[j], v)
			rows = append(rows, v)
			z += w * v
		}
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y[i] = 1
		}
	}
	ref, err := logreg.Fit(logreg.Problem{X: mat.NewDense(n, 3, rows), Y: y, Lambda: 1}, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake := aggfake.New(names, X, y, 1, 1e-6, 9)
	out, err := plugintest.Train(t, New(), host.TrainRequest{Mode: sdk.ModeAggregate, Features: names, Label: "y", Subject: "id", Aggregate: fake})
	if err != nil {
		t.Fatal(err)
	}
	var dist, norm float64
	for j, w := range out.Weights.Values {
		dist += (w - ref.Weights[j]) * (w - ref.Weights[j])
		norm += ref.Weights[j] * ref.Weights[j]
	}
	dist += (out.Weights.Intercept - ref.Intercept) * (out.Weights.Intercept - ref.Intercept)
	norm += ref.Intercept * ref.Intercept
	// The gate's default tolerance is a relative distance of 0.6; ε = 1 on 20 000 rows does far better.
	if rel := math.Sqrt(dist / norm); rel > 0.1 {
		t.Errorf("relative distance %.3f to the optimum %v %v, got %v %v", rel, ref.Weights, ref.Intercept, out.Weights.Values, out.Weights.Intercept)
	}
	if b, _ := fake.Budget(context.Background()); b.RhoSpent < 0.99*b.Rho || fake.Queries != 6 {
		t.Errorf("spent ρ %v of %v in %d answers", b.RhoSpent, b.Rho, fake.Queries)
	}
}
