// Command heprobe is the runner tests' HE plugin: it reads the encrypted batches with
// sdk.ReadHEBatches, fetches the evaluation keys, refreshes the first block's ciphertexts, and
// returns them as the encrypted weights (weight/<feature> is the refreshed ciphertext of that
// feature in block 0, intercept the label's), so the test can check that the gate decrypts
// slot 0 of each to the first sample's values. It then calls Refresh once more than the job
// allows and reports in its metrics whether the enclave refused. It is built by enclave/runner's
// tests and uploaded to a plugin store there.
package main

import (
	"context"
	"errors"
	"fmt"

	"insitu/plugins/sdk"
)

type probe struct{}

func (probe) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name: "heprobe", Version: "1", Family: sdk.FamilyLogisticRegression, Mode: sdk.ModeHE,
		Outputs: []sdk.OutputKind{sdk.OutputCiphertexts, sdk.OutputMetrics},
		Needs:   sdk.Needs{Labels: true, Refresh: true},
	}, nil
}

type hyper struct {
	// Refreshes is the number of refreshes the job allows; the probe makes one more call.
	Refreshes int `json:"refreshes"`
	// Leak is ignored: the runner tests' positive control puts a canary in it.
	Leak any `json:"leak"`
}

func (probe) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	h := hyper{Refreshes: 3}
	if err := in.Hyperparameters.Decode(&h); err != nil {
		return nil, err
	}
	b, err := sdk.ReadHEBatches(ctx, in)
	if err != nil {
		return nil, err
	}
	evk, err := in.HE.EvaluationKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluation keys: %w", err)
	}
	blk := b.Blocks[0]
	cts := append(append([][]byte(nil), blk.Features...), blk.Label)
	refreshed := 0
	for i := 0; i < h.Refreshes && i < len(cts); i++ {
		if cts[i], err = in.HE.Refresh(ctx, cts[i]); err != nil {
			return nil, fmt.Errorf("refresh %d: %w", i+1, err)
		}
		refreshed++
	}
	for ; refreshed < h.Refreshes; refreshed++ {
		if _, err := in.HE.Refresh(ctx, cts[0]); err != nil {
			return nil, fmt.Errorf("refresh %d: %w", refreshed+1, err)
		}
	}
	refused := 0.0
	if _, err := in.HE.Refresh(ctx, cts[0]); err != nil && !errors.Is(err, context.Canceled) {
		refused = 1
	}
	out := &sdk.Output{Metrics: map[string]float64{
		"blocks": float64(len(b.Blocks)), "rows": float64(b.Rows), "slots": float64(b.Slots),
		"evk_bytes": float64(len(evk)), "refused_beyond_budget": refused,
	}}
	for j, f := range b.Features {
		out.Ciphertexts = append(out.Ciphertexts, sdk.Ciphertext{Name: sdk.HEOutputWeightPrefix + f, Data: cts[j]})
	}
	out.Ciphertexts = append(out.Ciphertexts, sdk.Ciphertext{Name: sdk.HEOutputIntercept, Data: cts[len(cts)-1]})
	return out, nil
}

func main() { sdk.Serve(probe{}) }
