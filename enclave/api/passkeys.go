package api

import (
	"errors"
	"net/http"
	"time"

	"insitu/enclave/job"
	"insitu/enclave/job/passkey"
)

// PasskeyRequest is a passkey registered in the console, waiting for its party to sign the
// enrolment statement: Statement is the exact bytes to sign (under passkey.EnrolContext).
type PasskeyRequest struct {
	Code        string    `json:"code"`
	Party       string    `json:"party"`
	Fingerprint string    `json:"fingerprint"`
	Credential  string    `json:"credential"`
	RPID        string    `json:"rp_id"`
	Origin      string    `json:"origin"`
	Created     time.Time `json:"created"`
	Statement   []byte    `json:"statement"`
}

// EnrollPasskey is the body of the passkey enrolment route: the request's code and the statement
// with the party's signature.
type EnrollPasskey struct {
	Code      string `json:"code"`
	Statement []byte `json:"statement"`
	Signature []byte `json:"signature"`
}

// Passkey is an enrolled passkey as the API shows it.
type Passkey struct {
	Party      string    `json:"party"`
	Credential string    `json:"credential"`
	RPID       string    `json:"rp_id"`
	Origin     string    `json:"origin"`
	Added      time.Time `json:"added"`
}

func (s *Server) passkeyRequest(w http.ResponseWriter, r *http.Request, c *Caller) error {
	code := job.NormalizeCode(r.PathValue("code"))
	st, data, err := s.e.Jobs.PasskeyRequest(r.Context(), code)
	if err != nil {
		return err
	}
	if st.Party != c.Name {
		// Another party's request is not found, as an unknown code is.
		return errNotFound("no pending passkey request " + code + " for " + c.Name)
	}
	writeJSON(w, http.StatusOK, PasskeyRequest{Code: code, Party: st.Party, Fingerprint: st.Fingerprint, Credential: job.CredentialString(st.CredentialID),
		RPID: st.RPID, Origin: st.Origin, Created: st.Created, Statement: data})
	return nil
}

func (s *Server) enrollPasskey(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var body EnrollPasskey
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	st, err := passkey.ParseStatement(body.Statement)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
	}
	if st.Party != c.Name {
		return errForbidden("the statement names " + st.Party + "; " + c.Name + " may enrol only its own passkeys")
	}
	pk, err := s.e.Jobs.EnrollPasskey(r.Context(), c.Name, body.Code, passkey.Enrolment{Statement: body.Statement, Signature: body.Signature})
	if err != nil {
		if errors.Is(err, passkey.ErrStatement) {
			return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
		}
		return err
	}
	writeJSON(w, http.StatusCreated, Passkey{Party: pk.Party, Credential: job.CredentialString(pk.Statement.CredentialID),
		RPID: pk.Statement.RPID, Origin: pk.Statement.Origin, Added: pk.AddedAt})
	return nil
}

// console serves the steward console's pages (package console), which authenticate with passkeys
// and sessions of their own rather than signed requests.
func (s *Server) consoleHandle(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	s.console.Handler().ServeHTTP(w, r)
	return nil
}
