package binning

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

type vectors struct {
	WoE []struct {
		Good, Bad []float64
		MG        float64 `json:"mg"`
		MB        float64 `json:"mb"`
		Alpha     float64
		WoE, IV   []float64
		TotalIV   float64 `json:"total_iv"`
	}
	Chi2 []struct {
		A, B [2]float64
		Chi2 float64
	}
}

func loadVectors(t testing.TB) vectors {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.WoE) == 0 || len(v.Chi2) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestWoEKnownAnswers(t *testing.T) {
	for k, c := range loadVectors(t).WoE {
		// Through Fit: equal frequency with one bin per fine bin keeps the table as it is.
		h := &Hist{Feature: "x", Edges: []float64{1, 2, 3}, Good: c.Good, Bad: c.Bad, MissingGood: c.MG, MissingBad: c.MB}
		o := Options{Method: EqualFrequency, MaxBins: 4, Alpha: c.Alpha, NoSmoothing: c.Alpha == 0}
		bn, err := Fit(h, o)
		if err != nil {
			t.Fatalf("case %d: %v", k, err)
		}
		if len(bn.Bins) != 4 {
			t.Fatalf("case %d: %d bins, want 4", k, len(bn.Bins))
		}
		for i := range 5 {
			b := bn.Bin(i)
			if !near(b.WoE, c.WoE[i], 1e-12) || !near(b.IV, c.IV[i], 1e-12) {
				t.Errorf("case %d bin %d: woe %v iv %v; want %v %v", k, i, b.WoE, b.IV, c.WoE[i], c.IV[i])
			}
		}
		if !near(bn.IV, c.TotalIV, 1e-12) {
			t.Errorf("case %d: IV %v, want %v", k, bn.IV, c.TotalIV)
		}
	}
}

func TestChi2KnownAnswers(t *testing.T) {
	for _, c := range loadVectors(t).Chi2 {
		got := chi2(group{g: c.A[0], b: c.A[1]}, group{g: c.B[0], b: c.B[1]})
		if !near(got, c.Chi2, 1e-10) {
			t.Errorf("chi2(%v, %v) = %v; scipy %v", c.A, c.B, got, c.Chi2)
		}
	}
}

// synthetic draws values whose bad rate rises with x, with some missing values.
func synthetic(n int, seed uint64) (x, y []float64) {
	r := rand.New(rand.NewPCG(seed, 1))
	x, y = make([]float64, n), make([]float64, n)
	for i := range n {
		x[i] = math.Round(r.NormFloat64()*100) / 10
		p := 1 / (1 + math.Exp(-(x[i]/4 - 1.5)))
		if r.Float64() < 0.05 {
			x[i] = math.NaN()
			p = 0.4
		}
		if r.Float64() < p {
			y[i] = 1
		}
	}
	return x, y
}

func isSubset(sub, set []float64) bool {
	for _, e := range sub {
		if !slices.Contains(set, e) {
			return false
		}
	}
	return true
}

func TestMethods(t *testing.T) {
	x, y := synthetic(20000, 1)
	h, err := FromValues("x", x, y, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Method{EqualFrequency, ChiMerge, MonotoneWoE} {
		bn, err := Fit(h, Options{Method: m, MaxBins: 6})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if len(bn.Bins) < 2 || len(bn.Bins) > 6 {
			t.Errorf("%s: %d bins", m, len(bn.Bins))
		}
		if !isSubset(bn.Edges, h.Edges) || !slices.IsSorted(bn.Edges) {
			t.Errorf("%s: edges %v not a sorted subset of the fine edges", m, bn.Edges)
		}
		var n float64
		for _, b := range bn.Bins {
			n += b.Good + b.Bad
		}
		if n+bn.Missing.Good+bn.Missing.Bad != 20000 {
			t.Errorf("%s: bins hold %v rows", m, n)
		}
		if bn.Missing.Good+bn.Missing.Bad < 800 || bn.Missing.WoE == 0 {
			t.Errorf("%s: missing bin %+v", m, bn.Missing)
		}
		// The bad rate rises with x, so WoE must fall: the first bin is safer than the last.
		if bn.Bins[0].WoE <= bn.Bins[len(bn.Bins)-1].WoE {
			t.Errorf("%s: WoE %v does not fall with x", m, bn.Bins)
		}
		if bn.IV < 0.5 {
			t.Errorf("%s: IV %v is implausibly low for this strong feature", m, bn.IV)
		}
		// The WoE transform agrees with the bin table.
		for i, v := range x[:50] {
			if got := bn.WoE(v); got != bn.Bin(bn.Index(v)).WoE {
				t.Fatalf("row %d: WoE %v", i, got)
			}
		}
		t.Logf("%s: %d bins, IV %.4f, edges %v", m, len(bn.Bins), bn.IV, bn.Edges)
	}
	ef, _ := Fit(h, Options{Method: EqualFrequency, MaxBins: 5})
	for _, b := range ef.Bins {
		if share := (b.Good + b.Bad) / 19000; share < 0.15 || share > 0.25 {
			t.Errorf("equal frequency bin holds %.3f of the rows", share)
		}
	}
}

func TestMonotoneOnNoisyHistogram(t *testing.T) {
	x, y := synthetic(20000, 2)
	h, err := FromValues("x", x, y, 128)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4)) // simulated noise, not a privacy mechanism
	for j := range h.Good {
		h.Good[j] += r.NormFloat64() * 20
		h.Bad[j] += r.NormFloat64() * 20
	}
	bn, err := Fit(h, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bn.Monotone() {
		t.Errorf("not monotone: %+v", bn.Bins)
	}
	for _, b := range bn.Bins {
		if b.Good < 0 || b.Bad < 0 || math.IsNaN(b.WoE) || math.IsInf(b.WoE, 0) {
			t.Errorf("bin %+v", b)
		}
	}
	if bn.IV < 0.5 {
		t.Errorf("IV %v after noise", bn.IV)
	}
}

