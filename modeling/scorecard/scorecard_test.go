package scorecard

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"

	"insitu/modeling/binning"
	"insitu/modeling/logreg"
)

type vectors struct {
	A         []float64            `json:"a"`
	B         []*float64           `json:"b"`
	Y         []float64            `json:"y"`
	Edges     map[string][]float64 `json:"edges"`
	WoE       map[string][]float64 `json:"woe"`
	Coef      []float64            `json:"coef"`
	Intercept float64              `json:"intercept"`
	PDO       float64              `json:"pdo"`
	BaseScore float64              `json:"base_score"`
	BaseOdds  float64              `json:"base_odds"`
	Factor    float64              `json:"factor"`
	Offset    float64              `json:"offset"`
	Points    map[string][]float64 `json:"points"`
	Scores    []float64            `json:"scores"`
}

func load(t testing.TB) (v vectors, cols [][]float64, bins []*binning.Binning) {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	bcol := make([]float64, len(v.B))
	for i, p := range v.B {
		bcol[i] = math.NaN()
		if p != nil {
			bcol[i] = *p
		}
	}
	cols = [][]float64{v.A, bcol}
	for j, name := range []string{"a", "b"} {
		h, err := binning.Count(name, v.Edges[name], cols[j], v.Y)
		if err != nil {
			t.Fatal(err)
		}
		bn, err := binning.Fit(h, binning.Options{Method: binning.Manual})
		if err != nil {
			t.Fatal(err)
		}
		bins = append(bins, bn)
	}
	return v, cols, bins
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestAgainstScikitLearn(t *testing.T) {
	v, cols, bins := load(t)
	for j, name := range []string{"a", "b"} {
		for i, w := range v.WoE[name] {
			if got := bins[j].Bin(i).WoE; !near(got, w, 1e-12) {
				t.Errorf("%s bin %d WoE %v, want %v", name, i, got, w)
			}
		}
	}
	sc, m, err := Fit(bins, cols, v.Y, Options{Lambda: 1, Scaling: Scaling{PDO: v.PDO, BaseScore: v.BaseScore, BaseOdds: v.BaseOdds}})
	if err != nil {
		t.Fatal(err)
	}
	for j := range v.Coef {
		if !near(m.Weights[j], v.Coef[j], 1e-6) {
			t.Errorf("coefficient %d = %v; scikit-learn %v", j, m.Weights[j], v.Coef[j])
		}
	}
	if !near(m.Intercept, v.Intercept, 1e-6) || !near(sc.Factor, v.Factor, 1e-12) || !near(sc.Offset, v.Offset, 1e-9) {
		t.Errorf("intercept %v factor %v offset %v; want %v %v %v", m.Intercept, sc.Factor, sc.Offset, v.Intercept, v.Factor, v.Offset)
	}
	for j, name := range []string{"a", "b"} {
		for i, p := range v.Points[name] {
			if got := sc.Characteristics[j].Attributes[i].Points; !near(got, p, 1e-4) {
				t.Errorf("%s bin %d: %v points, want %v", name, i, got, p)
			}
		}
	}
	for i := range v.Y {
		s := sc.Score([]float64{cols[0][i], cols[1][i]})
		if !near(s, v.Scores[i], 1e-4) {
			t.Fatalf("row %d: score %v, want %v", i, s, v.Scores[i])
		}
		// The score and the regression agree on the probability of a bad.
		pb := m.Score([]float64{bins[0].WoE(cols[0][i]), bins[1].WoE(cols[1][i])})
		if !near(sc.BadProbability(s), pb, 1e-12) {
			t.Fatalf("row %d: P(bad) %v from the score, %v from the regression", i, sc.BadProbability(s), pb)
		}
	}
}

func TestScalingConvention(t *testing.T) {
	// One feature with WoE 0 everywhere and intercept −ln 50 (odds of good 50:1): every subject scores
	// exactly the base score; intercept −ln 100 (odds doubled) scores base + PDO.
	bn := &binning.Binning{Feature: "f", Edges: []float64{1}, Bins: []binning.Bin{{}, {}}}
	for _, c := range []struct{ intercept, want float64 }{{-math.Log(50), 600}, {-math.Log(100), 620}, {-math.Log(25), 580}} {
		sc, err := New([]*binning.Binning{bn}, []float64{-1}, c.intercept, DefaultScaling())
		if err != nil {
			t.Fatal(err)
		}
		if s := sc.Score([]float64{0}); !near(s, c.want, 1e-9) {
			t.Errorf("intercept %v: score %v, want %v", c.intercept, s, c.want)
		}
	}
}

func TestReasonCodesAndPoints(t *testing.T) {
	_, cols, bins := load(t)
	sc, _, err := Fit(bins, cols, loadY(t), Options{Lambda: 1, Scaling: Scaling{PDO: 20, BaseScore: 600, BaseOdds: 50, Round: true}})
	if err != nil {
		t.Fatal(err)
	}
	// Bin 0 of a (values <= 35) has the fewest points of a in the fixture; bin 0 of b is b's best.
	a := sc.Characteristics[0].Attributes
	worst, best := 0, 0
	for i := range a {
		if a[i].Points < a[worst].Points {
			worst = i
		}
		if a[i].Points > a[best].Points {
			best = i
		}
	}
	bBest := 0
	for i, at := range sc.Characteristics[1].Attributes {
		if at.Points > sc.Characteristics[1].Attributes[bBest].Points {
			bBest = i
		}
	}
	rc, err := sc.ReasonCodes([]int{worst, bBest}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc) != 1 || rc[0].Feature != "a" || rc[0].Bin != worst || rc[0].Shortfall != a[best].Points-a[worst].Points {
		t.Errorf("reasons %+v", rc)
	}
	p, err := sc.Points([]int{worst, bBest})
	if err != nil || p != a[worst].Points+sc.Characteristics[1].Attributes[bBest].Points || p != math.Round(p) {
		t.Errorf("points %v, %v", p, err)
	}
	if _, err := sc.Points([]int{0, 9}); !errors.Is(err, ErrShape) {
		t.Errorf("bin out of range: %v", err)
	}
	if _, err := sc.ReasonCodes([]int{0}, 1); !errors.Is(err, ErrShape) {
		t.Errorf("short assignment: %v", err)
	}
	if got := sc.Characteristics[1].Attributes[3].Label; got != "missing" {
		t.Errorf("label %q", got)
	}
	if got := sc.Characteristics[0].Attributes[1].Label; got != "(35, 50]" {
		t.Errorf("label %q", got)
	}
}

func loadY(t testing.TB) []float64 { v, _, _ := load(t); return v.Y }

func TestJSONRoundTripAndTamper(t *testing.T) {
	_, cols, bins := load(t)
	sc, _, err := Fit(bins, cols, loadY(t), Options{Lambda: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseScorecard(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Score([]float64{40, 2}) != sc.Score([]float64{40, 2}) {
		t.Error("score changed in the round trip")
	}
	tamper := []func(*Scorecard){
		func(s *Scorecard) { s.Characteristics[0].Attributes[1].Points += 5 },
		func(s *Scorecard) { s.Offset++ },
		func(s *Scorecard) { s.Characteristics[1].Edges = []float64{3, 1} },
		func(s *Scorecard) { s.Characteristics[0].Attributes = s.Characteristics[0].Attributes[:2] },
		func(s *Scorecard) { s.Scaling.PDO = 0 },
		func(s *Scorecard) { s.Characteristics[0].Attributes[0].Label = "anything" },
	}
	for k, f := range tamper {
		c, _ := ParseScorecard(b)
		f(c)
		tb, _ := json.Marshal(c)
		if _, err := ParseScorecard(tb); !errors.Is(err, ErrScorecard) && !errors.Is(err, ErrScaling) {
			t.Errorf("tamper %d accepted: %v", k, err)
		}
	}
	if _, err := ParseScorecard(append(b, []byte(`{}`)...)); !errors.Is(err, ErrScorecard) {
		t.Errorf("trailing data: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	bn := &binning.Binning{Feature: "f", Edges: []float64{1}, Bins: []binning.Bin{{}, {}}}
	if _, err := New([]*binning.Binning{bn}, nil, 0, DefaultScaling()); !errors.Is(err, ErrShape) {
		t.Errorf("no coefficients: %v", err)
	}
	if _, err := New([]*binning.Binning{bn}, []float64{1}, 0, Scaling{PDO: 20, BaseOdds: -1}); !errors.Is(err, ErrScaling) {
		t.Errorf("negative odds: %v", err)
	}
	if _, _, err := Fit([]*binning.Binning{bn}, [][]float64{{0, 2}}, []float64{1, 1}, Options{}); !errors.Is(err, logreg.ErrOneClass) {
		t.Errorf("one class: %v", err)
	}
}

func FuzzParseScorecard(f *testing.F) {
	if b, err := os.ReadFile("testdata/seed_scorecard.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"scaling":{"pdo":20,"base_score":600,"base_odds":50},"intercept":0,"factor":28.85390081777927,"offset":487.1228762045055,"characteristics":[{"feature":"f","edges":[],"coefficient":0,"attributes":[{"label":"(-inf, +inf)","woe":0,"points":487.1228762045055},{"label":"missing","woe":0,"points":487.1228762045055}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseScorecard(b)
		if err != nil {
			return
		}
		x := make([]float64, len(s.Characteristics))
		for _, v := range []float64{math.NaN(), -1e308, 0, 1e308} {
			for i := range x {
				x[i] = v
			}
			a := s.Assign(x)
			if _, err := s.ReasonCodes(a, 2); err != nil {
				t.Fatal(err)
			}
			if sc := s.Score(x); math.IsNaN(sc) {
				t.Fatal("NaN score")
			}
		}
	})
}
