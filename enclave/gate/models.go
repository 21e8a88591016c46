package gate

import (
	"fmt"
	"math"
	"slices"

	"insitu/enclave/job/manifest"
	"insitu/modeling/binning"
	"insitu/modeling/scorecard"
	"insitu/plugins/sdk"
)

// The tree and scorecard families. Neither is convex, so neither can be verified against an optimum
// the way logistic regression is; the gate checks their structure instead, which bounds what they
// can carry:
//
//   - every split (a tree's threshold, a scorecard's bin edge) lies at an edge the aggregate query
//     service answered for the job on that feature (AggregateRecord.Edges), so a split says which of
//     those edges was chosen and nothing finer;
//   - trees, depth, leaves and bins are within the manifest's declared bounds;
//   - every real value (leaf values and the base score; weights of evidence, coefficients and the
//     intercept) is finite, within the declared max_abs and rounded to step = max_abs·2⁻¹²; scorecard
//     points are computed by the gate from the rounded values and rounded to whole points.
//
// The bits bound (ModelBitsBound) counts, in the worst case, every rounded value as one of the
// 2⌊max_abs/step⌋+1 grid values and every split as one of the answered edges plus two bits for the
// tree's shape and the side missing values take.

// Trees is a released tree ensemble: P(y = 1 | x) = σ(BaseScore + Σ_trees the Value of the leaf x
// reaches). A split sends x to Left when x[Feature] <= Threshold, to Right otherwise, and a missing
// value to Left when MissingLeft is set: the convention of modeling/gbdt and of the aggregate
// service's bins, where Threshold is a bin edge. (A plugin returns each split in plugins/sdk's
// convention, x < t, with t the float just above the edge: math.Nextafter(edge, +Inf).)
type Trees struct {
	Features  []string `json:"features"`
	BaseScore float64  `json:"base_score"`
	Trees     []Tree   `json:"trees"`
}

// Tree is one tree of a released ensemble; Nodes[0] is the root.
type Tree struct {
	Nodes []TreeNode `json:"nodes"`
}

// TreeNode is a split (Feature ≥ 0) or a leaf (Feature −1, carrying Value).
type TreeNode struct {
	Feature     int     `json:"feature"`
	Threshold   float64 `json:"threshold,omitempty"`
	Left        int     `json:"left,omitempty"`
	Right       int     `json:"right,omitempty"`
	MissingLeft bool    `json:"missing_left,omitempty"`
	Value       float64 `json:"value,omitempty"`
}

// Scorecard is a released points table: a subject's score is the sum of the points of the bin it
// falls in on every characteristic, and its probability of default is 1/(1 + exp((score −
// Offset)/Factor)). Bins are those of modeling/binning and of the aggregate service: with edges
// e_0 < … < e_{k−1}, bin 0 holds x <= e_0, bin j holds e_{j−1} < x <= e_j, bin k holds x > e_{k−1},
// and bin k+1 holds missing values (binning.BinIndex).
type Scorecard struct {
	Scaling         ScorecardScaling `json:"scaling"`
	Intercept       float64          `json:"intercept"`
	Factor          float64          `json:"factor"`
	Offset          float64          `json:"offset"`
	Characteristics []Characteristic `json:"characteristics"`
}

// ScorecardScaling is the scaling the manifest declared: PDO points double the odds of good to bad,
// which are BaseOdds at BaseScore.
type ScorecardScaling struct {
	PDO       float64 `json:"pdo"`
	BaseScore float64 `json:"base_score"`
	BaseOdds  float64 `json:"base_odds"`
}

// Characteristic is one feature of a released scorecard: its edges, the regression's coefficient on
// its weight of evidence, and one attribute per bin (len(Edges)+2, the missing bin last).
type Characteristic struct {
	Feature     string      `json:"feature"`
	Edges       []float64   `json:"edges"`
	Coefficient float64     `json:"coefficient"`
	Attributes  []Attribute `json:"attributes"`
}

