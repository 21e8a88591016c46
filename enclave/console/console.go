// Package console is the steward console: server-rendered web pages under /console where stewards
// and admins sign in with a passkey, review and approve jobs, follow running jobs, read release
// records with their ROC and KS charts, verify the audit log, search and revoke authorizations and
// download usage reports — in Chinese or English.
//
// Call New with the open enclave and mount Handler at Prefix (package api does, inside insitu serve);
// pass Progress to the job worker (enclave.RunOptions.Progress) for live progress. Everything the
// pages need is embedded: no CDN, no build step.
//
// # Security
//
// Sign-in is a WebAuthn assertion over a server-random challenge from a passkey enrolled under the
// party's ML-DSA identity (package job's passkeys; the enrolment statement is signed on the command
// line). Only registered stewards and admins sign in. Sessions live in memory behind an HttpOnly,
// Secure, SameSite=Strict __Host- cookie with idle and absolute timeouts; every form carries a CSRF
// token and posts are refused from another origin. A session never approves on its own: approving
// or rejecting needs a fresh assertion whose challenge is the manifest hash (job.PasskeyChallenge),
// which the job board verifies and records, so the release receipt verifies it offline. Sign-ins and
// failed sign-ins are audited.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"insitu/enclave"
	"insitu/enclave/keys"
)

// Prefix is where the console is mounted.
const Prefix = "/console"

// Default timeouts.
const (
	DefaultIdle     = 15 * time.Minute
	DefaultLifetime = 8 * time.Hour
	challengeTTL    = 5 * time.Minute
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ResultSource hands out a released job's receipt: the output gate is one.
type ResultSource interface {
	Result(ctx context.Context, jobID string) (sealed, receipt []byte, err error)
}

// Options configure a Console. The zero value is usable.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives internal errors behind error pages; nil discards them.
	Logger *slog.Logger
	// Results serves receipts and release records; the enclave's gate when nil.
	Results ResultSource
	// Idle and Lifetime end a session after that long unused, and that long after sign-in;
	// DefaultIdle and DefaultLifetime when zero.
	Idle, Lifetime time.Duration
}

// Console serves the console's pages.
type Console struct {
	e        *enclave.Enclave
	o        Options
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	chal     *challenges
	progress *progressBoard
	failed   *limiter
}

// New returns the console of enclave e.
func New(e *enclave.Enclave, o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Idle <= 0 {
		o.Idle = DefaultIdle
	}
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Results == nil && e.Gate != nil {
		o.Results = e.Gate
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Console{e: e, o: o, log: log, mux: http.NewServeMux(), pages: parsePages(),
		sessions: &sessions{byID: map[string]*session{}, idle: o.Idle, max: o.Lifetime},
		chal:     &challenges{m: map[string]challenge{}}, progress: &progressBoard{m: map[string]*jobProgress{}},
		failed: &limiter{burst: 20, tokens: 20, every: 6 * time.Second}}
	c.routes()
	return c
}

func (c *Console) now() time.Time { return c.o.Now() }

// Handler returns the console's handler, to mount at Prefix (it sees full paths).
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		c.mux.ServeHTTP(w, r)
	})
}

// roles that may use a page.
var (
	stewards  = []string{keys.RoleSteward}
	overseers = []string{keys.RoleSteward, keys.RoleAdmin}
)

// page is a handler for a signed-in party.
type page func(w http.ResponseWriter, r *http.Request, s *session) error

func (c *Console) routes() {
	m := c.mux
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"/static/", http.FileServerFS(static))
	m.HandleFunc("GET "+Prefix+"/static/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
	m.HandleFunc("GET "+Prefix+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		if s := c.session(r); s != nil {
			http.Redirect(w, r, home(s.role), http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
	})
	m.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	m.HandleFunc("GET "+Prefix+"/signin", c.anon(c.signinPage))
	m.HandleFunc("POST "+Prefix+"/signin", c.anonPost(c.signin))
	m.HandleFunc("GET "+Prefix+"/enrol", c.anon(c.enrolPage))
	m.HandleFunc("POST "+Prefix+"/enrol", c.anonPost(c.enrolBegin))
	m.HandleFunc("POST "+Prefix+"/enrol/finish", c.anonPost(c.enrolFinish))
	m.HandleFunc("POST "+Prefix+"/signout", c.signout)
	m.HandleFunc("POST "+Prefix+"/lang", c.anonPost(c.setLang))

	m.HandleFunc("GET "+Prefix+"/jobs", c.auth(stewards, c.jobsPage))
	m.HandleFunc("GET "+Prefix+"/jobs/{id}", c.auth(stewards, c.jobPage))
	m.HandleFunc("GET "+Prefix+"/jobs/{id}/progress", c.auth(stewards, c.progressJSON))
	m.HandleFunc("GET "+Prefix+"/jobs/{id}/receipt", c.auth(stewards, c.receiptFile))
	m.HandleFunc("POST "+Prefix+"/jobs/{id}/approve", c.authPost(stewards, c.approve))
	m.HandleFunc("POST "+Prefix+"/jobs/{id}/reject", c.authPost(stewards, c.reject))
	m.HandleFunc("GET "+Prefix+"/released", c.auth(stewards, c.releasedPage))
	m.HandleFunc("GET "+Prefix+"/audit", c.auth(overseers, c.auditPage))
	m.HandleFunc("GET "+Prefix+"/audit/export", c.auth(overseers, c.auditExport))
	m.HandleFunc("GET "+Prefix+"/authorizations", c.auth(stewards, c.authPage))
	m.HandleFunc("POST "+Prefix+"/authorizations/{id}/revoke", c.authPost(stewards, c.revoke))
	m.HandleFunc("GET "+Prefix+"/usage", c.auth(stewards, c.usagePage))
	m.HandleFunc("GET "+Prefix+"/datasets", c.auth(stewards, c.datasetsPage))
	m.HandleFunc("GET "+Prefix+"/budgets", c.auth(stewards, c.budgetsPage))
	m.HandleFunc("POST "+Prefix+"/budgets", c.authPost(stewards, c.setBudget))
	m.HandleFunc("GET "+Prefix+"/passkeys", c.auth(overseers, c.passkeysPage))
	m.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, c.session(r), http.StatusNotFound, "error.notfound", "")
	})
}

