package manifest

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"insitu/connectors/catalog"
	"insitu/enclave/consent"
	"insitu/enclave/pluginstore"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

var (
	partyRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`) // as enclave/keys names parties
	datasetRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	identRE   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	featureRE = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,127}$`)
	digestRE  = regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)
	// columnRE is a dataset column's name: a catalog key item.field or custom.<key>, each part as
	// connectors/catalog spells keys.
	columnRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_]{0,63}$`)
)

// Parse reads a manifest from YAML or JSON (a document whose first character is '{' is read as
// JSON, anything else as YAML), checks it against the schema, the embedded catalog and the rules of
// the package documentation, and applies the defaults (see Validate). name is the file name used in
// errors. Every error is an *Error wrapping ErrInvalid and naming the path, the line and the rule.
//
// Parse does not look at the clock: call CheckSubmission when a manifest is submitted.
func Parse(data []byte, name string) (*Manifest, error) {
	m, err := parse(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
		}
		return nil, err
	}
	return m, nil
}

func parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, &Error{Rule: RuleSize, Message: fmt.Sprintf("%d bytes, more than the %d a manifest may have", len(data), MaxSize)}
	}
	n, err := dialect.ReadJSONOrYAML(data)
	if err != nil {
		return nil, err
	}
	var m Manifest
	d, err := dialect.Decode(n, &m)
	if err != nil {
		return nil, err
	}
	if err := m.validate(catalog.Default()); err != nil {
		if e, ok := err.(*Error); ok && e.Line == 0 {
			e.Line = d.Line(e.Path)
		}
		return nil, err
	}
	return &m, nil
}

// Validate checks a manifest built in Go as Parse checks a parsed one and applies the defaults in
// place: "plaintext-public" becomes plaintext_public, digests are lower-cased, the expiry is written
// in UTC, a field whose name equals its key loses the name, a field without steps gets DefaultSteps,
// steps spell out their defaults (one-hot unknown: other, age unit: years, min-max range [0, 1]),
// scores get their default range [0, 1], metric names are sorted and empty hyperparameters are
// dropped. After Validate, Canonical encodes the manifest.
func (m *Manifest) Validate() error { return m.validate(catalog.Default()) }

func (m *Manifest) validate(cat *catalog.Catalog) error {
	if m.Format == "" {
		return errAt("format", RuleRequired, "missing: write format: %s", FormatV1)
	}
	if m.Format != FormatV1 {
		return errAt("format", RuleFormat, "%q is not a format this enclave reads: use %s", clip(m.Format), FormatV1)
	}
	if m.Bank == "" {
		return errAt("bank", RuleRequired, "missing: name the requesting bank as its identity names it")
	}
	if !partyRE.MatchString(m.Bank) {
		return errAt("bank", RuleName, "%q is not a party name: use 1-64 lower-case letters, digits, '.', '_' or '-'", clip(m.Bank))
	}
	if m.Purpose == "" {
		return errAt("purpose", RuleRequired, "missing: use one of %s", purposeList())
	}
	if _, err := consent.ParsePurpose(string(m.Purpose)); err != nil {
		return errAt("purpose", RulePurpose, "%q is not a purpose: use one of %s", clip(string(m.Purpose)), purposeList())
	}
	if msg := checkText(m.PurposeDetail); msg != "" {
		return errAt("purpose_detail", RuleSize, "%s", msg)
	}
	if err := m.validateDataset(); err != nil {
		return err
	}
	if m.Mode == "plaintext-public" {
		m.Mode = sdk.ModePlaintextPublic
	}
	if m.Mode == "" {
		return errAt("mode", RuleRequired, "missing: use plaintext_public, he or aggregate")
	}
	if !m.Mode.Valid() {
		return errAt("mode", RuleMode, "%q is not a mode: use plaintext_public, he or aggregate", clip(string(m.Mode)))
	}
	if err := m.validateFields(cat); err != nil {
		return err
	}
	if err := m.validateModel(); err != nil {
		return err
	}
	var err error
	if m.Plugin, err = checkDigest("plugin", m.Plugin, true); err != nil {
		return err
	}
	if err := m.validateLabels(); err != nil {
		return err
	}
	if err := m.validateOutputs(); err != nil {
		return err
	}
	if m.Expires == "" {
		return errAt("expires", RuleRequired, "missing: give the date and time the request lapses, RFC 3339 (2026-03-31T23:59:59+08:00)")
	}
	t, perr := time.Parse(time.RFC3339Nano, m.Expires)
	if perr != nil {
		return errAt("expires", RuleExpiry, "%q is not an RFC 3339 date and time (2026-03-31T23:59:59+08:00)", clip(m.Expires))
	}
	m.Expires = t.UTC().Format(time.RFC3339Nano)
	switch {
	case m.Mode == sdk.ModeAggregate && m.Epsilon == nil:
		return errAt("epsilon", RuleRequired, "missing: an aggregate job names the privacy budget it may spend, at most %v", MaxEpsilon)
	case m.Mode != sdk.ModeAggregate && m.Epsilon != nil:
		return errAt("epsilon", RuleMode, "epsilon applies to aggregate mode only: remove it")
	case m.Epsilon != nil && !(*m.Epsilon > 0 && *m.Epsilon <= MaxEpsilon):
		return errAt("epsilon", RuleEpsilon, "%v is outside (0, %v]", *m.Epsilon, MaxEpsilon)
	}
	return nil
}

func purposeList() string {
	s := make([]string, len(consent.Purposes))
	for i, p := range consent.Purposes {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

func checkText(s string) string {
	if len(s) > MaxText {
		return fmt.Sprintf("%d bytes, more than %d", len(s), MaxText)
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' {
			return fmt.Sprintf("control character %U: write plain text", r)
		}
	}
	return ""
}

// checkDigest checks a "sha256:" digest and returns it lower-cased.
func checkDigest(path, s string, required bool) (string, error) {
	if s == "" {
		if required {
			return "", errAt(path, RuleRequired, "missing: give the digest, sha256: and 64 hex digits")
		}
		return "", nil
	}
	if !digestRE.MatchString(s) {
		return "", errAt(path, RuleDigest, "%q is not a digest: want sha256: and 64 hex digits", clip(s))
	}
	d, err := pluginstore.ParseDigest(s)
	if err != nil {
		return "", &Error{Path: path, Rule: RuleDigest, Message: err.Error(), Err: err}
	}
	return d.String(), nil
}

// validateLabels checks labels and label_column: at most one, and one in he and aggregate modes.
func (m *Manifest) validateLabels() error {
	var err error
	if m.Labels, err = checkDigest("labels", m.Labels, false); err != nil {
		return err
	}
	if m.LabelColumn == "" {
		if m.Labels == "" && m.Mode != sdk.ModePlaintextPublic {
			return errAt("labels", RuleRequired, "missing: name the digest of the bank's sealed labels (sha256: and 64 hex digits), "+
				"or, on a public dataset that carries its outcome, its column in label_column")
		}
		return nil
	}
	if m.Labels != "" {
		return errAt("label_column", RuleLabels, "a job takes its labels from the bank's sealed labels or from a column of the dataset, not both: "+
			"remove labels or label_column")
	}
	if !columnRE.MatchString(m.LabelColumn) {
		return errAt("label_column", RuleLabels, "%q is not a dataset column: write custom.<key> or item.field", clip(m.LabelColumn))
	}
	for i, f := range m.Fields {
		if f.Key == m.LabelColumn {
			return errAt("label_column", RuleLabels, "%s is also requested as fields[%d]: the outcome may not be a model input", m.LabelColumn, i)
		}
	}
	return nil
}

func (m *Manifest) validateDataset() error {
	switch {
	case m.Dataset.Name == "":
		return errAt("dataset.name", RuleRequired, "missing: name the dataset the job runs on")
	case !datasetRE.MatchString(m.Dataset.Name):
		return errAt("dataset.name", RuleName, "%q is not a dataset name: use 1-128 letters, digits, '.', '_' or '-'", clip(m.Dataset.Name))
	case m.Dataset.Version == "":
		return errAt("dataset.version", RuleRequired, "missing: name the dataset version the steward is to approve")
	case !datasetRE.MatchString(m.Dataset.Version):
		return errAt("dataset.version", RuleName, "%q is not a dataset version: use 1-128 letters, digits, '.', '_' or '-'", clip(m.Dataset.Version))
	}
	return nil
}

func (m *Manifest) validateModel() error {
	switch {
	case m.Model.Family == "":
		return errAt("model.family", RuleRequired, "missing: name the model family (%s, %s, %s or another lower-case identifier)",
			sdk.FamilyLogisticRegression, sdk.FamilyScorecard, sdk.FamilyGBDT)
	case !identRE.MatchString(m.Model.Family):
		return errAt("model.family", RuleModel, "%q is not a model family: use a lower-case identifier such as %s", clip(m.Model.Family), sdk.FamilyLogisticRegression)
	}
	if len(m.Model.Hyperparameters) == 0 {
		m.Model.Hyperparameters = nil
	}
	return nil
}

func (m *Manifest) validateOutputs() error {
	o := &m.Outputs
	if o.Weights == nil && o.Scores == nil && o.Metrics == nil && o.Scorecard == nil && o.Trees == nil {
		return errAt("outputs", RuleOutputs, "no output declared: declare weights, scorecard, trees, scores or metrics")
	}
	if err := m.validateModelOutputs(); err != nil {
		return err
	}
	if w := o.Weights; w != nil {
		if w.MaxWeights < 1 || w.MaxWeights > MaxWeights {
			return errAt("outputs.weights.max_weights", RuleOutputs, "%d is outside 1 to %d", w.MaxWeights, MaxWeights)
		}
		if !(w.MaxAbs > 0) {
			return errAt("outputs.weights.max_abs", RuleOutputs, "%v: give the largest absolute weight, above 0", w.MaxAbs)
		}
		if n, _ := m.featureCount(); n > w.MaxWeights {
			return errAt("outputs.weights.max_weights", RuleOutputs, "the fields give at least %d features, more than max_weights %d", n, w.MaxWeights)
		}
	}
	if s := o.Scores; s != nil {
		if s.Range == nil {
			s.Range = []float64{0, 1}
		}
		if len(s.Range) != 2 || !(s.Range[0] < s.Range[1]) {
			return errAt("outputs.scores.range", RuleOutputs, "%v: want [low, high] with low < high", s.Range)
		}
	}
	if mt := o.Metrics; mt != nil {
		if len(mt.Names) == 0 {
			return errAt("outputs.metrics.names", RuleRequired, "missing: list the metrics to release (auc, ks, log_loss ...)")
		}
		if len(mt.Names) > MaxMetrics {
			return errAt("outputs.metrics.names", RuleSize, "%d metrics, more than %d", len(mt.Names), MaxMetrics)
		}
		seen := map[string]bool{}
		for i, n := range mt.Names {
			p := fmt.Sprintf("outputs.metrics.names[%d]", i)
			if !identRE.MatchString(n) {
				return errAt(p, RuleName, "%q is not a metric name: use a lower-case identifier", clip(n))
			}
			if seen[n] {
				return errAt(p, RuleDuplicate, "metric %q listed twice", n)
			}
			seen[n] = true
		}
		slices.Sort(mt.Names)
	}
	return nil
}

// validateModelOutputs checks outputs.scorecard and outputs.trees and applies their defaults.
func (m *Manifest) validateModelOutputs() error {
	o := &m.Outputs
	if sc := o.Scorecard; sc != nil {
		if m.Model.Family != sdk.FamilyScorecard {
			return errAt("outputs.scorecard", RuleOutputs, "a scorecard is the output of the model family %s, not %s: change the family or declare weights or trees",
				sdk.FamilyScorecard, clip(m.Model.Family))
		}
		if sc.MaxBins < 1 || sc.MaxBins > MaxScorecardBins {
			return errAt("outputs.scorecard.max_bins", RuleOutputs, "%d is outside 1 to %d", sc.MaxBins, MaxScorecardBins)
		}
		if !(sc.MaxAbs > 0) || math.IsInf(sc.MaxAbs, 0) {
			return errAt("outputs.scorecard.max_abs", RuleOutputs, "%v: give the largest absolute coefficient, weight of evidence or intercept, above 0", sc.MaxAbs)
		}
		if sc.MaxPoints == 0 {
			sc.MaxPoints = DefaultMaxPoints
		}
		if sc.PDO == 0 {
			sc.PDO = 20
		}
		if sc.BaseScore == 0 {
			sc.BaseScore = 600
		}
		if sc.BaseOdds == 0 {
			sc.BaseOdds = 50
		}
		for _, c := range []struct {
			key string
			v   float64
		}{{"max_points", sc.MaxPoints}, {"pdo", sc.PDO}, {"base_odds", sc.BaseOdds}} {
			if !(c.v > 0) || math.IsInf(c.v, 0) {
				return errAt("outputs.scorecard."+c.key, RuleOutputs, "%v: must be a finite number above 0", c.v)
			}
		}
		if math.IsInf(sc.BaseScore, 0) || math.IsNaN(sc.BaseScore) {
			return errAt("outputs.scorecard.base_score", RuleOutputs, "%v: must be a finite number", sc.BaseScore)
		}
	}
	if t := o.Trees; t != nil {
		if t.MaxTrees < 1 || t.MaxTrees > MaxTrees {
			return errAt("outputs.trees.max_trees", RuleOutputs, "%d is outside 1 to %d", t.MaxTrees, MaxTrees)
		}
		if t.MaxDepth < 1 || t.MaxDepth > MaxTreeDepth {
			return errAt("outputs.trees.max_depth", RuleOutputs, "%d is outside 1 to %d", t.MaxDepth, MaxTreeDepth)
		}
		if t.MaxLeaves == 0 {
			t.MaxLeaves = 1 << t.MaxDepth
		}
		if t.MaxLeaves < 2 || t.MaxLeaves > 1<<t.MaxDepth {
			return errAt("outputs.trees.max_leaves", RuleOutputs, "%d is outside 2 to %d (2^max_depth)", t.MaxLeaves, 1<<t.MaxDepth)
		}
		if !(t.MaxAbs > 0) || math.IsInf(t.MaxAbs, 0) {
			return errAt("outputs.trees.max_abs", RuleOutputs, "%v: give the largest absolute leaf value, above 0", t.MaxAbs)
		}
	}
	return nil
}

// featureCount returns the least number of features the fields give, and whether it is exact.
func (m *Manifest) featureCount() (int, bool) {
	total, exact := 0, true
	for _, f := range m.Fields {
		n, ex := countOutputs(f.Steps)
		total += n
		exact = exact && ex
	}
	return total, exact
}

func countOutputs(steps []features.Step) (int, bool) {
	n, exact := 1, true
	for _, s := range steps {
		if s.Impute != nil && s.Impute.Indicator {
			n++
		}
		if o := s.OneHot; o != nil {
			n--
			switch {
			case o.Categories != nil:
				n += len(o.Categories)
			case o.MaxCategories > 0:
				n, exact = n+1, false
			default:
				n, exact = n+1, false
			}
			if o.Unknown == features.UnknownOther || o.Unknown == "" {
				n++
			}
		}
	}
	return n, exact
}

func (m *Manifest) validateFields(cat *catalog.Catalog) error {
	if len(m.Fields) == 0 {
		return errAt("fields", RuleRequired, "missing: list the catalog fields the job uses (item.field)")
	}
	if len(m.Fields) > MaxFields {
		return errAt("fields", RuleSize, "%d fields, more than %d", len(m.Fields), MaxFields)
	}
	keys := map[string]int{}
	names := map[string]int{}
	for i := range m.Fields {
		f := &m.Fields[i]
		p := fmt.Sprintf("fields[%d]", i)
		if err := m.validateField(cat, f, p); err != nil {
			return err
		}
		if j, dup := keys[f.Key]; dup {
			return errAt(p+".key", RuleDuplicate, "%s is already requested by fields[%d]", f.Key, j)
		}
		keys[f.Key] = i
		out := f.Key
		if f.Name != "" {
			out = f.Name
		}
		if j, dup := names[out]; dup {
			return errAt(p+".name", RuleDuplicate, "output name %q is already used by fields[%d]: name this one differently", out, j)
		}
		names[out] = i
	}
	return nil
}

func (m *Manifest) validateField(cat *catalog.Catalog, f *Field, p string) error {
	if f.Key == "" {
		return errAt(p+".key", RuleRequired, "missing: give the catalog key item.field")
	}
	if f.Custom() {
		return m.validateCustom(f, p)
	}
	item, field, ok := strings.Cut(f.Key, ".")
	if !ok {
		return errAt(p+".key", RuleCatalog, "%q is not an item.field key", clip(f.Key))
	}
	_, cf, err := cat.Field(item, field)
	if err != nil {
		return &Error{Path: p + ".key", Rule: RuleCatalog, Message: fmt.Sprintf("%q is not in the catalog: see `insitu catalog` for the items and their fields", clip(f.Key)), Err: err}
	}
	if !cf.Feature() {
		return errAt(p+".key", RuleNotFeature, "%s (%s) has role %s: a model may use only feature fields", f.Key, cf.NameEN, cf.Role)
	}
	personal := cf.Sensitivity >= catalog.Personal
	switch {
	case personal && !f.Personal:
		return errAt(p+".key", RulePersonal, "%s is personal information: request it only with personal: true, and only as a model input", f.Key)
	case !personal && f.Personal:
		return errAt(p+".personal", RulePersonal, "%s is not personal information: remove personal: true", f.Key)
	}
	if err := checkName(f, p); err != nil {
		return err
	}
	if len(f.Steps) == 0 {
		f.Steps, err = DefaultSteps(cf)
		if err != nil {
			return &Error{Path: p + ".steps", Rule: RuleSteps, Message: err.Error(), Err: err}
		}
	}
	if len(f.Steps) > MaxSteps {
		return errAt(p+".steps", RuleSize, "%d steps, more than %d", len(f.Steps), MaxSteps)
	}
	return checkSteps(f, cf, p, m.Mode == sdk.ModeHE)
}

func checkName(f *Field, p string) error {
	if f.Name == f.Key {
		f.Name = ""
	}
	if f.Name != "" && !featureRE.MatchString(f.Name) {
		return errAt(p+".name", RuleName, "%q is not a feature name: use lower-case letters, digits, '_' and '.'", clip(f.Name))
	}
	return nil
}