func TestRawAndHistogramAgree(t *testing.T) {
	x, y := synthetic(5000, 5)
	a, err := FitValues("x", x, y, 32, Options{Method: ChiMerge})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := Count("x", QuantileEdges(x, 32), x, y)
	b, err := Fit(h, Options{Method: ChiMerge})
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("raw %s\nhist %s", ja, jb)
	}
}

func TestQuantileEdges(t *testing.T) {
	if e := QuantileEdges([]float64{3, 1, 2, 2, math.NaN(), 3}, 5); !slices.Equal(e, []float64{1, 2}) {
		t.Errorf("few distinct values: %v", e)
	}
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(i + 1)
	}
	if e := QuantileEdges(v, 4); !slices.Equal(e, []float64{25, 50, 75}) {
		t.Errorf("quartiles: %v", e)
	}
	if got := BinIndex([]float64{25, 50, 75}, 25); got != 0 {
		t.Errorf("value on an edge goes to bin %d, want 0 (upper-inclusive)", got)
	}
	if got := BinIndex([]float64{25, 50, 75}, math.NaN()); got != 4 {
		t.Errorf("missing goes to bin %d, want 4", got)
	}
}

func TestErrors(t *testing.T) {
	ok := func() *Hist {
		return &Hist{Feature: "f", Edges: []float64{1}, Good: []float64{5, 5}, Bad: []float64{1, 2}}
	}
	cases := []struct {
		name string
		mod  func(*Hist)
		o    Options
		want error
		bin  int
	}{
		{"shape", func(h *Hist) { h.Good = h.Good[:1] }, Options{}, ErrHist, -1},
		{"edges", func(h *Hist) { h.Edges = []float64{math.Inf(1)} }, Options{}, ErrHist, 0},
		{"nan-count", func(h *Hist) { h.Bad[1] = math.NaN() }, Options{}, ErrNotFinite, 1},
		{"one-class", func(h *Hist) { h.Bad = []float64{-3, 0} }, Options{}, ErrOneClass, -1},
		{"empty-cell", func(h *Hist) { h.Bad[0] = 0 }, Options{Method: EqualFrequency, MaxBins: 2, NoSmoothing: true}, ErrEmptyCell, 0},
		{"method", func(*Hist) {}, Options{Method: "best"}, ErrOptions, -1},
		{"max-bins", func(*Hist) {}, Options{MaxBins: -1}, ErrOptions, -1},
	}
	for _, c := range cases {
		h := ok()
		c.mod(h)
		_, err := Fit(h, c.o)
		var e *Error
		if !errors.Is(err, c.want) || !errors.As(err, &e) || e.Bin != c.bin || e.Feature != "f" {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := Count("f", nil, []float64{1}, []float64{2}); !errors.Is(err, ErrLabel) {
		t.Errorf("label 2: %v", err)
	}
}

// FuzzFit feeds arbitrary (noisy) histograms to every method: Fit must return an error or a binning
// whose edges are fine edges and whose WoE values are finite.
func FuzzFit(f *testing.F) {
	f.Add(10.0, 2.0, 5.0, 5.0, -1.0, 3.0, 0.0, 1.0, uint8(0))
	f.Add(80.0, 20.0, 120.0, 15.0, 200.0, 10.0, 30.0, 12.0, uint8(1))
	f.Add(40.7, 12.3, 61.2, 0.0, -2.5, 3.4, 0.0, 0.0, uint8(2))
	f.Fuzz(func(t *testing.T, g0, b0, g1, b1, g2, b2, mg, mb float64, m uint8) {
		h := &Hist{Edges: []float64{0, 1}, Good: []float64{g0, g1, g2}, Bad: []float64{b0, b1, b2}, MissingGood: mg, MissingBad: mb}
		methods := []Method{EqualFrequency, ChiMerge, MonotoneWoE}
		bn, err := Fit(h, Options{Method: methods[int(m)%3], MaxBins: 2})
		if err != nil {
			return
		}
		if !isSubset(bn.Edges, h.Edges) || len(bn.Bins) != len(bn.Edges)+1 || len(bn.Bins) > 2 {
			t.Fatalf("edges %v bins %d", bn.Edges, len(bn.Bins))
		}
		for i := range bn.NumBins() {
			if w := bn.Bin(i).WoE; math.IsNaN(w) || math.IsInf(w, 0) {
				t.Fatalf("bin %d WoE %v", i, w)
			}
		}
	})
}
