// Package gbdt trains gradient-boosted decision trees for binary log-loss on binned features, the
// way xgboost's "hist" method does: second-order gradients, L2 on leaf values (lambda), minimum child
// Hessian weight, minimum split gain (gamma), depth and leaf limits, shrinkage, optional row
// subsampling and early stopping on a validation set.
//
// The tree builder never touches rows. Everything it learns comes through a Provider that answers
// one question: for these nodes, what are the sums of the gradients g and Hessians h of the rows in
// each feature bin? Exact is the in-memory provider for plaintext rows; the enclave's aggregate
// query service answers the same question with noise. So a model trained in aggregate mode splits
// only at the bin edges the provider declared, and its leaf values come from the (noisy) sums.
//
// To train on plaintext: cuts := QuantileCuts(X, names, 256); p, _ := NewExact(X, y, cuts); then
// Train(ctx, p, validator, DefaultOptions()). Use NewExactValidator for early stopping on a held-out
// set. The returned *Model predicts with PredictProba or Score, and marshals to JSON; ParseModel reads
// it back and checks its structure.
//
// # Conventions
//
// Feature f's cut points Edges[f] (finite, strictly ascending, at most 255) define len(Edges[f])+1
// regular bins — bin j holds Edges[f][j−1] < x <= Edges[f][j] — and a missing bin (NaN) with index
// len(Edges[f])+1. A split after regular bin b sends x <= Edges[f][b] left and larger values right;
// missing values go the side the split learnt (MissingLeft). For the log-loss at margin z with
// p = σ(z): g = p − y and h = p·(1 − p). A leaf's value is −η·G/(H + λ); a split's gain is
//
//	GL²/(HL + λ) + GR²/(HR + λ) − G²/(H + λ)
//
// (xgboost's loss_chg, without the factor ½), and a node is split only when the best gain exceeds
// gamma and both children have Hessian sum at least MinChildWeight. Noisy sums can be negative:
// a side whose H + λ is not positive is never chosen.
package gbdt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// Sentinel errors, wrapped by *Error.
var (
	// ErrModel: a model (or one read from JSON) is malformed.
	ErrModel = errors.New("malformed model")
	// ErrCuts: feature cut points are not finite, not strictly ascending or too many.
	ErrCuts = errors.New("invalid cut points")
	// ErrData: a training value or label is invalid.
	ErrData = errors.New("invalid training data")
	// ErrOptions: a training option is out of range.
	ErrOptions = errors.New("invalid training options")
	// ErrProvider: the histogram provider failed or answered with the wrong shape.
	ErrProvider = errors.New("histogram provider failed")
)

// Error describes a failure and where it comes from.
type Error struct {
	Tree    int    // 0-based tree, or -1
	Node    int    // 0-based node within the tree, or -1
	Feature string // feature name, or ""
	Detail  string
	Err     error
}

