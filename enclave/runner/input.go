package runner

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"gonum.org/v1/gonum/mat"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/enclave/cohort"
	"insitu/enclave/dataset"
	"insitu/modeling/features"
)

// Column names of the rows streamed in sdk.ModePlaintextPublic, besides the features (whose names
// come from the fitted transforms and always hold a '.').
const (
	SubjectColumn = "subject"
	LabelColumn   = "label"
)

// DefaultBatchRows is the rows per streamed record batch when PlainInput.BatchRows is 0.
const DefaultBatchRows = 8192

var (
	// ErrPlatformData is wrapped when a plaintext run names a dataset of class platform: platform
	// data never reaches a plugin in plaintext.
	ErrPlatformData = errors.New("platform data cannot be streamed in plaintext")
	// ErrBadInput is wrapped when the PlainInput cannot be assembled (no labels, no usable
	// columns, an unknown column).
	ErrBadInput = errors.New("invalid plaintext input")
)

// PlainInput selects the plaintext rows a run streams to a plugin in sdk.ModePlaintextPublic: a
// version of a public or synthetic dataset, the columns a model may use, the labels and the
// transforms. The runner assembles the cohort (the labelled subjects), fits the transforms inside
// the enclave on it, and streams the subject pseudonyms (SubjectColumn, utf8), one float64 column
// per transformed feature and the label (LabelColumn, float64 0 or 1).
type PlainInput struct {
	// Datasets is the enclave's dataset store.
	Datasets *dataset.Store
	// Dataset and Version name the dataset version; version 0 means the latest. Its class must be
	// public or synthetic.
	Dataset string
	Version int
	// Columns are the dataset columns the model may use; empty means cohort.FeatureColumns of
	// the manifest (features that are not personal information).
	Columns []string
	// LabelColumn names a dataset column holding the outcome (0 or 1, as public benchmark data
	// carries it); rows where it is null are left out. Exactly one of LabelColumn and Labels.
	LabelColumn string
	// Labels are a bank's labels, joined on the subject.
	Labels *cohort.Labels
	// Transforms are the job's feature transforms; nil means cohort.DefaultSpec at AsOf.
	Transforms *features.Spec
	// AsOf is the reference date of date → age transforms under the default spec; zero means the
	// dataset version's creation date.
	AsOf time.Time
	// Pseudonyms maps subject identifiers to the pseudonyms the plugin sees; nil means a fresh
	// random key for this run, so its pseudonyms link to no other run.
	Pseudonyms *ident.Pseudonymizer
	// BatchRows is the rows per record batch; DefaultBatchRows when 0.
	BatchRows int
}

// InputSummary describes what a run streamed: no data values, only shape and provenance.
type InputSummary struct {
	Dataset string
	Version int
	Class   string
	// Rows is the cohort's size; Unmatched counts labelled subjects the dataset lacks.
	Rows, Unmatched int
	// Features are the streamed feature columns, in order.
	Features []string
	// Transforms are the fitted transforms that produced them, for the output gate.
	Transforms *features.Fitted
	// Batches and Bytes count the record batches the plugin read and their buffer bytes.
	Batches, Bytes int64
}

// checkClass loads the manifest and refuses a platform dataset before anything is decrypted.
func (in *PlainInput) checkClass(ctx context.Context) (*dataset.Manifest, error) {
	if in.Datasets == nil || in.Dataset == "" {
		return nil, fmt.Errorf("runner: %w: no dataset store or dataset name", ErrBadInput)
	}
	if (in.LabelColumn == "") == (in.Labels == nil) {
		return nil, fmt.Errorf("runner: %w: give exactly one of a label column and bank labels", ErrBadInput)
	}
	m, err := in.Datasets.Manifest(ctx, in.Dataset, in.Version)
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	switch m.Class {
	case connectors.ClassPublic, connectors.ClassSynthetic:
		return m, nil
	case connectors.ClassPlatform:
		return nil, fmt.Errorf("runner: dataset %s v%d is of class %s: %w; a plugin may read only public or synthetic datasets in plaintext, so run this job in HE or aggregate mode",
			m.Name, m.Version, m.Class, ErrPlatformData)
	}
	return nil, fmt.Errorf("runner: dataset %s v%d has unknown class %q: %w", m.Name, m.Version, m.Class, ErrPlatformData)
}

