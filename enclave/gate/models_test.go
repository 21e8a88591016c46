package gate

import (
	"context"
	"errors"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"insitu/enclave/job/manifest"
	"insitu/modeling/binning"
	"insitu/modeling/gbdt"
	"insitu/modeling/metrics"
	"insitu/modeling/scorecard"
	"insitu/plugins/sdk"
)

// answered returns 16-bin quantile edges of every feature of the training rows, as the aggregate
// service would have answered them, and the record holding them.
func answered(e *Evaluation) (gbdt.Cuts, *AggregateRecord) {
	n, d := len(e.TrainY), len(e.Features)
	X := mat.NewDense(n, d, nil)
	for j := range d {
		for i := range n {
			X.Set(i, j, e.TrainX[j][i])
		}
	}
	cuts := gbdt.QuantileCuts(X, e.Features, 16)
	rec := &AggregateRecord{Edges: map[string][]float64{}, Epsilon: 1.75, Delta: 1e-6}
	for j, f := range e.Features {
		rec.Edges[f] = slices.Clone(cuts.Edges[j])
	}
	return cuts, rec
}

// trainTrees fits a small ensemble on the training rows over the answered edges and converts it to
// the plugin output (x <= edge becomes x < the float above the edge).
func trainTrees(t *testing.T, e *Evaluation, cuts gbdt.Cuts, trees, depth int) *sdk.Output {
	t.Helper()
	n, d := len(e.TrainY), len(e.Features)
	X := mat.NewDense(n, d, nil)
	for j := range d {
		for i := range n {
			X.Set(i, j, e.TrainX[j][i])
		}
	}
	p, err := gbdt.NewExact(X, e.TrainY, cuts)
	if err != nil {
		t.Fatal(err)
	}
	o := gbdt.DefaultOptions()
	o.NumTrees, o.MaxDepth = trees, depth
	m, err := gbdt.Train(context.Background(), p, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	ens := &sdk.TreeEnsemble{Features: slices.Clone(e.Features), BaseScore: m.BaseScore}
	for _, tr := range m.Trees {
		var st sdk.Tree
		for _, nd := range tr.Nodes {
			if nd.Feature < 0 {
				st.Nodes = append(st.Nodes, sdk.TreeNode{Feature: -1, Value: nd.Value})
				continue
			}
			st.Nodes = append(st.Nodes, sdk.TreeNode{Feature: nd.Feature, Threshold: math.Nextafter(nd.Threshold, math.Inf(1)), Left: nd.Left, Right: nd.Right, MissingLeft: nd.MissingLeft})
		}
		ens.Trees = append(ens.Trees, st)
	}
	return &sdk.Output{Trees: ens, Metrics: map[string]float64{"auc": 1}}
}

var declaredBound = regexp.MustCompile(`max_[a-z]+ [0-9.]+`)

func treesOutputs(maxLeaves int) manifest.Outputs {
	return manifest.Outputs{
		Trees:   &manifest.TreesOutput{MaxTrees: 20, MaxDepth: 3, MaxLeaves: maxLeaves, MaxAbs: 4},
		Scores:  &manifest.ScoresOutput{},
		Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}},
	}
}