func (e *Error) Error() string {
	s := "gbdt"
	if e.Tree >= 0 {
		s += fmt.Sprintf(": tree %d", e.Tree)
	}
	if e.Node >= 0 {
		s += fmt.Sprintf(": node %d", e.Node)
	}
	if e.Feature != "" {
		s += fmt.Sprintf(": feature %q", e.Feature)
	}
	s += ": " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func errf(sentinel error, tree, node int, feature, format string, args ...any) *Error {
	return &Error{Tree: tree, Node: node, Feature: feature, Detail: fmt.Sprintf(format, args...), Err: sentinel}
}

// MaxEdges bounds the cut points per feature, so a feature has at most 256 regular bins.
const MaxEdges = 255

// Node is one node of a tree. A leaf has Feature −1 and a Value; an inner node splits on Feature at
// regular bin Bin: x <= Threshold (= the feature's edge Bin) goes to Left, larger to Right, missing to
// Left when MissingLeft.
type Node struct {
	Feature     int     `json:"feature"`
	Bin         int     `json:"bin,omitempty"`
	Threshold   float64 `json:"threshold,omitempty"`
	MissingLeft bool    `json:"missing_left,omitempty"`
	Left        int     `json:"left,omitempty"`
	Right       int     `json:"right,omitempty"`
	// Value is the leaf's contribution to the margin (shrinkage applied); 0 for inner nodes.
	Value float64 `json:"value"`
	// Gain is the split's gain (inner nodes) and Cover the Hessian sum of the node, as training saw
	// them; informational only.
	Gain  float64 `json:"gain,omitempty"`
	Cover float64 `json:"cover,omitempty"`
}

// Tree is a binary tree; Nodes[0] is the root and every child comes after its parent.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Model is a trained ensemble: P(y = 1 | x) = σ(BaseScore + Σ_trees leaf value).
type Model struct {
	FeatureNames []string `json:"feature_names"`
	// Edges are the cut points of each feature: every threshold in the trees is one of them.
	Edges [][]float64 `json:"edges"`
	// BaseScore is the starting margin (log-odds).
	BaseScore float64 `json:"base_score"`
	Trees     []Tree  `json:"trees"`
	// ValidLoss holds the validation log-loss after each round when early stopping was used.
	ValidLoss []float64 `json:"valid_loss,omitempty"`
}

func (t *Tree) leaf(x []float64) float64 {
	i := 0
	for {
		n := &t.Nodes[i]
		if n.Feature < 0 {
			return n.Value
		}
		v := x[n.Feature]
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
}

// Margin returns the log-odds of one row x (NaN = missing). It panics if len(x) does not match the
// model's features.
func (m *Model) Margin(x []float64) float64 {
	if len(x) != len(m.FeatureNames) {
		panic(fmt.Sprintf("gbdt: row has %d values but the model has %d features", len(x), len(m.FeatureNames)))
	}
	z := m.BaseScore
	for k := range m.Trees {
		z += m.Trees[k].leaf(x)
	}
	return z
}

// Score returns P(y = 1) for one row x, for online scoring. It panics if len(x) does not match.
func (m *Model) Score(x []float64) float64 { return sigmoid(m.Margin(x)) }

// PredictProba returns P(y = 1) for every row of X. It panics if X does not have one column per
// feature.
func (m *Model) PredictProba(X mat.Matrix) []float64 {
	n, d := X.Dims()
	if d != len(m.FeatureNames) {
		panic(fmt.Sprintf("gbdt: X has %d columns but the model has %d features", d, len(m.FeatureNames)))
	}
	out := make([]float64, n)
	row := make([]float64, d)
	for i := range n {
		mat.Row(row, i, X)
		out[i] = m.Score(row)
	}
	return out
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// checkEdges validates one feature's cut points.
func checkEdges(name string, e []float64) error {
	if len(e) > MaxEdges {
		return errf(ErrCuts, -1, -1, name, "%d cut points; at most %d", len(e), MaxEdges)
	}
	for j, v := range e {
		if math.IsNaN(v) || math.IsInf(v, 0) || (j > 0 && v <= e[j-1]) {
			return errf(ErrCuts, -1, -1, name, "cut point %d (%v) is not finite or not above the previous one", j, v)
		}
	}
	return nil
}

// Validate checks the model's structure: one edge list per named feature, valid cut points, and
// trees whose nodes each have exactly one parent that comes before them, split at a regular bin of
// their feature with the matching threshold, with finite values.
func (m *Model) Validate() error {
	if len(m.Edges) != len(m.FeatureNames) {
		return errf(ErrModel, -1, -1, "", "%d feature names but %d edge lists", len(m.FeatureNames), len(m.Edges))
	}
	for f, e := range m.Edges {
		if err := checkEdges(m.FeatureNames[f], e); err != nil {
			return err
		}
	}
	if math.IsNaN(m.BaseScore) || math.IsInf(m.BaseScore, 0) {
		return errf(ErrModel, -1, -1, "", "base score %v", m.BaseScore)
	}
	for t := range m.Trees {
		nodes := m.Trees[t].Nodes
		if len(nodes) == 0 {
			return errf(ErrModel, t, -1, "", "tree has no nodes")
		}
		parents := make([]int, len(nodes))
		for i, n := range nodes {
			if math.IsNaN(n.Value) || math.IsInf(n.Value, 0) {
				return errf(ErrModel, t, i, "", "value %v is not finite", n.Value)
			}
			if n.Feature < 0 {
				if n.Feature != -1 {
					return errf(ErrModel, t, i, "", "feature %d: a leaf has feature -1", n.Feature)
				}
				continue
			}
			if n.Feature >= len(m.FeatureNames) {
				return errf(ErrModel, t, i, "", "feature %d of %d", n.Feature, len(m.FeatureNames))
			}
			e := m.Edges[n.Feature]
			if n.Bin < 0 || n.Bin >= len(e) || e[n.Bin] != n.Threshold {
				return errf(ErrModel, t, i, m.FeatureNames[n.Feature], "threshold %v at bin %d is not one of the feature's cut points", n.Threshold, n.Bin)
			}
			for _, c := range []int{n.Left, n.Right} {
				if c <= i || c >= len(nodes) || parents[c] != 0 || n.Left == n.Right {
					return errf(ErrModel, t, i, "", "child %d must come after its parent, exist and have no other parent", c)
				}
				parents[c] = i + 1
			}
		}
		for i := 1; i < len(nodes); i++ {
			if parents[i] == 0 {
				return errf(ErrModel, t, i, "", "node has no parent")
			}
		}
	}
	return nil
}

// Stats reports the largest depth and leaf count over the trees, for checking declared bounds.
func (m *Model) Stats() (maxDepth, maxLeaves int) {
	for _, t := range m.Trees {
		depth := make([]int, len(t.Nodes))
		leaves := 0
		for i, n := range t.Nodes {
			if n.Feature < 0 {
				leaves++
				maxDepth = max(maxDepth, depth[i])
				continue
			}
			depth[n.Left], depth[n.Right] = depth[i]+1, depth[i]+1
		}
		maxLeaves = max(maxLeaves, leaves)
	}
	return maxDepth, maxLeaves
}

// ParseModel reads a model from JSON and validates it (see Validate). Unknown fields are errors.
func ParseModel(b []byte) (*Model, error) {
	var m Model
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, errf(ErrModel, -1, -1, "", "decode JSON: %v", err)
	}
	if dec.More() {
		return nil, errf(ErrModel, -1, -1, "", "trailing data after the model")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// binIndex is the regular bin of x under edges (x not NaN).
func binIndex(edges []float64, x float64) int { return sort.SearchFloat64s(edges, x) }
