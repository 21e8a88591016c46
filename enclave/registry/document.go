package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"insitu/modeling/features"
	"insitu/modeling/gbdt"
	"insitu/modeling/pmml"
	"insitu/modeling/scorecard"
)

// DocumentFormat is the value of Document.Format.
const DocumentFormat = "insitu-model-v1"

// FamilyLogisticRegression is the family of linear models the gate releases as weights.
const FamilyLogisticRegression = "logistic_regression"

// DefaultProbabilityStep is the rounding step of a served probability of default.
const DefaultProbabilityStep = 1e-3

// Document is a registered model as it is kept, exported as JSON (insitu model export --format
// json) and scored: everything needed to compute the model's probability of default from the raw
// values of its input columns, and where it came from. It holds no data value and no subject
// identifier.
//
// Scoring a record: read the Inputs' raw values (numbers, category strings, dates as days since
// 1970-01-01; missing where absent), apply Transforms (package modeling/features: the steps of each
// column in order, with their fitted statistics) to get the Features in order, then
//
//	linear:    pd = σ(Σ Linear.Weights[j]·feature[j] + Linear.Intercept), σ(z) = 1/(1+e^−z)
//	trees:     pd = σ(Trees.base_score + Σ_trees the value of the leaf the features reach)
//	           (package modeling/gbdt: a split sends feature[f] <= threshold left, larger right,
//	           a missing value the side missing_left says)
//	scorecard: points = Σ_characteristics the points of the bin feature[c] falls in (package
//	           modeling/scorecard: with edges e_0 < … < e_{k−1}, bin 0 holds x <= e_0, bin i
//	           e_{i−1} < x <= e_i, bin k x > e_{k−1}; the last attribute is the missing bin);
//	           pd = 1/(1 + exp((points − Scorecard.offset)/Scorecard.factor))
//	score   = round(Points.Base + Points.PDO/ln 2 · ln(((1−pd)/pd)/Points.Odds))
//
// and round pd to ProbabilityStep. A scorecard's score is its points (its Points are its own
// scaling, which gives the same number), and it comes with up to ReasonCodes reason codes: the
// characteristics whose bin scored below that characteristic's best bin, largest shortfall first,
// each named "feature: bin label" (modeling/scorecard's ReasonCodes). Exactly one family's
// parameters are set.
type Document struct {
	Format string `json:"format"`
	// ID is the model's id: the id of the job whose release it is.
	ID string `json:"id"`
	// Bank is the owner bank; Name and Version number its models: Version counts the bank's
	// registered models of the same Name, from 1.
	Bank    string `json:"bank"`
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Family is the manifest's model family.
	Family string `json:"family"`
	// Purpose is the purpose the model was trained for.
	Purpose string `json:"purpose"`
	// Dataset and DatasetVersion name the training data; Items the catalog items the model reads
	// (online scoring checks each subject's authorization for them).
	Dataset        string   `json:"dataset"`
	DatasetVersion int      `json:"dataset_version"`
	Items          []string `json:"items"`
	// Inputs are the model's input columns (dataset columns, "item.field").
	Inputs []string `json:"inputs"`
	// Features are the transformed features' names, in weight order.
	Features   []string         `json:"features"`
	Transforms *features.Fitted `json:"transforms"`
	// Linear holds a linear model's weights, one per feature, and intercept.
	Linear *pmml.Linear `json:"linear,omitempty"`
	// Scorecard holds a scorecard's points table (modeling/scorecard's JSON); its characteristics
	// are features, in the features' order.
	Scorecard *scorecard.Scorecard `json:"scorecard,omitempty"`
	// ReasonCodes is how many reason codes a scorecard answers with.
	ReasonCodes int `json:"reason_codes,omitempty"`
	// Trees holds a tree ensemble (modeling/gbdt's JSON) over the features.
	Trees *gbdt.Model `json:"trees,omitempty"`
	// Points is the points scaling of the score.
	Points pmml.Points `json:"points"`
	// ProbabilityStep is the rounding step of the served probability of default.
	ProbabilityStep float64 `json:"probability_step"`
	// Release ties the model to the gate's signed receipt.
	Release Release `json:"release"`

	charIndex []int // the scorecard's characteristics' feature indexes, set by Check
}

// Release names the release a model came from: the job, its manifest, the hash of the released
// weights as the receipt states it, and the receipt's audit head.
type Release struct {
	Job             string    `json:"job"`
	ManifestHash    string    `json:"manifest_hash"`
	WeightsSHA256   string    `json:"weights_sha256,omitempty"`
	TreesSHA256     string    `json:"trees_sha256,omitempty"`
	ScorecardSHA256 string    `json:"scorecard_sha256,omitempty"`
	BundleSHA256    string    `json:"bundle_sha256"`
	AuditSeq        int64     `json:"audit_seq"`
	AuditHash       string    `json:"audit_hash"`
	Verdict         string    `json:"verdict"`
	ReleasedAt      time.Time `json:"released_at"`
}

