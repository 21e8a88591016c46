package pmml_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"insitu/modeling/binning"
	"insitu/modeling/features"
	"insitu/modeling/gbdt"
	"insitu/modeling/pmml"
	"insitu/modeling/scorecard"
)

// The features of fittedJSON, in order: tax.amount, tax.amount_missing, reg.industry=retail,
// reg.industry=mfg, reg.industry=__other__, emp.staff, age. handRows gives these features:
//
//	row 1: tax.amount −0.5, retail 1, emp.staff 2
//	row 2: tax.amount −0.8, retail 0, emp.staff 18
//	row 3: tax.amount 1,    retail 0, emp.staff 0
//
// and row 4 below has emp.staff missing (it has no impute step), tax.amount 1 and retail 0.

func fittedModel(t *testing.T) *pmml.Model {
	t.Helper()
	f, err := features.ParseFitted([]byte(fittedJSON))
	if err != nil {
		t.Fatal(err)
	}
	return &pmml.Model{Name: "m-2 v1", Description: "test model", Application: "insitu", AppVersion: "test", Transforms: f}
}

func bins(feature string, edges []float64, woe ...float64) *binning.Binning {
	b := &binning.Binning{Feature: feature, Edges: edges, Missing: binning.Bin{WoE: woe[len(woe)-1]}}
	for _, w := range woe[:len(woe)-1] {
		b.Bins = append(b.Bins, binning.Bin{WoE: w})
	}
	return b
}

// testScorecard has three characteristics; with PDO 20, 600 points at 50:1, intercept −1.5 spread
// over 3 characteristics, points = round(−20/ln2·(β·WoE − 0.5) + (600 − 20/ln2·ln 50)/3):
//
//	tax.amount           β −0.9  (-inf,-0.6] 198  (-0.6,0.2] 179  (0.2,+inf) 159  missing 177
//	reg.industry=retail  β −1.1  (-inf,0.5]  170  (0.5,+inf) 189                  missing 177
//	emp.staff            β −0.7  (-inf,0]    187  (0,1.5]    175  (1.5,+inf) 159  missing 177
func testScorecard(t *testing.T) *scorecard.Scorecard {
	t.Helper()
	sc, err := scorecard.New([]*binning.Binning{
		bins("tax.amount", []float64{-0.6, 0.2}, 0.8, 0.1, -0.7, 0),
		bins("reg.industry=retail", []float64{0.5}, -0.2, 0.4, 0),
		bins("emp.staff", []float64{0, 1.5}, 0.5, -0.1, -0.9, 0),
	}, []float64{-0.9, -1.1, -0.7}, -1.5, scorecard.Scaling{PDO: 20, BaseScore: 600, BaseOdds: 50, Round: true})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{198, 179, 159, 177}, {170, 189, 177}, {187, 175, 159, 177}}
	for j, c := range sc.Characteristics {
		for i, a := range c.Attributes {
			if a.Points != want[j][i] {
				t.Fatalf("%s bin %d: %v points, by hand %v", c.Feature, i, a.Points, want[j][i])
			}
		}
	}
	return sc
}

func scoreRows(t *testing.T) []map[string]value {
	rows := handRows(t)
	out := make([]map[string]value, 0, 4)
	for _, r := range rows {
		out = append(out, r.record)
	}
	return append(out, map[string]value{"tax.amount": numv(5000), "reg.industry": strv("mfg"), "emp.staff": missing,
		"reg.founded": numv(days(t, "2000-01-01"))})
}

func TestScorecardMatchesHandComputedScores(t *testing.T) {
	m := fittedModel(t)
	m.Scorecard, m.ReasonCodes = testScorecard(t), 3
	doc, err := pmml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`<Scorecard `, `useReasonCodes="true"`, `reasonCodeAlgorithm="pointsBelow"`,
		`baselineScore="193"`, `baselineScore="184"`, `baselineScore="182"`, `reasonCode="emp.staff: (1.5, +inf)"`} {
		if !strings.Contains(string(doc), frag) {
			t.Errorf("the document lacks %s", frag)
		}
	}
	// Best-bin baselines less δ = 5 (half of the smallest best − next-best gap, 187 − 177).
	if d := pmml.ReasonMargin(m.Scorecard); d != 5 {
		t.Errorf("reason margin %v, want 5", d)
	}
	factor := 20 / math.Ln2
	offset := 600 - factor*math.Log(50)
	for i, want := range []struct {
		score   float64
		reasons []string
	}{
		// 179 + 189 + 159; shortfalls tax.amount 19, emp.staff 28.
		{527, []string{"emp.staff: (1.5, +inf)", "tax.amount: (-0.6, 0.2]"}},
		// 198 + 170 + 159; shortfalls retail 19, emp.staff 28.
		{527, []string{"emp.staff: (1.5, +inf)", "reg.industry=retail: (-inf, 0.5]"}},
		// 159 + 170 + 187 (emp.staff 0 lies in (-inf, 0]); shortfalls tax.amount 39, retail 19.
		{516, []string{"tax.amount: (0.2, +inf)", "reg.industry=retail: (-inf, 0.5]"}},
		// 159 + 170 + 177 (missing); shortfalls 39, 19, 10.
		{506, []string{"tax.amount: (0.2, +inf)", "reg.industry=retail: (-inf, 0.5]", "emp.staff: missing"}},
	} {
		out := score(t, doc, scoreRows(t)[i])
		if s := out[pmml.OutputScore]; s.missing || s.num != want.score {
			t.Errorf("row %d: score %+v, want %v", i+1, s, want.score)
		}
		wantPD := 1 / (1 + math.Exp((want.score-offset)/factor))
		if p := out[pmml.OutputProbability]; p.missing || math.Abs(p.num-wantPD) > 1e-12 {
			t.Errorf("row %d: probability %+v, want %v", i+1, p, wantPD)
		}
		var got []string
		for k := 1; k <= 3; k++ {
			if r := out[pmml.OutputReasonCode+string(rune('0'+k))]; !r.missing {
				got = append(got, r.str)
			}
		}
		if !slices.Equal(got, want.reasons) {
			t.Errorf("row %d: reason codes %q, want %q", i+1, got, want.reasons)
		}
		// modeling/scorecard agrees on the same bins.
		assign := [][]int{{1, 1, 2}, {0, 0, 2}, {2, 0, 0}, {2, 0, 3}}[i]
		if p, _ := m.Scorecard.Points(assign); p != want.score {
			t.Errorf("row %d: Points %v", i+1, p)
		}
		rc, _ := m.Scorecard.ReasonCodes(assign, 3)
		var names []string
		for _, r := range rc {
			names = append(names, pmml.ReasonCode(r.Feature, r.Label))
		}
		if !slices.Equal(names, want.reasons) {
			t.Errorf("row %d: ReasonCodes %q", i+1, names)
		}
	}
	// Without reason codes the attributes carry none.
	m.ReasonCodes = 0
	doc, err = pmml.Marshal(m)
	if err != nil || strings.Contains(string(doc), "reasonCode") || !strings.Contains(string(doc), `useReasonCodes="false"`) {
		t.Errorf("no reason codes: %v", err)
	}
}

