package passkey_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"insitu/enclave/job/passkey"
	"insitu/enclave/job/passkey/passkeytest"
	"insitu/enclave/keys"
)

func steward(t testing.TB, name string) *keys.Identity {
	t.Helper()
	id, err := keys.NewIdentity(keys.RoleSteward, name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRegistrationGivesTheCredentialKey(t *testing.T) {
	a := passkeytest.New("localhost", "http://localhost:8080")
	ch := []byte("registration challenge 32 bytes!")
	cd, ad := a.Register(ch)
	reg, err := passkey.VerifyRegistration(cd, ad, ch, a.Origin, a.RPID, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reg.PublicKey, a.PublicKey()) || !bytes.Equal(reg.CredentialID, a.ID) || reg.SignCount != 1 {
		t.Fatalf("registration %x %x %d, want key %x id %x count 1", reg.PublicKey, reg.CredentialID, reg.SignCount, a.PublicKey(), a.ID)
	}
	bad := []struct {
		name       string
		cd, ad, ch []byte
		origin     string
		id         []byte
	}{
		{"other challenge", cd, ad, []byte("another"), a.Origin, a.ID},
		{"other origin", cd, ad, ch, "http://localhost:9090", a.ID},
		{"assertion client data", a.ClientData("webauthn.get", ch), ad, ch, a.Origin, a.ID},
		{"other credential", cd, ad, ch, a.Origin, []byte("x")},
		{"truncated", cd, ad[:40], ch, a.Origin, a.ID},
	}
	for _, c := range bad {
		if _, err := passkey.VerifyRegistration(c.cd, c.ad, c.ch, c.origin, a.RPID, c.id); !errors.Is(err, passkey.ErrAssertion) {
			t.Errorf("%s: err %v, want ErrAssertion", c.name, err)
		}
	}
	if _, err := passkey.VerifyRegistration(cd, ad, ch, "http://example.com", "example.com", a.ID); err == nil {
		t.Error("plain http on a public host accepted")
	}
}

func TestEvidenceVerifiesOfflineAndOnlyForItsChallenge(t *testing.T) {
	s := steward(t, "steward-a")
	a := passkeytest.New("localhost", "http://localhost:8080")
	enr := a.Enrol(s)
	manifest := sha256.Sum256([]byte("manifest"))
	as := a.Assert(manifest[:])
	ev := passkey.NewEvidence(as, enr)
	st, n, err := ev.Verify(s.Public(), manifest[:], as.Signature)
	if err != nil {
		t.Fatal(err)
	}
	if st.Party != "steward-a" || n != 1 {
		t.Fatalf("statement party %q counter %d, want steward-a 1", st.Party, n)
	}
	other := sha256.Sum256([]byte("another manifest"))
	if _, _, err := ev.Verify(s.Public(), other[:], as.Signature); !errors.Is(err, passkey.ErrAssertion) {
		t.Errorf("another challenge: %v, want ErrAssertion", err)
	}
	if _, _, err := ev.Verify(steward(t, "steward-a").Public(), manifest[:], as.Signature); !errors.Is(err, passkey.ErrStatement) {
		t.Errorf("another steward key: %v, want ErrStatement", err)
	}
	sig := bytes.Clone(as.Signature)
	sig[len(sig)-1] ^= 1
	if _, _, err := ev.Verify(s.Public(), manifest[:], sig); !errors.Is(err, passkey.ErrAssertion) {
		t.Errorf("altered signature: %v, want ErrAssertion", err)
	}
	// An authenticator that does not verify the user (no PIN or biometric) cannot approve.
	a.Flags = passkey.FlagUP
	noUV := a.Assert(manifest[:])
	if _, _, err := passkey.NewEvidence(noUV, enr).Verify(s.Public(), manifest[:], noUV.Signature); !errors.Is(err, passkey.ErrAssertion) {
		t.Errorf("UV unset: %v, want ErrAssertion", err)
	}
	// The statement binds the origin: an assertion made elsewhere fails.
	a.Flags = passkey.FlagUP | passkey.FlagUV
	a.Origin = "http://localhost:9999"
	elsewhere := a.Assert(manifest[:])
	if _, _, err := passkey.NewEvidence(elsewhere, enr).Verify(s.Public(), manifest[:], elsewhere.Signature); !errors.Is(err, passkey.ErrAssertion) {
		t.Errorf("other origin: %v, want ErrAssertion", err)
	}
}

func TestStatementStrict(t *testing.T) {
	s := steward(t, "steward-b")
	a := passkeytest.New("console.example", "https://console.example")
	enr := a.Enrol(s)
	if _, err := passkey.ParseStatement(enr.Statement); err != nil {
		t.Fatal(err)
	}
	extra := append(bytes.TrimSuffix(enr.Statement, []byte("}")), []byte(`,"extra":1}`)...)
	if _, err := passkey.ParseStatement(extra); !errors.Is(err, passkey.ErrStatement) {
		t.Errorf("unknown key: %v", err)
	}
	st := a.Statement(s.Public())
	st.Algorithm = -257
	if _, err := st.Marshal(); !errors.Is(err, passkey.ErrStatement) {
		t.Errorf("RS256: %v", err)
	}
	st = a.Statement(s.Public())
	st.Origin = "https://evil.example"
	if _, err := st.Marshal(); !errors.Is(err, passkey.ErrStatement) {
		t.Errorf("origin off the RP ID: %v", err)
	}
}

func FuzzVerifyRegistration(f *testing.F) {
	a := passkeytest.New("localhost", "http://localhost:8080")
	ch := []byte("challenge")
	cd, ad := a.Register(ch)
	f.Add(cd, ad)
	f.Add(cd, ad[:37])
	f.Fuzz(func(t *testing.T, cd, ad []byte) {
		reg, err := passkey.VerifyRegistration(cd, ad, ch, a.Origin, a.RPID, a.ID)
		if err == nil && len(reg.PublicKey) == 0 {
			t.Fatal("accepted without a key")
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	s := steward(f, "steward-c")
	f.Add(passkeytest.New("localhost", "http://localhost:1").Enrol(s).Statement)
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := passkey.ParseStatement(data)
		if err != nil {
			return
		}
		if _, err := st.Key(); err != nil {
			t.Fatal("parsed statement without a usable key")
		}
	})
}

// BenchmarkEvidenceVerifyMLDSA65ES256 measures the offline check of one passkey approval: the
// ML-DSA-65 enrolment signature and the ES256 assertion.
func BenchmarkEvidenceVerifyMLDSA65ES256(b *testing.B) {
	s := steward(b, "steward-bench")
	a := passkeytest.New("localhost", "http://localhost:8080")
	h := sha256.Sum256([]byte("manifest"))
	as := a.Assert(h[:])
	ev := passkey.NewEvidence(as, a.Enrol(s))
	pub := s.Public()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := ev.Verify(pub, h[:], as.Signature); err != nil {
			b.Fatal(err)
		}
	}
}
