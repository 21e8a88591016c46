package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"

	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// rowBuffer is the size of the plugin's gRPC connection buffers.
const rowBuffer = 1 << 20

// maxStatusBytes bounds an error message the plugin sends the enclave.
const maxStatusBytes = 1 << 10

// Serve serves m to the enclave and returns when the enclave closes the connection. Call it from
// main; it needs nothing but what go-plugin passes in the environment (the handshake cookie, the
// socket directory and the protocol versions), and run by hand it prints that it is a plugin and
// exits with status 1. Logs go to the process's stderr as JSON lines at a bounded rate.
func Serve(m Model) {
	lw := newLogWriter(os.Stderr)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: pluginSets(m, newLogger(lw)),
		GRPCServer:       newGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "plugin", Level: hclog.Warn, Output: lw, JSONFormat: true,
		}),
	})
}

// PluginSets returns the go-plugin plugin sets that serve m, keyed by protocol version. Serve uses
// them, and package plugintest uses them to serve m in-process; a plugin's main calls Serve.
func PluginSets(m Model) map[int]plugin.PluginSet {
	return pluginSets(m, newLogger(newLogWriter(os.Stderr)))
}

func pluginSets(m Model, log *slog.Logger) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		wire.ProtocolVersion: {wire.PluginName: &modelPlugin{model: m, log: log}},
	}
}

// newGRPCServer caps messages at wire.MaxMessageBytes. Its 1 MiB connection buffers (one row
// chunk each) cut the reads and writes of the row stream, its codec the copies of each chunk, and
// fixed 4 MiB flow-control windows (instead of windows grown from 64 KiB by estimate) the window
// updates: the enclave may send up to 4 MiB of rows ahead of the plugin's reading.
func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.MaxRecvMsgSize(wire.MaxMessageBytes), grpc.MaxSendMsgSize(wire.MaxMessageBytes),
		grpc.ReadBufferSize(rowBuffer), grpc.WriteBufferSize(rowBuffer), grpc.ForceServerCodec(newServerCodec()),
		grpc.InitialWindowSize(4<<20), grpc.InitialConnWindowSize(4<<20))
	return grpc.NewServer(opts...)
}

// modelPlugin is the plugin side of the go-plugin plugin: it serves a Model.
type modelPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	model Model
	log   *slog.Logger
}

func (p *modelPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterModelServer(s, &modelServer{model: p.model, broker: b, log: p.log})
	return nil
}

func (p *modelPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("sdk: a plugin serves the model; the enclave connects with package host")
}

type modelServer struct {
	pluginpb.UnimplementedModelServer
	model  Model
	broker *plugin.GRPCBroker
	log    *slog.Logger

	mu   sync.Mutex
	desc *Description
}

// describe calls the model's Describe once and validates the result.
func (s *modelServer) describe(ctx context.Context) (*Description, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.desc != nil {
		return s.desc, nil
	}
	d, err := safeDescribe(ctx, s.model, s.log)
	if err != nil {
		return nil, status.Error(codes.Aborted, sanitize("describe: "+err.Error(), maxStatusBytes))
	}
	d.Outputs = append([]OutputKind(nil), d.Outputs...)
	if err := d.Validate(); err != nil {
		return nil, status.Error(codes.FailedPrecondition, sanitize(err.Error(), maxStatusBytes))
	}
	s.desc = &d
	return s.desc, nil
}

func (s *modelServer) Describe(ctx context.Context, _ *pluginpb.DescribeRequest) (*pluginpb.Description, error) {
	d, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	return descriptionToPB(d), nil
}

