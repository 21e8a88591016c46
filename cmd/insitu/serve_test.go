package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"insitu/enclave/scoring"
)

// TestServeLoginAndJobsOverTheAPI runs insitu serve as a child process and drives the job commands
// through its API with profiles written by insitu login: a bank submits and lists, another bank
// sees nothing, a steward reviews and approves with its own key; SIGTERM stops the daemon cleanly.
func TestServeLoginAndJobsOverTheAPI(t *testing.T) {
	tmp := t.TempDir()
	flags := newEnclaveDir(t, tmp)
	for _, p := range [][2]string{{"bank", "bank-a"}, {"bank", "bank-b"}, {"steward", "steward-1"}} {
		mustRun(t, tmp, nil, "keys", "new", "--role", p[0], "--name", p[1], "--out", p[1]+".key")
		mustRun(t, tmp, nil, append([]string{"party", "add", p[1] + ".pub.json"}, flags...)...)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command(exe, append([]string{"serve", "--listen", "127.0.0.1:0", "--no-worker"}, flags...)...)
	srv.Dir = tmp
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSITU_") {
			srv.Env = append(srv.Env, kv)
		}
	}
	srv.Env = append(srv.Env, childEnv+"=1")
	var logs bytes.Buffer
	srv.Stderr = &logs
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	sc := bufio.NewScanner(stdout)
	var addr, fp string
	for (addr == "" || fp == "") && sc.Scan() {
		if m := regexp.MustCompile(`listening on (https://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
		if m := regexp.MustCompile(`fingerprint (SHA256:[0-9a-f]{64})`).FindStringSubmatch(sc.Text()); m != nil {
			fp = m[1]
		}
	}
	if addr == "" || fp == "" {
		t.Fatalf("serve printed no address and fingerprint; log:\n%s", logs.String())
	}
	// insitu identity prints the same fingerprint.
	if r := mustRun(t, tmp, nil, append([]string{"identity"}, flags...)...); !strings.Contains(r.stderr, "tls certificate "+fp) {
		t.Fatalf("identity: %s", r)
	}
	login := func(party string) string {
		profile := filepath.Join(tmp, party+".profile.json")
		r := mustRun(t, tmp, nil, "login", "--enclave", addr, "--fingerprint", strings.ToUpper(fp[7:]), "--key", party+".key", "--profile", profile)
		if !strings.Contains(r.stdout, "as "+map[bool]string{true: "steward", false: "bank"}[strings.HasPrefix(party, "steward")]+" "+party) {
			t.Fatalf("login %s: %s", party, r)
		}
		if st, err := os.Stat(profile); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("profile %s: %v %v", profile, st.Mode(), err)
		}
		return profile
	}
	bankA, bankB, steward := login("bank-a"), login("bank-b"), login("steward-1")
	if r := mustRun(t, tmp, nil, "config", "get", "cohort.min_size", "--profile", steward); !strings.Contains(r.stdout, "cohort.min_size = 100") {
		t.Fatalf("config get: %s", r)
	}
	if r := insitu(t, tmp, nil, "config", "set", "approvals.quorum", "2", "--profile", bankA); r.code == 0 || !strings.Contains(r.stderr, "forbidden") {
		t.Fatalf("a bank sets the quorum: %s", r)
	}
	// Privacy budgets through the API: the steward sets and reads them, a bank may not.
	if r := mustRun(t, tmp, nil, "budget", "set", "--bank", "bank-a", "--dataset", "sme", "--epsilon", "12", "--profile", steward); !strings.Contains(r.stdout, "bank bank-a on dataset sme: ε = 12") {
		t.Fatalf("budget set: %s", r)
	}
	if r := mustRun(t, tmp, nil, "budget", "show", "--profile", steward); !strings.Contains(squash(r.stdout), "bank-a sme 12 0 12 1e-06 0") || !strings.Contains(r.stdout, "minimum cell count k = 10") {
		t.Fatalf("budget show: %s", r)
	}
	// δ per (bank, dataset): set over the API, shown, out of range refused.
	if r := mustRun(t, tmp, nil, "budget", "set", "--bank", "bank-a", "--dataset", "sme", "--epsilon", "12", "--delta", "1e-8", "--profile", steward); !strings.Contains(r.stdout, "ε = 12 (δ = 1e-08)") {
		t.Fatalf("budget set --delta: %s", r)
	}
	if r := mustRun(t, tmp, nil, "budget", "show", "--profile", steward); !strings.Contains(squash(r.stdout), "bank-a sme 12 0 12 1e-08 0") {
		t.Fatalf("budget show after --delta: %s", r)
	}
	if r := insitu(t, tmp, nil, "budget", "set", "--bank", "bank-a", "--dataset", "sme", "--epsilon", "12", "--delta", "0.01", "--profile", steward); r.code == 0 || !strings.Contains(r.stderr, "at most 1e-05") {
		t.Fatalf("budget set --delta 0.01: %s", r)
	}
	if r := insitu(t, tmp, nil, "budget", "set", "--min-count", "20", "--profile", bankA); r.code == 0 || !strings.Contains(r.stderr, "forbidden") {
		t.Fatalf("a bank sets the minimum cell count: %s", r)
	}
	if r := insitu(t, tmp, nil, "login", "--enclave", addr, "--fingerprint", "SHA256:"+strings.Repeat("0", 64), "--key", "bank-a.key", "--profile", "x.json"); r.code == 0 || !strings.Contains(r.stderr, "fingerprint") {
		t.Fatalf("login with a wrong pin: %s", r)
	}

	jobManifest(t, tmp, "a1.yaml", "bank-a", "over the api")
	mustRun(t, tmp, nil, "job", "sign", "a1.yaml", "--key", "bank-a.key", "--out", "a1.signed")
	r := mustRun(t, tmp, nil, "job", "submit", "a1.signed", "--profile", bankA)
	id := jobIDRE.FindString(r.stdout)
	if id == "" {
		t.Fatalf("submit: %s", r)
	}
	if r := mustRun(t, tmp, nil, "job", "list", "--profile", bankA); !strings.Contains(r.stdout, id) {
		t.Fatalf("bank A's list: %s", r)
	}
	if r := mustRun(t, tmp, nil, "job", "list", "--profile", bankB); strings.Contains(r.stdout, id) {
		t.Fatalf("bank B's list shows A's job: %s", r)
	}
	if r := insitu(t, tmp, nil, "job", "show", id, "--profile", bankB); r.code == 0 || !strings.Contains(r.stderr, "not_found") {
		t.Fatalf("bank B shows A's job: %s", r)
	}
	if r := insitu(t, tmp, nil, "job", "submit", "a1.signed", "--profile", steward); r.code == 0 || !strings.Contains(r.stderr, "forbidden") {
		t.Fatalf("steward submits: %s", r)
	}
	if r := mustRun(t, tmp, nil, "job", "show", id, "--profile", steward); !strings.Contains(squash(r.stdout), "approvals 0/1") {
		t.Fatalf("steward's review: %s", r)
	}
	if r := mustRun(t, tmp, nil, "job", "approve", id, "--key", "steward-1.key", "--profile", steward); !strings.Contains(r.stdout, "approvals 1/1, approved") {
		t.Fatalf("approve: %s", r)
	}
	if r := mustRun(t, tmp, nil, "job", "show", id, "--profile", bankA); !strings.Contains(r.stdout, "approved") {
		t.Fatalf("bank A's show: %s", r)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "msg=stopped") {
		t.Fatalf("serve log:\n%s", logs.String())
	}
}

// TestServeScoringFlags parses insitu serve's rate-limit flags and checks they reach the API
// server's scoring options, that the defaults are the scoring service's, and that a zero limit is
// refused before the enclave is opened.
func TestServeScoringFlags(t *testing.T) {
	var cfg serveConfig
	f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	registerScoringFlags(f, &cfg.scoring)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	o, err := cfg.apiOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (scoring.Options{ScoreRate: 2000, ScoreBurst: 20000, VerifyRate: 5, VerifyBurst: 50, MaxClaims: 3, ClaimWindow: 24 * time.Hour}); !reflect.DeepEqual(o.Scoring, want) {
		t.Errorf("defaults: %+v, want %+v", o.Scoring, want)
	}
	if err := f.Parse([]string{"--score-rate", "10", "--score-burst=40", "--verify-rate", "0.5", "--verify-burst", "2", "--max-claims", "1", "--claim-window", "1h"}); err != nil {
		t.Fatal(err)
	}
	if o, err = cfg.apiOptions(nil); err != nil {
		t.Fatal(err)
	}
	if want := (scoring.Options{ScoreRate: 10, ScoreBurst: 40, VerifyRate: 0.5, VerifyBurst: 2, MaxClaims: 1, ClaimWindow: time.Hour}); !reflect.DeepEqual(o.Scoring, want) {
		t.Errorf("flags: %+v, want %+v", o.Scoring, want)
	}
	r := insitu(t, t.TempDir(), nil, "serve", "--verify-burst", "0", "--data-dir", t.TempDir())
	if r.code == 0 || !strings.Contains(r.stderr, "--verify-burst: 0 is not positive") {
		t.Errorf("serve --verify-burst 0: %s", r)
	}
	if r := mustRun(t, t.TempDir(), nil, "serve", "--help"); !strings.Contains(r.stdout, "--verify-rate float") || !strings.Contains(r.stdout, "(default 5)") {
		t.Errorf("serve --help lacks the rate-limit flags: %s", r)
	}
}
