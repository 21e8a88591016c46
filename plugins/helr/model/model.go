// Package model is the logic of insitu's HE logistic-regression plugin: L2-regularised logistic
// regression trained on CKKS-encrypted batches (sdk.ModeHE) without ever decrypting anything. It
// runs the algorithm of modeling/helr (Nesterov's accelerated gradient with a polynomial sigmoid)
// on ciphertexts and returns the encrypted weights for the enclave's output gate.
//
// Call New for the sdk.Model, or Serve to serve it as a plugin process (what plugins/helr's main
// and the insitu binary's built-in plugin do). The job's hyperparameters decode into helr.Config:
// iterations, l2, learning_rate, sigmoid_degree and sigmoid_range (helr.DefaultConfig gives the
// defaults).
//
// # What it computes
//
// The plugin minimises F(w, b) = (1/n)·Σ_i [log(1 + exp(w·x_i + b)) − y_i·(w·x_i + b)] +
// (l2/2)·‖w‖² — the optimum of modeling/logreg with λ = n·l2 — approximately: it runs exactly
// the iterations of modeling/helr, so a decryption of its output equals helr.Fit's result up to the
// CKKS error (measured about 1e-9 per iteration and 2e-6 after ten iterations on the tests' parameters).
//
// # Layout and cost
//
// The input is the column-packed layout columns.v1 (sdk.ReadHEBatches): per block of S samples one
// ciphertext per feature and one for the labels. Each weight is one ciphertext holding its value in
// every slot, so the margins u = b + Σ_j w_j ⊙ x_j need no rotation (the products accumulate
// unrelinearised, one relinearisation per block); the sigmoid is the polynomial evaluated by
// lattigo (2 levels for degree 3, 3 for 5 and 7); the gradient of feature j sums (p(u) − y) ⊙ x_j
// over the blocks first and over the slots once, at level 0 where rotations are cheapest (log2 S
// rotations, which leave the total in every slot). The constants α/n are folded into the
// polynomial's coefficients and the labels. After each iteration the new weights (at level 0) go to
// the enclave's refresh service and come back at the top level: d+1 refreshes per iteration but
// the last, (d+1)·(iterations−1) in all. A refreshed weight w_t and the momentum point v_t (one
// level below) are all an iteration needs, so the parameters need depth(sigmoid) + 3 levels. Work is
// spread over GOMAXPROCS goroutines, each with its own ShallowCopy evaluator.
//
// Outputs: one ciphertext per weight named "weight/<feature>" and one named "intercept", each
// holding the value in every slot (the gate reads slot 0).
//
// # Features
//
// The defaults suit features of about unit variance whose optimum's margins lie within the
// sigmoid's interval [−8, 8]: a bank's manifest should transform each numeric column as
// helr.FeatureSpec does (median imputed, winsorised at the training 1 % and 99 % quantiles,
// standardised, clipped to [−4, 4]). Standardising heavy-tailed columns without winsorising first
// leaves the bulk of their values squeezed near 0 and costs far more than the encryption does
// (modeling/helr's package doc, "Features": on Give Me Some Credit, test AUC 0.725 against 0.781).
//
// # Measured
//
// At the production parameters (log N = 14, log Q = 55 + 7×45, log P = 61, scale 2^45), default
// hyperparameters (10 iterations), features by helr.FeatureSpec, on 2 vCPUs shared with other
// work (load average 6–9, so wall times are two to three times those of an idle machine):
//
//	data                     blocks  train s  s/iteration  refreshes  test AUC  mirror  exact optimum  peak MB
//	Taiwan, real-only ring        2     27.7          2.8        216    0.7311  0.7311         0.7322     2241
//	Taiwan, standard ring         3     25.8          2.6        216    0.7311  0.7311         0.7322     2241
//	Give Me Some Credit, r-o      8     27.7          2.8         99    0.8535  0.8535         0.8528     2325
//
// The decrypted weights differ from the plaintext mirror's by at most 2e-4 (Taiwan) and 9e-5 (Give
// Me Some Credit); relative distance to the optimum 0.22 and excess mean loss 1.8e-3 (Taiwan) and
// 7.9e-3 (Give Me Some Credit) nats per row, inside the output gate's 0.6 and 0.03. Commands:
//
//	go test ./plugins/helr/model -run XXX -bench TaiwanLogN14 -benchtime=1x
//	go test ./plugins/helr/model -run XXX -bench GMSCLogN14 -benchtime=1x
package model

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"insitu/modeling/helr"
	"insitu/plugins/sdk"
)

