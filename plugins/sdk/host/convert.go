package host

import (
	"errors"
	"math"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/internal/pluginpb"
)

// The host side's conversions between the protocol messages and the sdk types.

var modes = map[pluginpb.Mode]sdk.Mode{
	pluginpb.Mode_MODE_PLAINTEXT_PUBLIC: sdk.ModePlaintextPublic,
	pluginpb.Mode_MODE_HE:               sdk.ModeHE,
	pluginpb.Mode_MODE_AGGREGATE:        sdk.ModeAggregate,
}

var outputKinds = map[pluginpb.OutputKind]sdk.OutputKind{
	pluginpb.OutputKind_OUTPUT_WEIGHTS:     sdk.OutputWeights,
	pluginpb.OutputKind_OUTPUT_TREES:       sdk.OutputTrees,
	pluginpb.OutputKind_OUTPUT_SCORES:      sdk.OutputScores,
	pluginpb.OutputKind_OUTPUT_METRICS:     sdk.OutputMetrics,
	pluginpb.OutputKind_OUTPUT_CIPHERTEXTS: sdk.OutputCiphertexts,
}

var statistics = map[pluginpb.Statistic]sdk.Statistic{
	pluginpb.Statistic_STATISTIC_COUNT: sdk.StatCount,
	pluginpb.Statistic_STATISTIC_SUM:   sdk.StatSum,
	pluginpb.Statistic_STATISTIC_MEAN:  sdk.StatMean,
}

func modeToPB(m sdk.Mode) pluginpb.Mode {
	for k, v := range modes {
		if v == m {
			return k
		}
	}
	return pluginpb.Mode_MODE_UNSPECIFIED
}

// descriptionFromPB converts and validates a plugin's description.
func descriptionFromPB(p *pluginpb.Description) (*sdk.Description, error) {
	mode, ok := modes[p.GetMode()]
	if !ok {
		return nil, protocolError("describe", "unknown mode %d", p.GetMode())
	}
	d := &sdk.Description{
		Name:    p.GetName(),
		Version: p.GetVersion(),
		Family:  p.GetFamily(),
		Mode:    mode,
		Needs:   sdk.Needs{Labels: p.GetNeeds().GetLabels(), Refresh: p.GetNeeds().GetRefresh()},
	}
	for _, k := range p.GetOutputs() {
		kind, ok := outputKinds[k]
		if !ok {
			return nil, protocolError("describe", "unknown output kind %d", k)
		}
		d.Outputs = append(d.Outputs, kind)
	}
	if err := d.Validate(); err != nil {
		return nil, &Error{Op: "describe", Err: ErrProtocol, Detail: err.Error(), Cause: err}
	}
	return d, nil
}

// queryFromPB converts a plugin's aggregate query; an unknown statistic is an error.
func queryFromPB(p *pluginpb.AggregateQuery) (sdk.AggregateQuery, error) {
	st, ok := statistics[p.GetStatistic()]
	if !ok {
		return sdk.AggregateQuery{}, errors.New("unknown statistic")
	}
	q := sdk.AggregateQuery{Statistic: st, Column: p.GetColumn()}
	for _, b := range p.GetGroupBy() {
		q.GroupBy = append(q.GroupBy, sdk.Bins{Column: b.GetColumn(), Edges: b.GetEdges()})
	}
	return q, nil
}

func answerToPB(a sdk.AggregateAnswer) *pluginpb.AggregateAnswer {
	p := &pluginpb.AggregateAnswer{Epsilon: a.Epsilon, Cells: make([]*pluginpb.AggregateCell, len(a.Cells))}
	for i, c := range a.Cells {
		cell := &pluginpb.AggregateCell{Value: c.Value, Suppressed: c.Suppressed, Bins: make([]uint32, len(c.Bins))}
		for j, b := range c.Bins {
			cell.Bins[j] = uint32(min(max(b, 0), math.MaxUint32))
		}
		p.Cells[i] = cell
	}
	return p
}