// testTrees is a two-tree ensemble with base score −1:
//
//	tree 1: emp.staff <= 1 → 0.3; else (missing goes right) tax.amount <= 0 → −0.2 (missing left), else 0.5
//	tree 2: reg.industry=retail <= 0.5 → 0.1, else −0.4
func testTrees(t *testing.T, names []string) *gbdt.Model {
	t.Helper()
	edges := make([][]float64, len(names))
	for j := range edges {
		edges[j] = []float64{}
	}
	edges[0], edges[2], edges[5] = []float64{0}, []float64{0.5}, []float64{1}
	m := &gbdt.Model{FeatureNames: names, Edges: edges, BaseScore: -1, Trees: []gbdt.Tree{
		{Nodes: []gbdt.Node{
			{Feature: 5, Bin: 0, Threshold: 1, Left: 1, Right: 2},
			{Feature: -1, Value: 0.3},
			{Feature: 0, Bin: 0, Threshold: 0, Left: 3, Right: 4, MissingLeft: true},
			{Feature: -1, Value: -0.2},
			{Feature: -1, Value: 0.5},
		}},
		{Nodes: []gbdt.Node{
			{Feature: 2, Bin: 0, Threshold: 0.5, Left: 1, Right: 2},
			{Feature: -1, Value: 0.1},
			{Feature: -1, Value: -0.4},
		}},
	}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTreesMatchHandComputedScores(t *testing.T) {
	m := fittedModel(t)
	names := m.Transforms.Names()
	m.Trees, m.Points = testTrees(t, names), &pmml.DefaultPoints
	doc, err := pmml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`<MiningModel `, `multipleModelMethod="sum"`, `missingValueStrategy="defaultChild"`} {
		if !strings.Contains(string(doc), frag) {
			t.Errorf("the document lacks %s", frag)
		}
	}
	nan := math.NaN()
	for i, want := range []struct {
		z float64
		x []float64 // the features, for gbdt.Model.Margin
	}{
		{-1 - 0.2 - 0.4, []float64{-0.5, 0, 1, 0, 0, 2, 0}},  // staff 2 > 1, tax −0.5 <= 0; retail 1
		{-1 - 0.2 + 0.1, []float64{-0.8, 1, 0, 0, 1, 18, 0}}, // staff 18 > 1, tax −0.8 <= 0; retail 0
		{-1 + 0.3 + 0.1, []float64{1, 0, 0, 1, 0, 0, 24}},    // staff 0 <= 1; retail 0
		{-1 + 0.5 + 0.1, []float64{1, 0, 0, 1, 0, nan, 24}},  // staff missing goes right, tax 1 > 0; retail 0
	} {
		out := score(t, doc, scoreRows(t)[i])
		if z := out[pmml.OutputLogOdds]; z.missing || math.Abs(z.num-want.z) > 1e-12 {
			t.Errorf("row %d: log-odds %+v, want %v", i+1, z, want.z)
		}
		p := 1 / (1 + math.Exp(-want.z))
		if got := out[pmml.OutputProbability]; got.missing || math.Abs(got.num-p) > 1e-12 {
			t.Errorf("row %d: probability %+v, want %v", i+1, got, p)
		}
		if s := out[pmml.OutputScore]; s.missing || s.num != math.Round(600+20/math.Ln2*(-want.z-math.Log(50))) {
			t.Errorf("row %d: score %+v", i+1, s)
		}
		if z := m.Trees.Margin(want.x); math.Abs(z-want.z) > 1e-12 {
			t.Errorf("row %d: gbdt margin %v, want %v", i+1, z, want.z)
		}
	}
}

func TestMarshalRefusesBadFamilies(t *testing.T) {
	m := fittedModel(t)
	m.Scorecard, m.Linear = testScorecard(t), &pmml.Linear{Weights: weights, Intercept: intercept}
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("two families: %v", err)
	}
	m = fittedModel(t)
	m.Scorecard = testScorecard(t)
	m.Scorecard.Characteristics[0], m.Scorecard.Characteristics[1] = m.Scorecard.Characteristics[1], m.Scorecard.Characteristics[0]
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("characteristics out of order: %v", err)
	}
	m = fittedModel(t)
	m.Scorecard = testScorecard(t)
	m.Scorecard.Characteristics[0].Attributes[0].Points++
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("points off the formula: %v", err)
	}
	m = fittedModel(t)
	m.Scorecard, m.ReasonCodes = testScorecard(t), 4
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("more reason codes than characteristics: %v", err)
	}
	m = fittedModel(t)
	m.Trees = testTrees(t, m.Transforms.Names())
	m.Trees.FeatureNames = slices.Clone(m.Trees.FeatureNames)
	m.Trees.FeatureNames[0] = "other"
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("trees over other features: %v", err)
	}
	m = fittedModel(t)
	m.Trees = testTrees(t, m.Transforms.Names())
	m.Trees.Trees[0].Nodes[1].Value = math.Inf(1)
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("infinite leaf: %v", err)
	}
}