func (s *modelServer) Train(stream pluginpb.Model_TrainServer) error {
	ctx := stream.Context()
	d, err := s.describe(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "sdk: the first message of Train must be its header")
	}
	in, err := inputFromHeader(h, d)
	if err != nil {
		return status.Error(codes.InvalidArgument, sanitize(err.Error(), maxStatusBytes))
	}
	in.Log = s.log
	if h.GetServicesBrokerId() != 0 && (h.GetOffersHe() || h.GetOffersAggregate()) {
		conn, err := s.broker.DialWithOptions(h.GetServicesBrokerId(),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes)))
		if err != nil {
			return status.Error(codes.Unavailable, sanitize("sdk: connecting to the enclave's services: "+err.Error(), maxStatusBytes))
		}
		defer conn.Close()
		if h.GetOffersHe() {
			p := h.GetHeParameters()
			in.HE = &heClient{params: HEParameters{Literal: p.GetLiteral(), Digest: p.GetDigest()}, c: pluginpb.NewHEClient(conn)}
		}
		if h.GetOffersAggregate() {
			in.Aggregate = &aggregateClient{c: pluginpb.NewAggregateClient(conn)}
		}
	}
	if h.GetHasRows() {
		rows := &rowSource{stream: stream}
		rr, err := ipc.NewReader(wire.NewChunkReader(rows.next), ipc.WithAllocator(memory.DefaultAllocator))
		if err != nil {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			return status.Error(codes.InvalidArgument, sanitize("sdk: reading the Arrow stream's schema: "+err.Error(), maxStatusBytes))
		}
		defer rr.Release()
		in.Rows = rr
	}

	out, err := safeTrain(ctx, s.model, in)
	if err != nil {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Error(codes.Aborted, sanitize(err.Error(), maxStatusBytes))
	}
	if out == nil {
		return status.Error(codes.FailedPrecondition, "sdk: Train returned neither an output nor an error")
	}
	if err := out.Check(d, in.Limits); err != nil {
		code := codes.FailedPrecondition
		if errors.Is(err, ErrOutputTooLarge) {
			code = codes.ResourceExhausted
		}
		return status.Error(code, sanitize(err.Error(), maxStatusBytes))
	}
	return sendOutput(stream.Send, out)
}

// errPanic marks a panic recovered from the model.
var errPanic = errors.New("plugin panicked")

// safeDescribe and safeTrain call the model, turning a panic into an error (with the stack in the
// log), so the enclave records a failure and a plugintest run fails instead of crashing the test.
// A panic on another goroutine still ends the process.
func safeDescribe(ctx context.Context, m Model, log *slog.Logger) (d Description, err error) {
	defer recoverPanic(&err, log)
	return m.Describe(ctx)
}

func safeTrain(ctx context.Context, m Model, in *TrainInput) (out *Output, err error) {
	defer recoverPanic(&err, in.Log)
	return m.Train(ctx, in)
}

func recoverPanic(err *error, log *slog.Logger) {
	if r := recover(); r != nil {
		log.Error("plugin panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = fmt.Errorf("%w: %v", errPanic, r)
	}
}

// inputFromHeader builds the TrainInput a header describes and checks it against the description.
func inputFromHeader(h *pluginpb.TrainHeader, d *Description) (*TrainInput, error) {
	mode := modeFromPB(h.GetMode())
	if mode != d.Mode {
		return nil, fmt.Errorf("sdk: the enclave runs the job in mode %q but the plugin declares mode %q", mode, d.Mode)
	}
	if h.GetHasRows() == (mode == ModeAggregate) {
		return nil, fmt.Errorf("sdk: mode %q with rows=%v: rows go with the plaintext and HE modes only", mode, h.GetHasRows())
	}
	if h.GetOffersHe() && mode != ModeHE || h.GetOffersAggregate() && mode != ModeAggregate {
		return nil, fmt.Errorf("sdk: services offered that mode %q does not use", mode)
	}
	hp, err := NewHyperparameters(h.GetHyperparameters())
	if err != nil {
		return nil, err
	}
	if h.GetOffersHe() {
		p := h.GetHeParameters()
		if err := (HEParameters{Literal: p.GetLiteral(), Digest: p.GetDigest()}).Check(); err != nil {
			return nil, err
		}
	}
	return &TrainInput{
		Mode:            mode,
		Features:        h.GetFeatures(),
		Label:           h.GetLabel(),
		Subject:         h.GetSubject(),
		Hyperparameters: hp,
		Limits:          limitsFromPB(h.GetLimits()),
	}, nil
}

// rowSource yields the chunks of the Arrow IPC stream from the Train stream, ending at RowsEnd.
type rowSource struct {
	stream pluginpb.Model_TrainServer
	total  uint64
	ended  bool
}

func (r *rowSource) next() ([]byte, error) {
	if r.ended {
		return nil, io.EOF
	}
	msg, err := r.stream.Recv()
	if err == io.EOF {
		return nil, &Error{Err: ErrInput, Detail: "the enclave closed the row stream before its end"}
	}
	if err != nil {
		return nil, err
	}
	switch m := msg.Msg.(type) {
	case *pluginpb.TrainRequest_Rows:
		r.total += uint64(len(m.Rows))
		return m.Rows, nil
	case *pluginpb.TrainRequest_RowsEnd:
		r.ended = true
		if m.RowsEnd.GetBytes() != r.total {
			return nil, &Error{Err: ErrInput, Detail: fmt.Sprintf("row stream cut: %d of %d bytes", r.total, m.RowsEnd.GetBytes())}
		}
		return nil, io.EOF
	default:
		return nil, &Error{Err: ErrInput, Detail: fmt.Sprintf("unexpected %T in the row stream", msg.Msg)}
	}
}
