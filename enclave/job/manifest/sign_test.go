package manifest

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"insitu/enclave/keys"
)

var (
	idsOnce sync.Once
	ids     map[string]*keys.Identity
)

func identities(t testing.TB) map[string]*keys.Identity {
	idsOnce.Do(func() {
		ids = map[string]*keys.Identity{}
		for _, p := range [][2]string{{keys.RoleBank, "bank-a"}, {keys.RoleBank, "bank-b"}, {keys.RoleSteward, "bank-a"}, {keys.RoleBank, "bank-a"}, {keys.RoleResearcher, "lab-1"}, {keys.RoleAdmin, "lab-1"}} {
			id, err := keys.NewIdentity(p[0], p[1])
			if err != nil {
				panic(err)
			}
			k := p[0] + "/" + p[1]
			if _, dup := ids[k]; dup {
				k += "/second"
			}
			ids[k] = id
		}
	})
	return ids
}

func TestSignVerify(t *testing.T) {
	id := identities(t)
	m, err := Parse([]byte(heYAML), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Sign(m, id["bank/bank-a"])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(id["bank/bank-a"].Public()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	enc := s.Marshal()
	back, err := ParseSigned(append(enc, '\n'), "signed.json")
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	if err := back.Verify(id["bank/bank-a"].Public()); err != nil {
		t.Fatalf("Verify after parse: %v", err)
	}
	if back.Manifest.Hash() != m.Hash() || !bytes.Equal(back.Marshal(), enc) {
		t.Error("envelope does not round-trip")
	}

	fails := map[string]func() error{
		"another bank": func() error { return s.Verify(id["bank/bank-b"].Public()) },
		"a steward of the same name": func() error {
			return s.Verify(id["steward/bank-a"].Public())
		},
		"another key of the same bank": func() error { return s.Verify(id["bank/bank-a/second"].Public()) },
		"modified manifest": func() error {
			m2 := *back.Manifest
			m2.Dataset.Version = "8"
			return (&Signed{Manifest: &m2, Signer: s.Signer, Signature: s.Signature}).Verify(id["bank/bank-a"].Public())
		},
		"another context": func() error {
			sig, err := id["bank/bank-a"].Sign(m.Canonical(), "insitu job approval v1")
			if err != nil {
				return nil
			}
			return (&Signed{Manifest: m, Signer: s.Signer, Signature: sig}).Verify(id["bank/bank-a"].Public())
		},
		"truncated signature": func() error {
			return (&Signed{Manifest: m, Signer: s.Signer, Signature: s.Signature[:100]}).Verify(id["bank/bank-a"].Public())
		},
		"signature by bank b with a's fingerprint": func() error {
			sig, _ := id["bank/bank-b"].Sign(m.Canonical(), SignatureContext)
			return (&Signed{Manifest: m, Signer: s.Signer, Signature: sig}).Verify(id["bank/bank-a"].Public())
		},
	}
	for name, f := range fails {
		err := f()
		var e *Error
		if !errors.Is(err, ErrSignature) || !errors.Is(err, ErrInvalid) || !errors.As(err, &e) || e.Rule != RuleSigner {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}

	// Only the named bank may sign.
	for _, k := range []string{"bank/bank-b", "steward/bank-a"} {
		if _, err := Sign(m, id[k]); !errors.Is(err, ErrSignature) {
			t.Errorf("Sign by %s: %v", k, err)
		}
	}

	// A researcher signs its own requests (the enclave confines them to public and synthetic
	// datasets); an admin of the same name cannot.
	mr := *m
	mr.Bank = "lab-1"
	sr, err := Sign(&mr, id["researcher/lab-1"])
	if err != nil {
		t.Fatalf("Sign by a researcher: %v", err)
	}
	if err := sr.Verify(id["researcher/lab-1"].Public()); err != nil {
		t.Fatalf("Verify a researcher's manifest: %v", err)
	}
	if _, err := Sign(&mr, id["admin/lab-1"]); !errors.Is(err, ErrSignature) {
		t.Errorf("Sign by an admin: %v", err)
	}
	if err := sr.Verify(id["admin/lab-1"].Public()); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify with an admin's key: %v", err)
	}
}

func TestParseSignedStrict(t *testing.T) {
	id := identities(t)
	m, err := Parse([]byte(heYAML), "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Sign(m, id["bank/bank-a"])
	if err != nil {
		t.Fatal(err)
	}
	enc := string(s.Marshal())
	cases := []struct {
		name, src, path, rule string
	}{
		{"unknown key", strings.Replace(enc, `{"format"`, `{"extra":1,"format"`, 1), "extra", RuleUnknownField},
		{"wrong type", strings.Replace(enc, `"signer":"`+s.Signer+`"`, `"signer":5`, 1), "signer", RuleType},
		{"format", strings.Replace(enc, SignedFormatV1, "insitu-signed-job-manifest-v0", 1), "format", RuleFormat},
		{"signer", strings.Replace(enc, s.Signer, "zz", 1), "signer", RuleSigner},
		{"whitespace", strings.Replace(enc, `{"format"`, `{ "format"`, 1), "", RuleSigner},
		{"duplicate key", strings.Replace(enc, `{"format"`, `{"signer":"`+s.Signer+`","format"`, 1), "", RuleSigner},
		{"manifest not canonical", strings.Replace(enc, `{"bank":"bank-a",`, `{"bank":"bank-a","purpose_detail":"",`, 1), "manifest", RuleSigner},
		{"manifest invalid", strings.Replace(enc, `"mode":"he"`, `"mode":"hex"`, 1), "manifest.mode", RuleMode},
		{"manifest unknown field", strings.Replace(enc, `{"bank":"bank-a",`, `{"bank":"bank-a","x":1,`, 1), "manifest.x", RuleUnknownField},
		{"trailing", enc + "{}", "", RuleSyntax},
		{"empty", "", "", RuleSyntax},
	}
	for _, c := range cases {
		if c.src == enc {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		_, err := ParseSigned([]byte(c.src), "s.json")
		var e *Error
		if !errors.As(err, &e) || e.Path != c.path || e.Rule != c.rule || e.File != "s.json" {
			t.Errorf("%s: got %v, want path %q rule %q", c.name, err, c.path, c.rule)
		}
	}
}
