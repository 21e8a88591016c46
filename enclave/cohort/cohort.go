// Package cohort turns a dataset version and a bank's labels into model-ready columns inside the
// enclave: it picks the columns a model may use, joins the labels on the subject, converts Arrow
// values to modeling/features columns, proposes default transforms from the catalog types, and splits
// train from test deterministically.
//
// Call ReadLabels for the bank's label file, FeatureColumns to choose columns from a manifest, then
// Collect over a dataset Scanner; DefaultSpec and Split prepare a fit.
package cohort

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/enclave/dataset"
	"insitu/modeling/features"
)

// FeatureColumns returns the columns of a manifest that a model may use: catalog role "feature",
// of type int, float, bool, date or enum, and not personal information (sensitivity 3 never feeds a
// model without a per-subject authorization, which later stages check).
func FeatureColumns(m *dataset.Manifest) []dataset.Column {
	var out []dataset.Column
	for _, c := range m.Columns {
		if c.Name == "subject_id" || c.Sensitivity >= 3 {
			continue
		}
		if c.Role != "" && c.Role != "feature" {
			continue
		}
		switch c.CatalogType {
		case "int", "float", "bool", "date", "enum":
			out = append(out, c)
		}
	}
	return out
}

// Table is a cohort: one row per labelled subject found in the dataset, the label, and the chosen
// columns in features form.
type Table struct {
	Subjects []string
	Label    []float64
	Columns  []features.Column
	// Unmatched counts labelled subjects the dataset does not hold.
	Unmatched int
}

// Collect reads the scanner to the end and keeps the rows of labelled subjects, with the given
// columns. Memory grows with the number of labelled subjects times the number of columns.
func Collect(ctx context.Context, sc *dataset.Scanner, cols []dataset.Column, labels *Labels) (*Table, error) {
	seen := 0
	t, err := collect(ctx, sc, cols, func(_ arrow.Record, _ int, id string) (float64, bool, error) {
		y, ok := labels.Get(id)
		if ok {
			seen++
		}
		return y, ok, nil
	})
	if err != nil {
		return nil, err
	}
	t.Unmatched = labels.Len() - seen
	return t, nil
}

// CollectLabelColumn is Collect for a dataset that carries its own outcome, as public benchmark data
// sets do: the label is the named column (int, float or bool holding 0 or 1); rows whose label is
// null are left out, and any other value is an error.
func CollectLabelColumn(ctx context.Context, sc *dataset.Scanner, cols []dataset.Column, labelColumn string) (*Table, error) {
	return collect(ctx, sc, cols, func(rec arrow.Record, r int, _ string) (float64, bool, error) {
		idx := rec.Schema().FieldIndices(labelColumn)
		if len(idx) == 0 {
			return 0, false, fmt.Errorf("cohort: label column %q is not in the scanned records", labelColumn)
		}
		a := rec.Column(idx[0])
		if a.IsNull(r) {
			return 0, false, nil
		}
		var y float64
		switch v := a.(type) {
		case *array.Int64:
			y = float64(v.Value(r))
		case *array.Float64:
			y = v.Value(r)
		case *array.Boolean:
			if v.Value(r) {
				y = 1
			}
		default:
			return 0, false, fmt.Errorf("cohort: label column %q has type %s", labelColumn, a.DataType())
		}
		if y != 0 && y != 1 {
			return 0, false, fmt.Errorf("cohort: label column %q holds %g, want 0 or 1", labelColumn, y)
		}
		return y, true, nil
	})
}

// labelFunc returns the label of row r of rec, whose subject is id, and whether the row is labelled.
type labelFunc func(rec arrow.Record, r int, id string) (float64, bool, error)

func collect(ctx context.Context, sc *dataset.Scanner, cols []dataset.Column, label labelFunc) (*Table, error) {
	t := &Table{Columns: make([]features.Column, len(cols))}
	for i, c := range cols {
		t.Columns[i] = features.Column{Name: c.Name, Kind: kindOf(c)}
	}
	for {
		rec, err := sc.Next(ctx)
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, err
		}
		err = t.appendRecord(rec, cols, label)
		rec.Release()
		if err != nil {
			return nil, err
		}
	}
}

func kindOf(c dataset.Column) features.Kind {
	switch c.CatalogType {
	case "date":
		return features.Date
	case "enum":
		return features.Categorical
	default:
		return features.Numeric
	}
}

func (t *Table) appendRecord(rec arrow.Record, cols []dataset.Column, label labelFunc) error {
	idx := map[string]int{}
	for i, f := range rec.Schema().Fields() {
		idx[f.Name] = i
	}
	si, ok := idx["subject_id"]
	if !ok {
		return errors.New("cohort: record without subject_id")
	}
	subj, ok := rec.Column(si).(*array.String)
	if !ok {
		return fmt.Errorf("cohort: subject_id is %s, want utf8", rec.Column(si).DataType())
	}
	colArr := make([]arrow.Array, len(cols))
	for k, c := range cols {
		i, ok := idx[c.Name]
		if !ok {
			return fmt.Errorf("cohort: column %q is not in the scanned records", c.Name)
		}
		colArr[k] = rec.Column(i)
	}
	for r := 0; r < int(rec.NumRows()); r++ {
		if subj.IsNull(r) {
			continue
		}
		id := subj.Value(r)
		y, ok, err := label(rec, r, id)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		t.Subjects = append(t.Subjects, id)
		t.Label = append(t.Label, y)
		for k, a := range colArr {
			if err := appendValue(&t.Columns[k], a, r); err != nil {
				return fmt.Errorf("cohort: column %q: %w", cols[k].Name, err)
			}
		}
	}
	return nil
}

