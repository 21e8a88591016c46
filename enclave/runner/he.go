package runner

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/enclave/he"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// HEInput is the cohort of an sdk.ModeHE job, prepared by the enclave in memory: split, transformed
// and bounded per the manifest. The runner draws a fresh key set for the run, encrypts the cohort as
// it streams it (layout sdk.HELayoutColumnsV1) and offers the plugin the refresh service; the plugin
// never gets the secret key or a plaintext value. HE jobs may run on datasets of any class.
type HEInput struct {
	// Params are the job's CKKS parameters.
	Params he.Parameters
	// Features names the features in model order; Bounds holds the public [lo, hi] of each, which
	// every value of that feature must lie in (the plugin sees the bounds).
	Features []string
	Bounds   [][2]float64
	// X holds the features column-major (X[j][i] is feature j of sample i) and Y the labels, 0 or
	// 1. The runner reads them while the plugin trains; they must not change until Run returns.
	X [][]float64
	Y []float64
	// MaxRefreshes bounds the plugin's calls of the refresh service.
	MaxRefreshes int

	// Dataset, Version and Class say where the cohort comes from, and Transforms how its features
	// were made; they are copied into the Result's InputSummary for the record and the gate.
	Dataset    string
	Version    int
	Class      string
	Transforms *features.Fitted
}

// HEResult is what an HE run leaves for the output gate.
type HEResult struct {
	// Keys holds the run's secret key, to decrypt the declared outputs (Keys.DecryptWeights on
	// Output.Ciphertexts); set only for a completed run. The caller must Close it when done.
	Keys *he.JobKeys
	// Refreshes counts the ciphertexts refreshed; RefreshCalls every call of the refresh service,
	// refused ones included.
	Refreshes, RefreshCalls int
	// ParamsDigest is the hex SHA-256 of the parameters literal.
	ParamsDigest string
}

// cohort returns the input as an he.Cohort.
func (in *HEInput) cohort() he.Cohort {
	return he.Cohort{Features: in.Features, Bounds: in.Bounds, X: in.X, Y: in.Y}
}

// runHE checks the cohort, draws the run's keys and runs the plugin on the encrypted cohort.
func runHE(ctx context.Context, spec *RunSpec) (*Result, error) {
	in := spec.HE
	c := in.cohort()
	if err := c.Check(in.Params); err != nil {
		return nil, fmt.Errorf("runner: HE input: %w: %w", ErrInput, err)
	}
	if in.MaxRefreshes < 0 {
		return nil, fmt.Errorf("runner: HE input: %w: MaxRefreshes %d is negative", ErrInput, in.MaxRefreshes)
	}
	keys, err := he.NewJobKeys(in.Params)
	if err != nil {
		return nil, fmt.Errorf("runner: HE keys: %w", err)
	}
	refresher := keys.NewRefresher(in.MaxRefreshes)
	var service sdk.HEContext = refresher
	if spec.observe != nil && spec.observe.wrapHE != nil {
		service = spec.observe.wrapHE(service)
	}
	sum := &InputSummary{
		Dataset: in.Dataset, Version: in.Version, Class: in.Class, Rows: c.Len(),
		Features: append([]string(nil), in.Features...), Transforms: in.Transforms,
	}
	j := &job{
		features: sum.Features, label: sdk.HELabel, subject: SubjectColumn, summary: sum, he: service,
		open: func(label bool) (array.RecordReader, error) {
			cc := c
			if !label {
				cc.Y = nil
			}
			return keys.Batches(ctx, cc)
		},
	}
	res, err := run(ctx, spec, j, nil)
	if res == nil {
		keys.Close()
		return nil, err
	}
	res.HE = &HEResult{Refreshes: refresher.Refreshes(), RefreshCalls: refresher.Calls(), ParamsDigest: in.Params.Digest()}
	if res.Reason == ReasonCompleted {
		res.HE.Keys = keys
	} else {
		keys.Close()
	}
	return res, err
}
