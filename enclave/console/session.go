package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// Cookie names. The __Host- prefix makes the browser refuse them unless Secure, for path / and
// without a domain, so no other host or path can set them.
const (
	SessionCookie = "__Host-insitu-session"
	// preCookie holds the CSRF token of the forms shown before sign-in (double submit).
	preCookie  = "__Host-insitu-pre"
	LangCookie = "insitu-lang"
)

// session is a signed-in steward's or admin's session.
type session struct {
	id, csrf          string
	party, role       string
	credential        string
	created, lastSeen time.Time
}

// sessions keeps sessions in memory: a restart signs everyone out.
type sessions struct {
	mu        sync.Mutex
	byID      map[string]*session
	idle, max time.Duration
}

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) create(party, role, credential string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, x := range s.byID {
		if s.expired(x, now) {
			delete(s.byID, id)
		}
	}
	x := &session{id: randomToken(), csrf: randomToken(), party: party, role: role, credential: credential, created: now, lastSeen: now}
	s.byID[x.id] = x
	return x
}

func (s *sessions) expired(x *session, now time.Time) bool {
	return now.Sub(x.lastSeen) > s.idle || now.Sub(x.created) > s.max
}

// get returns the live session of id and marks it used.
func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.byID[id]
	if !ok {
		return nil
	}
	if s.expired(x, now) {
		delete(s.byID, id)
		return nil
	}
	x.lastSeen = now
	cp := *x
	return &cp
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
}

// session returns the request's live session, nil if none.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	return c.sessions.get(ck.Value, c.now())
}

// csrfToken returns the token forms on this page carry: the session's, or before sign-in the
// double-submit cookie's, set when missing.
func (c *Console) csrfToken(w http.ResponseWriter, r *http.Request, s *session) string {
	if s != nil {
		return s.csrf
	}
	if ck, err := r.Cookie(preCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	t := randomToken()
	setCookie(w, preCookie, t, 0)
	return t
}

// checkCSRF checks a form post: the browser's Origin (or Referer) must be this console's, and the
// form's csrf field the session's token, or before sign-in the double-submit cookie's.
func (c *Console) checkCSRF(r *http.Request, s *session) bool {
	if o := r.Header.Get("Origin"); o != "" && o != origin(r) {
		return false
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	got := r.PostFormValue("csrf")
	want := ""
	if s != nil {
		want = s.csrf
	} else if ck, err := r.Cookie(preCookie); err == nil {
		want = ck.Value
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// origin is the origin the browser shows for this request: https unless served over plain HTTP.
func origin(r *http.Request) string {
	if r.TLS == nil {
		return "http://" + r.Host
	}
	return "https://" + r.Host
}
