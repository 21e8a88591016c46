package datadir

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"insitu/enclave/keys"
)

func TestInitWithKeyFileAndOpen(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	keyFile := filepath.Join(base, "secrets", "master.key")
	if err := os.Mkdir(filepath.Dir(keyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	res, err := Init(dir, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if res.Dir != dir || res.KeyFile != keyFile || res.EnvValue != "" || len(res.KeyID) != 16 {
		t.Fatalf("Init = %+v", res)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %04o, want 0700", st.Mode().Perm())
	}
	kst, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if kst.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", kst.Mode().Perm())
	}
	d, err := Open(dir, keys.Source{File: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if d.Path() != dir || d.Key().KeyID() != res.KeyID || d.Created().IsZero() {
		t.Fatalf("Open = %s %s %v", d.Path(), d.Key().KeyID(), d.Created())
	}
	sub, err := d.Sub("datasets")
	if err != nil {
		t.Fatal(err)
	}
	if sst, err := os.Stat(sub); err != nil || sst.Mode().Perm() != 0o700 {
		t.Fatalf("Sub: %v %v", sst, err)
	}
	if _, err := d.Sub("../x"); err == nil {
		t.Fatal("Sub accepted ../x")
	}

	// Refusals: existing data directory, existing key file.
	if _, err := Init(dir, filepath.Join(base, "other.key")); !errors.Is(err, ErrExists) {
		t.Fatalf("Init over a data directory = %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(base, "other.key")); err == nil {
		t.Fatal("refused Init left a key file")
	}
	if _, err := Init(filepath.Join(base, "data2"), keyFile); !errors.Is(err, ErrExists) {
		t.Fatalf("Init over a key file = %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(base, "data2")); err == nil {
		t.Fatal("refused Init left a data directory")
	}
	k2, err := keys.ReadFile(keyFile)
	if err != nil || !k2.Equal(d.Key()) {
		t.Fatal("refused Init changed the key file")
	}
}

func TestInitWithEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	res, err := Init(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.EnvValue == "" || res.KeyFile != "" {
		t.Fatalf("Init = %+v, want an EnvValue", res)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if strings.Contains(string(b), res.EnvValue) {
			t.Fatalf("master key stored in %s", e.Name())
		}
	}
	env := func(v string) func(string) (string, bool) {
		return func(n string) (string, bool) { return v, n == keys.EnvVar }
	}
	if _, err := Open(dir, keys.Source{LookupEnv: env(res.EnvValue)}); err != nil {
		t.Fatal(err)
	}
	other, _ := keys.Generate()
	_, err = Open(dir, keys.Source{LookupEnv: env(other.Encode())})
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another key = %v, want ErrWrongKey", err)
	}
	var de *Error
	if !errors.As(err, &de) || de.Op != "open" || !strings.Contains(err.Error(), res.KeyID) {
		t.Fatalf("wrong-key error %q should be an *Error naming the wanted key %s", err, res.KeyID)
	}
	if _, err := Open(dir, keys.Source{LookupEnv: func(string) (string, bool) { return "", false }}); !errors.Is(err, keys.ErrNoKey) {
		t.Fatalf("Open without key = %v, want keys.ErrNoKey", err)
	}
}

func TestInitRefusesKeyInside(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	for _, kf := range []string{filepath.Join(dir, "master.key"), filepath.Join(dir, "sub", "k"), dir} {
		if _, err := Init(dir, kf); !errors.Is(err, ErrKeyInside) {
			t.Fatalf("Init(%s, %s) = %v, want ErrKeyInside", dir, kf, err)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("refused Init left a data directory")
	}
	// Through a symbolic link to the data directory.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, filepath.Join(link, "master.key")); !errors.Is(err, ErrKeyInside) {
		t.Fatalf("Init with key through a link = %v, want ErrKeyInside", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FormatFile)); err == nil {
		t.Fatal("refused Init left a format file")
	}
	// A sibling whose name starts like the data directory is not inside.
	if _, err := Init(dir, filepath.Join(base, "data.key")); err != nil {
		t.Fatalf("Init with a sibling key file: %v", err)
	}
}

func TestInitRefusesNonEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(dir, ""); !errors.Is(err, ErrExists) {
		t.Fatalf("Init of a non-empty folder = %v, want ErrExists", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err != nil {
		t.Fatal("refused Init removed a file")
	}
}

func TestOpenRejects(t *testing.T) {
	m, _ := keys.Generate()
	dir := t.TempDir()
	if _, err := OpenWithKey(dir, m); !errors.Is(err, ErrNotDataDir) {
		t.Fatalf("Open of an empty folder = %v, want ErrNotDataDir", err)
	}
	os.WriteFile(filepath.Join(dir, FormatFile), []byte(`{"format":"insitu-datadir","version":9}`), 0o600)
	if _, err := OpenWithKey(dir, m); !errors.Is(err, ErrVersion) {
		t.Fatalf("Open of version 9 = %v, want ErrVersion", err)
	}
	os.WriteFile(filepath.Join(dir, FormatFile), []byte(`{"format":"other","version":1}`), 0o600)
	if _, err := OpenWithKey(dir, m); !errors.Is(err, ErrNotDataDir) {
		t.Fatalf("Open of another format = %v, want ErrNotDataDir", err)
	}
}

func FuzzParseFormat(f *testing.F) {
	m := keys.FromBytes(make([]byte, keys.Size))
	dir := filepath.Join(f.TempDir(), "d")
	if _, err := Init(dir, ""); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(dir, FormatFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"format":"insitu-datadir","version":1,"key_check":"` + base64.StdEncoding.EncodeToString(m.CheckValue()) + `"}`))
	f.Add([]byte(`{"format":"insitu-datadir","version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseFormat(b, m)
		if err != nil {
			if !errors.Is(err, ErrNotDataDir) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrWrongKey) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if got.Format != FormatName || got.Version != FormatVersion {
			t.Fatalf("accepted %+v", got)
		}
	})
}

func TestInitCreatesEnclaveIdentity(t *testing.T) {
	base := t.TempDir()
	dir, keyFile := filepath.Join(base, "enclave"), filepath.Join(base, "master.key")
	res, err := Init(dir, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if res.Identity.Role != keys.RoleEnclave || len(res.Identity.SigningKey) == 0 || len(res.Identity.HPKEKey) == 0 {
		t.Fatalf("identity %+v", res.Identity)
	}
	d, err := Open(dir, keys.Source{File: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if id.Public().Fingerprint() != res.Identity.Fingerprint() {
		t.Fatal("stored identity differs from the one Init reported")
	}
	sealed, err := res.Identity.Seal([]byte("labels"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := id.Open(sealed, "test"); err != nil || string(pt) != "labels" {
		t.Fatalf("open %q %v", pt, err)
	}
}
