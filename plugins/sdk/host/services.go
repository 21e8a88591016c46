package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// serveServices serves the enclave's services for one Train call on a new broker id, over
// go-plugin's broker (multiplexed over the plugin's own connection when the ClientConfig sets
// GRPCBrokerMultiplex). A service the request does not offer answers FailedPrecondition. The
// returned func stops serving and waits for the server to end.
func (c *client) serveServices(he sdk.HEContext, agg sdk.AggregateClient, mode sdk.Mode) (uint32, func(), error) {
	id := c.broker.NextId()
	ln, err := c.broker.Accept(id)
	if err != nil {
		return 0, nil, &Error{Op: "train", Err: ErrConnection, Detail: "opening the broker listener for the enclave's services", Cause: err}
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(wire.MaxMessageBytes), grpc.MaxSendMsgSize(wire.MaxMessageBytes))
	pluginpb.RegisterHEServer(s, &heServer{he: he, mode: mode, maxRefresh: c.cfg.MaxRefreshBytes})
	pluginpb.RegisterAggregateServer(s, &aggregateServer{agg: agg, mode: mode})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	return id, func() {
		s.Stop()
		_ = ln.Close()
		<-done
	}, nil
}

func notOffered(service string, mode sdk.Mode) error {
	return status.Errorf(codes.FailedPrecondition, "the enclave does not offer the %s service to this job (mode %q)", service, mode)
}

// serviceStatus turns a service's error into the status the plugin sees. Its message reaches the
// plugin: services must keep data-dependent values out of their errors.
func serviceStatus(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Aborted, err.Error())
}

type heServer struct {
	pluginpb.UnimplementedHEServer
	he         sdk.HEContext
	mode       sdk.Mode
	maxRefresh int64
}

