package plugintest_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/plugintest"
)

// counter is a plugin that reads every batch and reports how many rows and values it saw.
type counter struct{}

func (counter) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "counter", Family: "row_counter", Mode: sdk.ModePlaintextPublic,
		Outputs: []sdk.OutputKind{sdk.OutputMetrics}}, nil
}

func (counter) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	var rows, sum float64
	for in.Rows.Next() {
		rec := in.Rows.Record()
		rows += float64(rec.NumRows())
		// Touch the first feature column so the data is really there.
		for _, v := range rec.Column(1).(*array.Float64).Float64Values() {
			sum += v
		}
	}
	if err := in.Rows.Err(); err != nil {
		return nil, err
	}
	return &sdk.Output{Metrics: map[string]float64{"rows": rows, "sum": sum}}, nil
}

// benchTable returns a table of rows × cols float64 features in batches of 8192 rows.
func benchTable(rows, cols int) *plugintest.Table {
	tab := &plugintest.Table{BatchRows: 8192, Subjects: make([]string, rows), Columns: make([][]float64, cols)}
	for i := range tab.Subjects {
		tab.Subjects[i] = fmt.Sprintf("p_%012d", i)
	}
	for j := range cols {
		tab.Features = append(tab.Features, fmt.Sprintf("f%d", j))
		tab.Columns[j] = make([]float64, rows)
		for i := range rows {
			tab.Columns[j][i] = float64(i*cols + j)
		}
	}
	return tab
}

// ipcBytes returns the size of the Arrow IPC stream of a reader's records.
func ipcBytes(tb testing.TB, rr array.RecordReader) int64 {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rr.Schema()), ipc.WithAllocator(memory.DefaultAllocator))
	for rr.Next() {
		if err := w.Write(rr.Record()); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return int64(buf.Len())
}

// materialise reads a reader's records once so every iteration streams the same batches.
func materialise(rr array.RecordReader) (*arrow.Schema, []arrow.Record) {
	var recs []arrow.Record
	for rr.Next() {
		r := rr.Record()
		r.Retain()
		recs = append(recs, r)
	}
	return rr.Schema(), recs
}

// BenchmarkStream measures Arrow batch streaming into a plugin over the real transport
// (go-plugin's gRPC over a unix socket, multiplexed broker on), in-process: one Train call per
// operation, setup included, with a plugin that reads every batch. The bytes per operation are
// those of the Arrow IPC stream (a 14-byte subject and float64 features per row).
//
// Measured on 2 shared cores (AMD EPYC), go test -bench BenchmarkStream -benchtime 10x:
// 770–820 MB/s at 100k×10 (8.8 MB, setup-bound), 1.09–1.18 GB/s at 1M×10 and 200k×100; the goal
// is 500 MB/s.
func BenchmarkStream(b *testing.B) {
	for _, size := range []struct{ rows, cols int }{{100_000, 10}, {1_000_000, 10}, {200_000, 100}} {
		b.Run(fmt.Sprintf("rows=%d_cols=%d", size.rows, size.cols), func(b *testing.B) {
			tab := benchTable(size.rows, size.cols)
			schema, recs := materialise(tab.Reader())
			b.SetBytes(ipcBytes(b, tab.Reader()))
			client := plugintest.Start(b, counter{})
			req := tab.Request(sdk.Hyperparameters{})
			b.ResetTimer()
			for range b.N {
				rr, _ := array.NewRecordReader(schema, recs)
				req.Rows = rr
				out, err := client.Train(context.Background(), req)
				if err != nil {
					b.Fatal(err)
				}
				if out.Metrics["rows"] != float64(size.rows) {
					b.Fatalf("plugin saw %v rows, want %d", out.Metrics["rows"], size.rows)
				}
			}
		})
	}
}
