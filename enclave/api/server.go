package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"insitu/enclave"
	"insitu/enclave/audit"
	"insitu/enclave/console"
	"insitu/enclave/job"
	"insitu/enclave/psi"
	"insitu/enclave/scoring"
)

// ResultSource hands out a released job's sealed result and receipt: the output gate
// ((*gate.Gate).Result) is one.
type ResultSource interface {
	Result(ctx context.Context, jobID string) (sealed, receipt []byte, err error)
}

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives one line per request and the internal errors behind "internal" answers; nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock signatures are checked against; time.Now when nil.
	Now func() time.Time
	// Results serves the result and receipt routes; the enclave's output gate when nil.
	Results ResultSource
	// ReplayCacheSize bounds the nonces remembered in memory within the replay window; 1<<18 when
	// zero. When it is full of live nonces, requests are refused (503) rather than a nonce forgotten.
	// Accepted nonces are also recorded in the state database (Enclave.UseNonce), which refuses
	// a replay after a restart.
	ReplayCacheSize int
	// FailedLoginBurst and FailedLoginEvery rate-limit the audit records of failed authentications
	// (a token bucket: FailedLoginBurst at once, one more per FailedLoginEvery); 20 and 6s when zero.
	// Failures beyond the limit are counted in the next record's "suppressed" and in the metrics.
	FailedLoginBurst int
	FailedLoginEvery time.Duration
	// WatchPoll is how often a watch re-reads the job's state; 250ms when zero.
	WatchPoll time.Duration
	// Scoring tunes online scoring, verification queries and stability reports (rate limits,
	// group commit); package scoring's defaults where zero.
	Scoring scoring.Options
}

// Server serves the enclave's API. Create it with New and serve Handler over TLS
// (ServerTLSConfig).
type Server struct {
	e       *enclave.Enclave
	o       Options
	log     *slog.Logger
	replay  *replayCache
	failed  *limiter
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	lat     *prometheus.HistogramVec
	authErr *prometheus.CounterVec
	flight  prometheus.Gauge
	mux     *http.ServeMux
	routes  []Route
	psi     *psi.Server // the PSI session store
	scoring *scoring.Service
	console *console.Console

	done      chan struct{} // closed when the server shuts down
	closeOnce sync.Once
}

// Caller is the authenticated party of a request.
type Caller struct {
	Name string
	Role string
}

// New returns a server for the enclave e.
func New(e *enclave.Enclave, o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReplayCacheSize <= 0 {
		o.ReplayCacheSize = 1 << 18
	}
	if o.FailedLoginBurst <= 0 {
		o.FailedLoginBurst = 20
	}
	if o.FailedLoginEvery <= 0 {
		o.FailedLoginEvery = 6 * time.Second
	}
	if o.WatchPoll <= 0 {
		o.WatchPoll = 250 * time.Millisecond
	}
	if o.Results == nil && e.Gate != nil {
		o.Results = e.Gate
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{e: e, o: o, log: log, replay: newReplayCache(o.ReplayCacheSize),
		failed: &limiter{tokens: float64(o.FailedLoginBurst), burst: float64(o.FailedLoginBurst), every: o.FailedLoginEvery},
		reg:    prometheus.NewRegistry(), done: make(chan struct{})}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "insitu_api_requests_total",
		Help: "API requests by route and status code."}, []string{"route", "code"})
	s.lat = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "insitu_api_request_duration_seconds",
		Help: "API request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"})
	s.authErr = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "insitu_api_auth_failures_total",
		Help: "Failed authentications by reason."}, []string{"reason"})
	s.flight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "insitu_api_requests_in_flight", Help: "API requests being served."})
	s.reg.MustRegister(s.reqs, s.lat, s.authErr, s.flight, &jobsCollector{s: s},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s.psi = psi.NewServer(psi.DatasetSource{Datasets: e.Datasets, Consent: e.Consent}, psi.Options{Now: o.Now})
	s.scoring = scoring.New(scoring.Config{DB: e.DB, Audit: e.Audit, Datasets: e.Datasets, Consent: e.Consent, Models: e.Models, Options: o.Scoring})
	s.console = console.New(e, console.Options{Now: o.Now, Logger: log, Results: o.Results})
	s.mux = http.NewServeMux()
	for _, rt := range routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
		s.routes = append(s.routes, rt)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no route "+r.Method+" "+r.URL.Path+" (the API lives under /v1)"))
	})
	return s
}

