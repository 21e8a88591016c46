package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/apache/arrow/go/v17/arrow/array"
)

// TrainInput is what the enclave hands Train. Which fields are set depends on the mode.
type TrainInput struct {
	// Mode is the mode the enclave runs the job in; it equals the Description's mode.
	Mode Mode

	// Rows streams the job's rows as Arrow record batches in ModePlaintextPublic and ModeHE, and is
	// nil in ModeAggregate. The batches arrive from the enclave as the plugin reads them (bounded
	// chunks with back-pressure: an unread stream holds the enclave's sender, not memory). The
	// plugin need not read to the end, and must not use Rows after Train returns. A RecordReader
	// is not safe for concurrent use.
	//
	// In ModePlaintextPublic the schema holds the Subject column (utf8 pseudonyms), one float64
	// column per name in Features and, when the plugin needs labels, the Label column (float64,
	// 0 or 1). ReadTable gathers them.
	Rows array.RecordReader

	// Features names the feature columns, in the order the output's weights must follow.
	Features []string
	// Label names the label column; "" when the job hands the plugin no labels.
	Label string
	// Subject names the column of subject pseudonyms that scores are keyed by.
	Subject string

	// Hyperparameters are the job's hyperparameters for this plugin.
	Hyperparameters Hyperparameters

	// HE is the job's homomorphic-encryption context in ModeHE, nil otherwise.
	HE HEContext
	// Aggregate answers aggregate queries in ModeAggregate, nil otherwise.
	Aggregate AggregateClient

	// Limits bounds the output; Output.Check applies them.
	Limits Limits

	// Log writes to the plugin's stderr, which the enclave records with the run. It drops lines
	// beyond a few dozen a second. Never nil.
	Log *slog.Logger
}

// Hyperparameters are a job's hyperparameters: a JSON object the bank writes in the job manifest.
// The zero value is the empty object.
type Hyperparameters struct {
	raw []byte
}

// NewHyperparameters checks that raw is a JSON object (or empty, meaning {}) and wraps it.
func NewHyperparameters(raw []byte) (Hyperparameters, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Hyperparameters{}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Hyperparameters{}, &Error{Err: ErrHyperparameter, Detail: "hyperparameters must be a JSON object"}
	}
	return Hyperparameters{raw: bytes.Clone(raw)}, nil
}

// MustHyperparameters encodes v (a struct or map; nil for none) as Hyperparameters. It panics if v
// does not encode to a JSON object; it is meant for tests and literals.
func MustHyperparameters(v any) Hyperparameters {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("sdk: hyperparameters: %v", err))
	}
	if string(b) == "null" {
		return Hyperparameters{}
	}
	h, err := NewHyperparameters(b)
	if err != nil {
		panic(fmt.Sprintf("sdk: hyperparameters: %v", err))
	}
	return h
}

// JSON returns the hyperparameters as a JSON object.
func (h Hyperparameters) JSON() []byte {
	if len(h.raw) == 0 {
		return []byte("{}")
	}
	return bytes.Clone(h.raw)
}

// Decode unmarshals the hyperparameters into v, a pointer to a struct whose fields carry the
// defaults. A key that v has no field for is an error, so a misspelt hyperparameter is not silently
// ignored. The error wraps ErrHyperparameter.
func (h Hyperparameters) Decode(v any) error {
	if len(h.raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(h.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{Err: ErrHyperparameter, Detail: err.Error()}
	}
	return nil
}

// Limits bounds what a plugin may return. The enclave sets them per job and enforces them on its
// side; the SDK applies the same limits before sending, so a plugin learns of an oversize output
// from a clear error.
type Limits struct {
	// MaxOutputFloats bounds the floating-point values of an output (Output.Floats): weights and
	// the intercept, scores, two per tree node (threshold and value) plus the base score, and
	// metrics. It bounds what a plugin can say, whatever the bytes.
	MaxOutputFloats int64
	// MaxOutputBytes bounds the size of an output (Output.Bytes): 8 bytes per float, every name
	// (subject pseudonyms included) and the ciphertexts. It bounds what the enclave holds.
	MaxOutputBytes int64
}

// Default limits, used where a job sets none.
const (
	DefaultMaxOutputFloats = 1 << 23
	DefaultMaxOutputBytes  = 512 << 20
)

// DefaultLimits returns the limits used where a job sets none.
func DefaultLimits() Limits {
	return Limits{MaxOutputFloats: DefaultMaxOutputFloats, MaxOutputBytes: DefaultMaxOutputBytes}
}

// WithDefaults returns l with every unset (zero or negative) limit replaced by its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxOutputFloats <= 0 {
		l.MaxOutputFloats = DefaultMaxOutputFloats
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = DefaultMaxOutputBytes
	}
	return l
}

// HEContext is the homomorphic-encryption context of a job in ModeHE. The enclave holds the secret
// key; the plugin gets the public parameters, the evaluation keys and a refresh service.
type HEContext interface {
	// Parameters returns the CKKS parameters of the job.
	Parameters() HEParameters
	// EvaluationKeys returns the serialised evaluation key set (relinearisation and rotation keys),
	// fetched from the enclave in chunks.
	EvaluationKeys(ctx context.Context) ([]byte, error)
	// Refresh sends a ciphertext to the enclave, which decrypts and re-encrypts it at full level
	// and returns the new ciphertext (never plaintext). Each call is recorded.
	Refresh(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// HEParameters identifies the CKKS parameters of a job.
type HEParameters struct {
	// Literal is the parameters literal in the enclave's serialisation (JSON).
	Literal []byte
	// Digest is the SHA-256 of Literal, recorded with the job.
	Digest []byte
}

// Check reports whether Digest is the SHA-256 of Literal.
func (p HEParameters) Check() error {
	sum := sha256.Sum256(p.Literal)
	if !bytes.Equal(sum[:], p.Digest) {
		return &Error{Err: ErrInput, Detail: "HE parameters digest does not match the literal"}
	}
	return nil
}
