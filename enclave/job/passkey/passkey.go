// Package passkey verifies WebAuthn passkeys enrolled under a party's ML-DSA identity: the
// enrolment statement a steward signs for a credential registered in the browser, and the
// assertions that credential makes, which approve jobs in the steward console.
//
// Call VerifyRegistration on what navigator.credentials.create returned to get the credential and
// its public key; put them in a Statement, which the party signs with its ML-DSA key under
// EnrolContext (an Enrolment). Evidence.Verify then checks an assertion offline against a challenge
// (for an approval: the manifest hash), with the party's public identity only.
//
// Only ES256 credentials (ECDSA P-256 with SHA-256, COSE algorithm -7) are accepted. Verification
// follows the WebAuthn Level 2 relying-party steps: the client data's type, challenge and origin,
// the authenticator data's RP ID hash and its user-present and user-verified flags, and the
// signature over the authenticator data followed by the SHA-256 of the client data. Signature
// counters are returned for the caller to compare with the last one seen (offline verification
// cannot).
package passkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"insitu/enclave/keys"
)

const (
	// StatementFormat is the value of Statement.Format.
	StatementFormat = "insitu-passkey-enrolment-v1"
	// EnrolContext is the ML-DSA-65 context string of a party's signature over a statement.
	EnrolContext = "insitu passkey enrolment v1"
	// AlgES256 is the COSE algorithm identifier of ECDSA P-256 with SHA-256.
	AlgES256 = -7
	// MaxCredentialID bounds a credential id (the WebAuthn limit is 1023 bytes).
	MaxCredentialID = 1023
	// MaxStatement bounds an encoded statement, in bytes.
	MaxStatement = 4 << 10
	// maxClientData bounds client data JSON.
	maxClientData = 4 << 10
	// maxAuthData bounds authenticator data.
	maxAuthData = 4 << 10
)

// Authenticator data flags (WebAuthn §6.1).
const (
	FlagUP = 0x01 // user present
	FlagUV = 0x04 // user verified
	FlagAT = 0x40 // attested credential data included
	FlagED = 0x80 // extension data included
)

var (
	// ErrStatement is wrapped when an enrolment statement is malformed or its signature does not
	// verify.
	ErrStatement = errors.New("invalid passkey enrolment")
	// ErrAssertion is wrapped when a WebAuthn assertion or registration does not verify.
	ErrAssertion = errors.New("invalid passkey assertion")
)

// Statement binds a WebAuthn credential to a party: the party signs it with its ML-DSA key (an
// Enrolment). It names the relying party ID and the origin the credential was registered at, which
// every assertion must come from.
type Statement struct {
	Format string `json:"format"`
	// Party and Fingerprint are the party's registered name and ML-DSA key fingerprint.
	Party       string `json:"party"`
	Fingerprint string `json:"fingerprint"`
	// CredentialID is the WebAuthn credential id; PublicKey its public key as DER SubjectPublicKeyInfo.
	CredentialID []byte    `json:"credential_id"`
	PublicKey    []byte    `json:"public_key"`
	Algorithm    int       `json:"algorithm"`
	RPID         string    `json:"rp_id"`
	Origin       string    `json:"origin"`
	Created      time.Time `json:"created"`
}

// Marshal encodes the statement: the bytes a party signs.
func (s *Statement) Marshal() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

func stmtErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrStatement, fmt.Sprintf(format, args...))
}

func (s *Statement) check() error {
	switch {
	case s.Format != StatementFormat:
		return stmtErr("format %q, want %q", s.Format, StatementFormat)
	case s.Party == "" || len(s.Party) > 64:
		return stmtErr("party: 1 to 64 bytes")
	case len(s.Fingerprint) != 32:
		return stmtErr("fingerprint: a key fingerprint of 32 hex digits")
	case len(s.CredentialID) == 0 || len(s.CredentialID) > MaxCredentialID:
		return stmtErr("credential_id: 1 to %d bytes", MaxCredentialID)
	case s.Algorithm != AlgES256:
		return stmtErr("algorithm %d: only ES256 (%d) credentials are accepted", s.Algorithm, AlgES256)
	case s.RPID == "" || strings.ContainsAny(s.RPID, "/:@ "):
		return stmtErr("rp_id %q: a host name", s.RPID)
	}
	if err := checkOrigin(s.Origin, s.RPID); err != nil {
		return stmtErr("%v", err)
	}
	if _, err := s.Key(); err != nil {
		return err
	}
	return nil
}

