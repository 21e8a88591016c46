package psi_test

import (
	"bytes"
	"errors"
	"testing"

	"insitu/enclave/psi"
)

// vectors are well-formed messages of every type.
func vectors() []*psi.Message {
	sess := psi.SessionID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	el := bytes.Repeat([]byte{0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9, 0x61, 0xc5, 0x00, 0x51, 0x5f,
		0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82, 0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76}, 3)
	return []*psi.Message{
		{Type: psi.TypeOpen, Open: &psi.Open{Dataset: "credit", Version: 2, Purpose: "model_development"}},
		{Type: psi.TypeOpened, Session: sess, Opened: &psi.Opened{Kind: "uscc", DatasetVersion: 2, PlatformSize: 5000, Pages: 2,
			MaxBatch: psi.MaxBatch, MaxElements: 1 << 22, Expires: 1800000000}},
		{Type: psi.TypeBlind, Session: sess, Seq: 7, Elements: el},
		{Type: psi.TypeBlinded, Session: sess, Seq: 7, Elements: el},
		{Type: psi.TypePull, Session: sess, Seq: 3},
		{Type: psi.TypePage, Session: sess, Seq: 3, Elements: el[:32]},
		{Type: psi.TypeClose, Session: sess},
		{Type: psi.TypeClosed, Session: sess},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range vectors() {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := psi.ParseMessage(b)
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		b2, _ := got.MarshalBinary()
		if !bytes.Equal(b, b2) || got.Type != m.Type || got.Seq != m.Seq || got.Session != m.Session {
			t.Errorf("%s does not round-trip", m.Type)
		}
	}
}

func TestParseMessageRefuses(t *testing.T) {
	good, _ := vectors()[2].MarshalBinary()
	open, _ := vectors()[0].MarshalBinary()
	opened, _ := vectors()[1].MarshalBinary()
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	cases := map[string][]byte{
		"empty":              nil,
		"short header":       good[:psi.HeaderSize-1],
		"bad magic":          mutate(good, func(b []byte) []byte { b[0] = 'x'; return b }),
		"version 2":          mutate(good, func(b []byte) []byte { b[4] = 2; return b }),
		"unknown type":       mutate(good, func(b []byte) []byte { b[5] = 99; return b }),
		"length too long":    mutate(good, func(b []byte) []byte { b[29]++; return b }),
		"trailing byte":      append(append([]byte(nil), good...), 0),
		"partial element":    mutate(good, func(b []byte) []byte { b[29]--; return b[:len(b)-1] }),
		"no session":         mutate(good, func(b []byte) []byte { clear(b[6:22]); return b }),
		"open with session":  mutate(open, func(b []byte) []byte { b[6] = 1; return b }),
		"open truncated":     mutate(open, func(b []byte) []byte { b[29] -= 3; return b[:len(b)-3] }),
		"open control char":  mutate(open, func(b []byte) []byte { b[psi.HeaderSize+1] = '\n'; return b }),
		"opened bad kind":    mutate(opened, func(b []byte) []byte { b[psi.HeaderSize+1] = 'x'; return b }),
		"opened wrong pages": mutate(opened, func(b []byte) []byte { b[psi.HeaderSize+1+4+4+8+3]++; return b }),
		"empty blind": mutate(good, func(b []byte) []byte {
			b = b[:psi.HeaderSize]
			clear(b[26:30])
			return b
		}),
		"batch too large": func() []byte {
			m := &psi.Message{Type: psi.TypeBlind, Session: psi.SessionID{1}, Elements: make([]byte, psi.MaxBatch*psi.ElementSize)}
			b, _ := m.MarshalBinary()
			b = append(b, make([]byte, psi.ElementSize)...)
			b[26], b[27], b[28], b[29] = 0, 2, 0, 0x20
			return b
		}(),
	}
	for name, b := range cases {
		if _, err := psi.ParseMessage(b); !errors.Is(err, psi.ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, m := range vectors() {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := psi.ParseMessage(b)
		if err != nil {
			if !errors.Is(err, psi.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(b) > psi.MaxMessageSize || m.Count() > psi.MaxBatch || len(m.Elements)%psi.ElementSize != 0 {
			t.Fatalf("accepted %d bytes with %d elements", len(b), m.Count())
		}
		// What parses re-encodes to the same bytes: the encoding is canonical.
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}
