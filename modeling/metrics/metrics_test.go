package metrics

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestKnownAnswers(t *testing.T) {
	cases := []struct {
		name    string
		y, s    []float64
		auc, ks float64
	}{
		// scikit-learn's documented roc_auc_score example.
		{"sklearn-doc", []float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, 0.75, 0.5},
		// Ties: positive scores .5 .9 .2, negative .5 .2; pair wins 1+1+1, ties 2×½ → 4/6.
		// CDFs after each tie group: .2 → |1/2−1/3|, .5 → |1−2/3|, .9 → 0; KS = 1/3.
		{"ties", []float64{0, 1, 0, 1, 1}, []float64{0.5, 0.5, 0.2, 0.9, 0.2}, 4.0 / 6, 1.0 / 3},
		{"all-tied", []float64{0, 1, 1, 0, 1}, []float64{3, 3, 3, 3, 3}, 0.5, 0},
		{"perfect", []float64{0, 0, 1, 1, 1}, []float64{-2, -1, 0, 5, 9}, 1, 1},
		{"reversed", []float64{1, 1, 0, 0}, []float64{-2, -1, 0, 5}, 0, 1},
		{"infinite-scores", []float64{0, 1, 0, 1}, []float64{math.Inf(-1), math.Inf(1), 0, 0}, 0.875, 0.5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			auc, err := AUC(c.y, c.s)
			if err != nil || !near(auc, c.auc, 1e-15) {
				t.Errorf("AUC = %v, %v; want %v", auc, err, c.auc)
			}
			ks, err := KS(c.y, c.s)
			if err != nil || !near(ks, c.ks, 1e-15) {
				t.Errorf("KS = %v, %v; want %v", ks, err, c.ks)
			}
			g, err := Gini(c.y, c.s)
			if err != nil || !near(g, 2*c.auc-1, 1e-15) {
				t.Errorf("Gini = %v, %v; want %v", g, err, 2*c.auc-1)
			}
			sum, err := Evaluate(c.y, c.s)
			if err != nil || !near(sum.AUC, c.auc, 1e-15) || !near(sum.KS, c.ks, 1e-15) || sum.N != len(c.y) {
				t.Errorf("Evaluate = %+v, %v", sum, err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name  string
		y, s  []float64
		want  error
		index int
	}{
		{"empty", nil, nil, ErrEmpty, -1},
		{"all-ones", []float64{1, 1, 1}, []float64{0.1, 0.2, 0.3}, ErrOneClass, -1},
		{"all-zeros", []float64{0, 0}, []float64{0.1, 0.2}, ErrOneClass, -1},
		{"label-2", []float64{0, 1, 2}, []float64{0.1, 0.2, 0.3}, ErrLabel, 2},
		{"label-nan", []float64{0, math.NaN(), 1}, []float64{0.1, 0.2, 0.3}, ErrLabel, 1},
		{"score-nan", []float64{0, 1, 1}, []float64{0.1, math.NaN(), 0.3}, ErrScore, 1},
	}
	for _, c := range cases {
		for name, f := range map[string]func(y, s []float64) error{
			"auc":      func(y, s []float64) error { _, err := AUC(y, s); return err },
			"ks":       func(y, s []float64) error { _, err := KS(y, s); return err },
			"gini":     func(y, s []float64) error { _, err := Gini(y, s); return err },
			"evaluate": func(y, s []float64) error { _, err := Evaluate(y, s); return err },
			"roc":      func(y, s []float64) error { _, err := ROC(y, s); return err },
		} {
			err := f(c.y, c.s)
			var me *Error
			if !errors.Is(err, c.want) || !errors.As(err, &me) || me.Index != c.index || me.Metric != name {
				t.Errorf("%s/%s: err = %v; want %v at index %d", c.name, name, err, c.want, c.index)
			}
		}
	}
}

func TestLengthMismatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("AUC with 2 labels and 1 score did not panic")
		}
	}()
	AUC([]float64{0, 1}, []float64{0.5})
}

// pairwiseAUC is the O(n²) definition: P(score of a positive > score of a negative), ties ½.
func pairwiseAUC(y, s []float64) float64 {
	var u, pairs float64
	for i := range y {
		if y[i] != 1 {
			continue
		}
		for j := range y {
			if y[j] != 0 {
				continue
			}
			pairs++
			switch {
			case s[i] > s[j]:
				u++
			case s[i] == s[j]:
				u += 0.5
			}
		}
	}
	return u / pairs
}

// bruteKS tries every threshold t among the scores: max |P(pos >= t) − P(neg >= t)|.
func bruteKS(y, s []float64) float64 {
	var ks float64
	for _, t := range s {
		var tp, fp, np, nn float64
		for i := range y {
			if y[i] == 1 {
				np++
				if s[i] >= t {
					tp++
				}
			} else {
				nn++
				if s[i] >= t {
					fp++
				}
			}
		}
		ks = max(ks, math.Abs(tp/np-fp/nn))
	}
	return ks
}

func TestAgainstPairwiseDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 2 + r.IntN(60)
		levels := 1 + r.IntN(12) // few levels → many ties
		y := make([]float64, n)
		s := make([]float64, n)
		for i := range y {
			if r.Float64() < 0.3 {
				y[i] = 1
			}
			s[i] = float64(r.IntN(levels)) + 0.4*y[i]*float64(r.IntN(2))
			if trial%3 == 0 {
				s[i] = r.NormFloat64() + y[i]
			}
		}
		y[0], y[1] = 0, 1
		auc, err := AUC(y, s)
		if err != nil {
			t.Fatal(err)
		}
		if want := pairwiseAUC(y, s); !near(auc, want, 1e-12) {
			t.Fatalf("trial %d: AUC = %v, pairwise = %v (y=%v s=%v)", trial, auc, want, y, s)
		}
		ks, _ := KS(y, s)
		if want := bruteKS(y, s); !near(ks, want, 1e-12) {
			t.Fatalf("trial %d: KS = %v, brute force = %v", trial, ks, want)
		}
		// The trapezoid area under the ROC curve is the AUC, and its largest |TPR−FPR| the KS.
		c, _ := ROC(y, s)
		var area, cks float64
		for k := 1; k < len(c.FPR); k++ {
			area += (c.FPR[k] - c.FPR[k-1]) * (c.TPR[k] + c.TPR[k-1]) / 2
			cks = max(cks, math.Abs(c.TPR[k]-c.FPR[k]))
		}
		if !near(area, auc, 1e-12) || !near(cks, ks, 1e-12) {
			t.Fatalf("trial %d: ROC area %v / KS %v; want %v / %v", trial, area, cks, auc, ks)
		}
	}
}

func TestROC(t *testing.T) {
	c, err := ROC([]float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8})
	if err != nil {
		t.Fatal(err)
	}
	want := Curve{
		Threshold: []float64{math.Inf(1), 0.8, 0.4, 0.35, 0.1},
		FPR:       []float64{0, 0, 0.5, 0.5, 1},
		TPR:       []float64{0, 0.5, 0.5, 1, 1},
	}
	if !slices.Equal(c.Threshold, want.Threshold) || !slices.Equal(c.FPR, want.FPR) || !slices.Equal(c.TPR, want.TPR) {
		t.Errorf("ROC = %+v; want %+v", c, want)
	}
}

func TestLogLoss(t *testing.T) {
	got, err := LogLoss([]float64{1, 0}, []float64{0.8, 0.3})
	if want := -(math.Log(0.8) + math.Log(0.7)) / 2; err != nil || !near(got, want, 1e-15) {
		t.Errorf("LogLoss = %v, %v; want %v", got, err, want)
	}
	// A certain mistake is clipped: −log(1e−15) ≈ 34.539.
	got, err = LogLoss([]float64{1}, []float64{0})
	if err != nil || !near(got, -math.Log(1e-15), 1e-9) {
		t.Errorf("LogLoss(certain mistake) = %v, %v", got, err)
	}
	if _, err := LogLoss([]float64{1, 0}, []float64{0.5, 1.5}); !errors.Is(err, ErrProbability) {
		t.Errorf("p = 1.5: err = %v; want ErrProbability", err)
	}
	if _, err := LogLoss([]float64{1, 3}, []float64{0.5, 0.5}); !errors.Is(err, ErrLabel) {
		t.Errorf("y = 3: err = %v; want ErrLabel", err)
	}
}

func TestConfusion(t *testing.T) {
	y := []float64{0, 0, 1, 1, 1, 0}
	s := []float64{0.1, 0.6, 0.5, 0.9, 0.2, 0.5}
	c, err := ConfusionAt(y, s, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := Confusion{Threshold: 0.5, TP: 2, FP: 2, TN: 1, FN: 1}
	if c != want {
		t.Fatalf("ConfusionAt = %+v; want %+v", c, want)
	}
	if c.TPR() != 2.0/3 || c.FPR() != 2.0/3 || c.Precision() != 0.5 || c.Accuracy() != 0.5 || c.F1() != 4.0/7 {
		t.Errorf("rates = %v %v %v %v %v", c.TPR(), c.FPR(), c.Precision(), c.Accuracy(), c.F1())
	}
	if _, err := ConfusionAt(y, s, 2); err != nil {
		t.Errorf("threshold above all scores: %v", err)
	}
	if p := (Confusion{TN: 3}).Precision(); !math.IsNaN(p) {
		t.Errorf("precision with nothing called positive = %v; want NaN", p)
	}
}

func BenchmarkAUC(b *testing.B) {
	for _, n := range []struct {
		name string
		n    int
	}{{"n=1e4", 1e4}, {"n=1e6", 1e6}} {
		r := rand.New(rand.NewPCG(3, 4))
		y := make([]float64, n.n)
		s := make([]float64, n.n)
		for i := range y {
			if r.Float64() < 0.2 {
				y[i] = 1
			}
			s[i] = r.NormFloat64() + y[i]
		}
		b.Run(n.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Evaluate(y, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
