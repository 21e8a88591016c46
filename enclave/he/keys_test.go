package he

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"

	"insitu/plugins/sdk"
)

// testInsecureLogN10Real is testInsecureLogN10 on the real-only ring (1024 slots): unit tests only.
var testInsecureLogN10Real = Literal{
	LogN:               10,
	LogQ:               []int{50, 40, 40},
	LogP:               []int{55},
	LogDefaultScale:    40,
	RealOnly:           true,
	InsecureForTesting: true,
}

func testKeys(t testing.TB, l Literal) *JobKeys {
	t.Helper()
	p, err := NewParameters(l)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewJobKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// encryptAt encrypts values (padded with zeros) under k's public key, at the given level.
func encryptAt(t testing.TB, k *JobKeys, values []float64, level int) *rlwe.Ciphertext {
	t.Helper()
	lp := k.params.lattigo()
	v := make([]float64, k.params.Slots())
	copy(v, values)
	pt := hefloat.NewPlaintext(lp, level)
	if err := hefloat.NewEncoder(lp).Encode(v, pt); err != nil {
		t.Fatal(err)
	}
	ct, err := rlwe.NewEncryptor(lp, k.pk).EncryptNew(pt)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func marshal(t testing.TB, ct *rlwe.Ciphertext) []byte {
	t.Helper()
	b, err := ct.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decryptAll decrypts a marshalled ciphertext and returns the real parts of all its slots.
func decryptAll(t testing.TB, k *JobKeys, data []byte) (*rlwe.Ciphertext, []float64) {
	t.Helper()
	ct, err := UnmarshalCiphertext(k.params, data)
	if err != nil {
		t.Fatal(err)
	}
	c := &refreshCoder{coder: k.newCoder(), pt: rlwe.NewPlaintext(k.params.lattigo(), k.params.MaxLevel())}
	if err := k.decrypt(ct, c); err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(c.values)
	for i, v := range c.cvalues {
		out[i] = real(v)
	}
	return ct, out
}

func eachTestRing(t *testing.T, f func(t *testing.T, k *JobKeys)) {
	for _, l := range []Literal{testInsecureLogN10, testInsecureLogN10Real} {
		t.Run(fmt.Sprintf("real=%v", l.RealOnly), func(t *testing.T) { f(t, testKeys(t, l)) })
	}
}

func TestEvaluationKeys(t *testing.T) {
	eachTestRing(t, func(t *testing.T, k *JobKeys) {
		data, err := k.MarshalEvaluationKeys()
		if err != nil {
			t.Fatal(err)
		}
		evk := new(rlwe.MemEvaluationKeySet)
		if err := evk.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		// Exactly the relinearisation key and one Galois key per rotation 2^k, k < log2(slots).
		if _, err := evk.GetRelinearizationKey(); err != nil {
			t.Fatal("no relinearisation key")
		}
		lp := k.params.lattigo()
		var want []uint64
		for r := 1; r < k.params.Slots(); r <<= 1 {
			want = append(want, lp.GaloisElement(r))
		}
		got := evk.GetGaloisKeysList()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("Galois elements %v, want %v", got, want)
		}

		// The keys work: InnerSum over all slots (rotations by every power of two) sums the vector.
		vals := make([]float64, k.params.Slots())
		sum := 0.0
		for i := range vals {
			vals[i] = math.Sin(float64(i))
			sum += vals[i]
		}
		ct := encryptAt(t, k, vals, lp.MaxLevel())
		ev := hefloat.NewEvaluator(lp, evk)
		if err := ev.InnerSum(ct, 1, k.params.Slots(), ct); err != nil {
			t.Fatal(err)
		}
		sq, err := ev.MulRelinNew(ct, ct)
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.Rescale(sq, sq); err != nil {
			t.Fatal(err)
		}
		_, dec := decryptAll(t, k, marshal(t, sq))
		if math.Abs(dec[0]-sum*sum) > 1e-3 || math.Abs(dec[len(dec)-1]-sum*sum) > 1e-3 {
			t.Fatalf("InnerSum² gives %g and %g, want %g", dec[0], dec[len(dec)-1], sum*sum)
		}

		// No 64-bit word of the secret key, in the NTT and Montgomery form it is stored in or in
		// coefficient form, appears at any byte offset of the evaluation keys, in either byte order.
		// (Words below 2^32 are skipped: a ternary key's coefficient form is made of 0, 1 and q-1.)
		words := map[uint64]bool{}
		add := func(v uint64) {
			if v >= 1<<32 {
				words[v] = true
				words[binary.BigEndian.Uint64(binary.LittleEndian.AppendUint64(nil, v))] = true
			}
		}
		for _, pol := range k.sk.Value.Q.Coeffs {
			for _, v := range pol {
				add(v)
			}
		}
		for _, pol := range k.sk.Value.P.Coeffs {
			for _, v := range pol {
				add(v)
			}
		}
		coeff := k.sk.CopyNew()
		rq := lp.RingQ()
		rq.IMForm(coeff.Value.Q, coeff.Value.Q)
		rq.INTT(coeff.Value.Q, coeff.Value.Q)
		for _, pol := range coeff.Value.Q.Coeffs {
			for _, v := range pol {
				add(v)
			}
		}
		if len(words) < 1000 {
			t.Fatalf("only %d secret-key words to look for", len(words))
		}
		for i := 0; i+8 <= len(data); i++ {
			if words[binary.LittleEndian.Uint64(data[i:])] {
				t.Fatalf("a 64-bit word of the secret key appears at byte %d of the evaluation keys", i)
			}
		}
		skBytes, err := k.sk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, skBytes[:64]) {
			t.Fatal("the evaluation keys contain the marshalled secret key")
		}
		// The refresher hands out the same keys.
		got2, err := k.NewRefresher(0).EvaluationKeys(context.Background())
		if err != nil || !bytes.Equal(got2, data) {
			t.Fatalf("refresher evaluation keys differ (%v)", err)
		}
	})
}

func TestRefresh(t *testing.T) {
	eachTestRing(t, func(t *testing.T, k *JobKeys) {
		lp := k.params.lattigo()
		evk := new(rlwe.MemEvaluationKeySet)
		data, _ := k.MarshalEvaluationKeys()
		if err := evk.UnmarshalBinary(data); err != nil {
			t.Fatal(err)
		}
		ev := hefloat.NewEvaluator(lp, evk)
		rng := rand.New(rand.NewPCG(1, 2))
		vals := make([]float64, k.params.Slots())
		for i := range vals {
			vals[i] = 2*rng.Float64() - 1
		}
		ct := encryptAt(t, k, vals, lp.MaxLevel())
		sq, err := ev.MulRelinNew(ct, ct)
		if err != nil {
			t.Fatal(err)
		}
		if err := ev.Rescale(sq, sq); err != nil {
			t.Fatal(err)
		}
		atZero := encryptAt(t, k, vals, 0)
		r := k.NewRefresher(10)
		for name, c := range map[string]struct {
			ct   *rlwe.Ciphertext
			want func(float64) float64
		}{
			"squared at level 1": {sq, func(v float64) float64 { return v * v }},
			"fresh at level 0":   {atZero, func(v float64) float64 { return v }},
		} {
			out, err := r.Refresh(context.Background(), marshal(t, c.ct))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, dec := decryptAll(t, k, out)
			if got.Level() != lp.MaxLevel() || got.Scale.Cmp(lp.DefaultScale()) != 0 {
				t.Fatalf("%s: refreshed to level %d scale 2^%.1f, want level %d scale 2^%d", name, got.Level(), math.Log2(got.Scale.Float64()), lp.MaxLevel(), k.params.lit.LogDefaultScale)
			}
			for i, v := range vals {
				if math.Abs(dec[i]-c.want(v)) > 1e-5 {
					t.Fatalf("%s: slot %d decrypts to %g, want %g (error bound 1e-5)", name, i, dec[i], c.want(v))
				}
			}
		}
		if r.Calls() != 2 || r.Refreshes() != 2 {
			t.Fatalf("calls %d refreshes %d, want 2 and 2", r.Calls(), r.Refreshes())
		}

		// Values far outside any useful range (scale 1 makes every slot huge) refresh without error,
		// clamped: the service does not react to what the slots hold.
		huge := encryptAt(t, k, vals, 1)
		huge.Scale = rlwe.NewScale(1)
		out, err := r.Refresh(context.Background(), marshal(t, huge))
		if err != nil {
			t.Fatalf("huge values: %v", err)
		}
		_, dec := decryptAll(t, k, out)
		bound := k.params.clampBound()
		for i := range dec {
			if math.Abs(dec[i]) > bound*(1+1e-6) {
				t.Fatalf("slot %d is %g after refresh, beyond the clamp %g", i, dec[i], bound)
			}
		}
	})
}

func TestRefreshBudget(t *testing.T) {
	k := testKeys(t, testInsecureLogN10Real)
	ct := marshal(t, encryptAt(t, k, []float64{1, 2}, 1))
	r := k.NewRefresher(2)
	ctx := context.Background()
	if _, err := r.Refresh(ctx, []byte("junk")); !errors.Is(err, ErrMalformedCiphertext) {
		t.Fatalf("junk: %v", err)
	}
	if _, err := r.Refresh(ctx, ct); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.Refresh(ctx, ct); !errors.Is(err, ErrRefreshBudget) {
			t.Fatalf("beyond the budget: %v", err)
		}
	}
	if r.Calls() != 4 || r.Refreshes() != 1 || r.Max() != 2 {
		t.Fatalf("calls %d refreshes %d max %d", r.Calls(), r.Refreshes(), r.Max())
	}
	if _, err := k.NewRefresher(0).Refresh(ctx, ct); !errors.Is(err, ErrRefreshBudget) {
		t.Fatalf("budget 0: %v", err)
	}
}

