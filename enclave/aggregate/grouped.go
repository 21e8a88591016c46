package aggregate

import (
	"context"
	"math"
	"math/big"

	"insitu/modeling/binning"
	"insitu/plugins/sdk"
)

// column returns the values of a feature or of the label, with the bound of their absolute value
// (+Inf when the feature has none).
func (s *Service) column(query, name string) ([]float64, int, float64, error) {
	if name == s.cfg.Label {
		return s.cfg.Cohort.Y, -1, 1, nil
	}
	j, err := s.feature(query, name)
	if err != nil {
		return nil, 0, 0, qerr(query, name, "no such column: name a feature of TrainInput.Features or the label %q", s.cfg.Label)
	}
	b := s.cfg.Cohort.Bounds[j]
	return s.cfg.Cohort.X[j], j, math.Max(math.Abs(b.Low), math.Abs(b.High)), nil
}

// Query answers an AggregateQuery: a count, sum or mean per cell of the product of the GroupBy
// bins. One row falls in one cell, so counts have sensitivity 1 and sums the column's bound B.
func (s *Service) Query(ctx context.Context, q sdk.AggregateQuery) (sdk.AggregateAnswer, error) {
	const name = "query"
	if !q.Statistic.Valid() {
		return sdk.AggregateAnswer{}, qerr(name, "statistic", "%q is not count, sum or mean", q.Statistic)
	}
	if err := checkRho(name, q.Rho); err != nil {
		return sdk.AggregateAnswer{}, err
	}
	cells := 1
	groups := make([][]float64, len(q.GroupBy))
	for g, b := range q.GroupBy {
		x, _, _, err := s.column(name, b.Column)
		if err != nil {
			return sdk.AggregateAnswer{}, err
		}
		if err := checkEdges(name, b.Column, b.Edges, MaxEdges); err != nil {
			return sdk.AggregateAnswer{}, err
		}
		if cells *= len(b.Edges) + 2; cells > MaxCells {
			return sdk.AggregateAnswer{}, qerr(name, "group_by", "more than %d cells in one answer: group by fewer or coarser bins", MaxCells)
		}
		groups[g] = x
	}
	var vals []float64
	col, shift, sens := -1, 0, int64(0)
	if q.Statistic != sdk.StatCount {
		if q.Column == "" {
			return sdk.AggregateAnswer{}, qerr(name, "column", "a %s needs a column", q.Statistic)
		}
		var bd float64
		var err error
		if vals, col, bd, err = s.column(name, q.Column); err != nil {
			return sdk.AggregateAnswer{}, err
		}
		if math.IsInf(bd, 0) || math.IsNaN(bd) {
			return sdk.AggregateAnswer{}, qerr(name, q.Column, "the feature has no finite bounds after its transform, so a sum's sensitivity is unbounded: clip it in the manifest")
		}
		shift = gridShift(bd, gridBits)
		sens = int64(math.Ceil(math.Ldexp(bd, shift)))
	} else if q.Column != "" {
		return sdk.AggregateAnswer{}, qerr(name, "column", "a count takes no column")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	spent, err := s.spend(ctx, name, q.Rho)
	if err != nil {
		return sdk.AggregateAnswer{}, err
	}
	counts, sums := make([]int64, cells), make([]int64, cells)
	for i := range s.n {
		cell := 0
		for g, b := range q.GroupBy {
			cell = cell*(len(b.Edges)+2) + binning.BinIndex(b.Edges, groups[g][i])
		}
		counts[cell]++
		if vals != nil && !math.IsNaN(vals[i]) {
			v := vals[i]
			if col >= 0 {
				v = s.clip(col, v)
			}
			sums[cell] += int64(math.Round(math.Ldexp(v, shift)))
		}
	}
	rhoCounts := q.Rho
	if vals != nil {
		rhoCounts = q.Rho / 2
	}
	vc := VarianceFor(big.NewInt(1), rhoCounts)
	var vs Variance
	if vals != nil {
		vs = VarianceFor(sqInt(sens), q.Rho/2)
	}
	ans := sdk.AggregateAnswer{Cells: make([]sdk.AggregateCell, cells), Rho: spent.Rho, Epsilon: spent.Epsilon}
	for c := range cells {
		cell := sdk.AggregateCell{Bins: make([]int, len(q.GroupBy))}
		r := c
		for g := len(q.GroupBy) - 1; g >= 0; g-- {
			nb := len(q.GroupBy[g].Edges) + 2
			cell.Bins[g] = r % nb
			r /= nb
		}
		n := s.noisy(counts[c], vc, 0)
		switch {
		case n < float64(s.minCount):
			cell.Suppressed = true
		case q.Statistic == sdk.StatCount:
			cell.Value = n
		case q.Statistic == sdk.StatSum:
			cell.Value = s.noisy(sums[c], vs, shift)
		default:
			cell.Value = s.noisy(sums[c], vs, shift) / n
		}
		ans.Cells[c] = cell
	}
	for _, b := range q.GroupBy {
		if b.Column != s.cfg.Label {
			s.noteEdges(b.Column, b.Edges)
		}
	}
	return ans, nil
}
