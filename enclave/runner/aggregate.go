package runner

import (
	"context"

	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// AggregateInput is the cohort of an sdk.ModeAggregate job, prepared by the enclave in memory and
// wrapped in its aggregate query service (enclave/aggregate): the plugin gets no rows, only the
// service's thresholded, noised answers over the broker, each charged to the privacy ledger.
// Aggregate jobs may run on datasets of any class.
type AggregateInput struct {
	// Service answers the plugin's queries; offered as sdk.TrainInput.Aggregate.
	Service sdk.AggregateClient
	// Features names the transformed features the queries may name, in model order; Rows is the
	// size of the training part the service answers about.
	Features []string
	Rows     int

	// Dataset, Version and Class say where the cohort comes from, and Transforms how its features
	// were made; they are copied into the Result's InputSummary for the record and the gate.
	Dataset    string
	Version    int
	Class      string
	Transforms *features.Fitted
}

// runAggregate runs the plugin with no rows and the aggregate service.
func runAggregate(ctx context.Context, spec *RunSpec) (*Result, error) {
	in := spec.Aggregate
	sum := &InputSummary{
		Dataset: in.Dataset, Version: in.Version, Class: in.Class, Rows: in.Rows,
		Features: append([]string(nil), in.Features...), Transforms: in.Transforms,
	}
	j := &job{features: sum.Features, label: LabelColumn, subject: SubjectColumn, summary: sum, agg: in.Service}
	return run(ctx, spec, j, nil)
}
