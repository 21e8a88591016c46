package features

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped by *Error.
var (
	// ErrSpec: the spec (or a fitted pipeline read back from JSON) is malformed.
	ErrSpec = errors.New("invalid transform spec")
	// ErrNoColumn: the spec names a column the input does not have.
	ErrNoColumn = errors.New("no such input column")
	// ErrColumns: input columns differ in length, or two share a name.
	ErrColumns = errors.New("inconsistent input columns")
	// ErrKind: a step does not apply to the column's kind at that point (e.g. scale on a categorical
	// column), or a column ends in a kind that is not a feature (a date without age, a category
	// without onehot).
	ErrKind = errors.New("step does not apply to this kind of column")
	// ErrMissingValue: a missing value reached a step that needs a value, or the output.
	ErrMissingValue = errors.New("missing value")
	// ErrNotFinite: a numeric input value is infinite.
	ErrNotFinite = errors.New("value is infinite")
	// ErrNoData: a statistic has no non-missing training values to learn from.
	ErrNoData = errors.New("no non-missing training values")
	// ErrUnknownCategory: a one-hot step with unknown: error met a category outside its list.
	ErrUnknownCategory = errors.New("unknown category")
	// ErrEmpty: the input has no rows.
	ErrEmpty = errors.New("no rows")
	// ErrUnbounded: an output's guaranteed range exceeds the range required.
	ErrUnbounded = errors.New("output is not bounded")
)

// Error says what went wrong, in which column and step, and at which row.
type Error struct {
	Column string // input column, or "" when the error concerns the whole spec or input
	Step   int    // 1-based step number within the column's steps, or 0
	Op     string // the step's operation ("clip", "impute", "scale", "onehot", "age"), or ""
	Row    int    // 1-based row (row 1 is the first value), or 0 when no single row is to blame
	Detail string // what was found and what to do
	Err    error  // one of the sentinel errors
}

func (e *Error) Error() string {
	s := "features: "
	if e.Column != "" {
		s += fmt.Sprintf("column %q: ", e.Column)
	}
	if e.Step > 0 {
		s += fmt.Sprintf("step %d (%s): ", e.Step, e.Op)
	}
	if e.Row > 0 {
		s += fmt.Sprintf("row %d: ", e.Row)
	}
	s += e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }
