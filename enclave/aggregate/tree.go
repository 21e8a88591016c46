package aggregate

import (
	"context"
	"math"
	"math/big"
	"reflect"
	"slices"

	"insitu/modeling/binning"
	"insitu/modeling/gbdt"
	"insitu/plugins/sdk"
)

// Bounds of a tree query.
const (
	// MaxTreeNodes bounds the nodes of one tree query.
	MaxTreeNodes = 1 << 12
	// MaxNodeCells bounds the (feature, bin) cells of one node, so that one node's answer fits one
	// protocol message.
	MaxNodeCells = 1 << 15
	// MaxPath bounds the conditions of one node's path.
	MaxPath = 64
)

// Grids of g ∈ [−1, 1] and h ∈ [0, ¼]: both summed as integers bounded by 2^16 per row.
const (
	gShift = 16
	hShift = 18
)

// treeCache keeps, between the queries of one job, the rows' margins under the last model and the
// rows' bins under the last cuts: boosting asks about the same rows with one more tree each round.
type treeCache struct {
	base    float64
	names   []string
	trees   []gbdt.Tree
	margins []float64

	cutNames []string
	cutEdges [][]float64
	bins     [][]uint16 // [feature][row]
}

// treePlan is a validated tree query.
type treePlan struct {
	cols  []int // cohort column of each query feature
	model *gbdt.Model
	mult  int // the most nodes one row can fall in
}

func (s *Service) planTree(q *sdk.TreeQuery) (*treePlan, error) {
	const name = "tree"
	if err := checkRho(name, q.Rho); err != nil {
		return nil, err
	}
	if len(q.Features) == 0 {
		return nil, qerr(name, "features", "no feature")
	}
	if len(q.Edges) != len(q.Features) {
		return nil, qerr(name, "edges", "%d edge lists for %d features", len(q.Edges), len(q.Features))
	}
	p := &treePlan{cols: make([]int, len(q.Features))}
	seen := map[string]bool{}
	cells := 0
	for f, n := range q.Features {
		j, err := s.feature(name, n)
		if err != nil {
			return nil, err
		}
		if seen[n] {
			return nil, qerr(name, n, "the feature is listed twice")
		}
		seen[n] = true
		p.cols[f] = j
		if err := checkEdges(name, n, q.Edges[f], gbdt.MaxEdges); err != nil {
			return nil, err
		}
		if cells += len(q.Edges[f]) + 2; cells > MaxNodeCells {
			return nil, qerr(name, "edges", "more than %d bins per node: use fewer features or edges", MaxNodeCells)
		}
	}
	if len(q.Nodes) == 0 || len(q.Nodes) > MaxTreeNodes {
		return nil, qerr(name, "nodes", "%d nodes: give 1 to %d", len(q.Nodes), MaxTreeNodes)
	}
	ids := map[int]bool{}
	for _, nd := range q.Nodes {
		if ids[nd.ID] {
			return nil, qerr(name, "nodes", "node id %d is repeated", nd.ID)
		}
		ids[nd.ID] = true
		if len(nd.Path) > MaxPath {
			return nil, qerr(name, "nodes", "node %d: a path of %d conditions, at most %d", nd.ID, len(nd.Path), MaxPath)
		}
		for k, c := range nd.Path {
			if c.Feature < 0 || c.Feature >= len(q.Features) {
				return nil, qerr(name, "nodes", "node %d, condition %d: feature index %d out of range", nd.ID, k, c.Feature)
			}
			if c.Bin < 0 || c.Bin >= len(q.Edges[c.Feature]) {
				return nil, qerr(name, "nodes", "node %d, condition %d: a split after bin %d of %q, which has %d edges", nd.ID, k, c.Bin, q.Features[c.Feature], len(q.Edges[c.Feature]))
			}
		}
	}
	if len(q.Model) > 0 {
		m, err := gbdt.ParseModel(q.Model)
		if err != nil {
			return nil, qerr(name, "model", "%v", err)
		}
		if !slices.Equal(m.FeatureNames, q.Features) {
			return nil, qerr(name, "model", "the model's features must be the query's features, in order")
		}
		p.model = m
	}
	p.mult = overlap(q)
	return p, nil
}

