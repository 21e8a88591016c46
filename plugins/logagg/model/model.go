// Package model is the logic of insitu's reference logistic-regression plugin in aggregate mode
// (sdk.ModeAggregate): L2-regularised logistic regression, the objective of modeling/logreg
// (Σ log-loss + (λ/2)‖w‖², intercept free), fitted by damped Newton steps. Each step asks the
// enclave's aggregate service for the gradient and Hessian of the log-loss at the current weights
// (sdk.AggregateClient.GLM, clipped and noised under the job's budget, evenly divided among the
// steps), adds the penalty and solves; when the noisy gradient grows the plugin goes back and takes
// half the step. It returns the weights, which the output gate verifies against the exact optimum.
//
// Call New for the sdk.Model, or Serve to serve it as a plugin process.
package model

import (
	"context"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"insitu/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// Hyperparameters are the job's settings, a JSON object such as {"lambda": 1, "steps": 6}.
type Hyperparameters struct {
	// Lambda is the L2 penalty λ of the sum-of-losses objective (default 1), as the gate reads it.
	Lambda float64 `json:"lambda"`
	// Steps is the number of Newton steps (default 6).
	Steps int `json:"steps"`
	// ClipNorm bounds each row's norm in the sums; 0 takes the bound of the features' transforms.
	ClipNorm float64 `json:"clip_norm"`
}

// DefaultHyperparameters returns the defaults.
func DefaultHyperparameters() Hyperparameters { return Hyperparameters{Lambda: 1, Steps: 6} }

// Model is the plugin.
type Model struct{}

var _ sdk.Model = (*Model)(nil)

// New returns the model.
func New() *Model { return &Model{} }

// Serve serves the model as a plugin process.
func Serve() { sdk.Serve(New()) }

// Describe declares a logistic regression in aggregate mode that needs labels and returns weights.
func (*Model) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "logagg", Version: Version, Family: sdk.FamilyLogisticRegression, Mode: sdk.ModeAggregate,
		Outputs: []sdk.OutputKind{sdk.OutputWeights, sdk.OutputMetrics}, Needs: sdk.Needs{Labels: true}}, nil
}

// Train fits the weights.
func (*Model) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	hp := DefaultHyperparameters()
	if err := in.Hyperparameters.Decode(&hp); err != nil {
		return nil, err
	}
	if !(hp.Lambda >= 0) || math.IsInf(hp.Lambda, 0) || hp.Steps < 1 || hp.Steps > 100 || !(hp.ClipNorm >= 0) {
		return nil, &sdk.Error{Err: sdk.ErrHyperparameter, Detail: fmt.Sprintf("%+v: need lambda >= 0, 1 <= steps <= 100, clip_norm >= 0", hp)}
	}
	if in.Aggregate == nil || len(in.Features) == 0 {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "an aggregate job with at least one feature is needed"}
	}
	w, b, spent, err := Fit(ctx, in.Aggregate, in.Features, hp)
	if err != nil {
		return nil, err
	}
	in.Log.Info("fitted", "epsilon_spent", spent)
	return &sdk.Output{Weights: &sdk.Weights{Names: slices.Clone(in.Features), Values: w, Intercept: b},
		Metrics: map[string]float64{"epsilon_spent": spent}}, nil
}

// Fit runs the damped Newton steps on the job's remaining budget and returns the weights, the
// intercept and the job's ε spent.
func Fit(ctx context.Context, c sdk.AggregateClient, features []string, hp Hyperparameters) ([]float64, float64, float64, error) {
	bud, err := c.Budget(ctx)
	if err != nil {
		return nil, 0, 0, err
	}
	rho := bud.RhoLeft * (1 - 1e-9) / float64(hp.Steps)
	if !(rho > 0) {
		return nil, 0, 0, &sdk.Error{Err: sdk.ErrInput, Detail: "the job has no privacy budget left"}
	}
	d := len(features) + 1
	theta := make([]float64, d) // intercept first
	var prev []float64
	prevNorm, step := math.Inf(1), 1.0
	for range hp.Steps {
		a, err := c.GLM(ctx, sdk.GLMQuery{Features: features, Weights: theta[1:], Intercept: theta[0], Hessian: true, ClipNorm: hp.ClipNorm, Rho: rho})
		if err != nil {
			return nil, 0, 0, fmt.Errorf("logagg: newton step: %w", err)
		}
		g := slices.Clone(a.Gradient)
		H := mat.NewSymDense(d, nil)
		for i := range d {
			for j := i; j < d; j++ {
				H.SetSym(i, j, a.Hessian[i][j])
			}
		}
		for j := 1; j < d; j++ {
			g[j] += hp.Lambda * theta[j]
			H.SetSym(j, j, H.At(j, j)+hp.Lambda)
		}
		norm := mat.Norm(mat.NewVecDense(d, g), 2)
		if norm > prevNorm && prev != nil {
			step /= 2
			theta = slices.Clone(prev)
		} else {
			prevNorm = norm
		}
		// Noise can make the Hessian indefinite: add to its diagonal until it factorises.
		var chol mat.Cholesky
		for shift := 0.0; !chol.Factorize(H); {
			shift = math.Max(2*shift, 1e-6*math.Max(1, mat.Trace(H)))
			for j := range d {
				H.SetSym(j, j, H.At(j, j)+shift)
			}
		}
		var dx mat.VecDense
		if err := chol.SolveVecTo(&dx, mat.NewVecDense(d, g)); err != nil {
			return nil, 0, 0, err
		}
		prev = slices.Clone(theta)
		for j := range theta {
			theta[j] -= step * dx.AtVec(j)
		}
	}
	if bud, err = c.Budget(ctx); err != nil {
		return nil, 0, 0, err
	}
	return theta[1:], theta[0], bud.EpsilonSpent, nil
}
