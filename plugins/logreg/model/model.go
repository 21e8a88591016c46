// Package model is the logic of insitu's reference plugin: L2-regularised logistic regression on
// the plaintext rows of a public or synthetic dataset (sdk.ModePlaintextPublic), fitted with
// insitu/modeling/logreg. It returns the weights and intercept, one default probability per
// subject, and training metrics.
//
// Call New for the sdk.Model, or Serve to serve it as a plugin process (what plugins/logreg's main
// and the insitu binary's built-in plugin do). The job's hyperparameters decode into
// Hyperparameters.
package model

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
	"insitu/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// Hyperparameters are the job's settings for this plugin, given as a JSON object such as
// {"lambda": 1, "max_iter": 100}. Unknown keys are refused.
type Hyperparameters struct {
	// Lambda is the L2 penalty λ >= 0 (scikit-learn's C = 1/λ). Default 1.
	Lambda float64 `json:"lambda"`
	// MaxIter bounds Newton's iterations (default 100).
	MaxIter int `json:"max_iter"`
	// GradTol is the relative gradient tolerance of convergence (default 1e-8).
	GradTol float64 `json:"grad_tol"`
}

// DefaultHyperparameters returns the defaults.
func DefaultHyperparameters() Hyperparameters {
	return Hyperparameters{Lambda: 1, MaxIter: 100, GradTol: 1e-8}
}

// Model is the reference logistic-regression plugin.
type Model struct{}

var _ sdk.Model = (*Model)(nil)

// New returns the model.
func New() *Model { return &Model{} }

// Serve serves the model as a plugin process; it is the whole of a plugin's main.
func Serve() { sdk.Serve(New()) }

// Describe declares a logistic regression in plaintext-public mode that needs labels and returns
// weights, scores and metrics.
func (*Model) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:    "logreg",
		Version: Version,
		Family:  sdk.FamilyLogisticRegression,
		Mode:    sdk.ModePlaintextPublic,
		Outputs: []sdk.OutputKind{sdk.OutputWeights, sdk.OutputScores, sdk.OutputMetrics},
		Needs:   sdk.Needs{Labels: true},
	}, nil
}

// Train reads every row, fits the model and scores the training rows.
func (*Model) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	hp := DefaultHyperparameters()
	if err := in.Hyperparameters.Decode(&hp); err != nil {
		return nil, err
	}
	if math.IsNaN(hp.Lambda) || math.IsInf(hp.Lambda, 0) || hp.Lambda < 0 || hp.MaxIter < 0 || !(hp.GradTol >= 0) {
		return nil, &sdk.Error{Err: sdk.ErrHyperparameter,
			Detail: fmt.Sprintf("lambda %v, max_iter %d, grad_tol %v: need lambda >= 0, max_iter >= 0, grad_tol >= 0", hp.Lambda, hp.MaxIter, hp.GradTol)}
	}
	if in.Label == "" {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "the job hands the plugin no label column"}
	}
	tab, err := sdk.ReadTable(ctx, in)
	if err != nil {
		return nil, err
	}
	if tab.Len() == 0 || len(tab.Features) == 0 {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: fmt.Sprintf("%d rows and %d features: need at least one of each", tab.Len(), len(tab.Features))}
	}
	in.Log.Info("fitting", "rows", tab.Len(), "features", len(tab.Features), "lambda", hp.Lambda)
	X := mat.NewDense(tab.Len(), len(tab.Features), tab.X)
	fit, err := logreg.Fit(logreg.Problem{X: X, Y: tab.Y, Lambda: hp.Lambda, FeatureNames: tab.Features},
		logreg.Options{MaxIter: hp.MaxIter, GradTol: hp.GradTol})
	if err != nil {
		return nil, err
	}
	p := fit.PredictProba(X)
	out := &sdk.Output{
		Weights: &sdk.Weights{Names: tab.Features, Values: fit.Weights, Intercept: fit.Intercept},
		Scores:  make([]sdk.Score, tab.Len()),
		Metrics: map[string]float64{
			"rows":       float64(tab.Len()),
			"iterations": float64(fit.Iterations),
			"objective":  fit.Objective,
			"grad_norm":  fit.GradNorm,
		},
	}
	for i, s := range tab.Subjects {
		out.Scores[i] = sdk.Score{Subject: s, Value: p[i]}
	}
	if sum, err := metrics.Evaluate(tab.Y, p); err == nil {
		out.Metrics["auc"], out.Metrics["ks"], out.Metrics["gini"] = sum.AUC, sum.KS, sum.Gini
		out.Metrics["positives"] = float64(sum.Positives)
	}
	if ll, err := metrics.LogLoss(tab.Y, p); err == nil {
		out.Metrics["log_loss"] = ll
	}
	in.Log.Info("fitted", "iterations", fit.Iterations, "converged", fit.Converged)
	return out, nil
}
