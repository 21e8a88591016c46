package console_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"insitu/connectors/catalog"
	"insitu/enclave"
	"insitu/enclave/consent"
	"insitu/enclave/console"
	"insitu/enclave/datadir"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/job/passkey"
	"insitu/enclave/job/passkey/passkeytest"
	"insitu/enclave/keys"
	"insitu/plugins/sdk"
)

type env struct {
	e      *enclave.Enclave
	srv    *httptest.Server
	origin string
	ids    map[string]*keys.Identity
}

// newEnv opens an enclave with a bank, two stewards and an admin, and serves the console on
// plain HTTP at 127.0.0.1 (the tests speak to it as localhost, a secure context for browsers).
func newEnv(t *testing.T) *env { return newEnvWith(t, console.Options{}) }

func newEnvWith(t *testing.T, o console.Options) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	in, err := datadir.Init(filepath.Join(dir, "dd"), filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := enclave.Open(ctx, in.Dir, keys.Source{File: filepath.Join(dir, "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	v := &env{e: e, ids: map[string]*keys.Identity{}}
	for _, p := range [][2]string{{keys.RoleBank, "bank-a"}, {keys.RoleSteward, "steward-1"}, {keys.RoleSteward, "steward-2"}, {keys.RoleAdmin, "admin-1"}} {
		id, err := keys.NewIdentity(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		v.ids[p[1]] = id
		if _, err := e.Jobs.AddParty(ctx, "test", id.Public()); err != nil {
			t.Fatal(err)
		}
	}
	c := console.New(e, o)
	mux := http.NewServeMux()
	mux.Handle(console.Prefix+"/", c.Handler())
	v.srv = httptest.NewServer(mux)
	t.Cleanup(v.srv.Close)
	v.origin = "http://localhost:" + v.srv.URL[strings.LastIndex(v.srv.URL, ":")+1:]
	return v
}

// browser is a cookie-keeping client that speaks to the console as localhost.
type browser struct {
	t      *testing.T
	v      *env
	hc     *http.Client
	lang   string
	status int
}

func (v *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (netConn, error) {
		return (&netDialer{}).DialContext(ctx, network, v.srv.Listener.Addr().String())
	}}
	return &browser{t: t, v: v, hc: &http.Client{Jar: jar, Transport: tr}}
}

func (b *browser) do(req *http.Request) string {
	b.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.status = resp.StatusCode
	return string(body)
}

func (b *browser) get(path string) string {
	req, _ := http.NewRequest("GET", b.v.origin+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) string {
	req, _ := http.NewRequest("POST", b.v.origin+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.v.origin)
	return b.do(req)
}

var (
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	chalRE  = regexp.MustCompile(`name="challenge" value="([^"]+)"`)
	codeRE  = regexp.MustCompile(`id="enrol-code" class="code">([A-Z0-9-]+)<`)
	fieldRE = regexp.MustCompile(`data-user="([^"]+)"`)
)

func match(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in the page:\n%s", re, page)
	}
	return m[1]
}

func unb64(t *testing.T, s string) []byte {
	b, err := passkeyB64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enrol registers a passkey for party in the console and signs its statement as the CLI does.
func (b *browser) enrol(party string) *passkeytest.Authenticator {
	t := b.t
	page := b.get("/console/enrol")
	page = b.post("/console/enrol", url.Values{"csrf": {match(t, csrfRE, page)}, "party": {party}})
	if b.status != http.StatusOK {
		t.Fatalf("enrol %s: %d\n%s", party, b.status, page)
	}
	ch := unb64(t, match(t, chalRE, page))
	match(t, fieldRE, page)
	a := passkeytest.New("localhost", b.v.origin)
	cd, ad := a.Register(ch)
	page = b.post("/console/enrol/finish", url.Values{"csrf": {match(t, csrfRE, page)}, "challenge": {passkeyB64.EncodeToString(ch)},
		"credential_id": {passkeyB64.EncodeToString(a.ID)}, "client_data_json": {passkeyB64.EncodeToString(cd)},
		"authenticator_data": {passkeyB64.EncodeToString(ad)}})
	code := match(t, codeRE, page)
	st, data, err := b.v.e.Jobs.PasskeyRequest(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	if st.Origin != b.v.origin || st.RPID != "localhost" {
		t.Fatalf("statement origin %s rp %s", st.Origin, st.RPID)
	}
	sig, err := b.v.ids[party].Sign(data, passkey.EnrolContext)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.v.e.Jobs.EnrollPasskey(context.Background(), party, code, passkey.Enrolment{Statement: data, Signature: sig}); err != nil {
		t.Fatal(err)
	}
	return a
}

func assertionForm(csrf string, a *passkey.Assertion) url.Values {
	return url.Values{"csrf": {csrf}, "credential_id": {passkeyB64.EncodeToString(a.CredentialID)},
		"authenticator_data": {passkeyB64.EncodeToString(a.AuthenticatorData)}, "client_data_json": {passkeyB64.EncodeToString(a.ClientDataJSON)},
		"signature": {passkeyB64.EncodeToString(a.Signature)}}
}

// signin signs in with a's passkey and returns the job queue page.
func (b *browser) signin(a *passkeytest.Authenticator) string {
	t := b.t
	page := b.get("/console/signin")
	ch := unb64(t, match(t, chalRE, page))
	f := assertionForm(match(t, csrfRE, page), a.Assert(ch))
	f.Set("challenge", passkeyB64.EncodeToString(ch))
	return b.post("/console/signin", f)
}

// submit submits a plaintext-public job of bank-a and returns it.
func (v *env) submit(t *testing.T, detail string) *job.Job {
	t.Helper()
	var fields []manifest.Field
	for _, it := range catalog.Default().Items() {
		for _, f := range it.Features() {
			if (f.Type == "float" || f.Type == "int") && f.Sensitivity < 3 && len(fields) < 3 {
				fields = append(fields, manifest.Field{Key: it.Key + "." + f.Key})
			}
		}
	}
	m := &manifest.Manifest{Format: manifest.FormatV1, Bank: "bank-a", Purpose: consent.PurposeModelDevelopment, PurposeDetail: detail,
		Dataset: manifest.Dataset{Name: "synthetic", Version: "1"}, Fields: fields, Mode: sdk.ModePlaintextPublic,
		Model:   manifest.Model{Family: sdk.FamilyLogisticRegression, Hyperparameters: map[string]any{"lambda": 0.01}},
		Plugin:  "sha256:" + strings.Repeat("ab", 32),
		Outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 16, MaxAbs: 100}, Scores: &manifest.ScoresOutput{}},
		Expires: time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := manifest.Sign(m, v.ids["bank-a"])
	if err != nil {
		t.Fatal(err)
	}
	j, err := v.e.Jobs.Submit(context.Background(), s.Marshal(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestSignInApproveAndRefusals(t *testing.T) {
	v := newEnv(t)
	ctx := context.Background()
	if err := v.e.Jobs.SetSetting(ctx, "test", job.SettingQuorum, 2); err != nil {
		t.Fatal(err)
	}
	j := v.submit(t, "console test")
	b := v.browser(t)

	// A bank cannot enrol a passkey, so it never signs in.
	page := b.get("/console/enrol")
	b.post("/console/enrol", url.Values{"csrf": {match(t, csrfRE, page)}, "party": {"bank-a"}})
	if b.status != http.StatusForbidden {
		t.Fatalf("a bank's enrolment: status %d, want 403", b.status)
	}
	// Pages need a session.
	if page := b.get("/console/jobs"); !strings.Contains(page, `id="signin-form"`) {
		t.Fatal("the job queue without a session did not lead to the sign-in page")
	}

	a := b.enrol("steward-1")
	page = b.signin(a)
	if b.status != http.StatusOK || !strings.Contains(page, j.ID) || !strings.Contains(page, "steward-1") {
		t.Fatalf("after sign-in: %d\n%s", b.status, page)
	}
	// The sign-in is audited.
	recs, err := v.e.Audit.Records(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	signins := 0
	for _, r := range recs {
		if r.Kind == console.KindSignIn && r.Actor == "steward-1" {
			signins++
		}
	}
	if signins != 1 {
		t.Fatalf("%d sign-in records, want 1", signins)
	}

	page = b.get("/console/jobs/" + j.ID)
	csrf := match(t, csrfRE, page)
	hash := job.ApprovalMessage(j.Manifest)
	// A forged post without the CSRF token is refused, even with a valid assertion.
	f := assertionForm("", a.Assert(hash))
	b.post("/console/jobs/"+j.ID+"/approve", f)
	if b.status != http.StatusForbidden {
		t.Fatalf("approval without CSRF token: %d, want 403", b.status)
	}
	// A session alone (no assertion) does not approve; nor does an assertion over another challenge.
	b.post("/console/jobs/"+j.ID+"/approve", url.Values{"csrf": {csrf}})
	if b.status != http.StatusForbidden {
		t.Fatalf("approval by session alone: %d, want 403", b.status)
	}
	other := sha256.Sum256([]byte("not the manifest"))
	b.post("/console/jobs/"+j.ID+"/approve", assertionForm(csrf, a.Assert(other[:])))
	if b.status != http.StatusForbidden {
		t.Fatalf("approval over another challenge: %d, want 403", b.status)
	}
	if st, _ := v.e.Jobs.Status(ctx, j.ID); st.Approvals != 0 {
		t.Fatalf("%d approvals after refused attempts", st.Approvals)
	}
	// The real thing: an assertion whose challenge is the manifest hash.
	page = b.post("/console/jobs/"+j.ID+"/approve", assertionForm(csrf, a.Assert(hash)))
	if b.status != http.StatusOK || !strings.Contains(page, `data-kind="webauthn"`) || !strings.Contains(page, `id="approval-count">1 of 2`) {
		t.Fatalf("after approval: %d\n%s", b.status, page)
	}
	st, err := v.e.Jobs.Status(ctx, j.ID)
	if err != nil || st.Approvals != 1 || st.Decisions[0].WebAuthn == nil {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, _, err := st.Decisions[0].WebAuthn.Verify(v.ids["steward-1"].Public(), hash, st.Decisions[0].Signature); err != nil {
		t.Fatalf("recorded approval does not verify offline: %v", err)
	}

	// Signing out ends the session: its cookie no longer reaches the pages.
	b.post("/console/signout", url.Values{"csrf": {csrf}})
	if page := b.get("/console/jobs"); !strings.Contains(page, `id="signin-form"`) {
		t.Fatal("the session outlived sign-out")
	}
}

func TestLanguage(t *testing.T) {
	v := newEnv(t)
	b := v.browser(t)
	b.lang = "zh-CN,zh;q=0.9,en;q=0.8"
	page := b.get("/console/signin")
	if !strings.Contains(page, `<html lang="zh-CN">`) || !strings.Contains(page, "使用通行密钥登录") {
		t.Fatalf("a Chinese browser did not get Chinese:\n%s", page)
	}
	b.lang = "en-US,en;q=0.9,zh;q=0.5"
	if page := b.get("/console/signin"); !strings.Contains(page, `<html lang="en">`) || !strings.Contains(page, "Sign in with passkey") {
		t.Fatalf("an English browser did not get English:\n%s", page)
	}
	// The switch is remembered over the browser's preference.
	page = b.post("/console/lang", url.Values{"csrf": {match(t, csrfRE, page)}, "to": {"zh-CN"}, "back": {"/console/signin"}})
	if !strings.Contains(page, `<html lang="zh-CN">`) {
		t.Fatalf("the switch to Chinese did not take:\n%s", page)
	}
	if page := b.get("/console/enrol"); !strings.Contains(page, "登记通行密钥") {
		t.Fatal("the language choice was not remembered")
	}
}

func TestEveryInputHasALabel(t *testing.T) {
	v := newEnv(t)
	j := v.submit(t, "labels")
	b := v.browser(t)
	a := b.enrol("steward-2")
	b.signin(a)
	inputRE := regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRE := regexp.MustCompile(`\bid="([^"]+)"`)
	for _, p := range []string{"/console/jobs", "/console/jobs/" + j.ID, "/console/audit", "/console/authorizations", "/console/usage", "/console/passkeys"} {
		page := b.get(p)
		if b.status != http.StatusOK {
			t.Fatalf("%s: %d", p, b.status)
		}
		for _, in := range inputRE.FindAllString(page, -1) {
			if strings.Contains(in, `type="hidden"`) {
				continue
			}
			m := idRE.FindStringSubmatch(in)
			if m == nil || !strings.Contains(page, fmt.Sprintf(`<label for="%s"`, m[1])) {
				t.Errorf("%s: %s has no label", p, in)
			}
		}
	}
}

// TestPagesRender renders every page for a signed-in steward, so that a template naming another
// that its page set lacks fails here rather than in a browser.
func TestPagesRender(t *testing.T) {
	v := newEnv(t)
	j := v.submit(t, "render")
	b := v.browser(t)
	b.signin(b.enrol("steward-1"))
	for _, p := range []string{"/console/jobs", "/console/jobs/" + j.ID, "/console/released", "/console/audit", "/console/authorizations",
		"/console/authorizations?id_type=uscc&q=91350100M000100Y43", "/console/usage?category=tax", "/console/datasets", "/console/passkeys", "/console/nowhere"} {
		page := b.get(p)
		if !strings.Contains(page, `<main id="main"`) || !strings.Contains(page, "</html>") {
			t.Errorf("%s: status %d, not a whole page:\n%s", p, b.status, page)
		}
	}
	// Downloads: the usage report as CSV, the audit log as JSON lines (with the sign-in in it).
	if csv := b.get("/console/usage?category=2&format=csv"); b.status != http.StatusOK || !strings.HasPrefix(csv, "job,bank,purpose") {
		t.Errorf("usage CSV: %d %q", b.status, csv)
	}
	if md := b.get("/console/usage?category=2&format=md"); b.status != http.StatusOK || !strings.Contains(md, "|") {
		t.Errorf("usage Markdown: %d %q", b.status, md)
	}
	lines := strings.Split(strings.TrimSpace(b.get("/console/audit/export?kind=console_sign_in")), "\n")
	if b.status != http.StatusOK || len(lines) != 1 || !strings.Contains(lines[0], `"actor":"steward-1"`) {
		t.Errorf("audit export of sign-ins: %d %q", b.status, lines)
	}
}

func TestBudgetsEditable(t *testing.T) {
	v := newEnv(t)
	b := v.browser(t)
	b.signin(b.enrol("steward-1"))
	page := b.get("/console/budgets")
	b.post("/console/budgets", url.Values{"csrf": {match(t, csrfRE, page)}, "bank": {"bank-a"}, "dataset": {"sme"}, "epsilon": {"-1"}})
	if b.status != http.StatusBadRequest {
		t.Fatalf("a negative budget: %d, want 400", b.status)
	}
	page = b.post("/console/budgets", url.Values{"csrf": {match(t, csrfRE, page)}, "bank": {"bank-a"}, "dataset": {"sme"}, "epsilon": {"2.5"}})
	if b.status != http.StatusOK || !strings.Contains(page, "privacy_budget") {
		t.Fatalf("setting a budget: %d\n%s", b.status, page)
	}
	acc, err := v.e.Privacy.Account(context.Background(), "bank-a", "sme")
	if err != nil || acc.Epsilon != 2.5 || acc.Default {
		t.Fatalf("account %+v, %v", acc, err)
	}
	// An admin sees the audit log but not the budgets.
	admin := v.browser(t)
	admin.signin(admin.enrol("admin-1"))
	admin.get("/console/budgets")
	if admin.status != http.StatusForbidden {
		t.Fatalf("an admin on the budgets page: %d, want 403", admin.status)
	}
	if admin.get("/console/audit"); admin.status != http.StatusOK {
		t.Fatalf("an admin on the audit page: %d", admin.status)
	}
	// Jobs are the stewards' (as in the API): an admin neither reviews nor lists them.
	if admin.get("/console/jobs"); admin.status != http.StatusForbidden {
		t.Fatalf("an admin on the job queue: %d, want 403", admin.status)
	}
}

func TestSessionTimeoutsAndFailedSignIn(t *testing.T) {
	now := time.Now()
	v := newEnvWith(t, console.Options{Now: func() time.Time { return now }, Idle: 10 * time.Minute, Lifetime: time.Hour})
	b := v.browser(t)
	a := b.enrol("steward-1")
	b.signin(a)
	if page := b.get("/console/jobs"); strings.Contains(page, `id="signin-form"`) {
		t.Fatal("not signed in")
	}
	now = now.Add(9 * time.Minute)
	if page := b.get("/console/jobs"); strings.Contains(page, `id="signin-form"`) {
		t.Fatal("signed out before the idle timeout")
	}
	now = now.Add(11 * time.Minute)
	if page := b.get("/console/jobs"); !strings.Contains(page, `id="signin-form"`) {
		t.Fatal("the session outlived the idle timeout")
	}
	// Absolute lifetime: active every 5 minutes, still ended after an hour.
	b.signin(a)
	for range 11 {
		now = now.Add(5 * time.Minute)
		b.get("/console/jobs")
	}
	now = now.Add(6 * time.Minute)
	if page := b.get("/console/jobs"); !strings.Contains(page, `id="signin-form"`) {
		t.Fatal("the session outlived its lifetime")
	}
	// A sign-in with an assertion over a challenge the console never issued fails and is audited.
	page := b.get("/console/signin")
	f := assertionForm(match(t, csrfRE, page), a.Assert([]byte("made up challenge")))
	f.Set("challenge", passkeyB64.EncodeToString([]byte("made up challenge")))
	b.post("/console/signin", f)
	if b.status != http.StatusUnauthorized {
		t.Fatalf("a made-up challenge: %d, want 401", b.status)
	}
	recs, err := v.e.Audit.Records(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if last := recs[len(recs)-1]; last.Kind != "login_failed" || !strings.Contains(string(last.Payload), "unknown_challenge") {
		t.Fatalf("last audit record %s %s, want the failed sign-in", last.Kind, last.Payload)
	}
}