// overlap returns an upper bound on the number of the query's nodes one row can fall in: one more
// than the most nodes any node's path is compatible with (rows in several nodes form a clique of
// pairwise compatible paths). The nodes of one tree level give 1.
func overlap(q *sdk.TreeQuery) int {
	type set struct {
		ok   []bool // allowed regular bins and, last, the missing bin
		used bool
	}
	sets := make([][]set, len(q.Nodes))
	for k, nd := range q.Nodes {
		sets[k] = make([]set, len(q.Features))
		for _, c := range nd.Path {
			st := &sets[k][c.Feature]
			nb := len(q.Edges[c.Feature]) + 2
			if !st.used {
				st.ok, st.used = make([]bool, nb), true
				for b := range st.ok {
					st.ok[b] = true
				}
			}
			for b := range nb {
				left := b <= c.Bin
				if b == nb-1 {
					left = c.MissingLeft
				}
				if left != c.Left {
					st.ok[b] = false
				}
			}
		}
	}
	compatible := func(a, b int) bool {
		for f := range q.Features {
			sa, sb := sets[a][f], sets[b][f]
			if !sa.used || !sb.used {
				continue
			}
			any := false
			for i := range sa.ok {
				if sa.ok[i] && sb.ok[i] {
					any = true
					break
				}
			}
			if !any {
				return false
			}
		}
		return true
	}
	most := 0
	for a := range q.Nodes {
		deg := 0
		for b := range q.Nodes {
			if a != b && compatible(a, b) {
				deg++
			}
		}
		most = max(most, deg)
	}
	return most + 1
}

// margins returns every row's margin under m (0 for no model), reusing the last query's margins when
// m extends its model.
func (s *Service) margins(p *treePlan) []float64 {
	c := s.treeMemo
	if c == nil {
		c = &treeCache{}
		s.treeMemo = c
	}
	m := p.model
	if m == nil {
		m = &gbdt.Model{}
	}
	fresh := c.margins == nil || c.base != m.BaseScore || !slices.Equal(c.names, m.FeatureNames) || len(m.Trees) < len(c.trees) ||
		!reflect.DeepEqual(c.trees, m.Trees[:len(c.trees)])
	if fresh {
		c.base, c.names, c.trees = m.BaseScore, slices.Clone(m.FeatureNames), nil
		c.margins = make([]float64, s.n)
		for i := range c.margins {
			c.margins[i] = m.BaseScore
		}
	}
	if len(m.Trees) > len(c.trees) {
		add := &gbdt.Model{FeatureNames: m.FeatureNames, Edges: m.Edges, Trees: m.Trees[len(c.trees):]}
		x := make([]float64, len(p.cols))
		for i := range c.margins {
			for f, j := range p.cols {
				x[f] = s.cfg.Cohort.X[j][i]
			}
			c.margins[i] += add.Margin(x)
		}
		c.trees = append(c.trees, add.Trees...)
	}
	return c.margins
}

// binsOf returns every row's bin per query feature, reusing the last query's when the cuts are the
// same.
func (s *Service) binsOf(q *sdk.TreeQuery, p *treePlan) [][]uint16 {
	c := s.treeMemo
	if c.bins != nil && slices.Equal(c.cutNames, q.Features) && slices.EqualFunc(c.cutEdges, q.Edges, slices.Equal[[]float64]) {
		return c.bins
	}
	c.cutNames, c.cutEdges = slices.Clone(q.Features), make([][]float64, len(q.Edges))
	c.bins = make([][]uint16, len(q.Features))
	for f, j := range p.cols {
		c.cutEdges[f] = slices.Clone(q.Edges[f])
		b := make([]uint16, s.n)
		for i, x := range s.cfg.Cohort.X[j] {
			b[i] = uint16(binning.BinIndex(q.Edges[f], x))
		}
		c.bins[f] = b
	}
	return c.bins
}

