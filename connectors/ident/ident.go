// Package ident validates and pseudonymises the identifiers that key every subject in insitu:
// the unified social credit code of an enterprise (GB 32100-2015) and the resident identity number
// of a natural person (GB 11643-1999), plus opaque record ids of public benchmark data.
//
// Call Validate (or Normalize, which also returns the canonical form) before an identifier is used as a
// key, and a Pseudonymizer before it leaves the enclave's trusted code: no raw identifier ever reaches
// a plugin.
package ident

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the type of an identifier.
type Kind string

const (
	// KindUSCC is an enterprise's unified social credit code (统一社会信用代码, GB 32100-2015).
	KindUSCC Kind = "uscc"
	// KindResidentID is a natural person's resident identity number (公民身份号码, GB 11643-1999).
	KindResidentID Kind = "resident_id"
	// KindOpaque is a record id without structure, used by public benchmark data sets: 1 to 64
	// printable ASCII characters, no spaces.
	KindOpaque Kind = "opaque"
)

// Kinds lists every identifier kind.
var Kinds = []Kind{KindUSCC, KindResidentID, KindOpaque}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown identifier kind %q (want one of uscc, resident_id, opaque)", s)
}

// Personal reports whether identifiers of this kind are personal information.
func (k Kind) Personal() bool { return k == KindResidentID }

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid identifier")

// Rules named by *Error.Rule.
const (
	RuleEmpty    = "non-empty"
	RuleLength   = "length"
	RuleCharset  = "charset"
	RuleCheck    = "check-character"
	RuleDate     = "birth-date"
	RuleRegion   = "region-code"
	RuleFirstGen = "second-generation"
)

// Error describes why an identifier is invalid. Value is masked for personal identifiers so that an
// error message never carries a whole resident identity number.
type Error struct {
	Kind   Kind
	Value  string // masked where the kind is personal
	Rule   string // one of the Rule constants
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s %q: %s (rule %s)", e.Kind, e.Value, e.Detail, e.Rule)
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

func invalid(k Kind, v, rule, format string, args ...any) error {
	if k.Personal() {
		v = Mask(v)
	}
	return &Error{Kind: k, Value: v, Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// Mask hides the middle of an identifier, keeping its first four and last four characters, so that
// logs and error messages can point at a record without disclosing it.
func Mask(s string) string {
	r := []rune(s)
	if len(r) <= 8 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:4]) + strings.Repeat("*", len(r)-8) + string(r[len(r)-4:])
}

// Validate reports whether s is a valid identifier of kind k in canonical form.
func Validate(k Kind, s string) error {
	_, err := Normalize(k, s)
	return err
}

// Normalize validates s and returns its canonical form: surrounding white space removed and, for
// credit codes and resident ids, letters upper-cased.
func Normalize(k Kind, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch k {
	case KindUSCC:
		s = strings.ToUpper(s)
		return s, validateUSCC(s)
	case KindResidentID:
		s = strings.ToUpper(s)
		return s, validateResidentID(s, time.Now())
	case KindOpaque:
		return s, validateOpaque(s)
	default:
		return "", fmt.Errorf("unknown identifier kind %q", k)
	}
}

func validateOpaque(s string) error {
	if s == "" {
		return invalid(KindOpaque, s, RuleEmpty, "empty")
	}
	if len(s) > 64 {
		return invalid(KindOpaque, s[:64]+"…", RuleLength, "%d characters, at most 64 allowed", len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return invalid(KindOpaque, s, RuleCharset, "character %d is not printable ASCII", i+1)
		}
	}
	return nil
}
