package psi

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cloudflare/circl/group"

	"insitu/connectors/ident"
)

// ElementSize is the length of an encoded ristretto255 element.
const ElementSize = 32

var g = group.Ristretto255

// DST returns the domain-separation tag of hash-to-group for identifiers of kind k: it binds the
// protocol version and the identifier kind, so that the same string hashed as another kind, or by
// another version of the protocol, gives an unrelated element.
func DST(k ident.Kind) []byte {
	return []byte("insitu-psi-v1/ristretto255_XMD:SHA-512_R255MAP_RO_/" + string(k))
}

// hashID maps an identifier in canonical form to the group.
func hashID(dst []byte, id string) group.Element { return g.HashToElement([]byte(id), dst) }

// putElement writes the encoding of e to dst[:ElementSize].
func putElement(dst []byte, e group.Element) {
	b, err := e.MarshalBinary()
	if err != nil || len(b) != ElementSize {
		panic("psi: ristretto255 element encoding failed") // cannot happen for ristretto255
	}
	copy(dst, b)
}

// getElement decodes a canonical, non-identity element.
func getElement(src []byte) (group.Element, bool) {
	e := g.NewElement()
	if e.UnmarshalBinary(src[:ElementSize]) != nil || e.IsIdentity() {
		return nil, false
	}
	return e, true
}

// workers returns n, or the number of usable CPUs when n <= 0.
func workers(n int) int {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return n
}

// chunk is how many elements a worker takes at a time: small enough to balance the load, large
// enough that the hand-out costs nothing next to a scalar multiplication.
const chunk = 64

// parallel runs fn over [0, n) in chunks on w goroutines and returns the first error. Every worker
// stops taking chunks after an error.
func parallel(n, w int, fn func(lo, hi int) error) error {
	if n == 0 {
		return nil
	}
	w = min(w, (n+chunk-1)/chunk)
	if w <= 1 {
		return fn(0, n)
	}
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
		failed  atomic.Bool
	)
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				if err := fn(lo, min(lo+chunk, n)); err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
