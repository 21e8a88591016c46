// Package model is the logic of insitu's reference scorecard plugin in aggregate mode
// (sdk.ModeAggregate). It never sees a row; what it learns are answers of the enclave's aggregate
// service, thresholded and noised under the job's privacy budget:
//
//  1. fine edges: one histogram of every feature over a fixed grid, turned into edges of about equal
//     frequency (plugins/internal/aggplan; EdgeShare of the budget);
//  2. fine histograms per label at those edges (HistShare), binned with modeling/binning (monotone
//     WoE or ChiMerge), so coarse bins use only fine edges the enclave answered;
//  3. features kept by information value (MinIV, at most MaxFeatures);
//  4. logistic regression on their WoE by damped Newton steps: each step asks the service for the
//     per-bin sums of the log-loss gradient and Hessian at the current scorecard (TreeHistograms at
//     the root, the scorecard written as a one-tree-per-feature ensemble), which give the exact
//     gradient and the Hessian's diagonal and intercept row; the step solves that system and is
//     halved whenever the noisy gradient grows (the rest of the budget, evenly per step).
//
// The output is the scorecard as the output gate reads it: Output.Trees holds one tree per kept
// feature, splitting only on it at the coarse edges (x < t with t the float just above the edge)
// with each bin's WoE in its leaves and the missing bin's WoE in the leaf missing values reach;
// Output.Weights names those features with their coefficients and the intercept. The gate scales it
// into points with the manifest's scaling.
//
// Call New for the sdk.Model, or Serve to serve it as a plugin process.
package model

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/binning"
	"insitu/modeling/gbdt"
	"insitu/plugins/internal/aggplan"
	"insitu/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// Hyperparameters are the job's settings, a JSON object such as {"method": "monotone_woe"}.
type Hyperparameters struct {
	// Method is the binning method: monotone_woe (default) or chimerge.
	Method binning.Method `json:"method"`
	// MaxBins bounds the coarse bins of a feature (default 10).
	MaxBins int `json:"max_bins"`
	// FineBins is the number of fine bins per feature (default 64).
	FineBins int `json:"fine_bins"`
	// MinIV drops features whose information value is below it (default 0.02).
	MinIV float64 `json:"min_iv"`
	// MaxFeatures keeps at most this many features, the highest IV first (default 12).
	MaxFeatures int `json:"max_features"`
	// Lambda is the L2 penalty on the coefficients (default 1).
	Lambda float64 `json:"lambda"`
	// Steps is the number of Newton steps (default 8).
	Steps int `json:"steps"`
	// EdgeShare and HistShare are the shares of the budget spent on the edges and on the fine
	// histograms (defaults 0.1 and 0.4); the rest goes to the Newton steps.
	EdgeShare float64 `json:"edge_share"`
	HistShare float64 `json:"hist_share"`
}

// DefaultHyperparameters returns the defaults.
func DefaultHyperparameters() Hyperparameters {
	return Hyperparameters{Method: binning.MonotoneWoE, MaxBins: 10, FineBins: 64, MinIV: 0.02, MaxFeatures: 12, Lambda: 1, Steps: 8,
		EdgeShare: 0.1, HistShare: 0.4}
}

func (h Hyperparameters) check() error {
	ok := (h.Method == binning.MonotoneWoE || h.Method == binning.ChiMerge) && h.MaxBins >= 2 && h.MaxBins <= 64 &&
		h.FineBins >= 2 && h.FineBins <= 256 && h.MinIV >= 0 && h.MaxFeatures >= 1 && h.Lambda >= 0 && h.Steps >= 1 && h.Steps <= 100 &&
		h.EdgeShare > 0 && h.HistShare > 0 && h.EdgeShare+h.HistShare < 1
	if !ok {
		return &sdk.Error{Err: sdk.ErrHyperparameter, Detail: fmt.Sprintf("%+v: need method monotone_woe or chimerge, 2 <= max_bins <= 64, 2 <= fine_bins <= 256, min_iv >= 0, max_features >= 1, lambda >= 0, 1 <= steps <= 100, edge_share, hist_share > 0 with a sum below 1", h)}
	}
	return nil
}

// Model is the reference scorecard plugin.
type Model struct{}

var _ sdk.Model = (*Model)(nil)

// New returns the model.
func New() *Model { return &Model{} }

// Serve serves the model as a plugin process.
func Serve() { sdk.Serve(New()) }

// Describe declares a scorecard in aggregate mode that needs labels and returns the WoE trees and
// the coefficients.
func (*Model) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "scorecard", Version: Version, Family: sdk.FamilyScorecard, Mode: sdk.ModeAggregate,
		Outputs: []sdk.OutputKind{sdk.OutputTrees, sdk.OutputWeights, sdk.OutputMetrics}, Needs: sdk.Needs{Labels: true}}, nil
}

