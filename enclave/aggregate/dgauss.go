package aggregate

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"io"
	"math"
	"math/big"
)

// Sampler draws exact discrete Gaussian and discrete Laplace noise (Canonne, Kamath and Steinke,
// "The Discrete Gaussian for Differential Privacy", 2020, Algorithms 1–3) from a source of uniform
// random bytes, with integer and rational arithmetic only: no floating-point value enters a
// sample, so its low bits carry nothing about the data. The source is crypto/rand in production
// (NewSampler(nil)); tests inject a deterministic one. A Sampler is not safe for concurrent use.
type Sampler struct {
	r   io.Reader
	buf [8]byte
	// scratch for the rational arithmetic of the acceptance test
	num, den, tmp *big.Int
}

// NewSampler returns a sampler reading r, buffered; nil means crypto/rand.
func NewSampler(r io.Reader) *Sampler {
	if r == nil {
		r = rand.Reader
	}
	return &Sampler{r: bufio.NewReaderSize(r, 4096), num: new(big.Int), den: new(big.Int), tmp: new(big.Int)}
}

func (s *Sampler) uint64() uint64 {
	if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
		// crypto/rand never fails on a supported kernel; a failing source is a broken enclave.
		panic("aggregate: reading the random source: " + err.Error())
	}
	return binary.LittleEndian.Uint64(s.buf[:])
}

// uniform returns a uniform integer in [0, n), n > 0, by rejection.
func (s *Sampler) uniform(n uint64) uint64 {
	if n&(n-1) == 0 {
		return s.uint64() & (n - 1)
	}
	limit := -n % n // 2^64 mod n: values below it are rejected
	for {
		if v := s.uint64(); v >= limit {
			return v % n
		}
	}
}

// uniformBig returns a uniform integer in [0, n), n > 0.
func (s *Sampler) uniformBig(n *big.Int) *big.Int {
	v, err := rand.Int(s.r, n)
	if err != nil {
		panic("aggregate: reading the random source: " + err.Error())
	}
	return v
}

// bernoulliExpSmall returns true with probability exp(−n/d), for 0 ≤ n and 0 < d < 2^32.
func (s *Sampler) bernoulliExpSmall(n, d uint64) bool {
	for n > d { // exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋))
		if !s.bernoulliExpSmall(1, 1) {
			return false
		}
		n -= d
	}
	// γ = n/d ∈ [0, 1]: K ← 1; while Bernoulli(γ/K) { K++ }; return K odd.
	k := uint64(1)
	for s.uniform(d*k) < n {
		k++
	}
	return k%2 == 1
}

// bernoulliExp returns true with probability exp(−n/d), for n ≥ 0 and d > 0.
func (s *Sampler) bernoulliExp(n, d *big.Int) bool {
	if n.IsUint64() && d.IsUint64() && d.Uint64() < 1<<32 && n.Uint64() < 1<<62 {
		return s.bernoulliExpSmall(n.Uint64(), d.Uint64())
	}
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	for i := new(big.Int); i.Cmp(q) < 0; i.Add(i, big.NewInt(1)) {
		if !s.bernoulliExpSmall(1, 1) {
			return false
		}
	}
	k := big.NewInt(1)
	dk := new(big.Int)
	for {
		dk.Mul(d, k)
		if s.uniformBig(dk).Cmp(r) >= 0 {
			break
		}
		k.Add(k, big.NewInt(1))
	}
	return k.Bit(0) == 1
}

// Laplace returns a sample of the discrete Laplace distribution with scale t ≥ 1:
// P[Y = y] ∝ exp(−|y|/t).
func (s *Sampler) Laplace(t uint64) int64 {
	if t < 1 {
		panic("aggregate: discrete Laplace scale below 1")
	}
	for {
		u := s.uniform(t)
		if t >= 1<<32 {
			if !s.bernoulliExp(new(big.Int).SetUint64(u), new(big.Int).SetUint64(t)) {
				continue
			}
		} else if !s.bernoulliExpSmall(u, t) {
			continue
		}
		v := uint64(0)
		for s.bernoulliExpSmall(1, 1) {
			v++
		}
		y := u + t*v
		neg := s.uint64()&1 == 1
		if neg && y == 0 {
			continue
		}
		if neg {
			return -int64(y)
		}
		return int64(y)
	}
}

// Variance is σ² as an exact rational: σ² = Num/2^VarianceBits.
type Variance struct {
	Num *big.Int
}

// VarianceBits is the fixed-point precision of a Variance: σ² is a multiple of 2^−20.
const VarianceBits = 20

// VarianceFor returns the variance of the Gaussian mechanism with L2 sensitivity √sens2 (sens2 the
// squared sensitivity, an integer in grid units) at zCDP budget rho: σ² = sens2/(2ρ), rounded up to
// the next multiple of 2^−20, so the mechanism spends at most ρ. rho must be positive and finite.
func VarianceFor(sens2 *big.Int, rho float64) Variance {
	r := new(big.Rat).SetFloat64(rho)
	if r == nil || r.Sign() <= 0 {
		panic("aggregate: variance for a non-positive or non-finite rho")
	}
	v := new(big.Rat).SetInt(sens2)
	v.Quo(v, r)
	v.Mul(v, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), VarianceBits-1))) // ·2^20/2
	num := new(big.Int).Quo(v.Num(), v.Denom())
	if new(big.Int).Mul(num, v.Denom()).Cmp(v.Num()) != 0 {
		num.Add(num, big.NewInt(1))
	}
	return Variance{Num: num}
}

// Sigma returns σ as a float64, for documentation and tests.
func (v Variance) Sigma() float64 {
	f, _ := new(big.Float).SetInt(v.Num).Float64()
	return math.Sqrt(f / (1 << VarianceBits))
}

// Gaussian returns a sample of the discrete Gaussian with variance parameter σ² = v: P[Y = y] ∝
// exp(−y²/(2σ²)). σ² = 0 returns 0.
func (s *Sampler) Gaussian(v Variance) int64 {
	if v.Num.Sign() == 0 {
		return 0
	}
	a := v.Num
	b := new(big.Int).Lsh(big.NewInt(1), VarianceBits)
	// t = ⌊σ⌋ + 1, with ⌊√(a/b)⌋ = ⌊√⌊a/b⌋⌋.
	t := new(big.Int).Sqrt(new(big.Int).Quo(a, b))
	t.Add(t, big.NewInt(1))
	if !t.IsUint64() || t.Uint64() >= 1<<62 {
		panic("aggregate: discrete Gaussian variance too large")
	}
	tu := t.Uint64()
	// Accept a discrete Laplace Y of scale t with probability exp(−(|Y| − σ²/t)²/(2σ²))
	// = exp(−(|Y|·b·t − a)² / (2·a·b·t²)).
	den := s.den.Mul(a, b)
	den.Mul(den, t)
	den.Mul(den, t)
	den.Lsh(den, 1)
	bt := new(big.Int).Mul(b, t)
	for {
		y := s.Laplace(tu)
		ay := y
		if ay < 0 {
			ay = -ay
		}
		num := s.num.SetInt64(ay)
		num.Mul(num, bt)
		num.Sub(num, a)
		num.Mul(num, num)
		if s.bernoulliExp(num, den) {
			return y
		}
	}
}