// malformed returns variants of a valid marshalled ciphertext that UnmarshalCiphertext must refuse.
func malformed(t testing.TB, k *JobKeys) map[string][]byte {
	lp := k.params.lattigo()
	good := encryptAt(t, k, []float64{0.5}, 1)
	valid := marshal(t, good)
	edit := func(f func(ct *rlwe.Ciphertext)) []byte {
		c := good.CopyNew()
		f(c)
		return marshal(t, c)
	}
	header := 1 + metaDataBytes
	setU64 := func(off int, v uint64) []byte {
		b := slices.Clone(valid)
		binary.LittleEndian.PutUint64(b[off:], v)
		return b
	}
	ev := hefloat.NewEvaluator(lp, nil)
	deg2, err := ev.MulNew(good, good)
	if err != nil {
		t.Fatal(err)
	}
	other := testInsecureLogN10
	other.LogN = 11
	op, err := NewParameters(other)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := NewJobKeys(op)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"empty":              nil,
		"junk":               []byte("not a ciphertext at all, but long enough to pass a first length check: " + strings.Repeat("x", 200)),
		"truncated":          valid[:len(valid)-1],
		"trailing":           append(slices.Clone(valid), 0),
		"no metadata":        append([]byte{0}, valid[1:]...),
		"degree 2":           marshal(t, deg2),
		"other ring degree":  marshal(t, encryptAt(t, ok, []float64{1}, 1)),
		"huge moduli count":  setU64(header+8, 1<<40),
		"huge ring degree":   setU64(header+16, 1<<40),
		"huge poly count":    setU64(header, 1<<40),
		"level too high":     setU64(header+8, uint64(lp.MaxLevel()+2)),
		"unreduced":          edit(func(c *rlwe.Ciphertext) { c.Value[1].Coeffs[1][7] = lp.Q()[1] }),
		"not NTT":            edit(func(c *rlwe.Ciphertext) { c.IsNTT = false }),
		"Montgomery":         edit(func(c *rlwe.Ciphertext) { c.IsMontgomery = true }),
		"not batched":        edit(func(c *rlwe.Ciphertext) { c.IsBatched = false }),
		"fewer slots":        edit(func(c *rlwe.Ciphertext) { c.LogDimensions.Cols-- }),
		"scale below 1":      edit(func(c *rlwe.Ciphertext) { c.Scale = rlwe.NewScale(0.5) }),
		"scale 0":            edit(func(c *rlwe.Ciphertext) { c.Scale = rlwe.NewScale(0) }),
		"scale with modulus": edit(func(c *rlwe.Ciphertext) { c.Scale = rlwe.NewScaleModT(3, 65537) }),
	}
}

