package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// FuzzTreeQuery decodes a tree query as the plugin may send any (JSON of sdk.TreeQuery, the model a
// JSON string inside it) and checks that the service's validation refuses it with ErrQuery or
// accepts a query whose shape the answer can follow, without panicking.
func FuzzTreeQuery(f *testing.F) {
	model := `{"feature_names":["x.a","x.b"],"edges":[[2,4],[0.5]],"base_score":0.1,"trees":[{"nodes":[{"feature":0,"bin":1,"threshold":4,"left":1,"right":2,"value":0},{"feature":-1,"value":0.2},{"feature":-1,"value":-0.3}]}]}`
	seeds := []sdk.TreeQuery{
		{Features: []string{"x.a"}, Edges: [][]float64{{1, 2}}, Nodes: []sdk.TreeNodeQuery{{ID: 1}}, Rho: 0.1},
		{Model: []byte(model), Features: []string{"x.a", "x.b"}, Edges: [][]float64{{2, 4}, {0.5}},
			Nodes: []sdk.TreeNodeQuery{{ID: 1, Path: []sdk.TreeCondition{{Feature: 0, Bin: 1, Left: true}}}, {ID: 2, Path: []sdk.TreeCondition{{Feature: 0, Bin: 1}}}}, Rho: 0.5},
		{Features: []string{"x.a"}, Edges: [][]float64{{1}}, Nodes: []sdk.TreeNodeQuery{{ID: 1, Path: []sdk.TreeCondition{{Feature: 0, Bin: 1}}}}, Rho: 0.1},
		{Features: []string{"x.a", "x.a"}, Edges: [][]float64{{1}, {1}}, Nodes: []sdk.TreeNodeQuery{{ID: 1}}, Rho: 0.1},
	}
	for _, q := range seeds {
		b, _ := json.Marshal(q)
		f.Add(b)
	}
	f.Add([]byte(`{"Features":["x.b"],"Edges":[[null]],"Nodes":[{"ID":1,"Path":[{"Feature":-1,"Bin":0}]}],"Rho":1e308}`))
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float64, 50)
	for i := range x {
		x[i] = 10 * rng.Float64()
	}
	s := &Service{cfg: Config{Cohort: Cohort{Features: []string{"x.a", "x.b"}, Bounds: []features.Interval{{Low: 0, High: 10}, {Low: 0, High: 1}},
		X: [][]float64{x, x}, Y: make([]float64, 50)}}, n: 50, index: map[string]int{"x.a": 0, "x.b": 1}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q sdk.TreeQuery
		if json.Unmarshal(data, &q) != nil {
			return
		}
		p, err := s.planTree(&q)
		if err != nil {
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("a refusal that is not ErrQuery: %v", err)
			}
			return
		}
		if p.mult < 1 || p.mult > len(q.Nodes) || len(p.cols) != len(q.Features) {
			t.Fatalf("plan %+v for %d nodes", p, len(q.Nodes))
		}
		// An accepted query can be evaluated: margins and bins for every row.
		s.treeMemo = nil
		if m := s.margins(p); len(m) != s.n {
			t.Fatalf("%d margins", len(m))
		}
		_ = s.binsOf(&q, p)
		_ = fmt.Sprint(p.mult)
	})
}
