package gbdt

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/binning"
)

// Cuts are the cut points of every feature; the trees split only at them.
type Cuts struct {
	Names []string
	Edges [][]float64
}

// Validate checks one edge list per name and valid cut points (finite, strictly ascending, at most
// MaxEdges).
func (c Cuts) Validate() error {
	if len(c.Names) != len(c.Edges) {
		return errf(ErrCuts, -1, -1, "", "%d names but %d edge lists", len(c.Names), len(c.Edges))
	}
	for f, e := range c.Edges {
		if err := checkEdges(c.Names[f], e); err != nil {
			return err
		}
	}
	return nil
}

// QuantileCuts returns cut points for every column of X splitting its non-missing values into at
// most maxBins bins of about equal frequency (binning.QuantileEdges: each distinct value its own bin
// when there are at most maxBins). It panics if maxBins is not in [1, 256] or names does not match X.
func QuantileCuts(X mat.Matrix, names []string, maxBins int) Cuts {
	n, d := X.Dims()
	if len(names) != d {
		panic(fmt.Sprintf("gbdt: %d names for %d columns", len(names), d))
	}
	if maxBins < 1 || maxBins > MaxEdges+1 {
		panic(fmt.Sprintf("gbdt: maxBins %d not in [1, %d]", maxBins, MaxEdges+1))
	}
	c := Cuts{Names: append([]string(nil), names...), Edges: make([][]float64, d)}
	col := make([]float64, n)
	for f := range d {
		mat.Col(col, f, X)
		c.Edges[f] = binning.QuantileEdges(col, maxBins)
	}
	return c
}

// Condition is one step of a path from the root: the split (Feature, Bin, MissingLeft) and the side
// taken.
type Condition struct {
	Feature     int
	Bin         int
	MissingLeft bool
	Left        bool
}

// NodeRequest names a node of the tree being built: its ID (unique within the tree), its parent's ID
// (−1 for the root) and the conditions on the path from the root. A provider may use the parent's
// rows (Exact does) or evaluate the path (an aggregate service does).
type NodeRequest struct {
	ID, Parent int
	Path       []Condition
}

// Histogram holds one node's sums: G[f][b] and H[f][b] over the rows in bin b of feature f
// (len(Edges[f])+2 bins, the missing bin last), and the node's totals SumG and SumH. With exact sums
// every feature's bins add up to the totals; with noisy ones they need not.
type Histogram struct {
	G, H       [][]float64
	SumG, SumH float64
}

// TreeRequest starts a tree: the provider computes g and h at the margins of Model (BaseScore plus
// its trees) and, when Subsample < 1, keeps each row for this tree with probability Subsample,
// drawn from Seed and Round.
type TreeRequest struct {
	Round     int
	Model     *Model
	Subsample float64
	Seed      uint64
}

// Provider answers the tree builder's questions. Train calls Cuts once, then for each tree
// BeginTree and Histograms once per level with the level's nodes.
type Provider interface {
	// Cuts returns the cut points histograms are taken over.
	Cuts() Cuts
	// BeginTree prepares the gradients of a new tree.
	BeginTree(ctx context.Context, r TreeRequest) error
	// Histograms returns one Histogram per requested node, in order.
	Histograms(ctx context.Context, nodes []NodeRequest) ([]Histogram, error)
}

// Validator measures a model on held-out data for early stopping.
type Validator interface {
	// Loss returns the mean log-loss of the model's predictions.
	Loss(ctx context.Context, m *Model) (float64, error)
}

var (
	_ Provider  = (*Exact)(nil)
	_ Validator = (*ExactValidator)(nil)
)

// Exact is the in-memory Provider for plaintext rows: exact sums, the sibling subtraction trick and
// cached margins, so a tree costs O(rows × features × depth).
type Exact struct {
	cuts   Cuts
	bins   [][]uint16 // [feature][row]
	y      []float64
	margin []float64
	trees  int // number of the model's trees included in margin
	base   float64
	g, h   []float64
	rows   map[int][]int32
	hists  map[int]Histogram
	prev   map[int]Histogram
	sample []int32
}

