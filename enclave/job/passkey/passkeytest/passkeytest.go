// Package passkeytest is a software WebAuthn authenticator for tests: it registers ES256 credentials
// and makes assertions as a browser and a platform authenticator would, so that enrolment, sign-in
// and approval by passkey can be tested without a browser.
//
// Call New, then Register for what navigator.credentials.create would return, Enrol for a signed
// enrolment, and Assert for what navigator.credentials.get would return.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"time"

	"insitu/enclave/job/passkey"
	"insitu/enclave/keys"
)

// Authenticator holds one credential.
type Authenticator struct {
	RPID, Origin string
	ID           []byte
	Key          *ecdsa.PrivateKey
	// Flags are the authenticator data flags of assertions; UP and UV when New made it.
	Flags byte
	// Count is the signature counter of the next assertion; it is incremented after each.
	Count uint32
}

// New returns an authenticator with a fresh credential for rpID, used at origin.
func New(rpID, origin string) *Authenticator {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &Authenticator{RPID: rpID, Origin: origin, ID: id, Key: k, Flags: passkey.FlagUP | passkey.FlagUV, Count: 1}
}

// ClientData returns client data JSON of type typ with challenge at the authenticator's origin.
func (a *Authenticator) ClientData(typ string, challenge []byte) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": base64.RawURLEncoding.EncodeToString(challenge),
		"origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) authData(flags byte, extra []byte) []byte {
	h := sha256.Sum256([]byte(a.RPID))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.Count)
	return append(out, extra...)
}

// Register returns the client data JSON and authenticator data of a registration over challenge.
func (a *Authenticator) Register(challenge []byte) (clientData, authData []byte) {
	x, y := make([]byte, 32), make([]byte, 32)
	a.Key.PublicKey.X.FillBytes(x)
	a.Key.PublicKey.Y.FillBytes(y)
	cose := []byte{0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20}
	cose = append(cose, x...)
	cose = append(cose, 0x22, 0x58, 0x20)
	cose = append(cose, y...)
	acd := make([]byte, 16) // AAGUID
	acd = binary.BigEndian.AppendUint16(acd, uint16(len(a.ID)))
	acd = append(acd, a.ID...)
	acd = append(acd, cose...)
	return a.ClientData("webauthn.create", challenge), a.authData(a.Flags|passkey.FlagAT, acd)
}

// PublicKey returns the credential's public key as DER SubjectPublicKeyInfo.
func (a *Authenticator) PublicKey() []byte {
	b, err := x509.MarshalPKIXPublicKey(&a.Key.PublicKey)
	if err != nil {
		panic(err)
	}
	return b
}

// Statement returns the enrolment statement of the credential for party.
func (a *Authenticator) Statement(party keys.PublicIdentity) *passkey.Statement {
	return &passkey.Statement{Format: passkey.StatementFormat, Party: party.Name, Fingerprint: party.Fingerprint(),
		CredentialID: a.ID, PublicKey: a.PublicKey(), Algorithm: passkey.AlgES256, RPID: a.RPID, Origin: a.Origin,
		Created: time.Now().UTC().Truncate(time.Second)}
}

// Enrol returns the credential's enrolment signed by id.
func (a *Authenticator) Enrol(id *keys.Identity) passkey.Enrolment {
	st, err := a.Statement(id.Public()).Marshal()
	if err != nil {
		panic(err)
	}
	sig, err := id.Sign(st, passkey.EnrolContext)
	if err != nil {
		panic(err)
	}
	return passkey.Enrolment{Statement: st, Signature: sig}
}

// Assert returns an assertion over challenge, and increments the counter.
func (a *Authenticator) Assert(challenge []byte) *passkey.Assertion {
	cd := a.ClientData("webauthn.get", challenge)
	ad := a.authData(a.Flags, nil)
	a.Count++
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.Key, digest[:])
	if err != nil {
		panic(err)
	}
	return &passkey.Assertion{CredentialID: a.ID, AuthenticatorData: ad, ClientDataJSON: cd, Signature: sig}
}