// checkOrigin checks that origin is scheme://host[:port] with host the RP ID or a subdomain of it,
// https, or http on localhost (which browsers treat as a secure context).
func checkOrigin(origin, rpID string) error {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("origin %q: want scheme://host[:port]", origin)
	}
	host := u.Hostname()
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("origin %q is not on relying party %q", origin, rpID)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && (host == "localhost" || strings.HasSuffix(host, ".localhost"))) {
		return fmt.Errorf("origin %q: https, or http on localhost only", origin)
	}
	return nil
}

// Key returns the statement's ECDSA P-256 public key.
func (s *Statement) Key() (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(s.PublicKey)
	if err != nil {
		return nil, stmtErr("public_key: not a DER SubjectPublicKeyInfo: %v", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, stmtErr("public_key: not an ECDSA P-256 key")
	}
	return ek, nil
}

// ParseStatement reads an encoded statement strictly: exactly the Statement's keys, checked.
func ParseStatement(data []byte) (*Statement, error) {
	if len(data) > MaxStatement {
		return nil, stmtErr("%d bytes, more than %d", len(data), MaxStatement)
	}
	var s Statement
	if err := strictDecode(data, &s); err != nil {
		return nil, stmtErr("%v", err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// Enrolment is a statement with the party's ML-DSA-65 signature over its bytes under EnrolContext.
type Enrolment struct {
	Statement []byte `json:"statement"`
	Signature []byte `json:"signature"`
}

// Verify parses the statement and checks that pub signed it and that it names pub.
func (e Enrolment) Verify(pub keys.PublicIdentity) (*Statement, error) {
	s, err := ParseStatement(e.Statement)
	if err != nil {
		return nil, err
	}
	if s.Party != pub.Name || s.Fingerprint != pub.Fingerprint() {
		return nil, stmtErr("the statement names %s (key %s), not %s (key %s)", s.Party, s.Fingerprint, pub.Name, pub.Fingerprint())
	}
	if !pub.Verify(e.Statement, EnrolContext, e.Signature) {
		return nil, stmtErr("%s's signature over the statement does not verify", pub.Name)
	}
	return s, nil
}

// Assertion is what navigator.credentials.get returned, as the WebAuthn API gives it.
type Assertion struct {
	CredentialID      []byte `json:"credential_id"`
	AuthenticatorData []byte `json:"authenticator_data"`
	ClientDataJSON    []byte `json:"client_data_json"`
	Signature         []byte `json:"signature"`
}

// Evidence is what an approval by passkey carries besides the assertion's signature: the rest of the
// assertion and the enrolment that binds the credential to the steward, so that it verifies offline
// with the steward's public identity alone.
type Evidence struct {
	CredentialID       []byte `json:"credential_id"`
	AuthenticatorData  []byte `json:"authenticator_data"`
	ClientDataJSON     []byte `json:"client_data_json"`
	Statement          []byte `json:"statement"`
	StatementSignature []byte `json:"statement_signature"`
}

// NewEvidence returns the evidence of assertion a from the credential enrolled by e.
func NewEvidence(a *Assertion, e Enrolment) *Evidence {
	return &Evidence{CredentialID: a.CredentialID, AuthenticatorData: a.AuthenticatorData, ClientDataJSON: a.ClientDataJSON,
		Statement: e.Statement, StatementSignature: e.Signature}
}

// Verify checks, with pub's public identity only, that pub enrolled the credential and that sig
// with the evidence is a valid assertion over challenge. It returns the statement and the
// assertion's signature counter.
func (ev *Evidence) Verify(pub keys.PublicIdentity, challenge, sig []byte) (*Statement, uint32, error) {
	s, err := Enrolment{Statement: ev.Statement, Signature: ev.StatementSignature}.Verify(pub)
	if err != nil {
		return nil, 0, err
	}
	n, err := s.VerifyAssertion(&Assertion{CredentialID: ev.CredentialID, AuthenticatorData: ev.AuthenticatorData,
		ClientDataJSON: ev.ClientDataJSON, Signature: sig}, challenge)
	if err != nil {
		return nil, 0, err
	}
	return s, n, nil
}

func assertErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrAssertion, fmt.Sprintf(format, args...))
}

// ClientData is the part of the client data JSON a relying party checks.
type ClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// ParseClientData reads client data JSON and checks its type, challenge (base64url of challenge,
// unpadded) and origin, and that it was not made in a cross-origin frame.
func ParseClientData(data []byte, typ string, challenge []byte, origin string) (*ClientData, error) {
	if len(data) > maxClientData {
		return nil, assertErr("client data: %d bytes, more than %d", len(data), maxClientData)
	}
	var c ClientData
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, assertErr("client data is not JSON: %v", err)
	}
	if c.Type != typ {
		return nil, assertErr("client data type %q, want %q", c.Type, typ)
	}
	got, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.Challenge, "="))
	if err != nil || subtle.ConstantTimeCompare(got, challenge) != 1 {
		return nil, assertErr("the client data's challenge is not the one asked for")
	}
	if c.Origin != origin {
		return nil, assertErr("origin %q, want %q", c.Origin, origin)
	}
	if c.CrossOrigin {
		return nil, assertErr("made in a cross-origin frame")
	}
	return &c, nil
}

