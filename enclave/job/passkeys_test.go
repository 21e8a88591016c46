package job

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"insitu/enclave/job/passkey"
	"insitu/enclave/job/passkey/passkeytest"
	"insitu/enclave/keys"
)

// enrol registers a passkey for id through a request and its signed statement.
func enrol(t *testing.T, e *env, id *keys.Identity, a *passkeytest.Authenticator) Passkey {
	t.Helper()
	ctx := context.Background()
	code, err := e.board.RequestPasskey(ctx, a.Statement(id.Public()))
	if err != nil {
		t.Fatal(err)
	}
	st, data, err := e.board.PasskeyRequest(ctx, NormalizeCode(code[:3]+" "+code[3:]))
	if err != nil {
		t.Fatal(err)
	}
	if st.Party != id.Name || !bytes.Equal(st.CredentialID, a.ID) {
		t.Fatalf("request holds %s %x, want %s %x", st.Party, st.CredentialID, id.Name, a.ID)
	}
	sig, err := id.Sign(data, passkey.EnrolContext)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := e.board.EnrollPasskey(ctx, id.Name, code, passkey.Enrolment{Statement: data, Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func TestPasskeyEnrolment(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s1, bank := identity(t, keys.RoleSteward, "steward-1"), identity(t, keys.RoleBank, "bank-a")
	e.register(t, s1, bank)
	a := passkeytest.New("localhost", "http://localhost:8443")

	// Banks do not use the console.
	if _, err := e.board.RequestPasskey(ctx, a.Statement(bank.Public())); !errors.Is(err, ErrParty) {
		t.Fatalf("bank's request: %v", err)
	}
	// A statement signed by someone else, or not the one filed, is refused.
	code, err := e.board.RequestPasskey(ctx, a.Statement(s1.Public()))
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := e.board.PasskeyRequest(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	other := identity(t, keys.RoleSteward, "steward-1b")
	forged, _ := other.Sign(data, passkey.EnrolContext)
	if _, err := e.board.EnrollPasskey(ctx, "x", code, passkey.Enrolment{Statement: data, Signature: forged}); !errors.Is(err, passkey.ErrStatement) {
		t.Fatalf("forged enrolment: %v", err)
	}
	altered := bytes.Replace(data, []byte("8443"), []byte("9443"), 1)
	sig, _ := s1.Sign(altered, passkey.EnrolContext)
	if _, err := e.board.EnrollPasskey(ctx, "x", code, passkey.Enrolment{Statement: altered, Signature: sig}); !errors.Is(err, passkey.ErrStatement) {
		t.Fatalf("altered statement: %v", err)
	}
	if _, err := e.board.EnrollPasskey(ctx, "x", "AAAAA-AAAAA", passkey.Enrolment{Statement: data, Signature: sig}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}

	pk := enrol(t, e, s1, a)
	if pk.Party != "steward-1" || pk.Statement.RPID != "localhost" {
		t.Fatalf("enrolled %+v", pk)
	}
	ks, err := e.board.Passkeys(ctx, "steward-1")
	if err != nil || len(ks) != 1 || !bytes.Equal(ks[0].Statement.CredentialID, a.ID) {
		t.Fatalf("passkeys %v %v", ks, err)
	}

	// Sign-in: the challenge must be the one given; the counter must grow.
	ch := []byte("random sign-in challenge 32 byte")
	as := a.Assert(ch)
	if _, err := e.board.AssertPasskey(ctx, as, []byte("another challenge")); !errors.Is(err, ErrPasskey) {
		t.Fatalf("wrong challenge: %v", err)
	}
	got, err := e.board.AssertPasskey(ctx, as, ch)
	if err != nil || got.Party != "steward-1" || got.SignCount != 1 {
		t.Fatalf("sign-in %+v %v", got, err)
	}
	if _, err := e.board.AssertPasskey(ctx, as, ch); !errors.Is(err, ErrPasskey) {
		t.Fatalf("replayed assertion (same counter): %v", err)
	}

	// Removing the steward's registration disables the passkey.
	if err := e.board.RemoveParty(ctx, "admin", "steward-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.board.AssertPasskey(ctx, a.Assert(ch), ch); !errors.Is(err, ErrPasskey) {
		t.Fatalf("removed party's passkey: %v", err)
	}
	e.verifyAudit(t)
}

func TestApprovePasskey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank := identity(t, keys.RoleBank, "bank-a")
	s1, s2 := identity(t, keys.RoleSteward, "steward-1"), identity(t, keys.RoleSteward, "steward-2")
	e.register(t, bank, s1, s2)
	if err := e.board.SetSetting(ctx, "admin", SettingQuorum, 2); err != nil {
		t.Fatal(err)
	}
	a1, a2 := passkeytest.New("localhost", "http://localhost:8443"), passkeytest.New("localhost", "http://localhost:8443")
	enrol(t, e, s1, a1)
	enrol(t, e, s2, a2)
	_, data := signedManifest(t, "bank-a", "passkey", bank)
	j, err := e.board.Submit(ctx, data, "m")
	if err != nil {
		t.Fatal(err)
	}
	hash := ApprovalMessage(j.Manifest)

	// A sign-in style assertion (another challenge) does not approve, nor does another steward's passkey.
	if _, err := e.board.ApprovePasskey(ctx, j.ID, "steward-1", a1.Assert([]byte("session challenge"))); !errors.Is(err, ErrSignature) {
		t.Fatalf("assertion over another challenge: %v", err)
	}
	if _, err := e.board.ApprovePasskey(ctx, j.ID, "steward-1", a2.Assert(hash)); !errors.Is(err, ErrSignature) {
		t.Fatalf("steward-2's passkey as steward-1: %v", err)
	}
	st, err := e.board.ApprovePasskey(ctx, j.ID, "steward-1", a1.Assert(hash))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != Submitted || st.Approvals != 1 || len(st.Decisions) != 1 || st.Decisions[0].WebAuthn == nil {
		t.Fatalf("after one passkey approval: %+v", st)
	}
	// The recorded evidence verifies offline with the steward's public identity.
	d := st.Decisions[0]
	if _, _, err := d.WebAuthn.Verify(s1.Public(), hash, d.Signature); err != nil {
		t.Fatalf("recorded evidence: %v", err)
	}
	// An ML-DSA approval completes the quorum; its decision has no passkey evidence.
	if st, err = approve(t, e.board, j, s2); err != nil || st.State != Approved {
		t.Fatalf("second approval: %+v %v", st, err)
	}
	if st.Decisions[1].WebAuthn != nil {
		t.Fatal("ML-DSA approval carries passkey evidence")
	}

	// Rejection by passkey: the challenge commits to the reason.
	_, data = signedManifest(t, "bank-a", "passkey reject", bank)
	j2, err := e.board.Submit(ctx, data, "m2")
	if err != nil {
		t.Fatal(err)
	}
	ch := PasskeyChallenge(RejectionMessage(j2.Manifest, "too broad"), RejectionContext)
	if _, err := e.board.RejectPasskey(ctx, j2.ID, "steward-2", a2.Assert(ch), "something else"); !errors.Is(err, ErrSignature) {
		t.Fatalf("rejection with another reason: %v", err)
	}
	if st, err := e.board.RejectPasskey(ctx, j2.ID, "steward-2", a2.Assert(ch), "too broad"); err != nil || st.State != Rejected {
		t.Fatalf("rejection: %+v %v", st, err)
	}
	e.verifyAudit(t)
}
