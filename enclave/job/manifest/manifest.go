package manifest

import (
	"strings"

	"insitu/enclave/consent"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// FormatV1 is the format version of this schema, the value of Manifest.Format.
const FormatV1 = "insitu-job-manifest-v1"

// Limits a manifest must keep.
const (
	// MaxSize bounds a manifest file, and a signed envelope, in bytes.
	MaxSize = 1 << 20
	// MaxFields bounds the requested fields.
	MaxFields = 1024
	// MaxSteps bounds the transform steps of one field.
	MaxSteps = 16
	// MaxCategories bounds the categories listed in one one-hot step.
	MaxCategories = 1024
	// MaxText bounds purpose_detail and every other free text, in bytes.
	MaxText = 1024
	// MaxEpsilon is the largest privacy budget one aggregate job may spend.
	MaxEpsilon = 8.0
	// MaxWeights bounds outputs.weights.max_weights.
	MaxWeights = 100_000
	// MaxScorecardBins bounds outputs.scorecard.max_bins.
	MaxScorecardBins = 256
	// DefaultMaxPoints is outputs.scorecard.max_points when none is given.
	DefaultMaxPoints = 1000.0
	// MaxTrees bounds outputs.trees.max_trees; MaxTreeDepth bounds outputs.trees.max_depth.
	MaxTrees     = 10_000
	MaxTreeDepth = 16
	// MaxMetrics bounds the declared metric names (sdk.MaxMetrics).
	MaxMetrics = sdk.MaxMetrics
	// MaxHyperparameterDepth bounds the nesting of model.hyperparameters; MaxHyperparameterValues
	// bounds its number of values, counting every object member and list element.
	MaxHyperparameterDepth  = 8
	MaxHyperparameterValues = 1024
	// MaxValidity is how far past the submission the expiry may lie, in days.
	MaxValidity = 366
)

// Manifest is what a bank signs and a steward approves: which of the platform's data, transformed
// how, goes into which plugin in which mode, and what may come out. Parse reads and checks one;
// Canonical and Hash give the bytes that are signed and approved.
type Manifest struct {
	// Format is the schema version: FormatV1. Required.
	Format string `json:"format" yaml:"format"`
	// Bank is the requesting bank's party name (as its keys.Identity names it). Required; a signed
	// manifest's signer must be this bank.
	Bank string `json:"bank" yaml:"bank"`
	// Purpose is what the bank will use the results for, one of consent.Purposes
	// (pre_screening, credit_approval, post_loan_monitoring, model_development). Authorizations are
	// matched against it. Required.
	Purpose consent.Purpose `json:"purpose" yaml:"purpose"`
	// PurposeDetail says the specifics in free text (at most MaxText bytes, no control characters).
	PurposeDetail string `json:"purpose_detail,omitempty" yaml:"purpose_detail,omitempty"`
	// Dataset names the dataset and the version the job runs on. Required.
	Dataset Dataset `json:"dataset" yaml:"dataset"`
	// Fields are the requested catalog fields in feature order, each with its transform. Required,
	// at most MaxFields, no field twice.
	Fields []Field `json:"fields" yaml:"fields"`
	// Mode is how the plugin sees the data: plaintext_public, he or aggregate (the values of
	// plugins/sdk.Mode; "plaintext-public" is read as plaintext_public). Required.
	Mode sdk.Mode `json:"mode" yaml:"mode"`
	// Model is the model family and its hyperparameters. Required.
	Model Model `json:"model" yaml:"model"`
	// Plugin is the digest of the plugin in the enclave's plugin store, "sha256:" and 64 hex digits.
	// Required.
	Plugin string `json:"plugin" yaml:"plugin"`
	// Outputs are the declared outputs: only these may leave through the output gate. At least one.
	Outputs Outputs `json:"outputs" yaml:"outputs"`
	// Labels is the digest of the bank's sealed label file, "sha256:" and 64 hex digits. A job names
	// labels or LabelColumn, never both; one of them is required in he and aggregate modes.
	Labels string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// LabelColumn names a column of the dataset that holds the outcome (0 or 1; rows where it is
	// empty are left out), as published benchmark data carries it: "custom.<key>" or an
	// "item.field" column. It is allowed only on a dataset of class public, which the enclave
	// checks when the job runs; it may not also be a requested field.
	LabelColumn string `json:"label_column,omitempty" yaml:"label_column,omitempty"`
	// Expires is when the request lapses, RFC 3339. At submission it must lie in the future and at
	// most MaxValidity days ahead (CheckSubmission). Required.
	Expires string `json:"expires" yaml:"expires"`
	// Epsilon is the differential-privacy budget the job may spend, in (0, MaxEpsilon]. Required in
	// aggregate mode and not allowed in the others.
	Epsilon *float64 `json:"epsilon,omitempty" yaml:"epsilon,omitempty"`
}

// Dataset names a dataset version in the enclave.
type Dataset struct {
	// Name is the dataset's name. Required.
	Name string `json:"name" yaml:"name"`
	// Version is the dataset version, as the dataset store names it. Required; a number must be
	// quoted in YAML ("3").
	Version string `json:"version" yaml:"version"`
}

// Field is one requested field and its transform.
type Field struct {
	// Key is the catalog's "item.field" key, e.g. "tax_arrears_history.arrears_amount_24m", of a
	// feature field (not an identifier or free text); or "custom.<key>" (CustomPrefix), a column
	// that a provider's mapping declared itself, such as the columns of public benchmark data. A
	// custom field has no catalog type, so it must spell out its steps.
	Key string `json:"key" yaml:"key"`
	// Name is the output feature's name (the prefix of one-hot and indicator outputs); default Key.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Personal must be true for a field of sensitivity personal (3) and only for one: the bank
	// states that it asks for personal information. Such a field is a model input only: no output
	// ever carries its values.
	Personal bool `json:"personal,omitempty" yaml:"personal,omitempty"`
	// Steps are the transform steps, applied in order (modeling/features). When none are given the
	// catalog type's defaults apply (DefaultSteps). In he mode a numeric field must be clipped and
	// scaled so that its output is bounded.
	Steps []features.Step `json:"steps,omitempty" yaml:"steps,omitempty"`
}

// CustomPrefix starts the key of a custom field: a column that is not in the catalog.
const CustomPrefix = "custom."

// Custom reports whether the field is a custom column rather than a catalog field.
func (f Field) Custom() bool { return strings.HasPrefix(f.Key, CustomPrefix) }

// ColumnSpec returns the field's transform as modeling/features takes it: the column is the field's
// key.
func (f Field) ColumnSpec() features.ColumnSpec {
	return features.ColumnSpec{Column: f.Key, Name: f.Name, Steps: f.Steps}
}

// Spec returns the transform of all requested fields, in order.
func (m *Manifest) Spec() features.Spec {
	s := features.Spec{Columns: make([]features.ColumnSpec, len(m.Fields))}
	for i, f := range m.Fields {
		s.Columns[i] = f.ColumnSpec()
	}
	return s
}

// Model is the model family and its hyperparameters.
type Model struct {
	// Family is the model family: one of plugins/sdk's families (logistic_regression, scorecard,
	// gbdt) or another lower-case identifier, which the output gate releases only under a
	// steward's waiver. Required.
	Family string `json:"family" yaml:"family"`
	// Hyperparameters is a JSON object passed to the plugin as given: text, numbers (finite,
	// integers within ±2^53), true/false, null, lists and objects, at most MaxHyperparameterDepth
	// deep and MaxHyperparameterValues values in all.
	Hyperparameters map[string]any `json:"hyperparameters,omitempty" yaml:"hyperparameters,omitempty"`
}

// Outputs declares what may leave the enclave. Unset outputs may not.
type Outputs struct {
	// Weights: the trained model's weights.
	Weights *WeightsOutput `json:"weights,omitempty" yaml:"weights,omitempty"`
	// Scores: one score per subject of the job's consented cohort.
	Scores *ScoresOutput `json:"scores,omitempty" yaml:"scores,omitempty"`
	// Metrics: named evaluation metrics.
	Metrics *MetricsOutput `json:"metrics,omitempty" yaml:"metrics,omitempty"`
	// Scorecard: a credit scorecard's points table (family scorecard): per characteristic the bins,
	// their weights of evidence, the coefficient and the points.
	Scorecard *ScorecardOutput `json:"scorecard,omitempty" yaml:"scorecard,omitempty"`
	// Trees: a tree ensemble (family gbdt).
	Trees *TreesOutput `json:"trees,omitempty" yaml:"trees,omitempty"`
}

// WeightsOutput bounds a released weight vector.
type WeightsOutput struct {
	// MaxWeights is the most weights (not counting the intercept) the output may have, 1 to
	// MaxWeights. Required. It must cover the features the fields give where their number is known.
	MaxWeights int `json:"max_weights" yaml:"max_weights"`
	// MaxAbs is the largest absolute value a weight (or the intercept) may have, > 0. Required.
	MaxAbs float64 `json:"max_abs" yaml:"max_abs"`
}

// ScorecardOutput bounds a released scorecard and fixes how its log-odds become points.
type ScorecardOutput struct {
	// MaxBins is the most regular bins one characteristic may have (the missing bin not counted),
	// 1 to MaxScorecardBins. Required.
	MaxBins int `json:"max_bins" yaml:"max_bins"`
	// MaxAbs is the largest absolute value a coefficient, a weight of evidence or the intercept may
	// have, > 0. Required.
	MaxAbs float64 `json:"max_abs" yaml:"max_abs"`
	// MaxPoints is the largest absolute number of points one attribute (bin) may carry, > 0; default
	// DefaultMaxPoints.
	MaxPoints float64 `json:"max_points,omitempty" yaml:"max_points,omitempty"`
	// PDO is the number of points that doubles the odds of good to bad, > 0; default 20.
	PDO float64 `json:"pdo,omitempty" yaml:"pdo,omitempty"`
	// BaseScore is the score at which the odds of good to bad are BaseOdds, finite and not 0; default
	// 600 (0 means the default).
	BaseScore float64 `json:"base_score,omitempty" yaml:"base_score,omitempty"`
	// BaseOdds are the odds of good to bad at BaseScore, > 0; default 50.
	BaseOdds float64 `json:"base_odds,omitempty" yaml:"base_odds,omitempty"`
}

// TreesOutput bounds a released tree ensemble.
type TreesOutput struct {
	// MaxTrees is the most trees the ensemble may have, 1 to MaxTrees. Required.
	MaxTrees int `json:"max_trees" yaml:"max_trees"`
	// MaxDepth is the deepest any leaf may lie (the root has depth 0), 1 to MaxTreeDepth. Required.
	MaxDepth int `json:"max_depth" yaml:"max_depth"`
	// MaxLeaves is the most leaves one tree may have, 2 to 2^max_depth; default 2^max_depth.
	MaxLeaves int `json:"max_leaves,omitempty" yaml:"max_leaves,omitempty"`
	// MaxAbs is the largest absolute value a leaf value or the base score may have, > 0. Required.
	MaxAbs float64 `json:"max_abs" yaml:"max_abs"`
}

// ScoresOutput bounds released scores.
type ScoresOutput struct {
	// Range is the [low, high] every score lies in; default [0, 1].
	Range []float64 `json:"range,omitempty" yaml:"range,omitempty"`
}

// MetricsOutput lists the metrics that may be released.
type MetricsOutput struct {
	// Names are the metric names (lower-case identifiers such as auc, ks, log_loss), each once; the
	// order does not matter (the canonical form sorts them). Required, at most MaxMetrics.
	Names []string `json:"names" yaml:"names"`
}
