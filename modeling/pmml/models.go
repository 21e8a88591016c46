package pmml

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"insitu/modeling/gbdt"
	"insitu/modeling/scorecard"
)

// ReasonCode is the reason code of bin label of a scorecard's characteristic feature: "feature:
// label", e.g. "tax.amount: (100, 250]" or "tax.amount: missing". It names the bin, never a value.
func ReasonCode(feature, label string) string { return feature + ": " + label }

// ReasonMargin is δ of the package comment: half the smallest gap, over the characteristics,
// between a characteristic's best points and its next-best distinct points (½ when no
// characteristic has two distinct values).
func ReasonMargin(s *scorecard.Scorecard) float64 {
	gap := math.Inf(1)
	for _, c := range s.Characteristics {
		best := math.Inf(-1)
		for _, a := range c.Attributes {
			best = max(best, a.Points)
		}
		for _, a := range c.Attributes {
			if d := best - a.Points; d > 0 {
				gap = min(gap, d)
			}
		}
	}
	if math.IsInf(gap, 1) {
		return 0.5
	}
	return gap / 2
}

// featureFields maps feature names (outputs of the transforms) to the PMML fields that hold them.
func featureFields(names, outputs []string) map[string]string {
	m := make(map[string]string, len(names))
	for j, n := range names {
		m[n] = outputs[j]
	}
	return m
}

// binPredicate is the predicate of regular bin i under edges: x <= e_0, e_{i−1} < x <= e_i, or
// x > e_{k−1} (True without edges).
func binPredicate(field string, edges []float64, i int) *element {
	le := func(v float64) *element {
		return el("SimplePredicate", "field", field, "operator", "lessOrEqual", "value", num(v))
	}
	gt := func(v float64) *element {
		return el("SimplePredicate", "field", field, "operator", "greaterThan", "value", num(v))
	}
	switch {
	case len(edges) == 0:
		return el("True")
	case i == 0:
		return le(edges[0])
	case i == len(edges):
		return gt(edges[i-1])
	}
	return el("CompoundPredicate", "booleanOperator", "and").add(gt(edges[i-1]), le(edges[i]))
}

// scorecardModel writes a scorecard as a Scorecard element.
func scorecardModel(m *Model, w *writer, derived []*element, outputs, names []string) (*element, error) {
	sc := m.Scorecard
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	if m.ReasonCodes < 0 || m.ReasonCodes > len(sc.Characteristics) {
		return nil, fmt.Errorf("%w: %d reason codes for %d characteristics", ErrModel, m.ReasonCodes, len(sc.Characteristics))
	}
	fields := featureFields(names, outputs)
	last := -1
	for _, c := range sc.Characteristics {
		j := slices.Index(names, c.Feature)
		if j <= last {
			return nil, fmt.Errorf("%w: characteristic %q is not a feature of the transforms, or out of their order", ErrModel, c.Feature)
		}
		last = j
	}
	reasons := m.ReasonCodes > 0
	model := el("Scorecard", "modelName", m.Name, "functionName", "regression", "algorithmName", "woeLogisticRegression",
		"initialScore", "0", "useReasonCodes", strconv.FormatBool(reasons))
	if reasons {
		model.set("reasonCodeAlgorithm", "pointsBelow", "baselineMethod", "other")
	}
	model.add(miningSchema(w, TargetPoints))
	// probability_default = 1/(1 + exp((score − Offset)/Factor))
	prob := apply("/", constant(1), apply("+", constant(1), apply("exp",
		apply("/", apply("-", el("FieldRef", "field", OutputScore), constant(sc.Offset)), constant(sc.Factor)))))
	out := el("Output").add(
		el("OutputField", "name", OutputScore, "optype", "continuous", "dataType", "double", "feature", "predictedValue"),
		el("OutputField", "name", OutputProbability, "optype", "continuous", "dataType", "double", "feature", "transformedValue").add(prob))
	for k := 1; k <= m.ReasonCodes; k++ {
		out.add(el("OutputField", "name", OutputReasonCode+strconv.Itoa(k), "optype", "categorical", "dataType", "string",
			"feature", "reasonCode", "rank", strconv.Itoa(k)))
	}
	model.add(out, el("LocalTransformations").add(derived...))
	delta := ReasonMargin(sc)
	chars := el("Characteristics")
	for _, c := range sc.Characteristics {
		field := fields[c.Feature]
		best := math.Inf(-1)
		for _, a := range c.Attributes {
			best = max(best, a.Points)
		}
		ch := el("Characteristic", "name", c.Feature)
		if reasons {
			ch.set("baselineScore", num(best-delta))
		}
		attribute := func(i int, pred *element) *element {
			a := c.Attributes[i]
			e := el("Attribute", "partialScore", num(a.Points))
			if reasons {
				e.set("reasonCode", ReasonCode(c.Feature, a.Label))
			}
			return e.add(pred)
		}
		k := len(c.Edges)
		ch.add(attribute(k+1, el("SimplePredicate", "field", field, "operator", "isMissing")))
		for i := 0; i <= k; i++ {
			ch.add(attribute(i, binPredicate(field, c.Edges, i)))
		}
		chars.add(ch)
	}
	return model.add(chars), nil
}

