package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestIdentitySignSealRoundTrip(t *testing.T) {
	id, err := NewIdentity(RoleEnclave, "enclave")
	if err != nil {
		t.Fatal(err)
	}
	pub := id.Public()
	msg := []byte("manifest hash")
	sig, err := id.Sign(msg, "insitu manifest v1")
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Verify(msg, "insitu manifest v1", sig) {
		t.Fatal("signature does not verify")
	}
	if pub.Verify(msg, "insitu approval v1", sig) {
		t.Fatal("signature verifies under another context")
	}
	if pub.Verify([]byte("manifest hasH"), "insitu manifest v1", sig) {
		t.Fatal("signature verifies for another message")
	}
	sealed, err := pub.Seal([]byte("labels"), "insitu labels v1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := id.Open(sealed, "insitu labels v1")
	if err != nil || string(got) != "labels" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := id.Open(sealed, "insitu other v1"); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened under another info: %v", err)
	}
	other, _ := NewIdentity(RoleBank, "bank-a")
	if _, err := other.Open(sealed, "insitu labels v1"); !errors.Is(err, ErrOpen) {
		t.Fatalf("another identity opened it: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := id.Open(sealed, "insitu labels v1"); !errors.Is(err, ErrOpen) {
		t.Fatalf("altered message opened: %v", err)
	}
}

func TestIdentityStorage(t *testing.T) {
	m, _ := Generate()
	id, _ := NewIdentity(RoleSteward, "steward-1")
	data, err := id.MarshalSealed(m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, id.signSeed[:8]) {
		t.Fatal("seed in clear")
	}
	back, err := UnmarshalSealed(data, m)
	if err != nil {
		t.Fatal(err)
	}
	if back.Public().Fingerprint() != id.Public().Fingerprint() || len(id.Public().Fingerprint()) != 32 {
		t.Fatal("fingerprint changed")
	}
	sig, _ := back.Sign([]byte("x"), "c")
	if !id.Public().Verify([]byte("x"), "c", sig) {
		t.Fatal("restored key signs differently")
	}
	wrong, _ := Generate()
	if _, err := UnmarshalSealed(data, wrong); !errors.Is(err, ErrIdentity) {
		t.Fatalf("wrong master key: %v", err)
	}
	// Swapping in another identity's public part is detected.
	id2, _ := NewIdentity(RoleSteward, "steward-1")
	data2, _ := id2.MarshalSealed(m)
	mixed := bytes.Replace(data, []byte(`"public"`), []byte(`"publicX"`), 1)
	if _, err := UnmarshalSealed(mixed, m); err == nil {
		t.Fatal("unknown field accepted")
	}
	if bytes.Equal(data, data2) {
		t.Fatal("two identities stored the same")
	}
	pubJSON := []byte(`{"name":"steward-1","role":"steward","signing_key":"AAAA","hpke_key":"AAAA"}`)
	if _, err := ParsePublic(pubJSON); !errors.Is(err, ErrIdentity) {
		t.Fatalf("short keys accepted: %v", err)
	}
	for _, bad := range [][2]string{{"king", "a"}, {RoleBank, "Bank A"}, {RoleBank, ""}} {
		if _, err := NewIdentity(bad[0], bad[1]); !errors.Is(err, ErrIdentity) {
			t.Errorf("NewIdentity(%q, %q): %v", bad[0], bad[1], err)
		}
	}
}

func FuzzParsePublic(f *testing.F) {
	id, _ := NewIdentity(RoleBank, "bank-a")
	pub := id.Public()
	good, _ := jsonMarshal(pub)
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"name":"a","role":"bank","signing_key":"","hpke_key":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePublic(data)
		if err != nil {
			return
		}
		if p.Fingerprint() == "" || len(p.SigningKey) == 0 || len(p.HPKEKey) == 0 {
			t.Fatal("accepted an identity without keys")
		}
	})
}

func jsonMarshal(p PublicIdentity) ([]byte, error) { return json.Marshal(p) }
