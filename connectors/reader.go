package connectors

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
)

// Reader streams one source as validated Arrow records in the layout of the package documentation.
type Reader interface {
	// Schema is the schema of every record Next returns.
	Schema() *arrow.Schema
	// Next returns the next record of at most Options.BatchRows rows, or io.EOF after the last one.
	// The caller releases each record. An invalid row beyond the reject budget ends the read with a
	// *RowError; an unreadable source with a *SourceError. Errors are sticky.
	Next(ctx context.Context) (arrow.Record, error)
	// Report returns the source's data-quality report so far; it is complete once Next returned
	// io.EOF (Complete is then true). Not safe to call concurrently with Next.
	Report() *SourceReport
	// Close stops reading and releases the source. It is safe to call more than once.
	Close() error
}

// Options tune Open.
type Options struct {
	// BatchRows is the most rows per record. Default 8192.
	BatchRows int
	// Allocator allocates the records' memory. Default memory.DefaultAllocator.
	Allocator memory.Allocator
	// Rejects is the reject budget of the whole ingest (--max-rejects), shared by all its sources.
	// Nil means a budget of 0: the first invalid row fails the read.
	Rejects *RejectBudget
	// Catalog resolves the mapping's catalog fields. Default catalog.Default().
	Catalog *catalog.Catalog
	// Path, when set, replaces the mapping's path (the CLI's --input); it is used as given, not
	// relative to the mapping file.
	Path string
	// Workers is the number of goroutines converting text to typed columns. Default GOMAXPROCS, at
	// most 8. Output order never depends on it.
	Workers int
}

// DefaultBatchRows is the default of Options.BatchRows.
const DefaultBatchRows = 8192

// rawChunk is a run of source rows, before conversion.
type rawChunk struct {
	first int64 // data row number of the chunk's first row
	n     int
	// CSV sources
	recs  [][]string
	lines []int64     // line of each record's first field
	bad   []*RowError // rows broken as a whole (wrong field count); nil when none
	// typed sources: one getter per needed column (subject first)
	get     []func(int) cell
	release func()
}

// convChunk is a converted chunk, in row order.
type convChunk struct {
	raw      *rawChunk
	subj     *colBuf // canonical subject ids (s), ok = valid
	subjHash [][16]byte
	cols     []*colBuf
	rowErr   []*RowError
	broken   []bool // rows that were not converted (wrong field count)
	err      error  // the source failed after the chunk's rows
}

// producer reads a source in raw chunks.
type producer interface {
	// next returns the next chunk (possibly empty) and io.EOF at the end, or another error after the
	// chunk's rows.
	next(ctx context.Context, rows int) (*rawChunk, error)
	// finish fills in the report fields known at the end (file hash and size).
	finish(rep *SourceReport)
	close() error
}

type reader struct {
	pl     *plan
	schema *arrow.Schema
	mem    memory.Allocator
	budget *RejectBudget
	file   string // the file as named in errors; empty for postgres
	batch  int
	prod   producer

	// CSV only: record positions of the needed columns (subject first) and the null strings.
	csvIdx    []int
	nulls     []string // the null strings other than blank ones
	nullEmpty bool     // empty and blank values are null

	seed1, seed2 maphash.Seed

	cancel  context.CancelFunc
	pending chan chan *convChunk
	free    chan *convChunk // buffers of absorbed chunks, for reuse
	runErr  error           // why the reading goroutine stopped early; read after pending is closed
	wg      sync.WaitGroup
	closed  bool

	seen     map[[16]byte]int64
	stats    []*fieldStats // subject first
	wstats   []*workerStats
	keep     []int // scratch: the accepted rows of a chunk
	rep      SourceReport
	builders []array.Builder
	err      error
	done     bool
}

var _ Reader = (*reader)(nil)