// Attribute is one bin of a characteristic: its label, weight of evidence and points.
type Attribute struct {
	Label  string  `json:"label"`
	WoE    float64 `json:"woe"`
	Points float64 `json:"points"`
}

// Score returns the points of a row x of the scorecard's characteristics' values, in their order.
func (s *Scorecard) Score(x []float64) float64 {
	var total float64
	for j, c := range s.Characteristics {
		total += c.Attributes[binning.BinIndex(c.Edges, x[j])].Points
	}
	return total
}

// ModelBitsBound returns the worst-case number of bits a plugin can hide in a released tree ensemble
// or scorecard: params real values, each a multiple of step within ±maxAbs, and splits splits, each
// at one of choices answered edges (0: any float64, 64 bits) plus two bits of shape and missing side.
// The result is rounded up to 1/100 of a bit. It panics on a non-positive step or maxAbs.
func ModelBitsBound(params, splits, choices int, step, maxAbs float64) float64 {
	if !(step > 0) || !(maxAbs > 0) {
		panic("gate: ModelBitsBound needs step > 0 and maxAbs > 0")
	}
	perValue := math.Log2(2*math.Floor(maxAbs/step) + 1)
	perSplit := 64.0
	if choices > 0 {
		perSplit = math.Log2(float64(choices))
	}
	b := float64(params)*perValue + float64(splits)*(perSplit+2)
	return math.Ceil(b*100) / 100
}

// answeredEdges returns the sorted distinct answered edges per feature index, and their total
// count; nil outside aggregate mode (plaintext rows of public data have no answered edges).
func answeredEdges(r Request) ([][]float64, int, *RefusalError) {
	if r.Job.Manifest.Mode != sdk.ModeAggregate {
		return nil, 0, nil
	}
	if r.Aggregate == nil {
		return nil, 0, refuse(CodeEdges, "the enclave holds no record of the aggregate answers of this job, so the splits cannot be checked")
	}
	out := make([][]float64, len(r.Eval.Features))
	total := 0
	for j, f := range r.Eval.Features {
		e := slices.Clone(r.Aggregate.Edges[f])
		slices.Sort(e)
		out[j] = slices.Compact(e)
		total += len(out[j])
	}
	return out, total, nil
}

// splitEdge returns the edge of a plugin's split of feature f at threshold t (x < t, plugins/sdk's
// convention): the float just below t, so that x <= edge exactly when x < t. It reports whether the
// edge is one the service answered (always, without a record).
func splitEdge(answered [][]float64, f int, t float64) (float64, bool) {
	edge := math.Nextafter(t, math.Inf(-1))
	if answered == nil {
		return edge, true
	}
	_, ok := slices.BinarySearch(answered[f], edge)
	return edge, ok
}

// treeShape returns a tree's depth and leaf count; sdk.TreeEnsemble.Check has made it a tree.
func treeShape(t sdk.Tree) (depth, leaves int) {
	d := make([]int, len(t.Nodes))
	for i, n := range t.Nodes {
		if n.Feature < 0 {
			leaves++
			depth = max(depth, d[i])
			continue
		}
		d[n.Left], d[n.Right] = d[i]+1, d[i]+1
	}
	return depth, leaves
}

// walk returns the value of the leaf row x reaches in released tree t.
func walk(t []TreeNode, x func(f int) float64) float64 {
	i := 0
	for t[i].Feature >= 0 {
		n := t[i]
		v := x(n.Feature)
		switch {
		case math.IsNaN(v):
			if n.MissingLeft {
				i = n.Left
			} else {
				i = n.Right
			}
		case v <= n.Threshold:
			i = n.Left
		default:
			i = n.Right
		}
	}
	return t[i].Value
}

