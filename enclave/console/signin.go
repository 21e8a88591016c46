package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job"
	"insitu/enclave/job/passkey"
	"insitu/enclave/keys"
)

// KindSignIn is the audit kind of a console sign-in.
const KindSignIn audit.Kind = "console_sign_in"

// challenge is a WebAuthn challenge the console issued: for a sign-in, or for registering party's
// passkey. Each is used once.
type challenge struct {
	purpose, party string
	expires        time.Time
}

type challenges struct {
	mu sync.Mutex
	m  map[string]challenge
}

func (cs *challenges) issue(purpose, party string, now time.Time) []byte {
	var b [32]byte
	rand.Read(b[:])
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for k, v := range cs.m {
		if now.After(v.expires) {
			delete(cs.m, k)
		}
	}
	if len(cs.m) > 10000 { // bounded: the oldest go first in effect, as they expire
		for k := range cs.m {
			delete(cs.m, k)
			break
		}
	}
	cs.m[string(b[:])] = challenge{purpose: purpose, party: party, expires: now.Add(challengeTTL)}
	return b[:]
}

// take consumes challenge b issued for purpose.
func (cs *challenges) take(b []byte, purpose string, now time.Time) (challenge, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	ch, ok := cs.m[string(b)]
	if !ok || ch.purpose != purpose || now.After(ch.expires) {
		return challenge{}, false
	}
	delete(cs.m, string(b))
	return ch, true
}

var b64 = base64.RawURLEncoding

func formBytes(r *http.Request, key string) []byte {
	b, err := b64.DecodeString(strings.TrimRight(r.PostFormValue(key), "="))
	if err != nil {
		return nil
	}
	return b
}

// assertionFrom reads the assertion fields console.js fills in.
func assertionFrom(r *http.Request) *passkey.Assertion {
	return &passkey.Assertion{CredentialID: formBytes(r, "credential_id"), AuthenticatorData: formBytes(r, "authenticator_data"),
		ClientDataJSON: formBytes(r, "client_data_json"), Signature: formBytes(r, "signature")}
}

// rpID is the relying party ID of a request: its host name.
func rpID(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	return strings.ToLower(host)
}

type signinData struct {
	Challenge string
	RPID      string
}

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.showSignin(w, r, s, http.StatusOK, "")
}

func (c *Console) showSignin(w http.ResponseWriter, r *http.Request, s *session, status int, problem string) error {
	ch := c.chal.issue("signin", "", c.now())
	c.render(w, r, s, status, "signin", "signin.title", signinData{Challenge: b64.EncodeToString(ch), RPID: rpID(r)}, "", problem)
	return nil
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request, _ *session) error {
	ch := formBytes(r, "challenge")
	a := assertionFrom(r)
	fail := func(reason, claimed string) error {
		c.auditFailed(r, reason, claimed)
		return c.showSignin(w, r, nil, http.StatusUnauthorized, pickLang(r).T("signin.failed"))
	}
	if _, ok := c.chal.take(ch, "signin", c.now()); !ok {
		return fail("unknown_challenge", "")
	}
	pk, err := c.e.Jobs.AssertPasskey(r.Context(), a, ch)
	if err != nil {
		if errors.Is(err, job.ErrPasskey) || errors.Is(err, job.ErrParty) {
			return fail("bad_passkey", "")
		}
		return err
	}
	p, err := c.e.Jobs.Party(r.Context(), pk.Party)
	if err != nil || (p.Role != keys.RoleSteward && p.Role != keys.RoleAdmin) {
		return fail("role", pk.Party)
	}
	if old := c.session(r); old != nil {
		c.sessions.end(old.id)
	}
	cred := job.CredentialString(pk.Statement.CredentialID)
	sess := c.sessions.create(p.Name, p.Role, cred, c.now())
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if _, err := c.e.Audit.Append(r.Context(), audit.Event{Kind: KindSignIn, Actor: p.Name, Subject: "console",
		Payload: map[string]any{"party": p.Name, "role": p.Role, "credential": cred, "remote": host}}); err != nil {
		c.sessions.end(sess.id)
		return err
	}
	setCookie(w, SessionCookie, sess.id, 0)
	http.Redirect(w, r, home(p.Role), http.StatusSeeOther)
	return nil
}

