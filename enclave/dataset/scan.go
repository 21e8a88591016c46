package dataset

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"insitu/connectors"
)

// ScanOptions tune Scan. The zero value returns every column in batches of DefaultBatchRows within
// DefaultMemoryBudget.
type ScanOptions struct {
	// BatchRows is the number of rows per record; 0 means DefaultBatchRows.
	BatchRows int
	// MemoryBudget bounds, roughly, the bytes of column values held at once; 0 means
	// DefaultMemoryBudget. A dataset whose values exceed it is read in several passes.
	MemoryBudget int64
	// Columns, when not empty, selects the columns to return (subject_id is always first).
	Columns []string
}

const (
	// DefaultBatchRows is the default number of rows per record Scan returns.
	DefaultBatchRows = 16384
	// DefaultMemoryBudget is the default bound on the column values a Scan holds at once.
	DefaultMemoryBudget = 256 << 20
)

// Scanner streams the assembled table of a dataset version: one row per subject (the outer join of
// the parts on subject_id), with the union of the parts' columns, nulls where a part lacks the
// subject. Rows come in the order subjects first appear in the parts, in part order.
//
// Scan first reads every part once to build an in-memory index of subjects (memory grows with the
// number of distinct subjects), filling the first window of rows as it goes; a dataset whose values
// do not fit ScanOptions.MemoryBudget is then re-read once per further window. Every part's hashes
// are checked against the manifest before any row read from it is returned.
type Scanner struct {
	s        *Store
	m        *Manifest
	schema   *arrow.Schema
	mem      memory.Allocator
	batch    int
	window   int
	index    map[string]int32
	subjects []string
	// colMap[p][j] is the output column (after subject_id) of part p's column j+1, or -1.
	colMap [][]int
	bufs   []columnBuffer
	winLo  int // the window holds rows winLo .. winLo+window
	pos    int // next row to return
	pos32  []int32
}

// Scan opens a dataset version (the latest when version is 0) for reading as one subject-keyed
// table. It reads every part once before returning; the caller must Close the Scanner.
func (s *Store) Scan(ctx context.Context, name string, version int, opts ScanOptions) (*Scanner, error) {
	m, err := s.Manifest(ctx, name, version)
	if err != nil {
		return nil, err
	}
	sc, err := s.newScanner(ctx, m, opts)
	if err != nil {
		return nil, &Error{Dataset: m.Name, Version: m.Version, Op: "scan", Err: err}
	}
	return sc, nil
}

func (s *Store) newScanner(ctx context.Context, m *Manifest, opts ScanOptions) (*Scanner, error) {
	sc := &Scanner{s: s, m: m, mem: memory.DefaultAllocator, batch: opts.BatchRows}
	if sc.batch <= 0 {
		sc.batch = DefaultBatchRows
	}
	want := map[string]bool{}
	for _, c := range opts.Columns {
		if c == connectors.SubjectColumnName {
			continue
		}
		if _, ok := m.Column(c); !ok {
			return nil, fmt.Errorf("%w: no column %q in the dataset", ErrNotFound, c)
		}
		want[c] = true
	}
	// Output columns in manifest order; part schemas are read from the parts themselves.
	var outNames []string
	for _, c := range m.Columns[1:] {
		if len(want) == 0 || want[c.Name] {
			outNames = append(outNames, c.Name)
		}
	}
	rowBytes := 16 + 24 // the subject
	for _, name := range outNames {
		c, _ := m.Column(name)
		switch c.Type {
		case "utf8":
			rowBytes += 41
		case "bool":
			rowBytes += 2
		default:
			rowBytes += 9
		}
	}
	budget := opts.MemoryBudget
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	sc.window = int(min(max(budget/int64(rowBytes), int64(sc.batch)), max(m.Subjects, 1), 1<<31-1))
	hint := min(m.Subjects, 1<<24)
	sc.index = make(map[string]int32, hint)
	sc.subjects = make([]string, 0, hint)
	if err := sc.firstPass(ctx, outNames); err != nil {
		return nil, err
	}
	return sc, nil
}

// firstPass reads every part, building the subject index and filling the first window.
func (sc *Scanner) firstPass(ctx context.Context, outNames []string) error {
	m := sc.m
	outIdx := map[string]int{}
	for i, n := range outNames {
		outIdx[n] = i
	}
	fields := make([]arrow.Field, 1+len(outNames))
	sc.colMap = make([][]int, len(m.Parts))
	sc.bufs = make([]columnBuffer, len(outNames))
	for p, part := range m.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		pr, err := sc.s.openPart(ctx, m, part)
		if err != nil {
			return err
		}
		schema := pr.ipc.Schema()
		if got, want := schemaNames(schema), append([]string{connectors.SubjectColumnName}, part.Columns...); !slices.Equal(got, want) {
			pr.close()
			return fmt.Errorf("%s: %w: columns %v, the manifest says %v", part.File, ErrCorrupt, got, want)
		}
		if p == 0 {
			fields[0] = schema.Field(0)
		}
		sc.colMap[p] = make([]int, len(part.Columns))
		for j := range part.Columns {
			f := schema.Field(j + 1)
			o, ok := outIdx[f.Name]
			if !ok {
				sc.colMap[p][j] = -1
				continue
			}
			sc.colMap[p][j] = o
			fields[o+1] = f
			b, err := newColumnBuffer(f.Type)
			if err != nil {
				pr.close()
				return fmt.Errorf("%s: %w: column %q: %w", part.File, ErrCorrupt, f.Name, err)
			}
			b.resize(sc.window)
			sc.bufs[o] = b
		}
		err = sc.readPart(pr, p, true)
		if cerr := pr.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if int64(len(sc.subjects)) != m.Subjects {
		return fmt.Errorf("%w: %d distinct subjects, the manifest says %d", ErrCorrupt, len(sc.subjects), m.Subjects)
	}
	md := arrow.NewMetadata([]string{"insitu.dataset", "insitu.version", "insitu.class"},
		[]string{m.Name, fmt.Sprint(m.Version), m.Class})
	sc.schema = arrow.NewSchema(fields, &md)
	return nil
}