// anon wraps a page open before sign-in.
func (c *Console) anon(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if err := h(w, r, s); err != nil {
			c.internal(w, r, s, err)
		}
	}
}

// anonPost wraps a form post open before sign-in: the CSRF check comes first.
func (c *Console) anonPost(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !c.checkCSRF(r, s) {
			c.errorPage(w, r, s, http.StatusForbidden, "error.csrf", "")
			return
		}
		if err := h(w, r, s); err != nil {
			c.internal(w, r, s, err)
		}
	}
}

// auth wraps a page for signed-in parties of the given roles.
func (c *Console) auth(roles []string, h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
			return
		}
		if !c.stillRegistered(r.Context(), s) {
			c.sessions.end(s.id)
			http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
			return
		}
		if !allowed(roles, s.role) {
			c.errorPage(w, r, s, http.StatusForbidden, "error.forbidden", "")
			return
		}
		if err := h(w, r, s); err != nil {
			c.internal(w, r, s, err)
		}
	}
}

// authPost is auth for a form post: CSRF first.
func (c *Console) authPost(roles []string, h page) http.HandlerFunc {
	inner := c.auth(roles, h)
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s := c.session(r)
		if s == nil {
			http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
			return
		}
		if !c.checkCSRF(r, s) {
			c.errorPage(w, r, s, http.StatusForbidden, "error.csrf", "")
			return
		}
		inner(w, r)
	}
}

// stillRegistered reports whether the session's party is still registered with the role it signed in
// with.
func (c *Console) stillRegistered(ctx context.Context, s *session) bool {
	p, err := c.e.Jobs.Party(ctx, s.party)
	return err == nil && p.Role == s.role
}

// home is where a party of role lands after sign-in: the job queue for a steward, the audit log
// for an admin.
func home(role string) string {
	if role == keys.RoleSteward {
		return Prefix + "/jobs"
	}
	return Prefix + "/audit"
}

func allowed(roles []string, role string) bool {
	for _, x := range roles {
		if x == role {
			return true
		}
	}
	return false
}

// view is what every page template gets.
type view struct {
	L       *lang
	S       *session
	CSRF    string
	Path    string
	Title   string
	Notice  string
	Problem string
	Data    any
}

func (v *view) Party() string {
	if v.S == nil {
		return ""
	}
	return v.S.party
}

func (v *view) Role() string {
	if v.S == nil {
		return ""
	}
	return v.S.role
}

var bufPool = sync.Pool{New: func() any { return new(strings.Builder) }}

// render writes page name with data.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name, title string, data any, notice, problem string) {
	t, ok := c.pages[name]
	if !ok {
		panic("console: no page " + name)
	}
	v := &view{L: pickLang(r), S: s, CSRF: c.csrfToken(w, r, s), Path: r.URL.Path, Data: data, Notice: notice, Problem: problem}
	v.Title = v.L.T(title)
	b := bufPool.Get().(*strings.Builder)
	defer func() { b.Reset(); bufPool.Put(b) }()
	if err := t.ExecuteTemplate(b, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "console template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, b.String())
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, key, detail string) {
	c.render(w, r, s, status, "error", "error.title", map[string]string{"Key": key, "Detail": detail}, "", "")
}

func (c *Console) internal(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var ue *userError
	if errors.As(err, &ue) {
		c.errorPage(w, r, s, ue.status, ue.key, ue.detail)
		return
	}
	c.log.ErrorContext(r.Context(), "console internal error", "path", r.URL.Path, "err", err)
	c.errorPage(w, r, s, http.StatusInternalServerError, "error.title", "")
}

// userError is an error page with a message key and a detail for the person.
type userError struct {
	status      int
	key, detail string
}

func (e *userError) Error() string { return e.key + ": " + e.detail }

func notFound(detail string) error {
	return &userError{status: http.StatusNotFound, key: "error.notfound", detail: detail}
}

func (c *Console) setLang(w http.ResponseWriter, r *http.Request, s *session) error {
	to := r.PostFormValue("to")
	if to != LangZH && to != LangEN {
		to = LangEN
	}
	http.SetCookie(w, &http.Cookie{Name: LangCookie, Value: to, Path: "/", MaxAge: 365 * 24 * 3600, Secure: true,
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, Prefix+"/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		back = Prefix + "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// limiter is a token bucket for audit records of failed sign-ins.
type limiter struct {
	mu            sync.Mutex
	tokens, burst float64
	every         time.Duration
	last          time.Time
	suppressed    int64
}

func (l *limiter) allow(now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+float64(now.Sub(l.last))/float64(l.every))
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}
