package sdk

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Model is a trainable model plugin. The enclave calls Describe, checks the description against the
// job, then calls Train once. Both may be called on any goroutine.
type Model interface {
	// Describe says what the model is, the mode it runs in and what it returns.
	Describe(ctx context.Context) (Description, error)
	// Train trains on what the enclave provides and returns the outputs Describe declared. Its ctx
	// is cancelled when the enclave gives up on the job (deadline, cancellation); a long training
	// loop should check it.
	Train(ctx context.Context, in *TrainInput) (*Output, error)
}

// Mode is how a plugin sees the data it trains on.
type Mode string

const (
	// ModePlaintextPublic: plaintext rows of a public or synthetic dataset (never platform data).
	ModePlaintextPublic Mode = "plaintext_public"
	// ModeHE: CKKS-encrypted rows, the evaluation keys and an enclave refresh service.
	ModeHE Mode = "he"
	// ModeAggregate: no rows, only answers to aggregate queries.
	ModeAggregate Mode = "aggregate"
)

// Valid reports whether m is one of the defined modes.
func (m Mode) Valid() bool {
	return m == ModePlaintextPublic || m == ModeHE || m == ModeAggregate
}

// Model families known to the enclave. A plugin may declare another family (a lower-case
// identifier); the output gate verifies weights only for families it knows, and anything else needs
// a steward's waiver.
const (
	FamilyLogisticRegression = "logistic_regression"
	FamilyScorecard          = "scorecard"
	FamilyGBDT               = "gbdt"
)

// OutputKind names one kind of output a plugin returns.
type OutputKind string

const (
	// OutputWeights: a named weight vector with an intercept (Output.Weights).
	OutputWeights OutputKind = "weights"
	// OutputTrees: a tree ensemble (Output.Trees).
	OutputTrees OutputKind = "trees"
	// OutputScores: one score per subject pseudonym (Output.Scores).
	OutputScores OutputKind = "scores"
	// OutputMetrics: named training metrics (Output.Metrics).
	OutputMetrics OutputKind = "metrics"
	// OutputCiphertexts: named ciphertexts for the gate to decrypt, in HE mode (Output.Ciphertexts).
	OutputCiphertexts OutputKind = "ciphertexts"
)

var outputKinds = []OutputKind{OutputWeights, OutputTrees, OutputScores, OutputMetrics, OutputCiphertexts}

// Valid reports whether k is one of the defined output kinds.
func (k OutputKind) Valid() bool { return slices.Contains(outputKinds, k) }

// Needs says what a plugin needs from the enclave beyond what its mode implies.
type Needs struct {
	// Labels: the rows (or the aggregate queries) must include the job's label column.
	Labels bool
	// Refresh: in HE mode, the plugin calls HEContext.Refresh.
	Refresh bool
}

// Description is what Describe returns.
type Description struct {
	// Name is the plugin's short name, e.g. "logreg" (1 to 64 characters of [a-z0-9_.-]).
	Name string
	// Version is the plugin's own version, free text of at most 64 bytes.
	Version string
	// Family is the model family: one of the Family constants or another lower-case identifier
	// (a letter, then letters, digits or underscores; at most 64 bytes).
	Family string
	// Mode is how the plugin sees the data.
	Mode Mode
	// Outputs lists the kinds of output Train returns, each at most once. Train may leave a declared
	// output empty but must not return an undeclared one.
	Outputs []OutputKind
	// Needs lists what the plugin needs beyond its mode.
	Needs Needs
}

// Declares reports whether d lists output kind k.
func (d *Description) Declares(k OutputKind) bool { return slices.Contains(d.Outputs, k) }

// Validate checks the description: name, version and family syntax, a defined mode, at least one
// output, known output kinds without repeats, ciphertexts only in HE mode, refresh only in HE mode.
// The error wraps ErrInvalidDescription.
func (d *Description) Validate() error {
	bad := func(format string, args ...any) error {
		return &Error{Err: ErrInvalidDescription, Detail: fmt.Sprintf(format, args...)}
	}
	if !validIdent(d.Name, 64, "abcdefghijklmnopqrstuvwxyz0123456789_.-", false) {
		return bad("name %q must be 1 to 64 characters of a-z, 0-9, '_', '.', '-'", clip(d.Name))
	}
	if len(d.Version) > 64 || !utf8.ValidString(d.Version) || hasControl(d.Version) {
		return bad("version %q must be at most 64 bytes of printable UTF-8", clip(d.Version))
	}
	if !ValidFamily(d.Family) {
		return bad("family %q must be a lower-case identifier of at most 64 bytes, e.g. %q", clip(d.Family), FamilyLogisticRegression)
	}
	if !d.Mode.Valid() {
		return bad("mode %q is not one of %q, %q, %q", clip(string(d.Mode)), ModePlaintextPublic, ModeHE, ModeAggregate)
	}
	if len(d.Outputs) == 0 {
		return bad("no outputs declared")
	}
	for i, k := range d.Outputs {
		if !k.Valid() {
			return bad("output %q is not one of %q", clip(string(k)), outputKinds)
		}
		if slices.Contains(d.Outputs[:i], k) {
			return bad("output %q declared twice", k)
		}
	}
	if d.Declares(OutputCiphertexts) && d.Mode != ModeHE {
		return bad("output %q is only for mode %q", OutputCiphertexts, ModeHE)
	}
	if d.Needs.Refresh && d.Mode != ModeHE {
		return bad("the refresh service is only for mode %q", ModeHE)
	}
	return nil
}

// ValidFamily reports whether s is a syntactically valid model family: a lower-case letter, then
// lower-case letters, digits or underscores, at most 64 bytes.
func ValidFamily(s string) bool {
	return validIdent(s, 64, "abcdefghijklmnopqrstuvwxyz0123456789_", true)
}

func validIdent(s string, maxLen int, allowed string, letterFirst bool) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	if letterFirst && !(s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !containsByte(allowed, s[i]) {
			return false
		}
	}
	return true
}

func containsByte(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
