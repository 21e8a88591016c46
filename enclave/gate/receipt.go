package gate

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job/passkey"
	"insitu/enclave/keys"
)

// Receipt formats and the signature context.
const (
	// ReceiptFormat is the value of Receipt.Format.
	ReceiptFormat = "insitu-receipt-v1"
	// SignedReceiptFormat is the format of the signed envelope.
	SignedReceiptFormat = "insitu-signed-receipt-v1"
	// ReceiptContext is the ML-DSA-65 context string of the enclave's signature over a receipt.
	ReceiptContext = "insitu release receipt v1"
	// MaxReceiptSize bounds a signed receipt, in bytes.
	MaxReceiptSize = 1 << 20
)

// Receipt is what the enclave signs when outputs leave: which request, approved by whom, run on
// what, released as what, recorded where in the audit log. It holds no data value: hashes, sizes
// and the gate's verdict only.
type Receipt struct {
	Format string `json:"format"`
	Job    string `json:"job"`
	// Bank and BankFingerprint name the bank the result is sealed to.
	Bank            string `json:"bank"`
	BankFingerprint string `json:"bank_fingerprint"`
	// Enclave is the fingerprint of the enclave identity that signs the receipt.
	Enclave string `json:"enclave"`
	// ManifestHash is the job manifest's hash, "sha256:" and hex: what the bank signed and the
	// stewards approved.
	ManifestHash string `json:"manifest_hash"`
	Purpose      string `json:"purpose"`
	Mode         string `json:"mode"`
	// Approvals are the stewards' approvals counted for the job, each with its signature over the
	// manifest hash (job.ApprovalMessage under job.ApprovalContext); Quorum is how many were needed.
	Approvals []Approval `json:"approvals"`
	Quorum    int        `json:"quorum"`
	// Waiver is the steward's waiver of model verification, when the gate released under one.
	Waiver              *Waiver       `json:"waiver,omitempty"`
	Dataset             DatasetRef    `json:"dataset"`
	Plugin              string        `json:"plugin"`
	AuthorizationDigest string        `json:"authorization_digest"`
	Cohort              CohortSummary `json:"cohort"`
	Outputs             OutputHashes  `json:"outputs"`
	Gate                Verdict       `json:"gate"`
	// Privacy is the privacy budget an aggregate-mode job's answers spent; nil in the other modes.
	Privacy *Privacy `json:"privacy,omitempty"`
	// Audit is the head of the audit log at the release: the release record's seq and hash.
	Audit      audit.Head `json:"audit"`
	ReleasedAt time.Time  `json:"released_at"`
}

// Privacy is the differential-privacy budget a job spent: its answers together are (Epsilon,
// Delta)-differentially private.
type Privacy struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// Approval is one steward's recorded approval: an ML-DSA-65 signature over the manifest hash, or a
// passkey assertion from the console whose challenge is the manifest hash, with the rest of the
// assertion and the steward's signed enrolment of the credential in WebAuthn.
type Approval struct {
	Steward     string            `json:"steward"`
	Fingerprint string            `json:"fingerprint"`
	Signature   []byte            `json:"signature"`
	WebAuthn    *passkey.Evidence `json:"webauthn,omitempty"`
	At          time.Time         `json:"at"`
}

// OutputHashes identifies what left: the SHA-256 (hex) of each released artefact's canonical JSON,
// of the whole result bundle and of the sealed file, and their sizes.
type OutputHashes struct {
	Weights     string   `json:"weights_sha256,omitempty"`
	Trees       string   `json:"trees_sha256,omitempty"`
	Scorecard   string   `json:"scorecard_sha256,omitempty"`
	Scores      string   `json:"scores_sha256,omitempty"`
	ScoreCount  int      `json:"score_count,omitempty"`
	Metrics     string   `json:"metrics_sha256,omitempty"`
	MetricNames []string `json:"metric_names,omitempty"`
	Bundle      string   `json:"bundle_sha256"`
	BundleBytes int64    `json:"bundle_bytes"`
	Sealed      string   `json:"sealed_sha256"`
	SealedBytes int64    `json:"sealed_bytes"`
}

