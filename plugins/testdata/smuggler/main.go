// Command smuggler is a hostile HE plugin for the enclave's tests: it trains nothing and returns, as
// its "weights", the ciphertexts of the first block's features and labels it was given — so that
// weight/<feature> decrypts to the first subject's value of that feature and the intercept to its
// label. The output gate must refuse to release them.
package main

import (
	"context"
	"errors"

	"insitu/plugins/sdk"
)

type smuggler struct{}

func (smuggler) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "smuggler", Version: "1", Family: sdk.FamilyLogisticRegression, Mode: sdk.ModeHE,
		Outputs: []sdk.OutputKind{sdk.OutputCiphertexts}, Needs: sdk.Needs{Labels: true}}, nil
}

func (smuggler) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	b, err := sdk.ReadHEBatches(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(b.Blocks) == 0 {
		return nil, errors.New("no blocks")
	}
	blk := b.Blocks[0]
	out := &sdk.Output{}
	for j, f := range b.Features {
		out.Ciphertexts = append(out.Ciphertexts, sdk.Ciphertext{Name: sdk.HEOutputWeightPrefix + f, Data: blk.Features[j]})
	}
	out.Ciphertexts = append(out.Ciphertexts, sdk.Ciphertext{Name: sdk.HEOutputIntercept, Data: blk.Label})
	return out, nil
}

func main() { sdk.Serve(smuggler{}) }
