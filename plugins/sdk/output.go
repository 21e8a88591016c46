package sdk

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxNameBytes bounds every name in an output: weight, feature, metric and ciphertext names and
// subject pseudonyms.
const MaxNameBytes = 256

// MaxMetrics bounds the number of metrics in an output.
const MaxMetrics = 1024

// MaxCiphertexts bounds the number of ciphertexts in an output.
const MaxCiphertexts = 4096

// Output is what Train returns. Set only the outputs the Description declares; nil and empty
// outputs are not sent.
type Output struct {
	// Weights is a linear model: one weight per name plus an intercept.
	Weights *Weights
	// Trees is a tree ensemble.
	Trees *TreeEnsemble
	// Scores holds one score per subject pseudonym.
	Scores []Score
	// Metrics holds named training metrics (e.g. "auc", "log_loss").
	Metrics map[string]float64
	// Ciphertexts holds encrypted outputs for the gate to decrypt, in ModeHE.
	Ciphertexts []Ciphertext
}

// Weights is a named weight vector: the model's log-odds are Σ Values[i]·x[Names[i]] + Intercept.
type Weights struct {
	Names     []string
	Values    []float64
	Intercept float64
}

// Score is the model's score of one subject.
type Score struct {
	// Subject is the subject's pseudonym, as streamed in the Subject column.
	Subject string
	Value   float64
}

// Ciphertext is one named ciphertext, serialised as the HE context's scheme does.
type Ciphertext struct {
	Name string
	Data []byte
}

// TreeEnsemble is an additive ensemble of binary decision trees, as gradient-boosted trees produce.
// For a row x the ensemble's raw score is BaseScore plus, for each tree, the Value of the leaf x
// reaches; for a binary classifier the raw score is the log-odds.
type TreeEnsemble struct {
	// Features names the inputs that TreeNode.Feature indexes.
	Features []string
	// BaseScore is added to the sum of the trees' leaf values.
	BaseScore float64
	Trees     []Tree
}

// Tree is one decision tree. Nodes[0] is the root; every child index is greater than its parent's
// index and every node except the root is the child of exactly one node.
type Tree struct {
	Nodes []TreeNode
}

// TreeNode is a split or a leaf. A split sends x to Left when x[Feature] < Threshold, to Right
// otherwise, and a missing (NaN) value to Left when MissingLeft is set. A leaf has Feature -1 and
// carries Value; Threshold, Left, Right and MissingLeft are zero.
type TreeNode struct {
	Feature     int
	Threshold   float64
	Left, Right int
	MissingLeft bool
	Value       float64
}

// Floats returns the number of floating-point values of o, the quantity Limits.MaxOutputFloats
// bounds.
func (o *Output) Floats() int64 {
	var n int64
	if o.Weights != nil {
		n += int64(len(o.Weights.Values)) + 1
	}
	if o.Trees != nil {
		n++
		for _, t := range o.Trees.Trees {
			n += 2 * int64(len(t.Nodes))
		}
	}
	return n + int64(len(o.Scores)) + int64(len(o.Metrics))
}

// Bytes returns the size of o that Limits.MaxOutputBytes bounds: 8 bytes per float (Floats),
// plus the bytes of every name and of the ciphertexts.
func (o *Output) Bytes() int64 {
	n := 8 * o.Floats()
	if o.Weights != nil {
		for _, s := range o.Weights.Names {
			n += int64(len(s))
		}
	}
	if o.Trees != nil {
		for _, s := range o.Trees.Features {
			n += int64(len(s))
		}
	}
	for _, s := range o.Scores {
		n += int64(len(s.Subject))
	}
	for k := range o.Metrics {
		n += int64(len(k))
	}
	for _, c := range o.Ciphertexts {
		n += int64(len(c.Name)) + int64(len(c.Data))
	}
	return n
}

