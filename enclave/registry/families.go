package registry

import (
	"fmt"
	"slices"

	"insitu/enclave/gate"
	"insitu/modeling/binning"
	"insitu/modeling/gbdt"
	"insitu/modeling/pmml"
	"insitu/modeling/scorecard"
)

// Families of the other released kinds of model (the manifest's model.family of the reference
// plugins).
const (
	FamilyScorecard = "scorecard"
	FamilyGBDT      = "gbdt"
)

// DefaultReasonCodes is how many reason codes a scorecard's scores are served with (fewer when it has
// fewer characteristics).
const DefaultReasonCodes = 3

// treesFromRelease turns the gate's released ensemble into a modeling/gbdt model over features: the
// edges of each feature are the thresholds its splits use, and the nodes are renumbered so that
// every child comes after its parent (the order gbdt.Model keeps).
func treesFromRelease(t *gate.Trees, features []string) (*gbdt.Model, error) {
	if !slices.Equal(t.Features, features) {
		return nil, fmt.Errorf("%w: the trees' features are not the transforms' features", ErrFamily)
	}
	edges := make([][]float64, len(features))
	for j := range edges {
		edges[j] = []float64{}
	}
	for _, tr := range t.Trees {
		for _, n := range tr.Nodes {
			if n.Feature >= len(features) {
				return nil, fmt.Errorf("%w: a split on feature %d of %d", ErrFamily, n.Feature+1, len(features))
			}
			if n.Feature >= 0 {
				edges[n.Feature] = append(edges[n.Feature], n.Threshold)
			}
		}
	}
	for j := range edges {
		slices.Sort(edges[j])
		edges[j] = slices.Compact(edges[j])
	}
	m := &gbdt.Model{FeatureNames: slices.Clone(features), Edges: edges, BaseScore: t.BaseScore, Trees: make([]gbdt.Tree, len(t.Trees))}
	for k, tr := range t.Trees {
		if len(tr.Nodes) == 0 {
			return nil, fmt.Errorf("%w: tree %d has no nodes", ErrFamily, k+1)
		}
		// Breadth-first from the root: a node's new index is its place in the queue.
		order, index := []int{0}, map[int]int{0: 0}
		for q := 0; q < len(order); q++ {
			n := tr.Nodes[order[q]]
			if n.Feature < 0 {
				continue
			}
			for _, c := range []int{n.Left, n.Right} {
				if _, seen := index[c]; seen || c <= 0 || c >= len(tr.Nodes) {
					return nil, fmt.Errorf("%w: tree %d is not a tree", ErrFamily, k+1)
				}
				index[c] = len(order)
				order = append(order, c)
			}
		}
		nodes := make([]gbdt.Node, len(order))
		for i, old := range order {
			n := tr.Nodes[old]
			if n.Feature < 0 {
				nodes[i] = gbdt.Node{Feature: -1, Value: n.Value}
				continue
			}
			bin, _ := slices.BinarySearch(edges[n.Feature], n.Threshold)
			nodes[i] = gbdt.Node{Feature: n.Feature, Bin: bin, Threshold: n.Threshold, MissingLeft: n.MissingLeft,
				Left: index[n.Left], Right: index[n.Right]}
		}
		m.Trees[k] = gbdt.Tree{Nodes: nodes}
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFamily, err)
	}
	return m, nil
}

// scorecardFromRelease turns the gate's released points table into a modeling/scorecard one; the
// gate computed the points with whole-point rounding.
func scorecardFromRelease(s *gate.Scorecard) (*scorecard.Scorecard, error) {
	out := &scorecard.Scorecard{
		Scaling:   scorecard.Scaling{PDO: s.Scaling.PDO, BaseScore: s.Scaling.BaseScore, BaseOdds: s.Scaling.BaseOdds, Round: true},
		Intercept: s.Intercept, Factor: s.Factor, Offset: s.Offset}
	for _, c := range s.Characteristics {
		sc := scorecard.Characteristic{Feature: c.Feature, Edges: slices.Clone(c.Edges), Coefficient: c.Coefficient}
		for _, a := range c.Attributes {
			sc.Attributes = append(sc.Attributes, scorecard.Attribute{Label: a.Label, WoE: a.WoE, Points: a.Points})
		}
		out.Characteristics = append(out.Characteristics, sc)
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFamily, err)
	}
	return out, nil
}

// scorecardPoints is the points scaling of a scorecard's own scaling: the score it gives a
// probability is the scorecard's points.
func scorecardPoints(s *scorecard.Scorecard) pmml.Points {
	return pmml.Points{Base: s.Scaling.BaseScore, Odds: s.Scaling.BaseOdds, PDO: s.Scaling.PDO}
}

