package registry_test

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"insitu/enclave/gate"
	"insitu/enclave/registry"
	"insitu/modeling/binning"
	"insitu/modeling/features"
	"insitu/modeling/pmml"
	"insitu/modeling/scorecard"
)

// The features of fittedJSON, in order: tax.amount, tax.amount_missing, reg.industry=retail,
// reg.industry=mfg, reg.industry=__other__, emp.staff. handCols gives, by hand:
//
//	row 1: tax.amount 250 → −0.5, retail,            emp.staff 100 → 2
//	row 2: tax.amount missing → 100 → −0.8, other,   emp.staff 1000 → 500 → 18
//	row 3: tax.amount 5000 → 1000 → 1, mfg,          emp.staff 50 → 0
func handCols() []features.Column {
	return []features.Column{
		features.NumericColumn("tax.amount", []float64{250, 0, 5000}, []bool{false, true, false}),
		features.CategoricalColumn("reg.industry", []string{"retail", "", "mfg"}, []bool{false, true, false}),
		features.NumericColumn("emp.staff", []float64{100, 1000, 50}, nil),
	}
}

// treesRelease is release with a two-tree ensemble, its nodes numbered as a plugin may number them
// (a child before its parent), with base score −1:
//
//	tree 1: emp.staff <= 1 → 0.3; else tax.amount <= 0 → −0.2 (missing left), else 0.5
//	tree 2: reg.industry=retail <= 0.5 → 0.1, else −0.4
func treesRelease(t testing.TB) registry.ReleaseInfo {
	r := release(t, "job-2")
	r.Family = registry.FamilyGBDT
	r.Bundle.Weights = nil
	r.Bundle.Trees = &gate.Trees{Features: r.Transforms.Names(), BaseScore: -1, Trees: []gate.Tree{
		{Nodes: []gate.TreeNode{
			{Feature: 5, Threshold: 1, Left: 3, Right: 1},
			{Feature: 0, Threshold: 0, Left: 2, Right: 4, MissingLeft: true},
			{Feature: -1, Value: -0.2},
			{Feature: -1, Value: 0.3},
			{Feature: -1, Value: 0.5},
		}},
		{Nodes: []gate.TreeNode{{Feature: 2, Threshold: 0.5, Left: 1, Right: 2}, {Feature: -1, Value: 0.1}, {Feature: -1, Value: -0.4}}},
	}}
	r.Receipt.Outputs.Weights, r.Receipt.Outputs.Trees = "", strings.Repeat("12", 32)
	return r
}

// scorecardRelease is release with a scorecard of three characteristics, PDO 20, 600 points at
// 50:1, whose points (modeling/scorecard's formula, rounded) are
//
//	tax.amount           (-inf,-0.6] 198  (-0.6,0.2] 179  (0.2,+inf) 159  missing 177
//	reg.industry=retail  (-inf,0.5]  170  (0.5,+inf) 189                  missing 177
//	emp.staff            (-inf,0]    187  (0,1.5]    175  (1.5,+inf) 159  missing 177
func scorecardRelease(t testing.TB) registry.ReleaseInfo {
	mk := func(feature string, edges []float64, woe ...float64) *binning.Binning {
		b := &binning.Binning{Feature: feature, Edges: edges, Missing: binning.Bin{WoE: woe[len(woe)-1]}}
		for _, w := range woe[:len(woe)-1] {
			b.Bins = append(b.Bins, binning.Bin{WoE: w})
		}
		return b
	}
	sc, err := scorecard.New([]*binning.Binning{
		mk("tax.amount", []float64{-0.6, 0.2}, 0.8, 0.1, -0.7, 0),
		mk("reg.industry=retail", []float64{0.5}, -0.2, 0.4, 0),
		mk("emp.staff", []float64{0, 1.5}, 0.5, -0.1, -0.9, 0),
	}, []float64{-0.9, -1.1, -0.7}, -1.5, scorecard.Scaling{PDO: 20, BaseScore: 600, BaseOdds: 50, Round: true})
	if err != nil {
		t.Fatal(err)
	}
	r := release(t, "job-3")
	r.Family = registry.FamilyScorecard
	r.Bundle.Weights = nil
	gs := &gate.Scorecard{Scaling: gate.ScorecardScaling{PDO: 20, BaseScore: 600, BaseOdds: 50},
		Intercept: sc.Intercept, Factor: sc.Factor, Offset: sc.Offset}
	for _, c := range sc.Characteristics {
		gc := gate.Characteristic{Feature: c.Feature, Edges: c.Edges, Coefficient: c.Coefficient}
		for _, a := range c.Attributes {
			gc.Attributes = append(gc.Attributes, gate.Attribute{Label: a.Label, WoE: a.WoE, Points: a.Points})
		}
		gs.Characteristics = append(gs.Characteristics, gc)
	}
	r.Bundle.Scorecard = gs
	r.Receipt.Outputs.Weights, r.Receipt.Outputs.Scorecard = "", strings.Repeat("34", 32)
	return r
}