// signedReceipt is the envelope's encoding.
type signedReceipt struct {
	Format    string          `json:"format"`
	Receipt   json.RawMessage `json:"receipt"`
	Signature []byte          `json:"signature"`
	Signer    string          `json:"signer"`
}

// canonicalJSON marshals v and returns its canonical form (audit.CanonicalJSON: sorted keys, no
// whitespace, no HTML escaping), for a JSON object or array.
func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(struct {
		V any `json:"v"`
	}{v})
	if err != nil {
		return nil, err
	}
	c, err := audit.CanonicalJSON(b)
	if err != nil {
		return nil, err
	}
	return c[len(`{"v":`) : len(c)-1], nil
}

// signReceipt returns the signed envelope of r.
func signReceipt(r *Receipt, id *keys.Identity) ([]byte, error) {
	body, err := canonicalJSON(r)
	if err != nil {
		return nil, fmt.Errorf("encode receipt: %w", err)
	}
	sig, err := id.Sign(body, ReceiptContext)
	if err != nil {
		return nil, fmt.Errorf("sign receipt: %w", err)
	}
	env, err := canonicalJSON(signedReceipt{Format: SignedReceiptFormat, Receipt: body, Signature: sig, Signer: id.Public().Fingerprint()})
	if err != nil {
		return nil, fmt.Errorf("encode receipt: %w", err)
	}
	return append(env, '\n'), nil
}

var (
	hashRE   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	hexRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	fprintRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// ParseReceipt reads a signed receipt strictly: exactly the envelope's keys, a receipt written in its
// canonical encoding with exactly the Receipt's keys and well-formed hashes, and nothing after the
// envelope but one newline. It checks no signature: call VerifyReceipt for that. Errors wrap
// ErrReceipt.
func ParseReceipt(data []byte) (*Receipt, error) {
	r, _, err := parseReceipt(data)
	return r, err
}

func receiptErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrReceipt, fmt.Sprintf(format, args...))
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

func parseReceipt(data []byte) (*Receipt, *signedReceipt, error) {
	if len(data) > MaxReceiptSize {
		return nil, nil, receiptErr("%d bytes, more than the %d a receipt may have", len(data), MaxReceiptSize)
	}
	var env signedReceipt
	if err := strictDecode(data, &env); err != nil {
		return nil, nil, receiptErr("not a signed receipt: %v", err)
	}
	if env.Format != SignedReceiptFormat {
		return nil, nil, receiptErr("format %q, want %q", env.Format, SignedReceiptFormat)
	}
	canon, err := canonicalJSON(env)
	if err != nil || !bytes.Equal(bytes.TrimSuffix(data, []byte("\n")), canon) {
		return nil, nil, receiptErr("the envelope is not in its canonical encoding (sorted keys, no whitespace)")
	}
	if body, err := audit.CanonicalJSON(env.Receipt); err != nil || !bytes.Equal(body, env.Receipt) {
		return nil, nil, receiptErr("the receipt is not in its canonical encoding")
	}
	var r Receipt
	if err := strictDecode(env.Receipt, &r); err != nil {
		return nil, nil, receiptErr("receipt: %v", err)
	}
	if err := r.check(); err != nil {
		return nil, nil, err
	}
	if again, err := canonicalJSON(&r); err != nil || !bytes.Equal(again, env.Receipt) {
		return nil, nil, receiptErr("the receipt holds values outside its schema (a key given twice, an empty value written out, or a number or time in another spelling)")
	}
	return &r, &env, nil
}

