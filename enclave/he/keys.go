package he

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// ErrMalformedCiphertext is returned for bytes that are not a well-formed ciphertext of the job's
// parameters. Its messages describe the structure only, never a value.
var ErrMalformedCiphertext = errors.New("he: malformed ciphertext")

// JobKeys is the key material of one job: a fresh secret key, the public key the enclave encrypts
// the cohort with, and the evaluation keys a plugin computes with. The secret key never leaves the
// type: JobKeys encrypts (Batches), refreshes (NewRefresher) and decrypts declared outputs
// (DecryptSlot0, DecryptWeights), and Close erases it. A JobKeys is safe for concurrent use.
type JobKeys struct {
	params Parameters

	mu sync.RWMutex // guards sk against Close
	sk *rlwe.SecretKey
	pk *rlwe.PublicKey

	evkOnce  sync.Once
	evkBytes []byte
	evkErr   error
	evk      *rlwe.MemEvaluationKeySet

	rotations []int
}

// NewJobKeys draws a fresh key set for one job: the secret key (uniform ternary), the public key,
// the relinearisation key and the Galois keys for rotations by 2^k, k = 0 .. log2(slots)-1 — what
// InnerSum and Replicate need over any power-of-two span, and nothing more.
func NewJobKeys(p Parameters) (*JobKeys, error) {
	if p.digest == "" {
		return nil, errors.New("he: parameters not built with NewParameters")
	}
	lp := p.lattigo()
	kg := rlwe.NewKeyGenerator(lp)
	sk, pk := kg.GenKeyPairNew()
	rlk := kg.GenRelinearizationKeyNew(sk)
	var rots []int
	galEls := make([]uint64, 0, bits.Len(uint(p.Slots())))
	for r := 1; r < p.Slots(); r <<= 1 {
		rots = append(rots, r)
		galEls = append(galEls, lp.GaloisElement(r))
	}
	gks := kg.GenGaloisKeysNew(galEls, sk)
	return &JobKeys{params: p, sk: sk, pk: pk, evk: rlwe.NewMemEvaluationKeySet(rlk, gks...), rotations: rots}, nil
}

// Parameters returns the job's parameters.
func (k *JobKeys) Parameters() Parameters { return k.params }

// Rotations lists the rotations the evaluation keys allow, in slots.
func (k *JobKeys) Rotations() []int { return append([]int(nil), k.rotations...) }

// MarshalEvaluationKeys returns the serialised evaluation keys (rlwe.MemEvaluationKeySet): the
// relinearisation key and the Galois keys, never the secret key. The bytes are computed once; the
// caller must not modify them.
func (k *JobKeys) MarshalEvaluationKeys() ([]byte, error) {
	k.evkOnce.Do(func() {
		k.evkBytes, k.evkErr = k.evk.MarshalBinary()
		if k.evkErr != nil {
			k.evkErr = fmt.Errorf("he: marshalling the evaluation keys: %w", k.evkErr)
		}
	})
	return k.evkBytes, k.evkErr
}

// Close erases the secret key. Decryption and refresh fail afterwards; encryption still works.
func (k *JobKeys) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sk == nil {
		return
	}
	for _, p := range []ring.Poly{k.sk.Value.Q, k.sk.Value.P} {
		for _, c := range p.Coeffs {
			clear(c)
		}
	}
	k.sk = nil
}

// ErrClosed is returned by operations that need the secret key after Close.
var ErrClosed = errors.New("he: job keys closed")

// decryptor returns a decryptor under the secret key; the caller holds k.mu for reading.
func (k *JobKeys) decryptor() (*rlwe.Decryptor, error) {
	if k.sk == nil {
		return nil, ErrClosed
	}
	return rlwe.NewDecryptor(k.params.lattigo(), k.sk), nil
}

// metaDataBytes is the size of a marshalled rlwe.MetaData (fixed-width JSON).
var metaDataBytes = rlwe.MetaData{}.BinarySize()

