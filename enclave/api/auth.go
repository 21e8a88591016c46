package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"insitu/enclave/keys"
)

// The signed-request scheme. Every request but /healthz carries one header
//
//	Authorization: Insitu-ML-DSA-65 party=<name>,ts=<unix seconds>,nonce=<32 hex>,body=<64 hex>,sig=<base64url>
//
// with the keys in this order, each once. sig is the party's ML-DSA-65 signature, under
// RequestContext, over RequestMessage: the party, the method, the path and query, the timestamp,
// the nonce and the SHA-256 of the body. The server accepts a timestamp within MaxSkew of its own
// clock and each (party, nonce) once within that window, across restarts (Enclave.UseNonce).
const (
	// AuthScheme is the scheme name of the Authorization header.
	AuthScheme = "Insitu-ML-DSA-65"
	// RequestContext is the ML-DSA context string of request signatures, so that a request signature
	// never verifies as a manifest, an approval or a checkpoint.
	RequestContext = "insitu api request v1"
	// MaxSkew is how far a request's timestamp may lie from the server's clock, either way.
	MaxSkew = 2 * time.Minute
	// NonceSize is the size of a request nonce in bytes (hex-encoded in the header).
	NonceSize = 16
	// maxAuthHeader bounds the Authorization header: an ML-DSA-65 signature is 3309 bytes.
	maxAuthHeader = 8 << 10
)

// ErrAuthHeader is wrapped by ParseAuthorization's errors.
var ErrAuthHeader = errors.New("malformed authorization header")

// Auth is a parsed Authorization header.
type Auth struct {
	Party     string
	Time      time.Time // whole seconds
	Nonce     [NonceSize]byte
	BodyHash  [sha256.Size]byte
	Signature []byte
}

// RequestMessage is what a request signature signs: a domain line, then the party, the method, the
// path with its query as sent (URL.RequestURI), the timestamp in Unix seconds, the nonce and the
// body's SHA-256, each in hex where binary, one per line.
func RequestMessage(party, method, requestURI string, ts time.Time, nonce [NonceSize]byte, bodyHash [sha256.Size]byte) []byte {
	var b strings.Builder
	b.WriteString("insitu-api-request-v1\n")
	b.WriteString(party)
	b.WriteByte('\n')
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(requestURI)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(ts.Unix(), 10))
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(nonce[:]))
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(bodyHash[:]))
	return []byte(b.String())
}

// SignRequest signs req for id at time now: bodyHash is the SHA-256 of the body req will send
// (EmptyBodyHash for none). It sets the Authorization header.
func SignRequest(req *http.Request, id *keys.Identity, bodyHash [sha256.Size]byte, now time.Time) error {
	var nonce [NonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	a := Auth{Party: id.Name, Time: time.Unix(now.Unix(), 0), Nonce: nonce, BodyHash: bodyHash}
	sig, err := id.Sign(RequestMessage(a.Party, req.Method, req.URL.RequestURI(), a.Time, a.Nonce, a.BodyHash), RequestContext)
	if err != nil {
		return err
	}
	a.Signature = sig
	req.Header.Set("Authorization", a.String())
	return nil
}

// EmptyBodyHash is the SHA-256 of an empty body.
var EmptyBodyHash = sha256.Sum256(nil)

// String encodes the header value.
func (a *Auth) String() string {
	return fmt.Sprintf("%s party=%s,ts=%d,nonce=%s,body=%s,sig=%s", AuthScheme, a.Party, a.Time.Unix(),
		hex.EncodeToString(a.Nonce[:]), hex.EncodeToString(a.BodyHash[:]), base64.RawURLEncoding.EncodeToString(a.Signature))
}

// ParseAuthorization reads an Authorization header value strictly: the scheme, then exactly the keys
// party, ts, nonce, body and sig in that order. Errors wrap ErrAuthHeader and say what is wrong.
func ParseAuthorization(h string) (*Auth, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrAuthHeader, fmt.Sprintf(format, args...))
	}
	if h == "" {
		return nil, bad("no Authorization header: sign the request with the party's key (insitu login)")
	}
	if len(h) > maxAuthHeader {
		return nil, bad("longer than %d bytes", maxAuthHeader)
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || scheme != AuthScheme {
		return nil, bad("the scheme must be %s", AuthScheme)
	}
	parts := strings.Split(rest, ",")
	want := []string{"party", "ts", "nonce", "body", "sig"}
	if len(parts) != len(want) {
		return nil, bad("want the keys %s, in this order", strings.Join(want, ", "))
	}
	vals := make([]string, len(want))
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k != want[i] {
			return nil, bad("key %d must be %s", i+1, want[i])
		}
		vals[i] = v
	}
	a := &Auth{Party: vals[0]}
	if !validPartyName(a.Party) {
		return nil, bad("party: not a party name")
	}
	if len(vals[1]) == 0 || len(vals[1]) > 12 || strings.TrimLeft(vals[1], "0123456789") != "" || (len(vals[1]) > 1 && vals[1][0] == '0') {
		return nil, bad("ts: not Unix seconds")
	}
	ts, err := strconv.ParseInt(vals[1], 10, 64)
	if err != nil {
		return nil, bad("ts: not Unix seconds")
	}
	a.Time = time.Unix(ts, 0)
	if err := decodeHexExact(a.Nonce[:], vals[2]); err != nil {
		return nil, bad("nonce: want %d lower-case hex digits", 2*NonceSize)
	}
	if err := decodeHexExact(a.BodyHash[:], vals[3]); err != nil {
		return nil, bad("body: want the body's SHA-256 in %d lower-case hex digits", 2*sha256.Size)
	}
	a.Signature, err = base64.RawURLEncoding.Strict().DecodeString(vals[4])
	if err != nil || len(a.Signature) == 0 {
		return nil, bad("sig: not unpadded base64url")
	}
	return a, nil
}

func decodeHexExact(dst []byte, s string) error {
	if len(s) != 2*len(dst) || strings.ToLower(s) != s {
		return ErrAuthHeader
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// validPartyName reports whether s has the shape of a party name: 1 to 64 lower-case letters, digits,
// '.', '_' or '-', starting with a letter or digit.
func validPartyName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// replayCache remembers (party, nonce) pairs until their timestamp leaves the acceptance window.
// It is bounded: when full and nothing has expired, it refuses new requests (the caller answers
// 503) rather than forget a nonce that could still be replayed.
type replayCache struct {
	mu   sync.Mutex
	max  int
	seen map[string]time.Time // key → when it may be forgotten
}

func newReplayCache(max int) *replayCache {
	return &replayCache{max: max, seen: make(map[string]time.Time)}
}

var (
	errReplayed = errors.New("nonce already used")
	errBusy     = errors.New("replay cache full")
)

// check records key until forget, or fails with errReplayed if it is there, or errBusy if the
// cache is full of live entries.
func (c *replayCache) check(key string, forget, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.seen[key]; ok && now.Before(t) {
		return errReplayed
	}
	if len(c.seen) >= c.max {
		for k, t := range c.seen {
			if !now.Before(t) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return errBusy
		}
	}
	c.seen[key] = forget
	return nil
}

// limiter is a token bucket: at most burst events at once, refilled at one per every.
type limiter struct {
	mu         sync.Mutex
	tokens     float64
	burst      float64
	every      time.Duration
	last       time.Time
	suppressed int64
}

// allow reports whether an event may be recorded now; when it may, it also returns how many were
// suppressed since the last one allowed.
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
