package pmml_test

import "slices"

// The test evaluator's Scorecard, MiningModel and TreeModel, from the PMML 4.4 specification
// (Scorecard.html, MultipleModels.html, TreeModel.html): predicates in three-valued logic, the first
// Attribute whose predicate is TRUE gives a Characteristic's partial score, reason-code differences
// summed per code and ranked (negative differences dropped), tree nodes followed to the first TRUE
// child (an UNKNOWN one sends the record to defaultChild), and segment predictions summed.

type truth int

const (
	isFalse truth = iota
	isTrue
	isUnknown
)

func (ev *evaluator) predicate(p node) truth {
	t := ev.t
	switch p.XMLName.Local {
	case "True":
		return isTrue
	case "False":
		return isFalse
	case "SimplePredicate":
		name := attr(p, "field")
		x, ok := ev.fields[name]
		if !ok {
			t.Fatalf("predicate on unknown field %q", name)
		}
		op := attr(p, "operator")
		switch op {
		case "isMissing":
			return map[bool]truth{true: isTrue, false: isFalse}[x.missing]
		case "isNotMissing":
			return map[bool]truth{true: isFalse, false: isTrue}[x.missing]
		}
		if x.missing {
			return isUnknown
		}
		v := mustFloat(t, attr(p, "value"))
		var b bool
		switch op {
		case "equal":
			b = x.num == v
		case "notEqual":
			b = x.num != v
		case "lessThan":
			b = x.num < v
		case "lessOrEqual":
			b = x.num <= v
		case "greaterThan":
			b = x.num > v
		case "greaterOrEqual":
			b = x.num >= v
		default:
			t.Fatalf("operator %q", op)
		}
		return map[bool]truth{true: isTrue, false: isFalse}[b]
	case "CompoundPredicate":
		var parts []truth
		for _, k := range p.Kids {
			parts = append(parts, ev.predicate(k))
		}
		switch attr(p, "booleanOperator") {
		case "and":
			switch {
			case slices.Contains(parts, isFalse):
				return isFalse
			case slices.Contains(parts, isUnknown):
				return isUnknown
			}
			return isTrue
		case "or":
			switch {
			case slices.Contains(parts, isTrue):
				return isTrue
			case slices.Contains(parts, isUnknown):
				return isUnknown
			}
			return isFalse
		}
		t.Fatalf("boolean operator %q", attr(p, "booleanOperator"))
	}
	t.Fatalf("predicate <%s> not in the test evaluator", p.XMLName.Local)
	return isUnknown
}

// predicateOf returns the one predicate among an element's children.
func (ev *evaluator) predicateOf(n node) node {
	for _, k := range n.Kids {
		switch k.XMLName.Local {
		case "True", "False", "SimplePredicate", "CompoundPredicate", "SimpleSetPredicate":
			return k
		}
	}
	ev.t.Fatalf("<%s> has no predicate", n.XMLName.Local)
	return node{}
}

func optFloat(ev *evaluator, n node, name string, def float64) float64 {
	if v, ok := n.attr(name); ok {
		return mustFloat(ev.t, v)
	}
	return def
}

func (ev *evaluator) scorecard(sc node) result {
	t := ev.t
	if attr(sc, "functionName") != "regression" {
		t.Fatalf("scorecard function %q", attr(sc, "functionName"))
	}
	useReasons := attr(sc, "useReasonCodes") != "false" // default true
	algorithm := attr(sc, "reasonCodeAlgorithm")
	if algorithm == "" {
		algorithm = "pointsBelow"
	}
	score := optFloat(ev, sc, "initialScore", 0)
	points := map[string]float64{}
	var order []string
	for _, ch := range sc.kid(t, "Characteristics").kids("Characteristic") {
		matched := false
		for _, a := range ch.kids("Attribute") {
			if ev.predicate(ev.predicateOf(a)) != isTrue {
				continue
			}
			partial := mustFloat(t, attr(a, "partialScore"))
			score += partial
			if useReasons {
				code := attr(a, "reasonCode")
				if code == "" {
					code = attr(ch, "reasonCode")
				}
				b, ok := ch.attr("baselineScore")
				if !ok {
					b, ok = sc.attr("baselineScore")
				}
				if code == "" || !ok {
					t.Fatalf("characteristic %q: reason codes need a reasonCode and a baselineScore", attr(ch, "name"))
				}
				diff := mustFloat(t, b) - partial
				if algorithm == "pointsAbove" {
					diff = -diff
				}
				if _, seen := points[code]; !seen {
					order = append(order, code)
				}
				points[code] += diff
			}
			matched = true
			break
		}
		if !matched {
			return result{y: missing} // no Attribute is TRUE: the scorecard's result is invalid
		}
	}
	var ranked []string
	for _, c := range order {
		if points[c] >= 0 {
			ranked = append(ranked, c)
		}
	}
	slices.SortStableFunc(ranked, func(a, b string) int {
		switch {
		case points[a] > points[b]:
			return -1
		case points[a] < points[b]:
			return 1
		}
		return 0
	})
	return result{y: numv(score), reasons: ranked}
}

func (ev *evaluator) mining(mm node) result {
	t := ev.t
	seg := mm.kid(t, "Segmentation")
	if attr(mm, "functionName") != "regression" || attr(seg, "multipleModelMethod") != "sum" {
		t.Fatalf("mining model %v, segmentation %v", mm.Attrs, seg.Attrs)
	}
	sum := 0.0
	for _, s := range seg.kids("Segment") {
		if ev.predicate(ev.predicateOf(s)) != isTrue {
			continue
		}
		tm := s.kid(t, "TreeModel")
		ev.miningSchema(tm)
		y := ev.tree(tm)
		if y.missing {
			return result{y: missing}
		}
		sum += y.num
	}
	return result{y: numv(sum)}
}

func (ev *evaluator) tree(tm node) value {
	t := ev.t
	if attr(tm, "functionName") != "regression" {
		t.Fatalf("tree function %q", attr(tm, "functionName"))
	}
	strategy := attr(tm, "missingValueStrategy")
	n := tm.kid(t, "Node")
	if ev.predicate(ev.predicateOf(n)) != isTrue {
		return missing
	}
	for {
		kids := n.kids("Node")
		if len(kids) == 0 {
			return numv(mustFloat(t, attr(n, "score")))
		}
		next, found := node{}, false
		for _, k := range kids {
			switch ev.predicate(ev.predicateOf(k)) {
			case isTrue:
				next, found = k, true
			case isUnknown:
				if strategy != "defaultChild" {
					continue // strategy "none": a comparison with a missing value is FALSE
				}
				def := attr(n, "defaultChild")
				for _, d := range kids {
					if attr(d, "id") == def {
						next, found = d, true
					}
				}
				if !found {
					t.Fatalf("node %q: defaultChild %q is not a child", attr(n, "id"), def)
				}
			default:
				continue
			}
			break
		}
		if !found {
			if attr(tm, "noTrueChildStrategy") == "returnLastPrediction" {
				if s, ok := n.attr("score"); ok {
					return numv(mustFloat(t, s))
				}
			}
			return missing
		}
		n = next
	}
}
