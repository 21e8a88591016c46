package keys

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestPartyFile(t *testing.T) {
	id, err := NewIdentity(RoleBank, "bank-a")
	if err != nil {
		t.Fatal(err)
	}
	for _, pass := range [][]byte{nil, []byte("correct horse")} {
		data, err := id.MarshalPartyFile(pass)
		if err != nil {
			t.Fatal(err)
		}
		if len(pass) > 0 && (bytes.Contains(data, id.signSeed[:6]) || !strings.Contains(string(data), `"scrypt"`)) {
			t.Fatal("passphrase-protected file holds the seed in clear")
		}
		back, err := ParsePartyFile(data, pass)
		if err != nil {
			t.Fatal(err)
		}
		if back.Public().Fingerprint() != id.Public().Fingerprint() || back.Name != "bank-a" || back.Role != RoleBank {
			t.Fatal("identity changed in the round trip")
		}
		if len(pass) > 0 {
			if _, err := ParsePartyFile(data, []byte("wrong")); !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), "wrong passphrase") {
				t.Fatalf("wrong passphrase: %v", err)
			}
			if _, err := ParsePartyFile(data, nil); err == nil || !strings.Contains(err.Error(), "INSITU_KEY_PASSPHRASE") {
				t.Fatalf("missing passphrase: %v", err)
			}
		}
	}
	// Swapping the public part for another identity's is detected.
	other, _ := NewIdentity(RoleBank, "bank-a")
	data, _ := id.MarshalPartyFile(nil)
	odata, _ := other.MarshalPartyFile(nil)
	mixed := append(odata[:bytes.Index(odata, []byte(`"kdf"`))], data[bytes.Index(data, []byte(`"kdf"`)):]...)
	if _, err := ParsePartyFile(mixed, nil); !errors.Is(err, ErrIdentity) {
		t.Fatalf("mismatched public part accepted: %v", err)
	}
}

func FuzzParsePartyFile(f *testing.F) {
	id, _ := NewIdentity(RoleSteward, "steward-1")
	plain, _ := id.MarshalPartyFile(nil)
	f.Add(plain)
	f.Add([]byte(`{"format":"insitu-party-key-v1","kdf":"none","seeds":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParsePartyFile(data, nil)
		if err != nil {
			return
		}
		sig, err := got.Sign([]byte("m"), "c")
		if err != nil || !got.Public().Verify([]byte("m"), "c", sig) {
			t.Fatal("a parsed key file does not sign")
		}
	})
}
