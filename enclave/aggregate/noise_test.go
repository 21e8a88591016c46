package aggregate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/gbdt"
	"insitu/plugins/sdk"
)

// TestDifferencingAttack asks the same sum over two cohorts that differ by one subject whose value
// is the largest the bounds allow. The difference of the answers is that value plus noise; over
// many seeded trials its spread must be the stated σ·√2, so one pair of answers tells the value only
// up to that noise.
func TestDifferencingAttack(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	if err := l.SetBudget(ctx, "steward", "bank-a", "ds", 1e6); err != nil {
		t.Fatal(err)
	}
	with := testCohort(300)
	with.X[0][0] = 10 // the subject: x.a at its bound
	without := Cohort{Features: with.Features, Bounds: with.Bounds,
		X: [][]float64{with.X[0][1:], with.X[1][1:]}, Y: with.Y[1:]}
	const trials, rho = 300, 0.5
	q := sdk.AggregateQuery{Statistic: sdk.StatSum, Column: "x.a", Rho: rho}
	var sum, sum2 float64
	for i := range trials {
		a, err := newService(t, l, fmt.Sprintf("with-%d", i), 8, with, byte(2*i)).Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		b, err := newService(t, l, fmt.Sprintf("without-%d", i), 8, without, byte(2*i+1)).Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		d := a.Cells[0].Value - b.Cells[0].Value
		sum += d
		sum2 += d * d
	}
	mean := sum / trials
	sd := math.Sqrt(sum2/trials - mean*mean)
	// The sum's part of the budget is ρ/2 and its sensitivity the bound 10: σ = 10/√(2·ρ/2) = 10.
	sigma := 10 / math.Sqrt(2*rho/2)
	if math.Abs(sd-sigma*math.Sqrt2) > 0.1*sigma*math.Sqrt2 {
		t.Fatalf("the differences spread with sd %.3f, want σ√2 = %.3f", sd, sigma*math.Sqrt2)
	}
	if math.Abs(mean-10) > 4*sigma*math.Sqrt2/math.Sqrt(trials) {
		t.Fatalf("mean difference %.3f, want the subject's 10 within the noise", mean)
	}
	// One difference cannot tell 10 from 0 beyond the noise: the noise's sd exceeds the value.
	if sd < 10 {
		t.Fatalf("sd %.3f does not dominate the subject's value", sd)
	}
}

