package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"insitu/enclave/api"
	"insitu/enclave/job"
	"insitu/enclave/job/passkey"
)

// PasskeyRequest fetches the passkey request filed in the console under code for the client's
// party, and parses its statement.
func (c *Client) PasskeyRequest(ctx context.Context, code string) (api.PasskeyRequest, *passkey.Statement, error) {
	var pr api.PasskeyRequest
	if err := c.Do(ctx, http.MethodGet, "/v1/passkeys/requests/"+url.PathEscape(job.NormalizeCode(code)), nil, &pr); err != nil {
		return pr, nil, err
	}
	st, err := passkey.ParseStatement(pr.Statement)
	if err != nil {
		return pr, nil, err
	}
	if st.Party != c.id.Name || st.Fingerprint != c.id.Public().Fingerprint() {
		return pr, nil, fmt.Errorf("passkey request %s names %s (key %s), not this identity %s (key %s)", code, st.Party, st.Fingerprint,
			c.id.Name, c.id.Public().Fingerprint())
	}
	return pr, st, nil
}

// EnrollPasskey signs the statement of request code, as PasskeyRequest returned it, with the
// client's identity and enrols the passkey. The caller checks the statement (its origin above all)
// before.
func (c *Client) EnrollPasskey(ctx context.Context, pr api.PasskeyRequest) (api.Passkey, error) {
	sig, err := c.id.Sign(pr.Statement, passkey.EnrolContext)
	if err != nil {
		return api.Passkey{}, err
	}
	body, err := json.Marshal(api.EnrollPasskey{Code: pr.Code, Statement: pr.Statement, Signature: sig})
	if err != nil {
		return api.Passkey{}, err
	}
	var pk api.Passkey
	err = c.Do(ctx, http.MethodPost, "/v1/passkeys", body, &pk)
	return pk, err
}