func TestUnmarshalCiphertextRefuses(t *testing.T) {
	eachTestRing(t, func(t *testing.T, k *JobKeys) {
		r := k.NewRefresher(100)
		for name, data := range malformed(t, k) {
			_, err := r.Refresh(context.Background(), data)
			if !errors.Is(err, ErrMalformedCiphertext) {
				t.Errorf("%s: got %v, want ErrMalformedCiphertext", name, err)
			}
			if _, err := k.DecryptSlot0(data); !errors.Is(err, ErrMalformedCiphertext) {
				t.Errorf("%s: DecryptSlot0 got %v", name, err)
			}
		}
		if r.Refreshes() != 0 {
			t.Fatalf("%d malformed ciphertexts refreshed", r.Refreshes())
		}
	})
}

func FuzzUnmarshalCiphertext(f *testing.F) {
	k := testKeys(f, testInsecureLogN10Real)
	for _, data := range malformed(f, k) {
		f.Add(data)
	}
	for level := range k.params.MaxLevel() + 1 {
		f.Add(marshal(f, encryptAt(f, k, []float64{0.25, -3}, level)))
	}
	r := k.NewRefresher(math.MaxInt32)
	f.Fuzz(func(t *testing.T, data []byte) {
		ct, err := UnmarshalCiphertext(k.params, data)
		if err != nil {
			if !errors.Is(err, ErrMalformedCiphertext) {
				t.Fatalf("error %v does not wrap ErrMalformedCiphertext", err)
			}
			return
		}
		if ct.Degree() != 1 || ct.Level() > k.params.MaxLevel() {
			t.Fatalf("accepted degree %d level %d", ct.Degree(), ct.Level())
		}
		// Whatever was accepted refreshes: the service never fails on the values.
		if _, err := r.Refresh(context.Background(), data); err != nil {
			t.Fatalf("accepted but not refreshed: %v", err)
		}
	})
}

