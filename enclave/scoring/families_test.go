package scoring_test

import (
	"math"
	"slices"
	"testing"

	"insitu/enclave/registry"
	"insitu/enclave/scoring"
	"insitu/modeling/binning"
	"insitu/modeling/gbdt"
	"insitu/modeling/pmml"
	"insitu/modeling/scorecard"
)

// withScorecard sets a scorecard over every feature (bounded into [−1, 1]): bins (-inf,-0.5],
// (-0.5,0], (0,+inf) and missing.
func withScorecard(t testing.TB) func(d *registry.Document) {
	return func(d *registry.Document) {
		var bins []*binning.Binning
		var coef []float64
		for j, name := range d.Features {
			w := 0.3 * float64(j+1)
			bins = append(bins, &binning.Binning{Feature: name, Edges: []float64{-0.5, 0},
				Bins: []binning.Bin{{WoE: w}, {WoE: 0.1}, {WoE: -w}}, Missing: binning.Bin{WoE: 0}})
			coef = append(coef, -0.8-0.1*float64(j))
		}
		sc, err := scorecard.New(bins, coef, -1.2, scorecard.Scaling{PDO: 40, BaseScore: 500, BaseOdds: 20, Round: true})
		if err != nil {
			t.Fatal(err)
		}
		d.Family, d.Scorecard, d.ReasonCodes = registry.FamilyScorecard, sc, 2
		d.Points = pmml.Points{Base: 500, Odds: 20, PDO: 40}
	}
}

// withTrees sets a two-tree ensemble splitting on the first `inputs` features.
func withTrees(t testing.TB, inputs int) func(d *registry.Document) {
	return func(d *registry.Document) {
		edges := make([][]float64, len(d.Features))
		for j := range edges {
			edges[j] = []float64{}
			if j < inputs {
				edges[j] = []float64{-0.2}
			}
		}
		split := func(f int, left, right float64) gbdt.Tree {
			return gbdt.Tree{Nodes: []gbdt.Node{{Feature: f, Threshold: -0.2, Left: 1, Right: 2},
				{Feature: -1, Value: left}, {Feature: -1, Value: right}}}
		}
		m := &gbdt.Model{FeatureNames: slices.Clone(d.Features), Edges: edges, BaseScore: -0.7}
		for f := range inputs {
			m.Trees = append(m.Trees, split(f, 0.4-0.1*float64(f), -0.3))
		}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		d.Family, d.Trees = registry.FamilyGBDT, m
	}
}

