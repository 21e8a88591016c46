package ident

import (
	"bufio"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

type vector struct {
	kind  Kind
	value string
	want  string
	note  string
	line  int
}

func loadVectors(t testing.TB) []vector {
	f, err := os.Open("testdata/vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	line := 0
	header := true
	for sc.Scan() {
		line++
		l := sc.Text()
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		if header {
			header = false
			continue
		}
		p := strings.Split(l, "\t")
		if len(p) != 4 {
			t.Fatalf("vectors.tsv:%d: want 4 tab-separated fields, got %d", line, len(p))
		}
		k, err := ParseKind(p[0])
		if err != nil {
			t.Fatalf("vectors.tsv:%d: %v", line, err)
		}
		vs = append(vs, vector{k, p[1], p[2], p[3], line})
	}
	if len(vs) < 20 {
		t.Fatalf("only %d vectors loaded", len(vs))
	}
	return vs
}

func TestKnownAnswers(t *testing.T) {
	for _, v := range loadVectors(t) {
		err := Validate(v.kind, v.value)
		if v.want == "ok" {
			if err != nil {
				t.Errorf("vectors.tsv:%d %s %q (%s): %v", v.line, v.kind, v.value, v.note, err)
			}
			continue
		}
		var ie *Error
		if !errors.As(err, &ie) {
			t.Errorf("vectors.tsv:%d %s %q (%s): got %v, want rule %s", v.line, v.kind, v.value, v.note, err, v.want)
			continue
		}
		if ie.Rule != v.want {
			t.Errorf("vectors.tsv:%d %s %q (%s): rule %s, want %s (%v)", v.line, v.kind, v.value, v.note, ie.Rule, v.want, err)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("vectors.tsv:%d: error does not wrap ErrInvalid", v.line)
		}
	}
}

func TestResidentIDErrorsAreMasked(t *testing.T) {
	err := Validate(KindResidentID, "110105194912310021")
	if err == nil || strings.Contains(err.Error(), "110105194912310021") {
		t.Fatalf("error must mask the identifier: %v", err)
	}
	if !strings.Contains(err.Error(), "1101**********0021") {
		t.Fatalf("masked form missing: %v", err)
	}
}

func TestGeneratedAreValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		u := NewUSCC(rng, "330100")
		if err := Validate(KindUSCC, u); err != nil {
			t.Fatal(err)
		}
		seen[u] = true
		b := time.Date(1950+rng.IntN(50), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		id := NewResidentID(rng, "110105", b, i%2 == 0)
		if err := Validate(KindResidentID, id); err != nil {
			t.Fatal(err)
		}
		got, _ := ResidentIDBirthDate(id)
		if !got.Equal(b) {
			t.Fatalf("birth date %v, want %v", got, b)
		}
		if sex := int(id[16]-'0') % 2; (sex == 0) != (i%2 == 0) {
			t.Fatalf("%s: sequence parity does not encode sex", Mask(id))
		}
	}
	if len(seen) < 1990 {
		t.Fatalf("only %d distinct codes out of 2000", len(seen))
	}
}

// A single-character change is always caught by the mod-31 check (GB 32100 detects all single
// substitutions).
func TestUSCCDetectsEverySubstitution(t *testing.T) {
	base := "91330100716105852F"
	for i := 0; i < 18; i++ {
		for _, c := range []byte(usccAlphabet) {
			if c == base[i] {
				continue
			}
			s := base[:i] + string(c) + base[i+1:]
			if Validate(KindUSCC, s) == nil {
				t.Fatalf("substitution at %d to %q not detected", i+1, c)
			}
		}
	}
}

func TestPseudonym(t *testing.T) {
	k1 := make([]byte, 32)
	k2 := make([]byte, 32)
	k2[0] = 1
	p1, _ := NewPseudonymizer(k1)
	p2, _ := NewPseudonymizer(k2)
	a, err := p1.Pseudonym(KindResidentID, "11010519491231002x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p1.Pseudonym(KindResidentID, "11010519491231002X")
	c, _ := p2.Pseudonym(KindResidentID, "11010519491231002X")
	if a != b {
		t.Fatal("normalised forms must give the same pseudonym")
	}
	if a == c {
		t.Fatal("different keys must give different pseudonyms")
	}
	if !strings.HasPrefix(a, "p_") || len(a) != 45 || strings.Contains(a, "1101") {
		t.Fatalf("unexpected pseudonym form %q", a)
	}
	// Same string under another kind is another subject.
	d, _ := p1.Pseudonym(KindOpaque, "11010519491231002X")
	if d == b {
		t.Fatal("kind must be bound into the pseudonym")
	}
	if _, err := p1.Pseudonym(KindUSCC, "bad"); err == nil {
		t.Fatal("invalid identifier must not get a pseudonym")
	}
	if _, err := NewPseudonymizer(k1[:16]); err == nil {
		t.Fatal("short key accepted")
	}
}

func FuzzValidate(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(string(v.kind), v.value)
	}
	f.Fuzz(func(t *testing.T, kind, s string) {
		k, err := ParseKind(kind)
		if err != nil {
			return
		}
		n, err := Normalize(k, s)
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) || ie.Rule == "" {
				t.Fatalf("error without rule: %v", err)
			}
			if k == KindResidentID && len(s) >= 10 && strings.Contains(err.Error(), strings.TrimSpace(s)) {
				t.Fatalf("unmasked resident id in error: %v", err)
			}
			return
		}
		// A valid identifier is stable under normalisation and, for structured kinds, its check
		// character is the computed one.
		if n2, err := Normalize(k, n); err != nil || n2 != n {
			t.Fatalf("normalise not idempotent: %q -> %q (%v)", n, n2, err)
		}
		switch k {
		case KindUSCC:
			if c, _ := USCCCheck(n[:17]); c != n[17] {
				t.Fatalf("accepted %q with wrong check", n)
			}
		case KindResidentID:
			if c, _ := ResidentIDCheck(n[:17]); c != n[17] {
				t.Fatalf("accepted %q with wrong check", n)
			}
		}
	})
}