// TreeHistograms answers a TreeQuery.
func (s *Service) TreeHistograms(ctx context.Context, q sdk.TreeQuery) (*sdk.TreeAnswer, error) {
	p, err := s.planTree(&q)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	spent, err := s.spend(ctx, "tree", q.Rho)
	if err != nil {
		return nil, err
	}
	margins := s.margins(p)
	bins := s.binsOf(&q, p)
	F := len(q.Features)
	off := make([]int, F+1)
	for f := range F {
		off[f+1] = off[f] + len(q.Edges[f]) + 2
	}
	type acc struct {
		g, h, c         []int64
		sumG, sumH, cnt int64
	}
	accs := make([]acc, len(q.Nodes))
	for k := range accs {
		accs[k] = acc{g: make([]int64, off[F]), h: make([]int64, off[F]), c: make([]int64, off[F])}
	}
	y := s.cfg.Cohort.Y
	for i, z := range margins {
		pr := 1 / (1 + math.Exp(-z))
		gi := int64(math.Round(math.Ldexp(pr-y[i], gShift)))
		hi := int64(math.Round(math.Ldexp(pr*(1-pr), hShift)))
		for k, nd := range q.Nodes {
			in := true
			for _, c := range nd.Path {
				r := int(bins[c.Feature][i])
				left := r <= c.Bin
				if r == len(q.Edges[c.Feature])+1 {
					left = c.MissingLeft
				}
				if left != c.Left {
					in = false
					break
				}
			}
			if !in {
				continue
			}
			a := &accs[k]
			a.sumG += gi
			a.sumH += hi
			a.cnt++
			for f := range F {
				cell := off[f] + int(bins[f][i])
				a.g[cell] += gi
				a.h[cell] += hi
				a.c[cell]++
			}
		}
	}
	// One row changes, in each of at most mult nodes, F+1 counts by 1, F+1 G sums by at most 2^16
	// and F+1 H sums by at most 2^16 (grid units).
	cells := big.NewInt(int64(p.mult) * int64(F+1))
	g2 := new(big.Int).Lsh(cells, 32)
	vc := VarianceFor(cells, q.Rho/5)
	vg := VarianceFor(g2, q.Rho*2/5)
	vh := VarianceFor(g2, q.Rho*2/5)
	k := float64(s.minCount)
	ans := &sdk.TreeAnswer{Nodes: make([]sdk.TreeNodeHistogram, len(q.Nodes)), Spent: spent}
	for n, nd := range q.Nodes {
		a := &accs[n]
		h := sdk.TreeNodeHistogram{ID: nd.ID, G: make([][]float64, F), H: make([][]float64, F), Counts: make([][]float64, F), Suppressed: make([][]bool, F)}
		for f := range F {
			nb := off[f+1] - off[f]
			h.G[f], h.H[f], h.Counts[f], h.Suppressed[f] = make([]float64, nb), make([]float64, nb), make([]float64, nb), make([]bool, nb)
		}
		h.Count = s.noisy(a.cnt, vc, 0)
		if h.Count < k {
			h.Count, h.NodeSuppressed = 0, true
			for f := range F {
				for b := range h.Suppressed[f] {
					h.Suppressed[f][b] = true
				}
			}
			ans.Nodes[n] = h
			continue
		}
		h.SumG, h.SumH = s.noisy(a.sumG, vg, gShift), s.noisy(a.sumH, vh, hShift)
		for f := range F {
			for b := range h.G[f] {
				cell := off[f] + b
				c := s.noisy(a.c[cell], vc, 0)
				if c < k {
					h.Suppressed[f][b] = true
					continue
				}
				h.Counts[f][b] = c
				h.G[f][b] = s.noisy(a.g[cell], vg, gShift)
				h.H[f][b] = s.noisy(a.h[cell], vh, hShift)
			}
		}
		ans.Nodes[n] = h
	}
	for f, n := range q.Features {
		s.noteEdges(n, q.Edges[f])
	}
	return ans, nil
}
