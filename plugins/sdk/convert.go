package sdk

import (
	"insitu/plugins/sdk/internal/pluginpb"
)

// The plugin side's conversions between the Go types and the protocol messages. The host side's
// live in package host (an internal package shared by both would have to import this one, and this
// one imports it to serve).

var modesToPB = map[Mode]pluginpb.Mode{
	ModePlaintextPublic: pluginpb.Mode_MODE_PLAINTEXT_PUBLIC,
	ModeHE:              pluginpb.Mode_MODE_HE,
	ModeAggregate:       pluginpb.Mode_MODE_AGGREGATE,
}

var outputsToPB = map[OutputKind]pluginpb.OutputKind{
	OutputWeights:     pluginpb.OutputKind_OUTPUT_WEIGHTS,
	OutputTrees:       pluginpb.OutputKind_OUTPUT_TREES,
	OutputScores:      pluginpb.OutputKind_OUTPUT_SCORES,
	OutputMetrics:     pluginpb.OutputKind_OUTPUT_METRICS,
	OutputCiphertexts: pluginpb.OutputKind_OUTPUT_CIPHERTEXTS,
}

var statsToPB = map[Statistic]pluginpb.Statistic{
	StatCount: pluginpb.Statistic_STATISTIC_COUNT,
	StatSum:   pluginpb.Statistic_STATISTIC_SUM,
	StatMean:  pluginpb.Statistic_STATISTIC_MEAN,
}

func modeFromPB(m pluginpb.Mode) Mode {
	for k, v := range modesToPB {
		if v == m {
			return k
		}
	}
	return Mode(m.String())
}

// descriptionToPB converts a validated description.
func descriptionToPB(d *Description) *pluginpb.Description {
	p := &pluginpb.Description{
		Name:    d.Name,
		Version: d.Version,
		Family:  d.Family,
		Mode:    modesToPB[d.Mode],
		Needs:   &pluginpb.Needs{Labels: d.Needs.Labels, Refresh: d.Needs.Refresh},
	}
	for _, k := range d.Outputs {
		p.Outputs = append(p.Outputs, outputsToPB[k])
	}
	return p
}

func limitsFromPB(l *pluginpb.Limits) Limits {
	return Limits{
		MaxOutputFloats: int64(min(l.GetMaxOutputFloats(), 1<<62)),
		MaxOutputBytes:  int64(min(l.GetMaxOutputBytes(), 1<<62)),
	}.WithDefaults()
}

func queryToPB(q AggregateQuery) *pluginpb.AggregateQuery {
	p := &pluginpb.AggregateQuery{Statistic: statsToPB[q.Statistic], Column: q.Column}
	for _, b := range q.GroupBy {
		p.GroupBy = append(p.GroupBy, &pluginpb.Bins{Column: b.Column, Edges: b.Edges})
	}
	return p
}

func answerFromPB(p *pluginpb.AggregateAnswer) AggregateAnswer {
	a := AggregateAnswer{Epsilon: p.GetEpsilon(), Cells: make([]AggregateCell, 0, len(p.GetCells()))}
	for _, c := range p.GetCells() {
		cell := AggregateCell{Value: c.GetValue(), Suppressed: c.GetSuppressed(), Bins: make([]int, len(c.GetBins()))}
		for i, b := range c.GetBins() {
			cell.Bins[i] = int(b)
		}
		a.Cells = append(a.Cells, cell)
	}
	return a
}
