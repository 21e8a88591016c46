package he

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"insitu/plugins/sdk"
)

// Cohort is a job's cohort as the enclave prepared it for encryption: the features transformed and
// bounded per the manifest, column-major, and the labels.
type Cohort struct {
	// Features names the features in model order.
	Features []string
	// Bounds holds the public interval [lo, hi] of each feature; every value of X[j] lies in Bounds[j].
	Bounds [][2]float64
	// X holds the features column-major: X[j][i] is feature j of sample i.
	X [][]float64
	// Y holds the labels, 0 or 1, one per sample; nil when the plugin gets no labels.
	Y []float64
}

// Len returns the number of samples.
func (c *Cohort) Len() int {
	if len(c.X) == 0 {
		return 0
	}
	return len(c.X[0])
}

// ErrCohort is returned for a cohort that does not fit the batch layout.
var ErrCohort = errors.New("he: cohort refused")

// CohortError says which feature and sample of a cohort break which rule. It never holds a value.
type CohortError struct {
	// Feature names the feature at fault, or sdk.HELabel; "" when the fault is the cohort's shape.
	Feature string
	// Row is the 1-based sample at fault, or 0.
	Row int
	// Rule says what is required.
	Rule string
}

func (e *CohortError) Error() string {
	s := ErrCohort.Error()
	if e.Feature != "" {
		s += fmt.Sprintf(": feature %q", e.Feature)
	}
	if e.Row > 0 {
		s += fmt.Sprintf(": sample %d", e.Row)
	}
	return s + ": " + e.Rule
}

// Unwrap returns ErrCohort.
func (e *CohortError) Unwrap() error { return ErrCohort }

// Meta returns the batch metadata of the cohort under parameters p.
func (c *Cohort) Meta(p Parameters) sdk.HEBatchMeta {
	return sdk.HEBatchMeta{Features: c.Features, Bounds: c.Bounds, Rows: c.Len(), Slots: p.Slots(), ParamsDigest: p.Digest()}
}

// Check validates the cohort for parameters p: the layout's metadata rules (names, bounds, sizes),
// one column of equal length per feature, every value within its feature's bounds, labels 0 or 1.
// Errors are *CohortError and name the feature and sample, never the value.
func (c *Cohort) Check(p Parameters) error {
	if len(c.X) != len(c.Features) {
		return &CohortError{Rule: fmt.Sprintf("%d feature columns for %d feature names", len(c.X), len(c.Features))}
	}
	if err := c.Meta(p).Validate(); err != nil {
		var se *sdk.Error
		if errors.As(err, &se) {
			return &CohortError{Rule: se.Detail}
		}
		return &CohortError{Rule: err.Error()}
	}
	n := c.Len()
	for j, col := range c.X {
		f := c.Features[j]
		if len(col) != n {
			return &CohortError{Feature: f, Rule: fmt.Sprintf("%d samples, the first feature has %d", len(col), n)}
		}
		lo, hi := c.Bounds[j][0], c.Bounds[j][1]
		for i, v := range col {
			if !(v >= lo && v <= hi) { // NaN fails too
				return &CohortError{Feature: f, Row: i + 1, Rule: "value outside the feature's public bounds; clip and scale it in the manifest's transforms"}
			}
		}
	}
	if c.Y != nil {
		if len(c.Y) != n {
			return &CohortError{Feature: sdk.HELabel, Rule: fmt.Sprintf("%d labels for %d samples", len(c.Y), n)}
		}
		for i, y := range c.Y {
			if y != 0 && y != 1 {
				return &CohortError{Feature: sdk.HELabel, Row: i + 1, Rule: "label other than 0 or 1"}
			}
		}
	}
	return nil
}

// Batches checks the cohort and returns it as an HE batch stream of layout sdk.HELayoutColumnsV1,
// encrypted under the job's public key: one record per ciphertext, block-major, the features in
// order and then the label when c.Y is set. Encryption runs lazily as the stream is read, on
// runtime.GOMAXPROCS goroutines, with at most a few ciphertexts per goroutine in memory. The reader
// stops its goroutines when released or when ctx ends; it must not outlive ctx's use. c must not
// change while the reader is in use.
func (k *JobKeys) Batches(ctx context.Context, c Cohort) (array.RecordReader, error) {
	if err := c.Check(k.params); err != nil {
		return nil, err
	}
	schema, err := sdk.HEBatchSchema(c.Meta(k.params))
	if err != nil {
		return nil, err
	}
	per := len(c.Features)
	if c.Y != nil {
		per++
	}
	r := &batchReader{keys: k, schema: schema, c: c, meta: c.Meta(k.params), perBlock: per}
	r.total = r.meta.Blocks() * per
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.refs.Store(1)
	return r, nil
}

