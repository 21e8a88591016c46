package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"insitu/enclave"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
)

// jobManifest writes a manifest of bank with the given purpose detail to name in tmp.
func jobManifest(t *testing.T, tmp, name, bank, detail string) {
	t.Helper()
	good, err := os.ReadFile("../../enclave/job/manifest/testdata/good-plaintext-public.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^bank: .*$`).ReplaceAllString(string(good), "bank: "+bank)
	m = regexp.MustCompile(`(?m)^purpose_detail: .*$`).ReplaceAllString(m, "purpose_detail: "+detail)
	m = regexp.MustCompile(`(?m)^expires: .*$`).ReplaceAllString(m, "expires: "+time.Now().AddDate(0, 3, 0).Format(time.RFC3339))
	writeFile(t, filepath.Join(tmp, name), m)
}

// squash collapses runs of white space, so that assertions do not depend on column widths.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

var jobIDRE = regexp.MustCompile(`job-[0-9a-f]{16}`)

func submit(t *testing.T, tmp string, flags []string, signed string) string {
	t.Helper()
	r := mustRun(t, tmp, nil, append([]string{"job", "submit", signed}, flags...)...)
	id := jobIDRE.FindString(r.stdout)
	if id == "" {
		t.Fatalf("submit: %s", r)
	}
	return id
}

func TestJobApprovalFlow(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	run := func(args ...string) result { t.Helper(); return mustRun(t, tmp, nil, append(args, flags...)...) }
	fail := func(args ...string) result {
		t.Helper()
		r := insitu(t, tmp, nil, append(args, flags...)...)
		if r.code == 0 {
			t.Fatalf("insitu %s succeeded: %s", strings.Join(args, " "), r)
		}
		return r
	}
	for _, p := range [][2]string{{"bank", "bank-a"}, {"bank", "bank-b"}, {"steward", "steward-1"}, {"steward", "steward-2"}, {"steward", "steward-x"}} {
		mustRun(t, tmp, nil, "keys", "new", "--role", p[0], "--name", p[1], "--out", p[1]+".key")
		if p[1] != "steward-x" {
			run("party", "add", p[1]+".pub.json")
		}
	}
	if r := run("party", "list"); strings.Count(r.stdout, "\n") != 5 || !strings.Contains(r.stdout, "steward-2") || strings.Contains(r.stdout, "steward-x") {
		t.Fatalf("party list: %s", r)
	}
	run("config", "set", "approvals.quorum", "2")
	if r := run("config", "get", "approvals.quorum"); !strings.Contains(r.stdout, "= 2") {
		t.Fatalf("config get: %s", r)
	}

	jobManifest(t, tmp, "a1.yaml", "bank-a", "first")
	mustRun(t, tmp, nil, "job", "sign", "a1.yaml", "--key", "bank-a.key", "--out", "a1.signed")
	id := submit(t, tmp, flags, "a1.signed")

	if r := fail("job", "approve", id, "--key", "bank-a.key"); !strings.Contains(r.stderr, "only a steward") {
		t.Fatalf("bank approved: %s", r)
	}
	if r := fail("job", "approve", id, "--key", "steward-x.key"); !strings.Contains(r.stderr, "steward-x") {
		t.Fatalf("unregistered steward approved: %s", r)
	}
	if r := run("job", "approve", id, "--key", "steward-1.key"); !strings.Contains(r.stdout, "approvals 1/2, submitted") {
		t.Fatalf("first approval: %s", r)
	}
	if r := run("job", "approve", id, "--key", "steward-1.key"); !strings.Contains(r.stdout, "approvals 1/2, submitted") {
		t.Fatalf("the same steward counted twice: %s", r)
	}
	show := run("job", "show", id)
	for _, want := range []string{"bank-a", "model_development", "approvals 1/2", "steward-1 approved", "never seen before",
		"tax_arrears_history.arrears_amount_24m", "metrics auc, log_loss", `hyperparameters {"depth":3,"trees":50}`, "minimum cohort 100"} {
		if !strings.Contains(squash(show.stdout), want) {
			t.Fatalf("show lacks %q: %s", want, show)
		}
	}
	if r := run("job", "approve", id, "--key", "steward-2.key"); !strings.Contains(r.stdout, "approvals 2/2, approved") {
		t.Fatalf("second approval: %s", r)
	}

	// A manifest naming bank-a signed with bank-b's key is refused.
	jobManifest(t, tmp, "forged.yaml", "bank-a", "forged")
	data, _ := os.ReadFile(filepath.Join(tmp, "forged.yaml"))
	m, err := manifest.Parse(data, "forged.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := os.ReadFile(filepath.Join(tmp, "bank-b.key"))
	bankB, err := keys.ParsePartyFile(kd, nil)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := bankB.Sign(m.Canonical(), manifest.SignatureContext)
	writeFile(t, filepath.Join(tmp, "forged.signed"), string((&manifest.Signed{Manifest: m, Signer: bankB.Public().Fingerprint(), Signature: sig}).Marshal()))
	if r := fail("job", "submit", "forged.signed"); !strings.Contains(r.stderr, "signer") {
		t.Fatalf("forged manifest: %s", r)
	}

	// A rejection shows its reason; the plugin's history counts the earlier jobs.
	jobManifest(t, tmp, "a2.yaml", "bank-a", "second")
	mustRun(t, tmp, nil, "job", "sign", "a2.yaml", "--key", "bank-a.key", "--out", "a2.signed")
	id2 := submit(t, tmp, flags, "a2.signed")
	fail("job", "reject", id2, "--key", "steward-1.key")
	run("job", "reject", id2, "--key", "steward-1.key", "--reason", "purpose too broad for personal data")
	show2 := run("job", "show", id2)
	for _, want := range []string{"rejected", "reason purpose too broad for personal data", "seen in 1 earlier jobs (1 approved)"} {
		if !strings.Contains(squash(show2.stdout), want) {
			t.Fatalf("show of rejected job lacks %q: %s", want, show2)
		}
	}

	jobManifest(t, tmp, "b1.yaml", "bank-b", "third")
	mustRun(t, tmp, nil, "job", "sign", "b1.yaml", "--key", "bank-b.key", "--out", "b1.signed")
	id3 := submit(t, tmp, flags, "b1.signed")
	if r := run("job", "list", "--bank", "bank-b"); !strings.Contains(r.stdout, id3) || strings.Contains(r.stdout, id) {
		t.Fatalf("list --bank bank-b: %s", r)
	}
	if r := run("job", "list"); !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, id2) || !strings.Contains(r.stdout, "purpose too broad") {
		t.Fatalf("list: %s", r)
	}

	// Cancel from approved works; from succeeded it is refused.
	if r := run("job", "cancel", id); !strings.Contains(r.stdout, "cancelled") {
		t.Fatalf("cancel approved: %s", r)
	}
	st := mustRun(t, tmp, nil, "job", "approve", id3, "--key", "steward-1.key", "--data-dir", "dd", "--key-file", "dd.key")
	if !strings.Contains(st.stdout, "1/2") {
		t.Fatalf("approve b1: %s", st)
	}
	run("job", "approve", id3, "--key", "steward-2.key")
	ctx := context.Background()
	e, err := enclave.Open(ctx, filepath.Join(tmp, "dd"), keys.Source{File: filepath.Join(tmp, "dd.key")})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := e.Jobs.Queue(ctx, id3); return err },
		func() error { _, err := e.Jobs.Start(ctx, id3); return err },
		func() error { _, err := e.Jobs.Succeed(ctx, id3, nil); return err },
	} {
		if err := step(); err != nil {
			e.Close()
			t.Fatal(err)
		}
	}
	e.Close()
	if r := fail("job", "cancel", id3); !strings.Contains(r.stderr, id3+" is succeeded and cannot become cancelled") {
		t.Fatalf("cancelled a succeeded job: %s", r)
	}
	if r := run("audit", "verify"); r.code != 0 {
		t.Fatalf("audit verify: %s", r)
	}
	run("party", "remove", "steward-2")
	if r := run("party", "list"); strings.Contains(r.stdout, "steward-2") {
		t.Fatalf("removed party listed: %s", r)
	}
}
