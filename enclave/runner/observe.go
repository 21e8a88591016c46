package runner

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"insitu/plugins/sdk"
)

// observer sees, for tests, every message the runner sends the plugin: the gRPC requests on the
// plugin's connection, marshalled as they go on the wire, and — through wrapHE — what the HE
// service answers over the broker.
type observer struct {
	sent   func(msg []byte)
	wrapHE func(sdk.HEContext) sdk.HEContext
}

// dialOptions returns the interceptors that hand every request message to o.sent; none for a nil o.
func (o *observer) dialOptions() []grpc.DialOption {
	if o == nil || o.sent == nil {
		return nil
	}
	record := func(m any) {
		if pm, ok := m.(proto.Message); ok {
			if b, err := proto.Marshal(pm); err == nil {
				o.sent(b)
			}
		}
	}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		record(req)
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	stream := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &recordingStream{ClientStream: cs, record: record}, nil
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream)}
}

type recordingStream struct {
	grpc.ClientStream
	record func(any)
}

func (s *recordingStream) SendMsg(m any) error {
	s.record(m)
	return s.ClientStream.SendMsg(m)
}