// batchReader encrypts the cohort's ciphertexts in order with a pool of workers.
type batchReader struct {
	refs     atomic.Int64
	keys     *JobKeys
	schema   *arrow.Schema
	c        Cohort
	meta     sdk.HEBatchMeta
	perBlock int
	total    int

	ctx     context.Context
	cancel  context.CancelFunc
	started bool
	results chan chan encrypted // one per ciphertext, in stream order
	wg      sync.WaitGroup

	next int // index of the next ciphertext to return
	rec  arrow.Record
	err  error
}

type encrypted struct {
	ct  []byte
	err error
}

type encTask struct {
	idx int
	out chan<- encrypted
}

var _ array.RecordReader = (*batchReader)(nil)

func (r *batchReader) Schema() *arrow.Schema { return r.schema }
func (r *batchReader) Record() arrow.Record  { return r.rec }
func (r *batchReader) Err() error            { return r.err }
func (r *batchReader) Retain()               { r.refs.Add(1) }

func (r *batchReader) Release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	r.cancel()
	r.wg.Wait()
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
}

func (r *batchReader) start() {
	r.started = true
	workers := runtime.GOMAXPROCS(0)
	r.results = make(chan chan encrypted, 2*workers)
	tasks := make(chan encTask)
	r.wg.Add(1 + workers)
	go func() { // producer: hands out the ciphertexts in order, a bounded window ahead of the reader
		defer r.wg.Done()
		defer close(tasks)
		for idx := range r.total {
			out := make(chan encrypted, 1)
			select {
			case r.results <- out:
			case <-r.ctx.Done():
				return
			}
			select {
			case tasks <- encTask{idx, out}:
			case <-r.ctx.Done():
				return
			}
		}
	}()
	for range workers {
		go func() {
			defer r.wg.Done()
			c := r.keys.newCoder()
			for t := range tasks {
				if err := r.ctx.Err(); err != nil {
					t.out <- encrypted{err: err}
					continue
				}
				r.fill(c.values, t.idx)
				ct, err := c.encrypt(r.keys.params, false)
				t.out <- encrypted{ct: ct, err: err}
			}
		}()
	}
}

// fill writes the slots of ciphertext idx: the block's samples of its column, zeros after them.
func (r *batchReader) fill(values []float64, idx int) {
	b, k := idx/r.perBlock, idx%r.perBlock
	src := r.c.Y
	if k < len(r.c.X) {
		src = r.c.X[k]
	}
	s := r.meta.Slots
	n := copy(values, src[b*s:b*s+r.meta.BlockRows(b)])
	clear(values[n:])
}

func (r *batchReader) Next() bool {
	if r.rec != nil {
		r.rec.Release()
		r.rec = nil
	}
	if r.err != nil || r.next >= r.total {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return false
	}
	if !r.started {
		r.start()
	}
	var res encrypted
	select {
	case out := <-r.results:
		select {
		case res = <-out:
		case <-r.ctx.Done():
			res.err = r.ctx.Err()
		}
	case <-r.ctx.Done():
		res.err = r.ctx.Err()
	}
	if res.err != nil {
		r.err = res.err
		return false
	}
	b, k := r.next/r.perBlock, r.next%r.perBlock
	name := sdk.HELabel
	if k < len(r.c.Features) {
		name = r.c.Features[k]
	}
	bld := array.NewRecordBuilder(memory.DefaultAllocator, r.schema)
	defer bld.Release()
	bld.Field(0).(*array.Int32Builder).Append(int32(b))
	bld.Field(1).(*array.Int32Builder).Append(int32(r.meta.BlockRows(b)))
	bld.Field(2).(*array.StringBuilder).Append(name)
	bld.Field(3).(*array.BinaryBuilder).Append(res.ct)
	r.rec = bld.NewRecord()
	r.next++
	return true
}
