package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/keys"
	"insitu/enclave/sandbox"
)

// findBrowser returns a Chromium or Chrome executable, or "".
func findBrowser() string {
	if p := os.Getenv("INSITU_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// unlabelledJS counts the form controls a screen reader could not name: no label element, no
// aria-label and (for buttons) no text. It also fails a page without a lang attribute.
const unlabelledJS = `(() => {
  if (!document.documentElement.lang) return 1000;
  return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button')).filter(e =>
    !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim())).length;
})()`

// axeSeriousJS runs axe-core (already injected) on the page and lists its serious and critical
// violations.
const axeSeriousJS = `axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
  .filter(v => v.impact === 'serious' || v.impact === 'critical')
  .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' + v.nodes.map(n => n.target.join(' ')).join(', ')))`

// TestConsoleInBrowser drives the steward console in headless Chromium with a virtual WebAuthn
// authenticator: a bank is refused, a steward enrols a passkey (signing its statement with the
// steward's key through the API), signs in, reviews and approves a pending job with the passkey,
// watches it run and sees its release record and ROC chart, switches to Chinese; a forged post
// without the CSRF token is refused; the receipt verifies offline with the passkey approval in it.
// Screenshots of the main pages go to a temporary directory named in the log.
func TestConsoleInBrowser(t *testing.T) {
	exe := findBrowser()
	if exe == "" {
		t.Skip("no Chromium found (apt-get install -y chromium, or set INSITU_TEST_CHROMIUM): the console's browser test needs one")
	}
	f := newFixture(t, api0())
	bg := context.Background()
	bankA := f.client(t, asBank)
	plugin := f.uploadPlugin(t, bankA)
	li, err := bankA.UploadLabels(bg, "labels.sealed", f.sealedLabels(t))
	if err != nil {
		t.Fatal(err)
	}
	m := f.manifest(t, f.ids[asBank].Name, plugin, li.Digest, "console in a browser")
	j, err := bankA.Submit(bg, signed(t, m, f.ids[asBank]))
	if err != nil {
		t.Fatal(err)
	}

	// The console over plain HTTP on localhost, which browsers treat as a secure context.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: f.srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	origin := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)

	shots, err := os.MkdirTemp("", "insitu-console-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shots)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("headless", "new"), chromedp.WindowSize(1280, 1600), chromedp.Flag("lang", "en-US"))
	actx, cancelA := chromedp.NewExecAllocator(bg, opts...)
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelT()

	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var loc string
			chromedp.Run(ctx, chromedp.Location(&loc))
			t.Fatalf("%s: %v (at %s)", what, err, loc)
		}
	}
	shot := func(name string) {
		t.Helper()
		var buf []byte
		run("screenshot "+name, chromedp.FullScreenshot(&buf, 100))
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	axeJS := ""
	if p := os.Getenv("INSITU_TEST_AXE"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("INSITU_TEST_AXE: %v", err)
		}
		axeJS = string(b)
	} else {
		t.Log("axe-core not run: set INSITU_TEST_AXE to axe.min.js (npm install axe-core; .ci/run does); the label check runs")
	}
	a11y := func(page string) {
		t.Helper()
		var n int
		run("accessibility check of "+page, chromedp.Evaluate(unlabelledJS, &n))
		if n != 0 {
			t.Errorf("%s: %d form controls without a label, or no lang attribute", page, n)
		}
		if axeJS == "" {
			return
		}
		var found []string
		run("axe-core on "+page, chromedp.Evaluate(axeJS, nil), chromedp.Evaluate(axeSeriousJS, &found,
			func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
		for _, v := range found {
			t.Errorf("%s: axe-core: %s", page, v)
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}

	run("virtual authenticator", chromedp.ActionFunc(func(ctx context.Context) error {
		if err := webauthn.Enable().Do(ctx); err != nil {
			return err
		}
		_, err := webauthn.AddVirtualAuthenticator(&webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}).Do(ctx)
		return err
	}))

	// A bank identity is refused the console.
	run("bank enrols", chromedp.Navigate(origin+"/console/enrol"), chromedp.SendKeys("#party", f.ids[asBank].Name, chromedp.ByQuery),
		chromedp.Click("#enrol-continue", chromedp.ByQuery), chromedp.WaitVisible(".problem", chromedp.ByQuery))
	if s := text(".problem"); !strings.Contains(s, "Only registered stewards and admins") {
		t.Fatalf("a bank's enrolment: %q", s)
	}

	// The steward enrols a passkey and signs its statement with their ML-DSA key.
	run("enrol", chromedp.Navigate(origin+"/console/enrol"), chromedp.WaitVisible("#party", chromedp.ByQuery))
	a11y("enrol")
	run("enrol", chromedp.SendKeys("#party", "steward-1", chromedp.ByQuery), chromedp.Click("#enrol-continue", chromedp.ByQuery),
		chromedp.WaitVisible("#enrol-create", chromedp.ByQuery), chromedp.Click("#enrol-create", chromedp.ByQuery),
		chromedp.WaitVisible("#enrol-code", chromedp.ByQuery))
	shot("enrol")
	code := text("#enrol-code")
	steward := f.client(t, asSteward)
	pr, st, err := steward.PasskeyRequest(bg, code)
	if err != nil {
		t.Fatal(err)
	}
	if st.Origin != origin || st.RPID != "localhost" {
		t.Fatalf("the passkey was registered at %s (%s), want %s", st.Origin, st.RPID, origin)
	}
	if _, err := steward.EnrollPasskey(bg, pr); err != nil {
		t.Fatal(err)
	}

	// Sign in, see the queue with the pending job.
	run("sign in", chromedp.Navigate(origin+"/console/signin"), chromedp.WaitVisible("#signin-button", chromedp.ByQuery))
	a11y("sign-in")
	shot("signin")
	run("sign in", chromedp.Click("#signin-button", chromedp.ByQuery), chromedp.WaitVisible("#h-pending", chromedp.ByQuery))
	if s := text("main"); !strings.Contains(s, j.ID) {
		t.Fatalf("the queue does not show job %s:\n%s", j.ID, s)
	}
	a11y("job queue")
	shot("jobs")

	// Authorizations: counts by catalog category and by bank.
	run("authorizations", chromedp.Navigate(origin+"/console/authorizations"), chromedp.WaitVisible("#auth-categories", chromedp.ByQuery))
	var catRows int
	run("category rows", chromedp.Evaluate(`document.querySelectorAll("#auth-categories tbody tr").length`, &catRows))
	if catRows == 0 {
		t.Fatal("no authorization counted by category")
	}
	a11y("authorizations")
	shot("authorizations")

	// A forged post without the CSRF token is refused, session cookie and all.
	var forged int
	run("forged post", chromedp.Evaluate(fmt.Sprintf(`fetch("/console/jobs/%s/approve", {method: "POST", body: new URLSearchParams({credential_id: "x"})}).then(r => r.status)`, j.ID),
		&forged, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if forged != http.StatusForbidden {
		t.Fatalf("a post without the CSRF token: status %d, want 403", forged)
	}

	// Review and approve with the passkey: the assertion's challenge is the manifest hash.
	run("review", chromedp.Navigate(origin+"/console/jobs/"+j.ID), chromedp.WaitVisible("#approve-button", chromedp.ByQuery))
	if h := text("#manifest-hash"); h != m.HashString() {
		t.Fatalf("the page shows manifest hash %s, want %s", h, m.HashString())
	}
	a11y("review")
	shot("review")
	run("approve", chromedp.Click("#approve-button", chromedp.ByQuery), chromedp.WaitVisible(`[data-kind="webauthn"]`, chromedp.ByQuery))
	stj, err := f.e.Jobs.Status(bg, j.ID)
	if err != nil || stj.State != job.Approved || len(stj.Decisions) != 1 || stj.Decisions[0].WebAuthn == nil {
		t.Fatalf("after the browser's approval: %+v, %v", stj, err)
	}
	shot("approved")

	// Reject a second job with a reason: the passkey signs the rejection context, the hash and the reason.
	m2 := f.manifest(t, f.ids[asBank].Name, plugin, li.Digest, "console rejection")
	j2, err := bankA.Submit(bg, signed(t, m2, f.ids[asBank]))
	if err != nil {
		t.Fatal(err)
	}
	run("reject", chromedp.Navigate(origin+"/console/jobs/"+j2.ID), chromedp.WaitVisible("#reason", chromedp.ByQuery),
		chromedp.SendKeys("#reason", "too many fields for the stated purpose", chromedp.ByQuery),
		chromedp.Click("#reject-button", chromedp.ByQuery), chromedp.WaitVisible(".state-rejected", chromedp.ByQuery))
	if jj, err := f.e.Jobs.Get(bg, j2.ID); err != nil || jj.State != job.Rejected || jj.Reason != "too many fields for the stated purpose" {
		t.Fatalf("after the browser's rejection: %+v, %v", jj, err)
	}

	// Switch to Chinese and see the same page in Chinese.
	run("switch to Chinese", chromedp.Click("#lang-switch", chromedp.ByQuery), chromedp.WaitVisible(`html[lang="zh-CN"]`, chromedp.ByQuery))
	if s := text("h1"); s != "审核任务" {
		t.Fatalf("the review page in Chinese is titled %q", s)
	}
	a11y("review in Chinese")
	shot("review-zh")
	run("back to English", chromedp.Click("#lang-switch", chromedp.ByQuery), chromedp.WaitVisible(`html[lang="en"]`, chromedp.ByQuery))

	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Log("not running the approved job: the sandbox needs root on Linux (CI runs it so)")
		return
	}
	// Run it, watch the page follow it, and see the release record and the ROC chart.
	wctx, stopWorker := context.WithCancel(bg)
	worker := make(chan error, 1)
	go func() {
		worker <- f.e.RunApproved(wctx, enclave.WorkerOptions{RunOptions: enclave.RunOptions{
			Sandbox: sandbox.Spec{Mode: sandbox.AllowWeaker, UID: 65529, GID: 65529, CgroupName: "insitu-console-test",
				Limits: sandbox.Limits{WallClock: 2 * time.Minute}},
			TempDir: f.dir, Now: func() time.Time { return synthetic.DefaultAsOf }, Progress: f.srv.Console().Progress}})
	}()
	defer func() { stopWorker(); <-worker }()
	run("watch", chromedp.Navigate(origin+"/console/jobs/"+j.ID), chromedp.WaitVisible("#progress", chromedp.ByQuery))
	shot("running")
	run("released", chromedp.WaitVisible("#h-release", chromedp.ByQuery))
	shot("released-job")
	if cv, err := f.e.Jobs.Curve(bg, j.ID); err != nil || cv.Positives == 0 || cv.Negatives == 0 {
		t.Fatalf("the release recorded no held-out ROC curve: %+v, %v", cv, err)
	}
	run("released results", chromedp.Navigate(origin+"/console/released"), chromedp.WaitReady("svg.roc polyline", chromedp.ByQuery))
	var points string
	run("ROC points", chromedp.AttributeValue("svg.roc polyline", "points", &points, nil, chromedp.ByQuery))
	if n := len(strings.Fields(points)); n < 3 {
		t.Fatalf("the ROC chart has %d points", n)
	}
	a11y("released")
	shot("released")
	run("usage", chromedp.Navigate(origin+"/console/usage?category=2"), chromedp.WaitVisible("main table", chromedp.ByQuery))
	if s := text("main table"); !strings.Contains(s, j.ID) {
		t.Fatalf("the usage report of category 2 does not list %s:\n%s", j.ID, s)
	}
	a11y("usage")
	shot("usage")
	run("audit", chromedp.Navigate(origin+"/console/audit"), chromedp.WaitVisible("#audit-status.ok", chromedp.ByQuery))
	a11y("audit")
	shot("audit")

	// The receipt carries the passkey approval and verifies offline with the steward's public key.
	res, err := bankA.Result(bg, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := gate.VerifyReceipt(res.Receipt, f.e.Identity.Public(), gate.VerifyOptions{Stewards: []keys.PublicIdentity{f.ids[asSteward].Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Approvals) != 1 || rc.Approvals[0].WebAuthn == nil || rc.Approvals[0].Steward != "steward-1" {
		t.Fatalf("receipt approvals: %+v", rc.Approvals)
	}
	// Another steward's key does not verify it.
	if _, err := gate.VerifyReceipt(res.Receipt, f.e.Identity.Public(), gate.VerifyOptions{Stewards: []keys.PublicIdentity{f.ids["steward2"].Public()}, MinApprovals: 1}); err == nil {
		t.Fatal("the receipt verified with another steward's key")
	}
	if err := os.WriteFile(filepath.Join(shots, "receipt.json"), res.Receipt, 0o644); err != nil {
		t.Fatal(err)
	}
}
