package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"insitu/plugins/sdk"
)

// A plugin that writes a training row into its weights lands far from the optimum.
func TestSmugglerRawRowsRefused(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{})
	e := cohort(6, 600, 200)
	opt := optimum(t, e, 1)
	row := func(i int) []float64 {
		x := make([]float64, len(e.Features))
		for k := range x {
			x[k] = e.TrainX[k][i]
		}
		return x
	}
	for _, c := range []struct {
		name string
		w    []float64
		b    float64
	}{
		{"row as weights", row(0), e.TrainY[0]},
		{"rows scaled into the weights", func() []float64 {
			w := slices.Clone(opt.Weights)
			for k, v := range row(3) {
				w[k] += 1.5 * v // the row, readable as (w − w*)/1.5 by whoever knows w*
			}
			return w
		}(), opt.Intercept},
	} {
		_, err := f.gate.Release(ctx, f.request(j, st, e, weightsOutput(e, c.w, c.b)))
		var re *RefusalError
		if !errors.As(err, &re) || (re.Code != CodeFarFromOptimum && re.Code != CodeExcessLoss) {
			t.Fatalf("%s: %v, want far_from_optimum or excess_loss", c.name, err)
		}
		want := "the weights are not near the optimum of the declared objective (tolerance: relative distance 0.6)"
		if re.Code == CodeExcessLoss {
			want = "the weights' objective exceeds the optimum's by more than the tolerance of 0.03 per row"
		}
		if re.Reason != want {
			t.Errorf("%s: reason %q, want %q", c.name, re.Reason, want)
		}
		if !strings.Contains(re.detail, "relative distance") && !strings.Contains(re.detail, "excess") {
			t.Errorf("%s: the stewards' detail %q lacks the measure", c.name, re.detail)
		}
	}

	// A plugin that writes rows into its scores: the released scores are the enclave's.
	out := weightsOutput(e, opt.Weights, opt.Intercept)
	for i := range 600 {
		out.Scores = append(out.Scores, sdk.Score{Subject: fmt.Sprintf("p%d", i), Value: e.TrainX[0][i]})
	}
	if _, err := f.gate.Release(ctx, f.request(j, st, e, out)); err != nil {
		t.Fatal(err)
	}
	sealed, _, _ := f.gate.Result(ctx, j.ID)
	b, err := OpenResult(sealed, f.bank)
	if err != nil {
		t.Fatal(err)
	}
	all := linearScores(e, b.Weights, 1e-4)
	for i, s := range b.Scores {
		k := slices.Index(e.Subjects, s.Subject)
		if k < 0 || s.Score != all[k] {
			t.Fatalf("score %d %+v is not the enclave's %v", i, s, all[k])
		}
	}
}

// A plugin that knows the optimum and hides a message in the weights, inside the tolerance: what its
// receiver decodes from the released, rounded weights is at most the receipt's bits bound.
func TestSmugglerInsideToleranceWithinBound(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	e := cohort(7, 800, 200)
	opt := optimum(t, e, 1)
	theta := append(slices.Clone(opt.Weights), opt.Intercept)
	step := 10.0 / 4096
	rng := rand.New(rand.NewPCG(11, 12))

	// The smuggler writes b bits per parameter as an offset of k·step, k ∈ [−2^(b−1), 2^(b−1)), from
	// the grid point nearest the optimum; it tries the largest b first, as a plugin probing the gate
	// would (a refusal leaves the job succeeded).
	for bits := 12; bits >= 1; bits-- {
		j, st := f.succeededJob(t, jobSpec{detail: fmt.Sprintf("smuggler %d", bits)})
		half := 1 << (bits - 1)
		msg := make([]int, len(theta))
		w := make([]float64, len(theta))
		for k := range theta {
			msg[k] = rng.IntN(2 * half)
			w[k] = roundTo(theta[k], step) + float64(msg[k]-half)*step
		}
		rec, err := f.gate.Release(ctx, f.request(j, st, e, weightsOutput(e, w[:6], w[6])))
		var re *RefusalError
		if errors.As(err, &re) && (re.Code == CodeFarFromOptimum || re.Code == CodeExcessLoss) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		// The receiver knows the optimum (worst case) and decodes.
		sealed, _, _ := f.gate.Result(ctx, j.ID)
		b, err := OpenResult(sealed, f.bank)
		if err != nil {
			t.Fatal(err)
		}
		released := append(slices.Clone(b.Weights.Values), b.Weights.Intercept)
		recovered := 0
		for k := range theta {
			got := int(math.Round((released[k]-roundTo(theta[k], step))/step)) + half
			if got == msg[k] {
				recovered += bits
			}
		}
		t.Logf("smuggler: %d bits per parameter accepted, %d bits recovered, receipt bound %.2f bits", bits, recovered, rec.Gate.BitsBound)
		if recovered != bits*len(theta) {
			t.Errorf("recovered %d bits of %d: the channel should be exact on the grid", recovered, bits*len(theta))
		}
		if float64(recovered) > rec.Gate.BitsBound {
			t.Errorf("recovered %d bits, more than the receipt's bound %.2f", recovered, rec.Gate.BitsBound)
		}
		if bits < 4 {
			t.Errorf("only %d bits per parameter accepted: the tolerance should leave the smuggler room, so the test means something", bits)
		}
		return
	}
	t.Fatal("no smuggled message was accepted")
}

