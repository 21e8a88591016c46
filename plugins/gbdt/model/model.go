// Package model is the logic of insitu's reference gradient-boosted trees plugin: histogram GBDT
// (modeling/gbdt) in aggregate mode (sdk.ModeAggregate), where every histogram the tree builder
// needs is an answer of the enclave's aggregate service (sdk.AggregateClient.TreeHistograms),
// thresholded and noised under the job's privacy budget.
//
// Call New for the sdk.Model, or Serve to serve it as a plugin process. The job's hyperparameters
// decode into Hyperparameters. The defaults (DefaultHyperparameters) are tuned for noisy sums, where
// every answer costs budget and adds noise to every cell: 8 bins, 15 trees of depth 2, η 0.4, λ 10,
// min child weight 50, the 8 strongest features (held-out AUC through the enclave's service at ε = 8,
// BenchmarkAggregatePublic: Taiwan about 0.772, Give Me Some Credit about 0.851).
// ExactHyperparameters are for exact answers: 200 trees of depth 4 over 64 bins at η 0.1, xgboost's
// settings in the shared baselines (without noise: Taiwan 0.786, Give Me Some Credit 0.863).
//
// The privacy budget: a share (EdgeShare) of what the job may spend goes to one histogram over a
// fixed grid, from which the plugin picks fine edges of about equal frequency (plugins/internal
// aggplan); with MaxFeatures, a share (ScreenShare) goes to one root answer over every feature that
// picks the features whose best split gains most and gives the base score (the label's log-odds);
// the rest is spread over the tree levels, one TreeHistograms answer each, evenly or, with
// TreeDecay and LevelDecay, geometrically. The output is the ensemble as an sdk.TreeEnsemble over
// all the job's features; a split after a bin edge e (x <= e goes left, as the service bins)
// becomes sdk's x < t with t the float just above e.
package model

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"insitu/modeling/gbdt"
	"insitu/plugins/internal/aggplan"
	"insitu/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// Hyperparameters are the job's settings, a JSON object such as {"trees": 50, "depth": 3}.
type Hyperparameters struct {
	// Trees is the number of boosting rounds (default 15).
	Trees int `json:"trees"`
	// Depth bounds every tree's depth (default 2).
	Depth int `json:"depth"`
	// MaxLeaves bounds every tree's leaves; 0 leaves only Depth (default 0).
	MaxLeaves int `json:"max_leaves"`
	// Bins is the number of fine bins per feature (default 8, at most 256).
	Bins int `json:"bins"`
	// LearningRate is the shrinkage η (default 0.4).
	LearningRate float64 `json:"learning_rate"`
	// Lambda is the L2 penalty on leaf values (default 10).
	Lambda float64 `json:"lambda"`
	// MinChildWeight is the smallest noisy Hessian sum of a child (default 50).
	MinChildWeight float64 `json:"min_child_weight"`
	// Gamma is the smallest gain of a split (default 0).
	Gamma float64 `json:"gamma"`
	// EdgeShare is the share of the budget spent on choosing the edges (default 0.05).
	EdgeShare float64 `json:"edge_share"`
	// MaxFeatures, when above 0 and below the job's features, keeps only the features whose best
	// root split gains most in one screening answer (ScreenShare of the budget, default 0.1), which
	// also gives the base score: every later answer's noise grows with the square root of the
	// features it covers (default 8; 0 keeps them all and screens nothing).
	MaxFeatures int     `json:"max_features"`
	ScreenShare float64 `json:"screen_share"`
	// TreeDecay and LevelDecay shape how the trees' budget is spread: the answer for level l of
	// tree t gets a share proportional to TreeDecay^t · LevelDecay^l (defaults 1: evenly).
	TreeDecay  float64 `json:"tree_decay"`
	LevelDecay float64 `json:"level_decay"`
}

// DefaultHyperparameters returns the defaults, tuned for noisy answers.
func DefaultHyperparameters() Hyperparameters {
	return Hyperparameters{Trees: 15, Depth: 2, Bins: 8, LearningRate: 0.4, Lambda: 10, MinChildWeight: 50, EdgeShare: 0.05,
		MaxFeatures: 8, ScreenShare: 0.1, TreeDecay: 1, LevelDecay: 1}
}

// ExactHyperparameters returns defaults for exact answers (a run without noise, such as
// plugins/internal/aggfake's NoNoise, or a budget so large that noise is negligible): xgboost's
// hist settings of the shared baselines, 200 trees of depth 4 at η 0.1 over 64 bins, λ 1, every
// feature.
func ExactHyperparameters() Hyperparameters {
	return Hyperparameters{Trees: 200, Depth: 4, Bins: 64, LearningRate: 0.1, Lambda: 1, MinChildWeight: 1, EdgeShare: 0.05,
		ScreenShare: 0.1, TreeDecay: 1, LevelDecay: 1}
}

func (h Hyperparameters) check() error {
	ok := h.Trees >= 1 && h.Trees <= 10_000 && h.Depth >= 1 && h.Depth <= 16 && h.MaxLeaves >= 0 && h.Bins >= 2 && h.Bins <= 256 &&
		h.LearningRate > 0 && h.LearningRate <= 1 && h.Lambda >= 0 && h.MinChildWeight >= 0 && h.Gamma >= 0 &&
		h.EdgeShare > 0 && h.MaxFeatures >= 0 && h.ScreenShare > 0 && h.EdgeShare+h.ScreenShare < 1 &&
		h.TreeDecay > 0 && h.TreeDecay <= 4 && h.LevelDecay > 0 && h.LevelDecay <= 4
	if !ok {
		return &sdk.Error{Err: sdk.ErrHyperparameter, Detail: fmt.Sprintf("%+v: need 1 <= trees <= 10000, 1 <= depth <= 16, 2 <= bins <= 256, 0 < learning_rate <= 1, lambda, min_child_weight, gamma >= 0, max_features >= 0, edge_share, screen_share > 0 with a sum below 1, 0 < tree_decay, level_decay <= 4", h)}
	}
	return nil
}

// Model is the reference GBDT plugin.
type Model struct{}

var _ sdk.Model = (*Model)(nil)

// New returns the model.
func New() *Model { return &Model{} }

// Serve serves the model as a plugin process.
func Serve() { sdk.Serve(New()) }

// Describe declares a gbdt in aggregate mode that needs labels and returns trees.
func (*Model) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "gbdt", Version: Version, Family: sdk.FamilyGBDT, Mode: sdk.ModeAggregate,
		Outputs: []sdk.OutputKind{sdk.OutputTrees, sdk.OutputMetrics}, Needs: sdk.Needs{Labels: true}}, nil
}

// Train chooses the edges, grows the trees from the service's histograms and returns them.
func (*Model) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	hp := DefaultHyperparameters()
	if err := in.Hyperparameters.Decode(&hp); err != nil {
		return nil, err
	}
	if err := hp.check(); err != nil {
		return nil, err
	}
	if in.Aggregate == nil || len(in.Features) == 0 {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "an aggregate job with at least one feature is needed"}
	}
	m, spent, err := Fit(ctx, in.Aggregate, in.Features, hp)
	if err != nil {
		return nil, err
	}
	in.Log.Info("trained", "trees", len(m.Trees), "epsilon_spent", spent)
	return &sdk.Output{Trees: Ensemble(m), Metrics: map[string]float64{"trees": float64(len(m.Trees)), "epsilon_spent": spent}}, nil
}

