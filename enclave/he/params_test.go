package he

import (
	"errors"
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
)

// testInsecureLogN10 is a small parameter set for fast unit tests only: far below 128-bit security.
var testInsecureLogN10 = Literal{
	LogN:               10,
	LogQ:               []int{50, 40, 40},
	LogP:               []int{55},
	LogDefaultScale:    40,
	InsecureForTesting: true,
}

func TestDefaultParameters(t *testing.T) {
	p, err := NewParameters(DefaultLiteral)
	if err != nil {
		t.Fatal(err)
	}
	if p.Slots() != 8192 || p.MaxLevel() != 7 {
		t.Fatalf("slots %d levels %d, want 8192 and 7", p.Slots(), p.MaxLevel())
	}
	if !p.Secure() || math.Abs(p.LogQP()-431) > 1 {
		t.Fatalf("log QP %.1f secure=%v", p.LogQP(), p.Secure())
	}
	q, _ := NewParameters(DefaultLiteral)
	if p.Digest() != q.Digest() || len(p.Digest()) != 64 {
		t.Fatal("digest not stable")
	}
	real := DefaultLiteral
	real.RealOnly = true
	r, err := NewParameters(real)
	if err != nil {
		t.Fatal(err)
	}
	if r.Slots() != 16384 || r.Digest() == p.Digest() {
		t.Fatalf("real-only slots %d (want 16384) or digest unchanged", r.Slots())
	}
}

func TestRejectsInsecureAndMalformed(t *testing.T) {
	big := DefaultLiteral
	big.LogQ = append(append([]int(nil), big.LogQ...), 45) // 476 bits at log N 14
	if _, err := NewParameters(big); !errors.Is(err, ErrInsecure) {
		t.Fatalf("want ErrInsecure, got %v", err)
	}
	small := testInsecureLogN10
	small.InsecureForTesting = false
	if _, err := NewParameters(small); !errors.Is(err, ErrInsecure) {
		t.Fatalf("want ErrInsecure, got %v", err)
	}
	for _, l := range []Literal{
		{LogN: 9, LogQ: []int{50, 40}, LogP: []int{50}, LogDefaultScale: 40},
		{LogN: 14, LogQ: []int{50}, LogP: []int{50}, LogDefaultScale: 40},
		{LogN: 14, LogQ: []int{50, 40}, LogP: []int{50}, LogDefaultScale: 55},
		{LogN: 14, LogQ: []int{50, 70}, LogP: []int{50}, LogDefaultScale: 40},
	} {
		if _, err := NewParameters(l); err == nil {
			t.Errorf("accepted %+v", l)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	p, err := NewParameters(testInsecureLogN10)
	if err != nil {
		t.Fatal(err)
	}
	lp := p.lattigo()
	kg := rlwe.NewKeyGenerator(lp)
	sk, pk := kg.GenKeyPairNew()
	enc := hefloat.NewEncoder(lp)
	want := make([]float64, p.Slots())
	for i := range want {
		want[i] = math.Sin(float64(i)) * 4
	}
	pt := hefloat.NewPlaintext(lp, lp.MaxLevel())
	if err := enc.Encode(want, pt); err != nil {
		t.Fatal(err)
	}
	ct, err := rlwe.NewEncryptor(lp, pk).EncryptNew(pt)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float64, p.Slots())
	if err := enc.Decode(rlwe.NewDecryptor(lp, sk).DecryptNew(ct), got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Fatalf("slot %d: %g, want %g", i, got[i], want[i])
		}
	}
}
