package sdk

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped by *Error. Use errors.Is.
var (
	// ErrInvalidDescription: Describe returned a description that Description.Validate refuses.
	ErrInvalidDescription = errors.New("invalid plugin description")
	// ErrInvalidOutput: an output is malformed (undeclared kind, NaN, duplicate or empty name,
	// broken tree, ...).
	ErrInvalidOutput = errors.New("invalid output")
	// ErrOutputTooLarge: an output exceeds the Limits of the job.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrInput: the training input does not have the shape the plugin expects (a missing column, a
	// null value, a label other than 0 or 1, a cut stream).
	ErrInput = errors.New("invalid training input")
	// ErrHyperparameter: the job's hyperparameters cannot be decoded into what the plugin expects.
	ErrHyperparameter = errors.New("invalid hyperparameter")
	// ErrNotOffered: the enclave does not offer the requested service to this job.
	ErrNotOffered = errors.New("service not offered to this job")
)

// Error describes a failure and where it comes from.
type Error struct {
	// Column names the column, feature, output or hyperparameter at fault; "" when none.
	Column string
	// Row is the 1-based data row at fault (row 1 is the first row streamed), or 0.
	Row int64
	// Detail says what was found and what to do.
	Detail string
	// Err is one of the sentinel errors.
	Err error
}

func (e *Error) Error() string {
	s := "sdk: " + e.Err.Error()
	if e.Row > 0 {
		s += fmt.Sprintf(": data row %d", e.Row)
	}
	if e.Column != "" {
		s += fmt.Sprintf(": %q", e.Column)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }
