// Package model is the logic of insitu's reference gradient-boosted trees plugin: histogram GBDT
// (modeling/gbdt) in aggregate mode (sdk.ModeAggregate), where every histogram the tree builder
// needs is an answer of the enclave's aggregate service (sdk.AggregateClient.TreeHistograms),
// thresholded and noised under the job's privacy budget.
//
// Call New for the sdk.Model, or Serve to serve it as a plugin process. The job's hyperparameters
// decode into Hyperparameters; the defaults are tuned for noisy sums, where every answer costs budget
// and adds noise to every cell: 8 bins, 10 trees of depth 2, η 0.5, λ 10, min child weight 50
// (Taiwan at ε = 8 through plugins/internal/aggfake: test AUC 0.768, against 0.670 with 50 trees of
// depth 3 over 32 bins).
//
// The privacy budget: a share (EdgeShare) of what the job may spend goes to one histogram over a
// fixed grid, from which the plugin picks fine edges of about equal frequency (plugins/internal
// aggplan); the rest is divided evenly among the tree levels, one TreeHistograms answer each.
// The output is the ensemble as an sdk.TreeEnsemble; a split after a bin edge e (x <= e goes left,
// as the service bins) becomes sdk's x < t with t the float just above e.
package model

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"insitu/modeling/gbdt"
	"insitu/plugins/internal/aggplan"
	"insitu/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// Hyperparameters are the job's settings, a JSON object such as {"trees": 50, "depth": 3}.
type Hyperparameters struct {
	// Trees is the number of boosting rounds (default 10).
	Trees int `json:"trees"`
	// Depth bounds every tree's depth (default 2).
	Depth int `json:"depth"`
	// MaxLeaves bounds every tree's leaves; 0 leaves only Depth (default 0).
	MaxLeaves int `json:"max_leaves"`
	// Bins is the number of fine bins per feature (default 8, at most 256).
	Bins int `json:"bins"`
	// LearningRate is the shrinkage η (default 0.5).
	LearningRate float64 `json:"learning_rate"`
	// Lambda is the L2 penalty on leaf values (default 10).
	Lambda float64 `json:"lambda"`
	// MinChildWeight is the smallest noisy Hessian sum of a child (default 50).
	MinChildWeight float64 `json:"min_child_weight"`
	// Gamma is the smallest gain of a split (default 0).
	Gamma float64 `json:"gamma"`
	// EdgeShare is the share of the budget spent on choosing the edges (default 0.05).
	EdgeShare float64 `json:"edge_share"`
}

// DefaultHyperparameters returns the defaults.
func DefaultHyperparameters() Hyperparameters {
	return Hyperparameters{Trees: 10, Depth: 2, Bins: 8, LearningRate: 0.5, Lambda: 10, MinChildWeight: 50, EdgeShare: 0.05}
}

func (h Hyperparameters) check() error {
	ok := h.Trees >= 1 && h.Trees <= 10_000 && h.Depth >= 1 && h.Depth <= 16 && h.MaxLeaves >= 0 && h.Bins >= 2 && h.Bins <= 256 &&
		h.LearningRate > 0 && h.LearningRate <= 1 && h.Lambda >= 0 && h.MinChildWeight >= 0 && h.Gamma >= 0 &&
		h.EdgeShare > 0 && h.EdgeShare < 1
	if !ok {
		return &sdk.Error{Err: sdk.ErrHyperparameter, Detail: fmt.Sprintf("%+v: need 1 <= trees <= 10000, 1 <= depth <= 16, 2 <= bins <= 256, 0 < learning_rate <= 1, lambda, min_child_weight, gamma >= 0, 0 < edge_share < 1", h)}
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
	p := &provider{c: c, cuts: gbdt.Cuts{Names: features, Edges: edges}, rho: rho * (1 - hp.EdgeShare) / float64(hp.Trees*hp.Depth)}
	o := gbdt.DefaultOptions()
	o.NumTrees, o.MaxDepth, o.MaxLeaves, o.LearningRate = hp.Trees, hp.Depth, hp.MaxLeaves, hp.LearningRate
	o.Lambda, o.MinChildWeight, o.Gamma = hp.Lambda, hp.MinChildWeight, hp.Gamma
	m, err := gbdt.Train(ctx, p, nil, o)
	if err != nil {
		return nil, 0, err
	}
	b, err = c.Budget(ctx)
	if err != nil {
		return nil, 0, err
	}
	return m, b.EpsilonSpent, nil
}

// provider is a gbdt.Provider backed by the aggregate service: one TreeHistograms answer per level.
type provider struct {
	c     sdk.AggregateClient
	cuts  gbdt.Cuts
	model []byte
	rho   float64
}

var _ gbdt.Provider = (*provider)(nil)

func (p *provider) Cuts() gbdt.Cuts { return p.cuts }

func (p *provider) BeginTree(_ context.Context, r gbdt.TreeRequest) error {
	p.model = nil
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
	q := sdk.TreeQuery{Model: p.model, Features: p.cuts.Names, Edges: p.cuts.Edges, Rho: p.rho}
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
