package sdk

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// Table is a job's plaintext rows gathered into memory: what most models of ModePlaintextPublic
// train on.
type Table struct {
	// Features names the columns of X, as TrainInput.Features does.
	Features []string
	// Subjects holds the subject pseudonym of each row.
	Subjects []string
	// X holds the features row-major: row i is X[i*len(Features) : (i+1)*len(Features)]
	// (mat.NewDense(t.Len(), len(t.Features), t.X) views it as a gonum matrix).
	X []float64
	// Y holds the labels, 0 or 1; nil when the input names no label column.
	Y []float64
}

// Len returns the number of rows.
func (t *Table) Len() int { return len(t.Subjects) }

// Row returns the features of row i (0-based), aliasing X.
func (t *Table) Row(i int) []float64 {
	d := len(t.Features)
	return t.X[i*d : (i+1)*d]
}

// ReadTable reads every row of in.Rows into a Table: the Subject column (utf8 or large utf8), the
// Features columns and, when in.Label is set, the Label column. Feature and label columns may be
// any integer or floating-point type; a null is an error (the enclave imputes before it streams),
// NaN and infinite features too, and a label other than 0 or 1. Errors wrap ErrInput and name the
// column and the 1-based data row. ReadTable stops with the context's error when ctx ends.
func ReadTable(ctx context.Context, in *TrainInput) (*Table, error) {
	if in.Rows == nil {
		return nil, &Error{Err: ErrInput, Detail: fmt.Sprintf("mode %q streams no rows", in.Mode)}
	}
	schema := in.Rows.Schema()
	find := func(name, role string) (int, error) {
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			return 0, &Error{Column: name, Err: ErrInput, Detail: fmt.Sprintf("the %s column appears %d times in the rows; want once", role, len(idx))}
		}
		return idx[0], nil
	}
	subj, err := find(in.Subject, "subject")
	if err != nil {
		return nil, err
	}
	feat := make([]int, len(in.Features))
	for j, f := range in.Features {
		if feat[j], err = find(f, "feature"); err != nil {
			return nil, err
		}
	}
	label := -1
	if in.Label != "" {
		if label, err = find(in.Label, "label"); err != nil {
			return nil, err
		}
	}

	t := &Table{Features: append([]string(nil), in.Features...)}
	if label >= 0 {
		t.Y = []float64{}
	}
	d := len(feat)
	var row0 int64 // data rows before the current batch
	for in.Rows.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := in.Rows.Record()
		n := int(rec.NumRows())
		subjects, err := stringColumn(rec.Column(subj))
		if err != nil {
			return nil, &Error{Column: in.Subject, Err: ErrInput, Detail: err.Error()}
		}
		for i := range n {
			if subjects.IsNull(i) {
				return nil, &Error{Column: in.Subject, Row: row0 + int64(i) + 1, Err: ErrInput, Detail: "null subject"}
			}
			t.Subjects = append(t.Subjects, subjects.Value(i))
		}
		base := len(t.X)
		t.X = append(t.X, make([]float64, n*d)...)
		for j, c := range feat {
			if err := eachFloat(rec.Column(c), func(i int, v float64) error {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("value is %v", v)
				}
				t.X[base+i*d+j] = v
				return nil
			}); err != nil {
				return nil, rowError(in.Features[j], row0, err)
			}
		}
		if label >= 0 {
			if err := eachFloat(rec.Column(label), func(i int, v float64) error {
				if v != 0 && v != 1 {
					return fmt.Errorf("label is %v, not 0 or 1", v)
				}
				t.Y = append(t.Y, v)
				return nil
			}); err != nil {
				return nil, rowError(in.Label, row0, err)
			}
		}
		row0 += int64(n)
	}
	if err := in.Rows.Err(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("sdk: reading rows: %w", err)
	}
	return t, nil
}

// rowErr carries the 0-based row within a batch.
type rowErr struct {
	row int
	err error
}

func (e *rowErr) Error() string { return e.err.Error() }

func rowError(column string, row0 int64, err error) error {
	if re, ok := err.(*rowErr); ok {
		return &Error{Column: column, Row: row0 + int64(re.row) + 1, Err: ErrInput, Detail: re.err.Error()}
	}
	return &Error{Column: column, Err: ErrInput, Detail: err.Error()}
}

type stringArray interface {
	IsNull(int) bool
	Value(int) string
}

func stringColumn(a arrow.Array) (stringArray, error) {
	switch c := a.(type) {
	case *array.String:
		return c, nil
	case *array.LargeString:
		return c, nil
	}
	return nil, fmt.Errorf("subject column has type %s; want utf8", a.DataType())
}

// eachFloat calls f with every value of a numeric column converted to float64.
func eachFloat(a arrow.Array, f func(i int, v float64) error) error {
	call := func(i int, v float64) error {
		if a.IsNull(i) {
			return &rowErr{i, fmt.Errorf("null value; the enclave imputes missing values before streaming")}
		}
		if err := f(i, v); err != nil {
			return &rowErr{i, err}
		}
		return nil
	}
	n := a.Len()
	switch c := a.(type) {
	case *array.Float64:
		vals := c.Float64Values()
		if c.NullN() == 0 {
			for i, v := range vals {
				if err := f(i, v); err != nil {
					return &rowErr{i, err}
				}
			}
			return nil
		}
		for i := range n {
			if err := call(i, vals[i]); err != nil {
				return err
			}
		}
	case *array.Float32:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Int64:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Int32:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Int16:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Int8:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Uint64:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Uint32:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Uint16:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Uint8:
		return loop(n, call, func(i int) float64 { return float64(c.Value(i)) })
	case *array.Boolean:
		return loop(n, call, func(i int) float64 {
			if c.Value(i) {
				return 1
			}
			return 0
		})
	default:
		return fmt.Errorf("column has type %s; want a numeric type", a.DataType())
	}
	return nil
}

func loop(n int, call func(int, float64) error, at func(int) float64) error {
	for i := range n {
		if err := call(i, at(i)); err != nil {
			return err
		}
	}
	return nil
}