// walkSDK returns the value of the leaf value v reaches in a plugin's one-feature tree t (x < t
// goes left).
func walkSDK(t sdk.Tree, v float64) float64 {
	i := 0
	for t.Nodes[i].Feature >= 0 {
		n := t.Nodes[i]
		switch {
		case math.IsNaN(v):
			if n.MissingLeft {
				i = n.Left
			} else {
				i = n.Right
			}
		case v < n.Threshold:
			i = n.Left
		default:
			i = n.Right
		}
	}
	return t.Nodes[i].Value
}

// declaredTrees checks the output of a job that declares outputs.trees: nothing but trees (and
// dropped scores and metrics), over the cohort's features, within the declared bounds, splitting
// only at answered edges; it returns them with their values rounded.
func declaredTrees(r Request, decl *manifest.TreesOutput, step float64) (*Trees, modelSize, *RefusalError) {
	o, feats := r.Output, r.Eval.Features
	switch {
	case len(o.Ciphertexts) > 0:
		return nil, modelSize{}, refuse(CodeUndeclaredCiphertext, "ciphertexts are an output of HE jobs only")
	case o.Weights != nil:
		return nil, modelSize{}, refuse(CodeUndeclaredOutput, "the output holds weights, which the manifest does not declare for a tree ensemble")
	case o.Trees == nil:
		return nil, modelSize{}, refuse(CodeTreesMissing, "the output holds no trees")
	case !slices.Equal(o.Trees.Features, feats):
		return nil, modelSize{}, refuse(CodeWeightNames, "the trees' features must be named exactly as the job's features, in the same order")
	case len(o.Trees.Trees) > decl.MaxTrees:
		return nil, modelSize{}, refuse(CodeTreeBound, fmt.Sprintf("the output holds more trees than the declared max_trees %d", decl.MaxTrees))
	}
	if err := o.Trees.Check(); err != nil {
		return nil, modelSize{}, &RefusalError{Code: CodeTreeStructure, Reason: "the trees are malformed", detail: err.Error()}
	}
	answered, choices, rerr := answeredEdges(r)
	if rerr != nil {
		return nil, modelSize{}, rerr
	}
	value := func(v float64) (float64, *RefusalError) {
		if math.Abs(v) > decl.MaxAbs {
			return 0, refuse(CodeTreeBound, fmt.Sprintf("a leaf value or the base score exceeds the declared max_abs %g", decl.MaxAbs))
		}
		return roundTo(v, step), nil
	}
	out := &Trees{Features: slices.Clone(feats), Trees: make([]Tree, len(o.Trees.Trees))}
	var err *RefusalError
	if out.BaseScore, err = value(o.Trees.BaseScore); err != nil {
		return nil, modelSize{}, err
	}
	params, splits := 1, 0
	for ti, t := range o.Trees.Trees {
		depth, leaves := treeShape(t)
		if depth > decl.MaxDepth {
			return nil, modelSize{}, refuse(CodeTreeBound, fmt.Sprintf("a tree is deeper than the declared max_depth %d", decl.MaxDepth))
		}
		if leaves > decl.MaxLeaves {
			return nil, modelSize{}, refuse(CodeTreeBound, fmt.Sprintf("a tree has more leaves than the declared max_leaves %d", decl.MaxLeaves))
		}
		nodes := make([]TreeNode, len(t.Nodes))
		for i, n := range t.Nodes {
			if n.Feature < 0 {
				v, err := value(n.Value)
				if err != nil {
					return nil, modelSize{}, err
				}
				nodes[i] = TreeNode{Feature: -1, Value: v}
				params++
				continue
			}
			edge, ok := splitEdge(answered, n.Feature, n.Threshold)
			if !ok {
				return nil, modelSize{}, refuse(CodeSplitEdge, "a split lies at a value that is not a bin edge the aggregate service answered for its feature")
			}
			nodes[i] = TreeNode{Feature: n.Feature, Threshold: edge, Left: n.Left, Right: n.Right, MissingLeft: n.MissingLeft}
			splits++
		}
		out.Trees[ti] = Tree{Nodes: nodes}
	}
	return out, modelSize{params: params, splits: splits, choices: choices}, nil
}

