package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func TestChunkRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3*MaxChunkBytes+12345)
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	for _, size := range []int{0, 1, 1000, MaxChunkBytes, MaxChunkBytes + 1} {
		var chunks [][]byte
		w := NewChunkWriter(size, func(b []byte) error {
			chunks = append(chunks, bytes.Clone(b))
			clear(b) // the writer must not need a chunk once send returns
			return nil
		})
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1+rng.IntN(300_000))
			if n, err := w.Write(rest[:k]); n != k || err != nil {
				t.Fatalf("size %d: Write = %d, %v", size, n, err)
			}
			rest = rest[k:]
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		want := size
		if size <= 0 || size > MaxChunkBytes {
			want = MaxChunkBytes
		}
		for i, c := range chunks {
			if len(c) > want || (i < len(chunks)-1 && len(c) != want) {
				t.Fatalf("size %d: chunk %d has %d bytes", size, i, len(c))
			}
		}
		if w.Total() != int64(len(data)) {
			t.Fatalf("size %d: total %d", size, w.Total())
		}
		i := 0
		r := NewChunkReader(func() ([]byte, error) {
			if i == len(chunks) {
				return nil, io.EOF
			}
			i++
			return chunks[i-1], nil
		})
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) || r.Total() != int64(len(data)) {
			t.Fatalf("size %d: read %d bytes, err %v", size, len(got), err)
		}
	}
}

func TestChunkWriterSendError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	w := NewChunkWriter(4, func([]byte) error { calls++; return boom })
	if _, err := w.Write([]byte("abcdefgh")); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("after a failed send: err = %v, %d sends", err, calls)
	}
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Fatalf("Flush = %v", err)
	}
}

func TestChunkReaderRefusesOversizeChunk(t *testing.T) {
	r := NewChunkReader(func() ([]byte, error) { return make([]byte, MaxChunkBytes+1), nil })
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrChunkTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrChunkTooLarge) {
		t.Fatalf("second read: err = %v", err)
	}
}

func TestChunkReaderPassesErrors(t *testing.T) {
	boom := errors.New("boom")
	n := 0
	r := NewChunkReader(func() ([]byte, error) {
		n++
		if n == 1 {
			return []byte("ab"), nil
		}
		return nil, boom
	})
	got, err := io.ReadAll(r)
	if string(got) != "ab" || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v", got, err)
	}
}
