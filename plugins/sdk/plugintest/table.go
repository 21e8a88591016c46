package plugintest

import (
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
)

// Table is a small plaintext dataset laid out as the enclave streams one in ModePlaintextPublic:
// a utf8 subject column, one float64 column per feature and a float64 label column.
type Table struct {
	// SubjectColumn names the subject column ("subject" when empty).
	SubjectColumn string
	// Subjects holds one pseudonym per row.
	Subjects []string
	// Features names the feature columns.
	Features []string
	// Columns holds the features column-major: Columns[j][i] is feature j of row i.
	Columns [][]float64
	// LabelColumn names the label column ("label" when empty); with no Labels there is none.
	LabelColumn string
	// Labels holds one label per row, or nil.
	Labels []float64
	// BatchRows is the number of rows per record batch (default 1024).
	BatchRows int
}

func (t *Table) subject() string {
	if t.SubjectColumn == "" {
		return "subject"
	}
	return t.SubjectColumn
}

func (t *Table) label() string {
	if t.Labels == nil {
		return ""
	}
	if t.LabelColumn == "" {
		return "label"
	}
	return t.LabelColumn
}

// Schema returns the Arrow schema of the rows.
func (t *Table) Schema() *arrow.Schema {
	fields := []arrow.Field{{Name: t.subject(), Type: arrow.BinaryTypes.String}}
	for _, f := range t.Features {
		fields = append(fields, arrow.Field{Name: f, Type: arrow.PrimitiveTypes.Float64})
	}
	if t.Labels != nil {
		fields = append(fields, arrow.Field{Name: t.label(), Type: arrow.PrimitiveTypes.Float64})
	}
	return arrow.NewSchema(fields, nil)
}

// Reader returns the rows as a record reader of BatchRows rows per batch. It panics when the
// columns do not all have one value per subject.
func (t *Table) Reader() array.RecordReader {
	n := len(t.Subjects)
	if len(t.Columns) != len(t.Features) {
		panic(fmt.Sprintf("plugintest: %d feature names but %d columns", len(t.Features), len(t.Columns)))
	}
	for j, c := range t.Columns {
		if len(c) != n {
			panic(fmt.Sprintf("plugintest: feature %q has %d values for %d subjects", t.Features[j], len(c), n))
		}
	}
	if t.Labels != nil && len(t.Labels) != n {
		panic(fmt.Sprintf("plugintest: %d labels for %d subjects", len(t.Labels), n))
	}
	batch := t.BatchRows
	if batch <= 0 {
		batch = 1024
	}
	schema := t.Schema()
	mem := memory.DefaultAllocator
	var recs []arrow.Record
	for lo := 0; lo < n; lo += batch {
		hi := min(n, lo+batch)
		b := array.NewRecordBuilder(mem, schema)
		b.Field(0).(*array.StringBuilder).AppendValues(t.Subjects[lo:hi], nil)
		for j, c := range t.Columns {
			b.Field(1+j).(*array.Float64Builder).AppendValues(c[lo:hi], nil)
		}
		if t.Labels != nil {
			b.Field(1+len(t.Columns)).(*array.Float64Builder).AppendValues(t.Labels[lo:hi], nil)
		}
		recs = append(recs, b.NewRecord())
		b.Release()
	}
	rr, err := array.NewRecordReader(schema, recs)
	if err != nil {
		panic(fmt.Sprintf("plugintest: %v", err))
	}
	for _, r := range recs {
		r.Release()
	}
	return rr
}

// Request returns a ModePlaintextPublic training request for the table's rows.
func (t *Table) Request(h sdk.Hyperparameters) host.TrainRequest {
	return host.TrainRequest{
		Mode:            sdk.ModePlaintextPublic,
		Rows:            t.Reader(),
		Features:        t.Features,
		Label:           t.label(),
		Subject:         t.subject(),
		Hyperparameters: h,
	}
}
