package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzCanonical checks that the canonical encoding decodes back to the record it came from, and
// that moving bytes between adjacent fields always changes it (the length prefixes make it
// injective).
func FuzzCanonical(f *testing.F) {
	f.Add(int64(1), int64(1782896401000000000), "ingest", "steward-1", "dataset/sme v1", []byte(`{"rows":1000}`), make([]byte, 32))
	f.Add(int64(0), int64(-1), "", "", "", []byte{}, []byte{1, 2, 3})
	f.Add(int64(-9), int64(0), "a\x00b", "enclave", "job-0001", []byte(`{"a":[1,2,{"b":null}]}`), bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, seq, ns int64, kind, actor, subject string, payload, prev []byte) {
		r := Record{Seq: seq, Time: time.Unix(0, ns), Kind: Kind(kind), Actor: actor, Subject: subject, Payload: json.RawMessage(payload)}
		copy(r.PrevHash[:], prev)
		enc := r.Canonical()
		back, err := parseCanonical(enc)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		if back.Seq != r.Seq || back.Time.UnixNano() != ns || back.Kind != r.Kind || back.Actor != r.Actor ||
			back.Subject != r.Subject || !bytes.Equal(back.Payload, r.Payload) || back.PrevHash != r.PrevHash {
			t.Fatalf("round trip changed the record: %+v → %+v", r, back)
		}
		if !bytes.Equal(back.Canonical(), enc) {
			t.Fatal("re-encoding differs")
		}
		// Move one byte from a field into the next: the encoding must change.
		if actor != "" {
			m := r
			m.Actor, m.Subject = actor[:len(actor)-1], actor[len(actor)-1:]+subject
			if bytes.Equal(m.Canonical(), enc) {
				t.Fatal("actor/subject boundary not encoded")
			}
		}
		if kind != "" {
			m := r
			m.Kind, m.Actor = Kind(kind[1:]), kind[:1]+actor
			if bytes.Equal(m.Canonical(), enc) {
				t.Fatal("kind/actor boundary not encoded")
			}
		}
		// Any truncation or extension of the encoding is refused.
		if _, err := parseCanonical(enc[:len(enc)-1]); err == nil {
			t.Fatal("truncated encoding parsed")
		}
		if _, err := parseCanonical(append(enc, 0)); err == nil {
			t.Fatal("extended encoding parsed")
		}
	})
}

// FuzzCanonicalJSON checks that the canonical form of a payload is valid JSON, canonical itself, and
// means the same as the input.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":1,"a":[true,null,"x"]}`, ` { "z" : 1.50 , "y":{"x":"<&>"} } `, `{"a":1,"a":2}`, `[]`, `{"a":"\ud800"}`, `{"n":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := CanonicalJSON(data)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form %q is not JSON", c)
		}
		again, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("canonical form not stable: %q → %q (%v)", c, again, err)
		}
		var a, b any
		da, db := json.NewDecoder(bytes.NewReader(data)), json.NewDecoder(bytes.NewReader(c))
		da.UseNumber()
		db.UseNumber()
		if da.Decode(&a) != nil || db.Decode(&b) != nil {
			t.Fatal("decode")
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("canonical form changed the meaning: %s vs %s", ja, jb)
		}
	})
}
