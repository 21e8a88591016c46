package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is wrapped by every error about a manifest or a signed envelope that breaks the schema
// or a rule of this package.
var ErrInvalid = errors.New("invalid job manifest")

// ErrSignature is wrapped (with ErrInvalid) by errors of (*Signed).Verify: a signature that does not
// verify, a signer that is not the manifest's bank, or another party's key.
var ErrSignature = errors.New("job manifest signature does not verify")

// Rules named by Error.Rule.
const (
	RuleSyntax       = "syntax"        // not well-formed YAML or JSON, or more than one document
	RuleSize         = "size"          // the file, a list or a text is too long
	RuleUnknownField = "unknown-field" // a key the schema does not have
	RuleDuplicate    = "duplicate"     // a key given twice, or a field or metric requested twice
	RuleType         = "type"          // a value of the wrong type (text for a number, a list for text ...)
	RuleRequired     = "required"      // a required value is missing
	RuleFormat       = "format"        // the format version is not FormatV1
	RuleName         = "name"          // a party name, dataset name, version or identifier of the wrong shape
	RulePurpose      = "purpose"       // not one of the purposes of enclave/consent
	RuleCatalog      = "catalog"       // not an item.field key of the catalog, nor a custom.<key>
	RuleNotFeature   = "not-feature"   // a catalog field that a model may not use (identifier or free text)
	RulePersonal     = "personal"      // a personal-information field not marked personal, or a mark on another field
	RuleSteps        = "steps"         // a transform step that is malformed or does not apply to the field
	RuleUnbounded    = "unbounded"     // in he mode, an output that clipping and scaling do not bound
	RuleMode         = "mode"          // not a mode of plugins/sdk, or a value the mode does not allow
	RuleModel        = "model"         // a model family or hyperparameter of the wrong shape
	RuleDigest       = "digest"        // not "sha256:" and 64 hex digits
	RuleOutputs      = "outputs"       // no output declared, or an output bound that does not hold
	RuleExpiry       = "expiry"        // not RFC 3339, already past, or too far ahead
	RuleEpsilon      = "epsilon"       // an aggregate job's epsilon outside (0, MaxEpsilon]
	RuleSigner       = "signer"        // a signed envelope's signer, signature or manifest bytes are wrong
	RuleLabels       = "labels"        // both labels and label_column, neither where one is needed, or a bad label column
	RuleColumn       = "column"        // a custom field that the dataset's column does not allow (CheckCustom)
)

// Error says what is wrong in a manifest and where: the file, the YAML or JSON line, the path of the
// offending value (e.g. `fields[3].steps[0].clip.min`), the rule broken and what to do.
type Error struct {
	File    string // the name given to Parse, or ""
	Line    int    // 1-based line of the offending value; 0 when unknown
	Path    string // path of the offending value; "" for the whole document
	Rule    string // one of the Rule constants
	Message string // what was found and what to do
	Err     error  // an underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("job manifest")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	fmt.Fprintf(&b, " [%s]", e.Rule)
	return b.String()
}

// Unwrap returns ErrInvalid and the cause, if any.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

func errAt(path, rule, format string, args ...any) *Error {
	return &Error{Path: path, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
