// Package aggfake is an in-memory sdk.AggregateClient for testing and benchmarking the reference
// plugins without an enclave: it answers every query exactly from plaintext rows and adds Gaussian
// noise of the standard deviation the enclave's service documents for the query's ρ (floating-point
// noise from a seeded generator — fine for measuring a plugin, never for protecting data), and
// suppresses cells whose noisy count is below MinCount.
//
// Call New with the rows (column-major), the labels and the job's (ε, δ).
package aggfake

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"insitu/modeling/binning"
	"insitu/modeling/gbdt"
	"insitu/plugins/sdk"
)

// Client answers aggregate queries about X (X[f][i], NaN = missing) with 0/1 labels Y.
type Client struct {
	Features []string
	X        [][]float64
	Y        []float64
	// Bound is the bound B_f on |x_f| the clipping of sums uses (the transforms' bounds in the
	// enclave); the largest |value| of each feature when nil.
	Bound []float64
	// MinCount is the suppression threshold k (default 10); NoNoise turns noise and suppression off.
	MinCount int
	NoNoise  bool

	budget sdk.Budget
	mu     sync.Mutex
	rng    *rand.Rand
	// Queries counts the answers given.
	Queries int
}

var _ sdk.AggregateClient = (*Client)(nil)

// ErrBudget is returned when a query's ρ exceeds what is left.
var ErrBudget = errors.New("aggfake: privacy budget exhausted")