// modelSize counts what a released tree ensemble or scorecard can carry: its real values, its splits
// and the answered edges each split chose among (0 without a record).
type modelSize struct{ params, splits, choices int }

// treeScores returns σ(margin), rounded to step, for every train row then every test row.
func treeScores(e *Evaluation, t *Trees, step float64) []float64 {
	nTrain := len(e.TrainY)
	out := make([]float64, nTrain+len(e.TestY))
	for i := range out {
		x := func(f int) float64 {
			if i < nTrain {
				return e.TrainX[f][i]
			}
			return e.TestX[f][i-nTrain]
		}
		z := t.BaseScore
		for _, tr := range t.Trees {
			z += walk(tr.Nodes, x)
		}
		out[i] = roundTo(1/(1+math.Exp(-z)), step)
	}
	return out
}

// declaredScorecard checks the output of a job that declares outputs.scorecard and builds the points
// table. The plugin returns the scorecard as Output.Trees, one tree per characteristic splitting only
// on its feature with each bin's weight of evidence in its leaves (base score 0), and Output.Weights,
// the coefficients named by those features in the same order and the intercept.
func declaredScorecard(r Request, decl *manifest.ScorecardOutput, step float64) (*Scorecard, modelSize, *RefusalError) {
	o, feats := r.Output, r.Eval.Features
	switch {
	case len(o.Ciphertexts) > 0:
		return nil, modelSize{}, refuse(CodeUndeclaredCiphertext, "ciphertexts are an output of HE jobs only")
	case o.Trees == nil || o.Weights == nil:
		return nil, modelSize{}, refuse(CodeScorecardShape, "a scorecard comes as trees (one per characteristic, weights of evidence in the leaves) and weights (one coefficient per characteristic and the intercept)")
	case !slices.Equal(o.Trees.Features, feats):
		return nil, modelSize{}, refuse(CodeWeightNames, "the trees' features must be named exactly as the job's features, in the same order")
	case len(o.Weights.Names) != len(o.Trees.Trees) || len(o.Weights.Values) != len(o.Trees.Trees) || len(o.Trees.Trees) == 0:
		return nil, modelSize{}, refuse(CodeScorecardShape, "a scorecard needs at least one characteristic, and one coefficient per characteristic")
	case o.Trees.BaseScore != 0:
		return nil, modelSize{}, refuse(CodeScorecardShape, "a scorecard's trees carry weights of evidence only: their base score must be 0")
	}
	if err := o.Trees.Check(); err != nil {
		return nil, modelSize{}, &RefusalError{Code: CodeTreeStructure, Reason: "the scorecard's trees are malformed", detail: err.Error()}
	}
	answered, choices, rerr := answeredEdges(r)
	if rerr != nil {
		return nil, modelSize{}, rerr
	}
	value := func(v float64) (float64, *RefusalError) {
		if math.Abs(v) > decl.MaxAbs {
			return 0, refuse(CodeScorecardBound, fmt.Sprintf("a weight of evidence, a coefficient or the intercept exceeds the declared max_abs %g", decl.MaxAbs))
		}
		return roundTo(v, step), nil
	}
	intercept, rerr := value(o.Weights.Intercept)
	if rerr != nil {
		return nil, modelSize{}, rerr
	}
	bins := make([]*binning.Binning, len(o.Trees.Trees))
	coef := make([]float64, len(bins))
	params, splits, last := 1, 0, -1
	for k, t := range o.Trees.Trees {
		f := -1
		var edges []float64
		for _, n := range t.Nodes {
			if n.Feature < 0 {
				continue
			}
			if f >= 0 && n.Feature != f {
				return nil, modelSize{}, refuse(CodeScorecardShape, "a characteristic's tree splits on more than one feature")
			}
			f = n.Feature
			edge, ok := splitEdge(answered, f, n.Threshold)
			if !ok {
				return nil, modelSize{}, refuse(CodeSplitEdge, "a bin edge lies at a value that is not a bin edge the aggregate service answered for its feature")
			}
			edges = append(edges, edge)
		}
		if f < 0 {
			return nil, modelSize{}, refuse(CodeScorecardShape, "a characteristic's tree does not split: a characteristic needs at least two bins")
		}
		if f <= last || o.Weights.Names[k] != feats[f] {
			return nil, modelSize{}, refuse(CodeScorecardShape, "characteristics must come in the order of the job's features, each once, with their coefficients named alike")
		}
		last = f
		slices.Sort(edges)
		edges = slices.Compact(edges)
		if len(edges)+1 > decl.MaxBins {
			return nil, modelSize{}, refuse(CodeScorecardBound, fmt.Sprintf("a characteristic has more bins than the declared max_bins %d", decl.MaxBins))
		}
		b := &binning.Binning{Feature: feats[f], Edges: edges, Bins: make([]binning.Bin, len(edges)+1)}
		// Bin i holds its upper edge (the last bin +Inf); every threshold lies just above an edge, so
		// the whole bin takes the same path.
		for i := range b.Bins {
			rep := math.Inf(1)
			if i < len(edges) {
				rep = edges[i]
			}
			if b.Bins[i].WoE, rerr = value(walkSDK(t, rep)); rerr != nil {
				return nil, modelSize{}, rerr
			}
		}
		if b.Missing.WoE, rerr = value(walkSDK(t, math.NaN())); rerr != nil {
			return nil, modelSize{}, rerr
		}
		if coef[k], rerr = value(o.Weights.Values[k]); rerr != nil {
			return nil, modelSize{}, rerr
		}
		bins[k] = b
		params += len(b.Bins) + 2
		splits += len(edges)
	}
	sc, err := scorecard.New(bins, coef, intercept, scorecard.Scaling{PDO: decl.PDO, BaseScore: decl.BaseScore, BaseOdds: decl.BaseOdds, Round: true})
	if err != nil {
		return nil, modelSize{}, &RefusalError{Code: CodeScorecardShape, Reason: "the scorecard's points cannot be computed", detail: err.Error()}
	}
	out := &Scorecard{Scaling: ScorecardScaling{PDO: decl.PDO, BaseScore: decl.BaseScore, BaseOdds: decl.BaseOdds},
		Intercept: sc.Intercept, Factor: sc.Factor, Offset: sc.Offset}
	for _, c := range sc.Characteristics {
		rc := Characteristic{Feature: c.Feature, Edges: c.Edges, Coefficient: c.Coefficient}
		for _, a := range c.Attributes {
			if !(math.Abs(a.Points) <= decl.MaxPoints) {
				return nil, modelSize{}, refuse(CodeScorecardBound, fmt.Sprintf("an attribute's points exceed the declared max_points %g", decl.MaxPoints))
			}
			rc.Attributes = append(rc.Attributes, Attribute{Label: a.Label, WoE: a.WoE, Points: a.Points})
		}
		out.Characteristics = append(out.Characteristics, rc)
	}
	return out, modelSize{params: params, splits: splits, choices: choices}, nil
}

