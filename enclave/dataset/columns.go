package dataset

import (
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// columnBuffer holds one column's values for a window of output rows, placed by row position.
type columnBuffer interface {
	// resize makes the buffer n rows long, every row null.
	resize(n int)
	// place copies arr[i] to position pos[i] for every i with pos[i] ≥ 0.
	place(arr arrow.Array, pos []int32) error
	// build returns rows lo..hi as an Arrow array.
	build(mem memory.Allocator, lo, hi int) arrow.Array
	// rowBytes estimates the memory a row takes.
	rowBytes() int
}

func newColumnBuffer(t arrow.DataType) (columnBuffer, error) {
	switch t.ID() {
	case arrow.INT64:
		return &fixedBuffer[int64]{dt: t}, nil
	case arrow.FLOAT64:
		return &fixedBuffer[float64]{dt: t}, nil
	case arrow.DATE32:
		return &fixedBuffer[arrow.Date32]{dt: t}, nil
	case arrow.BOOL:
		return &boolBuffer{}, nil
	case arrow.STRING:
		return &stringBuffer{}, nil
	}
	return nil, fmt.Errorf("Arrow type %s is not one a dataset column can have (int64, float64, date32, bool, utf8)", t)
}

type fixedValue interface{ int64 | float64 | arrow.Date32 }

type fixedBuffer[T fixedValue] struct {
	dt    arrow.DataType
	vals  []T
	valid []bool
}

func (b *fixedBuffer[T]) resize(n int) {
	b.vals = resizeSlice(b.vals, n)
	b.valid = resizeSlice(b.valid, n)
}

func resizeSlice[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func (b *fixedBuffer[T]) place(arr arrow.Array, pos []int32) error {
	a, ok := arr.(interface{ Value(int) T })
	if !ok {
		return fmt.Errorf("%w: column of type %s where %s was expected", ErrCorrupt, arr.DataType(), b.dt)
	}
	for i, p := range pos {
		if p >= 0 && arr.IsValid(i) {
			b.vals[p] = a.Value(i)
			b.valid[p] = true
		}
	}
	return nil
}

func (b *fixedBuffer[T]) build(mem memory.Allocator, lo, hi int) arrow.Array {
	bld := array.NewBuilder(mem, b.dt)
	defer bld.Release()
	switch x := bld.(type) {
	case *array.Int64Builder:
		x.AppendValues(any(b.vals[lo:hi]).([]int64), b.valid[lo:hi])
	case *array.Float64Builder:
		x.AppendValues(any(b.vals[lo:hi]).([]float64), b.valid[lo:hi])
	case *array.Date32Builder:
		x.AppendValues(any(b.vals[lo:hi]).([]arrow.Date32), b.valid[lo:hi])
	default:
		panic(fmt.Sprintf("dataset: no builder for %s", b.dt))
	}
	return bld.NewArray()
}

func (b *fixedBuffer[T]) rowBytes() int { return 9 }

type boolBuffer struct{ vals, valid []bool }

func (b *boolBuffer) resize(n int) {
	b.vals = resizeSlice(b.vals, n)
	b.valid = resizeSlice(b.valid, n)
}

func (b *boolBuffer) place(arr arrow.Array, pos []int32) error {
	a, ok := arr.(*array.Boolean)
	if !ok {
		return fmt.Errorf("%w: column of type %s where bool was expected", ErrCorrupt, arr.DataType())
	}
	for i, p := range pos {
		if p >= 0 && a.IsValid(i) {
			b.vals[p] = a.Value(i)
			b.valid[p] = true
		}
	}
	return nil
}

func (b *boolBuffer) build(mem memory.Allocator, lo, hi int) arrow.Array {
	bld := array.NewBooleanBuilder(mem)
	defer bld.Release()
	bld.AppendValues(b.vals[lo:hi], b.valid[lo:hi])
	return bld.NewArray()
}

func (b *boolBuffer) rowBytes() int { return 2 }

type stringBuffer struct {
	vals  []string
	valid []bool
}

func (b *stringBuffer) resize(n int) {
	b.vals = resizeSlice(b.vals, n)
	b.valid = resizeSlice(b.valid, n)
}

func (b *stringBuffer) place(arr arrow.Array, pos []int32) error {
	a, ok := arr.(*array.String)
	if !ok {
		return fmt.Errorf("%w: column of type %s where utf8 was expected", ErrCorrupt, arr.DataType())
	}
	for i, p := range pos {
		if p >= 0 && a.IsValid(i) {
			// Copy: the record's buffers are released after placing.
			b.vals[p] = strings.Clone(a.Value(i))
			b.valid[p] = true
		}
	}
	return nil
}

func (b *stringBuffer) build(mem memory.Allocator, lo, hi int) arrow.Array {
	bld := array.NewStringBuilder(mem)
	defer bld.Release()
	bld.AppendValues(b.vals[lo:hi], b.valid[lo:hi])
	return bld.NewArray()
}

func (b *stringBuffer) rowBytes() int { return 17 + 24 }
