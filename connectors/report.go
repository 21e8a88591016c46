package connectors

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"insitu/connectors/catalog"
)

// Report is the data-quality report of one ingest: one SourceReport per source, and the totals. Its
// JSON field names are stable.
type Report struct {
	Dataset      string          `json:"dataset,omitempty"`
	MaxRejects   int64           `json:"max_rejects"`   // the ingest's --max-rejects
	RowsRead     int64           `json:"rows_read"`     // over all sources
	RowsAccepted int64           `json:"rows_accepted"` // over all sources
	RowsRejected int64           `json:"rows_rejected"` // over all sources
	Sources      []*SourceReport `json:"sources"`
}

// Add appends a source's report and adds its rows to the totals.
func (r *Report) Add(s *SourceReport) {
	r.Sources = append(r.Sources, s)
	r.RowsRead += s.RowsRead
	r.RowsAccepted += s.RowsAccepted
	r.RowsRejected += s.RowsRejected
}

// SourceReport is the data-quality report of one source. Counts are over the rows read; the list of
// rejected rows is in data-row order.
type SourceReport struct {
	Source       string `json:"source"`
	Provider     string `json:"provider"`
	ProviderName string `json:"provider_name,omitempty"`
	Format       string `json:"format"`
	Path         string `json:"path,omitempty"`   // the file read; empty for postgres
	SHA256       string `json:"sha256,omitempty"` // hex SHA-256 of the file's bytes as stored (compressed if gzip)
	Bytes        int64  `json:"bytes,omitempty"`  // the file's size
	SubjectKind  string `json:"subject_kind"`
	// Complete is true once the source was read to its end; the counts are partial before.
	Complete     bool  `json:"complete"`
	RowsRead     int64 `json:"rows_read"`
	RowsAccepted int64 `json:"rows_accepted"`
	RowsRejected int64 `json:"rows_rejected"`
	// InvalidIdentifiers counts rows whose subject identifier is missing or invalid.
	InvalidIdentifiers int64 `json:"invalid_identifiers"`
	// DuplicateSubjects counts rows whose (valid) subject appeared in an earlier row.
	DuplicateSubjects int64         `json:"duplicate_subjects"`
	Fields            []FieldReport `json:"fields"`  // subject_id first, then the mapped fields in mapping order
	Rejects           []*RowError   `json:"rejects"` // every row left out, in order
}

// FieldReport is the quality of one column over the rows read (rows broken as a whole, with a wrong
// number of CSV fields, are left out of Rows). A value is null when it is missing (Arrow or SQL null,
// or one of a CSV source's null strings); valid when it passes its field's rules; rows are judged
// value by value, so a value counts here even when another value of its row got the row rejected.
type FieldReport struct {
	Column       string `json:"column"`        // output column, e.g. "tax_arrears_history.arrears_amount_24m"
	SourceColumn string `json:"source_column"` // the source's column
	Type         string `json:"type"`
	Unit         string `json:"unit,omitempty"`
	Rows         int64  `json:"rows"`
	Nulls        int64  `json:"nulls"`
	Valid        int64  `json:"valid"`   // valid non-null values
	Invalid      int64  `json:"invalid"` // non-null values that break a rule
	// Completeness is (Rows-Nulls)/Rows; 0 when Rows is 0.
	Completeness float64 `json:"completeness"`
	// Validity is Valid/(Rows-Nulls); 0 when every value is null.
	Validity float64 `json:"validity"`
	// Distinct is the number of distinct valid values: exact up to 2048 (of 64-bit value hashes), then
	// approximate (HyperLogLog, precision 14, about 1 % error). For subject_id it is the exact number
	// of distinct valid subjects.
	Distinct uint64 `json:"distinct"`
	// Min and Max are the smallest and largest valid values of int and float fields (after scale).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// MinDate and MaxDate are the earliest and latest valid values of date fields, as YYYY-MM-DD.
	MinDate string `json:"min_date,omitempty"`
	MaxDate string `json:"max_date,omitempty"`
}

type fieldStats struct {
	column, source string
	typ            catalog.FieldType
	unit           string

	rows, nulls, valid, invalid int64
	min, max                    float64
	hasMinMax                   bool
}