// scorecardScores returns the probability of default of every train row then every test row, from
// the points of the released scorecard, rounded to step.
func scorecardScores(e *Evaluation, s *Scorecard, step float64) []float64 {
	idx := make([]int, len(s.Characteristics))
	for k, c := range s.Characteristics {
		idx[k] = slices.Index(e.Features, c.Feature)
	}
	nTrain := len(e.TrainY)
	out := make([]float64, nTrain+len(e.TestY))
	x := make([]float64, len(idx))
	for i := range out {
		for k, f := range idx {
			if i < nTrain {
				x[k] = e.TrainX[f][i]
			} else {
				x[k] = e.TestX[f][i-nTrain]
			}
		}
		out[i] = roundTo(1/(1+math.Exp((s.Score(x)-s.Offset)/s.Factor)), step)
	}
	return out
}

// Refusal codes of the tree and scorecard families.
const (
	CodeEdges          Code = "edges_unknown"
	CodeTreesMissing   Code = "trees_missing"
	CodeTreeStructure  Code = "tree_structure"
	CodeTreeBound      Code = "tree_bound"
	CodeSplitEdge      Code = "split_not_answered"
	CodeScorecardShape Code = "scorecard_shape"
	CodeScorecardBound Code = "scorecard_bound"
)

// decideTrees checks and rounds a gbdt job's trees and recomputes the scores from them.
func (g *Gate) decideTrees(r Request) (*outcome, *RefusalError) {
	m, decl := r.Job.Manifest, r.Job.Manifest.Outputs.Trees
	step := g.step(decl.MaxAbs)
	t, size, rerr := declaredTrees(r, decl, step)
	if rerr != nil {
		return nil, rerr
	}
	out := &outcome{trees: t, verdict: g.structureVerdict(m, decl.MaxAbs, step, size)}
	if rerr := releaseScores(m, r.Eval, treeScores(r.Eval, t, g.opts.ScoreStep), out); rerr != nil {
		return nil, rerr
	}
	return out, nil
}