// Fit spends the job's remaining budget: edges first, then the trees. It returns the model and the
// job's ε spent so far.
func Fit(ctx context.Context, c sdk.AggregateClient, features []string, hp Hyperparameters) (*gbdt.Model, float64, error) {
	b, err := c.Budget(ctx)
	if err != nil {
		return nil, 0, err
	}
	rho := b.RhoLeft * (1 - 1e-9)
	if !(rho > 0) {
		return nil, 0, &sdk.Error{Err: sdk.ErrInput, Detail: "the job has no privacy budget left"}
	}
	edges, err := aggplan.FineEdges(ctx, c, features, hp.Bins, rho*hp.EdgeShare)
	if err != nil {
		return nil, 0, fmt.Errorf("gbdt: edges: %w", err)
	}
	treeRho := rho * (1 - hp.EdgeShare)
	keep := make([]int, len(features))
	for i := range keep {
		keep[i] = i
	}
	base := 0.0
	if hp.MaxFeatures > 0 && hp.MaxFeatures < len(features) {
		treeRho = rho * (1 - hp.EdgeShare - hp.ScreenShare)
		if keep, base, err = screen(ctx, c, features, edges, hp, rho*hp.ScreenShare); err != nil {
			return nil, 0, fmt.Errorf("gbdt: screening: %w", err)
		}
	}
	names := make([]string, len(keep))
	kept := make([][]float64, len(keep))
	for i, f := range keep {
		names[i], kept[i] = features[f], edges[f]
	}
	var norm float64
	for t := range hp.Trees {
		for l := range hp.Depth {
			norm += math.Pow(hp.TreeDecay, float64(t)) * math.Pow(hp.LevelDecay, float64(l))
		}
	}
	p := &provider{c: c, cuts: gbdt.Cuts{Names: names, Edges: kept}, tree: -1,
		rho: func(t, l int) float64 {
			return treeRho * math.Pow(hp.TreeDecay, float64(t)) * math.Pow(hp.LevelDecay, float64(l)) / norm
		}}
	o := gbdt.DefaultOptions()
	o.NumTrees, o.MaxDepth, o.MaxLeaves, o.LearningRate = hp.Trees, hp.Depth, hp.MaxLeaves, hp.LearningRate
	o.Lambda, o.MinChildWeight, o.Gamma, o.BaseScore = hp.Lambda, hp.MinChildWeight, hp.Gamma, base
	m, err := gbdt.Train(ctx, p, nil, o)
	if err != nil {
		return nil, 0, err
	}
	m = widen(m, features, keep, edges)
	b, err = c.Budget(ctx)
	if err != nil {
		return nil, 0, err
	}
	return m, b.EpsilonSpent, nil
}

// screen asks one root answer over every feature at margin 0 and returns the hp.MaxFeatures features
// whose best split gains most (in feature order) and the base score, the log-odds of a positive read
// from the root sums (at margin 0, positives = 2·H − G and negatives = 2·H + G).
func screen(ctx context.Context, c sdk.AggregateClient, features []string, edges [][]float64, hp Hyperparameters, rho float64) ([]int, float64, error) {
	a, err := c.TreeHistograms(ctx, sdk.TreeQuery{Features: features, Edges: edges, Nodes: []sdk.TreeNodeQuery{{ID: 0}}, Rho: rho})
	if err != nil {
		return nil, 0, err
	}
	if len(a.Nodes) != 1 {
		return nil, 0, fmt.Errorf("%d node histograms for the root", len(a.Nodes))
	}
	h := a.Nodes[0]
	pos, neg := 2*h.SumH-h.SumG, 2*h.SumH+h.SumG
	base := 0.0
	if pos > 0 && neg > 0 {
		base = math.Log(pos / neg)
	}
	type scored struct {
		f    int
		gain float64
	}
	score := make([]scored, len(features))
	for f := range features {
		score[f] = scored{f, bestGain(h.G[f], h.H[f], hp.Lambda)}
	}
	slices.SortStableFunc(score, func(x, y scored) int { return cmp.Compare(y.gain, x.gain) })
	keep := make([]int, 0, hp.MaxFeatures)
	for _, s := range score[:hp.MaxFeatures] {
		keep = append(keep, s.f)
	}
	slices.Sort(keep)
	return keep, base, nil
}

// bestGain is the largest gain of a split of one feature's histogram (regular bins, then the
// missing bin last; missing values tried on either side), negative Hessians counted as 0.
func bestGain(G, H []float64, lambda float64) float64 {
	k := len(G) - 1 // regular bins
	var gt, ht float64
	for b := range G {
		gt, ht = gt+G[b], ht+math.Max(H[b], 0)
	}
	score := func(g, h float64) float64 { return g * g / (h + lambda + 1e-9) }
	best, gl, hl := 0.0, 0.0, 0.0
	gm, hm := G[k], math.Max(H[k], 0)
	for b := 0; b < k-1; b++ {
		gl, hl = gl+G[b], hl+math.Max(H[b], 0)
		for _, miss := range []bool{false, true} {
			l, lh := gl, hl
			if miss {
				l, lh = l+gm, lh+hm
			}
			best = math.Max(best, score(l, lh)+score(gt-l, ht-lh)-score(gt, ht))
		}
	}
	return best
}

