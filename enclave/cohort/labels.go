package cohort

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"insitu/connectors/ident"
)

// Labels are a bank's outcome labels keyed by the canonical subject identifier.
type Labels struct {
	Kind ident.Kind
	y    map[string]float64
	obs  map[string]time.Time
}

// Len is the number of labelled subjects.
func (l *Labels) Len() int { return len(l.y) }

// Get returns the label of a subject.
func (l *Labels) Get(id string) (float64, bool) {
	y, ok := l.y[id]
	return y, ok
}

// Positives counts the subjects labelled 1.
func (l *Labels) Positives() int {
	n := 0
	for _, y := range l.y {
		if y == 1 {
			n++
		}
	}
	return n
}

// ErrLabels is wrapped by every *LabelError.
var ErrLabels = errors.New("invalid label file")

// LabelError names the place in a label file that broke a rule.
type LabelError struct {
	File   string
	Line   int // line in the file, from 1
	Row    int // data row, from 1 (the first row after the header); 0 for the header
	Column string
	Rule   string
	Err    error
}

func (e *LabelError) Error() string {
	where := e.File
	if e.Line > 0 {
		where += fmt.Sprintf(": line %d", e.Line)
		if e.Row > 0 {
			where += fmt.Sprintf(" (data row %d)", e.Row)
		}
	}
	if e.Column != "" {
		where += fmt.Sprintf(", column %q", e.Column)
	}
	return fmt.Sprintf("%s: %v (rule %s)", where, e.Err, e.Rule)
}

// Unwrap returns ErrLabels and the cause.
func (e *LabelError) Unwrap() []error { return []error{ErrLabels, e.Err} }

// ReadLabels reads a label file: CSV with a header naming the columns "uscc" (or "resident_id" or
// "id", giving the identifier kind), "label" (0 or 1) and optionally "observation_date"
// (YYYY-MM-DD). Every identifier is validated; duplicates and other label values are errors.
func ReadLabels(path string) (*Labels, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	return ParseLabels(f, path)
}

// ParseLabels reads a label file from r; name is used in errors.
func ParseLabels(r io.Reader, name string) (*Labels, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty file, want a header uscc,label[,observation_date]")
		}
		return nil, &LabelError{File: name, Line: 1, Rule: "header", Err: err}
	}
	idCol, labelCol, obsCol := -1, -1, -1
	l := &Labels{y: map[string]float64{}, obs: map[string]time.Time{}}
	for i, h := range header {
		switch h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")); h {
		case "uscc", "resident_id", "id":
			if idCol >= 0 {
				return nil, &LabelError{File: name, Line: 1, Column: h, Rule: "header", Err: errors.New("more than one identifier column")}
			}
			idCol = i
			l.Kind = map[string]ident.Kind{"uscc": ident.KindUSCC, "resident_id": ident.KindResidentID, "id": ident.KindOpaque}[h]
		case "label":
			labelCol = i
		case "observation_date":
			obsCol = i
		}
	}
	if idCol < 0 || labelCol < 0 {
		return nil, &LabelError{File: name, Line: 1, Rule: "header",
			Err: fmt.Errorf("header %q lacks an identifier column (uscc, resident_id or id) or label", redactCells(header))}
	}
	// Errors name the columns as the header spells them, without a byte-order mark or spaces.
	colName := func(i int) string { return strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")) }
	idName, obsName := colName(idCol), ""
	if obsCol >= 0 {
		obsName = colName(obsCol)
	}
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos is not valid after a parse error; the error knows where the record starts.
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			return nil, &LabelError{File: name, Line: line, Row: row, Rule: "csv", Err: err}
		}
		line, _ := cr.FieldPos(0)
		id, err := ident.Normalize(l.Kind, rec[idCol])
		if err != nil {
			return nil, &LabelError{File: name, Line: line, Row: row, Column: idName, Rule: "identifier", Err: err}
		}
		if _, dup := l.y[id]; dup {
			return nil, &LabelError{File: name, Line: line, Row: row, Column: idName, Rule: "unique-subject",
				Err: fmt.Errorf("subject %s is labelled twice", maskFor(l.Kind, id))}
		}
		var y float64
		switch strings.TrimSpace(rec[labelCol]) {
		case "0":
		case "1":
			y = 1
		default:
			return nil, &LabelError{File: name, Line: line, Row: row, Column: "label", Rule: "binary-label",
				Err: fmt.Errorf("label %q is not 0 or 1", redact(rec[labelCol]))}
		}
		l.y[id] = y
		if obsCol >= 0 && strings.TrimSpace(rec[obsCol]) != "" {
			t, err := time.Parse(time.DateOnly, strings.TrimSpace(rec[obsCol]))
			if err != nil {
				return nil, &LabelError{File: name, Line: line, Row: row, Column: obsName, Rule: "date",
					Err: fmt.Errorf("%q is not a date YYYY-MM-DD", redact(rec[obsCol]))}
			}
			l.obs[id] = t
		}
	}
	if len(l.y) == 0 {
		return nil, &LabelError{File: name, Rule: "non-empty", Err: errors.New("no labelled subjects")}
	}
	return l, nil
}

// redact masks a cell quoted in an error when it holds a run of 15 or more digits, since it may be a
// resident id (15 or 18 characters): a label file without a header, or with its columns swapped,
// puts resident ids where a header name, label or date belongs.
func redact(s string) string {
	run := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if run++; run >= 15 {
				return ident.Mask(s)
			}
		} else {
			run = 0
		}
	}
	return s
}

// redactCells joins a header for an error, each cell through redact.
func redactCells(cells []string) string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = redact(c)
	}
	return strings.Join(out, ",")
}

func maskFor(k ident.Kind, id string) string {
	if k.Personal() {
		return ident.Mask(id)
	}
	return id
}

// Subset returns the labels of the subjects keep accepts.
func (l *Labels) Subset(keep func(id string) bool) *Labels {
	out := &Labels{Kind: l.Kind, y: map[string]float64{}, obs: map[string]time.Time{}}
	for id, y := range l.y {
		if keep(id) {
			out.y[id] = y
			if t, ok := l.obs[id]; ok {
				out.obs[id] = t
			}
		}
	}
	return out
}
