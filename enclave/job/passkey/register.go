package passkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
)

// Registration is a credential registered in the browser, as VerifyRegistration read it from the
// authenticator data.
type Registration struct {
	CredentialID []byte
	// PublicKey is the credential's public key as DER SubjectPublicKeyInfo.
	PublicKey []byte
	SignCount uint32
}

// VerifyRegistration checks what navigator.credentials.create returned (WebAuthn §7.1, attestation
// "none": the credential is trusted because the party signs its enrolment statement, not because of
// its maker): client data of type webauthn.create with the challenge and origin, authenticator data
// for rpID with the user present and verified and attested credential data holding credentialID and
// an ES256 COSE key. It returns the credential.
func VerifyRegistration(clientDataJSON, authenticatorData, challenge []byte, origin, rpID string, credentialID []byte) (*Registration, error) {
	if err := checkOrigin(origin, rpID); err != nil {
		return nil, assertErr("%v", err)
	}
	if _, err := ParseClientData(clientDataJSON, "webauthn.create", challenge, origin); err != nil {
		return nil, err
	}
	ad, err := ParseAuthData(authenticatorData, rpID)
	if err != nil {
		return nil, err
	}
	if ad.Flags&FlagAT == 0 {
		return nil, assertErr("no attested credential data (flag AT unset)")
	}
	rest := ad.Rest
	if len(rest) < 18 {
		return nil, assertErr("attested credential data truncated")
	}
	n := int(binary.BigEndian.Uint16(rest[16:18]))
	rest = rest[18:]
	if n == 0 || n > MaxCredentialID || len(rest) < n {
		return nil, assertErr("credential id of %d bytes", n)
	}
	id := rest[:n]
	if !bytes.Equal(id, credentialID) {
		return nil, assertErr("the authenticator data names another credential than the one returned")
	}
	spki, _, err := parseCOSEKey(rest[n:])
	if err != nil {
		return nil, assertErr("credential public key: %v", err)
	}
	return &Registration{CredentialID: append([]byte(nil), id...), PublicKey: spki, SignCount: ad.SignCount}, nil
}

// parseCOSEKey reads an ES256 COSE_Key (RFC 9053: kty 2, alg -7, crv 1, x, y) from the start of b
// and returns it as DER SubjectPublicKeyInfo and the bytes after it.
func parseCOSEKey(b []byte) ([]byte, []byte, error) {
	d := &cborReader{b: b}
	major, n, err := d.head()
	if err != nil {
		return nil, nil, err
	}
	if major != 5 || n > 16 {
		return nil, nil, errors.New("not a CBOR map of at most 16 entries")
	}
	ints := map[int64]int64{}
	bins := map[int64][]byte{}
	for range n {
		k, err := d.int()
		if err != nil {
			return nil, nil, fmt.Errorf("key: %w", err)
		}
		if _, dup := ints[k]; dup {
			return nil, nil, fmt.Errorf("key %d twice", k)
		}
		if _, dup := bins[k]; dup {
			return nil, nil, fmt.Errorf("key %d twice", k)
		}
		m, v, err := d.head()
		if err != nil {
			return nil, nil, err
		}
		switch m {
		case 0:
			ints[k] = int64(v)
		case 1:
			ints[k] = -1 - int64(v)
		case 2:
			bs, err := d.take(v)
			if err != nil {
				return nil, nil, err
			}
			bins[k] = bs
		default:
			return nil, nil, fmt.Errorf("key %d: unsupported CBOR major type %d", k, m)
		}
	}
	if ints[1] != 2 || ints[3] != AlgES256 || ints[-1] != 1 {
		return nil, nil, fmt.Errorf("not an ES256 P-256 key (kty %d, alg %d, crv %d)", ints[1], ints[3], ints[-1])
	}
	x, y := bins[-2], bins[-3]
	if len(x) != 32 || len(y) != 32 {
		return nil, nil, errors.New("x and y must be 32 bytes each")
	}
	raw := append(append([]byte{4}, x...), y...)
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, nil, errors.New("the point is not on P-256")
	}
	spki, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	return spki, d.b, nil
}

// cborReader reads the few definite-length CBOR items a COSE key holds.
type cborReader struct{ b []byte }

func (d *cborReader) take(n uint64) ([]byte, error) {
	if uint64(len(d.b)) < n {
		return nil, errors.New("CBOR truncated")
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out, nil
}

// head reads an item's major type and argument.
func (d *cborReader) head() (byte, uint64, error) {
	if len(d.b) == 0 {
		return 0, 0, errors.New("CBOR truncated")
	}
	major, ai := d.b[0]>>5, d.b[0]&0x1f
	d.b = d.b[1:]
	var size uint64
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai == 24:
		size = 1
	case ai == 25:
		size = 2
	case ai == 26:
		size = 4
	case ai == 27:
		size = 8
	default:
		return 0, 0, errors.New("indefinite or reserved CBOR length")
	}
	bs, err := d.take(size)
	if err != nil {
		return 0, 0, err
	}
	var v uint64
	for _, c := range bs {
		v = v<<8 | uint64(c)
	}
	return major, v, nil
}

// int reads a CBOR integer that fits an int64 comfortably.
func (d *cborReader) int() (int64, error) {
	m, v, err := d.head()
	if err != nil {
		return 0, err
	}
	if v > 1<<31 {
		return 0, errors.New("integer out of range")
	}
	switch m {
	case 0:
		return int64(v), nil
	case 1:
		return -1 - int64(v), nil
	}
	return 0, fmt.Errorf("want an integer, got CBOR major type %d", m)
}