// Handler returns the API's handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Console returns the steward console the server mounts under /console; its Progress method is
// the job worker's progress callback.
func (s *Server) Console() *console.Console { return s.console }

// Registered returns the routes the server registered, in order.
func (s *Server) Registered() []Route { return append([]Route(nil), s.routes...) }

// MetricsHandler serves the Prometheus metrics without authentication, for a listener of its own
// that only the monitoring system reaches (insitu serve --metrics-listen).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) wrap(rt Route) http.Handler {
	name := rt.Method + " " + rt.Pattern
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.flight.Inc()
		defer s.flight.Dec()
		w := &statusWriter{ResponseWriter: rw}
		var c *Caller
		err := s.serve(w, r, rt, &c)
		if err != nil {
			ae := classify(err)
			if ae.code == CodeInternal {
				s.log.ErrorContext(r.Context(), "api internal error", "route", name, "err", err)
			}
			writeError(w, ae)
		}
		if w.status == 0 {
			w.WriteHeader(http.StatusNoContent)
		}
		s.reqs.WithLabelValues(name, strconv.Itoa(w.status)).Inc()
		s.lat.WithLabelValues(name).Observe(time.Since(start).Seconds())
		attrs := []any{"route", name, "status", w.status, "dur", time.Since(start).Round(time.Microsecond)}
		if c != nil {
			attrs = append(attrs, "party", c.Name, "role", c.Role)
		}
		s.log.InfoContext(r.Context(), "api request", attrs...)
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt Route, cp **Caller) error {
	if r.ContentLength > rt.MaxBody {
		return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge,
			fmt.Sprintf("the body is %d bytes; %s %s takes at most %d", r.ContentLength, rt.Method, rt.Pattern, rt.MaxBody))
	}
	r.Body = http.MaxBytesReader(w, r.Body, max(rt.MaxBody, 0))
	if rt.Public() {
		return rt.handle(s, w, r, nil)
	}
	c, auth, err := s.authenticate(r, rt)
	if err != nil {
		return err
	}
	*cp = c
	if !rt.Allows(c.Role) {
		return errForbidden(fmt.Sprintf("%s %s is not open to a %s (%s is)", rt.Method, rt.Pattern, c.Role, rolesText(rt.Roles)))
	}
	// The body must hash to what the signature covers. A buffered body is checked before the handler
	// runs; a streamed one fails at its end, so a handler storing it stores nothing.
	vr := &verifyingReader{r: r.Body, h: sha256.New(), want: auth.BodyHash}
	if rt.Stream {
		r.Body = vr
	} else {
		body, err := io.ReadAll(vr)
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return rt.handle(s, w, r, c)
}

func rolesText(roles []string) string {
	out := ""
	for i, r := range roles {
		if i > 0 {
			out += ", "
		}
		out += r
	}
	return out
}

var errBodyDigest = errors.New("the body does not match the SHA-256 the request signature covers")