func TestBitsBound(t *testing.T) {
	// Known values.
	for _, c := range []struct {
		d                    int
		radius, step, maxAbs float64
		want                 float64
	}{
		{1, 1, 0.5, 100, 2.33}, // 5 grid points in an interval of length 2: log2 5
		{3, 0, 1, 2, 6.97},     // waived: 5 values per coordinate, 3·log2 5
		{2, 10, 1, 2, 4.65},    // the max_abs box binds: 2·log2 5
		{1, 0.1, 1, 100, 0},    // less than a step: one point
	} {
		if got := BitsBound(c.d, c.radius, c.step, c.maxAbs); got != c.want {
			t.Errorf("BitsBound(%d, %v, %v, %v) = %v, want %v", c.d, c.radius, c.step, c.maxAbs, got, c.want)
		}
	}
	// The bound holds for the number of grid points within the radius of any centre.
	rng := rand.New(rand.NewPCG(3, 4))
	for _, d := range []int{1, 2, 3} {
		for _, r := range []float64{0.3, 1, 2.5, 6} {
			bound := BitsBound(d, r, 1, 1000)
			most := 0
			for range 300 {
				c := make([]float64, d)
				for k := range c {
					c[k] = rng.Float64() * 10
				}
				if n := gridPointsInBall(c, r); n > most {
					most = n
				}
			}
			if got := math.Log2(float64(most)); got > bound+1e-9 {
				t.Errorf("d=%d r=%v: %d grid points (%.3f bits) in a ball, bound %.3f", d, r, most, got, bound)
			}
		}
	}
	// For many parameters the volume bound is the tighter one.
	box := 24 * math.Log2(math.Floor(2*8.75/(10.0/4096))+1)
	if got := BitsBound(24, 8.75, 10.0/4096, 10); got >= box {
		t.Errorf("BitsBound for 24 parameters = %v, not below the coordinate-wise %v", got, box)
	}
}

// gridPointsInBall counts the points of the integer grid within distance r of c.
func gridPointsInBall(c []float64, r float64) int {
	var count func(k int, left float64) int
	count = func(k int, left float64) int {
		if k == len(c) {
			return 1
		}
		n := 0
		for v := math.Ceil(c[k] - r); v <= c[k]+r; v++ {
			if d2 := (v - c[k]) * (v - c[k]); d2 <= left {
				n += count(k+1, left-d2)
			}
		}
		return n
	}
	return count(0, r*r)
}

// A plaintext simulation of an HE training — Nesterov gradient descent on the mean loss with the
// degree-3 least-squares sigmoid of Kim et al. on [−8, 8], a fixed number of iterations — passes the
// default tolerances, although it is not at the optimum.
func TestHELikeRunPasses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	const l2 = 1e-3
	j, st := f.succeededJob(t, jobSpec{mode: sdk.ModeHE, hp: map[string]any{"l2": l2}})
	e := cohort(8, 1000, 250)
	n, d := len(e.TrainY), len(e.Features)
	sig3 := func(z float64) float64 { x := z / 8; return 0.5 + 1.20096*x - 0.81562*x*x*x }
	w, v := make([]float64, d+1), make([]float64, d+1)
	g0 := 0.0
	for range 20 {
		g := make([]float64, d+1)
		for i := range n {
			z := v[d]
			for k := range d {
				z += v[k] * e.TrainX[k][i]
			}
			r := sig3(z) - e.TrainY[i]
			for k := range d {
				g[k] += r * e.TrainX[k][i] / float64(n)
			}
			g[d] += r / float64(n)
		}
		for k := range d {
			g[k] += l2 * v[k]
		}
		g1 := (1 + math.Sqrt(1+4*g0*g0)) / 2
		for k := range w {
			next := v[k] - 2*g[k]
			v[k] = next + (g0-1)/g1*(next-w[k])
			w[k] = next
		}
		g0 = g1
	}
	opt := optimum(t, e, l2*float64(n))
	var dist, norm float64
	for k := range d {
		dist += (w[k] - opt.Weights[k]) * (w[k] - opt.Weights[k])
		norm += opt.Weights[k] * opt.Weights[k]
	}
	dist += (w[d] - opt.Intercept) * (w[d] - opt.Intercept)
	norm += opt.Intercept * opt.Intercept
	rel := math.Sqrt(dist / norm)
	t.Logf("simulated HE run: relative distance %.3f", rel)
	if rel < 0.02 {
		t.Fatalf("relative distance %.3f: the simulation should not reach the optimum", rel)
	}
	var key fakeKey
	r := f.request(j, st, e, heOutput(e, w[:d], w[d]))
	r.Decrypt = key.decrypt
	if _, err := f.gate.Release(ctx, r); err != nil {
		t.Fatalf("a genuine approximate run was refused: %v", err)
	}
}