// widen rewrites a model grown on the kept features as one over all the job's features, as the
// output gate reads it (trees named exactly as the job's features, in order).
func widen(m *gbdt.Model, features []string, keep []int, edges [][]float64) *gbdt.Model {
	out := &gbdt.Model{FeatureNames: slices.Clone(features), BaseScore: m.BaseScore, Edges: edges}
	for _, t := range m.Trees {
		nt := gbdt.Tree{Nodes: slices.Clone(t.Nodes)}
		for i := range nt.Nodes {
			if nt.Nodes[i].Feature >= 0 {
				nt.Nodes[i].Feature = keep[nt.Nodes[i].Feature]
			}
		}
		out.Trees = append(out.Trees, nt)
	}
	return out
}

// provider is a gbdt.Provider backed by the aggregate service: one TreeHistograms answer per level.
type provider struct {
	c     sdk.AggregateClient
	cuts  gbdt.Cuts
	model []byte
	// rho is the budget of level l of tree t; tree counts the trees begun, from 0.
	rho  func(t, l int) float64
	tree int
}

var _ gbdt.Provider = (*provider)(nil)

func (p *provider) Cuts() gbdt.Cuts { return p.cuts }

func (p *provider) BeginTree(_ context.Context, r gbdt.TreeRequest) error {
	p.model = nil
	p.tree++
	if r.Model != nil && (len(r.Model.Trees) > 0 || r.Model.BaseScore != 0) {
		b, err := json.Marshal(r.Model)
		if err != nil {
			return err
		}
		p.model = b
	}
	return nil
}

func (p *provider) Histograms(ctx context.Context, nodes []gbdt.NodeRequest) ([]gbdt.Histogram, error) {
	level := 0
	if len(nodes) > 0 {
		level = len(nodes[0].Path)
	}
	q := sdk.TreeQuery{Model: p.model, Features: p.cuts.Names, Edges: p.cuts.Edges, Rho: p.rho(max(p.tree, 0), level)}
	for _, n := range nodes {
		nq := sdk.TreeNodeQuery{ID: n.ID}
		for _, c := range n.Path {
			nq.Path = append(nq.Path, sdk.TreeCondition{Feature: c.Feature, Bin: c.Bin, MissingLeft: c.MissingLeft, Left: c.Left})
		}
		q.Nodes = append(q.Nodes, nq)
	}
	a, err := p.c.TreeHistograms(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(a.Nodes) != len(nodes) {
		return nil, fmt.Errorf("%d node histograms for %d nodes", len(a.Nodes), len(nodes))
	}
	out := make([]gbdt.Histogram, len(nodes))
	for i, h := range a.Nodes {
		// A suppressed node answers zeros: no split and a zero leaf.
		out[i] = gbdt.Histogram{G: h.G, H: h.H, SumG: h.SumG, SumH: h.SumH}
	}
	return out, nil
}

// Ensemble converts a trained model to the SDK's tree ensemble: a split after edge e (x <= e left)
// becomes x < t with t = math.Nextafter(e, +Inf), the same rows on either side.
func Ensemble(m *gbdt.Model) *sdk.TreeEnsemble {
	out := &sdk.TreeEnsemble{Features: append([]string(nil), m.FeatureNames...), BaseScore: m.BaseScore}
	for _, t := range m.Trees {
		var st sdk.Tree
		for _, n := range t.Nodes {
			if n.Feature < 0 {
				st.Nodes = append(st.Nodes, sdk.TreeNode{Feature: -1, Value: n.Value})
				continue
			}
			st.Nodes = append(st.Nodes, sdk.TreeNode{Feature: n.Feature, Threshold: math.Nextafter(n.Threshold, math.Inf(1)),
				Left: n.Left, Right: n.Right, MissingLeft: n.MissingLeft})
		}
		out.Trees = append(out.Trees, st)
	}
	return out
}