// Train fits the scorecard and returns it.
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
	f, err := Fit(ctx, in.Aggregate, in.Features, hp)
	if err != nil {
		return nil, err
	}
	in.Log.Info("fitted", "characteristics", len(f.Bins), "epsilon_spent", f.EpsilonSpent)
	out := f.Output(in.Features)
	out.Metrics = map[string]float64{"characteristics": float64(len(f.Bins)), "epsilon_spent": f.EpsilonSpent}
	return out, nil
}

// Fitted is a fitted scorecard before scaling: the kept features' binnings (in feature order), the
// coefficients on their WoE and the intercept.
type Fitted struct {
	Bins         []*binning.Binning
	Features     []int // index of each kept feature among the job's features
	Coef         []float64
	Intercept    float64
	EpsilonSpent float64
}

// Fit spends the job's remaining budget on the edges, the histograms and the Newton steps.
func Fit(ctx context.Context, c sdk.AggregateClient, features []string, hp Hyperparameters) (*Fitted, error) {
	b, err := c.Budget(ctx)
	if err != nil {
		return nil, err
	}
	rho := b.RhoLeft * (1 - 1e-9)
	if !(rho > 0) {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "the job has no privacy budget left"}
	}
	fine, err := aggplan.FineEdges(ctx, c, features, hp.FineBins, rho*hp.EdgeShare)
	if err != nil {
		return nil, fmt.Errorf("scorecard: edges: %w", err)
	}
	q := sdk.HistogramQuery{ByLabel: true, Rho: rho * hp.HistShare}
	for i, f := range features {
		q.Features = append(q.Features, sdk.Bins{Column: f, Edges: fine[i]})
	}
	hist, err := c.Histogram(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("scorecard: histograms: %w", err)
	}
	type cand struct {
		f int
		b *binning.Binning
	}
	var cands []cand
	for i, h := range hist.Features {
		k := len(h.Edges)
		bh := &binning.Hist{Feature: features[i], Edges: h.Edges, Good: h.Counts[0][:k+1], Bad: h.Counts[1][:k+1],
			MissingGood: h.Counts[0][k+1], MissingBad: h.Counts[1][k+1]}
		bn, err := binning.Fit(bh, binning.Options{Method: hp.Method, MaxBins: hp.MaxBins})
		if err != nil || len(bn.Edges) == 0 || bn.IV < hp.MinIV {
			continue // a feature the noisy histogram cannot bin, or too weak, is left out
		}
		cands = append(cands, cand{i, bn})
	}
	if len(cands) == 0 {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "no feature reaches the minimum information value: lower min_iv or spend more budget"}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return -cmpF(a.b.IV, b.b.IV) })
	cands = cands[:min(len(cands), hp.MaxFeatures)]
	slices.SortFunc(cands, func(a, b cand) int { return a.f - b.f })
	fit := &Fitted{}
	for _, cd := range cands {
		fit.Bins, fit.Features = append(fit.Bins, cd.b), append(fit.Features, cd.f)
	}
	if err := fit.newton(ctx, c, features, hp, rho*(1-hp.EdgeShare-hp.HistShare)/float64(hp.Steps)); err != nil {
		return nil, err
	}
	if b, err = c.Budget(ctx); err != nil {
		return nil, err
	}
	fit.EpsilonSpent = b.EpsilonSpent
	return fit, nil
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// newton runs the damped Newton steps, each from one root TreeHistograms answer.
func (f *Fitted) newton(ctx context.Context, c sdk.AggregateClient, features []string, hp Hyperparameters, rho float64) error {
	k := len(f.Bins)
	// Start from naive Bayes: every coefficient −1 on WoE = ln(%good/%bad), the intercept the
	// log-odds of a bad.
	var good, bad float64
	for _, bn := range f.Bins[:1] {
		for i := range bn.NumBins() {
			good, bad = good+bn.Bin(i).Good, bad+bn.Bin(i).Bad
		}
	}
	f.Coef = make([]float64, k)
	for j := range f.Coef {
		f.Coef[j] = -1 / math.Sqrt(float64(k))
	}
	f.Intercept = math.Log(math.Max(bad, 1) / math.Max(good, 1))
	names := make([]string, k)
	edges := make([][]float64, k)
	for j, bn := range f.Bins {
		names[j], edges[j] = features[f.Features[j]], bn.Edges
	}
	step := 1.0
	prevNorm := math.Inf(1)
	var prevTheta []float64
	for range hp.Steps {
		model, err := json.Marshal(f.ensemble(names))
		if err != nil {
			return err
		}
		a, err := c.TreeHistograms(ctx, sdk.TreeQuery{Model: model, Features: names, Edges: edges, Nodes: []sdk.TreeNodeQuery{{ID: 0}}, Rho: rho})
		if err != nil {
			return fmt.Errorf("scorecard: newton step: %w", err)
		}
		h := a.Nodes[0]
		d := k + 1
		g := make([]float64, d)
		H := mat.NewSymDense(d, nil)
		g[0] = h.SumG
		H.SetSym(0, 0, math.Max(h.SumH, 1))
		for j, bn := range f.Bins {
			var gj, hj, h0j float64
			for b := range bn.NumBins() {
				w := bn.Bin(b).WoE
				gj += w * h.G[j][b]
				hj += w * w * math.Max(h.H[j][b], 0)
				h0j += w * math.Max(h.H[j][b], 0)
			}
			g[j+1] = gj + hp.Lambda*f.Coef[j]
			H.SetSym(j+1, j+1, hj+hp.Lambda+1e-9)
			H.SetSym(0, j+1, h0j)
		}
		theta := append([]float64{f.Intercept}, f.Coef...)
		norm := 0.0
		for _, v := range g {
			norm += v * v
		}
		if norm > prevNorm && prevTheta != nil {
			// The last step made things worse: go back and take half of it.
			step /= 2
			theta = prevTheta
		} else {
			prevNorm = norm
		}
		var chol mat.Cholesky
		if !chol.Factorize(H) {
			return fmt.Errorf("scorecard: the noisy Hessian is not positive definite")
		}
		var dx mat.VecDense
		if err := chol.SolveVecTo(&dx, mat.NewVecDense(d, g)); err != nil {
			return err
		}
		prevTheta = slices.Clone(theta)
		// The Hessian's diagonal ignores the features' correlation, which makes full steps too long:
		// damp them by the number of features' square root.
		damp := step / math.Sqrt(float64(k))
		f.Intercept = theta[0] - damp*dx.AtVec(0)
		for j := range f.Coef {
			f.Coef[j] = theta[j+1] - damp*dx.AtVec(j+1)
		}
	}
	return nil
}

