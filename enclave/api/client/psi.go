package client

import (
	"context"
	"errors"
	"net/http"

	"insitu/enclave/psi"
)

// PSI sends one message of private set intersection and returns the enclave's answer (bank).
func (c *Client) PSI(ctx context.Context, msg []byte) ([]byte, error) {
	var out string
	err := c.Do(ctx, http.MethodPost, "/v1/psi", msg, rawText{&out})
	return []byte(out), err
}

// PSITransport carries a bank's PSI messages over the API (psi.Transport). An answer of the API
// that is an error is the enclave's refusal, a *psi.Error the bank does not retry; a failed
// connection is returned as it is, and retried.
type PSITransport struct{ Client *Client }

var _ psi.Transport = PSITransport{}

// RoundTrip sends msg with Client.PSI.
func (t PSITransport) RoundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	reply, err := t.Client.PSI(ctx, msg)
	var ae *Error
	if errors.As(err, &ae) {
		// The enclave's message names the protocol's rule; the sentinel of the code stays reachable
		// through errors.Is (client.ErrConflict for a replay or a limit, client.ErrNotFound for an
		// unknown dataset); psi.ErrMalformed and psi.ErrSession for those refusals.
		pe := &psi.Error{Op: "enclave", Seq: -1, Err: ae}
		if m, perr := psi.ParseMessage(msg); perr == nil {
			pe.Op = m.Type.String()
			if m.Type != psi.TypeOpen {
				pe.Session = m.Session.String()
			}
			switch {
			case ae.Code == "bad_request":
				pe.Err, pe.Detail = psi.ErrMalformed, ae.Message
			case ae.Code == "not_found" && m.Type != psi.TypeOpen:
				pe.Err, pe.Detail = psi.ErrSession, ae.Message
			}
		}
		return nil, pe
	}
	return reply, err
}
