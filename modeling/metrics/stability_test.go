package metrics

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
)

// vectors holds the known answers testdata/make_vectors.py computed with numpy and scikit-learn.
type vectors struct {
	PSI []struct {
		Expected, Actual []float64
		PSI              float64
	}
	Calibration []struct {
		Y, P   []float64
		Groups int
		Table  []struct {
			Count, Positives            int
			MeanPredicted, ObservedRate float64 `json:"-"`
			Mean                        float64 `json:"mean_predicted"`
			Rate                        float64 `json:"observed_rate"`
		}
	}
	Confusion []struct {
		Threshold                                    float64
		TP, FP, TN, FN                               int
		Precision, Recall, Specificity, F1, Accuracy float64
	}
}

func loadVectors(t *testing.T) vectors {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.PSI) == 0 || len(v.Calibration) == 0 || len(v.Confusion) == 0 {
		t.Fatal("testdata/vectors.json holds no vectors")
	}
	return v
}

func TestPSIKnownAnswers(t *testing.T) {
	for _, c := range loadVectors(t).PSI {
		s, err := PSI(c.Expected, c.Actual)
		if err != nil || !near(s.PSI, c.PSI, 1e-12) {
			t.Errorf("PSI(%v, %v) = %v, %v; want %v", c.Expected, c.Actual, s.PSI, err, c.PSI)
		}
		var sum float64
		for _, b := range s.Bins {
			if b.Contribution < 0 || b.Expected < PSIFloor || b.Actual < PSIFloor {
				t.Errorf("bin %+v breaks the documented bounds", b)
			}
			sum += b.Contribution
		}
		if !near(sum, s.PSI, 1e-12) {
			t.Errorf("contributions sum to %v, PSI %v", sum, s.PSI)
		}
	}
}

func TestPSIErrors(t *testing.T) {
	if _, err := PSI(nil, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("no bins: %v", err)
	}
	if _, err := PSI([]float64{-1, 0}, []float64{1, 2}); !errors.Is(err, ErrEmpty) {
		t.Errorf("clamped total 0: %v", err)
	}
	var e *Error
	if _, err := PSI([]float64{1, math.NaN()}, []float64{1, 2}); !errors.As(err, &e) || e.Index != 1 || !errors.Is(err, ErrScore) {
		t.Errorf("NaN count: %v", err)
	}
	s, err := PSI([]float64{5, 5}, []float64{5, 5})
	if err != nil || s.PSI != 0 {
		t.Errorf("identical populations: %v, %v", s.PSI, err)
	}
}

func TestScorePSI(t *testing.T) {
	base := make([]float64, 1000)
	for i := range base {
		base[i] = float64(i)
	}
	s, cuts, err := ScorePSI(base, base, 10)
	if err != nil || s.PSI != 0 || len(cuts) != 9 || cuts[0] != 99 || cuts[8] != 899 {
		t.Fatalf("same scores: psi %v cuts %v err %v", s.PSI, cuts, err)
	}
	for _, b := range s.Bins {
		if b.Expected != 0.1 {
			t.Errorf("decile share %v, want 0.1", b.Expected)
		}
	}
	shifted := make([]float64, 1000)
	for i := range shifted {
		shifted[i] = float64(i) + 100 // a tenth moves past the top cut point
	}
	s, _, err = ScorePSI(base, shifted, 10)
	// Bins: first holds 0 of current (floored), the last holds 200/1000; the rest 0.1.
	want := (PSIFloor-0.1)*math.Log(PSIFloor/0.1) + (0.2-0.1)*math.Log(2)
	if err != nil || !near(s.PSI, want, 1e-12) {
		t.Errorf("shifted: psi %v, want %v (%v)", s.PSI, want, err)
	}
}

func TestCalibrationKnownAnswers(t *testing.T) {
	for _, c := range loadVectors(t).Calibration {
		tab, err := Calibration(c.Y, c.P, c.Groups)
		if err != nil {
			t.Fatal(err)
		}
		if len(tab) != len(c.Table) {
			t.Fatalf("%d groups, want %d", len(tab), len(c.Table))
		}
		for k, w := range c.Table {
			g := tab[k]
			if g.Count != w.Count || g.Positives != w.Positives || !near(g.MeanPredicted, w.Mean, 1e-12) || !near(g.ObservedRate, w.Rate, 1e-12) {
				t.Errorf("groups=%d group %d = %+v; want %+v", c.Groups, k, g, w)
			}
		}
	}
}

func TestCalibrationTiesShareAGroup(t *testing.T) {
	y := []float64{0, 1, 0, 1, 0, 1}
	p := []float64{0.2, 0.2, 0.2, 0.2, 0.9, 0.9}
	tab, err := Calibration(y, p, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab) != 2 || tab[0].Count != 4 || tab[0].Positives != 2 || tab[1].Count != 2 || tab[1].MeanPredicted != 0.9 {
		t.Errorf("table %+v", tab)
	}
	if _, err := Calibration([]float64{0, 1}, []float64{0.5, 1.5}, 2); !errors.Is(err, ErrProbability) {
		t.Errorf("p > 1: %v", err)
	}
	if _, err := Calibration(nil, nil, 2); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
}

func TestConfusionKnownAnswers(t *testing.T) {
	v := loadVectors(t)
	y, p := v.Calibration[0].Y, v.Calibration[0].P
	for _, w := range v.Confusion {
		c, err := ConfusionAt(y, p, w.Threshold)
		if err != nil {
			t.Fatal(err)
		}
		r := c.Report()
		if c.TP != w.TP || c.FP != w.FP || c.TN != w.TN || c.FN != w.FN {
			t.Errorf("threshold %v: counts %+v; want tp %d fp %d tn %d fn %d", w.Threshold, c, w.TP, w.FP, w.TN, w.FN)
		}
		for _, q := range [][2]float64{{r.Precision, w.Precision}, {r.Recall, w.Recall}, {r.Specificity, w.Specificity}, {r.F1, w.F1}, {r.Accuracy, w.Accuracy}} {
			if !near(q[0], q[1], 1e-12) {
				t.Errorf("threshold %v: rate %v, want %v", w.Threshold, q[0], q[1])
			}
		}
	}
}
