package runner

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestCapture writes random pieces and compares what the capture keeps with the whole stream:
// the first half of the bound, the last half, and the count of the rest.
func TestCapture(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		bound := 2 + rng.IntN(64)
		c := newCapture(bound)
		var all []byte
		for range rng.IntN(20) {
			p := make([]byte, rng.IntN(3*bound))
			for i := range p {
				p[i] = byte(rng.IntN(256))
			}
			if n, err := c.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write returned %d, %v", n, err)
			}
			all = append(all, p...)
		}
		got := c.snapshot()
		half := bound / 2
		wantHead := all[:min(len(all), half)]
		rest := all[len(wantHead):]
		wantTail := rest[max(0, len(rest)-half):]
		if !bytes.Equal(got.Head, wantHead) || !bytes.Equal(got.Tail, wantTail) || got.Total != int64(len(all)) ||
			got.Dropped != int64(len(all)-len(wantHead)-len(wantTail)) {
			t.Fatalf("trial %d (max %d, %d bytes): head %x tail %x total %d dropped %d; want head %x tail %x",
				trial, bound, len(all), got.Head, got.Tail, got.Total, got.Dropped, wantHead, wantTail)
		}
		if len(c.head)+len(c.ring) > bound || cap(c.ring) > 2*bound+64 {
			t.Fatalf("capture holds %d+%d bytes (ring capacity %d) for a bound of %d", len(c.head), len(c.ring), cap(c.ring), bound)
		}
	}
}

func TestCaptureString(t *testing.T) {
	c := newCapture(8)
	c.Write([]byte("abcd"))
	if s := c.snapshot().String(); s != "abcd" {
		t.Errorf("%q", s)
	}
	c.Write([]byte("efghijklmn"))
	if s := c.snapshot().String(); s != "abcd\n[… 6 bytes dropped …]\nklmn" {
		t.Errorf("%q", s)
	}
}
