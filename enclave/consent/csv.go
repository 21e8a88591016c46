package consent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/enclave/audit"
)

// Header lists the columns of an authorizations CSV file, in the order connectors/synthetic writes
// them; a file may order them differently but must have exactly these. items holds catalog keys
// separated by ';'.
var Header = []string{"id_type", "id", "grantee", "purpose", "purpose_detail", "items", "valid_from", "valid_until", "evidence"}

// MaxRowErrors is how many invalid rows an *ImportError lists; it counts them all.
const MaxRowErrors = 100

// MaxImportSize is the largest authorizations file Import reads, in bytes.
const MaxImportSize = 512 << 20

// RowError is a row of an authorizations file that breaks a rule: where it is (the file, the line
// where the offending field starts, the data row counting the first row after the header as 1, and
// the column), which rule, and what to do. Value is the offending value, the identifier masked.
type RowError struct {
	File    string `json:"file"`
	Line    int64  `json:"line"`
	Row     int64  `json:"row"` // 0 for the header
	Column  string `json:"column,omitempty"`
	Rule    string `json:"rule"`
	Value   string `json:"value,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (e *RowError) Error() string {
	var b strings.Builder
	if e.Row == 0 {
		fmt.Fprintf(&b, "%s: line %d (header)", e.File, e.Line)
	} else {
		fmt.Fprintf(&b, "%s: line %d (data row %d)", e.File, e.Line, e.Row)
	}
	if e.Column != "" {
		fmt.Fprintf(&b, ", column %q", e.Column)
	}
	if e.Value != "" {
		fmt.Fprintf(&b, ": value %q", e.Value)
	}
	fmt.Fprintf(&b, ": %s (rule %s)", e.Message, e.Rule)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *RowError) Unwrap() error { return ErrInvalid }

// ImportError lists the invalid rows of an authorizations file (the first MaxRowErrors) and how
// many there were. Nothing of the file was recorded.
type ImportError struct {
	File   string
	Rows   []*RowError
	Total  int
	Reason string // set when the file as a whole cannot be read
}

func (e *ImportError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s: %s; nothing was imported", e.File, e.Reason)
	}
	s := fmt.Sprintf("%s: %d invalid row(s), nothing was imported", e.File, e.Total)
	for i, r := range e.Rows {
		if i == 3 {
			s += fmt.Sprintf("; and %d more", e.Total-3)
			break
		}
		s += "; " + r.Error()
	}
	return s
}

// Unwrap returns the row errors, so errors.Is(err, ErrInvalid) and errors.As(err, &rowErr) work.
func (e *ImportError) Unwrap() []error {
	out := []error{ErrInvalid}
	for _, r := range e.Rows {
		out = append(out, r)
	}
	return out
}

// Row is a valid row of an authorizations file.
type Row struct {
	Line  int64 // where the row starts
	Row   int64 // data row, from 1
	Grant Grant // checked and in canonical form
	n     *normalized
}

// ParseAuthorizations reads an authorizations file named name (the name appears in errors) and
// checks every row against cat. It returns every row, or an *ImportError listing the invalid ones.
func ParseAuthorizations(name string, r io.Reader, cat *catalog.Catalog) ([]Row, error) {
	ie := &ImportError{File: name}
	fail := func(e *RowError) {
		ie.Total++
		if len(ie.Rows) < MaxRowErrors {
			e.File = name
			ie.Rows = append(ie.Rows, e)
		}
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err == io.EOF {
		fail(&RowError{Line: 1, Rule: RuleHeader, Message: "the file is empty", Hint: "the first line names the columns: " + strings.Join(Header, ",")})
		return nil, ie
	}
	if err != nil {
		fail(csvError(err, 0))
		return nil, ie
	}
	col := map[string]int{}
	for i, h := range head {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		h = strings.TrimSpace(h)
		switch {
		case !slices.Contains(Header, h):
			fail(&RowError{Line: 1, Column: clip(h), Rule: RuleHeader, Message: "not a column of an authorizations file", Hint: "the columns are " + strings.Join(Header, ",")})
		case col[h] > 0:
			fail(&RowError{Line: 1, Column: h, Rule: RuleHeader, Message: "column named twice"})
		}
		col[h] = i + 1
	}
	for _, h := range Header {
		if col[h] == 0 {
			fail(&RowError{Line: 1, Column: h, Rule: RuleHeader, Message: "column missing", Hint: "the columns are " + strings.Join(Header, ",")})
		}
	}
	if ie.Total > 0 {
		return nil, ie
	}
	var out []Row
	for dataRow := int64(1); ; dataRow++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, csv.ErrFieldCount) { // a field count is reported below
			fail(csvError(err, dataRow))
			break // the reader cannot tell where the next record starts
		}
		line, _ := cr.FieldPos(0) // a record read without error has at least one field
		if len(rec) != len(head) {
			fail(&RowError{Line: int64(line), Row: dataRow, Rule: RuleFieldCount,
				Message: fmt.Sprintf("%d fields, the header has %d", len(rec), len(head)), Hint: "quote fields that contain commas"})
			continue
		}
		field := func(name string) string { return rec[col[name]-1] }
		g := Grant{IDType: ident.Kind(strings.TrimSpace(field("id_type"))), Identifier: field("id"), Grantee: strings.TrimSpace(field("grantee")),
			Purpose: Purpose(strings.TrimSpace(field("purpose"))), PurposeDetail: strings.TrimSpace(field("purpose_detail")),
			Items: strings.Split(field("items"), ";"), ValidFrom: strings.TrimSpace(field("valid_from")),
			ValidUntil: strings.TrimSpace(field("valid_until")), Evidence: strings.TrimSpace(field("evidence"))}
		if strings.TrimSpace(field("items")) == "" {
			g.Items = nil
		}
		n, fe := check(g, cat)
		if fe != nil {
			l, _ := cr.FieldPos(col[fe.Field] - 1)
			fail(&RowError{Line: int64(l), Row: dataRow, Column: fe.Field, Rule: fe.Rule, Value: fe.Value, Message: fe.Message, Hint: fe.Hint})
			continue
		}
		out = append(out, Row{Line: int64(line), Row: dataRow, Grant: n.Grant, n: n})
	}
	if ie.Total > 0 {
		return nil, ie
	}
	return out, nil
}

func csvError(err error, row int64) *RowError {
	var pe *csv.ParseError
	e := &RowError{Row: row, Rule: RuleCSV, Message: err.Error(), Hint: "check the quotes: a field that holds a quote is quoted and its quotes doubled"}
	if errors.As(err, &pe) {
		e.Line, e.Message = int64(pe.Line), pe.Err.Error()
	}
	return e
}

// ImportResult says what Import recorded.
type ImportResult struct {
	File string `json:"file"`
	// SHA256 is the digest of the file's bytes.
	SHA256 string `json:"sha256"`
	// Rows counts the data rows; Added the authorizations recorded; Unchanged the rows that repeat
	// an authorization recorded before with the same terms.
	Rows      int `json:"rows"`
	Added     int `json:"added"`
	Unchanged int `json:"unchanged"`
	// FirstID and LastID bound the ids of the added authorizations (0 when none was added).
	FirstID int64 `json:"first_id"`
	LastID  int64 `json:"last_id"`
	// AuditSeq is the seq of the audit record of the import.
	AuditSeq int64 `json:"audit_seq"`
}

// Import records every authorization of a CSV file, all or nothing: when any row is invalid, or
// conflicts with an authorization recorded with other terms, nothing is recorded and the error is an
// *ImportError naming each row. Rows repeating an authorization with the same terms are counted as
// Unchanged, so importing a file twice adds nothing the second time. name is how errors and the audit
// log name the file.
func (r *Registry) Import(ctx context.Context, actor, name string, rd io.Reader) (*ImportResult, error) {
	data, err := io.ReadAll(io.LimitReader(rd, MaxImportSize+1))
	if err != nil {
		return nil, fmt.Errorf("consent: import %s: %w", name, err)
	}
	if len(data) > MaxImportSize {
		return nil, &ImportError{File: name, Reason: fmt.Sprintf("larger than %d MiB; split it", MaxImportSize>>20)}
	}
	rows, err := ParseAuthorizations(name, bytes.NewReader(data), r.cat)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	res := &ImportResult{File: name, SHA256: hex.EncodeToString(sum[:]), Rows: len(rows)}
	at := r.now().UTC()
	base := redact(filepath.Base(name))
	err = r.db.Tx(ctx, func(tx *sql.Tx) error {
		*res = ImportResult{File: res.File, SHA256: res.SHA256, Rows: res.Rows}
		ie := &ImportError{File: name}
		byGrantee, byPurpose := map[string]int{}, map[string]int{}
		evidence := sha256.New()
		for _, row := range rows {
			id, existing, err := insert(ctx, tx, row.n, at, actor, fmt.Sprintf("import %s data row %d", base, row.Row))
			var fe *FieldError
			if errors.As(err, &fe) {
				ie.Total++
				if len(ie.Rows) < MaxRowErrors {
					ie.Rows = append(ie.Rows, &RowError{File: name, Line: row.Line, Row: row.Row, Column: fe.Field, Rule: fe.Rule,
						Value: fe.Value, Message: fe.Message, Hint: fe.Hint})
				}
				continue
			}
			if err != nil {
				return err
			}
			if existing {
				res.Unchanged++
				continue
			}
			res.Added++
			if res.FirstID == 0 {
				res.FirstID = id
			}
			res.LastID = id
			byGrantee[row.n.Grantee]++
			byPurpose[string(row.n.Purpose)]++
			evidence.Write([]byte(row.n.evidenceDigest))
		}
		if ie.Total > 0 {
			return ie
		}
		rec, err := r.log.AppendTx(ctx, tx, audit.Event{Kind: audit.KindAuthorizationGrant, Actor: actor, Subject: "import/" + base,
			Payload: map[string]any{"source": "import", "file": base, "file_sha256": res.SHA256, "rows": res.Rows,
				"added": res.Added, "unchanged": res.Unchanged, "first_id": res.FirstID, "last_id": res.LastID,
				"by_grantee": byGrantee, "by_purpose": byPurpose, "evidence_set_sha256": hex.EncodeToString(evidence.Sum(nil))}})
		res.AuditSeq = rec.Seq
		return err
	})
	var ie *ImportError
	if errors.As(err, &ie) {
		return nil, ie
	}
	if err != nil {
		return nil, fmt.Errorf("consent: import %s: %w", name, err)
	}
	return res, nil
}
