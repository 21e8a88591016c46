package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"

	"insitu/plugins/sdk"
)

// literal is the enclave's CKKS parameters literal as a plugin receives it (sdk.HEParameters.Literal).
type literal struct {
	LogN               int   `json:"log_n"`
	LogQ               []int `json:"log_q"`
	LogP               []int `json:"log_p"`
	LogDefaultScale    int   `json:"log_default_scale"`
	RealOnly           bool  `json:"real_only,omitempty"`
	InsecureForTesting bool  `json:"insecure_for_testing,omitempty"`
}

// parameters checks the job's parameters against their digest and rebuilds the lattigo parameters
// from the literal: the conjugate-invariant ring when real_only, lattigo's default secret and error
// distributions.
func parameters(hp sdk.HEParameters) (hefloat.Parameters, error) {
	bad := func(format string, args ...any) error {
		return &sdk.Error{Err: sdk.ErrInput, Detail: "HE parameters: " + fmt.Sprintf(format, args...)}
	}
	if err := hp.Check(); err != nil {
		return hefloat.Parameters{}, err
	}
	var l literal
	dec := json.NewDecoder(bytes.NewReader(hp.Literal))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return hefloat.Parameters{}, bad("literal: %v", err)
	}
	if l.LogN < 10 || l.LogN > 17 {
		return hefloat.Parameters{}, bad("log_n %d outside 10..17", l.LogN)
	}
	rt := ring.Standard
	if l.RealOnly {
		rt = ring.ConjugateInvariant
	}
	p, err := hefloat.NewParametersFromLiteral(hefloat.ParametersLiteral{
		LogN:            l.LogN,
		LogQ:            l.LogQ,
		LogP:            l.LogP,
		LogDefaultScale: l.LogDefaultScale,
		RingType:        rt,
		Xs:              rlwe.DefaultXs,
		Xe:              rlwe.DefaultXe,
	})
	if err != nil {
		return hefloat.Parameters{}, bad("%v", err)
	}
	return p, nil
}

// unmarshalFresh reads a ciphertext the layout says is a fresh top-level encryption at the default
// scale, and checks exactly that, so that a malformed one is an error here and not a panic later.
func unmarshalFresh(p hefloat.Parameters, data []byte, where string) (*rlwe.Ciphertext, error) {
	ct := new(rlwe.Ciphertext)
	if err := ct.UnmarshalBinary(data); err != nil {
		return nil, &sdk.Error{Column: where, Err: sdk.ErrInput, Detail: fmt.Sprintf("ciphertext does not unmarshal: %v", err)}
	}
	if err := checkFresh(p, ct); err != nil {
		return nil, &sdk.Error{Column: where, Err: sdk.ErrInput, Detail: err.Error()}
	}
	return ct, nil
}

func checkFresh(p hefloat.Parameters, ct *rlwe.Ciphertext) error {
	switch {
	case ct.Degree() != 1:
		return fmt.Errorf("ciphertext of degree %d, want 1", ct.Degree())
	case ct.Value[0].N() != p.N() || ct.Value[1].N() != p.N():
		return fmt.Errorf("ciphertext of ring degree %d, want %d", ct.Value[0].N(), p.N())
	case ct.Level() != p.MaxLevel():
		return fmt.Errorf("ciphertext at level %d, want the top level %d", ct.Level(), p.MaxLevel())
	case !ct.IsNTT:
		return fmt.Errorf("ciphertext not in the NTT domain")
	case ct.Scale.Cmp(p.DefaultScale()) != 0:
		return fmt.Errorf("ciphertext scale 2^%.2f, want the default 2^%d", math.Log2(ct.Scale.Float64()), p.LogDefaultScale())
	}
	return nil
}

// evaluationKeys reads the job's evaluation keys and checks that they hold the relinearisation key
// and the Galois keys of an inner sum over all slots.
func evaluationKeys(p hefloat.Parameters, data []byte) (*rlwe.MemEvaluationKeySet, error) {
	evk := new(rlwe.MemEvaluationKeySet)
	if err := evk.UnmarshalBinary(data); err != nil {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: fmt.Sprintf("HE evaluation keys do not unmarshal: %v", err)}
	}
	if _, err := evk.GetRelinearizationKey(); err != nil {
		return nil, &sdk.Error{Err: sdk.ErrInput, Detail: "HE evaluation keys hold no relinearisation key"}
	}
	for k := 1; k < p.MaxSlots(); k <<= 1 {
		if _, err := evk.GetGaloisKey(p.GaloisElement(k)); err != nil {
			return nil, &sdk.Error{Err: sdk.ErrInput, Detail: fmt.Sprintf("HE evaluation keys lack the Galois key of the slot rotation by %d", k)}
		}
	}
	return evk, nil
}
