package keys

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testKey(b byte) *MasterKey {
	return FromBytes(bytes.Repeat([]byte{b}, Size))
}

func TestParseEncodeRoundTrip(t *testing.T) {
	m, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	s := m.Encode()
	for _, form := range []string{s, strings.TrimRight(s, "="), " " + s + "\n",
		base64.RawURLEncoding.EncodeToString(m.k[:])} {
		got, err := Parse(form)
		if err != nil {
			t.Fatalf("Parse(%q): %v", form, err)
		}
		if !got.Equal(m) {
			t.Fatalf("Parse(%q) gave another key", form)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := Parse(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", s, err)
		}
	}
}

// TestDeriveKnownAnswer pins the derivation: HKDF-SHA-256 with an all-zero 32-byte key, no salt and
// info "insitu/test", as computed independently with RFC 5869.
func TestDeriveKnownAnswer(t *testing.T) {
	m := testKey(0)
	got := fmt.Sprintf("%x", m.Derive("test", 32))
	const want = "641434a094a5561d3760b86916aa15d04987e427dc48722cb91c2928786b9106"
	if got != want {
		t.Fatalf("Derive = %s, want %s", got, want)
	}
}

func TestDeriveSeparatesPurposes(t *testing.T) {
	m := testKey(1)
	a, b := m.Derive(PurposeDatasetKEK, 32), m.Derive(PurposeDatasetManifest, 32)
	if bytes.Equal(a, b) {
		t.Fatal("two purposes gave the same key")
	}
	if !bytes.Equal(a, m.Derive(PurposeDatasetKEK, 32)) {
		t.Fatal("Derive is not deterministic")
	}
	if bytes.Equal(m.CheckValue(), testKey(2).CheckValue()) {
		t.Fatal("two keys have the same check value")
	}
	if len(m.KeyID()) != 16 {
		t.Fatalf("KeyID %q, want 16 hex digits", m.KeyID())
	}
}

func TestRedacted(t *testing.T) {
	m := testKey(7)
	for _, s := range []string{fmt.Sprint(m), fmt.Sprintf("%v %+v %#v %s", m, m, m, m)} {
		if strings.Contains(s, m.Encode()) || strings.Contains(s, "7, 7") {
			t.Fatalf("key leaked in %q", s)
		}
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	m := testKey(3)
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(m) {
		t.Fatal("ReadFile gave another key")
	}
	if err := WriteFile(path, testKey(4)); !errors.Is(err, ErrExists) {
		t.Fatalf("second WriteFile = %v, want ErrExists", err)
	}
	if got, _ := ReadFile(path); !got.Equal(m) {
		t.Fatal("refused overwrite changed the key file")
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); !errors.Is(err, ErrPermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("ReadFile of 0640 file = %v, want ErrPermissions naming chmod 600", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte(m.Encode()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("ReadFile without prefix = %v, want ErrMalformed", err)
	}
}

func TestLoad(t *testing.T) {
	m := testKey(5)
	env := func(v string, ok bool) func(string) (string, bool) {
		return func(name string) (string, bool) {
			if name != EnvVar {
				return "", false
			}
			return v, ok
		}
	}
	got, err := Load(Source{LookupEnv: env(m.Encode(), true)})
	if err != nil || !got.Equal(m) {
		t.Fatalf("Load from env = %v, %v", got, err)
	}
	if _, err := Load(Source{LookupEnv: env("", false)}); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), EnvVar) {
		t.Fatalf("Load without key = %v, want ErrNoKey naming %s", err, EnvVar)
	}
	if _, err := Load(Source{LookupEnv: env("abc", true)}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Load of malformed env = %v", err)
	}
	path := filepath.Join(t.TempDir(), "k")
	if err := WriteFile(path, m); err != nil {
		t.Fatal(err)
	}
	got, err = Load(Source{File: path, LookupEnv: env(testKey(6).Encode(), true)})
	if err != nil || !got.Equal(m) {
		t.Fatalf("Load prefers the key file: %v, %v", got, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(testKey(1).Encode())
	f.Add(base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, Size)))
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		back, err := Parse(m.Encode())
		if err != nil || !back.Equal(m) {
			t.Fatalf("re-parse of %q failed", s)
		}
	})
}