// prepare assembles the cohort, fits the transforms and returns the reader to stream.
func (in *PlainInput) prepare(ctx context.Context, m *dataset.Manifest) (*plainReader, *InputSummary, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("runner: dataset %s v%d: %w: %s", m.Name, m.Version, ErrBadInput, fmt.Sprintf(format, args...))
	}
	kind, err := ident.ParseKind(m.SubjectKind)
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	var cols []dataset.Column
	if len(in.Columns) == 0 {
		cols = cohort.FeatureColumns(m)
	} else {
		for _, name := range in.Columns {
			c, ok := m.Column(name)
			if !ok || name == connectors.SubjectColumnName {
				return nil, nil, bad("no column %q to use as a feature", name)
			}
			if c.Sensitivity >= 3 {
				return nil, nil, bad("column %q is personal information and never feeds a plugin", name)
			}
			cols = append(cols, c)
		}
	}
	cols = slices.DeleteFunc(cols, func(c dataset.Column) bool { return c.Name == in.LabelColumn })
	if len(cols) == 0 {
		return nil, nil, bad("no columns a model may use")
	}
	names := make([]string, 0, len(cols)+1)
	for _, c := range cols {
		names = append(names, c.Name)
	}
	if in.LabelColumn != "" {
		if _, ok := m.Column(in.LabelColumn); !ok {
			return nil, nil, bad("no label column %q", in.LabelColumn)
		}
		names = append(names, in.LabelColumn)
	}
	sc, err := in.Datasets.Scan(ctx, m.Name, m.Version, dataset.ScanOptions{Columns: names})
	if err != nil {
		return nil, nil, fmt.Errorf("runner: %w", err)
	}
	var t *cohort.Table
	if in.LabelColumn != "" {
		t, err = cohort.CollectLabelColumn(ctx, sc, cols, in.LabelColumn)
	} else {
		t, err = cohort.Collect(ctx, sc, cols, in.Labels)
	}
	sc.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("runner: dataset %s v%d: %w", m.Name, m.Version, err)
	}
	if len(t.Subjects) == 0 {
		return nil, nil, bad("no labelled subject in the dataset")
	}
	spec := in.Transforms
	if spec == nil {
		asOf := in.AsOf
		if asOf.IsZero() {
			asOf = m.Created
		}
		s := cohort.DefaultSpec(t, asOf)
		spec = &s
	}
	fitted, err := features.Fit(*spec, t.Columns)
	if err != nil {
		return nil, nil, fmt.Errorf("runner: dataset %s v%d: transforms: %w", m.Name, m.Version, err)
	}
	x, feats, err := fitted.Transform(t.Columns)
	if err != nil {
		return nil, nil, fmt.Errorf("runner: dataset %s v%d: transforms: %w", m.Name, m.Version, err)
	}
	if slices.Contains(feats, SubjectColumn) || slices.Contains(feats, LabelColumn) {
		return nil, nil, bad("a transformed feature is named %q or %q; rename it in the transforms", SubjectColumn, LabelColumn)
	}
	ps := in.Pseudonyms
	if ps == nil {
		key := make([]byte, ident.PseudonymKeySize)
		rand.Read(key)
		if ps, err = ident.NewPseudonymizer(key); err != nil {
			return nil, nil, err
		}
	}
	batch := in.BatchRows
	if batch <= 0 {
		batch = DefaultBatchRows
	}
	r := &plainReader{
		ctx: ctx, subjects: t.Subjects, kind: kind, ps: ps, x: x, y: t.Label, features: feats, batch: batch,
	}
	r.withLabel(true)
	r.refs.Store(1)
	sum := &InputSummary{
		Dataset: m.Name, Version: m.Version, Class: m.Class, Rows: len(t.Subjects), Unmatched: t.Unmatched,
		Features: feats, Transforms: fitted,
	}
	return r, sum, nil
}

// withLabel says whether the stream carries the label column: only when the plugin needs labels.
// Call it before the first Next.
func (r *plainReader) withLabel(on bool) {
	r.label = on
	fields := make([]arrow.Field, 0, len(r.features)+2)
	fields = append(fields, arrow.Field{Name: SubjectColumn, Type: arrow.BinaryTypes.String})
	for _, f := range r.features {
		fields = append(fields, arrow.Field{Name: f, Type: arrow.PrimitiveTypes.Float64})
	}
	if on {
		fields = append(fields, arrow.Field{Name: LabelColumn, Type: arrow.PrimitiveTypes.Float64})
	}
	r.schema = arrow.NewSchema(fields, nil)
}

// plainReader is the array.RecordReader of a prepared cohort: record batches of batch rows,
// built as they are read.
type plainReader struct {
	ctx      context.Context
	refs     atomic.Int64
	schema   *arrow.Schema
	subjects []string
	kind     ident.Kind
	ps       *ident.Pseudonymizer
	x        *mat.Dense
	y        []float64
	features []string
	batch    int
	label    bool

	pos int
	rec arrow.Record
	err error
}

var _ array.RecordReader = (*plainReader)(nil)

func (r *plainReader) Retain() { r.refs.Add(1) }

func (r *plainReader) Release() {
	if r.refs.Add(-1) == 0 && r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
}

func (r *plainReader) Schema() *arrow.Schema { return r.schema }
func (r *plainReader) Record() arrow.Record  { return r.rec }
func (r *plainReader) Err() error            { return r.err }

func (r *plainReader) Next() bool {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	if r.err != nil || r.pos >= len(r.subjects) {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return false
	}
	lo, hi := r.pos, min(len(r.subjects), r.pos+r.batch)
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	defer sb.Release()
	for _, id := range r.subjects[lo:hi] {
		p, err := r.ps.Pseudonym(r.kind, id)
		if err != nil {
			r.err = fmt.Errorf("runner: pseudonymising row %d: %w", lo+1, err)
			return false
		}
		sb.Append(p)
	}
	cols := make([]arrow.Array, 0, len(r.features)+2)
	cols = append(cols, sb.NewArray())
	n := hi - lo
	for j := range r.features {
		vals := make([]float64, n)
		for i := range vals {
			vals[i] = r.x.At(lo+i, j)
		}
		cols = append(cols, float64Array(vals))
	}
	if r.label {
		cols = append(cols, float64Array(slices.Clone(r.y[lo:hi])))
	}
	r.rec = array.NewRecord(r.schema, cols, int64(hi-lo))
	for _, c := range cols {
		c.Release()
	}
	r.pos = hi
	return true
}

// float64Array wraps vals, which it takes over, as an Arrow array without nulls.
func float64Array(vals []float64) arrow.Array {
	data := array.NewData(arrow.PrimitiveTypes.Float64, len(vals),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(vals))}, nil, 0, 0)
	defer data.Release()
	return array.NewFloat64Data(data)
}
