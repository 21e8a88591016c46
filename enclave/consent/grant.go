package consent

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
)

// Purpose is what a bank may use a subject's data for. The list is closed; PurposeDetail carries
// the specifics in free text.
type Purpose string

const (
	PurposePreScreening       Purpose = "pre_screening"        // 授信前预筛选
	PurposeCreditApproval     Purpose = "credit_approval"      // 授信审批
	PurposePostLoanMonitoring Purpose = "post_loan_monitoring" // 贷后监测
	PurposeModelDevelopment   Purpose = "model_development"    // 模型开发
)

// Purposes lists every purpose.
var Purposes = []Purpose{PurposePreScreening, PurposeCreditApproval, PurposePostLoanMonitoring, PurposeModelDevelopment}

// ParsePurpose returns the purpose named s.
func ParsePurpose(s string) (Purpose, error) {
	if slices.Contains(Purposes, Purpose(s)) {
		return Purpose(s), nil
	}
	return "", fmt.Errorf("%w: purpose %q is not one of pre_screening, credit_approval, post_loan_monitoring, model_development", ErrInvalid, s)
}

// Rules named by FieldError and RowError.
const (
	RuleHeader     = "header"      // the CSV header lacks, repeats or adds a column
	RuleCSV        = "csv"         // the file is not well-formed CSV (a broken quote)
	RuleFieldCount = "field-count" // a record with another number of fields than the header
	RuleIDType     = "id-type"     // not an identifier kind of connectors/ident
	RuleGrantee    = "grantee"     // not a party name
	RulePurpose    = "purpose"     // not one of Purposes
	RuleText       = "text"        // free text too long, not UTF-8, or with control characters
	RuleItems      = "items"       // empty, unknown or repeated catalog items
	RuleDate       = "date"        // not a date YYYY-MM-DD
	RuleValidity   = "validity"    // valid_from after valid_until
	RuleEvidence   = "evidence"    // no SHA-256 digest of the evidence document
	RuleConflict   = "conflict"    // the same authorization is recorded with other terms
)

// Limits on free text, in characters.
const (
	MaxPurposeDetail = 500
	MaxReason        = 500
	maxEvidenceName  = 256
)

var (
	// ErrInvalid is wrapped by every *FieldError and *RowError: a grant or a row that breaks a rule.
	ErrInvalid = errors.New("invalid authorization")
	// ErrNotFound is wrapped when an authorization id does not exist.
	ErrNotFound = errors.New("authorization not found")
	// ErrAlreadyRevoked is wrapped when revoking an authorization revoked before.
	ErrAlreadyRevoked = errors.New("authorization already revoked")
)

// FieldError says which field of a grant breaks which rule. Value is shown masked for the
// identifier, which no error ever carries in full.
type FieldError struct {
	Field   string // the CSV column name: id_type, id, grantee, purpose, purpose_detail, items, valid_from, valid_until, evidence
	Rule    string
	Value   string
	Message string
	Hint    string
	Err     error // the cause, e.g. an *ident.Error; nil if none
}