// NewExact bins the rows of X (NaN = missing) under cuts and keeps the 0/1 labels y. It returns an
// error wrapping ErrData for an infinite value or a label other than 0 and 1, and ErrCuts for
// invalid cuts. It panics if X and y or cuts disagree in shape.
func NewExact(X mat.Matrix, y []float64, cuts Cuts) (*Exact, error) {
	n, d := X.Dims()
	if len(y) != n || len(cuts.Edges) != d {
		panic(fmt.Sprintf("gbdt: X is %d×%d but %d labels and %d edge lists", n, d, len(y), len(cuts.Edges)))
	}
	if err := cuts.Validate(); err != nil {
		return nil, err
	}
	p := &Exact{cuts: cuts, bins: make([][]uint16, d), y: append([]float64(nil), y...), margin: make([]float64, n),
		g: make([]float64, n), h: make([]float64, n)}
	for i, v := range y {
		if v != 0 && v != 1 {
			return nil, errf(ErrData, -1, -1, "", "row %d: label %v is not 0 or 1", i+1, v)
		}
	}
	col := make([]float64, n)
	for f := range d {
		mat.Col(col, f, X)
		e := cuts.Edges[f]
		b := make([]uint16, n)
		for i, v := range col {
			switch {
			case math.IsNaN(v):
				b[i] = uint16(len(e) + 1)
			case math.IsInf(v, 0):
				return nil, errf(ErrData, -1, -1, cuts.Names[f], "row %d: value is infinite", i+1)
			default:
				b[i] = uint16(binIndex(e, v))
			}
		}
		p.bins[f] = b
	}
	return p, nil
}

// Cuts returns the cut points.
func (p *Exact) Cuts() Cuts { return p.cuts }

// BeginTree updates the cached margins with the model's new trees and computes g and h.
func (p *Exact) BeginTree(_ context.Context, r TreeRequest) error {
	m := r.Model
	if m.BaseScore != p.base || len(m.Trees) < p.trees {
		for i := range p.margin {
			p.margin[i] = m.BaseScore
		}
		p.base, p.trees = m.BaseScore, 0
	}
	for ; p.trees < len(m.Trees); p.trees++ {
		t := &m.Trees[p.trees]
		for i := range p.margin {
			p.margin[i] += p.leafBinned(t, i)
		}
	}
	p.sample = p.sample[:0]
	var rng *rand.Rand
	if r.Subsample > 0 && r.Subsample < 1 {
		rng = rand.New(rand.NewPCG(r.Seed, uint64(r.Round)))
	}
	for i, z := range p.margin {
		q := sigmoid(z)
		p.g[i] = q - p.y[i]
		p.h[i] = q * (1 - q)
		if rng == nil || rng.Float64() < r.Subsample {
			p.sample = append(p.sample, int32(i))
		}
	}
	p.rows = map[int][]int32{}
	p.hists, p.prev = map[int]Histogram{}, map[int]Histogram{}
	return nil
}

func (p *Exact) leafBinned(t *Tree, i int) float64 {
	k := 0
	for {
		n := &t.Nodes[k]
		if n.Feature < 0 {
			return n.Value
		}
		b := int(p.bins[n.Feature][i])
		switch {
		case b == len(p.cuts.Edges[n.Feature])+1:
			if n.MissingLeft {
				k = n.Left
			} else {
				k = n.Right
			}
		case b <= n.Bin:
			k = n.Left
		default:
			k = n.Right
		}
	}
}

func (p *Exact) goesLeft(c Condition, i int32) bool {
	b := int(p.bins[c.Feature][i])
	if b == len(p.cuts.Edges[c.Feature])+1 {
		return c.MissingLeft
	}
	return b <= c.Bin
}

// rowsOf returns the rows of a node from its parent's rows, or by evaluating its path.
func (p *Exact) rowsOf(r NodeRequest) []int32 {
	src := p.sample
	path := r.Path
	if pr, ok := p.rows[r.Parent]; ok && len(path) > 0 {
		src, path = pr, path[len(path)-1:]
	}
	if len(path) == 0 {
		return src
	}
	var out []int32
outer:
	for _, i := range src {
		for _, c := range path {
			if p.goesLeft(c, i) != c.Left {
				continue outer
			}
		}
		out = append(out, i)
	}
	return out
}