func appendValue(c *features.Column, a arrow.Array, r int) error {
	null := a.IsNull(r)
	c.Missing = append(c.Missing, null)
	switch c.Kind {
	case features.Date:
		var d int32
		if !null {
			v, ok := a.(*array.Date32)
			if !ok {
				return fmt.Errorf("arrow type %s for a date", a.DataType())
			}
			d = int32(v.Value(r))
		}
		c.Days = append(c.Days, d)
	case features.Categorical:
		s := ""
		if !null {
			v, ok := a.(*array.String)
			if !ok {
				return fmt.Errorf("arrow type %s for an enum", a.DataType())
			}
			s = v.Value(r)
		}
		c.Strings = append(c.Strings, s)
	default:
		x := 0.0
		if !null {
			switch v := a.(type) {
			case *array.Int64:
				x = float64(v.Value(r))
			case *array.Float64:
				x = v.Value(r)
			case *array.Boolean:
				if v.Value(r) {
					x = 1
				}
			default:
				return fmt.Errorf("arrow type %s for a number", a.DataType())
			}
		}
		c.Values = append(c.Values, x)
	}
	return nil
}

// DefaultSpec proposes the transforms the catalog types call for, as a plaintext reference model
// would use them: dates become ages in years at asOf; numbers and ages get median imputation with a
// missing indicator where values are missing, clipping at the 0.5 % and 99.5 % training quantiles
// and standard scaling; enums are one-hot encoded (at most 12 categories). Columns that are constant
// in the table are left out, since they carry nothing.
func DefaultSpec(t *Table, asOf time.Time) features.Spec {
	lo, hi := 0.005, 0.995
	var spec features.Spec
	for _, c := range t.Columns {
		if constant(c) {
			continue
		}
		var steps []features.Step
		switch c.Kind {
		case features.Categorical:
			steps = append(steps,
				features.Step{Impute: &features.Impute{Strategy: features.ImputeMostFrequent}},
				features.Step{OneHot: &features.OneHot{MaxCategories: 12}})
		default:
			if c.Kind == features.Date {
				steps = append(steps, features.Step{Age: &features.Age{Reference: asOf.Format(time.DateOnly)}})
			}
			steps = append(steps,
				features.Step{Impute: &features.Impute{Strategy: features.ImputeMedian, Indicator: anyMissing(c)}},
				features.Step{Clip: &features.Clip{LowerQuantile: &lo, UpperQuantile: &hi}},
				features.Step{Scale: &features.Scale{Method: features.ScaleStandard}})
		}
		spec.Columns = append(spec.Columns, features.ColumnSpec{Column: c.Name, Steps: steps})
	}
	return spec
}

func anyMissing(c features.Column) bool {
	for i := range c.Len() {
		if c.IsMissing(i) {
			return true
		}
	}
	return false
}

// constant reports whether every present value of c is the same (or none is present).
func constant(c features.Column) bool {
	first := -1
	for i := range c.Len() {
		if c.IsMissing(i) {
			continue
		}
		if first < 0 {
			first = i
			continue
		}
		switch c.Kind {
		case features.Date:
			if c.Days[i] != c.Days[first] {
				return false
			}
		case features.Categorical:
			if c.Strings[i] != c.Strings[first] {
				return false
			}
		default:
			if c.Values[i] != c.Values[first] {
				return false
			}
		}
	}
	return true
}

// Split assigns each subject to the test set when SHA-256(subject) mod folds is 0, else to train, so
// the split is stable across runs, machines and row orders. folds must be at least 2.
func Split(subjects []string, folds int) (train, test []int) {
	if folds < 2 {
		panic("cohort: Split needs at least 2 folds")
	}
	for i, s := range subjects {
		h := sha256.Sum256([]byte(s))
		if binary.BigEndian.Uint64(h[:8])%uint64(folds) == 0 {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	return train, test
}

// Rows returns the columns restricted to the given rows, in that order.
func (t *Table) Rows(rows []int) ([]features.Column, []float64) {
	out := make([]features.Column, len(t.Columns))
	for k, c := range t.Columns {
		n := features.Column{Name: c.Name, Kind: c.Kind, Missing: make([]bool, len(rows))}
		for j, i := range rows {
			n.Missing[j] = c.Missing[i]
		}
		switch c.Kind {
		case features.Date:
			n.Days = make([]int32, len(rows))
			for j, i := range rows {
				n.Days[j] = c.Days[i]
			}
		case features.Categorical:
			n.Strings = make([]string, len(rows))
			for j, i := range rows {
				n.Strings[j] = c.Strings[i]
			}
		default:
			n.Values = make([]float64, len(rows))
			for j, i := range rows {
				n.Values[j] = c.Values[i]
			}
		}
		out[k] = n
	}
	y := make([]float64, len(rows))
	for j, i := range rows {
		y[j] = t.Label[i]
	}
	return out, y
}