type verifyingReader struct {
	r    io.ReadCloser
	h    hash.Hash
	want [sha256.Size]byte
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if subtle.ConstantTimeCompare(v.h.Sum(nil), v.want[:]) != 1 {
			return n, errBodyDigest
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }

// authenticate checks the request's signature, timestamp and nonce against the party registry.
// Failures are audited (rate-limited) and answered 401 without saying more than the client needs to
// fix its own mistake.
func (s *Server) authenticate(r *http.Request, rt Route) (*Caller, *Auth, error) {
	now := s.o.Now()
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return nil, nil, s.authFailed(r, rt, "", "malformed", err.Error())
	}
	if d := now.Sub(a.Time); d > MaxSkew || d < -MaxSkew {
		return nil, nil, s.authFailed(r, rt, a.Party, "clock_skew",
			fmt.Sprintf("the request's timestamp is %s from the enclave's clock, more than the %s allowed: correct the client's clock",
				d.Round(time.Second), MaxSkew))
	}
	p, err := s.e.Jobs.Party(r.Context(), a.Party)
	if err != nil {
		if errors.Is(err, job.ErrNotFound) {
			return nil, nil, s.authFailed(r, rt, a.Party, "unknown_party", "no valid signature from a registered party")
		}
		return nil, nil, err
	}
	if !p.Verify(RequestMessage(a.Party, r.Method, r.URL.RequestURI(), a.Time, a.Nonce, a.BodyHash), RequestContext, a.Signature) {
		return nil, nil, s.authFailed(r, rt, a.Party, "bad_signature", "no valid signature from a registered party")
	}
	switch err := s.replay.check(a.Party+"/"+string(a.Nonce[:]), a.Time.Add(MaxSkew+time.Second), now); {
	case errors.Is(err, errReplayed):
		return nil, nil, s.authFailed(r, rt, a.Party, "replayed", "the request's nonce was used before: sign every request afresh")
	case errors.Is(err, errBusy):
		return nil, nil, errorf(http.StatusServiceUnavailable, CodeUnavailable, "too many requests in the replay window; retry shortly")
	}
	// The memory cache answers replays within this process; the database also remembers the nonces
	// of requests accepted before a restart.
	switch err := s.e.UseNonce(r.Context(), a.Party, a.Nonce[:], a.Time, now.Add(-2*MaxSkew)); {
	case errors.Is(err, enclave.ErrNonceUsed):
		return nil, nil, s.authFailed(r, rt, a.Party, "replayed", "the request's nonce was used before: sign every request afresh")
	case err != nil:
		return nil, nil, err
	}
	return &Caller{Name: p.Name, Role: p.Role}, a, nil
}

// LoginFailed is the audit payload of a failed authentication. The claimed party is what the
// request said, unverified.
type LoginFailed struct {
	Reason       string `json:"reason"`
	ClaimedParty string `json:"claimed_party,omitempty"`
	Route        string `json:"route"`
	Remote       string `json:"remote,omitempty"`
	// Suppressed counts the failures not recorded since the previous record, by the rate limit.
	Suppressed int64 `json:"suppressed,omitempty"`
}

func (s *Server) authFailed(r *http.Request, rt Route, claimed, reason, msg string) error {
	s.authErr.WithLabelValues(reason).Inc()
	if ok, suppressed := s.failed.allow(s.o.Now()); ok {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		ev := audit.Event{Kind: audit.KindLoginFailed, Actor: "anonymous", Subject: rt.Method + " " + rt.Pattern,
			Payload: LoginFailed{Reason: reason, ClaimedParty: claimed, Route: rt.Method + " " + rt.Pattern, Remote: host, Suppressed: suppressed}}
		if _, err := s.e.Audit.Append(r.Context(), ev); err != nil {
			s.log.ErrorContext(r.Context(), "recording a failed authentication in the audit log failed", "err", err)
		}
	}
	return errorf(http.StatusUnauthorized, CodeUnauthenticated, msg)
}

// jobsCollector reports the number of jobs in each state at scrape time.
type jobsCollector struct{ s *Server }

var jobsDesc = prometheus.NewDesc("insitu_jobs", "Jobs by state.", []string{"state"}, nil)

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := c.s.e.Jobs.List(ctx, "")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	counts := map[job.State]int{}
	for _, j := range js {
		counts[j.State]++
	}
	for _, st := range []job.State{job.Submitted, job.Approved, job.Rejected, job.Queued, job.Running, job.Succeeded,
		job.Failed, job.Cancelled, job.Released} {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(counts[st]), string(st))
	}
}