// AuthData is parsed authenticator data.
type AuthData struct {
	RPIDHash  [32]byte
	Flags     byte
	SignCount uint32
	// Rest is what follows the fixed 37 bytes: attested credential data and extensions.
	Rest []byte
}

// ParseAuthData splits authenticator data and checks the RP ID hash and that the user was present
// and verified.
func ParseAuthData(data []byte, rpID string) (*AuthData, error) {
	if len(data) < 37 || len(data) > maxAuthData {
		return nil, assertErr("authenticator data of %d bytes: want 37 to %d", len(data), maxAuthData)
	}
	a := &AuthData{Flags: data[32], SignCount: binary.BigEndian.Uint32(data[33:37]), Rest: data[37:]}
	copy(a.RPIDHash[:], data[:32])
	want := sha256.Sum256([]byte(rpID))
	if a.RPIDHash != want {
		return nil, assertErr("the authenticator data is for another relying party than %q", rpID)
	}
	if a.Flags&FlagUP == 0 {
		return nil, assertErr("the user was not present (flag UP unset)")
	}
	if a.Flags&FlagUV == 0 {
		return nil, assertErr("the user was not verified (flag UV unset): the authenticator must ask for a PIN or biometric")
	}
	return a, nil
}

// VerifyAssertion checks an assertion from the statement's credential over challenge (WebAuthn
// §7.2): the credential id, client data of type webauthn.get with the challenge and the statement's
// origin, authenticator data for the statement's RP ID with the user present and verified, and the
// ES256 signature over the authenticator data and the SHA-256 of the client data. It returns the
// signature counter.
func (s *Statement) VerifyAssertion(a *Assertion, challenge []byte) (uint32, error) {
	if !bytes.Equal(a.CredentialID, s.CredentialID) {
		return 0, assertErr("made by another credential than the one enrolled")
	}
	if _, err := ParseClientData(a.ClientDataJSON, "webauthn.get", challenge, s.Origin); err != nil {
		return 0, err
	}
	ad, err := ParseAuthData(a.AuthenticatorData, s.RPID)
	if err != nil {
		return 0, err
	}
	key, err := s.Key()
	if err != nil {
		return 0, err
	}
	cd := sha256.Sum256(a.ClientDataJSON)
	signed := sha256.Sum256(append(append([]byte(nil), a.AuthenticatorData...), cd[:]...))
	if !ecdsa.VerifyASN1(key, signed[:], a.Signature) {
		return 0, assertErr("the signature does not verify against the enrolled credential's key")
	}
	return ad.SignCount, nil
}
