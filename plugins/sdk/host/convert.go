package host

import (
	"errors"
	"fmt"
	"math"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
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
	if len(p.GetColumn()) > wire.MaxNameBytes {
		return sdk.AggregateQuery{}, fmt.Errorf("column name longer than %d bytes", wire.MaxNameBytes)
	}
	bins, err := binsFromPB(p.GetGroupBy())
	if err != nil {
		return sdk.AggregateQuery{}, err
	}
	return sdk.AggregateQuery{Statistic: st, Column: p.GetColumn(), GroupBy: bins, Rho: p.GetRho()}, nil
}

func answerToPB(a sdk.AggregateAnswer) *pluginpb.AggregateAnswer {
	p := &pluginpb.AggregateAnswer{Epsilon: a.Epsilon, Rho: a.Rho, Cells: make([]*pluginpb.AggregateCell, len(a.Cells))}
	for i, c := range a.Cells {
		cell := &pluginpb.AggregateCell{Value: c.Value, Suppressed: c.Suppressed, Bins: make([]uint32, len(c.Bins))}
		for j, b := range c.Bins {
			cell.Bins[j] = uint32(min(max(b, 0), math.MaxUint32))
		}
		p.Cells[i] = cell
	}
	return p
}

// Bounds on what a plugin's aggregate query may hold, checked before the enclave's service sees it.
const (
	maxQueryColumns = 4096
	maxQueryEdges   = 1 << 16
	maxQueryNodes   = 1 << 12
	maxPathLength   = 64
	// MaxTreeModelBytes bounds the JSON of the ensemble a tree query carries.
	MaxTreeModelBytes = 256 << 20
)

func checkNames(names []string) error {
	if len(names) > maxQueryColumns {
		return fmt.Errorf("more than %d columns", maxQueryColumns)
	}
	for _, n := range names {
		if len(n) > wire.MaxNameBytes {
			return fmt.Errorf("column name longer than %d bytes", wire.MaxNameBytes)
		}
	}
	return nil
}

func binsFromPB(ps []*pluginpb.Bins) ([]sdk.Bins, error) {
	if len(ps) > maxQueryColumns {
		return nil, fmt.Errorf("more than %d binned columns", maxQueryColumns)
	}
	out := make([]sdk.Bins, len(ps))
	total := 0
	for i, b := range ps {
		if len(b.GetColumn()) > wire.MaxNameBytes {
			return nil, fmt.Errorf("column name longer than %d bytes", wire.MaxNameBytes)
		}
		if total += len(b.GetEdges()); total > maxQueryEdges {
			return nil, fmt.Errorf("more than %d edges in all", maxQueryEdges)
		}
		out[i] = sdk.Bins{Column: b.GetColumn(), Edges: b.GetEdges()}
	}
	return out, nil
}

func spentToPB(s sdk.Spent) *pluginpb.Spent { return &pluginpb.Spent{Rho: s.Rho, Epsilon: s.Epsilon} }

// matrixToPB packs rows of equal length; nil rows give nil.
func matrixToPB(m [][]float64) *pluginpb.Matrix {
	if m == nil {
		return nil
	}
	p := &pluginpb.Matrix{Rows: uint32(len(m))}
	if len(m) > 0 {
		p.Cols = uint32(len(m[0]))
	}
	for _, r := range m {
		p.Values = append(p.Values, r...)
	}
	return p
}

func histogramQueryFromPB(p *pluginpb.HistogramQuery) (sdk.HistogramQuery, error) {
	bins, err := binsFromPB(p.GetFeatures())
	if err != nil {
		return sdk.HistogramQuery{}, err
	}
	return sdk.HistogramQuery{Features: bins, ByLabel: p.GetByLabel(), Sums: p.GetSums(), Rho: p.GetRho()}, nil
}

func histogramAnswerToPB(a *sdk.HistogramAnswer) *pluginpb.HistogramAnswer {
	p := &pluginpb.HistogramAnswer{Spent: spentToPB(a.Spent)}
	for _, f := range a.Features {
		pf := &pluginpb.FeatureHistogram{Column: f.Column, Edges: f.Edges, Counts: matrixToPB(f.Counts), Sums: matrixToPB(f.Sums),
			Labels: uint32(len(f.Counts))}
		for _, r := range f.Suppressed {
			pf.Suppressed = append(pf.Suppressed, r...)
		}
		p.Features = append(p.Features, pf)
	}
	return p
}

func treeQueryFromPB(h *pluginpb.TreeQueryHeader, model []byte) (sdk.TreeQuery, error) {
	if err := checkNames(h.GetFeatures()); err != nil {
		return sdk.TreeQuery{}, err
	}
	if len(h.GetNodes()) > maxQueryNodes {
		return sdk.TreeQuery{}, fmt.Errorf("more than %d nodes", maxQueryNodes)
	}
	q := sdk.TreeQuery{Model: model, Features: h.GetFeatures(), Rho: h.GetRho()}
	total := 0
	for _, e := range h.GetEdges() {
		if total += len(e.GetEdges()); total > maxQueryEdges {
			return sdk.TreeQuery{}, fmt.Errorf("more than %d edges in all", maxQueryEdges)
		}
		q.Edges = append(q.Edges, e.GetEdges())
	}
	for _, n := range h.GetNodes() {
		if len(n.GetPath()) > maxPathLength {
			return sdk.TreeQuery{}, fmt.Errorf("node %d: a path longer than %d conditions", n.GetId(), maxPathLength)
		}
		if n.GetId() < math.MinInt32 || n.GetId() > math.MaxInt32 {
			return sdk.TreeQuery{}, fmt.Errorf("node id %d out of range", n.GetId())
		}
		tn := sdk.TreeNodeQuery{ID: int(n.GetId())}
		for _, c := range n.GetPath() {
			tn.Path = append(tn.Path, sdk.TreeCondition{Feature: int(c.GetFeature()), Bin: int(c.GetBin()), MissingLeft: c.GetMissingLeft(), Left: c.GetLeft()})
		}
		q.Nodes = append(q.Nodes, tn)
	}
	return q, nil
}

func treeNodeToPB(n *sdk.TreeNodeHistogram) *pluginpb.TreeNodeHistogram {
	p := &pluginpb.TreeNodeHistogram{Id: int64(n.ID), SumG: n.SumG, SumH: n.SumH, Count: n.Count, NodeSuppressed: n.NodeSuppressed}
	for f := range n.G {
		p.Bins = append(p.Bins, uint32(len(n.G[f])))
		p.G = append(p.G, n.G[f]...)
		p.H = append(p.H, n.H[f]...)
		p.Counts = append(p.Counts, n.Counts[f]...)
		p.Suppressed = append(p.Suppressed, n.Suppressed[f]...)
	}
	return p
}

func budgetToPB(b sdk.Budget) *pluginpb.BudgetReport {
	return &pluginpb.BudgetReport{Epsilon: b.Epsilon, Delta: b.Delta, Rho: b.Rho, RhoSpent: b.RhoSpent,
		EpsilonSpent: b.EpsilonSpent, RhoLeft: b.RhoLeft, MinCount: uint32(min(max(b.MinCount, 0), math.MaxUint32))}
}