// TestScoreScorecardAndTrees serves a registered scorecard and tree ensemble and compares each
// answer with one computed independently from the subject's raw columns: the transforms, then the
// bins' points (with the reason codes named "feature: bin label") or the trees' leaves.
func TestScoreScorecardAndTrees(t *testing.T) {
	f := newFixture(t, 300, scoring.Options{})
	sc := f.registerFamily(t, "job-sc", bankT, 4, withScorecard(t))
	trees := f.registerFamily(t, "job-gb", bankT, 4, withTrees(t, 3))
	subjects := f.subjects[:12]
	row := func(i int) []float64 {
		cols, _ := f.table.Rows([]int{i})
		x, _, err := sc.Transforms.Transform(cols)
		if err != nil {
			t.Fatal(err)
		}
		return x.RawRowView(0)
	}

	res, err := f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: sc.ID, Purpose: purpose, Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	reasons := 0
	for i, r := range res.Results {
		if r.Refused != "" || r.PD == nil || r.Score == nil {
			t.Fatalf("scorecard, subject %d: %+v", i, r)
		}
		x := row(i)
		points := 0.0
		type short struct {
			code string
			d    float64
		}
		var shorts []short
		for k, c := range sc.Scorecard.Characteristics {
			bin := 0
			for bin < len(c.Edges) && x[k] > c.Edges[bin] {
				bin++
			}
			points += c.Attributes[bin].Points
			best := math.Inf(-1)
			for _, a := range c.Attributes {
				best = max(best, a.Points)
			}
			if d := best - c.Attributes[bin].Points; d > 0 {
				shorts = append(shorts, short{c.Feature + ": " + c.Attributes[bin].Label, d})
			}
		}
		slices.SortStableFunc(shorts, func(a, b short) int {
			if a.d > b.d {
				return -1
			} else if a.d < b.d {
				return 1
			}
			return 0
		})
		var want []string
		for _, s := range shorts[:min(2, len(shorts))] {
			want = append(want, s.code)
		}
		p := 1 / (1 + math.Exp((points-sc.Scorecard.Offset)/sc.Scorecard.Factor))
		if *r.Score != points || *r.PD != math.Round(p*1000)/1000 || !slices.Equal(r.Reasons, want) {
			t.Errorf("scorecard, subject %d: pd %v score %v reasons %q; want %v, %v, %q", i, *r.PD, *r.Score, r.Reasons, math.Round(p*1000)/1000, points, want)
		}
		reasons += len(r.Reasons)
	}
	if reasons == 0 {
		t.Error("no subject got a reason code")
	}

	res, err = f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: trees.ID, Purpose: purpose, Subjects: subjects})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Results {
		if r.Refused != "" || r.PD == nil || r.Score == nil || r.Reasons != nil {
			t.Fatalf("trees, subject %d: %+v", i, r)
		}
		x := row(i)
		z := -0.7
		for k := range 3 {
			if x[k] <= -0.2 {
				z += 0.4 - 0.1*float64(k)
			} else {
				z -= 0.3
			}
		}
		p := 1 / (1 + math.Exp(-z))
		if want := math.Round(p*1000) / 1000; *r.PD != want {
			t.Errorf("trees, subject %d: pd %v, want %v", i, *r.PD, want)
		}
		if want := math.Round(600 + 20/math.Ln2*math.Log((1-p)/p/50)); *r.Score != want {
			t.Errorf("trees, subject %d: score %v, want %v", i, *r.Score, want)
		}
	}
}

// TestScoreCountsTheInputsAModelReads refuses a tree ensemble that splits on fewer input columns
// than the stewards' minimum, however many columns it was trained on.
func TestScoreCountsTheInputsAModelReads(t *testing.T) {
	f := newFixture(t, 200, scoring.Options{})
	m := f.registerFamily(t, "job-gb2", bankT, 4, withTrees(t, 2))
	if len(m.Inputs) != 4 || len(m.UsedInputs()) != 2 {
		t.Fatalf("inputs %d, used %d", len(m.Inputs), len(m.UsedInputs()))
	}
	_, err := f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: m.ID, Purpose: purpose, Subjects: f.subjects[:1]})
	wantRefusal(t, "two inputs read", err, scoring.CodeTooFewFeatures)
	if err := f.e.Models.SetSetting(ctx, "steward-1", registry.SettingMinFeatures, 2); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Score(ctx, bankT, scoring.ScoreRequest{Model: m.ID, Purpose: purpose, Subjects: f.subjects[:1]})
	if err != nil || res.Results[0].PD == nil {
		t.Fatalf("with a minimum of 2: %+v, %v", res, err)
	}
}

// TestMonitorScorecard reports the stability of a scorecard's scores like a linear model's.
func TestMonitorScorecard(t *testing.T) {
	f := newFixture(t, 300, scoring.Options{MinPopulation: 50})
	sc := f.registerFamily(t, "job-sc", bankT, 4, withScorecard(t))
	f.authorize(t, 200, bankT, purpose, f.model.Items)
	f.ingest(t, filepath0(t, f))
	rep, err := f.svc.Monitor(ctx, bankT, scoring.MonitorRequest{Model: sc.ID, Purpose: purpose})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Score.PSI != 0 || len(rep.Features) != len(sc.Features) {
		t.Fatalf("report %+v", rep)
	}
}
