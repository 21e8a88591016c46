package he

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"

	"insitu/plugins/sdk"
)

// ErrRefreshBudget is returned by Refresh once a job has used its maximum number of refreshes.
var ErrRefreshBudget = errors.New("he: refresh budget exhausted")

// Refresher is the enclave's refresh service for one job, the sdk.HEContext the runner offers the
// plugin: the parameters, the evaluation keys, and Refresh, which turns any ciphertext of the job
// into a fresh top-level encryption of the same slots. Refresh never reveals a value: it answers with
// a ciphertext, refuses only on structure (ErrMalformedCiphertext) or on the count (ErrRefreshBudget),
// and does the same work whatever the slots hold. It is safe for concurrent use.
type Refresher struct {
	keys  *JobKeys
	max   int64
	calls atomic.Int64
	done  atomic.Int64
	pool  sync.Pool // *refreshCoder
}

var _ sdk.HEContext = (*Refresher)(nil)

type refreshCoder struct {
	*coder
	dec *rlwe.Decryptor
	pt  *rlwe.Plaintext
}

// NewRefresher returns the refresh service of the job, allowing at most maxRefreshes calls of
// Refresh (0 allows none).
func (k *JobKeys) NewRefresher(maxRefreshes int) *Refresher {
	return &Refresher{keys: k, max: int64(max(maxRefreshes, 0))}
}

// Parameters returns the job's parameters as the plugin sees them.
func (r *Refresher) Parameters() sdk.HEParameters { return r.keys.params.SDK() }

// EvaluationKeys returns the marshalled evaluation keys.
func (r *Refresher) EvaluationKeys(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return r.keys.MarshalEvaluationKeys()
}

// Calls returns the number of Refresh calls so far, refused ones included.
func (r *Refresher) Calls() int { return int(r.calls.Load()) }

// Refreshes returns the number of ciphertexts refreshed.
func (r *Refresher) Refreshes() int { return int(r.done.Load()) }

// Max returns the job's maximum number of refreshes.
func (r *Refresher) Max() int { return int(r.max) }

// clampBound returns the largest magnitude a refreshed slot keeps: 2^(62-LogDefaultScale), so that
// every encoded coefficient stays below 2^62 and encoding takes the same path whatever the values.
// A ciphertext at the default scale with a slot beyond that bound already overflows the base modulus
// at level 0 (its 2^LogQ[0] ≤ 2^61), so clamping loses nothing a computation could have used.
func (p Parameters) clampBound() float64 { return math.Ldexp(1, 62-p.lit.LogDefaultScale) }

// Refresh decrypts a ciphertext of the job (any level, any scale of at least 1), decodes all slots,
// and returns a fresh public-key encryption of them at the top level with the default scale. Slots
// beyond ±2^(62-LogDefaultScale) come back clamped to that bound. Every call counts against the
// budget, refused ones too.
func (r *Refresher) Refresh(ctx context.Context, data []byte) ([]byte, error) {
	if n := r.calls.Add(1); n > r.max {
		return nil, fmt.Errorf("%w: the job allows %d refreshes", ErrRefreshBudget, r.max)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := r.keys
	ct, err := UnmarshalCiphertext(k.params, data)
	if err != nil {
		return nil, err
	}
	c, _ := r.pool.Get().(*refreshCoder)
	if c == nil {
		c = &refreshCoder{coder: k.newCoder(), pt: rlwe.NewPlaintext(k.params.lattigo(), k.params.MaxLevel())}
	}
	defer r.pool.Put(c)
	if err := k.decrypt(ct, c); err != nil {
		return nil, err
	}
	bound := k.params.clampBound()
	clamp := func(v float64) float64 {
		if math.IsNaN(v) {
			return 0
		}
		return max(-bound, min(bound, v))
	}
	isComplex := c.cvalues != nil
	if isComplex {
		for i, v := range c.cvalues {
			c.cvalues[i] = complex(clamp(real(v)), clamp(imag(v)))
		}
	} else {
		for i, v := range c.values {
			c.values[i] = clamp(v)
		}
	}
	out, err := c.encrypt(k.params, isComplex)
	if err != nil {
		return nil, err
	}
	r.done.Add(1)
	return out, nil
}

// decrypt decrypts ct and decodes all its slots into c.values (c.cvalues on the standard ring).
func (k *JobKeys) decrypt(ct *rlwe.Ciphertext, c *refreshCoder) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if c.dec == nil {
		dec, err := k.decryptor()
		if err != nil {
			return err
		}
		c.dec = dec
	}
	if k.sk == nil {
		return ErrClosed
	}
	c.pt.Resize(0, ct.Level())
	c.dec.Decrypt(ct, c.pt)
	var err error
	if c.cvalues != nil {
		err = c.enc.Decode(c.pt, c.cvalues)
	} else {
		err = c.enc.Decode(c.pt, c.values)
	}
	if err != nil {
		return fmt.Errorf("he: decoding: %w", err)
	}
	return nil
}