// ErrDocument is wrapped by the errors of ParseDocument and Check.
var ErrDocument = errors.New("invalid model document")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// Check checks a document's shape: the format, names, one family's parameters matching the
// transforms' features, finite numbers.
func (d *Document) Check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrDocument, fmt.Sprintf(format, a...))
	}
	if d.Format != DocumentFormat {
		return bad("format %q, want %q", d.Format, DocumentFormat)
	}
	if d.ID == "" || d.Bank == "" || !nameRE.MatchString(d.Name) || d.Version < 1 || d.Family == "" {
		return bad("id, bank, name (lower case), version (from 1) and family are required")
	}
	if d.Transforms == nil {
		return bad("no transforms")
	}
	names := d.Transforms.Names()
	if len(names) != len(d.Features) {
		return bad("%d features but the transforms give %d", len(d.Features), len(names))
	}
	for i, n := range names {
		if d.Features[i] != n {
			return bad("feature %d is %q but the transforms give %q", i+1, d.Features[i], n)
		}
	}
	if !(d.ProbabilityStep > 0 && d.ProbabilityStep <= 0.1) {
		return bad("probability_step must be in (0, 0.1]")
	}
	if err := d.Points.Check(); err != nil {
		return bad("%v", err)
	}
	families := 0
	for _, set := range []bool{d.Linear != nil, d.Scorecard != nil, d.Trees != nil} {
		if set {
			families++
		}
	}
	if families > 1 {
		return bad("parameters of more than one family")
	}
	switch {
	case d.Scorecard != nil, d.Trees != nil:
		return d.checkFamily(bad)
	case d.Linear != nil:
		if len(d.Linear.Weights) != len(d.Features) {
			return bad("%d weights for %d features", len(d.Linear.Weights), len(d.Features))
		}
		for _, v := range append([]float64{d.Linear.Intercept}, d.Linear.Weights...) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("a weight is not finite")
			}
		}
		return d.checkFamily(bad)
	}
	return bad("no model parameters for family %q", d.Family)
}

// ParseDocument reads a model document strictly (unknown keys are errors) and checks it.
func ParseDocument(data []byte) (*Document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDocument, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the document", ErrDocument)
	}
	if d.Transforms != nil {
		raw, err := json.Marshal(d.Transforms)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDocument, err)
		}
		if d.Transforms, err = features.ParseFitted(raw); err != nil {
			return nil, fmt.Errorf("%w: transforms: %v", ErrDocument, err)
		}
	}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return &d, nil
}

// Probability returns the probability of default of one transformed feature row (in Features
// order), unrounded. It panics if the row's length differs from the features' (programmer error).
func (d *Document) Probability(x []float64) float64 {
	if len(x) != len(d.Features) {
		panic(fmt.Sprintf("registry: %d features for a model of %d", len(x), len(d.Features)))
	}
	switch {
	case d.Scorecard != nil:
		p, err := d.Scorecard.Points(d.assign(x))
		if err != nil {
			panic(err) // assign gives valid bins
		}
		return d.Scorecard.BadProbability(p)
	case d.Trees != nil:
		return d.Trees.Score(x)
	case d.Linear == nil:
		panic("registry: Probability of a model without parameters")
	}
	z := d.Linear.Intercept
	for j, w := range d.Linear.Weights {
		z += w * x[j]
	}
	return 1 / (1 + math.Exp(-z))
}

// Round returns a probability rounded to ProbabilityStep and its points score.
func (d *Document) Round(p float64) (pd, score float64) {
	pd = math.Round(p/d.ProbabilityStep) * d.ProbabilityStep
	// Printing a multiple of the step: keep only the step's digits.
	digits := max(0, int(math.Ceil(-math.Log10(d.ProbabilityStep))))
	scale := math.Pow(10, float64(digits))
	pd = math.Round(pd*scale) / scale
	return pd, d.Points.Score(p)
}

// ScoreColumns scores raw input columns (named as Inputs) with the model: the transforms, then the
// model, rounded. It is what a bank runs on the exported JSON document, and what the tests check
// against hand-computed values.
func (d *Document) ScoreColumns(cols []features.Column) (pd, score []float64, err error) {
	answers, err := d.AnswerColumns(cols)
	if err != nil {
		return nil, nil, err
	}
	pd, score = make([]float64, len(answers)), make([]float64, len(answers))
	for i, a := range answers {
		pd[i], score[i] = a.PD, a.Score
	}
	return pd, score, nil
}

// AnswerColumns is ScoreColumns with a scorecard's reason codes.
func (d *Document) AnswerColumns(cols []features.Column) ([]Answer, error) {
	x, _, err := d.Transforms.Transform(cols)
	if err != nil {
		return nil, err
	}
	n, _ := x.Dims()
	out := make([]Answer, n)
	for i := range n {
		out[i] = d.Answer(x.RawRowView(i))
	}
	return out, nil
}

// PMML returns the document as PMML 4.4 (package modeling/pmml).
func (d *Document) PMML(appVersion string) ([]byte, error) {
	m := &pmml.Model{Name: fmt.Sprintf("%s v%d", d.Name, d.Version), Application: "insitu", AppVersion: appVersion,
		Description: fmt.Sprintf("insitu model %s of %s, family %s, trained on %s v%d (job %s)", d.ID, d.Bank, d.Family, d.Dataset, d.DatasetVersion, d.Release.Job),
		Transforms:  d.Transforms, Linear: d.Linear, Scorecard: d.Scorecard, ReasonCodes: d.ReasonCodes, Trees: d.Trees}
	if d.Scorecard == nil {
		m.Points = &d.Points
	}
	return pmml.Marshal(m)
}
