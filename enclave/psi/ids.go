package psi

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"insitu/connectors/ident"
)

// MaxRowErrors is how many invalid rows an IDFile lists; it counts them all.
const MaxRowErrors = 100

// IDFile is a bank's identifier file, checked: the valid identifiers, in canonical form and file
// order, each once, and the rows left out.
type IDFile struct {
	Name string
	Kind ident.Kind
	// IDs are the distinct valid identifiers; Rows the data row (from 1) of each one's first
	// occurrence.
	IDs  []string
	Rows []int64
	// DataRows counts the data rows; Duplicates the valid rows repeating an earlier identifier.
	DataRows   int64
	Duplicates int64
	// Invalid lists the first MaxRowErrors rows whose identifier is not valid; InvalidRows counts
	// them all. They are not sent.
	Invalid     []*RowError
	InvalidRows int64
}

// RowError is a row of an identifier file whose identifier is not valid: where it is, the rule it
// breaks (an ident Rule) and the value, masked.
type RowError struct {
	File    string `json:"file"`
	Line    int64  `json:"line"`
	Row     int64  `json:"row"`
	Column  string `json:"column"`
	Rule    string `json:"rule"`
	Value   string `json:"value"`
	Message string `json:"message"`
}

func (e *RowError) Error() string {
	return fmt.Sprintf("%s:%d: row %d, column %s: %s (rule %s, value %s)", e.File, e.Line, e.Row, e.Column, e.Message, e.Rule, e.Value)
}

// Unwrap returns ident.ErrInvalid.
func (e *RowError) Unwrap() error { return ident.ErrInvalid }

// ErrIDFile is wrapped by the errors of ReadIDs: a file that cannot be read as an identifier file.
var ErrIDFile = errors.New("not a readable identifier file")

// IDColumns are the header names ReadIDs takes for the identifier column, besides the kind's own
// name ("uscc", "resident_id", "opaque"), so that a label file serves as it is.
var IDColumns = []string{"id", "subject_id"}

// ReadIDs reads a CSV file with a header row naming the identifier column (id, subject_id or the
// kind, e.g. uscc; other columns are ignored) and checks every identifier as kind k. Invalid rows
// are listed, not fatal; a file without such a column, or not well-formed CSV, is an error naming
// the file and line.
func ReadIDs(name string, r io.Reader, k ident.Kind) (*IDFile, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: %w: the file is empty; the first row must name the identifier column (id or %s)", name, ErrIDFile, k)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrIDFile, err)
	}
	col := -1
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))
		if h == string(k) || h == IDColumns[0] || h == IDColumns[1] {
			col = i
			break
		}
	}
	if col < 0 {
		return nil, fmt.Errorf("%s:1: %w: no identifier column in the header; name it id, subject_id or %s", name, ErrIDFile, k)
	}
	colName := strings.TrimSpace(strings.TrimPrefix(header[col], "\uFEFF"))
	f := &IDFile{Name: name, Kind: k}
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %v", name, ErrIDFile, err)
		}
		f.DataRows++
		line, _ := cr.FieldPos(0)
		if col >= len(rec) {
			f.invalid(&RowError{File: name, Line: int64(line), Row: f.DataRows, Column: colName, Rule: ident.RuleEmpty,
				Message: fmt.Sprintf("the row has %d fields, no %s", len(rec), colName)})
			continue
		}
		id, err := ident.Normalize(k, rec[col])
		if err != nil {
			re := &RowError{File: name, Line: int64(line), Row: f.DataRows, Column: colName, Value: ident.Mask(rec[col]), Message: err.Error()}
			var ie *ident.Error
			if errors.As(err, &ie) {
				re.Rule, re.Value = ie.Rule, ie.Value
			}
			f.invalid(re)
			continue
		}
		if seen[id] {
			f.Duplicates++
			continue
		}
		seen[id] = true
		f.IDs = append(f.IDs, id)
		f.Rows = append(f.Rows, f.DataRows)
	}
	return f, nil
}

func (f *IDFile) invalid(e *RowError) {
	f.InvalidRows++
	if len(f.Invalid) < MaxRowErrors {
		f.Invalid = append(f.Invalid, e)
	}
}

// FilterRows copies the header of the CSV file r and the data rows (numbered from 1, as in IDFile)
// that keep reports true to w, field for field: with the rows of the matched identifiers, a bank's
// label file becomes the label file of the intersection.
func FilterRows(w io.Writer, r io.Reader, keep func(row int64) bool) error {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cw := csv.NewWriter(w)
	for row := int64(0); ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrIDFile, err)
		}
		if row == 0 || keep(row) {
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
