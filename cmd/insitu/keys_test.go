package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestKeysAndSealedLabels(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	out := mustRun(t, tmp, nil, "keys", "new", "--role", "bank", "--name", "bank-a", "--out", "bank-a.key")
	fp := regexp.MustCompile(`fingerprint ([0-9a-f]{32})`).FindStringSubmatch(out.stdout)
	if fp == nil {
		t.Fatalf("keys new: %s", out)
	}
	if st, err := os.Stat(filepath.Join(tmp, "bank-a.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st, err)
	}
	show := mustRun(t, tmp, nil, "keys", "show", "bank-a.key")
	if !strings.Contains(show.stderr, fp[1]) || !strings.Contains(show.stdout, `"role": "bank"`) {
		t.Fatalf("keys show: %s", show)
	}
	if r := insitu(t, tmp, nil, "keys", "new", "--role", "bank", "--name", "bank-a", "--out", "bank-a.key"); r.code == 0 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("overwrote a key file: %s", r)
	}
	// A passphrase-protected key file needs its passphrase.
	env := []string{"INSITU_KEY_PASSPHRASE=s3cret"}
	mustRun(t, tmp, env, "keys", "new", "--role", "steward", "--name", "steward-1", "--out", "st.key")
	if r := insitu(t, tmp, nil, "keys", "show", "st.key"); r.code == 0 || !strings.Contains(r.stderr, "INSITU_KEY_PASSPHRASE") {
		t.Fatalf("opened without passphrase: %s", r)
	}
	mustRun(t, tmp, env, "keys", "show", "st.key")

	id := mustRun(t, tmp, nil, append([]string{"identity"}, flags...)...)
	writeFile(t, filepath.Join(tmp, "enclave.pub.json"), id.stdout)
	codes := creditFixture(t, tmp, 0)
	writeFile(t, filepath.Join(tmp, "labels.csv"), "uscc,label\n"+codes[0]+",1\n"+codes[1]+",0\n"+codes[2]+",0\n")
	seal := mustRun(t, tmp, nil, "labels", "seal", "labels.csv", "--to", "enclave.pub.json", "--out", "labels.sealed")
	if !regexp.MustCompile(`sha256:[0-9a-f]{64}`).MatchString(seal.stdout) {
		t.Fatalf("seal: %s", seal)
	}
	sealed, _ := os.ReadFile(filepath.Join(tmp, "labels.sealed"))
	if strings.Contains(string(sealed), codes[0]) {
		t.Fatal("identifier in clear in the sealed file")
	}
	check := mustRun(t, tmp, nil, append([]string{"labels", "check", "labels.sealed"}, flags...)...)
	if !strings.Contains(check.stdout, "3 subjects (uscc), 1 labelled 1") {
		t.Fatalf("check: %s", check)
	}
	if r := insitu(t, tmp, nil, "labels", "seal", "labels.csv", "--to", "bank-a.pub.json", "--out", "x.sealed"); r.code != 1 || !strings.Contains(r.stderr, "enclave") {
		t.Fatalf("sealed to a bank: %s", r)
	}
	writeFile(t, filepath.Join(tmp, "bad.csv"), "uscc,label\n"+codes[0]+",1\n"+codes[0]+",0\n")
	if r := insitu(t, tmp, nil, "labels", "seal", "bad.csv", "--to", "enclave.pub.json", "--out", "y.sealed"); r.code != 1 ||
		!strings.Contains(r.stderr, "data row 2") || !strings.Contains(r.stderr, "unique-subject") {
		t.Fatalf("duplicate not reported with its row: %s", r)
	}
	if _, err := os.Stat(filepath.Join(tmp, "y.sealed")); err == nil {
		t.Fatal("a sealed file was written for invalid labels")
	}
}

func TestJobSignVerify(t *testing.T) {
	tmp := t.TempDir()
	mustRun(t, tmp, nil, "keys", "new", "--role", "bank", "--name", "bank-a", "--out", "bank-a.key")
	mustRun(t, tmp, nil, "keys", "new", "--role", "bank", "--name", "bank-b", "--out", "bank-b.key")
	good, err := os.ReadFile("../../enclave/job/manifest/testdata/good-plaintext-public.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^bank: .*$`).ReplaceAllString(string(good), "bank: bank-a")
	m = regexp.MustCompile(`(?m)^expires: .*$`).ReplaceAllString(m, "expires: "+time.Now().AddDate(0, 3, 0).Format(time.RFC3339))
	writeFile(t, filepath.Join(tmp, "job.yaml"), m)
	check := mustRun(t, tmp, nil, "job", "check", "job.yaml")
	hash := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(check.stdout)
	if hash == "" {
		t.Fatalf("check: %s", check)
	}
	sign := mustRun(t, tmp, nil, "job", "sign", "job.yaml", "--key", "bank-a.key", "--out", "job.signed")
	if !strings.Contains(sign.stdout, hash) {
		t.Fatalf("sign printed another hash: %s", sign)
	}
	if v := mustRun(t, tmp, nil, "job", "verify", "job.signed", "--pub", "bank-a.pub.json"); !strings.Contains(v.stdout, "ok:") {
		t.Fatalf("verify: %s", v)
	}
	if r := insitu(t, tmp, nil, "job", "verify", "job.signed", "--pub", "bank-b.pub.json"); r.code != 1 {
		t.Fatalf("verified under another bank's key: %s", r)
	}
	if r := insitu(t, tmp, nil, "job", "sign", "job.yaml", "--key", "bank-b.key", "--out", "b.signed"); r.code != 1 || !strings.Contains(r.stderr, "bank-b") {
		t.Fatalf("bank-b signed bank-a's manifest: %s", r)
	}
	signed, _ := os.ReadFile(filepath.Join(tmp, "job.signed"))
	writeFile(t, filepath.Join(tmp, "edited.signed"), strings.Replace(string(signed), "bank-a", "bank-b", 1))
	if r := insitu(t, tmp, nil, "job", "verify", "edited.signed", "--pub", "bank-a.pub.json"); r.code != 1 {
		t.Fatalf("edited manifest verified: %s", r)
	}
}