func schemaNames(s *arrow.Schema) []string {
	out := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		out[i] = f.Name
	}
	return out
}

// readPart reads one part to its end, placing the rows that fall in the current window. In the first
// pass it also assigns row numbers to new subjects and checks the part's counts.
func (sc *Scanner) readPart(pr *partReader, p int, first bool) error {
	part := sc.m.Parts[p]
	var rows int64
	lo, hi := sc.winLo, sc.winLo+sc.window
	for {
		rec, err := pr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		subj, ok := rec.Column(0).(*array.String)
		if !ok {
			return fmt.Errorf("%s: %w: subject_id is not utf8", part.File, ErrCorrupt)
		}
		n := int(rec.NumRows())
		sc.pos32 = slices.Grow(sc.pos32[:0], n)[:n]
		for i := range n {
			v := subj.Value(i)
			g, seen := sc.index[v]
			if !seen {
				if !first {
					return fmt.Errorf("%s: %w: subject not seen in the first pass", part.File, ErrCorrupt)
				}
				v = strings.Clone(v)
				g = int32(len(sc.subjects))
				sc.index[v] = g
				sc.subjects = append(sc.subjects, v)
			}
			if int(g) >= lo && int(g) < hi {
				sc.pos32[i] = g - int32(lo)
			} else {
				sc.pos32[i] = -1
			}
		}
		for j, o := range sc.colMap[p] {
			if o < 0 {
				continue
			}
			if err := sc.bufs[o].place(rec.Column(j+1), sc.pos32); err != nil {
				return fmt.Errorf("%s: %w", part.File, err)
			}
		}
		rows += int64(n)
	}
	if err := pr.finish(); err != nil {
		return err
	}
	if rows != part.Rows {
		return fmt.Errorf("%s: %w: %d rows, the manifest says %d", part.File, ErrCorrupt, rows, part.Rows)
	}
	return nil
}

// Schema returns the schema of the records Next returns: subject_id, then the selected columns with
// the connectors' field metadata, and the dataset's name, version and class as schema metadata.
func (sc *Scanner) Schema() *arrow.Schema { return sc.schema }

// Manifest returns the manifest of the version being scanned.
func (sc *Scanner) Manifest() *Manifest { return sc.m }

// Subjects returns the number of rows the scan returns in all.
func (sc *Scanner) Subjects() int { return len(sc.subjects) }

// Next returns the next record of at most BatchRows rows, or io.EOF after the last. The caller owns
// the record and must Release it.
func (sc *Scanner) Next(ctx context.Context) (arrow.Record, error) {
	if sc.pos >= len(sc.subjects) {
		return nil, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if sc.pos >= sc.winLo+sc.window {
		if err := sc.loadWindow(ctx, sc.pos); err != nil {
			return nil, &Error{Dataset: sc.m.Name, Version: sc.m.Version, Op: "scan", Err: err}
		}
	}
	lo := sc.pos
	hi := min(lo+sc.batch, len(sc.subjects), sc.winLo+sc.window)
	cols := make([]arrow.Array, 1+len(sc.bufs))
	sb := array.NewStringBuilder(sc.mem)
	sb.AppendValues(sc.subjects[lo:hi], nil)
	cols[0] = sb.NewArray()
	sb.Release()
	for o, b := range sc.bufs {
		cols[o+1] = b.build(sc.mem, lo-sc.winLo, hi-sc.winLo)
	}
	rec := array.NewRecord(sc.schema, cols, int64(hi-lo))
	for _, c := range cols {
		c.Release()
	}
	sc.pos = hi
	return rec, nil
}

// loadWindow re-reads the parts that have selected columns, keeping rows lo .. lo+window.
func (sc *Scanner) loadWindow(ctx context.Context, lo int) error {
	sc.winLo = lo
	for _, b := range sc.bufs {
		b.resize(sc.window)
	}
	for p, part := range sc.m.Parts {
		if !slices.ContainsFunc(sc.colMap[p], func(o int) bool { return o >= 0 }) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		pr, err := sc.s.openPart(ctx, sc.m, part)
		if err != nil {
			return err
		}
		err = sc.readPart(pr, p, false)
		if cerr := pr.close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Close releases the scanner's memory.
func (sc *Scanner) Close() error {
	sc.index, sc.subjects, sc.bufs = nil, nil, nil
	return nil
}