func newFieldStats(column, source string, t catalog.FieldType, unit string) *fieldStats {
	return &fieldStats{column: column, source: source, typ: t, unit: unit}
}

func (s *fieldStats) add(c *colBuf, rows int64) {
	s.rows += rows
	s.nulls += c.nulls
	s.valid += c.valid
	s.invalid += c.invalid
	if c.hasMinMax {
		if !s.hasMinMax {
			s.min, s.max, s.hasMinMax = c.min, c.max, true
		} else {
			s.min = math.Min(s.min, c.min)
			s.max = math.Max(s.max, c.max)
		}
	}
}

func (s *fieldStats) report() FieldReport {
	f := FieldReport{Column: s.column, SourceColumn: s.source, Type: string(s.typ), Unit: s.unit,
		Rows: s.rows, Nulls: s.nulls, Valid: s.valid, Invalid: s.invalid}
	if s.rows > 0 {
		f.Completeness = float64(s.rows-s.nulls) / float64(s.rows)
	}
	if nn := s.rows - s.nulls; nn > 0 {
		f.Validity = float64(s.valid) / float64(nn)
	}
	if s.hasMinMax {
		if s.typ == catalog.TypeDate {
			f.MinDate, f.MaxDate = formatDays(s.min), formatDays(s.max)
		} else {
			lo, hi := s.min, s.max
			f.Min, f.Max = &lo, &hi
		}
	}
	return f
}

func formatDays(d float64) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02")
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as readable, aligned tables: the totals, then each source.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Dataset != "" {
		fmt.Fprintf(&b, "dataset %s: ", r.Dataset)
	}
	fmt.Fprintf(&b, "%d sources, %d rows read, %d accepted, %d rejected (--max-rejects %d)\n",
		len(r.Sources), r.RowsRead, r.RowsAccepted, r.RowsRejected, r.MaxRejects)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, s := range r.Sources {
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
		if err := s.WriteText(w); err != nil {
			return err
		}
	}
	return nil
}

// WriteText writes the source's report as a readable, aligned table.
func (s *SourceReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s (%s, provider %s", s.Source, s.Format, s.Provider)
	if s.ProviderName != "" {
		fmt.Fprintf(&b, " %s", s.ProviderName)
	}
	b.WriteString(")\n")
	if s.Path != "" {
		fmt.Fprintf(&b, "  file      %s (%d bytes, sha256 %s)\n", s.Path, s.Bytes, s.SHA256)
	}
	fmt.Fprintf(&b, "  rows      %d read, %d accepted, %d rejected\n", s.RowsRead, s.RowsAccepted, s.RowsRejected)
	fmt.Fprintf(&b, "  subjects  %s ids: %d invalid, %d duplicate\n", s.SubjectKind, s.InvalidIdentifiers, s.DuplicateSubjects)
	if !s.Complete {
		b.WriteString("  (incomplete: the source was not read to its end)\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  field\tsource column\ttype\tcomplete\tvalid\tnulls\tinvalid\tdistinct\tmin\tmax")
	for _, f := range s.Fields {
		lo, hi := "", ""
		switch {
		case f.Min != nil:
			lo, hi = formatNum(*f.Min), formatNum(*f.Max)
		case f.MinDate != "":
			lo, hi = f.MinDate, f.MaxDate
		}
		typ := f.Type
		if f.Unit != "" {
			typ += " (" + f.Unit + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", f.Column, f.SourceColumn, typ,
			percent(f.Completeness, f.Rows > 0), percent(f.Validity, f.Rows > f.Nulls), f.Nulls, f.Invalid, f.Distinct, lo, hi)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	out := strings.Join(lines, "\n")
	if len(s.Rejects) > 0 {
		out += fmt.Sprintf("\n  rejected rows (%d):\n", len(s.Rejects))
		for _, e := range s.Rejects {
			out += "    " + e.Error() + "\n"
		}
	}
	_, err := io.WriteString(w, out)
	return err
}

func percent(v float64, defined bool) string {
	if !defined {
		return "-"
	}
	return strconv.FormatFloat(100*v, 'f', 1, 64) + "%"
}

func formatNum(v float64) string {
	if math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
