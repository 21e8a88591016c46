package encfile

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

const testBlock = 1 << MinLog2Block

var testKEK = bytes.Repeat([]byte{0x42}, 32)

func encrypt(t testing.TB, plain []byte, identity string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testKEK, identity, Options{Log2Block: MinLog2Block})
	if err != nil {
		t.Fatal(err)
	}
	// Write in odd pieces to exercise block filling.
	for p := plain; len(p) > 0; {
		k := min(len(p), 1000+len(p)%7777)
		if _, err := w.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decrypt(ct []byte, kek []byte, identity string) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(ct), kek, identity)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func headerLen(identity string) int {
	return len(Magic) + 4 + fileIDSize + prefixSize + 2 + len(identity) + nonceSize + wrappedSize
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, testBlock - 1, testBlock, testBlock + 1, 3 * testBlock, 3*testBlock + 17} {
		plain := randomBytes(n, uint64(n))
		ct := encrypt(t, plain, "f")
		blocks := max(1, (n+testBlock-1)/testBlock)
		if want := headerLen("f") + n + blocks*tagSize; len(ct) != want {
			t.Errorf("n=%d: ciphertext %d bytes, want %d", n, len(ct), want)
		}
		got, err := decrypt(ct, testKEK, "f")
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: plaintext differs", n)
		}
		size, nb, err := Check(bytes.NewReader(ct), testKEK, "f")
		if err != nil || size != int64(n) || nb != int64(blocks) {
			t.Fatalf("n=%d: Check = %d, %d, %v; want %d, %d", n, size, nb, err, n, blocks)
		}
	}
}

func TestRandomHeader(t *testing.T) {
	a, b := encrypt(t, []byte("same"), "f"), encrypt(t, []byte("same"), "f")
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions of the same plaintext are equal")
	}
}

func wantErr(t *testing.T, name string, ct []byte, kek []byte, identity string, sentinel error) *Error {
	t.Helper()
	_, err := decrypt(ct, kek, identity)
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: error %v, want %v", name, err, sentinel)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v is not an *Error", name, err)
	}
	return e
}

func TestDetects(t *testing.T) {
	const id = "dataset d v1 part a"
	plain := randomBytes(3*testBlock+100, 9)
	ct := encrypt(t, plain, id)
	hl := headerLen(id)
	chunk := testBlock + tagSize
	block := func(c []byte, i int) []byte { return c[hl+i*chunk : min(len(c), hl+(i+1)*chunk)] }

	flip := func(off int) []byte { c := bytes.Clone(ct); c[off] ^= 1; return c }
	if e := wantErr(t, "tampered block 1", flip(hl+chunk+5), testKEK, id, ErrCorrupt); e.Block != 1 {
		t.Errorf("tampered block reported as block %d, want 1", e.Block)
	}
	wantErr(t, "tampered tag of last block", flip(len(ct)-1), testKEK, id, ErrCorrupt)
	wantErr(t, "tampered file id", flip(len(Magic)+5), testKEK, id, ErrKey)
	wantErr(t, "tampered identity", flip(len(Magic)+4+fileIDSize+prefixSize+2), testKEK, id, ErrKey)
	wantErr(t, "tampered wrapped key", flip(hl-3), testKEK, id, ErrKey)
	wantErr(t, "tampered magic", flip(0), testKEK, id, ErrCorrupt)
	wantErr(t, "tampered version", flip(len(Magic)), testKEK, id, ErrCorrupt)

	wantErr(t, "wrong KEK", ct, bytes.Repeat([]byte{1}, 32), id, ErrKey)
	wantErr(t, "wrong identity", ct, testKEK, "dataset d v1 part b", ErrWrongFile)

	if e := wantErr(t, "cut at block boundary", ct[:hl+2*chunk], testKEK, id, ErrTruncated); e.Block != 1 {
		t.Errorf("cut reported at block %d, want 1", e.Block)
	}
	wantErr(t, "cut after header", ct[:hl], testKEK, id, ErrTruncated)
	wantErr(t, "cut inside header", ct[:hl-1], testKEK, id, ErrTruncated)
	wantErr(t, "cut inside a block", ct[:hl+chunk+100], testKEK, id, ErrCorrupt)
	wantErr(t, "cut inside a tag", ct[:hl+3*chunk+5], testKEK, id, ErrTruncated)
	wantErr(t, "data appended", append(bytes.Clone(ct), block(ct, 0)...), testKEK, id, ErrCorrupt)

	swapped := bytes.Clone(ct)
	copy(swapped[hl:], block(ct, 1))
	copy(swapped[hl+chunk:], block(ct, 0))
	wantErr(t, "blocks reordered", swapped, testKEK, id, ErrCorrupt)

	dropped := append(bytes.Clone(ct[:hl+chunk]), ct[hl+2*chunk:]...)
	wantErr(t, "block dropped", dropped, testKEK, id, ErrCorrupt)

	// A block from another file under the same KEK and identity.
	other := encrypt(t, plain, id)
	mixed := bytes.Clone(ct)
	copy(mixed[hl+chunk:], block(other, 1))
	wantErr(t, "block from another file", mixed, testKEK, id, ErrCorrupt)
	// The other file's header with this file's blocks.
	mixed = append(bytes.Clone(other[:hl]), ct[hl:]...)
	wantErr(t, "header from another file", mixed, testKEK, id, ErrCorrupt)
}

func TestWriterOptions(t *testing.T) {
	for _, lb := range []int{MinLog2Block - 1, MaxLog2Block + 1} {
		if _, err := NewWriter(io.Discard, testKEK, "x", Options{Log2Block: lb}); err == nil {
			t.Errorf("log2 block %d accepted", lb)
		}
	}
	if _, err := NewWriter(io.Discard, testKEK[:16], "x", Options{}); err == nil {
		t.Error("16-byte KEK accepted")
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, testKEK, "x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]byte, 1<<DefaultLog2Block+1))
	w.Close()
	if w.Blocks() != 2 {
		t.Fatalf("default block size: %d blocks for 256 KiB + 1, want 2", w.Blocks())
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Fatal("write after close accepted")
	}
}

func FuzzReader(f *testing.F) {
	f.Add(encrypt(f, nil, "f"))
	f.Add(encrypt(f, []byte("hello"), "f"))
	f.Add(encrypt(f, randomBytes(testBlock+3, 1), "f"))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, ct []byte) {
		_, err := decrypt(ct, testKEK, "f")
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) &&
			!errors.Is(err, ErrKey) && !errors.Is(err, ErrWrongFile) {
			t.Fatalf("error %v wraps no sentinel", err)
		}
	})
}

func BenchmarkEncrypt(b *testing.B) {
	plain := randomBytes(4<<20, 2)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		w, _ := NewWriter(io.Discard, testKEK, "f", Options{})
		w.Write(plain)
		w.Close()
	}
}