// Version is the plugin's version, reported by Describe.
const Version = "1.0.0"

// Name is the plugin's name.
const Name = "helr"

// Output names: "weight/" + feature for each weight, and the intercept.
const (
	WeightPrefix  = "weight/"
	InterceptName = "intercept"
)

// Model is the HE logistic-regression plugin.
type Model struct {
	// Workers is the number of goroutines; 0 means GOMAXPROCS.
	Workers int
}

var _ sdk.Model = (*Model)(nil)

// New returns the model.
func New() *Model { return &Model{} }

// Serve serves the model as a plugin process; it is the whole of a plugin's main.
func Serve() { sdk.Serve(New()) }

// Describe declares a logistic regression in HE mode that needs labels and the refresh service
// and returns ciphertexts.
func (*Model) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:    Name,
		Version: Version,
		Family:  sdk.FamilyLogisticRegression,
		Mode:    sdk.ModeHE,
		Outputs: []sdk.OutputKind{sdk.OutputCiphertexts},
		Needs:   sdk.Needs{Labels: true, Refresh: true},
	}, nil
}

// Hyperparameters decodes and checks the job's hyperparameters (unknown keys are refused).
// Errors wrap sdk.ErrHyperparameter and name the hyperparameter.
func Hyperparameters(h sdk.Hyperparameters) (helr.Config, error) {
	cfg := helr.DefaultConfig()
	if err := h.Decode(&cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		var field string
		if ce, ok := err.(*helr.ConfigError); ok {
			field = ce.Field
		}
		return cfg, &sdk.Error{Column: field, Err: sdk.ErrHyperparameter, Detail: err.Error()}
	}
	return cfg, nil
}

// Train reads the encrypted batches and the evaluation keys, runs the iterations and returns the
// encrypted weights.
func (m *Model) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	start := time.Now()
	cfg, err := Hyperparameters(in.Hyperparameters)
	if err != nil {
		return nil, err
	}
	if in.HE == nil {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "the job offers no HE context: helr runs in HE mode only"}
	}
	if in.Label == "" {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "the job hands the plugin no label column"}
	}
	params, err := parameters(in.HE.Parameters())
	if err != nil {
		return nil, err
	}
	batches, err := sdk.ReadHEBatches(ctx, in)
	if err != nil {
		return nil, err
	}
	if batches.Slots != params.MaxSlots() {
		return nil, &sdk.Error{Column: sdk.MetaHESlots, Err: sdk.ErrInput,
			Detail: fmt.Sprintf("the stream packs %d slots per ciphertext, the parameters give %d", batches.Slots, params.MaxSlots())}
	}
	keys, err := in.HE.EvaluationKeys(ctx)
	if err != nil {
		return nil, err
	}
	evk, err := evaluationKeys(params, keys)
	if err != nil {
		return nil, err
	}
	workers := m.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	tr, err := newTrainer(params, evk, workers, cfg, batches.Rows, len(batches.Features))
	if err != nil {
		return nil, err
	}
	for b, blk := range batches.Blocks {
		if err := tr.addBlock(b, blk); err != nil {
			return nil, err
		}
		batches.Blocks[b] = sdk.HEBlock{} // the marshalled copy is no longer needed
	}
	in.Log.Info("training", "rows", batches.Rows, "features", len(batches.Features), "blocks", len(tr.blocks),
		"iterations", cfg.Iterations, "sigmoid_degree", cfg.SigmoidDegree, "workers", len(tr.workers),
		"margin_bound", helr.MarginBound(batches.Bounds, cfg.L2, 0), "sigmoid_range", cfg.SigmoidRange,
		"setup", time.Since(start).Round(time.Millisecond).String())
	w, err := tr.run(ctx, in.HE, in.Log)
	if err != nil {
		return nil, err
	}
	out := &sdk.Output{Ciphertexts: make([]sdk.Ciphertext, 0, len(w))}
	for j, ct := range w {
		data, err := ct.MarshalBinary()
		if err != nil {
			return nil, err
		}
		name := InterceptName
		if j > 0 {
			name = WeightPrefix + batches.Features[j-1]
		}
		out.Ciphertexts = append(out.Ciphertexts, sdk.Ciphertext{Name: name, Data: data})
	}
	in.Log.Info("trained", "iterations", cfg.Iterations, "refreshes", tr.refreshes.Load(),
		"elapsed", time.Since(start).Round(time.Millisecond).String())
	return out, nil
}
