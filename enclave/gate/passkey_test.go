package gate

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job/passkey"
	"insitu/enclave/job/passkey/passkeytest"
	"insitu/enclave/keys"
)

// TestReceiptPasskeyApproval: a receipt carrying an approval made with a passkey verifies offline
// with the steward's public key, and fails when the assertion was over another manifest, the
// enrolment is another steward's, or the verifier trusts another key.
func TestReceiptPasskeyApproval(t *testing.T) {
	newID := func(role, name string) *keys.Identity {
		id, err := keys.NewIdentity(role, name)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	encl, bank := newID(keys.RoleEnclave, "enclave"), newID(keys.RoleBank, "bank-a")
	s1, s2 := newID(keys.RoleSteward, "steward-1"), newID(keys.RoleSteward, "steward-2")
	mh := sha256.Sum256([]byte("manifest"))
	a := passkeytest.New("localhost", "http://localhost:8443")
	receipt := func(ap Approval) []byte {
		r := &Receipt{Format: ReceiptFormat, Job: "job-" + hex.EncodeToString(mh[:8]), Bank: "bank-a", BankFingerprint: bank.Public().Fingerprint(),
			Enclave: encl.Public().Fingerprint(), ManifestHash: "sha256:" + hex.EncodeToString(mh[:]), Purpose: "model_development",
			Mode: "plaintext_public", Approvals: []Approval{ap}, Quorum: 1, Plugin: "sha256:" + strings.Repeat("0", 64),
			Outputs: OutputHashes{Bundle: strings.Repeat("1", 64), Sealed: strings.Repeat("2", 64), BundleBytes: 1, SealedBytes: 1},
			Gate:    Verdict{Result: VerdictVerified, Family: "logistic_regression"}, Audit: audit.Head{Seq: 1},
			ReleasedAt: time.Unix(1700000000, 0).UTC()}
		env, err := signReceipt(r, encl)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	approval := func(as *passkey.Assertion, enr passkey.Enrolment) Approval {
		return Approval{Steward: "steward-1", Fingerprint: s1.Public().Fingerprint(), Signature: as.Signature,
			WebAuthn: passkey.NewEvidence(as, enr), At: time.Unix(1700000000, 0).UTC()}
	}
	trust := VerifyOptions{Stewards: []keys.PublicIdentity{s1.Public()}}
	good := receipt(approval(a.Assert(mh[:]), a.Enrol(s1)))
	r, err := VerifyReceipt(good, encl.Public(), trust)
	if err != nil {
		t.Fatal(err)
	}
	if r.Approvals[0].WebAuthn == nil || parseStrict(t, good).Approvals[0].WebAuthn == nil {
		t.Fatal("the passkey evidence did not survive the receipt's encoding")
	}
	other := sha256.Sum256([]byte("another manifest"))
	for name, data := range map[string][]byte{
		"assertion over another manifest": receipt(approval(a.Assert(other[:]), a.Enrol(s1))),
		"enrolment signed by another":     receipt(approval(a.Assert(mh[:]), a.Enrol(s2))),
	} {
		if _, err := VerifyReceipt(data, encl.Public(), trust); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := VerifyReceipt(good, encl.Public(), VerifyOptions{Stewards: []keys.PublicIdentity{s2.Public()}, MinApprovals: 1}); err == nil {
		t.Error("verified against another steward's key")
	}
}

// parseStrict parses a signed receipt strictly (ParseReceipt) or fails the test.
func parseStrict(t *testing.T, data []byte) *Receipt {
	t.Helper()
	r, err := ParseReceipt(data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
