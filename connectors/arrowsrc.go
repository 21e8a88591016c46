package connectors

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
)

// checkArrowType reports whether a source column of type dt can be read.
func checkArrowType(dt arrow.DataType) error {
	switch dt.ID() {
	case arrow.NULL, arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16,
		arrow.UINT32, arrow.UINT64, arrow.FLOAT32, arrow.FLOAT64, arrow.STRING, arrow.LARGE_STRING,
		arrow.BINARY, arrow.LARGE_BINARY, arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.DECIMAL128:
		return nil
	case arrow.DICTIONARY:
		return checkArrowType(dt.(*arrow.DictionaryType).ValueType)
	}
	return fmt.Errorf("the source column's Arrow type %s cannot be read (use integers, floats, decimals, booleans, text, dates or timestamps)", dt)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// cellGetter returns the values of an array as cells. The type must have passed checkArrowType.
func cellGetter(arr arrow.Array) func(int) cell {
	var get func(int) cell
	switch a := arr.(type) {
	case *array.Null:
		return func(int) cell { return cell{} }
	case *array.Boolean:
		get = func(i int) cell { return cell{k: cBool, b: a.Value(i)} }
	case *array.Int8:
		get = func(i int) cell { return cell{k: cInt, i: int64(a.Value(i))} }
	case *array.Int16:
		get = func(i int) cell { return cell{k: cInt, i: int64(a.Value(i))} }
	case *array.Int32:
		get = func(i int) cell { return cell{k: cInt, i: int64(a.Value(i))} }
	case *array.Int64:
		get = func(i int) cell { return cell{k: cInt, i: a.Value(i)} }
	case *array.Uint8:
		get = func(i int) cell { return cell{k: cInt, i: int64(a.Value(i))} }
	case *array.Uint16:
		get = func(i int) cell { return cell{k: cInt, i: int64(a.Value(i))} }
	case *array.Uint32:
		get = func(i int) cell { return cell{k: cInt, i: int64(a.Value(i))} }
	case *array.Uint64:
		get = func(i int) cell {
			if v := a.Value(i); v <= math.MaxInt64 {
				return cell{k: cInt, i: int64(v)}
			}
			return cell{k: cFloat, f: float64(a.Value(i))}
		}
	case *array.Float32:
		get = func(i int) cell { return cell{k: cFloat, f: float64(a.Value(i))} }
	case *array.Float64:
		get = func(i int) cell { return cell{k: cFloat, f: a.Value(i)} }
	case *array.String:
		get = func(i int) cell { return cell{k: cString, s: a.Value(i)} }
	case *array.LargeString:
		get = func(i int) cell { return cell{k: cString, s: a.Value(i)} }
	case *array.Binary:
		get = func(i int) cell { return cell{k: cString, s: string(a.Value(i))} }
	case *array.LargeBinary:
		get = func(i int) cell { return cell{k: cString, s: string(a.Value(i))} }
	case *array.Date32:
		get = func(i int) cell { return cell{k: cDate, i: int64(a.Value(i))} }
	case *array.Date64:
		get = func(i int) cell { return cell{k: cDate, i: floorDiv(int64(a.Value(i)), 86400000)} }
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		perDay := int64(86400) * int64(math.Pow10(3*int(unit)))
		get = func(i int) cell { return cell{k: cDate, i: floorDiv(int64(a.Value(i)), perDay)} }
	case *array.Decimal128:
		scale := a.DataType().(*arrow.Decimal128Type).Scale
		get = func(i int) cell { return cell{k: cFloat, f: a.Value(i).ToFloat64(scale)} }
	case *array.Dictionary:
		inner := cellGetter(a.Dictionary())
		get = func(i int) cell { return inner(a.GetValueIndex(i)) }
	default:
		panic(fmt.Sprintf("connectors: cellGetter of unchecked type %s", arr.DataType()))
	}
	return func(i int) cell {
		if arr.IsNull(i) {
			return cell{}
		}
		return get(i)
	}
}

// resolveSchema finds the needed columns (subject first) in an Arrow schema and checks their types.
func resolveSchema(r *reader, sc *arrow.Schema) ([]int, error) {
	names := make([]string, sc.NumFields())
	for i, f := range sc.Fields() {
		names[i] = f.Name
	}
	need := append([]string{r.pl.m.Subject.Column}, columnsOf(r.pl)...)
	idx, err := resolveColumns(need, names)
	if err != nil {
		return nil, err
	}
	for k, i := range idx {
		if err := checkArrowType(sc.Field(i).Type); err != nil {
			return nil, fmt.Errorf("column %q: %w", need[k], err)
		}
	}
	return idx, nil
}

// recordSlicer cuts the records of a typed source into chunks of at most the batch size.
type recordSlicer struct {
	nextRecord func() (arrow.Record, error) // owned by the caller; io.EOF at the end
	idx        []int                        // needed columns
	cur        arrow.Record
	off        int64
	row        int64
	done       bool
	finishFn   func(*SourceReport)
	closeFn    func() error
}

func (s *recordSlicer) next(ctx context.Context, rows int) (*rawChunk, error) {
	for s.cur == nil || s.off >= s.cur.NumRows() {
		if s.cur != nil {
			s.cur.Release()
			s.cur = nil
		}
		if s.done {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := s.nextRecord()
		if err != nil {
			s.done = true
			return nil, err
		}
		s.cur, s.off = rec, 0
	}
	end := min(s.off+int64(rows), s.cur.NumRows())
	sl := s.cur.NewSlice(s.off, end)
	s.off = end
	c := &rawChunk{first: s.row + 1, n: int(sl.NumRows()), release: sl.Release}
	s.row += sl.NumRows()
	c.get = make([]func(int) cell, len(s.idx))
	for k, i := range s.idx {
		c.get[k] = cellGetter(sl.Column(i))
	}
	return c, nil
}

func (s *recordSlicer) finish(rep *SourceReport) {
	if s.finishFn != nil {
		s.finishFn(rep)
	}
}

func (s *recordSlicer) close() error {
	if s.cur != nil {
		s.cur.Release()
		s.cur = nil
	}
	return s.closeFn()
}

// hashFile returns the SHA-256 and size of a file, reading it once as a stream.
func hashFile(path string) (string, int64, error) {
	hf, err := openHashing(path)
	if err != nil {
		return "", 0, err
	}
	defer hf.f.Close()
	if err := hf.drain(); err != nil {
		return "", 0, err
	}
	return hf.sum(), hf.n, nil
}

func fileFinish(sum string, n int64) func(*SourceReport) {
	return func(rep *SourceReport) { rep.SHA256, rep.Bytes = sum, n }
}

const hintPath = "check the path in the mapping (relative to the mapping file) or --input"

func openArrowFile(r *reader, path string) (producer, error) {
	sum, size, err := hashFile(path)
	if err != nil {
		return nil, r.sourceErr(0, err, hintPath)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, r.sourceErr(0, err, hintPath)
	}
	fr, err := ipc.NewFileReader(f, ipc.WithAllocator(r.mem))
	if err != nil {
		f.Close()
		return nil, r.sourceErr(0, fmt.Errorf("not an Arrow IPC file: %w", err), "use format arrow-stream for an Arrow IPC stream")
	}
	idx, err := resolveSchema(r, fr.Schema())
	if err != nil {
		fr.Close()
		f.Close()
		return nil, r.sourceErr(0, err, "correct the column names in the mapping")
	}
	i := 0
	return &recordSlicer{
		idx: idx,
		nextRecord: func() (arrow.Record, error) {
			if i >= fr.NumRecords() {
				return nil, io.EOF
			}
			rec, err := fr.RecordAt(i)
			if err != nil {
				return nil, r.sourceErr(0, fmt.Errorf("record batch %d: %w", i, err), "")
			}
			i++
			return rec, nil
		},
		finishFn: fileFinish(sum, size),
		closeFn: func() error {
			fr.Close()
			return f.Close()
		},
	}, nil
}

func openArrowStream(r *reader, path string) (producer, error) {
	hf, err := openHashing(path)
	if err != nil {
		return nil, r.sourceErr(0, err, hintPath)
	}
	sr, err := ipc.NewReader(hf, ipc.WithAllocator(r.mem))
	if err != nil {
		hf.f.Close()
		return nil, r.sourceErr(0, fmt.Errorf("not an Arrow IPC stream: %w", err), "use format arrow for an Arrow IPC file")
	}
	idx, err := resolveSchema(r, sr.Schema())
	if err != nil {
		sr.Release()
		hf.f.Close()
		return nil, r.sourceErr(0, err, "correct the column names in the mapping")
	}
	batch := 0
	return &recordSlicer{
		idx: idx,
		nextRecord: func() (arrow.Record, error) {
			if !sr.Next() {
				if err := sr.Err(); err != nil && err != io.EOF {
					return nil, r.sourceErr(0, fmt.Errorf("record batch %d: %w", batch, err), "")
				}
				if err := hf.drain(); err != nil {
					return nil, r.sourceErr(0, err, "")
				}
				return nil, io.EOF
			}
			batch++
			rec := sr.Record()
			rec.Retain()
			return rec, nil
		},
		finishFn: func(rep *SourceReport) { rep.SHA256, rep.Bytes = hf.sum(), hf.n },
		closeFn: func() error {
			sr.Release()
			return hf.f.Close()
		},
	}, nil
}

func openParquet(ctx context.Context, r *reader, path string) (producer, error) {
	sum, size, err := hashFile(path)
	if err != nil {
		return nil, r.sourceErr(0, err, hintPath)
	}
	props := parquet.NewReaderProperties(r.mem)
	props.BufferedStreamEnabled = true
	props.BufferSize = 1 << 20
	pf, err := file.OpenParquetFile(path, false, file.WithReadProps(props))
	if err != nil {
		return nil, r.sourceErr(0, fmt.Errorf("not a Parquet file: %w", err), "")
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(r.batch)}, r.mem)
	if err != nil {
		pf.Close()
		return nil, r.sourceErr(0, err, "")
	}
	sc, err := fr.Schema()
	if err != nil {
		pf.Close()
		return nil, r.sourceErr(0, err, "")
	}
	idx, err := resolveSchema(r, sc)
	if err != nil {
		pf.Close()
		return nil, r.sourceErr(0, err, "correct the column names in the mapping")
	}
	// Read only the needed columns: map each needed top-level field to its leaf column.
	leaves := make([]int, 0, len(idx))
	pos := map[int]int{}
	for _, i := range idx {
		if _, ok := pos[i]; ok {
			continue
		}
		leaf := pf.MetaData().Schema.ColumnIndexByName(sc.Field(i).Name)
		if leaf < 0 {
			pf.Close()
			return nil, r.sourceErr(0, fmt.Errorf("column %q is nested; only flat columns can be read", sc.Field(i).Name), "")
		}
		pos[i] = len(leaves)
		leaves = append(leaves, leaf)
	}
	rr, err := fr.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		pf.Close()
		return nil, r.sourceErr(0, err, "")
	}
	sub := make([]int, len(idx))
	for k, i := range idx {
		got := rr.Schema().FieldIndices(sc.Field(i).Name)
		if len(got) != 1 {
			rr.Release()
			pf.Close()
			return nil, r.sourceErr(0, fmt.Errorf("column %q cannot be told apart from others of the same name", sc.Field(i).Name), "")
		}
		sub[k] = got[0]
	}
	return &recordSlicer{
		idx: sub,
		nextRecord: func() (arrow.Record, error) {
			if !rr.Next() {
				if err := rr.Err(); err != nil && err != io.EOF {
					return nil, r.sourceErr(0, err, "")
				}
				return nil, io.EOF
			}
			rec := rr.Record()
			rec.Retain()
			return rec, nil
		},
		finishFn: fileFinish(sum, size),
		closeFn: func() error {
			rr.Release()
			return pf.Close()
		},
	}, nil
}