func (r *Receipt) check() error {
	switch {
	case r.Format != ReceiptFormat:
		return receiptErr("receipt format %q, want %q", r.Format, ReceiptFormat)
	case !idRE.MatchString(r.Job):
		return receiptErr("job id %q", r.Job)
	case !hashRE.MatchString(r.ManifestHash):
		return receiptErr("manifest_hash %q is not sha256: and 64 hex digits", r.ManifestHash)
	case !fprintRE.MatchString(r.Enclave) || !fprintRE.MatchString(r.BankFingerprint):
		return receiptErr("enclave and bank_fingerprint must be key fingerprints (32 hex digits)")
	case r.Audit.Seq < 1:
		return receiptErr("audit head seq %d", r.Audit.Seq)
	case !hexRE.MatchString(r.Outputs.Bundle) || !hexRE.MatchString(r.Outputs.Sealed):
		return receiptErr("outputs: bundle_sha256 and sealed_sha256 must be 64 hex digits")
	case r.Gate.Result != VerdictVerified && r.Gate.Result != VerdictWaived && r.Gate.Result != VerdictStructure:
		return receiptErr("gate result %q", r.Gate.Result)
	case r.Gate.Result == VerdictWaived && r.Waiver == nil:
		return receiptErr("a waived verification without its waiver")
	case r.Privacy != nil && !(r.Privacy.Epsilon >= 0 && r.Privacy.Delta >= 0 && r.Privacy.Delta < 1):
		return receiptErr("privacy: epsilon and delta must be >= 0, delta below 1")
	}
	for i, a := range r.Approvals {
		if a.Steward == "" || !fprintRE.MatchString(a.Fingerprint) || len(a.Signature) == 0 {
			return receiptErr("approvals[%d]: a steward, a key fingerprint and a signature are required", i)
		}
	}
	return nil
}

// manifestDigest returns the 32 bytes of the receipt's manifest hash: what approvals sign.
func (r *Receipt) manifestDigest() []byte {
	b, _ := hex.DecodeString(strings.TrimPrefix(r.ManifestHash, "sha256:"))
	return b
}

// VerifyOptions say which stewards' approvals a receipt must carry.
type VerifyOptions struct {
	// Stewards are the public identities of the stewards the verifier trusts. Every approval (and
	// waiver) the receipt lists by one of their fingerprints must carry a valid signature.
	Stewards []keys.PublicIdentity
	// MinApprovals is how many distinct stewards among Stewards must have validly approved. Zero
	// means the quorum the receipt states when Stewards is not empty, and none when it is (the
	// approvals are then not checked, which the caller should say).
	MinApprovals int
}

// VerifyReceipt checks a signed receipt offline, with public keys only: it parses it strictly
// (ParseReceipt), checks the enclave's signature and fingerprint, and checks the approvals'
// signatures over the manifest hash against the stewards' keys in opts. Errors wrap ErrReceipt and
// say what failed.
func VerifyReceipt(data []byte, enclave keys.PublicIdentity, opts VerifyOptions) (*Receipt, error) {
	r, env, err := parseReceipt(data)
	if err != nil {
		return nil, err
	}
	fp := enclave.Fingerprint()
	if env.Signer != fp || r.Enclave != fp {
		return nil, receiptErr("signed by the enclave key %s, not by the key given (%s)", env.Signer, fp)
	}
	if !enclave.Verify(env.Receipt, ReceiptContext, env.Signature) {
		return nil, receiptErr("the enclave's signature does not verify: the receipt was altered or not issued by this enclave")
	}
	byFP := make(map[string]keys.PublicIdentity, len(opts.Stewards))
	for _, s := range opts.Stewards {
		byFP[s.Fingerprint()] = s
	}
	msg := r.manifestDigest()
	verified := map[string]bool{}
	for _, a := range r.Approvals {
		s, ok := byFP[a.Fingerprint]
		if !ok {
			continue
		}
		if s.Name != a.Steward || s.Role != keys.RoleSteward {
			return nil, receiptErr("the approval by %s carries the key of %s %s", a.Steward, s.Role, s.Name)
		}
		if err := verifyApproval(s, a, msg); err != nil {
			return nil, err
		}
		verified[a.Fingerprint] = true
	}
	if w := r.Waiver; w != nil {
		if s, ok := byFP[w.Fingerprint]; ok && !s.Verify(WaiverMessage(msg, w.Reason), WaiverContext, w.Signature) {
			return nil, receiptErr("the waiver by steward %s does not verify against their key", w.Steward)
		}
	}
	need := opts.MinApprovals
	if need == 0 && len(opts.Stewards) > 0 {
		need = r.Quorum
	}
	if len(verified) < need {
		return nil, receiptErr("%d approvals verify against the stewards' keys given, %d needed", len(verified), need)
	}
	return r, nil
}
