// Package client is the Go client of the enclave's API (package api): the CLI, the tests and the
// steward console use it. Create one with New from a Config (the enclave's address, its pinned
// certificate fingerprint and the party's identity); every method signs its request with the party's
// key and maps the API's error codes to the sentinel errors below.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"insitu/enclave/api"
	"insitu/enclave/keys"
)

// Sentinel errors, one per API error code; an *Error wraps the one of its code.
var (
	ErrBadRequest      = errors.New("bad request")
	ErrInvalid         = errors.New("invalid")
	ErrUnauthenticated = errors.New("not authenticated")
	ErrForbidden       = errors.New("forbidden")
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrTooLarge        = errors.New("too large")
	ErrUnavailable     = errors.New("unavailable")
	ErrInternal        = errors.New("enclave internal error")
)

var sentinels = map[string]error{
	api.CodeBadRequest: ErrBadRequest, api.CodeInvalid: ErrInvalid, api.CodeUnauthenticated: ErrUnauthenticated,
	api.CodeForbidden: ErrForbidden, api.CodeNotFound: ErrNotFound, api.CodeConflict: ErrConflict,
	api.CodeTooLarge: ErrTooLarge, api.CodeUnavailable: ErrUnavailable, api.CodeInternal: ErrInternal,
}

// Error is an error answer of the API.
type Error struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
	// Details holds row-numbered errors when the API sent them (JSON).
	Details json.RawMessage
}

func (e *Error) Error() string {
	return fmt.Sprintf("enclave: %s %s: %s (%s)", e.Method, e.Path, e.Message, e.Code)
}

// Unwrap returns the sentinel error of the code (ErrInternal for an unknown code).
func (e *Error) Unwrap() error {
	if s, ok := sentinels[e.Code]; ok {
		return s
	}
	return ErrInternal
}

// Config says which enclave to talk to and as whom.
type Config struct {
	// URL is the enclave's address, https://host:port.
	URL string
	// Fingerprint pins the enclave's TLS certificate: "SHA256:" and 64 hex digits, as insitu serve and
	// insitu identity print it.
	Fingerprint string
	// Identity is the party's private identity, whose key signs every request.
	Identity *keys.Identity
	// Timeout bounds a request that is not a watch or an upload; 60s when zero.
	Timeout time.Duration
	// Now is the clock requests are stamped with; time.Now when nil.
	Now func() time.Time
}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	base *url.URL
	id   *keys.Identity
	hc   *http.Client
	cfg  Config
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("client: %q is not an enclave address https://host:port", cfg.URL)
	}
	if cfg.Identity == nil {
		return nil, errors.New("client: no party identity to sign requests with")
	}
	tc, err := api.ClientTLSConfig(cfg.Fingerprint)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, Proxy: http.ProxyFromEnvironment,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	return &Client{base: &url.URL{Scheme: u.Scheme, Host: u.Host}, id: cfg.Identity, hc: &http.Client{Transport: tr}, cfg: cfg}, nil
}

// Party returns the name and role of the identity the client signs with.
func (c *Client) Party() (name, role string) { return c.id.Name, c.id.Role }

// Close closes idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Do sends one signed request: uri is the path with its query, body the bytes to send (nil for
// none). A 2xx answer's JSON body is decoded into out when out is not nil; any other answer is an
// *Error.
func (c *Client) Do(ctx context.Context, method, uri string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	return c.send(ctx, method, uri, bytes.NewReader(body), int64(len(body)), sha256.Sum256(body), out)
}

// stream sends a body read from r, of size bytes with the given SHA-256, without a timeout beyond
// ctx's.
func (c *Client) stream(ctx context.Context, method, uri string, r io.Reader, size int64, sum [sha256.Size]byte, out any) error {
	return c.send(ctx, method, uri, r, size, sum, out)
}

func (c *Client) send(ctx context.Context, method, uri string, body io.Reader, size int64, sum [sha256.Size]byte, out any) error {
	u, err := c.base.Parse(uri)
	if err != nil {
		return fmt.Errorf("client: %s: %w", uri, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	if err := api.SignRequest(req, c.id, sum, c.cfg.Now()); err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("enclave %s: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(method, u.Path, resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if rt, ok := out.(rawText); ok {
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		*rt.s = string(data)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("enclave: %s %s: reading the answer: %w", method, u.Path, err)
	}
	return nil
}

func decodeError(method, path string, resp *http.Response) error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	var body struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(data, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message, e.Details = body.Error.Code, body.Error.Message, body.Error.Details
		return e
	}
	e.Code = codeOfStatus(resp.StatusCode)
	e.Message = strings.TrimSpace(string(data))
	if e.Message == "" {
		e.Message = resp.Status
	}
	return e
}

func codeOfStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return api.CodeBadRequest
	case http.StatusUnauthorized:
		return api.CodeUnauthenticated
	case http.StatusForbidden:
		return api.CodeForbidden
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusConflict:
		return api.CodeConflict
	case http.StatusRequestEntityTooLarge:
		return api.CodeTooLarge
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return api.CodeUnavailable
	}
	return api.CodeInternal
}