// characteristicIndex returns the feature index of each of a scorecard's characteristics, or an
// error when one is not a feature or they are out of the features' order.
func characteristicIndex(s *scorecard.Scorecard, features []string) ([]int, error) {
	idx := make([]int, len(s.Characteristics))
	last := -1
	for k, c := range s.Characteristics {
		j := slices.Index(features, c.Feature)
		if j <= last {
			return nil, fmt.Errorf("characteristic %q is not one of the features, or out of their order", c.Feature)
		}
		idx[k], last = j, j
	}
	return idx, nil
}

// Answer is a model's answer for one subject.
type Answer struct {
	// PD is the probability of default, rounded to the document's ProbabilityStep.
	PD float64
	// Score is the points score: a scorecard's points, otherwise Points applied to the unrounded
	// probability.
	Score float64
	// Reasons are a scorecard's reason codes (up to ReasonCodes, largest shortfall first), each
	// naming a characteristic and the label of the subject's bin (pmml.ReasonCode).
	Reasons []string
}

// Answer scores one transformed feature row (in Features order). It panics if the row's length
// differs from the features' (programmer error).
func (d *Document) Answer(x []float64) Answer {
	if len(x) != len(d.Features) {
		panic(fmt.Sprintf("registry: %d features for a model of %d", len(x), len(d.Features)))
	}
	if d.Scorecard == nil {
		pd, score := d.Round(d.Probability(x))
		return Answer{PD: pd, Score: score}
	}
	assign := d.assign(x)
	points, err := d.Scorecard.Points(assign)
	if err != nil {
		panic(err) // assign gives valid bins
	}
	pd, _ := d.Round(d.Scorecard.BadProbability(points))
	a := Answer{PD: pd, Score: points}
	if d.ReasonCodes > 0 {
		rc, err := d.Scorecard.ReasonCodes(assign, d.ReasonCodes)
		if err != nil {
			panic(err)
		}
		for _, r := range rc {
			a.Reasons = append(a.Reasons, pmml.ReasonCode(r.Feature, r.Label))
		}
	}
	return a
}

// assign returns the scorecard bin of each characteristic of feature row x.
func (d *Document) assign(x []float64) []int {
	idx := d.charIndex
	if idx == nil {
		var err error
		if idx, err = characteristicIndex(d.Scorecard, d.Features); err != nil {
			panic(fmt.Sprintf("registry: an unchecked document: %v", err))
		}
	}
	a := make([]int, len(idx))
	for k, j := range idx {
		a[k] = binning.BinIndex(d.Scorecard.Characteristics[k].Edges, x[j])
	}
	return a
}

// UsedInputs returns the input columns the model's answer depends on, in Inputs order: every input
// of a linear model, and those whose features a scorecard's characteristics or a tree ensemble's
// splits read. Online scoring serves a model only when they are at least the stewards' minimum.
func (d *Document) UsedInputs() []string {
	used := map[string]bool{}
	switch {
	case d.Scorecard != nil:
		for _, c := range d.Scorecard.Characteristics {
			used[c.Feature] = true
		}
	case d.Trees != nil:
		for _, t := range d.Trees.Trees {
			for _, n := range t.Nodes {
				if n.Feature >= 0 && n.Feature < len(d.Features) {
					used[d.Features[n.Feature]] = true
				}
			}
		}
	default:
		return slices.Clone(d.Inputs)
	}
	cols := map[string]bool{}
	if d.Transforms != nil {
		for _, fc := range d.Transforms.Columns {
			for _, o := range fc.Outputs {
				if used[o] {
					cols[fc.Column] = true
				}
			}
		}
	}
	var out []string
	for _, in := range d.Inputs {
		if cols[in] {
			out = append(out, in)
		}
	}
	return out
}

// checkFamily checks the scorecard or trees of a document.
func (d *Document) checkFamily(bad func(format string, a ...any) error) error {
	switch {
	case d.Scorecard != nil:
		if err := d.Scorecard.Validate(); err != nil {
			return bad("scorecard: %v", err)
		}
		idx, err := characteristicIndex(d.Scorecard, d.Features)
		if err != nil {
			return bad("scorecard: %v", err)
		}
		if d.ReasonCodes < 0 || d.ReasonCodes > len(d.Scorecard.Characteristics) {
			return bad("reason_codes must be 0 to the number of characteristics (%d)", len(d.Scorecard.Characteristics))
		}
		if d.Points != scorecardPoints(d.Scorecard) {
			return bad("a scorecard's points scaling must be its own scaling (base_score, base_odds, pdo)")
		}
		d.charIndex = idx
	case d.Trees != nil:
		if err := d.Trees.Validate(); err != nil {
			return bad("trees: %v", err)
		}
		if !slices.Equal(d.Trees.FeatureNames, d.Features) {
			return bad("the trees' feature_names must be the features, in order")
		}
	}
	if d.ReasonCodes != 0 && d.Scorecard == nil {
		return bad("only a scorecard has reason codes")
	}
	return nil
}
