package he

import (
	"encoding/hex"
	"encoding/json"
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
	if p.Slots() != 16384 || p.MaxLevel() != 7 || !p.Literal().RealOnly {
		t.Fatalf("slots %d levels %d real-only %v, want 16384, 7 and the real-only ring", p.Slots(), p.MaxLevel(), p.Literal().RealOnly)
	}
	if !p.Secure() || math.Abs(p.LogQP()-431) > 1 {
		t.Fatalf("log QP %.1f secure=%v", p.LogQP(), p.Secure())
	}
	q, _ := NewParameters(DefaultLiteral)
	if p.Digest() != q.Digest() || len(p.Digest()) != 64 {
		t.Fatal("digest not stable")
	}
	std := DefaultLiteral
	std.RealOnly = false
	r, err := NewParameters(std)
	if err != nil {
		t.Fatal(err)
	}
	if r.Slots() != 8192 || r.Digest() == p.Digest() {
		t.Fatalf("standard-ring slots %d (want 8192) or digest unchanged", r.Slots())
	}
	// The plugin's view: the canonical literal JSON and its SHA-256, which the digest is the hex of.
	h := p.SDK()
	if err := h.Check(); err != nil || hex.EncodeToString(h.Digest) != p.Digest() {
		t.Fatalf("SDK parameters %s: %v", h.Literal, err)
	}
	var back Literal
	if err := json.Unmarshal(h.Literal, &back); err != nil || !back.RealOnly || back.LogN != 14 || len(back.LogQ) != 8 {
		t.Fatalf("literal %s does not decode back (%v)", h.Literal, err)
	}
	if want := `{"log_n":14,"log_q":[55,45,45,45,45,45,45,45],"log_p":[61],"log_default_scale":45,"real_only":true}`; string(h.Literal) != want {
		t.Fatalf("literal JSON %s, want %s", h.Literal, want)
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