// decideScorecard checks a scorecard job's output, builds the points table and recomputes the
// scores from its points.
func (g *Gate) decideScorecard(r Request) (*outcome, *RefusalError) {
	m, decl := r.Job.Manifest, r.Job.Manifest.Outputs.Scorecard
	step := g.step(decl.MaxAbs)
	sc, size, rerr := declaredScorecard(r, decl, step)
	if rerr != nil {
		return nil, rerr
	}
	out := &outcome{scorecard: sc, verdict: g.structureVerdict(m, decl.MaxAbs, step, size)}
	if rerr := releaseScores(m, r.Eval, scorecardScores(r.Eval, sc, g.opts.ScoreStep), out); rerr != nil {
		return nil, rerr
	}
	return out, nil
}

func (g *Gate) step(maxAbs float64) float64 {
	if g.opts.Step != 0 {
		return g.opts.Step
	}
	return maxAbs * g.opts.RelativeStep
}

func (g *Gate) structureVerdict(m *manifest.Manifest, maxAbs, step float64, s modelSize) Verdict {
	return Verdict{Result: VerdictStructure, Family: m.Model.Family, MaxAbs: maxAbs, Step: step, ScoreStep: g.opts.ScoreStep,
		Parameters: s.params, Splits: s.splits, SplitChoices: s.choices,
		BitsBound: ModelBitsBound(s.params, s.splits, s.choices, step, maxAbs)}
}

// checkStructure checks a structure verdict against the released trees or scorecard: the counts and
// the bits bound follow from them.
func (b *Bundle) checkStructure() error {
	g := b.Gate
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrResult, fmt.Sprintf(format, args...))
	}
	if !(g.Step > 0 && g.MaxAbs > 0) || g.Splits < 0 || g.SplitChoices < 0 {
		return bad("the verdict's parameters are out of range")
	}
	params, splits := 0, 0
	switch {
	case b.Trees != nil && b.Scorecard == nil && b.Weights == nil:
		params = 1
		for _, t := range b.Trees.Trees {
			for _, n := range t.Nodes {
				if n.Feature < 0 {
					params++
				} else {
					splits++
				}
			}
		}
	case b.Scorecard != nil && b.Trees == nil && b.Weights == nil:
		params = 1
		for _, c := range b.Scorecard.Characteristics {
			params += len(c.Edges) + 3
			splits += len(c.Edges)
		}
	default:
		return bad("a structure verdict comes with trees or a scorecard, and nothing else")
	}
	if params != g.Parameters || splits != g.Splits {
		return bad("%d parameters and %d splits, the verdict counts %d and %d", params, splits, g.Parameters, g.Splits)
	}
	if ModelBitsBound(params, splits, g.SplitChoices, g.Step, g.MaxAbs) != g.BitsBound {
		return bad("the bits bound does not follow from the released model")
	}
	return nil
}