// UnmarshalCiphertext parses bytes a plugin sent as a ciphertext of p and checks it: the byte layout
// of rlwe.Ciphertext.MarshalBinary with sizes checked before anything is allocated, degree 1, a level
// in 0..MaxLevel, the ring degree of p, every coefficient reduced, the NTT domain, batched encoding
// over all slots, and a finite scale of at least 1. Errors wrap ErrMalformedCiphertext and say which
// rule failed, never a value.
func UnmarshalCiphertext(p Parameters, data []byte) (ct *rlwe.Ciphertext, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedCiphertext, fmt.Sprintf(format, args...))
	}
	lp := p.lattigo()
	n := lp.N()
	// Layout: hasMetaData (1 byte) | metadata | #polys (u64) | per poly: #moduli (u64) | per modulus: N (u64), N × u64.
	off := 1 + metaDataBytes
	if len(data) < off+16 || data[0] != 1 {
		return nil, bad("too short or without metadata")
	}
	u64 := func() uint64 {
		v := binary.LittleEndian.Uint64(data[off:])
		off += 8
		return v
	}
	if np := u64(); np != 2 {
		return nil, bad("degree %d, want 1", int64(np)-1)
	}
	moduli := -1
	for range 2 {
		if len(data) < off+8 {
			return nil, bad("truncated")
		}
		m := u64()
		if m < 1 || m > uint64(lp.MaxLevel()+1) || moduli >= 0 && int(m) != moduli {
			return nil, bad("level outside 0..%d or different between its polynomials", lp.MaxLevel())
		}
		moduli = int(m)
		for range moduli {
			if len(data) < off+8 {
				return nil, bad("truncated")
			}
			if deg := u64(); deg != uint64(n) {
				return nil, bad("ring degree is not %d", n)
			}
			if len(data)-off < 8*n {
				return nil, bad("truncated")
			}
			off += 8 * n
		}
	}
	if off != len(data) {
		return nil, bad("%d trailing bytes", len(data)-off)
	}
	ct = new(rlwe.Ciphertext)
	defer func() {
		if r := recover(); r != nil {
			ct, err = nil, bad("does not unmarshal")
		}
	}()
	if err := ct.UnmarshalBinary(data); err != nil || ct.MetaData == nil {
		return nil, bad("does not unmarshal")
	}
	q := lp.Q()
	for _, pol := range ct.Value {
		for j, c := range pol.Coeffs {
			for _, v := range c {
				if v >= q[j] {
					return nil, bad("coefficient not reduced modulo q_%d", j)
				}
			}
		}
	}
	md := ct.MetaData
	if !md.IsNTT || md.IsMontgomery || !md.IsBatched || md.LogDimensions != lp.LogMaxDimensions() {
		return nil, bad("not a batched CKKS ciphertext over all %d slots in the NTT domain", p.Slots())
	}
	s := &md.Scale.Value
	if md.Scale.Mod != nil || s.IsInf() || s.Sign() <= 0 || s.Cmp(big.NewFloat(1)) < 0 || s.MantExp(nil) > 2*int(math.Ceil(p.LogQP())) {
		return nil, bad("scale outside [1, 2^(2 log QP)]")
	}
	return ct, nil
}

// coder holds the single-goroutine lattigo objects one worker needs.
type coder struct {
	enc       *hefloat.Encoder
	encryptor *rlwe.Encryptor
	pt        *rlwe.Plaintext
	values    []float64
	cvalues   []complex128 // standard ring only: refresh keeps imaginary parts
}

func (k *JobKeys) newCoder() *coder {
	lp := k.params.lattigo()
	c := &coder{
		enc:       hefloat.NewEncoder(lp),
		encryptor: rlwe.NewEncryptor(lp, k.pk),
		pt:        hefloat.NewPlaintext(lp, lp.MaxLevel()),
		values:    make([]float64, k.params.Slots()),
	}
	if lp.RingType() == ring.Standard {
		c.cvalues = make([]complex128, k.params.Slots())
	}
	return c
}

// encrypt encodes c.values (c.cvalues when complex) at the top level with the default scale and
// returns the marshalled fresh public-key encryption.
func (c *coder) encrypt(p Parameters, complex bool) ([]byte, error) {
	lp := p.lattigo()
	c.pt.Resize(0, lp.MaxLevel())
	c.pt.Scale = lp.DefaultScale()
	c.pt.LogDimensions = lp.LogMaxDimensions()
	c.pt.IsBatched = true
	var err error
	if complex {
		err = c.enc.Encode(c.cvalues, c.pt)
	} else {
		err = c.enc.Encode(c.values, c.pt)
	}
	if err != nil {
		return nil, fmt.Errorf("he: encoding: %w", err)
	}
	ct, err := c.encryptor.EncryptNew(c.pt)
	if err != nil {
		return nil, fmt.Errorf("he: encrypting: %w", err)
	}
	return ct.MarshalBinary()
}
