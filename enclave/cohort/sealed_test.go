package cohort

import (
	"errors"
	"strings"
	"testing"

	"insitu/enclave/keys"
)

const goodLabels = "uscc,label,observation_date\n9144030071526726XG,1,2026-06-30\n91330100716105852F,0,2026-06-30\n"

func TestSealedLabels(t *testing.T) {
	enc, _ := keys.NewIdentity(keys.RoleEnclave, "enclave")
	sealed, digest, err := SealLabels(enc.Public(), []byte(goodLabels), "labels.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(digest) != 64 || strings.Contains(string(sealed), "9144030071526726XG") {
		t.Fatalf("digest %q or identifiers in clear", digest)
	}
	l, err := OpenLabels(enc, sealed, "labels.sealed")
	if err != nil {
		t.Fatal(err)
	}
	if y, ok := l.Get("9144030071526726XG"); !ok || y != 1 || l.Len() != 2 || l.Positives() != 1 {
		t.Fatalf("opened labels: %d subjects, %d positives", l.Len(), l.Positives())
	}

	other, _ := keys.NewIdentity(keys.RoleEnclave, "enclave")
	if _, err := OpenLabels(other, sealed, "labels.sealed"); !errors.Is(err, ErrSealed) || !strings.Contains(err.Error(), "sealed to identity") {
		t.Fatalf("another enclave opened them: %v", err)
	}
	bank, _ := keys.NewIdentity(keys.RoleBank, "bank-a")
	if _, _, err := SealLabels(bank.Public(), []byte(goodLabels), "labels.csv"); !errors.Is(err, ErrSealed) {
		t.Fatalf("sealed to a bank: %v", err)
	}
	// A bad row is reported on the bank's side, with its place, before anything is sealed.
	bad := goodLabels + "91330100716105852F,1,2026-06-30\n"
	_, _, err = SealLabels(enc.Public(), []byte(bad), "labels.csv")
	var le *LabelError
	if !errors.As(err, &le) || le.Row != 3 || le.Rule != "unique-subject" {
		t.Fatalf("duplicate subject: %v", err)
	}
	// A flipped byte in the ciphertext fails.
	i := strings.Index(string(sealed), `"sealed": "`) + 20
	tampered := []byte(string(sealed))
	tampered[i] ^= 1
	if tampered[i] == '"' || tampered[i] == '\\' {
		tampered[i] = 'A'
	}
	if _, err := OpenLabels(enc, tampered, "labels.sealed"); err == nil {
		t.Fatal("tampered file opened")
	}
}

func FuzzOpenLabels(f *testing.F) {
	enc, _ := keys.NewIdentity(keys.RoleEnclave, "enclave")
	sealed, _, _ := SealLabels(enc.Public(), []byte(goodLabels), "labels.csv")
	f.Add(sealed)
	f.Add([]byte(`{"format":"insitu-sealed-labels-v1","to":"","subjects":0,"sealed":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := OpenLabels(enc, data, "fuzz")
		if err == nil && l.Len() == 0 {
			t.Fatal("opened an empty label set")
		}
	})
}