// Open checks the mapping and starts streaming its source. Errors opening the source (a missing file
// or column, a bad header, a failed connection) are *SourceError; mapping errors *MappingError.
// ctx governs the whole read: cancelling it stops the reader.
func Open(ctx context.Context, m *Mapping, opts Options) (Reader, error) {
	cat := opts.Catalog
	if cat == nil {
		cat = catalog.Default()
	}
	pl, err := m.plan(cat)
	if err != nil {
		return nil, err
	}
	r := &reader{pl: pl, schema: pl.schema(), mem: opts.Allocator, budget: opts.Rejects, batch: opts.BatchRows,
		seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), seen: map[[16]byte]int64{}}
	if r.mem == nil {
		r.mem = memory.DefaultAllocator
	}
	if r.budget == nil {
		r.budget = NewRejectBudget(0)
	}
	if r.batch <= 0 {
		r.batch = DefaultBatchRows
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	path := m.ResolvedPath()
	if opts.Path != "" {
		path = opts.Path
	}
	r.file = path
	r.rep = SourceReport{Source: m.Source, Provider: m.Provider, ProviderName: m.ProviderName, Format: m.Format,
		Path: path, SubjectKind: string(pl.subjectKind), Rejects: []*RowError{}}
	if m.Format == FormatPostgres {
		r.file = ""
		r.rep.Path = ""
	}

	switch m.Format {
	case FormatCSV:
		r.prod, err = openCSV(r, path)
	case FormatParquet:
		r.prod, err = openParquet(ctx, r, path)
	case FormatArrow:
		r.prod, err = openArrowFile(r, path)
	case FormatArrowStream:
		r.prod, err = openArrowStream(r, path)
	case FormatPostgres:
		r.prod, err = openPostgres(ctx, r)
	}
	if err != nil {
		return nil, err
	}

	r.stats = make([]*fieldStats, 1+len(pl.fields))
	r.stats[0] = newFieldStats(SubjectColumnName, m.Subject.Column, catalog.TypeID, "")
	for i, fs := range pl.fields {
		r.stats[i+1] = newFieldStats(fs.name, fs.column, fs.field.Type, fs.field.Unit)
	}
	r.builders = make([]array.Builder, len(r.schema.Fields()))
	for i, f := range r.schema.Fields() {
		r.builders[i] = array.NewBuilder(r.mem, f.Type)
	}

	r.wstats = make([]*workerStats, workers)
	for w := range r.wstats {
		r.wstats[w] = &workerStats{cols: make([]distinct, len(pl.fields))}
	}

	pctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	r.pending = make(chan chan *convChunk, workers+1)
	r.free = make(chan *convChunk, workers+2)
	r.wg.Add(1)
	go r.run(pctx, workers)
	return r, nil
}

func (r *reader) sourceErr(line int64, err error, hint string) *SourceError {
	f := r.file
	if f == "" {
		f = "postgres query"
	}
	return &SourceError{Source: r.pl.m.Source, File: f, Line: line, Err: err, Hint: hint}
}

type job struct {
	raw *rawChunk
	res chan *convChunk
}

// run reads raw chunks in order, hands them to the workers and queues their results in order.
func (r *reader) run(ctx context.Context, workers int) {
	defer r.wg.Done()
	defer close(r.pending)
	work := make(chan job)
	defer close(work)
	for w := range workers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for j := range work {
				cc := r.convert(j.raw)
				r.wstats[w].addHashes(cc.cols)
				j.res <- cc
			}
		}()
	}
	for {
		raw, err := r.prod.next(ctx, r.batch)
		if raw != nil && raw.n > 0 {
			res := make(chan *convChunk, 1)
			select {
			case r.pending <- res:
			case <-ctx.Done():
				raw.free()
				r.runErr = ctx.Err()
				return
			}
			select {
			case work <- job{raw, res}:
			case <-ctx.Done():
				raw.free()
				res <- &convChunk{err: ctx.Err()}
				r.runErr = ctx.Err()
				return
			}
		} else if raw != nil {
			raw.free()
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			res := make(chan *convChunk, 1)
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			res <- &convChunk{err: err}
			select {
			case r.pending <- res:
			case <-ctx.Done():
				r.runErr = err
			}
			return
		}
	}
}