// exported returns the JSON export of a release's document, read back with ParseDocument.
func exported(t *testing.T, r registry.ReleaseInfo) *registry.Document {
	t.Helper()
	d, err := registry.FromRelease(r)
	if err != nil {
		t.Fatal(err)
	}
	d.Name, d.Version = "sme."+r.Family, 1
	raw, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	back, err := registry.ParseDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestTreesJSONExportMatchesHandComputedScores(t *testing.T) {
	d := exported(t, treesRelease(t))
	if d.Trees == nil || d.Release.TreesSHA256 != strings.Repeat("12", 32) || d.Points != pmml.DefaultPoints {
		t.Fatalf("document %+v", d)
	}
	answers, err := d.AnswerColumns(handCols())
	if err != nil {
		t.Fatal(err)
	}
	for i, z := range []float64{
		-1 - 0.2 - 0.4, // staff 2 > 1, tax −0.5 <= 0; retail
		-1 - 0.2 + 0.1, // staff 18 > 1, tax −0.8 <= 0; other
		-1 + 0.3 + 0.1, // staff 0 <= 1; mfg
	} {
		p := 1 / (1 + math.Exp(-z))
		want := registry.Answer{PD: math.Round(p*1000) / 1000, Score: math.Round(600 + 20/math.Ln2*(-z-math.Log(50)))}
		if a := answers[i]; a.PD != want.PD || a.Score != want.Score || a.Reasons != nil {
			t.Errorf("row %d: %+v, want %+v", i+1, a, want)
		}
	}
	doc, err := d.PMML("test")
	if err != nil || !strings.Contains(string(doc), `<MiningModel modelName="sme.gbdt v1"`) {
		t.Errorf("pmml: %v", err)
	}
	if got := d.UsedInputs(); !slices.Equal(got, []string{"tax.amount", "reg.industry", "emp.staff"}) {
		t.Errorf("used inputs %q", got)
	}
	// A tree ensemble that splits on emp.staff only reads one input column.
	r := treesRelease(t)
	r.Bundle.Trees.Trees = r.Bundle.Trees.Trees[:1]
	r.Bundle.Trees.Trees[0].Nodes[1] = gate.TreeNode{Feature: -1, Value: 0.2}
	r.Bundle.Trees.Trees[0].Nodes = r.Bundle.Trees.Trees[0].Nodes[:4]
	if d, err := registry.FromRelease(r); err != nil || !slices.Equal(d.UsedInputs(), []string{"emp.staff"}) {
		t.Errorf("one-input trees: %v", err)
	}
}

func TestScorecardJSONExportMatchesHandComputedScores(t *testing.T) {
	d := exported(t, scorecardRelease(t))
	if d.Scorecard == nil || d.ReasonCodes != registry.DefaultReasonCodes || d.Points.Base != 600 || d.Points.Odds != 50 || d.Points.PDO != 20 {
		t.Fatalf("document %+v", d)
	}
	answers, err := d.AnswerColumns(handCols())
	if err != nil {
		t.Fatal(err)
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
	} {
		p := 1 / (1 + math.Exp((want.score-offset)/factor))
		a := answers[i]
		if a.Score != want.score || a.PD != math.Round(p*1000)/1000 || !slices.Equal(a.Reasons, want.reasons) {
			t.Errorf("row %d: %+v, want score %v, pd %v, reasons %q", i+1, a, want.score, math.Round(p*1000)/1000, want.reasons)
		}
		// The points score of the probability, on the scorecard's own scaling, is its points.
		if s := d.Points.Score(d.Probability(mustRow(t, d, i))); s != want.score {
			t.Errorf("row %d: Points.Score %v", i+1, s)
		}
	}
	doc, err := d.PMML("test")
	if err != nil || !strings.Contains(string(doc), `<Scorecard modelName="sme.scorecard v1"`) || !strings.Contains(string(doc), `reasonCode="emp.staff: missing"`) {
		t.Errorf("pmml: %v", err)
	}
	if got := d.UsedInputs(); !slices.Equal(got, []string{"tax.amount", "reg.industry", "emp.staff"}) {
		t.Errorf("used inputs %q", got)
	}
}

func mustRow(t *testing.T, d *registry.Document, i int) []float64 {
	x, _, err := d.Transforms.Transform(handCols())
	if err != nil {
		t.Fatal(err)
	}
	return x.RawRowView(i)
}

func TestFromReleaseRefusesMisfits(t *testing.T) {
	r := treesRelease(t)
	r.Bundle.Trees.Features = slices.Clone(r.Bundle.Trees.Features)
	r.Bundle.Trees.Features[5] = "other"
	if _, err := registry.FromRelease(r); !errors.Is(err, registry.ErrFamily) {
		t.Errorf("trees over other features: %v", err)
	}
	r = treesRelease(t)
	r.Bundle.Trees.Trees[0].Nodes[1].Left = 0
	if _, err := registry.FromRelease(r); !errors.Is(err, registry.ErrFamily) {
		t.Errorf("a cycle: %v", err)
	}
	r = scorecardRelease(t)
	cs := r.Bundle.Scorecard.Characteristics
	cs[0], cs[1] = cs[1], cs[0]
	if _, err := registry.FromRelease(r); !errors.Is(err, registry.ErrFamily) {
		t.Errorf("characteristics out of order: %v", err)
	}
	r = scorecardRelease(t)
	r.Bundle.Scorecard.Characteristics[0].Attributes[0].Points += 3
	if _, err := registry.FromRelease(r); !errors.Is(err, registry.ErrFamily) {
		t.Errorf("points off the scaling: %v", err)
	}
	r = scorecardRelease(t)
	r.Bundle.Trees = treesRelease(t).Bundle.Trees
	if _, err := registry.FromRelease(r); !errors.Is(err, registry.ErrFamily) {
		t.Errorf("two kinds of model: %v", err)
	}
}

func TestParseDocumentRejectsFamilies(t *testing.T) {
	for name, tc := range map[string]struct {
		r    func(testing.TB) registry.ReleaseInfo
		edit func(string) string
	}{
		"scorecard points": {scorecardRelease, func(s string) string { return strings.Replace(s, `"points":198`, `"points":199`, 1) }},
		"reason codes":     {scorecardRelease, func(s string) string { return strings.Replace(s, `"reason_codes":3`, `"reason_codes":4`, 1) }},
		"scorecard scaling": {scorecardRelease, func(s string) string {
			return strings.Replace(s, `"points":{"base":600`, `"points":{"base":610`, 1)
		}},
		"tree threshold": {treesRelease, func(s string) string { return strings.Replace(s, `"threshold":1,`, `"threshold":1.5,`, 1) }},
		"tree features": {treesRelease, func(s string) string {
			return strings.Replace(s, `"feature_names":["tax.amount"`, `"feature_names":["tax"`, 1)
		}},
		"reason codes of trees": {treesRelease, func(s string) string { return strings.Replace(s, `"trees":{`, `"reason_codes":1,"trees":{`, 1) }},
	} {
		d, err := registry.FromRelease(tc.r(t))
		if err != nil {
			t.Fatal(err)
		}
		d.Name, d.Version = "sme.m", 1
		good, _ := json.Marshal(d)
		if _, err := registry.ParseDocument(good); err != nil {
			t.Fatalf("%s: the unedited document: %v", name, err)
		}
		bad := tc.edit(string(good))
		if bad == string(good) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if _, err := registry.ParseDocument([]byte(bad)); !errors.Is(err, registry.ErrDocument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkAnswer scores one transformed row with each family's document of fittedJSON (6 features;
// the scorecard has 3 characteristics and 3 reason codes, the ensemble 2 trees).
func BenchmarkAnswer(b *testing.B) {
	for _, tc := range []struct {
		name string
		r    func(testing.TB) registry.ReleaseInfo
	}{
		{"family=linear", func(t testing.TB) registry.ReleaseInfo { return release(t, "job-1") }},
		{"family=scorecard/characteristics=3", scorecardRelease},
		{"family=gbdt/trees=2", treesRelease},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d, err := registry.FromRelease(tc.r(b))
			if err != nil {
				b.Fatal(err)
			}
			x := []float64{-0.5, 0, 1, 0, 0, 2}
			b.ReportAllocs()
			for b.Loop() {
				d.Answer(x)
			}
		})
	}
}
