package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"

	"insitu/connectors"
	"insitu/connectors/ident"
)

// IngestOptions tune Ingest. The zero value fails on the first invalid row and reports no progress.
type IngestOptions struct {
	// MaxRejects is the number of invalid rows the whole ingest may leave out (--max-rejects); 0 means
	// the first invalid row fails the ingest. Rows left out are listed in the quality report.
	MaxRejects int64
	// Progress, when set, is called after every record batch and once when a source is done, from
	// the goroutine that called Ingest.
	Progress func(Progress)
	// Inputs replaces the file of the named sources (the CLI's --input): source name → path, used as
	// given rather than relative to the mapping file.
	Inputs map[string]string
}

// Progress reports how far an ingest is.
type Progress struct {
	Source string // the source being read
	Part   int    // its position, from 1
	Parts  int    // the number of sources
	Rows   int64  // rows of this source written so far
	Bytes  int64  // Arrow IPC bytes of this source written so far (before encryption)
	Done   bool   // the source is complete
}

// Ingest reads every source of a dataset spec (as returned by connectors.LoadDatasetSpec) and writes
// them as a new version of the dataset: one encrypted, zstd-compressed Arrow IPC part per source, the
// encrypted quality report and the authenticated manifest, which it returns. The version appears
// atomically when everything is on stable storage; on any failure (or if the process dies) no
// version is left behind. Concurrent ingests of the same dataset wait for each other.
//
// A failure in a source's data is returned as an *Error wrapping the connector's *connectors.RowError
// or *connectors.SourceError, which name the file, line, data row, column and rule.
func (s *Store) Ingest(ctx context.Context, spec *connectors.DatasetSpec, mappings []*connectors.Mapping, opts IngestOptions) (*Manifest, *connectors.Report, error) {
	name := ""
	if spec != nil {
		name = spec.Dataset
	}
	// Errors name no version: the one being written never appears.
	fail := func(_ int, err error) (*Manifest, *connectors.Report, error) {
		return nil, nil, &Error{Dataset: name, Op: "ingest", Err: err}
	}
	if err := checkSpec(spec, mappings); err != nil {
		return fail(0, err)
	}
	unlock, err := s.storage.Lock(ctx, name)
	if err != nil {
		return fail(0, err)
	}
	defer unlock()
	vs, err := s.storage.Versions(ctx, name)
	if err != nil {
		return fail(0, err)
	}
	version := 1
	if len(vs) > 0 {
		version = vs[len(vs)-1] + 1
	}
	st, err := s.storage.Stage(ctx, name)
	if err != nil {
		return fail(version, err)
	}
	m, q, err := s.ingest(ctx, st, spec, mappings, version, opts)
	if err != nil {
		st.Abort()
		return fail(version, err)
	}
	if err := st.Commit(ctx, version); err != nil {
		st.Abort()
		return fail(version, err)
	}
	return m, q.Report, nil
}

func checkSpec(spec *connectors.DatasetSpec, mappings []*connectors.Mapping) error {
	if spec == nil {
		return fmt.Errorf("%w: no spec", ErrInvalidSpec)
	}
	if !ValidName(spec.Dataset) {
		return fmt.Errorf("%w: dataset name %q: use 1 to 64 lower-case letters, digits, '_' and '-'", ErrInvalidSpec, spec.Dataset)
	}
	switch spec.Class {
	case connectors.ClassPlatform, connectors.ClassPublic, connectors.ClassSynthetic:
	default:
		return fmt.Errorf("%w: class %q is not platform, public or synthetic", ErrInvalidSpec, spec.Class)
	}
	kind, err := ident.ParseKind(spec.Subject)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	if len(mappings) == 0 {
		return fmt.Errorf("%w: no sources", ErrInvalidSpec)
	}
	seen := map[string]bool{}
	for _, m := range mappings {
		if m == nil {
			return fmt.Errorf("%w: nil mapping", ErrInvalidSpec)
		}
		if !ValidName(m.Source) {
			return fmt.Errorf("%w: source name %q", ErrInvalidSpec, m.Source)
		}
		if seen[m.Source] {
			return fmt.Errorf("%w: source name %q used twice", ErrInvalidSpec, m.Source)
		}
		seen[m.Source] = true
		if m.SubjectKind() != kind {
			return fmt.Errorf("%w: source %q is keyed by %s identifiers, the dataset by %s", ErrInvalidSpec, m.Source, m.SubjectKind(), kind)
		}
	}
	return nil
}

// ingest writes every file of a version into the stage and returns its manifest.
func (s *Store) ingest(ctx context.Context, st Stage, spec *connectors.DatasetSpec, mappings []*connectors.Mapping, version int, opts IngestOptions) (*Manifest, *QualityReport, error) {
	m := &Manifest{
		Format:        ManifestFormat,
		FormatVersion: 1,
		Name:          spec.Dataset,
		Version:       version,
		Class:         spec.Class,
		SubjectKind:   spec.Subject,
		Created:       s.now().UTC().Truncate(time.Millisecond),
		Description:   spec.Description,
	}
	q := &QualityReport{Dataset: spec.Dataset, Version: version,
		Report: &connectors.Report{Dataset: spec.Dataset, MaxRejects: opts.MaxRejects}}
	budget := connectors.NewRejectBudget(opts.MaxRejects)
	subjects := newSubjectIndex(len(mappings))
	columns := map[string]string{}
	for i, mp := range mappings {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		src := describeSource(mp)
		part, cols, rep, err := s.ingestPart(ctx, st, m, mp, i, len(mappings), budget, subjects, opts)
		if err != nil {
			return nil, nil, err
		}
		if rep.Path != "" {
			src.File = filepath.Base(rep.Path)
			src.FileSHA256, src.FileBytes = rep.SHA256, rep.Bytes
		}
		if len(m.Columns) == 0 {
			subj := cols[0]
			subj.Provider, subj.Source = "", "" // every source provides it
			m.Columns = append(m.Columns, subj)
		}
		for _, c := range cols[1:] {
			if prev, dup := columns[c.Name]; dup {
				return nil, nil, fmt.Errorf("%w: column %q comes from sources %q and %q: each field comes from one source", ErrInvalidSpec, c.Name, prev, mp.Source)
			}
			columns[c.Name] = mp.Source
			m.Columns = append(m.Columns, c)
		}
		m.Parts = append(m.Parts, *part)
		m.Sources = append(m.Sources, src)
		m.Quality = append(m.Quality, summarize(rep))
		q.Report.Add(rep)
	}
	m.Subjects = subjects.total
	qi, err := s.writeQuality(ctx, st, m, q)
	if err != nil {
		return nil, nil, err
	}
	m.QualityReport = qi
	if err := s.writeManifest(ctx, st, m); err != nil {
		return nil, nil, err
	}
	return m, q, nil
}