func TestReleaseTrees(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{mode: sdk.ModeAggregate, family: sdk.FamilyGBDT, outputs: treesOutputs(0)})
	e := cohort(3, 800, 400)
	cuts, agg := answered(e)
	out := trainTrees(t, e, cuts, 10, 3)
	req := f.request(j, st, e, out)
	req.Aggregate = agg
	rec, err := f.gate.Release(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Privacy == nil || rec.Privacy.Epsilon != 1.75 || rec.Privacy.Delta != 1e-6 {
		t.Errorf("receipt privacy %+v, want ε 1.75 δ 1e-6", rec.Privacy)
	}
	g := rec.Gate
	if g.Result != VerdictStructure || g.Family != sdk.FamilyGBDT || g.Step != 4.0/4096 || g.SplitChoices != 6*15 || g.Splits == 0 {
		t.Errorf("verdict %+v", g)
	}
	if want := ModelBitsBound(g.Parameters, g.Splits, 6*15, 4.0/4096, 4); g.BitsBound != want {
		t.Errorf("bits bound %v, want %v", g.BitsBound, want)
	}
	sealed, receipt, err := f.gate.Result(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := VerifyReceipt(receipt, f.encl.Public(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if vr.Privacy == nil || *vr.Privacy != *rec.Privacy || vr.Outputs.Trees == "" {
		t.Errorf("verified receipt privacy %+v trees hash %q", vr.Privacy, vr.Outputs.Trees)
	}
	b, err := OpenResult(sealed, f.bank)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(vr); err != nil {
		t.Fatal(err)
	}
	if b.Trees == nil || len(b.Trees.Trees) != 10 || b.Weights != nil {
		t.Fatalf("bundle trees %v weights %v", b.Trees != nil, b.Weights)
	}
	// Every leaf is rounded to the step, and the released scores are σ of the released trees.
	leaves := 0
	for _, tr := range b.Trees.Trees {
		for _, n := range tr.Nodes {
			if n.Feature < 0 {
				leaves++
				if k := n.Value / g.Step; k != math.Round(k) {
					t.Fatalf("leaf %v is not a multiple of the step", n.Value)
				}
			}
		}
	}
	if g.Parameters != leaves+1 {
		t.Errorf("parameters %d, want %d leaves + base score", g.Parameters, leaves)
	}
	byID := map[string]float64{}
	for _, s := range b.Scores {
		byID[s.Subject] = s.Score
	}
	test := make([]float64, len(e.TestY))
	for i := range e.TestY {
		z := b.Trees.BaseScore
		for _, tr := range b.Trees.Trees {
			z += walk(tr.Nodes, func(f int) float64 { return e.TestX[f][i] })
		}
		test[i] = byID[e.Subjects[len(e.TrainY)+i]]
		if want := roundTo(1/(1+math.Exp(-z)), 1e-4); test[i] != want {
			t.Fatalf("score of test row %d = %v, want %v", i, test[i], want)
		}
	}
	auc, _ := metrics.AUC(e.TestY, test)
	if b.Metrics["auc"] != auc || auc < 0.75 {
		t.Errorf("released auc %v, recomputed %v (want above 0.75 on this cohort)", b.Metrics["auc"], auc)
	}
	// Tampering with a leaf breaks the check against the receipt.
	b.Trees.Trees[0].Nodes[len(b.Trees.Trees[0].Nodes)-1].Value += g.Step
	if err := b.Check(vr); !errors.Is(err, ErrResult) {
		t.Errorf("Check of a tampered bundle = %v", err)
	}
}

func TestTreeRefusals(t *testing.T) {
	e := cohort(4, 600, 200)
	cuts, agg := answered(e)
	cases := []struct {
		name    string
		outputs manifest.Outputs
		edit    func(o *sdk.Output, r *Request)
		code    Code
	}{
		{"split at an edge never answered", treesOutputs(0), func(o *sdk.Output, _ *Request) {
			n := &o.Trees.Trees[2].Nodes[0]
			n.Threshold = math.Nextafter(n.Threshold, 2*n.Threshold+1)
		}, CodeSplitEdge},
		{"edges of another feature", treesOutputs(0), func(_ *sdk.Output, r *Request) {
			r.Aggregate = &AggregateRecord{Edges: map[string][]float64{e.Features[0]: agg.Edges[e.Features[1]]}}
		}, CodeSplitEdge},
		{"no edges of a feature", treesOutputs(0), func(_ *sdk.Output, r *Request) {
			r.Aggregate = &AggregateRecord{Edges: map[string][]float64{}}
		}, CodeSplitEdge},
		{"too many leaves", treesOutputs(4), func(*sdk.Output, *Request) {}, CodeTreeBound},
		{"too many trees", treesOutputs(0), func(o *sdk.Output, _ *Request) {
			for len(o.Trees.Trees) <= 20 {
				o.Trees.Trees = append(o.Trees.Trees, o.Trees.Trees[0])
			}
		}, CodeTreeBound},
		{"leaf value above max_abs", treesOutputs(0), func(o *sdk.Output, _ *Request) {
			nodes := o.Trees.Trees[1].Nodes
			nodes[len(nodes)-1].Value = 4.5
		}, CodeTreeBound},
		{"weights beside the trees", treesOutputs(0), func(o *sdk.Output, _ *Request) {
			o.Weights = &sdk.Weights{Names: e.Features, Values: make([]float64, len(e.Features))}
		}, CodeUndeclaredOutput},
		{"features renamed", treesOutputs(0), func(o *sdk.Output, _ *Request) { o.Trees.Features[0] = "x" }, CodeWeightNames},
		{"a broken tree", treesOutputs(0), func(o *sdk.Output, _ *Request) { o.Trees.Trees[0].Nodes[0].Left = 0 }, CodeTreeStructure},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			j, st := f.succeededJob(t, jobSpec{mode: sdk.ModeAggregate, family: sdk.FamilyGBDT, outputs: c.outputs})
			out := trainTrees(t, e, cuts, 8, 3)
			req := f.request(j, st, e, out)
			req.Aggregate = agg
			c.edit(out, &req)
			_, err := f.gate.Release(context.Background(), req)
			var re *RefusalError
			if !errors.As(err, &re) || re.Code != c.code {
				t.Fatalf("Release = %v, want refusal %s", err, c.code)
			}
			// Only the manifest's own bounds may appear in a reason.
			if strings.ContainsAny(declaredBound.ReplaceAllString(re.Reason, ""), "0123456789") {
				t.Errorf("reason %q carries a number", re.Reason)
			}
			if _, _, err := f.gate.Result(context.Background(), j.ID); !errors.Is(err, ErrNotReleased) {
				t.Errorf("Result after a refusal = %v", err)
			}
		})
	}
}

// scorecardOutput bins the training rows at the answered edges (monotone WoE), fits logistic
// regression on the WoE of the first k features and returns the plugin's output: one WoE tree per
// characteristic and the coefficients. Bins are right-closed, so the tree sends x < the float above
// edge i left.
func scorecardOutput(t *testing.T, e *Evaluation, agg *AggregateRecord, k int) *sdk.Output {
	t.Helper()
	var bins []*binning.Binning
	var cols [][]float64
	for j := range k {
		h, err := binning.Count(e.Features[j], agg.Edges[e.Features[j]], e.TrainX[j], e.TrainY)
		if err != nil {
			t.Fatal(err)
		}
		b, err := binning.Fit(h, binning.Options{MaxBins: 6})
		if err != nil {
			t.Fatal(err)
		}
		bins, cols = append(bins, b), append(cols, e.TrainX[j])
	}
	_, lr, err := scorecard.Fit(bins, cols, e.TrainY, scorecard.Options{Lambda: 1})
	if err != nil {
		t.Fatal(err)
	}
	out := &sdk.Output{Trees: &sdk.TreeEnsemble{Features: slices.Clone(e.Features)},
		Weights: &sdk.Weights{Names: slices.Clone(e.Features[:k]), Values: lr.Weights, Intercept: lr.Intercept}}
	for j, b := range bins {
		// A chain: node 2i splits at edge i; its left child is leaf of bin i, its right the next split.
		var tr sdk.Tree
		for i, edge := range b.Edges {
			tr.Nodes = append(tr.Nodes, sdk.TreeNode{Feature: j, Threshold: math.Nextafter(edge, math.Inf(1)), Left: len(tr.Nodes) + 1, Right: len(tr.Nodes) + 2, MissingLeft: false})
			tr.Nodes = append(tr.Nodes, sdk.TreeNode{Feature: -1, Value: b.Bins[i].WoE})
		}
		tr.Nodes = append(tr.Nodes, sdk.TreeNode{Feature: -1, Value: b.Bins[len(b.Edges)].WoE})
		out.Trees.Trees = append(out.Trees.Trees, tr)
	}
	return out
}

func scorecardOutputs(maxBins int, maxPoints float64) manifest.Outputs {
	return manifest.Outputs{
		Scorecard: &manifest.ScorecardOutput{MaxBins: maxBins, MaxAbs: 8, MaxPoints: maxPoints, PDO: 20, BaseScore: 600, BaseOdds: 50},
		Scores:    &manifest.ScoresOutput{},
		Metrics:   &manifest.MetricsOutput{Names: []string{"auc", "ks"}},
	}
}

func TestReleaseScorecard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{mode: sdk.ModeAggregate, family: sdk.FamilyScorecard, outputs: scorecardOutputs(8, 1000)})
	e := cohort(5, 1500, 500)
	_, agg := answered(e)
	out := scorecardOutput(t, e, agg, 5)
	req := f.request(j, st, e, out)
	req.Aggregate = agg
	rec, err := f.gate.Release(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	sealed, receipt, err := f.gate.Result(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := VerifyReceipt(receipt, f.encl.Public(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenResult(sealed, f.bank)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(vr); err != nil {
		t.Fatal(err)
	}
	sc := b.Scorecard
	if sc == nil || len(sc.Characteristics) != 5 || b.Trees != nil || b.Weights != nil || rec.Gate.Result != VerdictStructure {
		t.Fatalf("bundle scorecard %v trees %v weights %v verdict %s", sc != nil, b.Trees != nil, b.Weights != nil, rec.Gate.Result)
	}
	if sc.Factor != 20/math.Ln2 || sc.Offset != 600-20/math.Ln2*math.Log(50) {
		t.Errorf("factor %v offset %v", sc.Factor, sc.Offset)
	}
	// Points are whole and follow from the rounded WoE, coefficient and intercept.
	for k, c := range sc.Characteristics {
		if c.Feature != e.Features[k] || len(c.Attributes) != len(c.Edges)+2 || c.Attributes[len(c.Edges)+1].Label != "missing" {
			t.Fatalf("characteristic %d: %+v", k, c)
		}
		for _, a := range c.Attributes {
			want := math.Round(-sc.Factor*(c.Coefficient*a.WoE+sc.Intercept/5) + sc.Offset/5)
			if a.Points != want || a.Points != math.Round(a.Points) {
				t.Errorf("%s %s: points %v, want %v", c.Feature, a.Label, a.Points, want)
			}
		}
		for _, edge := range c.Edges {
			if !slices.Contains(agg.Edges[c.Feature], edge) {
				t.Errorf("%s: edge %v was never answered", c.Feature, edge)
			}
		}
	}
	if c := sc.Characteristics[0]; c.Attributes[1].Label != scorecard.BinLabel(c.Edges, 1) || !strings.HasPrefix(c.Attributes[1].Label, "(") {
		t.Errorf("bin label %q, want modeling/scorecard's", c.Attributes[1].Label)
	}
	// Released scores are the probabilities of the points; higher points, lower probability.
	byID := map[string]float64{}
	for _, s := range b.Scores {
		byID[s.Subject] = s.Score
	}
	test := make([]float64, len(e.TestY))
	for i := range e.TestY {
		x := make([]float64, 5)
		for k := range x {
			x[k] = e.TestX[k][i]
		}
		pts := sc.Score(x)
		test[i] = byID[e.Subjects[len(e.TrainY)+i]]
		if want := roundTo(1/(1+math.Exp((pts-sc.Offset)/sc.Factor)), 1e-4); test[i] != want {
			t.Fatalf("test row %d: score %v, want %v from %v points", i, test[i], want, pts)
		}
	}
	auc, _ := metrics.AUC(e.TestY, test)
	if b.Metrics["auc"] != auc || auc < 0.7 {
		t.Errorf("released auc %v, recomputed %v", b.Metrics["auc"], auc)
	}
}

func TestAggregateRecordRequired(t *testing.T) {
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{mode: sdk.ModeAggregate, family: sdk.FamilyGBDT, outputs: treesOutputs(0)})
	e := cohort(4, 300, 100)
	cuts, _ := answered(e)
	if _, err := f.gate.Release(context.Background(), f.request(j, st, e, trainTrees(t, e, cuts, 2, 2))); !errors.Is(err, ErrRequest) {
		t.Fatalf("Release of an aggregate job without the service's record = %v, want ErrRequest", err)
	}
}

func TestScorecardRefusals(t *testing.T) {
	e := cohort(6, 800, 200)
	_, agg := answered(e)
	cases := []struct {
		name    string
		outputs manifest.Outputs
		edit    func(o *sdk.Output)
		code    Code
	}{
		{"points beyond max_points", scorecardOutputs(8, 40), func(*sdk.Output) {}, CodeScorecardBound},
		{"more bins than declared", scorecardOutputs(3, 1000), func(*sdk.Output) {}, CodeScorecardBound},
		{"coefficient above max_abs", scorecardOutputs(8, 1000), func(o *sdk.Output) { o.Weights.Values[1] = 9 }, CodeScorecardBound},
		{"bin edge never answered", scorecardOutputs(8, 1000), func(o *sdk.Output) { o.Trees.Trees[0].Nodes[0].Threshold += 1e-9 }, CodeSplitEdge},
		{"two features in one characteristic", scorecardOutputs(8, 1000), func(o *sdk.Output) { o.Trees.Trees[1].Nodes[2].Feature = 0 }, CodeScorecardShape},
		{"coefficients misnamed", scorecardOutputs(8, 1000), func(o *sdk.Output) { o.Weights.Names[0], o.Weights.Names[1] = o.Weights.Names[1], o.Weights.Names[0] }, CodeScorecardShape},
		{"no coefficients", scorecardOutputs(8, 1000), func(o *sdk.Output) { o.Weights = nil }, CodeScorecardShape},
		{"a base score", scorecardOutputs(8, 1000), func(o *sdk.Output) { o.Trees.BaseScore = 0.5 }, CodeScorecardShape},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			j, st := f.succeededJob(t, jobSpec{mode: sdk.ModeAggregate, family: sdk.FamilyScorecard, outputs: c.outputs})
			out := scorecardOutput(t, e, agg, 3)
			c.edit(out)
			req := f.request(j, st, e, out)
			req.Aggregate = agg
			_, err := f.gate.Release(context.Background(), req)
			var re *RefusalError
			if !errors.As(err, &re) || re.Code != c.code {
				t.Fatalf("Release = %v, want refusal %s", err, c.code)
			}
		})
	}
}
