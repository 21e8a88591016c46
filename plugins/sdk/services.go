package sdk

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// The plugin side of the enclave's services, reached over go-plugin's multiplexed broker.

type heClient struct {
	params HEParameters
	c      pluginpb.HEClient
}

var _ HEContext = (*heClient)(nil)

func (h *heClient) Parameters() HEParameters { return h.params }

func (h *heClient) EvaluationKeys(ctx context.Context) ([]byte, error) {
	s, err := h.c.EvaluationKeys(ctx, &pluginpb.EvaluationKeysRequest{})
	if err != nil {
		return nil, serviceError(err)
	}
	return recvChunks(s.Recv)
}

func (h *heClient) Refresh(ctx context.Context, ciphertext []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := h.c.Refresh(ctx)
	if err != nil {
		return nil, serviceError(err)
	}
	for data := ciphertext; len(data) > 0; {
		k := min(len(data), wire.MaxChunkBytes)
		if err := s.Send(&pluginpb.Chunk{Data: data[:k]}); err != nil {
			if err == io.EOF {
				break // the enclave ended the call; Recv returns its status
			}
			return nil, serviceError(err)
		}
		data = data[k:]
	}
	if err := s.CloseSend(); err != nil {
		return nil, serviceError(err)
	}
	return recvChunks(s.Recv)
}

func recvChunks(recv func() (*pluginpb.Chunk, error)) ([]byte, error) {
	var out []byte
	for {
		c, err := recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, serviceError(err)
		}
		out = append(out, c.GetData()...)
	}
}

type aggregateClient struct {
	c pluginpb.AggregateClient
}

var _ AggregateClient = (*aggregateClient)(nil)

func (a *aggregateClient) Query(ctx context.Context, q AggregateQuery) (AggregateAnswer, error) {
	p, err := a.c.Query(ctx, queryToPB(q))
	if err != nil {
		return AggregateAnswer{}, serviceError(err)
	}
	return answerFromPB(p), nil
}

func (a *aggregateClient) Histogram(ctx context.Context, q HistogramQuery) (*HistogramAnswer, error) {
	p, err := a.c.Histogram(ctx, histogramQueryToPB(q))
	if err != nil {
		return nil, serviceError(err)
	}
	return histogramAnswerFromPB(p), nil
}

func (a *aggregateClient) Moments(ctx context.Context, q MomentsQuery) (*MomentsAnswer, error) {
	p, err := a.c.Moments(ctx, &pluginpb.MomentsQuery{Features: q.Features, ClipNorm: q.ClipNorm, Rho: q.Rho})
	if err != nil {
		return nil, serviceError(err)
	}
	return &MomentsAnswer{Features: p.GetFeatures(), XtX: matrixFromPB(p.GetXtx()), Xty: p.GetXty(),
		Suppressed: p.GetSuppressed(), Spent: spentFromPB(p.GetSpent())}, nil
}

func (a *aggregateClient) GLM(ctx context.Context, q GLMQuery) (*GLMAnswer, error) {
	p, err := a.c.GLM(ctx, &pluginpb.GLMQuery{Features: q.Features, Weights: q.Weights, Intercept: q.Intercept,
		Hessian: q.Hessian, ClipNorm: q.ClipNorm, Rho: q.Rho})
	if err != nil {
		return nil, serviceError(err)
	}
	return &GLMAnswer{Features: p.GetFeatures(), Gradient: p.GetGradient(), Hessian: matrixFromPB(p.GetHessian()),
		Spent: spentFromPB(p.GetSpent())}, nil
}

func (a *aggregateClient) TreeHistograms(ctx context.Context, q TreeQuery) (*TreeAnswer, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := a.c.TreeHistograms(ctx)
	if err != nil {
		return nil, serviceError(err)
	}
	send := func(r *pluginpb.TreeRequest) error {
		if err := s.Send(r); err != nil && err != io.EOF {
			return serviceError(err)
		}
		return nil // io.EOF: the enclave ended the call; Recv returns its status
	}
	if err := send(&pluginpb.TreeRequest{Msg: &pluginpb.TreeRequest_Header{Header: treeHeaderToPB(&q)}}); err != nil {
		return nil, err
	}
	for data := q.Model; len(data) > 0; {
		k := min(len(data), wire.MaxChunkBytes)
		if err := send(&pluginpb.TreeRequest{Msg: &pluginpb.TreeRequest_Model{Model: data[:k]}}); err != nil {
			return nil, err
		}
		data = data[k:]
	}
	if err := s.CloseSend(); err != nil {
		return nil, serviceError(err)
	}
	ans := &TreeAnswer{}
	for {
		r, err := s.Recv()
		if err == io.EOF {
			return nil, &Error{Err: ErrInput, Detail: "the enclave's tree answer ended without its budget line"}
		}
		if err != nil {
			return nil, serviceError(err)
		}
		if sp := r.GetSpent(); sp != nil {
			ans.Spent = spentFromPB(sp)
			return ans, nil
		}
		ans.Nodes = append(ans.Nodes, treeNodeFromPB(r.GetNode()))
	}
}

func (a *aggregateClient) Budget(ctx context.Context) (Budget, error) {
	p, err := a.c.Budget(ctx, &pluginpb.BudgetRequest{})
	if err != nil {
		return Budget{}, serviceError(err)
	}
	return Budget{Epsilon: p.GetEpsilon(), Delta: p.GetDelta(), Rho: p.GetRho(), RhoSpent: p.GetRhoSpent(),
		EpsilonSpent: p.GetEpsilonSpent(), RhoLeft: p.GetRhoLeft(), MinCount: int(p.GetMinCount())}, nil
}

// serviceError turns a service's status into an error: ErrNotOffered for a service the enclave does
// not offer, the context's error on cancellation, and the enclave's message otherwise.
func serviceError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.FailedPrecondition:
		return &Error{Err: ErrNotOffered, Detail: st.Message()}
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	return errors.New("sdk: enclave service: " + st.Message())
}
