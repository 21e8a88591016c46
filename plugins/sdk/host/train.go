package host

import (
	"context"
	"fmt"
	"io"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// TrainRequest is one training job for a plugin.
type TrainRequest struct {
	// Mode is the mode the enclave runs the job in; it must equal the plugin's declared mode.
	Mode sdk.Mode
	// Rows are streamed to the plugin in ModePlaintextPublic and ModeHE, and must be nil in
	// ModeAggregate. Train reads them to the end or until the plugin stops reading, in bounded
	// chunks with back-pressure; it neither retains nor releases the reader, and stops using it
	// before it returns. In ModePlaintextPublic the schema must hold Subject (utf8), the Features
	// (float64) and Label (float64) when set.
	Rows array.RecordReader
	// Features names the feature columns, in model order.
	Features []string
	// Label names the label column, or "" when the plugin gets no labels.
	Label string
	// Subject names the subject pseudonym column.
	Subject string
	// Hyperparameters are the job's hyperparameters for the plugin.
	Hyperparameters sdk.Hyperparameters
	// HE is offered to the plugin over the broker in ModeHE; nil means not offered.
	HE sdk.HEContext
	// Aggregate is offered to the plugin over the broker in ModeAggregate; nil means not offered.
	Aggregate sdk.AggregateClient
	// Limits bound the output; the zero value means the Config's limits.
	Limits sdk.Limits
}

// check validates the request against the plugin's description and returns the header to send.
func (r *TrainRequest) header(d *sdk.Description, lim sdk.Limits) (*pluginpb.TrainHeader, error) {
	bad := func(format string, args ...any) error {
		return &Error{Op: "train", Err: ErrRequest, Detail: fmt.Sprintf(format, args...)}
	}
	if r.Mode != d.Mode {
		return nil, bad("mode %q, but the plugin declares mode %q", r.Mode, d.Mode)
	}
	if (r.Rows == nil) != (r.Mode == sdk.ModeAggregate) {
		return nil, bad("mode %q needs rows: %v", r.Mode, r.Mode != sdk.ModeAggregate)
	}
	if r.HE != nil && r.Mode != sdk.ModeHE || r.Aggregate != nil && r.Mode != sdk.ModeAggregate {
		return nil, bad("a service offered that mode %q does not use", r.Mode)
	}
	names := append(append([]string{r.Subject}, r.Features...), r.Label)
	for i, n := range names {
		if len(n) > wire.MaxNameBytes || n == "" && i < len(names)-1 {
			return nil, bad("column name %q is empty or longer than %d bytes", n, wire.MaxNameBytes)
		}
	}
	if d.Needs.Labels && r.Label == "" {
		return nil, bad("the plugin needs labels and the request names no label column")
	}
	if r.Mode == sdk.ModePlaintextPublic {
		if err := checkPlainSchema(r.Rows.Schema(), r); err != nil {
			return nil, bad("%v", err)
		}
	}
	h := &pluginpb.TrainHeader{
		Mode:            modeToPB(r.Mode),
		Features:        r.Features,
		Label:           r.Label,
		Subject:         r.Subject,
		Hyperparameters: r.Hyperparameters.JSON(),
		HasRows:         r.Rows != nil,
		OffersHe:        r.HE != nil,
		OffersAggregate: r.Aggregate != nil,
		Limits:          &pluginpb.Limits{MaxOutputFloats: uint64(lim.MaxOutputFloats), MaxOutputBytes: uint64(lim.MaxOutputBytes)},
	}
	if r.HE != nil {
		p := r.HE.Parameters()
		if err := p.Check(); err != nil {
			return nil, bad("%v", err)
		}
		h.HeParameters = &pluginpb.HEParameters{Literal: p.Literal, Digest: p.Digest}
	}
	if n := proto.Size(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Header{Header: h}}); n > wire.MaxChunkBytes {
		return nil, bad("the job's header (names, hyperparameters, HE parameters) takes %d bytes, limit %d", n, wire.MaxChunkBytes)
	}
	return h, nil
}

// checkPlainSchema checks the plaintext row layout the SDK documents.
func checkPlainSchema(s *arrow.Schema, r *TrainRequest) error {
	col := func(name string, ok func(arrow.DataType) bool, want string) error {
		idx := s.FieldIndices(name)
		if len(idx) != 1 {
			return fmt.Errorf("column %q appears %d times in the rows, want once", name, len(idx))
		}
		if t := s.Field(idx[0]).Type; !ok(t) {
			return fmt.Errorf("column %q has type %s, want %s", name, t, want)
		}
		return nil
	}
	isFloat := func(t arrow.DataType) bool { return t.ID() == arrow.FLOAT64 }
	if err := col(r.Subject, func(t arrow.DataType) bool { return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING }, "utf8"); err != nil {
		return err
	}
	for _, f := range r.Features {
		if err := col(f, isFloat, "float64"); err != nil {
			return err
		}
	}
	if r.Label != "" {
		return col(r.Label, isFloat, "float64")
	}
	return nil
}