// treesModel writes a tree ensemble as a MiningModel summing TreeModels.
func treesModel(m *Model, w *writer, derived []*element, outputs, names []string) (*element, error) {
	tm := m.Trees
	if err := tm.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrModel, err)
	}
	if !slices.Equal(tm.FeatureNames, names) {
		return nil, fmt.Errorf("%w: the trees' features must be the transforms' outputs, in order", ErrModel)
	}
	model := el("MiningModel", "modelName", m.Name, "functionName", "regression", "algorithmName", "gradientBoostedTrees")
	model.add(miningSchema(w, TargetLogOdds))
	// probability_default = 1/(1 + exp(−log_odds_default))
	prob := apply("/", constant(1), apply("+", constant(1), apply("exp",
		apply("*", constant(-1), el("FieldRef", "field", OutputLogOdds)))))
	out := el("Output").add(
		el("OutputField", "name", OutputLogOdds, "optype", "continuous", "dataType", "double", "feature", "predictedValue"),
		el("OutputField", "name", OutputProbability, "optype", "continuous", "dataType", "double", "feature", "transformedValue").add(prob))
	if m.Points != nil {
		out.add(pointsOutput(m.Points, OutputProbability))
	}
	model.add(out, el("LocalTransformations").add(derived...))
	seg := el("Segmentation", "multipleModelMethod", "sum")
	base := el("TreeModel", "modelName", "base score", "functionName", "regression").add(
		el("MiningSchema"), el("Node", "id", "0", "score", num(tm.BaseScore)).add(el("True")))
	seg.add(el("Segment", "id", "base").add(el("True"), base))
	for k, t := range tm.Trees {
		used := map[int]bool{}
		var schema []int
		for _, n := range t.Nodes {
			if n.Feature >= 0 && !used[n.Feature] {
				used[n.Feature] = true
				schema = append(schema, n.Feature)
			}
		}
		slices.Sort(schema)
		ms := el("MiningSchema")
		for _, f := range schema {
			ms.add(el("MiningField", "name", outputs[f], "usageType", "active"))
		}
		tree := el("TreeModel", "modelName", fmt.Sprintf("tree %d", k+1), "functionName", "regression",
			"missingValueStrategy", "defaultChild", "noTrueChildStrategy", "returnNullPrediction", "splitCharacteristic", "binarySplit")
		tree.add(ms, treeNode(t.Nodes, 0, el("True"), outputs))
		seg.add(el("Segment", "id", strconv.Itoa(k+1)).add(el("True"), tree))
	}
	return model.add(seg), nil
}

// treeNode writes node i of a tree and its subtree under predicate pred.
func treeNode(nodes []gbdt.Node, i int, pred *element, outputs []string) *element {
	n := nodes[i]
	if n.Feature < 0 {
		return el("Node", "id", strconv.Itoa(i), "score", num(n.Value)).add(pred)
	}
	def := n.Right
	if n.MissingLeft {
		def = n.Left
	}
	field := outputs[n.Feature]
	e := el("Node", "id", strconv.Itoa(i), "defaultChild", strconv.Itoa(def)).add(pred)
	e.add(treeNode(nodes, n.Left, el("SimplePredicate", "field", field, "operator", "lessOrEqual", "value", num(n.Threshold)), outputs))
	e.add(treeNode(nodes, n.Right, el("SimplePredicate", "field", field, "operator", "greaterThan", "value", num(n.Threshold)), outputs))
	return e
}
