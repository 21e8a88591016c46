// Package model is the logic of insitu's reference scorecard plugin in aggregate mode
// (sdk.ModeAggregate). It never sees a row; what it learns are answers of the enclave's aggregate
// service, thresholded and noised under the job's privacy budget:
//
//  1. fine edges: one histogram of every feature over a fixed grid, turned into edges of about equal
//     frequency, with the grid edges of a heavy value's tail kept too (plugins/internal/aggplan;
//     EdgeShare of the budget);
//  2. fine histograms per label at those edges (HistShare), binned with modeling/binning (ChiMerge
//     by default, or monotone WoE; bins of at least MinBinShare of the rows), so coarse bins use
//     only fine edges the enclave answered;
//  3. features kept by information value (MinIV, at most MaxFeatures);
//  4. one count table per pair of kept features at their coarse bins (CorrShare), which give the
//     correlation of their weights of evidence;
//  5. logistic regression on their WoE by Newton steps (the rest of the budget, evenly per step):
//     each step asks the service for the per-bin sums of the log-loss gradient and Hessian at the
//     current scorecard (TreeHistograms at the root, the scorecard written as a one-tree-per-feature
//     ensemble), which give the gradient, the Hessian's diagonal and its intercept row; the
//     correlation of step 4 gives its cross terms. A secant line search on the directional
//     derivative along the previous step, free of queries, pulls an overshooting step back, and
//     every coefficient stays at most 0, so that a better bin never costs points.
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
	// Method is the binning method: chimerge (default) or monotone_woe.
	Method binning.Method `json:"method"`
	// MaxBins bounds the coarse bins of a feature (default 10).
	MaxBins int `json:"max_bins"`
	// MinBinShare: a coarse bin holds at least this share of the rows (binning's MinBinShare); 0,
	// the default, means the larger of 1 % and 250 rows, so that a small cohort's bins keep enough
	// rows for a stable bad rate.
	MinBinShare float64 `json:"min_bin_share"`
	// FineBins is the number of fine bins per feature (default 32).
	FineBins int `json:"fine_bins"`
	// MinIV drops features whose information value is below it (default 0.02).
	MinIV float64 `json:"min_iv"`
	// MaxFeatures keeps at most this many features, the highest IV first (default 12).
	MaxFeatures int `json:"max_features"`
	// Lambda is the L2 penalty on the coefficients (default 1).
	Lambda float64 `json:"lambda"`
	// Steps is the number of Newton steps (default 8).
	Steps int `json:"steps"`
	// MaxStep bounds how far one Newton step moves any coefficient (default 1).
	MaxStep float64 `json:"max_step"`
	// EdgeShare and HistShare are the shares of the budget spent on the edges and on the fine
	// histograms (defaults 0.1 and 0.4); the rest goes to the Newton steps.
	EdgeShare float64 `json:"edge_share"`
	HistShare float64 `json:"hist_share"`
	// CorrShare is the share spent on the pairwise count tables the Newton steps' cross terms come
	// from (default 0.1).
	CorrShare float64 `json:"corr_share"`
	// MaxAbs, when above 0, bounds every weight of evidence, coefficient and the intercept of the
	// released scorecard to [−MaxAbs, MaxAbs]: set it to the manifest's outputs.scorecard.max_abs so
	// that a rare extreme value from a small, noisy bin is clipped here instead of refused by the
	// gate. The number clipped is logged. Default 0: nothing is clipped.
	MaxAbs float64 `json:"max_abs"`
}

// DefaultHyperparameters returns the defaults.
func DefaultHyperparameters() Hyperparameters {
	return Hyperparameters{Method: binning.ChiMerge, MaxBins: 10, FineBins: 32, MinIV: 0.02, MaxFeatures: 12, Lambda: 1, Steps: 8, MaxStep: 1,
		EdgeShare: 0.1, HistShare: 0.4, CorrShare: 0.1}
}

