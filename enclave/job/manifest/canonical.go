package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Canonical returns the manifest's canonical encoding, the bytes a bank signs and whose SHA-256 a
// steward approves. Two manifests that mean the same give the same bytes, whatever their YAML or JSON
// key order, whitespace, number spelling, or defaults spelled out or left out:
//
//   - the manifest is taken as Validate leaves it: defaults applied, digests lower-case, the expiry
//     in UTC, metric names sorted, empty values dropped;
//   - it is written as JSON with the keys of every object sorted by their UTF-8 bytes, no whitespace
//     between tokens, no HTML escaping (<, >, & are written as themselves) and no trailing newline;
//   - numbers are written in the shortest form that reads back to the same float64, as ECMAScript
//     does: without exponent from 1e-6 up to 1e21 ("100", "0.25"), with one outside ("1e-7",
//     "1e+21"); negative zero is written "0".
//
// Canonical encodes what it is given: call it on a manifest from Parse or after Validate. It panics if
// the manifest holds a value JSON cannot encode (a NaN, or a Go value in the hyperparameters that is
// not JSON data), which Validate rules out.
func (m *Manifest) Canonical() []byte {
	raw, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("manifest: canonical encoding: %v", err))
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&tree); err != nil {
		panic(fmt.Sprintf("manifest: canonical encoding: %v", err))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(positiveZero(tree)); err != nil {
		panic(fmt.Sprintf("manifest: canonical encoding: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

// positiveZero replaces every −0 in a decoded JSON tree with 0.
func positiveZero(v any) any {
	switch t := v.(type) {
	case float64:
		if t == 0 {
			return 0.0
		}
	case map[string]any:
		for k, e := range t {
			t[k] = positiveZero(e)
		}
	case []any:
		for i, e := range t {
			t[i] = positiveZero(e)
		}
	}
	return v
}

// Hash returns the SHA-256 of the canonical encoding: what approvals sign.
func (m *Manifest) Hash() [sha256.Size]byte { return sha256.Sum256(m.Canonical()) }

// HashString returns Hash as "sha256:" and lower-case hex.
func (m *Manifest) HashString() string {
	h := m.Hash()
	return "sha256:" + hex.EncodeToString(h[:])
}

// ExpiresAt returns the expiry as a time (zero if the manifest has not been validated).
func (m *Manifest) ExpiresAt() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, m.Expires)
	return t
}

// CheckSubmission checks what depends on the clock when a manifest is submitted at now: the expiry
// must lie after now and at most MaxValidity days ahead. Its errors are *Error with rule expiry.
func (m *Manifest) CheckSubmission(now time.Time) error {
	t, err := time.Parse(time.RFC3339Nano, m.Expires)
	switch {
	case err != nil:
		return errAt("expires", RuleExpiry, "%q is not an RFC 3339 date and time", clip(m.Expires))
	case !t.After(now):
		return errAt("expires", RuleExpiry, "the request expired at %s: set a later expiry and sign again", m.Expires)
	case t.After(now.Add(MaxValidity * 24 * time.Hour)):
		return errAt("expires", RuleExpiry, "%s is more than %d days ahead: set an earlier expiry", m.Expires, MaxValidity)
	}
	return nil
}