// New returns a client over the rows with the job's (ε, δ) budget and a noise seed.
func New(features []string, X [][]float64, y []float64, eps, delta float64, seed uint64) *Client {
	c := &Client{Features: features, X: X, Y: y, MinCount: 10, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	rho := sdk.EpsilonToRho(eps, delta)
	c.budget = sdk.Budget{Epsilon: eps, Delta: delta, Rho: rho, RhoLeft: rho, MinCount: 10}
	c.Bound = make([]float64, len(X))
	for f, col := range X {
		for _, v := range col {
			if !math.IsNaN(v) {
				c.Bound[f] = math.Max(c.Bound[f], math.Abs(v))
			}
		}
	}
	return c
}

func (c *Client) spend(rho float64) (sdk.Spent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !(rho > 0) {
		return sdk.Spent{}, fmt.Errorf("aggfake: rho %v must be above 0", rho)
	}
	if rho > c.budget.RhoLeft*(1+1e-9) {
		return sdk.Spent{}, fmt.Errorf("%w: asked %v, left %v", ErrBudget, rho, c.budget.RhoLeft)
	}
	c.budget.RhoSpent += rho
	c.budget.RhoLeft = math.Max(0, c.budget.Rho-c.budget.RhoSpent)
	c.budget.EpsilonSpent = sdk.RhoToEpsilon(c.budget.RhoSpent, c.budget.Delta)
	c.Queries++
	return sdk.Spent{Rho: rho, Epsilon: c.budget.EpsilonSpent}, nil
}

// noise returns a draw of N(0, (sens/√(2ρ))²), 0 without noise.
func (c *Client) noise(sens, rho float64) float64 {
	if c.NoNoise {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.NormFloat64() * sens / math.Sqrt(2*rho)
}

func (c *Client) suppressed(count float64) bool { return !c.NoNoise && count < float64(c.MinCount) }

func (c *Client) index(name string) (int, error) {
	f := slices.Index(c.Features, name)
	if f < 0 {
		return 0, fmt.Errorf("aggfake: no feature %q", name)
	}
	return f, nil
}

// Budget reports the budget.
func (c *Client) Budget(context.Context) (sdk.Budget, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.budget, nil
}

// Query answers counts grouped by bins (sums and means are not offered).
func (c *Client) Query(_ context.Context, q sdk.AggregateQuery) (sdk.AggregateAnswer, error) {
	if q.Statistic != sdk.StatCount {
		return sdk.AggregateAnswer{}, fmt.Errorf("aggfake: only counts")
	}
	cols := make([]int, len(q.GroupBy))
	cells := 1
	for k, b := range q.GroupBy {
		f, err := c.index(b.Column)
		if err != nil {
			return sdk.AggregateAnswer{}, err
		}
		cols[k] = f
		cells *= len(b.Edges) + 2
	}
	sp, err := c.spend(q.Rho)
	if err != nil {
		return sdk.AggregateAnswer{}, err
	}
	counts := make([]float64, cells)
	for i := range c.Y {
		cell := 0
		for k, b := range q.GroupBy {
			cell = cell*(len(b.Edges)+2) + binning.BinIndex(b.Edges, c.X[cols[k]][i])
		}
		counts[cell]++
	}
	ans := sdk.AggregateAnswer{Cells: make([]sdk.AggregateCell, cells), Epsilon: sp.Epsilon, Rho: sp.Rho}
	for cell := range counts {
		bins := make([]int, len(q.GroupBy))
		rest := cell
		for k := len(q.GroupBy) - 1; k >= 0; k-- {
			n := len(q.GroupBy[k].Edges) + 2
			bins[k], rest = rest%n, rest/n
		}
		v := counts[cell] + c.noise(1, q.Rho)
		ans.Cells[cell] = sdk.AggregateCell{Bins: bins, Value: v}
		if c.suppressed(v) {
			ans.Cells[cell] = sdk.AggregateCell{Bins: bins, Suppressed: true}
		}
	}
	return ans, nil
}

// Histogram answers counts per bin (and label); sums are not offered.
func (c *Client) Histogram(_ context.Context, q sdk.HistogramQuery) (*sdk.HistogramAnswer, error) {
	if q.Sums {
		return nil, fmt.Errorf("aggfake: no sums")
	}
	cols := make([]int, len(q.Features))
	for k, b := range q.Features {
		f, err := c.index(b.Column)
		if err != nil {
			return nil, err
		}
		cols[k] = f
	}
	sp, err := c.spend(q.Rho)
	if err != nil {
		return nil, err
	}
	labels := 1
	if q.ByLabel {
		labels = 2
	}
	sens := math.Sqrt(float64(len(q.Features)))
	ans := &sdk.HistogramAnswer{Spent: sp}
	for k, b := range q.Features {
		h := sdk.FeatureHistogram{Column: b.Column, Edges: slices.Clone(b.Edges), Counts: make([][]float64, labels), Suppressed: make([][]bool, labels)}
		for l := range labels {
			h.Counts[l] = make([]float64, len(b.Edges)+2)
			h.Suppressed[l] = make([]bool, len(b.Edges)+2)
		}
		for i, y := range c.Y {
			l := 0
			if q.ByLabel {
				l = int(y)
			}
			h.Counts[l][binning.BinIndex(b.Edges, c.X[cols[k]][i])]++
		}
		for l := range labels {
			for j := range h.Counts[l] {
				h.Counts[l][j] += c.noise(sens, q.Rho)
				if c.suppressed(h.Counts[l][j]) {
					h.Counts[l][j], h.Suppressed[l][j] = 0, true
				}
			}
		}
		ans.Features = append(ans.Features, h)
	}
	return ans, nil
}

// Moments is not offered.
func (c *Client) Moments(context.Context, sdk.MomentsQuery) (*sdk.MomentsAnswer, error) {
	return nil, fmt.Errorf("aggfake: no moments")
}

// GLM answers the logistic gradient and Hessian at the given weights, rows clipped to ClipNorm (or
// the bounds' norm) in the sums.
func (c *Client) GLM(_ context.Context, q sdk.GLMQuery) (*sdk.GLMAnswer, error) {
	names := q.Features
	if len(names) == 0 {
		names = c.Features
	}
	if len(q.Weights) != len(names) {
		return nil, fmt.Errorf("aggfake: %d weights for %d features", len(q.Weights), len(names))
	}
	cols := make([]int, len(names))
	clip := q.ClipNorm
	if clip == 0 {
		clip = 1
	}
	for k, n := range names {
		f, err := c.index(n)
		if err != nil {
			return nil, err
		}
		cols[k] = f
		if q.ClipNorm == 0 {
			clip += c.Bound[f] * c.Bound[f]
		}
	}
	if q.ClipNorm == 0 {
		clip = math.Sqrt(clip)
	}
	sp, err := c.spend(q.Rho)
	if err != nil {
		return nil, err
	}
	d := len(names) + 1
	g := make([]float64, d)
	var H [][]float64
	if q.Hessian {
		H = make([][]float64, d)
		for a := range H {
			H[a] = make([]float64, d)
		}
	}
	x := make([]float64, d)
	for i, y := range c.Y {
		z := q.Intercept
		x[0] = 1
		norm := 1.0
		for k, f := range cols {
			v := c.X[f][i]
			if math.IsNaN(v) {
				v = 0
			}
			x[k+1] = v
			z += q.Weights[k] * v
			norm += v * v
		}
		if s := math.Sqrt(norm); s > clip {
			for a := range x {
				x[a] *= clip / s
			}
		}
		p := 1 / (1 + math.Exp(-z))
		for a := range x {
			g[a] += (p - y) * x[a]
		}
		if H != nil {
			w := p * (1 - p)
			for a := range x {
				for b := a; b < d; b++ {
					H[a][b] += w * x[a] * x[b]
				}
			}
		}
	}
	rho := q.Rho
	if H != nil {
		rho /= 2
	}
	for a := range g {
		g[a] += c.noise(clip, rho)
	}
	for a := range H {
		for b := a; b < d; b++ {
			H[a][b] += c.noise(clip*clip/4, rho)
			H[b][a] = H[a][b]
		}
	}
	return &sdk.GLMAnswer{Features: slices.Clone(names), Gradient: g, Hessian: H, Spent: sp}, nil
}

// TreeHistograms answers per-node, per-bin sums of g and h at the margins of the given model.
func (c *Client) TreeHistograms(_ context.Context, q sdk.TreeQuery) (*sdk.TreeAnswer, error) {
	cols := make([]int, len(q.Features))
	for k, n := range q.Features {
		f, err := c.index(n)
		if err != nil {
			return nil, err
		}
		cols[k] = f
	}
	var m *gbdt.Model
	if len(q.Model) > 0 {
		var err error
		if m, err = gbdt.ParseModel(q.Model); err != nil {
			return nil, fmt.Errorf("aggfake: model: %w", err)
		}
	}
	sp, err := c.spend(q.Rho)
	if err != nil {
		return nil, err
	}
	F := len(cols)
	row := make([]float64, F)
	bins := make([]int, F)
	ans := &sdk.TreeAnswer{Spent: sp}
	for _, nq := range q.Nodes {
		h := sdk.TreeNodeHistogram{ID: nq.ID, G: make([][]float64, F), H: make([][]float64, F), Counts: make([][]float64, F), Suppressed: make([][]bool, F)}
		for k := range F {
			n := len(q.Edges[k]) + 2
			h.G[k], h.H[k], h.Counts[k], h.Suppressed[k] = make([]float64, n), make([]float64, n), make([]float64, n), make([]bool, n)
		}
		ans.Nodes = append(ans.Nodes, h)
	}
	for i, y := range c.Y {
		for k, f := range cols {
			row[k] = c.X[f][i]
			bins[k] = binning.BinIndex(q.Edges[k], row[k])
		}
		z := 0.0
		if m != nil {
			z = m.Margin(row)
		}
		p := 1 / (1 + math.Exp(-z))
		g, hh := p-y, p*(1-p)
	nodes:
		for a, nq := range q.Nodes {
			for _, cond := range nq.Path {
				b := bins[cond.Feature]
				var left bool
				if b == len(q.Edges[cond.Feature])+1 {
					left = cond.MissingLeft
				} else {
					left = b <= cond.Bin
				}
				if left != cond.Left {
					continue nodes
				}
			}
			nh := &ans.Nodes[a]
			nh.SumG += g
			nh.SumH += hh
			nh.Count++
			for k := range F {
				nh.G[k][bins[k]] += g
				nh.H[k][bins[k]] += hh
				nh.Counts[k][bins[k]]++
			}
		}
	}
	sens := math.Sqrt(float64(F + 1))
	for a := range ans.Nodes {
		nh := &ans.Nodes[a]
		nh.SumG += c.noise(sens, q.Rho*2/5)
		nh.SumH += c.noise(sens/4, q.Rho*2/5)
		nh.Count += c.noise(sens, q.Rho/5)
		if c.suppressed(nh.Count) {
			*nh = sdk.TreeNodeHistogram{ID: nh.ID, G: zeros(nh.G), H: zeros(nh.H), Counts: zeros(nh.Counts), Suppressed: nh.Suppressed, NodeSuppressed: true}
			continue
		}
		for k := range F {
			for b := range nh.G[k] {
				nh.G[k][b] += c.noise(sens, q.Rho*2/5)
				nh.H[k][b] += c.noise(sens/4, q.Rho*2/5)
				nh.Counts[k][b] += c.noise(sens, q.Rho/5)
				if c.suppressed(nh.Counts[k][b]) {
					nh.G[k][b], nh.H[k][b], nh.Counts[k][b], nh.Suppressed[k][b] = 0, 0, 0, true
				}
			}
		}
	}
	return ans, nil
}

func zeros(a [][]float64) [][]float64 {
	out := make([][]float64, len(a))
	for k := range a {
		out[k] = make([]float64, len(a[k]))
	}
	return out
}

// Rho returns the job's whole budget in zCDP.
func (c *Client) Rho() float64 { return c.budget.Rho }
