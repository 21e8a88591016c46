package gate

import (
	"insitu/enclave/job"
	"insitu/enclave/keys"
)

// verifyApproval checks one approval against its steward's public identity: an ML-DSA-65 signature
// over the manifest hash under job.ApprovalContext, or, for an approval made with a passkey in the
// console, the steward's signed enrolment of the credential and the WebAuthn assertion whose
// challenge is the manifest hash (Signature is then the assertion's ES256 signature).
func verifyApproval(s keys.PublicIdentity, a Approval, manifestHash []byte) error {
	if a.WebAuthn == nil {
		if !s.Verify(manifestHash, job.ApprovalContext, a.Signature) {
			return receiptErr("the approval by steward %s does not verify against their key: it is not a signature over the manifest hash", a.Steward)
		}
		return nil
	}
	if _, _, err := a.WebAuthn.Verify(s, job.PasskeyChallenge(manifestHash, job.ApprovalContext), a.Signature); err != nil {
		return receiptErr("the passkey approval by steward %s does not verify: %v", a.Steward, err)
	}
	return nil
}
