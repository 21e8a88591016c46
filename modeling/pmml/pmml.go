// Package pmml writes a released model as PMML 4.4, the Data Mining Group's interchange format,
// so a bank can score with the model in its own decision engine.
//
// Call Marshal with a Model: the fitted feature transforms (modeling/features) and the model
// itself. The output is one PMML document whose DataDictionary holds the model's input columns
// and whose model element computes the probability of default from those inputs:
//
//   - logistic regression (Model.Linear): a RegressionModel with functionName "classification"
//     and normalizationMethod "logit", one RegressionTable for the target category "1" and an
//     empty one for "0"; outputs probability_default and, with Points, score;
//   - scorecard (Model.Scorecard, package modeling/scorecard): a Scorecard with functionName
//     "regression" whose Characteristics are the scorecard's, one Attribute per bin with the bin's
//     points as partialScore, the missing bin first (SimplePredicate isMissing), then the regular
//     bins as lessOrEqual / greaterThan predicates on the bin edges. Its predicted value is the
//     score (the sum of the points, output score); probability_default is 1/(1 + exp((score −
//     Offset)/Factor)). With Model.ReasonCodes = n it outputs reason_code_1…n (feature
//     "reasonCode"): useReasonCodes "true", reasonCodeAlgorithm "pointsBelow", every Attribute's
//     reasonCode is ReasonCode(feature, bin label), and each Characteristic's baselineScore is its
//     best attribute's points less a margin δ common to all characteristics (half the smallest gap
//     between a characteristic's best and next-best points; baselineMethod "other"). So a bin's
//     difference is its shortfall against the characteristic's best bin less δ: the best bin's is
//     negative and never a reason (evaluators drop negative differences), every other bin ranks by
//     its shortfall, as modeling/scorecard's ReasonCodes ranks them;
//   - gradient-boosted trees (Model.Trees, package modeling/gbdt): a MiningModel with
//     functionName "regression" and Segmentation multipleModelMethod "sum": a one-node TreeModel
//     holding the base score, then one TreeModel per tree (missingValueStrategy "defaultChild",
//     each split's defaultChild the side missing values take; children lessOrEqual / greaterThan
//     the threshold). The sum is the log-odds (output log_odds_default); probability_default is
//     1/(1 + exp(−log-odds)) and, with Points, score.
//
// The transforms become DerivedFields in the model's LocalTransformations, one per step, so the
// exported file scores raw input values exactly as the enclave does:
//
//   - impute: a FieldRef with mapMissingTo (the indicator output: if(isMissing(x), 1, 0));
//   - clip: min(max(x, low), high);
//   - standard scaling: NormContinuous through (mean, 0) and (mean+std, 1), extrapolating;
//   - min-max scaling: NormContinuous through (min, low) and (max, high), outliers
//     asExtremeValues (the clamp); a constant training column maps to low;
//   - one-hot: if(equal(x, category), 1, 0) per category, and if(isIn(x, categories…), 0, 1) for
//     the "__other__" output; a numeric column of codes is compared as a number;
//   - age: (reference − dateDaysSinceYear(x, 1970)) in days, divided by 365.25 for years.
//
// A missing input value propagates (PMML's default for Apply and NormContinuous), as it does in
// the enclave, where a missing value that reaches a feature without an impute step cannot be
// scored. A one-hot step with unknown policy "error" is written as "ignore" (all zeros): PMML has
// no way to fail one record; the enclave refuses such a record instead.
//
// Marshal does no I/O; it returns the document's bytes.
package pmml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strconv"

	"insitu/modeling/features"
	"insitu/modeling/gbdt"
	"insitu/modeling/scorecard"
)

// Namespace and Version are the PMML schema the writer follows.
const (
	Namespace = "http://www.dmg.org/PMML-4_4"
	Version   = "4.4"
)

// Output field names of every exported model.
const (
	// OutputProbability is the probability of default, P(target = 1).
	OutputProbability = "probability_default"
	// OutputScore is the points score (Points), when the model has a scaling.
	OutputScore = "score"
	// Target is the name of the target field of a logistic regression.
	Target = "default"
	// TargetPoints is the target field of a scorecard: its points.
	TargetPoints = "points"
	// TargetLogOdds is the target field of a tree ensemble: the log-odds of default.
	TargetLogOdds = "log_odds"
	// OutputLogOdds is a tree ensemble's predicted value, the log-odds of default.
	OutputLogOdds = "log_odds_default"
	// OutputReasonCode is the prefix of a scorecard's reason-code outputs: reason_code_1, ….
	OutputReasonCode = "reason_code_"
)