// Check validates o against the Description that declared it and the job's Limits: only declared
// outputs; sizes within the limits; finite values; non-empty, valid UTF-8 names of at most
// MaxNameBytes without repeats; weights with one name per value; trees whose nodes form trees over
// the declared features. The error wraps ErrOutputTooLarge or ErrInvalidOutput.
func (o *Output) Check(d *Description, l Limits) error {
	l = l.WithDefaults()
	if n := o.Floats(); n > l.MaxOutputFloats {
		return &Error{Err: ErrOutputTooLarge, Detail: fmt.Sprintf("%d floating-point values, limit %d", n, l.MaxOutputFloats)}
	}
	if n := o.Bytes(); n > l.MaxOutputBytes {
		return &Error{Err: ErrOutputTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", n, l.MaxOutputBytes)}
	}
	if len(o.Metrics) > MaxMetrics {
		return &Error{Err: ErrOutputTooLarge, Detail: fmt.Sprintf("%d metrics, limit %d", len(o.Metrics), MaxMetrics)}
	}
	if len(o.Ciphertexts) > MaxCiphertexts {
		return &Error{Err: ErrOutputTooLarge, Detail: fmt.Sprintf("%d ciphertexts, limit %d", len(o.Ciphertexts), MaxCiphertexts)}
	}
	undeclared := func(k OutputKind) error {
		return &Error{Column: string(k), Err: ErrInvalidOutput, Detail: "output not declared by Describe"}
	}
	if o.Weights != nil {
		if !d.Declares(OutputWeights) {
			return undeclared(OutputWeights)
		}
		if err := o.Weights.check(); err != nil {
			return err
		}
	}
	if o.Trees != nil {
		if !d.Declares(OutputTrees) {
			return undeclared(OutputTrees)
		}
		if err := o.Trees.Check(); err != nil {
			return err
		}
	}
	if len(o.Scores) > 0 {
		if !d.Declares(OutputScores) {
			return undeclared(OutputScores)
		}
		seen := make(map[string]struct{}, len(o.Scores))
		for i, s := range o.Scores {
			if err := checkName("score subject", s.Subject, seen); err != nil {
				return err
			}
			if !finite(s.Value) {
				return invalid("scores", fmt.Sprintf("score %d (subject %q) is %v", i+1, clip(s.Subject), s.Value))
			}
		}
	}
	if len(o.Metrics) > 0 {
		if !d.Declares(OutputMetrics) {
			return undeclared(OutputMetrics)
		}
		for name, v := range o.Metrics {
			if err := checkName("metric", name, nil); err != nil {
				return err
			}
			if !finite(v) {
				return invalid("metrics", fmt.Sprintf("metric %q is %v; leave out a metric that is undefined", clip(name), v))
			}
		}
	}
	if len(o.Ciphertexts) > 0 {
		if !d.Declares(OutputCiphertexts) {
			return undeclared(OutputCiphertexts)
		}
		seen := make(map[string]struct{}, len(o.Ciphertexts))
		for _, c := range o.Ciphertexts {
			if err := checkName("ciphertext", c.Name, seen); err != nil {
				return err
			}
			if len(c.Data) == 0 {
				return invalid("ciphertexts", fmt.Sprintf("ciphertext %q is empty", clip(c.Name)))
			}
		}
	}
	return nil
}

func (w *Weights) check() error {
	if len(w.Names) != len(w.Values) {
		return invalid("weights", fmt.Sprintf("%d names but %d values", len(w.Names), len(w.Values)))
	}
	seen := make(map[string]struct{}, len(w.Names))
	for i, name := range w.Names {
		if err := checkName("weight", name, seen); err != nil {
			return err
		}
		if !finite(w.Values[i]) {
			return invalid("weights", fmt.Sprintf("weight %q is %v", clip(name), w.Values[i]))
		}
	}
	if !finite(w.Intercept) {
		return invalid("weights", fmt.Sprintf("intercept is %v", w.Intercept))
	}
	return nil
}

// Check validates the ensemble's structure: named features without repeats, finite values, every
// split on a declared feature, and child indices that make each tree a tree rooted at node 0.
// The error wraps ErrInvalidOutput.
func (e *TreeEnsemble) Check() error {
	seen := make(map[string]struct{}, len(e.Features))
	size := 0
	for _, f := range e.Features {
		if err := checkName("tree feature", f, seen); err != nil {
			return err
		}
		size += len(f) + namedValueOverhead
	}
	if size > partBudget {
		return &Error{Column: "trees", Err: ErrOutputTooLarge, Detail: fmt.Sprintf("the feature names take %d bytes, limit %d", size, partBudget)}
	}
	if !finite(e.BaseScore) {
		return invalid("trees", fmt.Sprintf("base score is %v", e.BaseScore))
	}
	for ti, t := range e.Trees {
		if err := t.check(len(e.Features)); err != nil {
			return invalid("trees", fmt.Sprintf("tree %d: %s", ti, err))
		}
	}
	return nil
}

func (t Tree) check(features int) error {
	if len(t.Nodes) == 0 {
		return fmt.Errorf("no nodes")
	}
	parents := make([]int32, len(t.Nodes))
	for i, n := range t.Nodes {
		if !finite(n.Value) || !finite(n.Threshold) {
			return fmt.Errorf("node %d has a value or threshold that is not finite", i)
		}
		if n.Feature == -1 {
			if n.Left != 0 || n.Right != 0 || n.MissingLeft || n.Threshold != 0 {
				return fmt.Errorf("leaf node %d has children or a split", i)
			}
			continue
		}
		if n.Feature < 0 || n.Feature >= features {
			return fmt.Errorf("node %d splits on feature %d of %d", i, n.Feature, features)
		}
		if n.Value != 0 {
			return fmt.Errorf("split node %d has a value", i)
		}
		for _, c := range []int{n.Left, n.Right} {
			if c <= i || c >= len(t.Nodes) {
				return fmt.Errorf("node %d has child %d: children must come after their parent and exist", i, c)
			}
			if parents[c] != 0 {
				return fmt.Errorf("node %d is the child of two nodes", c)
			}
			parents[c] = int32(i) + 1
		}
	}
	for i := 1; i < len(t.Nodes); i++ {
		if parents[i] == 0 {
			return fmt.Errorf("node %d is nobody's child", i)
		}
	}
	return nil
}

// checkName checks a name's syntax and, when seen is non-nil, that it is not a repeat.
func checkName(what, name string, seen map[string]struct{}) error {
	switch {
	case name == "":
		return invalid(what, "empty name")
	case len(name) > MaxNameBytes:
		return invalid(what, fmt.Sprintf("name %q is longer than %d bytes", clip(name), MaxNameBytes))
	case !utf8.ValidString(name) || hasControl(name):
		return invalid(what, fmt.Sprintf("name %q is not printable UTF-8", clip(name)))
	}
	if seen != nil {
		if _, dup := seen[name]; dup {
			return invalid(what, fmt.Sprintf("name %q appears twice", clip(name)))
		}
		seen[name] = struct{}{}
	}
	return nil
}

func invalid(what, detail string) error {
	return &Error{Column: what, Err: ErrInvalidOutput, Detail: detail}
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