func (h Hyperparameters) check() error {
	ok := (h.Method == binning.MonotoneWoE || h.Method == binning.ChiMerge) && h.MaxBins >= 2 && h.MaxBins <= 64 && h.MaxAbs >= 0 &&
		h.FineBins >= 2 && h.FineBins <= 256 && h.MinBinShare >= 0 && h.MinBinShare < 0.5 && h.MinIV >= 0 && h.MaxFeatures >= 1 && h.Lambda >= 0 && h.Steps >= 1 && h.Steps <= 100 && h.MaxStep > 0 &&
		h.EdgeShare > 0 && h.HistShare > 0 && h.CorrShare > 0 && h.EdgeShare+h.HistShare+h.CorrShare < 1
	if !ok {
		return &sdk.Error{Err: sdk.ErrHyperparameter, Detail: fmt.Sprintf("%+v: need method monotone_woe or chimerge, 2 <= max_bins <= 64, 2 <= fine_bins <= 256, 0 <= min_bin_share < 0.5, min_iv >= 0, max_features >= 1, lambda >= 0, 1 <= steps <= 100, max_step > 0, edge_share, hist_share, corr_share > 0 with a sum below 1", h)}
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
	clipped := 0
	if hp.MaxAbs > 0 {
		clipped = f.clip(hp.MaxAbs)
	}
	in.Log.Info("fitted", "characteristics", len(f.Bins), "epsilon_spent", f.EpsilonSpent, "clipped", clipped)
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
		share := hp.MinBinShare
		if share == 0 {
			var n float64
			for _, row := range h.Counts {
				for _, c := range row {
					n += math.Max(c, 0)
				}
			}
			share = math.Min(0.25, math.Max(0.01, 250/math.Max(n, 1)))
		}
		bn, err := binning.Fit(bh, binning.Options{Method: hp.Method, MaxBins: hp.MaxBins, MinBinShare: share})
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
	names := make([]string, len(fit.Bins))
	for j := range fit.Bins {
		names[j] = features[fit.Features[j]]
	}
	R, err := fit.correlation(ctx, c, names, rho*hp.CorrShare)
	if err != nil {
		return nil, fmt.Errorf("scorecard: correlation: %w", err)
	}
	fit.start()
	if err := fit.newton(ctx, c, features, hp, R, rho*(1-hp.EdgeShare-hp.HistShare-hp.CorrShare)/float64(hp.Steps)); err != nil {
		return nil, err
	}
	if b, err = c.Budget(ctx); err != nil {
		return nil, err
	}
	fit.EpsilonSpent = b.EpsilonSpent
	return fit, nil
}

// woeVar is the variance of characteristic j's WoE over its binning's (noisy) counts.
func (f *Fitted) woeVar(j int) float64 {
	bn := f.Bins[j]
	var n, m, s float64
	for b := range bn.NumBins() {
		c, w := math.Max(bn.Bin(b).Good+bn.Bin(b).Bad, 0), bn.Bin(b).WoE
		n, m, s = n+c, m+c*w, s+c*w*w
	}
	if n <= 0 {
		return 0
	}
	m /= n
	return math.Max(s/n-m*m, 0)
}

// start sets the Newton steps' starting point: every coefficient −1/√k on WoE = ln(%good/%bad),
// and the intercept the log-odds of a bad in the first characteristic's histogram.
func (f *Fitted) start() {
	k := len(f.Bins)
	var good, bad float64
	bn := f.Bins[0]
	for i := range bn.NumBins() {
		good, bad = good+bn.Bin(i).Good, bad+bn.Bin(i).Bad
	}
	f.Coef = make([]float64, k)
	for j := range f.Coef {
		f.Coef[j] = -1 / math.Sqrt(float64(k))
	}
	f.Intercept = math.Log(math.Max(bad, 1) / math.Max(good, 1))
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

// correlation returns the correlation matrix of the kept features' weights of evidence over the
// cohort, from one noisy count table per pair of features (rho spread evenly over the pairs): the
// cross terms of the Newton steps' Hessian, which the per-bin gradient sums do not give. It is made
// positive definite and shrunk a little towards the identity, so that noise never makes a step
// unbounded.
func (f *Fitted) correlation(ctx context.Context, c sdk.AggregateClient, names []string, rho float64) (*mat.SymDense, error) {
	k := len(f.Bins)
	R := mat.NewSymDense(k, nil)
	for j := range k {
		R.SetSym(j, j, 1)
	}
	pairs := k * (k - 1) / 2
	if pairs == 0 {
		return R, nil
	}
	for a := range k {
		for b := a + 1; b < k; b++ {
			ans, err := c.Query(ctx, sdk.AggregateQuery{Statistic: sdk.StatCount, Rho: rho / float64(pairs),
				GroupBy: []sdk.Bins{{Column: names[a], Edges: f.Bins[a].Edges}, {Column: names[b], Edges: f.Bins[b].Edges}}})
			if err != nil {
				return nil, err
			}
			var n, ma, mb, saa, sbb, sab float64
			for _, cell := range ans.Cells {
				if cell.Suppressed || len(cell.Bins) != 2 || !(cell.Value > 0) {
					continue
				}
				wa, wb := f.Bins[a].Bin(cell.Bins[0]).WoE, f.Bins[b].Bin(cell.Bins[1]).WoE
				v := cell.Value
				n, ma, mb = n+v, ma+v*wa, mb+v*wb
				saa, sbb, sab = saa+v*wa*wa, sbb+v*wb*wb, sab+v*wa*wb
			}
			if n <= 0 {
				continue
			}
			ma, mb = ma/n, mb/n
			va, vb := saa/n-ma*ma, sbb/n-mb*mb
			if va <= 0 || vb <= 0 {
				continue
			}
			r := (sab/n - ma*mb) / math.Sqrt(va*vb)
			R.SetSym(a, b, math.Max(-0.99, math.Min(0.99, r)))
		}
	}
	// Positive definite: eigenvalues at least 0.02, back to a unit diagonal, 5 % towards I.
	var eig mat.EigenSym
	if !eig.Factorize(R, true) {
		return nil, fmt.Errorf("scorecard: the correlation matrix does not factorise")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	for i := range vals {
		vals[i] = math.Max(vals[i], 0.02)
	}
	P := mat.NewSymDense(k, nil)
	for a := range k {
		for b := a; b < k; b++ {
			var v float64
			for i, l := range vals {
				v += vecs.At(a, i) * l * vecs.At(b, i)
			}
			P.SetSym(a, b, v)
		}
	}
	for a := range k {
		for b := a; b < k; b++ {
			v := P.At(a, b) / math.Sqrt(P.At(a, a)*P.At(b, b))
			if a == b {
				v = 1
			} else {
				v *= 0.95
			}
			R.SetSym(a, b, v)
		}
	}
	return R, nil
}

// newton runs the Newton steps, each from one root TreeHistograms answer: the per-bin sums of the
// log-loss gradient and Hessian at the current scorecard give the gradient, the Hessian's diagonal
// and its intercept row; the cross terms come from the weights of evidence's correlation R (the
// Hessian's centred part D^½·R·D^½, so the matrix is positive definite by construction). A secant
// line search on the gradient along the last step costs no query: when the new gradient says the
// step overshot, the scorecard moves back to where the directional derivative is zero, and the
// gradient there is interpolated.
func (f *Fitted) newton(ctx context.Context, c sdk.AggregateClient, features []string, hp Hyperparameters, R *mat.SymDense, rho float64) error {
	k := len(f.Bins)
	d := k + 1
	names := make([]string, k)
	edges := make([][]float64, k)
	for j, bn := range f.Bins {
		names[j], edges[j] = features[f.Features[j]], bn.Edges
	}
	theta := append([]float64{f.Intercept}, f.Coef...)
	var prevTheta, prevStep, prevGrad []float64
	for range hp.Steps {
		f.Intercept, f.Coef = theta[0], theta[1:]
		model, err := json.Marshal(f.ensemble(names))
		if err != nil {
			return err
		}
		a, err := c.TreeHistograms(ctx, sdk.TreeQuery{Model: model, Features: names, Edges: edges, Nodes: []sdk.TreeNodeQuery{{ID: 0}}, Rho: rho})
		if err != nil {
			return fmt.Errorf("scorecard: newton step: %w", err)
		}
		h := a.Nodes[0]
		g := make([]float64, d)
		h0 := make([]float64, d) // Σ h·w_j, the intercept row
		hd := make([]float64, d) // Σ h·w_j², the diagonal
		g[0] = h.SumG
		H00 := math.Max(h.SumH, 1)
		for j, bn := range f.Bins {
			for b := range bn.NumBins() {
				w, hb := bn.Bin(b).WoE, math.Max(h.H[j][b], 0)
				g[j+1] += w * h.G[j][b]
				h0[j+1] += w * hb
				hd[j+1] += w * w * hb
			}
			g[j+1] += hp.Lambda * theta[j+1]
		}
		if prevStep != nil {
			// Secant line search along the last step: φ'(0) = g₀·s, φ'(1) = g₁·s.
			s0, s1 := mat.Dot(mat.NewVecDense(d, prevGrad), mat.NewVecDense(d, prevStep)), mat.Dot(mat.NewVecDense(d, g), mat.NewVecDense(d, prevStep))
			if s0 < 0 && s1 > 0 {
				t := s0 / (s0 - s1)
				for i := range theta {
					theta[i] = prevTheta[i] + t*prevStep[i]
					g[i] = (1-t)*prevGrad[i] + t*g[i]
				}
			}
		}
		m := make([]float64, d)
		sd := make([]float64, d)
		for j := 1; j < d; j++ {
			// The h-weighted variance of a WoE, floored at a quarter of its variance over the
			// binning's counts: noise must not make a characteristic look constant.
			m[j] = h0[j] / H00
			sd[j] = math.Sqrt(math.Max(hd[j]/H00-m[j]*m[j], math.Max(f.woeVar(j-1)/4, 1e-9)))
		}
		H := mat.NewSymDense(d, nil)
		H.SetSym(0, 0, H00)
		for i := 1; i < d; i++ {
			H.SetSym(0, i, h0[i])
			for j := i; j < d; j++ {
				H.SetSym(i, j, H00*(R.At(i-1, j-1)*sd[i]*sd[j]+m[i]*m[j]))
			}
			H.SetSym(i, i, H.At(i, i)+hp.Lambda+1e-9)
		}
		var chol mat.Cholesky
		for shift := 0.0; !chol.Factorize(H); {
			shift = math.Max(2*shift, 1e-9*math.Max(1, mat.Trace(H)))
			for j := range d {
				H.SetSym(j, j, H.At(j, j)+shift)
			}
		}
		var dx mat.VecDense
		if err := chol.SolveVecTo(&dx, mat.NewVecDense(d, g)); err != nil {
			return err
		}
		// A trust region: no coefficient moves by more than MaxStep in one step (the whole step is
		// scaled), so that a noisy, flat direction cannot throw the scorecard far away.
		scale := 1.0
		for i := 1; i < d; i++ {
			if a := math.Abs(dx.AtVec(i)); a > hp.MaxStep {
				scale = math.Min(scale, hp.MaxStep/a)
			}
		}
		prevTheta, prevGrad, prevStep = slices.Clone(theta), g, make([]float64, d)
		for i := range theta {
			prevStep[i] = -scale * dx.AtVec(i)
			if i > 0 && theta[i]+prevStep[i] > 0 {
				// A coefficient on WoE = ln(%good/%bad) stays at most 0: a better bin never costs
				// points (correlated characteristics can otherwise flip a sign).
				prevStep[i] = -theta[i]
			}
			theta[i] += prevStep[i]
		}
	}
	f.Intercept, f.Coef = theta[0], theta[1:]
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

// clip bounds every weight of evidence, coefficient and the intercept to [−bound, bound] and returns
// how many it changed.
func (f *Fitted) clip(bound float64) int {
	n := 0
	c := func(v *float64) {
		if w := math.Max(-bound, math.Min(bound, *v)); w != *v {
			*v, n = w, n+1
		}
	}
	c(&f.Intercept)
	for j, bn := range f.Bins {
		c(&f.Coef[j])
		for i := range bn.Bins {
			c(&bn.Bins[i].WoE)
		}
		c(&bn.Missing.WoE)
	}
	return n
}

// Margin returns the log-odds of a bad for row x of the job's features.
func (f *Fitted) Margin(x []float64) float64 {
	z := f.Intercept
	for j, bn := range f.Bins {
		z += f.Coef[j] * bn.WoE(x[f.Features[j]])
	}
	return z
}