var (
	// ErrFamily: the model's family has no PMML writer.
	ErrFamily = errors.New("no PMML writer for this model family")
	// ErrModel: the model is malformed (shapes, names, non-finite numbers).
	ErrModel = errors.New("invalid model")
)

// Model is what Marshal writes: a name, the transforms and exactly one family's parameters (Linear,
// Scorecard or Trees).
type Model struct {
	// Name is the model's name (the registry's "<id> v<version>").
	Name string
	// Description is free text for the header.
	Description string
	// Application and AppVersion name the software that wrote the file.
	Application, AppVersion string
	// Transforms are the fitted feature transforms; their outputs are the model's features.
	Transforms *features.Fitted
	// Linear is a logistic regression over the features.
	Linear *Linear
	// Scorecard is a points table over the features: every characteristic names a feature (an
	// output of the transforms), each at most once, in the transforms' order.
	Scorecard *scorecard.Scorecard
	// ReasonCodes is the number of a scorecard's reason-code outputs (0: none).
	ReasonCodes int
	// Trees is a tree ensemble over the features: its FeatureNames are the transforms' outputs.
	Trees *gbdt.Model
	// Points, when set, adds the points score output of a logistic regression or tree ensemble (a
	// scorecard's score is its points).
	Points *Points
}

// Linear is a logistic regression: P(default) = σ(Σ Weights[j]·feature[j] + Intercept), the
// features in the order of the transforms' outputs.
type Linear struct {
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
}

// Points is the usual credit-score scaling of a probability of default p: the good:bad odds
// (1−p)/p equal to Odds score Base points, and every doubling of the odds adds PDO points:
//
//	score = Base + PDO/ln 2 · ln(((1−p)/p) / Odds), rounded to a whole point.
type Points struct {
	Base float64 `json:"base"`
	Odds float64 `json:"odds"`
	PDO  float64 `json:"pdo"`
}

// DefaultPoints is 600 points at odds 50:1 and 20 points to double the odds.
var DefaultPoints = Points{Base: 600, Odds: 50, PDO: 20}

// Score returns the points of a probability of default p in (0, 1); p is kept within
// [1e-9, 1 − 1e-9] so that the score is finite.
func (s Points) Score(p float64) float64 {
	p = min(max(p, 1e-9), 1-1e-9)
	return math.Round(s.Base + s.PDO/math.Ln2*math.Log((1-p)/p/s.Odds))
}

// Check checks the scaling's parameters.
func (s Points) Check() error {
	if !(s.Odds > 0) || !(s.PDO > 0) || math.IsInf(s.Odds, 0) || math.IsInf(s.PDO, 0) || math.IsNaN(s.Base) || math.IsInf(s.Base, 0) {
		return fmt.Errorf("%w: points scaling needs finite base, odds > 0 and pdo > 0", ErrModel)
	}
	return nil
}

