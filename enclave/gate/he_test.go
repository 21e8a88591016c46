package gate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"insitu/enclave/keys"
	"insitu/plugins/sdk"
)

// fakeCiphertext stands for a ciphertext whose slot 0 holds v: the test's Decrypt reads it back with
// a CKKS-sized error.
func fakeCiphertext(v float64) []byte {
	return binary.BigEndian.AppendUint64([]byte("ct"), math.Float64bits(v))
}

type fakeKey struct{ calls int }

func (k *fakeKey) decrypt(ct []byte) (float64, error) {
	k.calls++
	if len(ct) != 10 || string(ct[:2]) != "ct" {
		return 0, errors.New("ciphertext does not unmarshal")
	}
	return math.Float64frombits(binary.BigEndian.Uint64(ct[2:])) + 3e-7, nil
}

func heOutput(e *Evaluation, w []float64, b float64) *sdk.Output {
	o := &sdk.Output{}
	for j, f := range e.Features {
		o.Ciphertexts = append(o.Ciphertexts, sdk.Ciphertext{Name: CiphertextWeightPrefix + f, Data: fakeCiphertext(w[j])})
	}
	o.Ciphertexts = append(o.Ciphertexts, sdk.Ciphertext{Name: CiphertextIntercept, Data: fakeCiphertext(b)})
	return o
}

func TestReleaseHE(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	j, st := f.succeededJob(t, jobSpec{mode: sdk.ModeHE, hp: map[string]any{"l2": 0.002, "iterations": 9.0}})
	e := cohort(5, 500, 150)
	opt := optimum(t, e, 0.002*500) // l2 is the mean-loss penalty: λ = l2·n
	var key fakeKey

	refusals := []struct {
		name string
		out  *sdk.Output
		code Code
	}{
		{"extra ciphertext", func() *sdk.Output {
			o := heOutput(e, opt.Weights, opt.Intercept)
			o.Ciphertexts = append(o.Ciphertexts, sdk.Ciphertext{Name: "row/17", Data: fakeCiphertext(0.3)})
			return o
		}(), CodeUndeclaredCiphertext},
		{"missing intercept", func() *sdk.Output {
			o := heOutput(e, opt.Weights, opt.Intercept)
			o.Ciphertexts = o.Ciphertexts[:len(o.Ciphertexts)-1]
			return o
		}(), CodeMissingCiphertext},
		{"plaintext weights", func() *sdk.Output {
			o := heOutput(e, opt.Weights, opt.Intercept)
			o.Weights = &sdk.Weights{Names: e.Features, Values: opt.Weights}
			return o
		}(), CodePlaintextWeightsInHE},
		{"bad ciphertext", func() *sdk.Output {
			o := heOutput(e, opt.Weights, opt.Intercept)
			o.Ciphertexts[2].Data = []byte("garbage")
			return o
		}(), CodeCiphertext},
	}
	for _, c := range refusals {
		key.calls = 0
		r := f.request(j, st, e, c.out)
		r.Decrypt = key.decrypt
		_, err := f.gate.Release(ctx, r)
		var re *RefusalError
		if !errors.As(err, &re) || re.Code != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
		if c.code != CodeCiphertext && key.calls != 0 {
			t.Errorf("%s: %d ciphertexts decrypted before the refusal", c.name, key.calls)
		}
	}

	key.calls = 0
	r := f.request(j, st, e, heOutput(e, opt.Weights, opt.Intercept))
	r.Decrypt = key.decrypt
	rec, err := f.gate.Release(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if key.calls != 7 {
		t.Errorf("%d decryptions, want 7 (6 weights and the intercept)", key.calls)
	}
	if rec.Mode != "he" || rec.Gate.Lambda != 1 || rec.Gate.Result != VerdictVerified {
		t.Errorf("receipt mode %s verdict %+v", rec.Mode, rec.Gate)
	}
	sealed, receipt, err := f.gate.Result(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := VerifyReceipt(receipt, f.encl.Public(), VerifyOptions{Stewards: []keys.PublicIdentity{f.steward.Public(), f.steward2.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenResult(sealed, f.bank)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(vr); err != nil {
		t.Fatal(err)
	}
	for k, v := range b.Weights.Values {
		if want := roundTo(opt.Weights[k]+3e-7, rec.Gate.Step); v != want {
			t.Errorf("weight %d: %v, want %v", k, v, want)
		}
	}
	if got := fmt.Sprint(len(b.Scores)); got != "650" {
		t.Errorf("%s scores", got)
	}
}