// signInFailed is the audit payload of a refused console sign-in.
type signInFailed struct {
	Reason       string `json:"reason"`
	ClaimedParty string `json:"claimed_party,omitempty"`
	Route        string `json:"route"`
	Remote       string `json:"remote,omitempty"`
	Suppressed   int64  `json:"suppressed,omitempty"`
}

func (c *Console) auditFailed(r *http.Request, reason, claimed string) {
	ok, suppressed := c.failed.allow(c.now())
	if !ok {
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	ev := audit.Event{Kind: audit.KindLoginFailed, Actor: "anonymous", Subject: "POST " + Prefix + "/signin",
		Payload: signInFailed{Reason: reason, ClaimedParty: claimed, Route: "POST " + Prefix + "/signin", Remote: host, Suppressed: suppressed}}
	if _, err := c.e.Audit.Append(r.Context(), ev); err != nil {
		c.log.ErrorContext(r.Context(), "recording a failed console sign-in failed", "err", err)
	}
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request) {
	s := c.session(r)
	if s != nil {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !c.checkCSRF(r, s) {
			c.errorPage(w, r, s, http.StatusForbidden, "error.csrf", "")
			return
		}
		c.sessions.end(s.id)
	}
	setCookie(w, SessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

type enrolData struct {
	Step      int // 1: name, 2: create, 3: code
	Party     string
	Challenge string
	UserID    string
	RPID      string
	Code      string
}

func (c *Console) enrolPage(w http.ResponseWriter, r *http.Request, s *session) error {
	c.render(w, r, s, http.StatusOK, "enrol", "enrol.title", enrolData{Step: 1}, "", "")
	return nil
}

func (c *Console) enrolBegin(w http.ResponseWriter, r *http.Request, s *session) error {
	name := strings.TrimSpace(r.PostFormValue("party"))
	p, err := c.e.Jobs.Party(r.Context(), name)
	if err != nil || (p.Role != keys.RoleSteward && p.Role != keys.RoleAdmin) {
		if err != nil && !errors.Is(err, job.ErrNotFound) {
			return err
		}
		c.render(w, r, s, http.StatusForbidden, "enrol", "enrol.title", enrolData{Step: 1, Party: name}, "", pickLang(r).T("enrol.refused"))
		return nil
	}
	ch := c.chal.issue("enrol", p.Name, c.now())
	uid := sha256.Sum256([]byte("insitu party " + p.Name))
	c.render(w, r, s, http.StatusOK, "enrol", "enrol.title", enrolData{Step: 2, Party: p.Name, Challenge: b64.EncodeToString(ch),
		UserID: b64.EncodeToString(uid[:16]), RPID: rpID(r)}, "", "")
	return nil
}

func (c *Console) enrolFinish(w http.ResponseWriter, r *http.Request, s *session) error {
	ch := formBytes(r, "challenge")
	issued, ok := c.chal.take(ch, "enrol", c.now())
	problem := func(detail string) error {
		c.render(w, r, s, http.StatusBadRequest, "enrol", "enrol.title", enrolData{Step: 1}, "", pickLang(r).T("enrol.failed")+": "+detail)
		return nil
	}
	if !ok {
		return problem("the registration's challenge is unknown or expired: start again")
	}
	reg, err := passkey.VerifyRegistration(formBytes(r, "client_data_json"), formBytes(r, "authenticator_data"), ch, origin(r), rpID(r),
		formBytes(r, "credential_id"))
	if err != nil {
		return problem(err.Error())
	}
	p, err := c.e.Jobs.Party(r.Context(), issued.party)
	if err != nil {
		return problem(err.Error())
	}
	st := &passkey.Statement{Format: passkey.StatementFormat, Party: p.Name, Fingerprint: p.Fingerprint, CredentialID: reg.CredentialID,
		PublicKey: reg.PublicKey, Algorithm: passkey.AlgES256, RPID: rpID(r), Origin: origin(r), Created: c.now().UTC().Truncate(time.Second)}
	code, err := c.e.Jobs.RequestPasskey(r.Context(), st)
	if err != nil {
		if errors.Is(err, job.ErrParty) || errors.Is(err, passkey.ErrStatement) {
			return problem(err.Error())
		}
		return err
	}
	c.render(w, r, s, http.StatusOK, "enrol", "enrol.title", enrolData{Step: 3, Party: p.Name, Code: code}, "", "")
	return nil
}