// DecryptSlot0 decrypts a ciphertext of the job (as UnmarshalCiphertext accepts it) and returns the
// real part of its first slot: how the output gate reads an encrypted weight. A non-finite value is
// an error.
func (k *JobKeys) DecryptSlot0(data []byte) (float64, error) {
	ct, err := UnmarshalCiphertext(k.params, data)
	if err != nil {
		return 0, err
	}
	c := &refreshCoder{coder: k.newCoder(), pt: rlwe.NewPlaintext(k.params.lattigo(), k.params.MaxLevel())}
	if err := k.decrypt(ct, c); err != nil {
		return 0, err
	}
	v := c.values[0]
	if c.cvalues != nil {
		v = real(c.cvalues[0])
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("he: the ciphertext decrypts to a non-finite value")
	}
	return v, nil
}

// ErrOutputNames is returned by DecryptWeights when the ciphertexts are not exactly one per feature
// and one intercept.
var ErrOutputNames = errors.New("he: encrypted output names do not match the model")

// DecryptWeights decrypts the encrypted weights of a linear model, as an HE plugin returns them in
// Output.Ciphertexts: exactly one ciphertext named sdk.HEOutputWeightPrefix+feature per feature and
// one named sdk.HEOutputIntercept, slot 0 of each. A missing, extra or repeated name is an error
// wrapping ErrOutputNames; a malformed ciphertext one wrapping ErrMalformedCiphertext.
func (k *JobKeys) DecryptWeights(cts []sdk.Ciphertext, features []string) (*sdk.Weights, error) {
	index := make(map[string]int, len(features)+1)
	for j, f := range features {
		index[sdk.HEOutputWeightPrefix+f] = j
	}
	index[sdk.HEOutputIntercept] = -1
	if len(index) != len(features)+1 {
		return nil, fmt.Errorf("he: decrypting weights: the features repeat a name")
	}
	w := &sdk.Weights{Names: append([]string(nil), features...), Values: make([]float64, len(features))}
	seen := make(map[string]bool, len(cts))
	for _, c := range cts {
		j, ok := index[c.Name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: unexpected ciphertext %.300q; want %s<feature> per feature and %s", ErrOutputNames, c.Name, sdk.HEOutputWeightPrefix, sdk.HEOutputIntercept)
		case seen[c.Name]:
			return nil, fmt.Errorf("%w: ciphertext %q appears twice", ErrOutputNames, c.Name)
		}
		seen[c.Name] = true
		v, err := k.DecryptSlot0(c.Data)
		if err != nil {
			return nil, fmt.Errorf("he: decrypting %q: %w", c.Name, err)
		}
		if j < 0 {
			w.Intercept = v
		} else {
			w.Values[j] = v
		}
	}
	if len(seen) != len(index) {
		var missing []string
		for name := range index {
			if !seen[name] {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		if len(missing) > 5 {
			missing = append(missing[:5], "…")
		}
		return nil, fmt.Errorf("%w: %d ciphertexts missing (%s)", ErrOutputNames, len(index)-len(seen), strings.Join(missing, ", "))
	}
	return w, nil
}
