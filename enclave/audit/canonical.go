package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"insitu/connectors/ident"
)

// Digest is a SHA-256 hash. It prints and marshals as lower-case hex.
type Digest [sha256.Size]byte

// String returns the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText returns the digest in hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a digest in hex.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 2*sha256.Size {
		return fmt.Errorf("audit: digest of %d hex characters, want %d", len(b), 2*sha256.Size)
	}
	_, err := hex.Decode(d[:], b)
	return err
}

// ParseDigest reads a digest in hex.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	return d, d.UnmarshalText([]byte(s))
}

// recordDomain starts the canonical encoding of a record, so that no other hashed object of insitu
// can be taken for one.
const recordDomain = "insitu-audit-record-v1\x00"

// Canonical returns the canonical encoding of the record's hashed content: the domain string
// "insitu-audit-record-v1" and a zero byte, then seq as an 8-byte big-endian integer, time as
// 8-byte big-endian nanoseconds since the Unix epoch (two's complement), kind, actor, subject and
// payload each as a 4-byte big-endian length followed by the bytes, and the 32 bytes of prev_hash.
// Hash is SHA-256 over it. The encoding is injective: two records with different content never
// share an encoding.
func (r *Record) Canonical() []byte {
	return canonical(r.Seq, r.Time.UnixNano(), string(r.Kind), r.Actor, r.Subject, r.Payload, r.PrevHash)
}

// ComputeHash returns SHA-256 over the record's canonical encoding: the value its Hash must have.
func (r *Record) ComputeHash() Digest { return sha256.Sum256(r.Canonical()) }

func canonical(seq, timeNS int64, kind, actor, subject string, payload []byte, prev Digest) []byte {
	b := make([]byte, 0, len(recordDomain)+16+16+len(kind)+len(actor)+len(subject)+len(payload)+len(prev))
	b = append(b, recordDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(timeNS))
	for _, s := range [][]byte{[]byte(kind), []byte(actor), []byte(subject), payload} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return append(b, prev[:]...)
}

// errCanonical is returned by parseCanonical for bytes that are not a canonical encoding.
var errCanonical = errors.New("not a canonical audit record encoding")

// parseCanonical decodes a canonical encoding; it is the inverse of canonical.
func parseCanonical(b []byte) (*Record, error) {
	rest, ok := bytes.CutPrefix(b, []byte(recordDomain))
	if !ok || len(rest) < 16 {
		return nil, errCanonical
	}
	r := &Record{Seq: int64(binary.BigEndian.Uint64(rest)), Time: time.Unix(0, int64(binary.BigEndian.Uint64(rest[8:]))).UTC()}
	rest = rest[16:]
	var parts [4][]byte
	for i := range parts {
		if len(rest) < 4 {
			return nil, errCanonical
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(len(rest)) < uint64(n) {
			return nil, errCanonical
		}
		parts[i], rest = rest[:n], rest[n:]
	}
	if len(rest) != len(r.PrevHash) {
		return nil, errCanonical
	}
	copy(r.PrevHash[:], rest)
	r.Kind, r.Actor, r.Subject, r.Payload = Kind(parts[0]), string(parts[1]), string(parts[2]), json.RawMessage(parts[3])
	return r, nil
}

// MaxPayload is the largest payload, in bytes of canonical JSON, an event may carry.
const MaxPayload = 64 << 10

// CanonicalJSON returns the canonical form of a JSON object: compact, object keys sorted by their
// UTF-8 bytes, numbers as written, no HTML escaping. It fails on anything but one JSON object.
func CanonicalJSON(data []byte) (json.RawMessage, error) {
	c, _, err := canonicalJSON(data)
	return c, err
}

// canonicalJSON returns the canonical form of a JSON object and its decoded value.
func canonicalJSON(data []byte) (json.RawMessage, any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("payload is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("payload has data after its JSON object")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, nil, errors.New("payload is not a JSON object")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), v, nil
}

// findIdentifier returns the JSON path of the first key or value of v (a decoded payload) that holds
// a valid credit code or resident identity number, or "" when there is none.
func findIdentifier(v any, path string) string {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if holdsIdentifier(k) {
				return path + " (a key)"
			}
			if f := findIdentifier(x[k], path+"."+k); f != "" {
				return f
			}
		}
	case []any:
		for i, e := range x {
			if f := findIdentifier(e, fmt.Sprintf("%s[%d]", path, i)); f != "" {
				return f
			}
		}
	case string:
		if holdsIdentifier(x) {
			return path
		}
	case json.Number:
		if holdsIdentifier(x.String()) {
			return path
		}
	}
	return ""
}

// idLen is the length of both a unified social credit code and a resident identity number.
const idLen = 18

// holdsIdentifier reports whether s contains, as a run of ASCII letters and digits of exactly 18
// characters, a valid unified social credit code or resident identity number.
func holdsIdentifier(s string) bool {
	if len(s) < idLen {
		return false
	}
	start := -1
	for i := 0; i <= len(s); i++ {
		alnum := i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 'a' && s[i] <= 'z')
		switch {
		case alnum && start < 0:
			start = i
		case !alnum && start >= 0:
			if i-start == idLen {
				tok := s[start:i]
				if ident.Validate(ident.KindUSCC, tok) == nil || ident.Validate(ident.KindResidentID, tok) == nil {
					return true
				}
			}
			start = -1
		}
	}
	return false
}

// checkText checks actor and subject: valid UTF-8, no control characters, at most max bytes.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return &EventError{Field: field, Reason: fmt.Sprintf("%d bytes, at most %d allowed", len(s), max)}
	}
	if !utf8.ValidString(s) {
		return &EventError{Field: field, Reason: "not valid UTF-8"}
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &EventError{Field: field, Reason: "holds a control character"}
	}
	if holdsIdentifier(s) {
		return &EventError{Field: field, Reason: "holds a credit code or resident identity number; use a pseudonym or a count", Err: ErrPersonalData}
	}
	return nil
}