// describeSource records what identifies a source besides its file, which the connector hashes.
func describeSource(mp *connectors.Mapping) Source {
	src := Source{
		Name:         mp.Source,
		Provider:     mp.Provider,
		ProviderName: mp.ProviderName,
		Format:       mp.Format,
	}
	if mp.File() != "" {
		if h, err := hashFile(mp.File()); err == nil {
			src.MappingSHA256 = h
		}
	}
	if mp.Format == connectors.FormatPostgres {
		sum := sha256.Sum256([]byte(mp.Query))
		src.QuerySHA256 = hex.EncodeToString(sum[:])
	}
	return src
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// batch is a record (or the error that ended the source) passed from the reading goroutine.
type batch struct {
	rec arrow.Record
	err error
}

// ingestPart streams one source into its encrypted part file.
func (s *Store) ingestPart(ctx context.Context, st Stage, m *Manifest, mp *connectors.Mapping, idx, parts int,
	budget *connectors.RejectBudget, subjects *subjectIndex, opts IngestOptions) (*Part, []Column, *connectors.SourceReport, error) {
	progress := opts.Progress
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := connectors.Open(ctx, mp, connectors.Options{Rejects: budget, Path: opts.Inputs[mp.Source],
		BatchRows: batchRows(len(mp.Columns) + 1)})
	if err != nil {
		return nil, nil, nil, err
	}
	defer r.Close()
	schema := r.Schema()
	cols, err := schemaColumns(schema, mp)
	if err != nil {
		return nil, nil, nil, err
	}
	file := partFile(mp.Source)
	ew, err := s.createEncrypted(ctx, st, m.Name, m.Version, file)
	if err != nil {
		return nil, nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ew.abandon()
		}
	}()
	iw := ipc.NewWriter(ew, ipcOptions(schema)...)
	defer iw.Close()

	// Read in a goroutine so that parsing the source and compressing and encrypting overlap.
	ch := make(chan batch, 2)
	go func() {
		defer close(ch)
		for {
			rec, err := r.Next(ctx)
			if err != nil {
				if err != io.EOF {
					select {
					case ch <- batch{err: err}:
					case <-ctx.Done():
					}
				}
				return
			}
			select {
			case ch <- batch{rec: rec}:
			case <-ctx.Done():
				rec.Release()
				return
			}
		}
	}()
	drain := func() {
		cancel()
		for b := range ch {
			if b.rec != nil {
				b.rec.Release()
			}
		}
	}
	part := &Part{Source: mp.Source}
	for b := range ch {
		if b.err != nil {
			drain()
			return nil, nil, nil, b.err
		}
		n, err := subjects.add(b.rec, mp.Source, idx)
		part.Subjects += n
		if err == nil && !b.rec.Schema().Equal(schema) {
			err = fmt.Errorf("source %q: a record's schema differs from the source's", mp.Source)
		}
		if err == nil {
			err = iw.Write(b.rec)
		}
		part.Rows += b.rec.NumRows()
		part.Batches++
		b.rec.Release()
		if err != nil {
			drain()
			return nil, nil, nil, err
		}
		if progress != nil {
			progress(Progress{Source: mp.Source, Part: idx + 1, Parts: parts, Rows: part.Rows, Bytes: ew.plain.n})
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	if err := iw.Close(); err != nil {
		return nil, nil, nil, fmt.Errorf("write %s: %w", file, err)
	}
	fi, err := ew.finish()
	if err != nil {
		return nil, nil, nil, err
	}
	ok = true
	part.FileInfo = fi
	for _, c := range cols[1:] {
		part.Columns = append(part.Columns, c.Name)
	}
	rep := r.Report()
	if !rep.Complete || rep.RowsAccepted != part.Rows {
		return nil, nil, nil, fmt.Errorf("source %q: the connector reported %d rows accepted, %d were written", mp.Source, rep.RowsAccepted, part.Rows)
	}
	if progress != nil {
		progress(Progress{Source: mp.Source, Part: idx + 1, Parts: parts, Rows: part.Rows, Bytes: fi.PlainBytes, Done: true})
	}
	return part, cols, rep, nil
}

// batchCells is the number of values (rows × columns) per record batch asked of a connector, so that
// the memory an ingest holds in flight does not grow with the width of a row.
const batchCells = 8192 * 16

// batchRows returns the rows per record batch for a source of cols columns.
func batchRows(cols int) int { return min(max(batchCells/max(cols, 1), 1024), 65536) }

// subjectIndex counts the distinct subjects of a dataset as its parts are written. A part holds each
// subject once (connectors reject a second row), so a single part needs no index; with several, the
// index holds the subjects of every part but the last, which is only looked up. Its memory grows with
// the number of distinct subjects.
type subjectIndex struct {
	parts int
	seen  map[string]int32 // subject → 1 + index of the last part it was seen in
	total int64
}

func newSubjectIndex(parts int) *subjectIndex {
	x := &subjectIndex{parts: parts}
	if parts > 1 {
		x.seen = make(map[string]int32)
	}
	return x
}

// add records the subjects of a record of part idx and returns how many rows it has.
func (x *subjectIndex) add(rec arrow.Record, source string, idx int) (int64, error) {
	col, ok := rec.Column(0).(*array.String)
	if !ok || rec.ColumnName(0) != connectors.SubjectColumnName {
		return 0, fmt.Errorf("source %q: the first column is not the utf8 column %q", source, connectors.SubjectColumnName)
	}
	if col.NullN() > 0 {
		return 0, fmt.Errorf("source %q: a row without subject", source)
	}
	n := col.Len()
	switch {
	case x.seen == nil:
		x.total += int64(n)
	case idx == x.parts-1:
		for i := range n {
			if _, seen := x.seen[col.Value(i)]; !seen {
				x.total++
			}
		}
	default:
		mark := int32(idx + 1)
		for i := range n {
			v := col.Value(i)
			prev, seen := x.seen[v]
			if seen && prev == mark {
				return 0, fmt.Errorf("source %q: subject %s appears in two rows", source, ident.Mask(v))
			}
			if !seen {
				v = strings.Clone(v) // the map must not keep the record's buffer alive
				x.total++
			}
			x.seen[v] = mark
		}
	}
	return int64(n), nil
}

// schemaColumns describes a source's schema as manifest columns, checking the connectors layout.
func schemaColumns(schema *arrow.Schema, mp *connectors.Mapping) ([]Column, error) {
	fields := schema.Fields()
	if len(fields) == 0 || fields[0].Name != connectors.SubjectColumnName || fields[0].Type.ID() != arrow.STRING {
		return nil, fmt.Errorf("source %q: the first column is not the utf8 column %q", mp.Source, connectors.SubjectColumnName)
	}
	cols := make([]Column, 0, len(fields))
	for i, f := range fields {
		md := func(k string) string {
			if j := f.Metadata.FindKey(k); j >= 0 {
				return f.Metadata.Values()[j]
			}
			return ""
		}
		sens, _ := strconv.Atoi(md(connectors.MetaSensitivity))
		c := Column{
			Name:        f.Name,
			Type:        f.Type.String(),
			CatalogType: md(connectors.MetaType),
			Item:        md(connectors.MetaItem),
			Field:       md(connectors.MetaField),
			Unit:        md(connectors.MetaUnit),
			Provider:    md(connectors.MetaProvider),
			Source:      md(connectors.MetaSource),
			Sensitivity: sens,
			IDKind:      md(connectors.MetaIDKind),
			Role:        md(connectors.MetaRole),
			NameZH:      md(connectors.MetaNameZH),
			NameEN:      md(connectors.MetaNameEN),
		}
		if i == 0 {
			c.CatalogType = "id"
		}
		if c.Provider == "" {
			c.Provider = mp.Provider
		}
		if c.Source == "" {
			c.Source = mp.Source
		}
		if _, err := newColumnBuffer(f.Type); err != nil {
			return nil, fmt.Errorf("source %q: column %q: %w", mp.Source, f.Name, err)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// writeQuality writes the encrypted full quality report.
func (s *Store) writeQuality(ctx context.Context, st Stage, m *Manifest, q *QualityReport) (FileInfo, error) {
	data, err := json.Marshal(q)
	if err != nil {
		return FileInfo{}, err
	}
	ew, err := s.createEncrypted(ctx, st, m.Name, m.Version, qualityFile)
	if err != nil {
		return FileInfo{}, err
	}
	if _, err := ew.Write(data); err != nil {
		ew.abandon()
		return FileInfo{}, err
	}
	return ew.finish()
}

// readQuality decrypts a version's quality report, checking it against the manifest.
func (s *Store) readQuality(ctx context.Context, m *Manifest) (*QualityReport, error) {
	fail := func(err error) (*QualityReport, error) {
		return nil, &Error{Dataset: m.Name, Version: m.Version, Op: "read quality report", Err: err}
	}
	er, err := s.openEncrypted(ctx, m.Name, m.Version, m.QualityReport)
	if err != nil {
		return fail(err)
	}
	defer er.Close()
	data, err := io.ReadAll(io.LimitReader(er, 1<<30))
	if err != nil {
		return fail(err)
	}
	if _, err := er.finish(); err != nil {
		return fail(err)
	}
	var q QualityReport
	if err := json.Unmarshal(data, &q); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrCorrupt, err))
	}
	return &q, nil
}
