package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"insitu/enclave"
	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/audit"
	"insitu/enclave/keys"
)

func TestReplayAndClockSkew(t *testing.T) {
	f := newFixture(t, api.Options{FailedLoginBurst: 3, FailedLoginEvery: time.Hour})
	bank := f.ids[asBank]
	// A fresh request passes; the same bytes again are refused.
	req := f.request(t, bank, "GET", "/v1/whoami", nil, time.Now())
	if got, _ := f.do(t, req, nil); got != http.StatusOK {
		t.Fatalf("first: %d", got)
	}
	if got, code := f.do(t, req, nil); got != http.StatusUnauthorized || code != api.CodeUnauthenticated {
		t.Fatalf("replay: %d %s", got, code)
	}
	// Timestamps: within the window either way pass, beyond it fail.
	for _, c := range []struct {
		skew time.Duration
		want int
	}{{api.MaxSkew - 5*time.Second, 200}, {-api.MaxSkew + 5*time.Second, 200}, {api.MaxSkew + 5*time.Second, 401}, {-api.MaxSkew - 5*time.Second, 401}} {
		req := f.request(t, bank, "GET", "/v1/whoami", nil, time.Now().Add(c.skew))
		if got, _ := f.do(t, req, nil); got != c.want {
			t.Errorf("client clock %+v: status %d, want %d", c.skew, got, c.want)
		}
	}
	// A server whose clock moved past the window refuses a request signed now.
	f.clock.set(api.MaxSkew + 10*time.Second)
	if got, _ := f.do(t, f.request(t, bank, "GET", "/v1/whoami", nil, time.Now()), nil); got != http.StatusUnauthorized {
		t.Errorf("server clock ahead: %d", got)
	}
	f.clock.set(0)
	// The signature covers the path and query: moving it to another path fails.
	req = f.request(t, bank, "GET", "/v1/jobs", nil, time.Now())
	req.URL.RawQuery = "bank=other-bank"
	if got, _ := f.do(t, req, nil); got != http.StatusUnauthorized {
		t.Errorf("query changed after signing: %d", got)
	}
	// Failed logins are audited, rate-limited to the burst, the rest counted as suppressed.
	recs, err := f.e.Audit.Records(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Kind == audit.KindLoginFailed {
			n++
			if r.Actor != "anonymous" || !bytes.Contains(r.Payload, []byte(`"reason"`)) {
				t.Errorf("login_failed record: %+v", r)
			}
		}
	}
	if n != 3 {
		t.Errorf("%d login_failed records, want the burst of 3", n)
	}
	metrics, err := f.client(t, asSteward).Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`insitu_api_auth_failures_total{reason="replayed"} 1`, `insitu_api_auth_failures_total{reason="clock_skew"} 3`,
		`insitu_jobs{state="submitted"} 0`, `insitu_api_requests_total{code="200",route="GET /v1/whoami"} 3`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestReplayAfterRestart replays a request to a server started afresh on the same data directory:
// the nonce recorded in the state database refuses it.
func TestReplayAfterRestart(t *testing.T) {
	f := newFixture(t, api0())
	ctx := context.Background()
	req := f.request(t, f.ids[asBank], "GET", "/v1/whoami", nil, time.Now())
	if got, _ := f.do(t, req, nil); got != http.StatusOK {
		t.Fatalf("first: %d", got)
	}
	fresh := f.request(t, f.ids[asBank], "GET", "/v1/whoami", nil, time.Now())
	f.stop()
	f.hc.CloseIdleConnections()
	if err := f.e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err := enclave.Open(ctx, filepath.Join(f.dir, "dd"), keys.Source{File: filepath.Join(f.dir, "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	cert, _, err := api.LoadOrCreateCert(e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- api.New(e, api.Options{}).Serve(sctx, ln, cert, 5*time.Second) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	f.url = "https://" + ln.Addr().String()
	for _, r := range []*http.Request{req, fresh} {
		r.URL.Host = ln.Addr().String()
	}
	if got, code := f.do(t, req, nil); got != http.StatusUnauthorized || code != api.CodeUnauthenticated {
		t.Errorf("replay after a restart: %d %s, want 401 %s", got, code, api.CodeUnauthenticated)
	}
	if got, _ := f.do(t, fresh, nil); got != http.StatusOK {
		t.Errorf("a request signed before the restart and not sent: %d, want 200", got)
	}
	if got, _ := f.do(t, fresh, nil); got != http.StatusUnauthorized {
		t.Errorf("its replay: %d, want 401", got)
	}
}

func TestBodyLimitsAndDigest(t *testing.T) {
	f := newFixture(t, api0())
	admin := f.ids[asAdmin]
	// A body over the route's limit is refused before it is read, with a JSON error.
	big := bytes.Repeat([]byte(" "), api.LimitJSON+1)
	if got, code := f.do(t, f.request(t, admin, "POST", "/v1/parties", big, time.Now()), big); got != http.StatusRequestEntityTooLarge || code != api.CodeTooLarge {
		t.Errorf("oversized body: %d %s", got, code)
	}
	// A route that takes no body refuses one.
	if got, _ := f.do(t, f.request(t, admin, "GET", "/v1/parties", []byte("{}"), time.Now()), []byte("{}")); got != http.StatusRequestEntityTooLarge {
		t.Errorf("body on a GET: %d", got)
	}
	// A body other than the one signed is refused.
	body := []byte(`{"value":100}`)
	req := f.request(t, admin, "PUT", "/v1/settings/cohort.min_size", body, time.Now())
	if got, code := f.do(t, req, []byte(`{"value":999}`)); got != http.StatusBadRequest || code != api.CodeInvalid {
		t.Errorf("swapped body: %d %s", got, code)
	}
	if v, _ := f.e.Jobs.Setting(context.Background(), "cohort.min_size"); v != 100 {
		t.Errorf("min cohort = %d after a refused change", v)
	}
	// The client maps codes to sentinel errors.
	_, err := f.client(t, asBank).ListParties(context.Background())
	wantErr(t, "bank lists parties", err, client.ErrForbidden)
	_, err = f.client(t, asBank).Job(context.Background(), "job-0000000000000000")
	wantErr(t, "unknown job", err, client.ErrNotFound)
	_, err = f.client(t, asUnreg).Whoami(context.Background())
	wantErr(t, "unregistered", err, client.ErrUnauthenticated)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
		t.Errorf("error %v is not a *client.Error with status 401", err)
	}
}

func TestTLSPinAndKeyExchange(t *testing.T) {
	f := newFixture(t, api0())
	tc, err := api.ClientTLSConfig(f.fp)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(f.url, "https://"), tc)
	if err != nil {
		t.Fatal(err)
	}
	cs := conn.ConnectionState()
	conn.Close()
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x", cs.Version)
	}
	if cs.CurveID != tls.X25519MLKEM768 {
		t.Errorf("key exchange %v, want X25519MLKEM768", cs.CurveID)
	}
	// TLS 1.2 is refused.
	old := tc.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	if c, err := tls.Dial("tcp", strings.TrimPrefix(f.url, "https://"), old); err == nil {
		c.Close()
		t.Error("a TLS 1.2 handshake succeeded")
	}
	// Another pin fails the handshake.
	wrong := "SHA256:" + strings.Repeat("ab", 32)
	c, err := client.New(client.Config{URL: f.url, Fingerprint: wrong, Identity: f.ids[asBank]})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Whoami(context.Background()); err == nil || !errors.Is(err, api.ErrFingerprint) {
		t.Errorf("wrong pin: %v", err)
	}
	// The certificate and its key survive a reload with the same fingerprint.
	_, fp, err := api.LoadOrCreateCert(f.e.Dir)
	if err != nil || fp != f.fp {
		t.Errorf("reloaded certificate %s, %v; want %s", fp, err, f.fp)
	}
}

func TestGracefulShutdown(t *testing.T) {
	f := newFixture(t, api0())
	bank := f.client(t, asBank)
	ctx := context.Background()
	m := f.manifest(t, f.ids[asBank].Name, "sha256:"+strings.Repeat("0", 64), "", "shutdown")
	j, err := bank.Submit(ctx, signed(t, m, f.ids[asBank]))
	if err != nil {
		t.Fatal(err)
	}
	// A watch in flight is answered, with the job as it stands, when the server shuts down.
	type res struct {
		state string
		err   error
	}
	done := make(chan res, 1)
	go func() {
		w, err := bank.Watch(ctx, j.ID, "", 60*time.Second)
		done <- res{string(w.State), err}
	}()
	steward := f.client(t, asSteward)
	waitFor(t, func() bool { // the watch and this metrics request are in flight
		s, err := steward.Metrics(ctx)
		return err == nil && strings.Contains(s, "insitu_api_requests_in_flight 2")
	})
	f.stop()
	r := <-done
	if r.err != nil || r.state != "submitted" {
		t.Fatalf("watch across shutdown: %q, %v", r.state, r.err)
	}
	bank.Close()
	if _, err := bank.Whoami(ctx); err == nil {
		t.Fatal("the server still answers after shutdown")
	}
	// The enclave's database is still consistent and usable after the server stopped.
	if got, err := f.e.Jobs.Get(ctx, j.ID); err != nil || got.State != "submitted" {
		t.Fatalf("after shutdown: %v, %v", got, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 100 {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("condition not reached")
}

// FuzzParseAuthorization checks that the header parser never panics, accepts only what it can
// write back byte for byte, and that what it accepts has the fields' shapes.
func FuzzParseAuthorization(f *testing.F) {
	id, err := keys.NewIdentity(keys.RoleBank, "bank-a")
	if err != nil {
		f.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "https://enclave:8443/v1/jobs?x=1", nil)
	if err := api.SignRequest(req, id, sha256.Sum256([]byte("body")), time.Unix(1_800_000_000, 0)); err != nil {
		f.Fatal(err)
	}
	good := req.Header.Get("Authorization")
	f.Add(good)
	f.Add("")
	f.Add(api.AuthScheme + " party=a,ts=1,nonce=00,body=00,sig=AA")
	f.Add(strings.Replace(good, "party=", "ts=", 1))
	f.Add(strings.Replace(good, "ts=1800000000", "ts=01800000000", 1))
	f.Add(strings.ToUpper(good))
	f.Fuzz(func(t *testing.T, h string) {
		a, err := api.ParseAuthorization(h)
		if err != nil {
			if !errors.Is(err, api.ErrAuthHeader) {
				t.Fatalf("error %v does not wrap ErrAuthHeader", err)
			}
			return
		}
		if got := a.String(); got != h {
			t.Fatalf("parsed %q, writes back %q", h, got)
		}
	})
}

// BenchmarkSignVerifyRequest measures what authentication costs one request: signing (client) and
// parsing and verifying (server), ML-DSA-65.
func BenchmarkSignVerifyRequest(b *testing.B) {
	id, err := keys.NewIdentity(keys.RoleBank, "bank-a")
	if err != nil {
		b.Fatal(err)
	}
	pub := id.Public()
	sum := sha256.Sum256(nil)
	for b.Loop() {
		req, _ := http.NewRequest("GET", "https://enclave/v1/jobs", nil)
		if err := api.SignRequest(req, id, sum, time.Now()); err != nil {
			b.Fatal(err)
		}
		a, err := api.ParseAuthorization(req.Header.Get("Authorization"))
		if err != nil || !pub.Verify(api.RequestMessage(a.Party, "GET", "/v1/jobs", a.Time, a.Nonce, a.BodyHash), api.RequestContext, a.Signature) {
			b.Fatal("does not verify")
		}
	}
}

// BenchmarkWhoamiLoopbackTLS13 measures a signed GET /v1/whoami round trip over TLS 1.3 on loopback,
// on a kept-alive connection.
func BenchmarkWhoamiLoopbackTLS13(b *testing.B) {
	f := newFixture(b, api0())
	c := f.client(b, asBank)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Whoami(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
