package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

func benchCohort(rows, feats int) Cohort {
	rng := rand.New(rand.NewPCG(3, 4))
	c := Cohort{Y: make([]float64, rows)}
	for j := range feats {
		col := make([]float64, rows)
		for i := range col {
			col[i] = rng.Float64()
		}
		c.Features = append(c.Features, fmt.Sprintf("x.f%d", j))
		c.Bounds = append(c.Bounds, features.Interval{Low: 0, High: 1})
		c.X = append(c.X, col)
	}
	for i := range c.Y {
		if rng.Float64() < 0.2 {
			c.Y[i] = 1
		}
	}
	return c
}

func edges(bins int) []float64 {
	e := make([]float64, bins-1)
	for i := range e {
		e[i] = float64(i+1) / float64(bins)
	}
	return e
}

// benchService returns a service with a budget large enough for b.N queries of rho.
func benchService(b *testing.B, c Cohort) *Service {
	l := newLedger(b)
	if err := l.SetBudget(context.Background(), "steward", "bank-a", "ds", 1e6); err != nil {
		b.Fatal(err)
	}
	s, err := NewService(context.Background(), Config{Ledger: l, Job: "bench", Bank: "bank-a", Dataset: "ds", Epsilon: 8, Cohort: c})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkHistogram_rows100000_features20_bins32: one label-split histogram with sums over every
// feature (crypto/rand noise, a ledger write per query).
func BenchmarkHistogram_rows100000_features20_bins32(b *testing.B) {
	c := benchCohort(100000, 20)
	s := benchService(b, c)
	q := sdk.HistogramQuery{ByLabel: true, Sums: true, Rho: 1e-3}
	for _, f := range c.Features {
		q.Features = append(q.Features, sdk.Bins{Column: f, Edges: edges(32)})
	}
	b.ResetTimer()
	for range b.N {
		if s.spent+q.Rho > 1 { // stay within the job's budget (ε = 8)
			s.cfg.Job = fmt.Sprint("bench-", s.queries)
			s.spent = 0
		}
		if _, err := s.Histogram(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// BenchmarkTreeLevel_rows100000_features20_bins32_depth4: the g/h histograms of the 8 nodes of a
// tree's depth-3 level (the last split level of a depth-4 tree), after 10 trees of depth 4.
func BenchmarkTreeLevel_rows100000_features20_bins32_depth4(b *testing.B) {
	c := benchCohort(100000, 20)
	s := benchService(b, c)
	e := make([][]float64, len(c.Features))
	for f := range e {
		e[f] = edges(32)
	}
	var nodes []sdk.TreeNodeQuery
	for k := range 8 {
		var path []sdk.TreeCondition
		for d := range 3 {
			path = append(path, sdk.TreeCondition{Feature: d, Bin: 15, Left: k>>d&1 == 0})
		}
		nodes = append(nodes, sdk.TreeNodeQuery{ID: k, Path: path})
	}
	q := sdk.TreeQuery{Features: c.Features, Edges: e, Nodes: nodes, Rho: 1e-3}
	b.ResetTimer()
	for range b.N {
		if s.spent+q.Rho > 1 {
			s.cfg.Job = fmt.Sprint("bench-", s.queries)
			s.spent = 0
		}
		if _, err := s.TreeHistograms(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