func (e *FieldError) Error() string {
	s := fmt.Sprintf("authorization field %s: %s (rule %s)", e.Field, e.Message, e.Rule)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Unwrap returns ErrInvalid and the cause, if any.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// Grant is an authorization as a steward records it: by the API, the CLI or a CSV row. The field
// names are the CSV columns.
type Grant struct {
	IDType ident.Kind `json:"id_type"`
	// Identifier is the subject's identifier. The registry keeps it in canonical form and never
	// reports it back in full.
	Identifier    string   `json:"id"`
	Grantee       string   `json:"grantee"` // the bank's party name
	Purpose       Purpose  `json:"purpose"`
	PurposeDetail string   `json:"purpose_detail"`
	Items         []string `json:"items"`       // catalog item keys
	ValidFrom     string   `json:"valid_from"`  // first day, YYYY-MM-DD
	ValidUntil    string   `json:"valid_until"` // last day, YYYY-MM-DD, inclusive
	// Evidence names the signed authorization document with its SHA-256 digest:
	// "<name>#sha256=<64 hex digits>" or "sha256=<64 hex digits>".
	Evidence string `json:"evidence"`
}

var (
	granteeRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	evidenceRE = regexp.MustCompile(`^(?:([^#]+)#)?sha256=([0-9a-fA-F]{64})$`)
)

// validGrantee reports whether s is a party name, and not a subject's identifier.
func validGrantee(s string) bool { return granteeRE.MatchString(s) && redact(s) == s }

// normalized is a checked grant in stored form.
type normalized struct {
	Grant
	items          string // catalog keys in catalog order, joined by ';'
	evidenceDigest string // lower-case hex
}

// check validates g against the catalog and returns it in stored form: the identifier canonical,
// items in catalog order, the evidence digest in lower case.
func check(g Grant, cat *catalog.Catalog) (*normalized, *FieldError) {
	n := &normalized{Grant: g}
	kind, err := ident.ParseKind(string(g.IDType))
	if err != nil {
		return nil, &FieldError{Field: "id_type", Rule: RuleIDType, Value: clip(string(g.IDType)), Message: err.Error()}
	}
	n.IDType = kind
	id, err := ident.Normalize(kind, g.Identifier)
	if err != nil {
		fe := &FieldError{Field: "id", Rule: RuleIDType, Value: ident.Mask(strings.TrimSpace(g.Identifier)), Message: "not a valid " + string(kind), Err: err}
		var ie *ident.Error
		if errors.As(err, &ie) {
			fe.Rule, fe.Message = ie.Rule, fmt.Sprintf("not a valid %s: %s", kind, ie.Detail)
			fe.Err = nil // its message would carry the value
		}
		fe.Hint = "check the identifier against the signed authorization"
		return nil, fe
	}
	n.Identifier = id
	if !validGrantee(g.Grantee) {
		return nil, &FieldError{Field: "grantee", Rule: RuleGrantee, Value: clip(g.Grantee),
			Message: "not a party name", Hint: "use the bank's registered name: 1-64 lower-case letters, digits, '.', '_' or '-'"}
	}
	if _, err := ParsePurpose(string(g.Purpose)); err != nil {
		return nil, &FieldError{Field: "purpose", Rule: RulePurpose, Value: clip(string(g.Purpose)),
			Message: "not a purpose", Hint: "use one of pre_screening, credit_approval, post_loan_monitoring, model_development and put the details in purpose_detail"}
	}
	if msg := checkFreeText(g.PurposeDetail, MaxPurposeDetail); msg != "" {
		return nil, &FieldError{Field: "purpose_detail", Rule: RuleText, Value: clip(g.PurposeDetail), Message: msg}
	}
	if n.items, err = canonicalItems(g.Items, cat); err != nil {
		return nil, &FieldError{Field: "items", Rule: RuleItems, Value: clip(strings.Join(g.Items, ";")), Message: err.Error(),
			Hint: "name catalog item keys (insitu catalog lists them) separated by ';'"}
	}
	n.Items = strings.Split(n.items, ";")
	from, err1 := time.Parse(time.DateOnly, g.ValidFrom)
	if err1 != nil {
		return nil, &FieldError{Field: "valid_from", Rule: RuleDate, Value: clip(g.ValidFrom), Message: "not a date", Hint: "write dates as YYYY-MM-DD"}
	}
	until, err2 := time.Parse(time.DateOnly, g.ValidUntil)
	if err2 != nil {
		return nil, &FieldError{Field: "valid_until", Rule: RuleDate, Value: clip(g.ValidUntil), Message: "not a date", Hint: "write dates as YYYY-MM-DD"}
	}
	if until.Before(from) {
		return nil, &FieldError{Field: "valid_until", Rule: RuleValidity, Value: g.ValidUntil,
			Message: fmt.Sprintf("before valid_from %s", g.ValidFrom), Hint: "valid_until is the last day the authorization covers"}
	}
	m := evidenceRE.FindStringSubmatch(g.Evidence)
	if m == nil || checkFreeText(m[1], maxEvidenceName) != "" || strings.ContainsFunc(m[1], unicode.IsControl) {
		return nil, &FieldError{Field: "evidence", Rule: RuleEvidence, Value: clip(g.Evidence), Message: "no SHA-256 digest of the evidence",
			Hint: "write <document name>#sha256=<64 hex digits of the signed document's SHA-256>"}
	}
	n.evidenceDigest = strings.ToLower(m[2])
	n.Evidence = "sha256=" + n.evidenceDigest
	if m[1] != "" {
		n.Evidence = m[1] + "#" + n.Evidence
	}
	return n, nil
}

// canonicalItems checks item keys against the catalog and returns them in catalog order, joined by
// ';'.
func canonicalItems(items []string, cat *catalog.Catalog) (string, error) {
	if len(items) == 0 {
		return "", errors.New("no items")
	}
	seen := map[string]bool{}
	for _, k := range items {
		k = strings.TrimSpace(k)
		if k == "" {
			return "", errors.New("an empty item")
		}
		if _, err := cat.Item(k); err != nil {
			return "", fmt.Errorf("%q is not a catalog item", clip(k))
		}
		if seen[k] {
			return "", fmt.Errorf("%q named twice", k)
		}
		seen[k] = true
	}
	var out []string
	for _, it := range cat.Items() {
		if seen[it.Key] {
			out = append(out, it.Key)
		}
	}
	return strings.Join(out, ";"), nil
}

// checkFreeText returns what is wrong with free text, or "": it must be UTF-8, at most max
// characters, with no control characters but tabs and line breaks.
func checkFreeText(s string, max int) string {
	switch {
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("%d characters, at most %d allowed", utf8.RuneCountInString(s), max)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' || r == 0x7f }):
		return "holds a control character"
	}
	return ""
}

// clip prepares a value to be shown in an error: identifiers in it masked (a value in the wrong
// column may be one), at most 64 characters.
func clip(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = redact(s)
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}

// redact masks with ident.Mask every run of 18 ASCII letters and digits in s that is a valid
// credit code or resident identity number.
func redact(s string) string {
	const n = 18
	if len(s) < n {
		return s
	}
	var b []byte
	start := -1
	for i := 0; i <= len(s); i++ {
		alnum := i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 'a' && s[i] <= 'z')
		switch {
		case alnum && start < 0:
			start = i
		case !alnum && start >= 0:
			if tok := s[start:i]; len(tok) == n && (ident.Validate(ident.KindUSCC, tok) == nil || ident.Validate(ident.KindResidentID, tok) == nil) {
				if b == nil {
					b = []byte(s)
				}
				copy(b[start:i], ident.Mask(tok))
			}
			start = -1
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}