func (c *rawChunk) free() {
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

func (r *reader) Schema() *arrow.Schema { return r.schema }

func (r *reader) Next(ctx context.Context) (arrow.Record, error) {
	for {
		if r.err != nil {
			return nil, r.err
		}
		if r.done {
			return nil, io.EOF
		}
		if r.closed {
			return nil, errors.New("connectors: Next after Close")
		}
		var res chan *convChunk
		var ok bool
		select {
		case res, ok = <-r.pending:
		case <-ctx.Done():
			r.err = ctx.Err()
			return nil, r.err
		}
		if !ok && r.runErr != nil {
			// The reading goroutine stopped early; its channel close orders this read after its write.
			r.err = r.runErr
			return nil, r.err
		}
		if !ok {
			r.done = true
			r.prod.finish(&r.rep)
			r.rep.Complete = true
			return nil, io.EOF
		}
		var cc *convChunk
		select {
		case cc = <-res:
		case <-ctx.Done():
			r.err = ctx.Err()
			return nil, r.err
		}
		if cc.err != nil && cc.raw == nil {
			r.err = cc.err
			return nil, r.err
		}
		rec, err := r.absorb(cc)
		if err != nil {
			r.err = err
			return nil, err
		}
		if rec != nil {
			return rec, nil
		}
	}
}

func (r *reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	// Let the reading goroutine see the cancellation and finish; converted chunks left in the queue
	// hold only Go memory.
	for range r.pending {
	}
	r.wg.Wait()
	for _, b := range r.builders {
		b.Release()
	}
	return r.prod.close()
}

// convert turns a raw chunk into typed columns, recording each row's first error. It runs on a
// worker and touches no reader state but read-only configuration.
func (r *reader) convert(raw *rawChunk) *convChunk {
	n := raw.n
	pl := r.pl
	cc := r.newConv(raw)
	defer raw.free()
	var h maphash.Hash
	for i := 0; i < n; i++ {
		if raw.bad != nil && raw.bad[i] != nil {
			if cc.broken == nil {
				cc.broken = make([]bool, n)
			}
			cc.broken[i] = true
			cc.rowErr[i] = raw.bad[i]
			continue
		}
		var rec []string
		var subjRaw string
		if raw.recs != nil {
			rec = raw.recs[i]
			subjRaw = rec[r.csvIdx[0]]
			if r.isNull(subjRaw) {
				subjRaw = ""
			}
		} else {
			subjRaw = raw.get[0](i).text()
		}
		row := raw.first + int64(i)
		canon, err := ident.Normalize(pl.subjectKind, subjRaw)
		switch {
		case err == nil:
			cc.subj.s[i] = canon
			cc.subj.ok[i] = true
			cc.subj.valid++
			h.SetSeed(r.seed1)
			h.WriteString(canon)
			a := h.Sum64()
			h.SetSeed(r.seed2)
			h.WriteString(canon)
			b := h.Sum64()
			for k := 0; k < 8; k++ {
				cc.subjHash[i][k] = byte(a >> (8 * k))
				cc.subjHash[i][8+k] = byte(b >> (8 * k))
			}
		default:
			if subjRaw == "" {
				cc.subj.nulls++
			} else {
				cc.subj.invalid++
			}
			ce := identErr(err)
			cc.rowErr[i] = r.rowError(raw, i, row, 0, pl.m.Subject.Column, subjRaw, pl.subjectKind.Personal(), ce)
		}
		for j, fs := range pl.fields {
			var ce *cellErr
			var v string
			if rec != nil {
				v = rec[r.csvIdx[j+1]]
				ce = fs.str(v, r.isNull(v), cc.cols[j], i)
			} else {
				c := raw.get[j+1](i)
				ce = fs.fromCell(c, cc.cols[j], i)
				if ce != nil {
					v = c.text()
				}
			}
			if ce != nil && cc.rowErr[i] == nil {
				cc.rowErr[i] = r.rowError(raw, i, row, j+1, fs.column, v, fs.personal, ce)
			}
		}
	}
	return cc
}

// newConv returns cleared buffers for a chunk of raw's size, reusing those of an absorbed chunk when
// one is free.
func (r *reader) newConv(raw *rawChunk) *convChunk {
	n := raw.n
	select {
	case cc := <-r.free:
		if cap(cc.rowErr) >= n {
			cc.raw = raw
			cc.subj.reset(n)
			for _, c := range cc.cols {
				c.reset(n)
			}
			cc.subjHash = cc.subjHash[:n]
			clear(cc.subjHash)
			cc.rowErr = cc.rowErr[:n]
			clear(cc.rowErr)
			cc.broken = nil
			return cc
		}
	default:
	}
	cc := &convChunk{raw: raw, subj: newColBuf(catalog.TypeID, n), subjHash: make([][16]byte, n),
		cols: make([]*colBuf, len(r.pl.fields)), rowErr: make([]*RowError, n)}
	for j, fs := range r.pl.fields {
		cc.cols[j] = newColBuf(fs.field.Type, n)
	}
	return cc
}

func (r *reader) isNull(s string) bool {
	if len(s) == 0 {
		return r.nullEmpty
	}
	for _, n := range r.nulls {
		if s == n {
			return true
		}
	}
	if r.nullEmpty && (s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ') {
		return strings.TrimSpace(s) == ""
	}
	return false
}

// rowError builds the error of row i of a chunk at needed column j (0 = subject).
func (r *reader) rowError(raw *rawChunk, i int, row int64, j int, column, value string, personal bool, ce *cellErr) *RowError {
	var line int64
	if raw.lines != nil {
		line = raw.lines[i]
		// Values before this one that span lines (quoted line breaks) move it down.
		rec := raw.recs[i]
		for k := 0; k < r.csvIdx[j] && k < len(rec); k++ {
			for _, c := range []byte(rec[k]) {
				if c == '\n' {
					line++
				}
			}
		}
	}
	if personal {
		value = ident.Mask(value)
	}
	return &RowError{Source: r.pl.m.Source, File: r.file, Line: line, Row: row, Column: column, Rule: ce.rule,
		Value: value, Message: ce.msg, Hint: hintFor(ce.rule), Err: ce.cause}
}

// absorb runs the in-order part of a chunk: duplicate subjects, the reject budget, statistics, and
// the record of the accepted rows (nil when none).
func (r *reader) absorb(cc *convChunk) (arrow.Record, error) {
	raw := cc.raw
	n := raw.n
	keep := r.keep[:0]
	defer func() { r.keep = keep[:0] }()
	for i := 0; i < n; i++ {
		row := raw.first + int64(i)
		r.rep.RowsRead++
		if cc.broken != nil && cc.broken[i] {
			// counted as rejected below; not converted, so not in the field statistics
		} else if cc.subj.ok[i] {
			h := cc.subjHash[i]
			if first, dup := r.seen[h]; dup {
				r.rep.DuplicateSubjects++
				if cc.rowErr[i] == nil {
					subj := cc.subj.s[i]
					shown := subj
					if r.pl.subjectKind.Personal() {
						shown = ident.Mask(subj)
					}
					cc.rowErr[i] = r.rowError(raw, i, row, 0, r.pl.m.Subject.Column, subj, r.pl.subjectKind.Personal(),
						&cellErr{rule: RuleUniqueSubject, msg: fmt.Sprintf("subject %q already appeared at data row %d", shown, first)})
					if raw.lines != nil {
						cc.rowErr[i].Line = raw.lines[i]
					}
				}
			} else {
				r.seen[h] = row
			}
		} else {
			r.rep.InvalidIdentifiers++
		}
		if e := cc.rowErr[i]; e != nil {
			if !r.budget.take() {
				if r.budget.Max() > 0 {
					e.overLimit = true
					e.Hint = fmt.Sprintf("this is more invalid rows than --max-rejects %d allows in this ingest; %s", r.budget.Max(), e.Hint)
				}
				r.rep.RowsRejected++
				return nil, e
			}
			r.rep.RowsRejected++
			r.rep.Rejects = append(r.rep.Rejects, e)
			continue
		}
		r.rep.RowsAccepted++
		keep = append(keep, i)
	}
	converted := int64(n)
	for _, b := range cc.broken {
		if b {
			converted--
		}
	}
	r.stats[0].add(cc.subj, converted)
	for j, c := range cc.cols {
		r.stats[j+1].add(c, converted)
	}
	if len(keep) == 0 {
		r.recycle(cc)
		return nil, nil
	}
	r.appendRows(cc, keep)
	cols := make([]arrow.Array, len(r.builders))
	for i, b := range r.builders {
		cols[i] = b.NewArray()
	}
	rec := array.NewRecord(r.schema, cols, int64(len(keep)))
	for _, c := range cols {
		c.Release()
	}
	r.recycle(cc)
	return rec, nil
}

// appendRows appends the kept rows of a chunk to the builders.
func (r *reader) appendRows(cc *convChunk, keep []int) {
	all := len(keep) == cc.raw.n
	sb := r.builders[0].(*array.StringBuilder)
	sb.Reserve(len(keep))
	if all {
		sb.AppendValues(cc.subj.s, nil)
	} else {
		for _, i := range keep {
			sb.Append(cc.subj.s[i])
		}
	}
	for j, c := range cc.cols {
		switch b := r.builders[j+1].(type) {
		case *array.Int64Builder:
			if all {
				b.AppendValues(c.i64, c.ok)
				continue
			}
			b.Reserve(len(keep))
			for _, i := range keep {
				if c.ok[i] {
					b.UnsafeAppend(c.i64[i])
				} else {
					b.UnsafeAppendBoolToBitmap(false)
				}
			}
		case *array.Float64Builder:
			if all {
				b.AppendValues(c.f64, c.ok)
				continue
			}
			b.Reserve(len(keep))
			for _, i := range keep {
				if c.ok[i] {
					b.UnsafeAppend(c.f64[i])
				} else {
					b.UnsafeAppendBoolToBitmap(false)
				}
			}
		case *array.BooleanBuilder:
			if all {
				b.AppendValues(c.b, c.ok)
				continue
			}
			b.Reserve(len(keep))
			for _, i := range keep {
				if c.ok[i] {
					b.UnsafeAppend(c.b[i])
				} else {
					b.UnsafeAppendBoolToBitmap(false)
				}
			}
		case *array.Date32Builder:
			if all {
				b.AppendValues(c.d32, c.ok)
				continue
			}
			b.Reserve(len(keep))
			for _, i := range keep {
				if c.ok[i] {
					b.UnsafeAppend(c.d32[i])
				} else {
					b.UnsafeAppendBoolToBitmap(false)
				}
			}
		case *array.StringBuilder:
			b.Reserve(len(keep))
			if all {
				b.AppendValues(c.s, c.ok)
				continue
			}
			for _, i := range keep {
				if c.ok[i] {
					b.Append(c.s[i])
				} else {
					b.AppendNull()
				}
			}
		default:
			panic(fmt.Sprintf("connectors: no append for builder %T", b))
		}
	}
}

// recycle offers an absorbed chunk's buffers for reuse.
func (r *reader) recycle(cc *convChunk) {
	cc.raw = nil
	select {
	case r.free <- cc:
	default:
	}
}

func (r *reader) Report() *SourceReport {
	rep := r.rep
	rep.Rejects = append([]*RowError{}, r.rep.Rejects...)
	rep.Fields = make([]FieldReport, len(r.stats))
	for i, s := range r.stats {
		rep.Fields[i] = s.report()
	}
	// The subject's distinct count is exact: the set of seen subjects.
	rep.Fields[0].Distinct = uint64(len(r.seen))
	for j := range r.pl.fields {
		rep.Fields[j+1].Distinct = mergedDistinct(r.wstats, j)
	}
	return &rep
}
