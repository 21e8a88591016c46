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
	p := &pluginpb.AggregateQuery{Statistic: statsToPB[q.Statistic], Column: q.Column, Rho: q.Rho}
	for _, b := range q.GroupBy {
		p.GroupBy = append(p.GroupBy, &pluginpb.Bins{Column: b.Column, Edges: b.Edges})
	}
	return p
}

func answerFromPB(p *pluginpb.AggregateAnswer) AggregateAnswer {
	a := AggregateAnswer{Epsilon: p.GetEpsilon(), Rho: p.GetRho(), Cells: make([]AggregateCell, 0, len(p.GetCells()))}
	for _, c := range p.GetCells() {
		cell := AggregateCell{Value: c.GetValue(), Suppressed: c.GetSuppressed(), Bins: make([]int, len(c.GetBins()))}
		for i, b := range c.GetBins() {
			cell.Bins[i] = int(b)
		}
		a.Cells = append(a.Cells, cell)
	}
	return a
}

func spentFromPB(p *pluginpb.Spent) Spent { return Spent{Rho: p.GetRho(), Epsilon: p.GetEpsilon()} }

// matrixFromPB returns a row-major matrix as rows; nil for an absent or malformed one.
func matrixFromPB(m *pluginpb.Matrix) [][]float64 {
	if m == nil || uint64(m.GetRows())*uint64(m.GetCols()) != uint64(len(m.GetValues())) {
		return nil
	}
	out := make([][]float64, m.GetRows())
	for i := range out {
		out[i] = m.GetValues()[i*int(m.GetCols()) : (i+1)*int(m.GetCols())]
	}
	return out
}

func histogramQueryToPB(q HistogramQuery) *pluginpb.HistogramQuery {
	p := &pluginpb.HistogramQuery{ByLabel: q.ByLabel, Sums: q.Sums, Rho: q.Rho}
	for _, b := range q.Features {
		p.Features = append(p.Features, &pluginpb.Bins{Column: b.Column, Edges: b.Edges})
	}
	return p
}

func histogramAnswerFromPB(p *pluginpb.HistogramAnswer) *HistogramAnswer {
	a := &HistogramAnswer{Spent: spentFromPB(p.GetSpent())}
	for _, f := range p.GetFeatures() {
		h := FeatureHistogram{Column: f.GetColumn(), Edges: f.GetEdges(), Counts: matrixFromPB(f.GetCounts()), Sums: matrixFromPB(f.GetSums())}
		cols := int(f.GetCounts().GetCols())
		sup := f.GetSuppressed()
		for l := range h.Counts {
			if (l+1)*cols <= len(sup) {
				h.Suppressed = append(h.Suppressed, sup[l*cols:(l+1)*cols])
			}
		}
		a.Features = append(a.Features, h)
	}
	return a
}

func treeHeaderToPB(q *TreeQuery) *pluginpb.TreeQueryHeader {
	p := &pluginpb.TreeQueryHeader{Features: q.Features, Rho: q.Rho, ModelBytes: uint64(len(q.Model))}
	for _, e := range q.Edges {
		p.Edges = append(p.Edges, &pluginpb.EdgeList{Edges: e})
	}
	for _, n := range q.Nodes {
		pn := &pluginpb.TreeNodeQuery{Id: int64(n.ID)}
		for _, c := range n.Path {
			pn.Path = append(pn.Path, &pluginpb.TreeCondition{Feature: uint32(max(c.Feature, 0)), Bin: uint32(max(c.Bin, 0)),
				MissingLeft: c.MissingLeft, Left: c.Left})
		}
		p.Nodes = append(p.Nodes, pn)
	}
	return p
}

func treeNodeFromPB(p *pluginpb.TreeNodeHistogram) TreeNodeHistogram {
	n := TreeNodeHistogram{ID: int(p.GetId()), SumG: p.GetSumG(), SumH: p.GetSumH(), Count: p.GetCount(), NodeSuppressed: p.GetNodeSuppressed()}
	off := 0
	g, h, c, s := p.GetG(), p.GetH(), p.GetCounts(), p.GetSuppressed()
	for _, b := range p.GetBins() {
		end := off + int(b)
		if end > len(g) || end > len(h) || end > len(c) || end > len(s) {
			break
		}
		n.G, n.H, n.Counts, n.Suppressed = append(n.G, g[off:end]), append(n.H, h[off:end]), append(n.Counts, c[off:end]), append(n.Suppressed, s[off:end])
		off = end
	}
	return n
}
