package ident

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
)

// PseudonymKeySize is the length of a pseudonymisation key in bytes.
const PseudonymKeySize = 32

// Pseudonymizer maps identifiers to keyed pseudonyms: HMAC-SHA-256 under a per-job key over the
// identifier's kind and canonical form. The same identifier gives the same pseudonym within a job and
// unlinkable pseudonyms across jobs. A Pseudonymizer is safe for concurrent use.
type Pseudonymizer struct {
	key []byte
}

// NewPseudonymizer returns a Pseudonymizer keyed by key, which must be PseudonymKeySize random bytes.
func NewPseudonymizer(key []byte) (*Pseudonymizer, error) {
	if len(key) != PseudonymKeySize {
		return nil, errors.New("ident: pseudonymisation key must be 32 bytes")
	}
	return &Pseudonymizer{key: append([]byte(nil), key...)}, nil
}

// Pseudonym returns the pseudonym of an identifier of kind k: "p_" followed by the unpadded
// base64url encoding of the 32-byte HMAC. The identifier is normalized first, so "x" and "X" check
// characters give the same pseudonym; an invalid identifier is an error.
func (p *Pseudonymizer) Pseudonym(k Kind, id string) (string, error) {
	n, err := Normalize(k, id)
	if err != nil {
		return "", err
	}
	var sum [sha256.Size]byte
	p.sum(k, n, sum[:0])
	return "p_" + base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

func (p *Pseudonymizer) sum(k Kind, canonical string, dst []byte) []byte {
	var m hash.Hash = hmac.New(sha256.New, p.key)
	m.Write([]byte(k))
	m.Write([]byte{0})
	m.Write([]byte(canonical))
	return m.Sum(dst)
}