func TestDecryptWeights(t *testing.T) {
	k := testKeys(t, testInsecureLogN10)
	features := []string{"age", "debt"}
	enc := func(v float64) []byte { return marshal(t, encryptAt(t, k, []float64{v, 99, 99}, 1)) }
	cts := []sdk.Ciphertext{
		{Name: sdk.HEOutputIntercept, Data: enc(-0.75)},
		{Name: "weight/debt", Data: enc(2.5)},
		{Name: "weight/age", Data: enc(0.125)},
	}
	w, err := k.DecryptWeights(cts, features)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.Names, features) || math.Abs(w.Values[0]-0.125) > 1e-6 || math.Abs(w.Values[1]-2.5) > 1e-6 || math.Abs(w.Intercept+0.75) > 1e-6 {
		t.Fatalf("weights %+v", w)
	}
	for name, bad := range map[string][]sdk.Ciphertext{
		"missing":   cts[:2],
		"extra":     append(slices.Clone(cts), sdk.Ciphertext{Name: "weight/income", Data: cts[0].Data}),
		"repeated":  append(slices.Clone(cts), cts[1]),
		"unrelated": append(slices.Clone(cts[:2]), sdk.Ciphertext{Name: "scores", Data: cts[0].Data}),
	} {
		if _, err := k.DecryptWeights(bad, features); !errors.Is(err, ErrOutputNames) {
			t.Errorf("%s: got %v, want ErrOutputNames", name, err)
		}
	}
	garbled := slices.Clone(cts)
	garbled[1].Data = garbled[1].Data[:100]
	if _, err := k.DecryptWeights(garbled, features); !errors.Is(err, ErrMalformedCiphertext) || !strings.Contains(err.Error(), "weight/debt") {
		t.Errorf("garbled: %v", err)
	}
	k.Close()
	if _, err := k.DecryptSlot0(cts[0].Data); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := k.NewRefresher(1).Refresh(context.Background(), cts[0].Data); !errors.Is(err, ErrClosed) {
		t.Fatalf("refresh after Close: %v", err)
	}
}
