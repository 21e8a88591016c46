package model

import (
	"crypto/sha256"
	"testing"

	"insitu/plugins/sdk"
)

// FuzzParameters feeds arbitrary literals to the parameters parser: it returns parameters or an
// error, never panics, and what it accepts has at least two moduli and the literal's ring degree.
func FuzzParameters(f *testing.F) {
	for _, s := range []string{
		`{"log_n":14,"log_q":[55,45,45,45,45,45,45,45],"log_p":[61],"log_default_scale":45}`,
		`{"log_n":11,"log_q":[55,45,45,45,45,45,45,45],"log_p":[61],"log_default_scale":45,"insecure_for_testing":true}`,
		`{"log_n":10,"log_q":[55,45,45],"log_p":[61],"log_default_scale":45,"real_only":true}`,
		`{"log_n":14,"log_q":[55],"log_p":[],"log_default_scale":45,"extra":1}`,
		`{"log_n":99}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, lit []byte) {
		if len(lit) > 4096 {
			return
		}
		d := sha256.Sum256(lit)
		p, err := parameters(sdk.HEParameters{Literal: lit, Digest: d[:]})
		if err != nil {
			return
		}
		if p.MaxLevel() < 0 || p.LogN() < 10 || p.LogN() > 17 {
			t.Fatalf("accepted %s as log N %d, max level %d", lit, p.LogN(), p.MaxLevel())
		}
	})
}

func TestParametersDigestMismatch(t *testing.T) {
	lit := []byte(`{"log_n":11,"log_q":[55,45],"log_p":[61],"log_default_scale":45}`)
	if _, err := parameters(sdk.HEParameters{Literal: lit, Digest: make([]byte, 32)}); err == nil {
		t.Fatal("a literal whose digest does not match was accepted")
	}
}