// TestCountNoiseScale checks the stated σ of a histogram's counts: √F/√(2ρ) with F features.
func TestCountNoiseScale(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	if err := l.SetBudget(ctx, "steward", "bank-a", "ds", 1e6); err != nil {
		t.Fatal(err)
	}
	c := testCohort(1000)
	exact := [2]float64{}
	for _, x := range c.X[0] {
		exact[btoi(x > 5)]++
	}
	const rho = 0.02 // σ = √2/√0.04 ≈ 7.07 for two features
	var sum2 float64
	n := 0
	for i := range 60 {
		a, err := newService(t, l, fmt.Sprintf("j%d", i), 8, c, byte(i)).Histogram(ctx, sdk.HistogramQuery{
			Features: []sdk.Bins{{Column: "x.a", Edges: []float64{5}}, {Column: "x.b", Edges: []float64{0.5}}}, Rho: rho})
		if err != nil {
			t.Fatal(err)
		}
		for b := range 2 {
			d := a.Features[0].Counts[0][b] - exact[b]
			sum2 += d * d
			n++
		}
	}
	want := math.Sqrt(2 / (2 * rho))
	if got := math.Sqrt(sum2 / float64(n)); math.Abs(got-want) > 0.15*want {
		t.Fatalf("count noise sd %.3f, want %.3f", got, want)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestTreeHistogramsMatchExact compares a tree query at a large budget with modeling/gbdt's exact
// provider on the same rows, model and nodes.
func TestTreeHistogramsMatchExact(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	c := testCohort(3000)
	n := len(c.Y)
	x := mat.NewDense(n, 2, nil)
	for i := range n {
		x.Set(i, 0, c.X[0][i])
		x.Set(i, 1, c.X[1][i])
	}
	cuts := gbdt.Cuts{Names: c.Features, Edges: [][]float64{{2, 4, 6, 8}, {0.5}}}
	exact, err := gbdt.NewExact(x, c.Y, cuts)
	if err != nil {
		t.Fatal(err)
	}
	opts := gbdt.DefaultOptions()
	opts.NumTrees, opts.MaxDepth = 2, 2
	model, err := gbdt.Train(ctx, exact, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(model)
	nodes := []gbdt.NodeRequest{{ID: 1, Parent: 0, Path: []gbdt.Condition{{Feature: 0, Bin: 1, Left: true}}},
		{ID: 2, Parent: 0, Path: []gbdt.Condition{{Feature: 0, Bin: 1, Left: false}}}}
	if err := exact.BeginTree(ctx, gbdt.TreeRequest{Round: 2, Model: model, Subsample: 1}); err != nil {
		t.Fatal(err)
	}
	want, err := exact.Histograms(ctx, append([]gbdt.NodeRequest{{ID: 0, Parent: -1}}, nodes...))
	if err != nil {
		t.Fatal(err)
	}
	q := sdk.TreeQuery{Model: js, Features: c.Features, Edges: cuts.Edges, Rho: 1}
	for _, nd := range nodes {
		tn := sdk.TreeNodeQuery{ID: nd.ID}
		for _, cd := range nd.Path {
			tn.Path = append(tn.Path, sdk.TreeCondition{Feature: cd.Feature, Bin: cd.Bin, MissingLeft: cd.MissingLeft, Left: cd.Left})
		}
		q.Nodes = append(q.Nodes, tn)
	}
	s := newService(t, l, "tree", 8, c, 5)
	got, err := s.TreeHistograms(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	// The two nodes are disjoint: σ_G = √(F+1)/√(2·0.4ρ) ≈ 1.94, σ_H a quarter of it.
	sg := math.Sqrt(3 / (2 * 0.4))
	for k, nd := range got.Nodes {
		w := want[k+1]
		if nd.ID != nodes[k].ID || math.Abs(nd.SumG-w.SumG) > 5*sg || math.Abs(nd.SumH-w.SumH) > 5*sg/4 {
			t.Fatalf("node %d: sums G %v H %v, exact %v %v", nd.ID, nd.SumG, nd.SumH, w.SumG, w.SumH)
		}
		for f := range 2 {
			for b := range w.G[f] {
				if nd.Suppressed[f][b] {
					continue
				}
				if math.Abs(nd.G[f][b]-w.G[f][b]) > 5*sg || math.Abs(nd.H[f][b]-w.H[f][b]) > 5*sg/4 {
					t.Fatalf("node %d feature %d bin %d: G %v H %v, exact %v %v", nd.ID, f, b, nd.G[f][b], nd.H[f][b], w.G[f][b], w.H[f][b])
				}
			}
		}
	}
	rec := s.Record()
	if len(rec.Edges["x.a"]) != 4 || rec.Queries != 1 || rec.Rho != 1 || rec.Delta != DefaultDelta {
		t.Fatalf("record %+v", rec)
	}
	// Overlapping nodes raise the sensitivity: the root is compatible with both children, so the
	// bound (most compatible nodes + 1) is 3, above the true 2, never below.
	if m := overlap(&sdk.TreeQuery{Features: c.Features, Edges: cuts.Edges, Nodes: []sdk.TreeNodeQuery{{ID: 0}, q.Nodes[0], q.Nodes[1]}}); m != 3 {
		t.Fatalf("overlap bound of root and children = %d, want 3", m)
	}
	if m := overlap(&q); m != 1 {
		t.Fatalf("overlap of siblings = %d, want 1", m)
	}
}