func (p *Exact) newHist() Histogram {
	h := Histogram{G: make([][]float64, len(p.bins)), H: make([][]float64, len(p.bins))}
	for f, e := range p.cuts.Edges {
		h.G[f] = make([]float64, len(e)+2)
		h.H[f] = make([]float64, len(e)+2)
	}
	return h
}

func (p *Exact) scan(rows []int32) Histogram {
	h := p.newHist()
	for f, col := range p.bins {
		gf, hf := h.G[f], h.H[f]
		for _, i := range rows {
			b := col[i]
			gf[b] += p.g[i]
			hf[b] += p.h[i]
		}
	}
	for _, i := range rows {
		h.SumG += p.g[i]
		h.SumH += p.h[i]
	}
	return h
}

func subtract(parent, child Histogram) Histogram {
	out := Histogram{G: make([][]float64, len(parent.G)), H: make([][]float64, len(parent.H)),
		SumG: parent.SumG - child.SumG, SumH: parent.SumH - child.SumH}
	for f := range parent.G {
		out.G[f] = make([]float64, len(parent.G[f]))
		out.H[f] = make([]float64, len(parent.H[f]))
		for b := range parent.G[f] {
			out.G[f][b] = parent.G[f][b] - child.G[f][b]
			out.H[f][b] = parent.H[f][b] - child.H[f][b]
		}
	}
	return out
}

// Histograms computes exact sums. When both children of a parent whose histogram it computed are
// requested, it scans the smaller child and subtracts it from the parent.
func (p *Exact) Histograms(_ context.Context, nodes []NodeRequest) ([]Histogram, error) {
	p.prev, p.hists = p.hists, map[int]Histogram{}
	rows := map[int][]int32{}
	for _, r := range nodes {
		rows[r.ID] = p.rowsOf(r)
	}
	byParent := map[int][]int{}
	for k, r := range nodes {
		byParent[r.Parent] = append(byParent[r.Parent], k)
	}
	out := make([]Histogram, len(nodes))
	done := make([]bool, len(nodes))
	for parent, ks := range byParent {
		ph, ok := p.prev[parent]
		if !ok || len(ks) != 2 {
			continue
		}
		a, b := ks[0], ks[1]
		if len(rows[nodes[a].ID]) > len(rows[nodes[b].ID]) {
			a, b = b, a
		}
		out[a] = p.scan(rows[nodes[a].ID])
		out[b] = subtract(ph, out[a])
		done[a], done[b] = true, true
	}
	for k, r := range nodes {
		if !done[k] {
			out[k] = p.scan(rows[r.ID])
		}
	}
	for k, r := range nodes {
		p.hists[r.ID] = out[k]
	}
	p.rows = rows
	return out, nil
}

// ExactValidator computes the validation log-loss on in-memory rows, caching margins across rounds.
type ExactValidator struct {
	x      [][]float64
	y      []float64
	margin []float64
	trees  int
	base   float64
}

// NewExactValidator keeps the rows of X and their 0/1 labels y. It panics if they disagree in length.
func NewExactValidator(X mat.Matrix, y []float64) *ExactValidator {
	n, d := X.Dims()
	if len(y) != n {
		panic(fmt.Sprintf("gbdt: %d rows but %d labels", n, len(y)))
	}
	v := &ExactValidator{y: append([]float64(nil), y...), margin: make([]float64, n), base: math.NaN()}
	for i := range n {
		v.x = append(v.x, mat.Row(make([]float64, d), i, X))
	}
	return v
}

// Loss returns the mean log-loss of m on the validation rows.
func (v *ExactValidator) Loss(_ context.Context, m *Model) (float64, error) {
	if m.BaseScore != v.base || len(m.Trees) < v.trees {
		for i := range v.margin {
			v.margin[i] = m.BaseScore
		}
		v.base, v.trees = m.BaseScore, 0
	}
	for ; v.trees < len(m.Trees); v.trees++ {
		for i, x := range v.x {
			v.margin[i] += m.Trees[v.trees].leaf(x)
		}
	}
	var s float64
	for i, z := range v.margin {
		// log(1 + e^z) − y·z, computed stably.
		s += math.Max(z, 0) + math.Log1p(math.Exp(-math.Abs(z))) - v.y[i]*z
	}
	return s / float64(len(v.margin)), nil
}