// Marshal returns the PMML 4.4 document of m.
func Marshal(m *Model) ([]byte, error) {
	if m == nil || m.Transforms == nil {
		return nil, fmt.Errorf("%w: no transforms", ErrModel)
	}
	names := m.Transforms.Names()
	families := 0
	for _, set := range []bool{m.Linear != nil, m.Scorecard != nil, m.Trees != nil} {
		if set {
			families++
		}
	}
	switch {
	case families == 0:
		return nil, ErrFamily
	case families > 1:
		return nil, fmt.Errorf("%w: parameters of more than one family", ErrModel)
	}
	if m.Points != nil {
		if err := m.Points.Check(); err != nil {
			return nil, err
		}
	}
	w := newWriter(m.Transforms)
	derived, outputs, err := w.transforms()
	if err != nil {
		return nil, err
	}
	var model *element
	var target *element
	switch {
	case m.Linear != nil:
		if err := checkLinear(m.Linear, len(names)); err != nil {
			return nil, err
		}
		target = el("DataField", "name", Target, "optype", "categorical", "dataType", "integer").add(
			el("Value", "value", "0"), el("Value", "value", "1"))
		model = linearModel(m, w, derived, outputs)
	case m.Scorecard != nil:
		if model, err = scorecardModel(m, w, derived, outputs, names); err != nil {
			return nil, err
		}
		target = el("DataField", "name", TargetPoints, "optype", "continuous", "dataType", "double")
	default:
		if model, err = treesModel(m, w, derived, outputs, names); err != nil {
			return nil, err
		}
		target = el("DataField", "name", TargetLogOdds, "optype", "continuous", "dataType", "double")
	}

	root := el("PMML", "xmlns", Namespace, "version", Version)
	hdr := el("Header", "description", m.Description)
	if m.Application != "" {
		hdr.add(el("Application", "name", m.Application, "version", m.AppVersion))
	}
	root.add(hdr)
	dd := el("DataDictionary", "numberOfFields", strconv.Itoa(len(w.inputs)+1))
	for _, in := range w.inputs {
		dd.add(dataField(in))
	}
	dd.add(target)
	root.add(dd, model)

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := root.encode(enc); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func checkLinear(l *Linear, features int) error {
	if len(l.Weights) != features {
		return fmt.Errorf("%w: %d weights for %d features", ErrModel, len(l.Weights), features)
	}
	for _, v := range append([]float64{l.Intercept}, l.Weights...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: a weight is not finite", ErrModel)
		}
	}
	return nil
}

// miningSchema lists the input columns as active fields and the target.
func miningSchema(w *writer, target string) *element {
	ms := el("MiningSchema")
	for _, in := range w.inputs {
		ms.add(el("MiningField", "name", in.Column, "usageType", "active", "invalidValueTreatment", "asIs"))
	}
	return ms.add(el("MiningField", "name", target, "usageType", "target"))
}

// pointsOutput is the score output of a probability field: round(base + pdo/ln2 · (ln((1 − p)/p) −
// ln odds)).
func pointsOutput(p *Points, probField string) *element {
	prob := el("FieldRef", "field", probField)
	logOdds := apply("ln", apply("/", apply("-", constant(1), prob), prob))
	expr := apply("round", apply("+", constant(p.Base),
		apply("*", constant(p.PDO/math.Ln2), apply("-", logOdds, constant(math.Log(p.Odds))))))
	return el("OutputField", "name", OutputScore, "optype", "continuous", "dataType", "double",
		"feature", "transformedValue").add(expr)
}

// linearModel writes a logistic regression as a RegressionModel.
func linearModel(m *Model, w *writer, derived []*element, outputs []string) *element {
	rm := el("RegressionModel", "modelName", m.Name, "functionName", "classification",
		"algorithmName", "logisticRegression", "normalizationMethod", "logit")
	rm.add(miningSchema(w, Target))
	out := el("Output").add(el("OutputField", "name", OutputProbability, "optype", "continuous", "dataType", "double",
		"feature", "probability", "value", "1"))
	if m.Points != nil {
		out.add(pointsOutput(m.Points, OutputProbability))
	}
	rm.add(out)
	rm.add(el("LocalTransformations").add(derived...))
	tbl := el("RegressionTable", "intercept", num(m.Linear.Intercept), "targetCategory", "1")
	for j, wt := range m.Linear.Weights {
		tbl.add(el("NumericPredictor", "name", outputs[j], "coefficient", num(wt)))
	}
	return rm.add(tbl, el("RegressionTable", "intercept", "0", "targetCategory", "0"))
}

func dataField(c features.FittedColumn) *element {
	switch {
	case c.Kind == features.Categorical:
		return el("DataField", "name", c.Column, "optype", "categorical", "dataType", "string")
	case c.Kind == features.Date:
		return el("DataField", "name", c.Column, "optype", "continuous", "dataType", "date")
	default:
		return el("DataField", "name", c.Column, "optype", "continuous", "dataType", "double")
	}
}

// num writes a float in the shortest form that reads back exactly.
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func constant(v float64) *element {
	e := el("Constant", "dataType", "double")
	e.text = num(v)
	return e
}

func strConstant(s string) *element {
	e := el("Constant", "dataType", "string")
	e.text = s
	return e
}

func apply(fn string, args ...*element) *element { return el("Apply", "function", fn).add(args...) }
