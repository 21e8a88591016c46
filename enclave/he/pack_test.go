package he

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"insitu/plugins/sdk"
)

// testCohort returns a cohort of n samples with d features in [-1, 1] and [0, 4] alternately.
func testCohort(n, d int, seed uint64) Cohort {
	rng := rand.New(rand.NewPCG(seed, 7))
	c := Cohort{Y: make([]float64, n)}
	for j := range d {
		c.Features = append(c.Features, fmt.Sprintf("f%d", j))
		lo, hi := -1.0, 1.0
		if j%2 == 1 {
			lo, hi = 0, 4
		}
		c.Bounds = append(c.Bounds, [2]float64{lo, hi})
		col := make([]float64, n)
		for i := range col {
			col[i] = lo + (hi-lo)*rng.Float64()
		}
		c.X = append(c.X, col)
	}
	for i := range c.Y {
		c.Y[i] = float64(rng.IntN(2))
	}
	return c
}

// packingError is the largest error a packed value may decrypt with on the test parameters
// (scale 2^40: fresh encryption noise is about 2^-30 per slot).
const packingError = 1e-6

func TestBatchesRoundTrip(t *testing.T) {
	eachTestRing(t, func(t *testing.T, k *JobKeys) {
		s := k.params.Slots()
		for _, withLabel := range []bool{true, false} {
			c := testCohort(2*s+s/3, 3, 1)
			if !withLabel {
				c.Y = nil
			}
			rr, err := k.Batches(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			in := &sdk.TrainInput{Mode: sdk.ModeHE, Rows: rr, Features: c.Features, HE: k.NewRefresher(0)}
			if withLabel {
				in.Label = sdk.HELabel
			}
			got, err := sdk.ReadHEBatches(context.Background(), in)
			rr.Release()
			if err != nil {
				t.Fatal(err)
			}
			if got.Rows != c.Len() || got.Slots != s || len(got.Blocks) != 3 || got.ParamsDigest != k.params.Digest() {
				t.Fatalf("read %d rows, %d slots, %d blocks", got.Rows, got.Slots, len(got.Blocks))
			}
			worst := 0.0
			check := func(b int, name string, data []byte, src []float64) {
				ct, dec := decryptAll(t, k, data)
				if ct.Level() != k.params.MaxLevel() || ct.Scale.Cmp(k.params.lattigo().DefaultScale()) != 0 {
					t.Fatalf("block %d %s: level %d, want the top level %d at the default scale", b, name, ct.Level(), k.params.MaxLevel())
				}
				for i := range s {
					want := 0.0
					if at := b*s + i; i < got.Blocks[b].Rows {
						want = src[at]
					}
					worst = max(worst, math.Abs(dec[i]-want))
					if math.Abs(dec[i]-want) > packingError {
						t.Fatalf("block %d %s slot %d: %g, want %g", b, name, i, dec[i], want)
					}
				}
			}
			for b, blk := range got.Blocks {
				for j, data := range blk.Features {
					check(b, c.Features[j], data, c.X[j])
				}
				if withLabel {
					check(b, sdk.HELabel, blk.Label, c.Y)
				} else if blk.Label != nil {
					t.Fatal("label ciphertext without labels")
				}
			}
			t.Logf("label=%v: largest packing error %.2g", withLabel, worst)
		}
	})
}

func TestBatchesStopEarly(t *testing.T) {
	k := testKeys(t, testInsecureLogN10)
	c := testCohort(3*k.params.Slots(), 4, 2)
	rr, err := k.Batches(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !rr.Next() || rr.Record().NumRows() != 1 {
		t.Fatal("no first record")
	}
	rr.Release() // stops the workers (Release waits for them)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rr, err = k.Batches(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	n := 0
	for rr.Next() {
		if n++; n == 2 {
			cancel()
		}
	}
	if !errors.Is(rr.Err(), context.Canceled) || n != 2 {
		t.Fatalf("after cancel: %d records, err %v", n, rr.Err())
	}
}

func TestCohortCheck(t *testing.T) {
	k := testKeys(t, testInsecureLogN10)
	const secret = 0.123456789
	cases := map[string]struct {
		edit    func(c *Cohort)
		feature string
		row     int
		rule    string
	}{
		"above bound":  {func(c *Cohort) { c.X[1][4] = 4 + secret }, "f1", 5, "bounds"},
		"below bound":  {func(c *Cohort) { c.X[0][0] = -1 - secret }, "f0", 1, "bounds"},
		"NaN":          {func(c *Cohort) { c.X[2][9] = math.NaN() }, "f2", 10, "bounds"},
		"label":        {func(c *Cohort) { c.Y[3] = secret }, sdk.HELabel, 4, "0 or 1"},
		"labels short": {func(c *Cohort) { c.Y = c.Y[:5] }, sdk.HELabel, 0, "5 labels for 20"},
		"ragged":       {func(c *Cohort) { c.X[2] = c.X[2][:19] }, "f2", 0, "19 samples"},
		"columns":      {func(c *Cohort) { c.X = c.X[:2] }, "", 0, "2 feature columns for 3"},
		"bounds":       {func(c *Cohort) { c.Bounds[0] = [2]float64{1, -1} }, "", 0, "lo ≤ hi"},
		"label name":   {func(c *Cohort) { c.Features[1] = sdk.HELabel }, "", 0, "name of the label"},
		"empty":        {func(c *Cohort) { c.X = [][]float64{nil, nil, nil} }, "", 0, "0 samples"},
	}
	for name, tc := range cases {
		c := testCohort(20, 3, 3)
		tc.edit(&c)
		err := c.Check(k.params)
		var ce *CohortError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCohort) || ce.Feature != tc.feature || ce.Row != tc.row || !strings.Contains(ce.Rule, tc.rule) {
			t.Errorf("%s: got %v, want feature %q row %d rule %q", name, err, tc.feature, tc.row, tc.rule)
			continue
		}
		if strings.Contains(err.Error(), "123456") {
			t.Errorf("%s: the error shows the value: %v", name, err)
		}
		if _, err := k.Batches(context.Background(), c); !errors.Is(err, ErrCohort) {
			t.Errorf("%s: Batches accepted the cohort: %v", name, err)
		}
	}
	c := testCohort(20, 3, 3)
	if err := c.Check(k.params); err != nil {
		t.Fatal(err)
	}
}
