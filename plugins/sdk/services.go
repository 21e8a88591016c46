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
