package connectors

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

var (
	// ErrInvalidRow is wrapped by every *RowError: a row broke a rule of its mapping.
	ErrInvalidRow = errors.New("invalid row")
	// ErrTooManyRejects is wrapped by the *RowError of the first invalid row beyond the reject budget
	// (--max-rejects) when that budget is above zero.
	ErrTooManyRejects = errors.New("more invalid rows than --max-rejects allows")
	// ErrSource is wrapped by every *SourceError: the source cannot be read as a whole.
	ErrSource = errors.New("source unreadable")
)

// Rules a *RowError names besides the identifier rules of connectors/ident (ident.RuleCheck and
// the others), which apply to the subject column and to id fields.
const (
	RuleFieldCount    = "field-count"    // a CSV record with another number of fields than the header
	RuleNumber        = "number"         // not a finite number
	RuleInteger       = "integer"        // an int field given a value that is not a whole number
	RuleRange         = "range"          // below the field's min or above its max
	RuleBool          = "bool"           // not one of the true/false spellings
	RuleDate          = "date"           // not a date in the mapping's date_format
	RuleEnum          = "enum"           // not one of the enum's values
	RuleUTF8          = "utf8"           // text that is not valid UTF-8
	RuleType          = "type"           // a typed source value (Parquet, Arrow, PostgreSQL) of a type the field cannot take
	RuleUniqueSubject = "unique-subject" // a second row for a subject already read from the source
)

// RowError is a row of a source that breaks a rule of its mapping. It names where the row is (the
// file, the line where the offending value starts — 0 for sources without lines — and the data row,
// counting the first row after the header as 1), the column, the rule and what to do. Value is the
// offending value, masked with ident.Mask when the field holds personal information.
type RowError struct {
	Source  string `json:"source"`
	File    string `json:"file,omitempty"` // the file as the mapping or --input names it; empty for postgres
	Line    int64  `json:"line,omitempty"` // 1-based line in the file; 0 when the source has no lines
	Row     int64  `json:"row"`            // 1-based data row (result row for postgres)
	Column  string `json:"column"`         // the source column
	Rule    string `json:"rule"`
	Value   string `json:"value"`
	Message string `json:"message"`
	Hint    string `json:"hint"`

	// Err is the underlying cause (e.g. an *ident.Error), if any.
	Err error `json:"-"`

	overLimit bool
}

func (e *RowError) Error() string {
	var b strings.Builder
	b.WriteString(e.where())
	b.WriteString(": ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d (data row %d)", e.Line, e.Row)
	} else if e.File == "" {
		fmt.Fprintf(&b, "row %d", e.Row)
	} else {
		fmt.Fprintf(&b, "data row %d", e.Row)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ", column %q", e.Column)
	}
	fmt.Fprintf(&b, ": %s (rule %s)", e.Message, e.Rule)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *RowError) where() string {
	if e.File == "" {
		return fmt.Sprintf("postgres query (source %s)", e.Source)
	}
	return fmt.Sprintf("%s (source %s)", e.File, e.Source)
}

// Unwrap returns ErrInvalidRow, ErrTooManyRejects when the reject budget ran out, and the cause.
func (e *RowError) Unwrap() []error {
	errs := []error{ErrInvalidRow}
	if e.overLimit {
		errs = append(errs, ErrTooManyRejects)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// SourceError is a failure to read a source as a whole: a missing file or column, a broken CSV quote,
// a column type the field cannot take, a failed query. Line is 0 when unknown.
type SourceError struct {
	Source string
	File   string // the file, or "postgres query"
	Line   int64
	Err    error
	Hint   string
}

func (e *SourceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (source %s)", e.File, e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns ErrSource and the cause.
func (e *SourceError) Unwrap() []error { return []error{ErrSource, e.Err} }

// RejectBudget is the number of invalid rows one ingest may leave out (--max-rejects), shared by all
// of its sources. It is safe for concurrent use.
type RejectBudget struct {
	mu   sync.Mutex
	max  int64
	used int64
}

// NewRejectBudget returns a budget of max invalid rows; 0 means the first invalid row fails.
func NewRejectBudget(max int64) *RejectBudget {
	if max < 0 {
		max = 0
	}
	return &RejectBudget{max: max}
}

// Max returns the budget's size.
func (b *RejectBudget) Max() int64 { return b.max }

// Used returns how many invalid rows have been left out so far.
func (b *RejectBudget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// take spends one reject; false when the budget is exhausted.
func (b *RejectBudget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used >= b.max {
		return false
	}
	b.used++
	return true
}

const hintRejects = "correct the value at the source, or pass --max-rejects to leave such rows out"

// hintFor says what to do about a broken rule.
func hintFor(rule string) string {
	switch rule {
	case RuleRange:
		return "correct the value at the source, check the source's unit against the field's (set scale in the mapping), or pass --max-rejects to leave such rows out"
	case RuleDate:
		return "correct the value at the source, set date_format in the mapping to the source's layout, or pass --max-rejects to leave such rows out"
	case RuleBool:
		return "correct the value at the source, list the source's spellings under true and false in the mapping, or pass --max-rejects to leave such rows out"
	case RuleInteger:
		return "an int field takes whole numbers (5e+05 is one, 1.5 is not): correct the value at the source, map the column to a float field, or pass --max-rejects to leave such rows out"
	case RuleType:
		return "map the column to a field of a type that matches the source's column, or convert it in the query"
	case RuleUniqueSubject:
		return "a source holds one row per subject: merge or remove the extra row at the source, or pass --max-rejects to leave such rows out"
	case RuleFieldCount:
		return "fix the row's quoting or delimiters at the source, or pass --max-rejects to leave such rows out"
	}
	return hintRejects
}
