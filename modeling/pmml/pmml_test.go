package pmml_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"insitu/modeling/features"
	"insitu/modeling/pmml"
)

// fittedJSON is a fitted pipeline with every kind of step, its statistics written out so that the
// expected scores below can be computed by hand.
const fittedJSON = `{"columns":[
 {"column":"tax.amount","name":"tax.amount","kind":"numeric","steps":[
   {"impute":{"value":100,"indicator":true}},{"clip":{"min":0,"max":1000}},
   {"scale":{"method":"minmax","mean":0,"std":0,"min":0,"max":1000,"range":[-1,1]}}],
  "outputs":["tax.amount","tax.amount_missing"]},
 {"column":"reg.industry","name":"reg.industry","kind":"categorical","steps":[
   {"impute":{"category":"unknown"}},{"onehot":{"categories":["retail","mfg"],"unknown":"other"}}],
  "outputs":["reg.industry=retail","reg.industry=mfg","reg.industry=__other__"]},
 {"column":"emp.staff","name":"emp.staff","kind":"numeric","steps":[
   {"clip":{"min":0,"max":500}},{"scale":{"method":"standard","mean":50,"std":25,"min":0,"max":0}}],
  "outputs":["emp.staff"]},
 {"column":"reg.founded","name":"age","kind":"date","steps":[
   {"age":{"reference":"2024-01-01","unit":"years"}},{"clip":{"min":0,"max":50}}],
  "outputs":["age"]}
]}`

var weights = []float64{0.5, 0.3, -0.2, 0.1, 0.4, -0.6, -0.05}

const intercept = -1.0

func model(t *testing.T) *pmml.Model {
	t.Helper()
	f, err := features.ParseFitted([]byte(fittedJSON))
	if err != nil {
		t.Fatal(err)
	}
	return &pmml.Model{Name: "m-1 v1", Description: "test model", Application: "insitu", AppVersion: "test",
		Transforms: f, Linear: &pmml.Linear{Weights: weights, Intercept: intercept}, Points: &pmml.DefaultPoints}
}

func days(t *testing.T, s string) float64 {
	d, err := features.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return float64(d)
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// handRows are three records with their linear predictors computed by hand from fittedJSON and the
// weights: each term is written out.
func handRows(t *testing.T) []struct {
	name   string
	record map[string]value
	z      float64
} {
	return []struct {
		name   string
		record map[string]value
		z      float64
	}{
		{"retail, in range", map[string]value{"tax.amount": numv(250), "reg.industry": strv("retail"), "emp.staff": numv(100),
			"reg.founded": numv(days(t, "2014-01-01"))},
			// amount 250 → −1 + 2·250/1000 = −0.5; not missing; retail; staff (100−50)/25 = 2;
			// age 3652 days (2016 and 2020 are leap years) / 365.25.
			intercept + 0.5*-0.5 + 0.3*0 + -0.2*1 + 0.1*0 + 0.4*0 + -0.6*2 + -0.05*(3652/365.25)},
		{"missing and clipped", map[string]value{"tax.amount": missing, "reg.industry": missing, "emp.staff": numv(1000),
			"reg.founded": numv(days(t, "2030-06-01"))},
			// amount imputed 100 → −0.8, indicator 1; industry "unknown" → other; staff clipped to
			// 500 → 18; age negative, clipped to 0.
			intercept + 0.5*-0.8 + 0.3*1 + -0.2*0 + 0.1*0 + 0.4*1 + -0.6*18 + -0.05*0},
		{"manufacturing, clipped high", map[string]value{"tax.amount": numv(5000), "reg.industry": strv("mfg"), "emp.staff": numv(50),
			"reg.founded": numv(days(t, "2000-01-01"))},
			// amount clipped to 1000 → 1; mfg; staff 0; age 8766 days (6 leap days) = 24 years.
			intercept + 0.5*1 + 0.3*0 + -0.2*0 + 0.1*1 + 0.4*0 + -0.6*0 + -0.05*24},
	}
}

func TestRegressionModelMatchesHandComputedScores(t *testing.T) {
	m := model(t)
	doc, err := pmml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range handRows(t) {
		out := score(t, doc, r.record)
		p := out[pmml.OutputProbability]
		if p.missing || math.Abs(p.num-sigmoid(r.z)) > 1e-12 {
			t.Errorf("%s: probability %+v, want σ(%v) = %v", r.name, p, r.z, sigmoid(r.z))
		}
		// score = 600 + 20/ln2 · ln(((1−p)/p)/50) = 600 + 20/ln2 · (−z − ln 50), rounded.
		want := math.Round(600 + 20/math.Ln2*(-r.z-math.Log(50)))
		if s := out[pmml.OutputScore]; s.missing || s.num != want {
			t.Errorf("%s: score %+v, want %v", r.name, s, want)
		}
		if got := pmml.DefaultPoints.Score(sigmoid(r.z)); got != want {
			t.Errorf("%s: Points.Score %v, want %v", r.name, got, want)
		}
	}
}

// TestTransformsAgreeWithFeatures checks the exported transforms against modeling/features on the
// same records: the features the PMML computes are the features the enclave computes.
func TestTransformsAgreeWithFeatures(t *testing.T) {
	m := model(t)
	doc, err := pmml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	rows := handRows(t)
	n := len(rows)
	amount, staff := make([]float64, n), make([]float64, n)
	industry, founded := make([]string, n), make([]int32, n)
	amountMiss, industryMiss := make([]bool, n), make([]bool, n)
	for i, r := range rows {
		amountMiss[i], amount[i] = r.record["tax.amount"].missing, r.record["tax.amount"].num
		industryMiss[i], industry[i] = r.record["reg.industry"].missing, r.record["reg.industry"].str
		staff[i], founded[i] = r.record["emp.staff"].num, int32(r.record["reg.founded"].num)
	}
	x, _, err := m.Transforms.Transform([]features.Column{
		features.NumericColumn("tax.amount", amount, amountMiss),
		features.CategoricalColumn("reg.industry", industry, industryMiss),
		features.NumericColumn("emp.staff", staff, nil),
		features.DateColumn("reg.founded", founded, nil)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		z := intercept
		for j, w := range weights {
			z += w * x.At(i, j)
		}
		if math.Abs(z-r.z) > 1e-12 {
			t.Errorf("%s: features give z = %v, by hand %v", r.name, z, r.z)
		}
		if p := score(t, doc, r.record)[pmml.OutputProbability]; math.Abs(p.num-sigmoid(z)) > 1e-12 {
			t.Errorf("%s: PMML %v, features %v", r.name, p.num, sigmoid(z))
		}
	}
}

func TestMarshalRefuses(t *testing.T) {
	m := model(t)
	m.Linear = nil
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrFamily) {
		t.Errorf("no family: %v", err)
	}
	m = model(t)
	m.Linear.Weights = weights[:3]
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("short weights: %v", err)
	}
	m = model(t)
	m.Linear = &pmml.Linear{Weights: append([]float64{math.NaN()}, weights[1:]...)}
	if _, err := pmml.Marshal(m); !errors.Is(err, pmml.ErrModel) {
		t.Errorf("NaN weight: %v", err)
	}
}

func TestMarshalEscapesNames(t *testing.T) {
	f, err := features.ParseFitted([]byte(`{"columns":[{"column":"a<&\"b","name":"a<&\"b","kind":"categorical","steps":[{"onehot":{"categories":["x<y"],"unknown":"ignore"}}],"outputs":["a<&\"b=x<y"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := pmml.Marshal(&pmml.Model{Name: "n", Transforms: f, Linear: &pmml.Linear{Weights: []float64{2}, Intercept: 0}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc), `a<&"b`) {
		t.Fatal("a name is written unescaped")
	}
	out := score(t, doc, map[string]value{`a<&"b`: strv("x<y")})
	if p := out[pmml.OutputProbability]; math.Abs(p.num-sigmoid(2)) > 1e-12 {
		t.Errorf("probability %v, want σ(2)", p)
	}
	if _, ok := out[pmml.OutputScore]; ok {
		t.Error("a score output without a scaling")
	}
}