func (c *client) Train(ctx context.Context, req TrainRequest) (*sdk.Output, error) {
	c.trainMu.Lock()
	defer c.trainMu.Unlock()
	d, err := c.describe(ctx)
	if err != nil {
		return nil, err
	}
	lim := req.Limits
	if lim == (sdk.Limits{}) {
		lim = c.cfg.Limits
	}
	lim = lim.WithDefaults()
	h, err := req.header(d, lim)
	if err != nil {
		return nil, err
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.done, cancel) // the plugin process exited
	defer stop()

	if c.broker != nil {
		id, closeServices, err := c.serveServices(req.HE, req.Aggregate, d.Mode)
		if err != nil {
			return nil, err
		}
		defer closeServices()
		h.ServicesBrokerId = id
	}

	callOpts := []grpc.CallOption{grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes)}
	stream, err := c.model.Train(ctx, callOpts...)
	if err != nil {
		return nil, classify(parent, "train", err)
	}
	if err := stream.Send(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Header{Header: h}}); err != nil && err != io.EOF {
		return nil, classify(parent, "train", err)
	}

	// The sender streams the rows while this goroutine reads the output: a plugin may answer
	// before it has read everything. The sender reports only failures of the host's own rows (and
	// then cancels the stream); a failed Send means the stream is over, and Recv tells why.
	inputErr := make(chan error, 1)
	go func() {
		err := c.sendRows(stream, req.Rows)
		if err != nil {
			cancel()
		}
		inputErr <- err
	}()

	out, recvErr := c.receive(parent, stream, d, lim)
	cancel() // unblocks a sender the plugin stopped reading from
	inErr := <-inputErr
	switch {
	case recvErr != nil && parent.Err() != nil:
		return nil, &Error{Op: "train", Err: parent.Err(), Cause: recvErr}
	case inErr != nil:
		return nil, &Error{Op: "train", Err: ErrInput, Detail: inErr.Error(), Cause: inErr}
	case recvErr != nil:
		return nil, recvErr
	}
	return out, nil
}

// receive reads the output stream to its end. ctx is the caller's context, for classifying errors.
func (c *client) receive(ctx context.Context, stream pluginpb.Model_TrainClient, d *sdk.Description, lim sdk.Limits) (*sdk.Output, error) {
	a := newAssembler(d, lim)
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			if !a.done {
				return nil, protocolError("train", "the plugin ended Train without an output")
			}
			return &a.out, nil
		}
		if err != nil {
			return nil, classify(ctx, "train", err)
		}
		if err := a.add(msg); err != nil {
			return nil, err
		}
	}
}

// sendRows streams rows as an Arrow IPC stream cut into chunks, then RowsEnd, then closes the send
// side. It returns an error only when reading or encoding the rows fails.
func (c *client) sendRows(stream pluginpb.Model_TrainClient, rows array.RecordReader) error {
	var sendErr error
	send := func(m *pluginpb.TrainRequest) error {
		if sendErr == nil {
			sendErr = stream.Send(m)
		}
		return sendErr
	}
	defer func() {
		if sendErr == nil {
			_ = stream.CloseSend()
		}
	}()
	if rows == nil {
		return nil
	}
	cw := wire.NewChunkWriter(c.cfg.ChunkBytes, func(b []byte) error {
		return send(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_Rows{Rows: b}})
	})
	w := ipc.NewWriter(cw, ipc.WithSchema(rows.Schema()))
	for rows.Next() {
		rec := rows.Record()
		if err := c.writeRecord(w, rec); err != nil {
			if sendErr != nil {
				return nil
			}
			return fmt.Errorf("encoding a record batch: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		if sendErr != nil {
			return nil
		}
		return fmt.Errorf("ending the Arrow stream: %w", err)
	}
	if cw.Flush() != nil {
		return nil
	}
	_ = send(&pluginpb.TrainRequest{Msg: &pluginpb.TrainRequest_RowsEnd{RowsEnd: &pluginpb.RowsEnd{Bytes: uint64(cw.Total())}}})
	return nil
}

// writeRecord writes rec, cut into row slices of at most MaxBatchBytes.
func (c *client) writeRecord(w *ipc.Writer, rec arrow.Record) error {
	n := rec.NumRows()
	size := recordBytes(rec)
	if n <= 1 || size <= c.cfg.MaxBatchBytes {
		return w.Write(rec)
	}
	step := max(1, n*c.cfg.MaxBatchBytes/size)
	for lo := int64(0); lo < n; lo += step {
		s := rec.NewSlice(lo, min(n, lo+step))
		err := w.Write(s)
		s.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// recordBytes estimates the memory of a record: the sizes of its columns' buffers (whole buffers,
// so a slice counts its parent's).
func recordBytes(rec arrow.Record) int64 {
	var n int64
	var add func(d arrow.ArrayData)
	add = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			add(c)
		}
	}
	for _, col := range rec.Columns() {
		add(col.Data())
	}
	return n
}