func sendChunks(data []byte, send func(*pluginpb.Chunk) error) error {
	for len(data) > 0 {
		k := min(len(data), wire.MaxChunkBytes)
		if err := send(&pluginpb.Chunk{Data: data[:k]}); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

func (s *heServer) EvaluationKeys(_ *pluginpb.EvaluationKeysRequest, stream pluginpb.HE_EvaluationKeysServer) error {
	if s.he == nil {
		return notOffered("HE evaluation keys", s.mode)
	}
	keys, err := s.he.EvaluationKeys(stream.Context())
	if err != nil {
		return serviceStatus(err)
	}
	return sendChunks(keys, stream.Send)
}

func (s *heServer) Refresh(stream pluginpb.HE_RefreshServer) error {
	if s.he == nil {
		return notOffered("HE refresh", s.mode)
	}
	var ct []byte
	for {
		c, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if int64(len(ct))+int64(len(c.GetData())) > s.maxRefresh {
			return status.Errorf(codes.ResourceExhausted, "ciphertext larger than %d bytes", s.maxRefresh)
		}
		ct = append(ct, c.GetData()...)
	}
	if len(ct) == 0 {
		return status.Error(codes.InvalidArgument, "empty ciphertext")
	}
	out, err := s.he.Refresh(stream.Context(), ct)
	if err != nil {
		return serviceStatus(err)
	}
	return sendChunks(out, stream.Send)
}

type aggregateServer struct {
	pluginpb.UnimplementedAggregateServer
	agg  sdk.AggregateClient
	mode sdk.Mode
}

func (s *aggregateServer) Query(ctx context.Context, p *pluginpb.AggregateQuery) (*pluginpb.AggregateAnswer, error) {
	if s.agg == nil {
		return nil, notOffered("aggregate query", s.mode)
	}
	q, err := queryFromPB(p)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	a, err := s.agg.Query(ctx, q)
	if err != nil {
		return nil, serviceStatus(err)
	}
	return answerToPB(a), nil
}

func (s *aggregateServer) Histogram(ctx context.Context, p *pluginpb.HistogramQuery) (*pluginpb.HistogramAnswer, error) {
	if s.agg == nil {
		return nil, notOffered("aggregate query", s.mode)
	}
	q, err := histogramQueryFromPB(p)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	a, err := s.agg.Histogram(ctx, q)
	if err != nil {
		return nil, serviceStatus(err)
	}
	return histogramAnswerToPB(a), nil
}

func (s *aggregateServer) Moments(ctx context.Context, p *pluginpb.MomentsQuery) (*pluginpb.MomentsAnswer, error) {
	if s.agg == nil {
		return nil, notOffered("aggregate query", s.mode)
	}
	if err := checkNames(p.GetFeatures()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	a, err := s.agg.Moments(ctx, sdk.MomentsQuery{Features: p.GetFeatures(), ClipNorm: p.GetClipNorm(), Rho: p.GetRho()})
	if err != nil {
		return nil, serviceStatus(err)
	}
	return &pluginpb.MomentsAnswer{Features: a.Features, Xtx: matrixToPB(a.XtX), Xty: a.Xty, Suppressed: a.Suppressed,
		Spent: spentToPB(a.Spent)}, nil
}

func (s *aggregateServer) GLM(ctx context.Context, p *pluginpb.GLMQuery) (*pluginpb.GLMAnswer, error) {
	if s.agg == nil {
		return nil, notOffered("aggregate query", s.mode)
	}
	if err := checkNames(p.GetFeatures()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if len(p.GetWeights()) > maxQueryColumns {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("more than %d weights", maxQueryColumns))
	}
	a, err := s.agg.GLM(ctx, sdk.GLMQuery{Features: p.GetFeatures(), Weights: p.GetWeights(), Intercept: p.GetIntercept(),
		Hessian: p.GetHessian(), ClipNorm: p.GetClipNorm(), Rho: p.GetRho()})
	if err != nil {
		return nil, serviceStatus(err)
	}
	return &pluginpb.GLMAnswer{Features: a.Features, Gradient: a.Gradient, Hessian: matrixToPB(a.Hessian), Spent: spentToPB(a.Spent)}, nil
}

func (s *aggregateServer) TreeHistograms(stream pluginpb.Aggregate_TreeHistogramsServer) error {
	if s.agg == nil {
		return notOffered("aggregate query", s.mode)
	}
	first, err := stream.Recv()
	if err != nil {
		if err == io.EOF {
			return status.Error(codes.InvalidArgument, "a tree query without its header")
		}
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return status.Error(codes.InvalidArgument, "a tree query must start with its header")
	}
	if h.GetModelBytes() > MaxTreeModelBytes {
		return status.Errorf(codes.ResourceExhausted, "tree model of %d bytes, more than %d", h.GetModelBytes(), MaxTreeModelBytes)
	}
	model := make([]byte, 0, h.GetModelBytes())
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if r.GetHeader() != nil {
			return status.Error(codes.InvalidArgument, "a tree query with a second header")
		}
		if uint64(len(model))+uint64(len(r.GetModel())) > h.GetModelBytes() {
			return status.Errorf(codes.InvalidArgument, "tree model longer than the %d bytes announced", h.GetModelBytes())
		}
		model = append(model, r.GetModel()...)
	}
	if uint64(len(model)) != h.GetModelBytes() {
		return status.Errorf(codes.InvalidArgument, "tree model of %d bytes, %d announced", len(model), h.GetModelBytes())
	}
	q, err := treeQueryFromPB(h, model)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	a, err := s.agg.TreeHistograms(stream.Context(), q)
	if err != nil {
		return serviceStatus(err)
	}
	for i := range a.Nodes {
		if err := stream.Send(&pluginpb.TreeResponse{Msg: &pluginpb.TreeResponse_Node{Node: treeNodeToPB(&a.Nodes[i])}}); err != nil {
			return err
		}
	}
	return stream.Send(&pluginpb.TreeResponse{Msg: &pluginpb.TreeResponse_Spent{Spent: spentToPB(a.Spent)}})
}

func (s *aggregateServer) Budget(ctx context.Context, _ *pluginpb.BudgetRequest) (*pluginpb.BudgetReport, error) {
	if s.agg == nil {
		return nil, notOffered("aggregate budget", s.mode)
	}
	b, err := s.agg.Budget(ctx)
	if err != nil {
		return nil, serviceStatus(err)
	}
	return budgetToPB(b), nil
}
