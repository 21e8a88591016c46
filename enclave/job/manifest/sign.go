package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"insitu/connectors/strictyaml"
	"insitu/enclave/keys"
)

// SignatureContext is the context string of a bank's signature over a manifest's canonical encoding
// (keys.Identity.Sign), so that the signature verifies as nothing else.
const SignatureContext = "insitu job manifest v1"

// SignedFormatV1 is the format version of a signed envelope.
const SignedFormatV1 = "insitu-signed-job-manifest-v1"

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Signed is a manifest with its bank's signature. Its encoding (Marshal) is one JSON object:
//
//	{"format":"insitu-signed-job-manifest-v1","manifest":{…canonical manifest…},
//	 "signature":"<base64 ML-DSA-65 signature>","signer":"<signer's key fingerprint>"}
//
// written canonically (sorted keys, no whitespace), with the manifest's canonical encoding as the
// value of "manifest": the bytes signed are the bytes carried.
type Signed struct {
	// Manifest is the signed manifest.
	Manifest *Manifest
	// Signer is the signer's keys.PublicIdentity.Fingerprint.
	Signer string
	// Signature is the ML-DSA-65 signature over Manifest.Canonical() under SignatureContext.
	Signature []byte
}

type signedWire struct {
	Format    string          `json:"format"`
	Manifest  json.RawMessage `json:"manifest"`
	Signature []byte          `json:"signature"`
	Signer    string          `json:"signer"`
}

// Sign validates m (applying its defaults, as Validate does) and signs its canonical encoding with
// the requesting party's identity: a bank's, or a researcher's (whose jobs the enclave confines to
// public and synthetic datasets), named as m.Bank names it.
func Sign(m *Manifest, id *keys.Identity) (*Signed, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if !CanRequest(id.Role) {
		return nil, &Error{Path: "bank", Rule: RuleSigner, Message: fmt.Sprintf("a manifest is signed by the bank or researcher requesting it, not by a %s", id.Role), Err: ErrSignature}
	}
	if id.Name != m.Bank {
		return nil, &Error{Path: "bank", Rule: RuleSigner, Message: fmt.Sprintf("the manifest names bank %q: %q cannot sign it", m.Bank, id.Name), Err: ErrSignature}
	}
	sig, err := id.Sign(m.Canonical(), SignatureContext)
	if err != nil {
		return nil, fmt.Errorf("manifest: sign: %w", err)
	}
	return &Signed{Manifest: m, Signer: id.Public().Fingerprint(), Signature: sig}, nil
}

// Verify checks that pub is the key of the bank the manifest names and that the signature is pub's
// over the manifest's canonical encoding under SignatureContext. Its errors are *Error with rule
// signer, wrapping ErrSignature and ErrInvalid.
func (s *Signed) Verify(pub keys.PublicIdentity) error {
	fail := func(format string, args ...any) error {
		return &Error{Rule: RuleSigner, Message: fmt.Sprintf(format, args...), Err: ErrSignature}
	}
	switch {
	case s.Manifest == nil:
		return fail("no manifest")
	case !CanRequest(pub.Role):
		return fail("signer %q is a %s: only the bank (or researcher) a manifest names may sign it", pub.Name, pub.Role)
	case pub.Name != s.Manifest.Bank:
		return fail("signer %q is not bank %q, which the manifest names", pub.Name, s.Manifest.Bank)
	case pub.Fingerprint() != s.Signer:
		return fail("the envelope names signer key %s, not %s's key %s", clip(s.Signer), pub.Name, pub.Fingerprint())
	case !pub.Verify(s.Manifest.Canonical(), SignatureContext, s.Signature):
		return fail("the signature is not %s's over this manifest", pub.Name)
	}
	return nil
}

// CanRequest reports whether a party of the role may sign and submit job manifests: banks, and
// researchers (on public and synthetic datasets only, which the enclave enforces).
func CanRequest(role string) bool { return role == keys.RoleBank || role == keys.RoleResearcher }

// Marshal returns the envelope's encoding. It panics if Manifest is nil (programmer error).
func (s *Signed) Marshal() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(signedWire{Format: SignedFormatV1, Manifest: s.Manifest.Canonical(), Signature: s.Signature, Signer: s.Signer}); err != nil {
		panic(fmt.Sprintf("manifest: encode signed envelope: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// ParseSigned reads a signed envelope strictly: exactly the keys format, manifest, signature and
// signer, each once and of its type; a manifest that Parse accepts and that is written in its
// canonical encoding; and the whole envelope in Marshal's form (one trailing newline allowed). It
// does not verify the signature: call Verify with the bank's registered public identity. Errors are
// *Error wrapping ErrInvalid; paths inside the manifest start with "manifest.".
func ParseSigned(data []byte, name string) (*Signed, error) {
	s, err := parseSigned(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
		}
		return nil, err
	}
	return s, nil
}

func parseSigned(data []byte) (*Signed, error) {
	if len(data) > MaxSize+64<<10 {
		return nil, &Error{Rule: RuleSize, Message: fmt.Sprintf("%d bytes: too large for a signed manifest", len(data))}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w signedWire
	if err := dec.Decode(&w); err != nil {
		return nil, wireError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &Error{Rule: RuleSyntax, Message: "trailing data after the signed manifest"}
	}
	switch {
	case w.Format != SignedFormatV1:
		return nil, errAt("format", RuleFormat, "%q is not a signed-manifest format this enclave reads: want %s", clip(w.Format), SignedFormatV1)
	case len(w.Manifest) == 0:
		return nil, errAt("manifest", RuleRequired, "missing: the signed manifest")
	case !fingerprintRE.MatchString(w.Signer):
		return nil, errAt("signer", RuleSigner, "%q is not a key fingerprint (32 lower-case hex digits)", clip(w.Signer))
	case len(w.Signature) == 0:
		return nil, errAt("signature", RuleRequired, "missing: the signature")
	}
	m, err := parse(w.Manifest)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Path = strictyaml.Join("manifest", e.Path)
			e.Line = 0
		}
		return nil, err
	}
	s := &Signed{Manifest: m, Signer: w.Signer, Signature: w.Signature}
	if !bytes.Equal(w.Manifest, m.Canonical()) {
		return nil, errAt("manifest", RuleSigner, "the manifest is not in its canonical encoding: sign it with insitu job sign")
	}
	if !bytes.Equal(bytes.TrimSuffix(data, []byte{'\n'}), s.Marshal()) {
		return nil, errAt("", RuleSigner, "the envelope is not in its canonical form (sorted keys, no whitespace, each key once)")
	}
	return s, nil
}

func wireError(err error) *Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return &Error{Path: te.Field, Rule: RuleType, Message: fmt.Sprintf("want %s, got %s", te.Type, te.Value), Err: err}
	case errors.As(err, &se):
		return &Error{Rule: RuleSyntax, Message: "not valid JSON: " + se.Error(), Err: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Path: f, Rule: RuleUnknownField, Message: fmt.Sprintf("unknown key %q (known keys: format, manifest, signature, signer)", clip(f)), Err: err}
	case errors.Is(err, io.EOF):
		return &Error{Rule: RuleSyntax, Message: "the file is empty", Err: err}
	}
	return &Error{Rule: RuleSyntax, Message: "not valid JSON: " + err.Error(), Err: err}
}