// ensemble writes the scorecard's margin as a gbdt model over the kept features: one chain tree per
// feature with β_j·WoE in the leaves, the intercept as the base score.
func (f *Fitted) ensemble(names []string) *gbdt.Model {
	m := &gbdt.Model{FeatureNames: names, BaseScore: f.Intercept}
	for j, bn := range f.Bins {
		m.Edges = append(m.Edges, bn.Edges)
		m.Trees = append(m.Trees, gbdt.Tree{Nodes: chain(j, bn, f.Coef[j], func(e float64) float64 { return e })})
	}
	return m
}

// chain builds the tree of one binning: node 2i splits after bin i (x <= edge i left, to the leaf of
// bin i), and a last split at the last edge sends missing values left, to the missing bin's leaf.
// Leaves hold scale·WoE; threshold maps an edge to the tree's threshold.
func chain(feature int, bn *binning.Binning, scale float64, threshold func(float64) float64) []gbdt.Node {
	var nodes []gbdt.Node
	k := len(bn.Edges)
	for i, e := range bn.Edges {
		nodes = append(nodes, gbdt.Node{Feature: feature, Bin: i, Threshold: threshold(e), Left: len(nodes) + 1, Right: len(nodes) + 2},
			gbdt.Node{Feature: -1, Value: scale * bn.Bins[i].WoE})
	}
	nodes = append(nodes, gbdt.Node{Feature: feature, Bin: k - 1, Threshold: threshold(bn.Edges[k-1]), MissingLeft: true, Left: len(nodes) + 1, Right: len(nodes) + 2},
		gbdt.Node{Feature: -1, Value: scale * bn.Missing.WoE}, gbdt.Node{Feature: -1, Value: scale * bn.Bins[k].WoE})
	return nodes
}

// Output returns the scorecard as the gate reads it (see the package documentation).
func (f *Fitted) Output(features []string) *sdk.Output {
	out := &sdk.Output{Trees: &sdk.TreeEnsemble{Features: slices.Clone(features)}, Weights: &sdk.Weights{Intercept: f.Intercept}}
	for j, bn := range f.Bins {
		var t sdk.Tree
		for _, n := range chain(f.Features[j], bn, 1, func(e float64) float64 { return math.Nextafter(e, math.Inf(1)) }) {
			if n.Feature < 0 {
				t.Nodes = append(t.Nodes, sdk.TreeNode{Feature: -1, Value: n.Value})
			} else {
				t.Nodes = append(t.Nodes, sdk.TreeNode{Feature: n.Feature, Threshold: n.Threshold, Left: n.Left, Right: n.Right, MissingLeft: n.MissingLeft})
			}
		}
		out.Trees.Trees = append(out.Trees.Trees, t)
		out.Weights.Names = append(out.Weights.Names, features[f.Features[j]])
		out.Weights.Values = append(out.Weights.Values, f.Coef[j])
	}
	return out
}

// Margin returns the log-odds of a bad for row x of the job's features.
func (f *Fitted) Margin(x []float64) float64 {
	z := f.Intercept
	for j, bn := range f.Bins {
		z += f.Coef[j] * bn.WoE(x[f.Features[j]])
	}
	return z
}
