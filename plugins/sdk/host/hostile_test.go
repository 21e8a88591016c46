package host_test

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	pb "insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// raw is a model server written against the protocol directly, as a hostile plugin could be.
type raw struct {
	pb.UnimplementedModelServer
	broker   *plugin.GRPCBroker
	describe func() (*pb.Description, error)
	train    func(r *raw, s pb.Model_TrainServer) error
}

func (r *raw) Describe(context.Context, *pb.DescribeRequest) (*pb.Description, error) {
	if r.describe != nil {
		return r.describe()
	}
	return &pb.Description{Name: "raw", Family: "x", Mode: pb.Mode_MODE_AGGREGATE,
		Outputs: []pb.OutputKind{pb.OutputKind_OUTPUT_WEIGHTS, pb.OutputKind_OUTPUT_METRICS}}, nil
}

func (r *raw) Train(s pb.Model_TrainServer) error { return r.train(r, s) }

type rawPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv    *raw
	client host.Plugin
}

func (p *rawPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	p.srv.broker = b
	pb.RegisterModelServer(s, p.srv)
	return nil
}

func (p *rawPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return p.client.GRPCClient(ctx, b, c)
}

// startRaw serves srv in-process over go-plugin's transport with the multiplexed broker.
func startRaw(t *testing.T, srv *raw, cfg host.Config) (host.Client, *plugin.GRPCServer) {
	t.Helper()
	rpc, server := plugin.TestPluginGRPCConn(t, true, map[string]plugin.Plugin{
		wire.PluginName: &rawPlugin{srv: srv, client: host.Plugin{Config: cfg}},
	})
	t.Cleanup(func() { _ = rpc.Close() }) // which stops the server
	c, err := host.Dispense(rpc)
	if err != nil {
		t.Fatal(err)
	}
	return c, server
}

var aggregateJob = host.TrainRequest{Mode: sdk.ModeAggregate, Subject: "s"}

func send(s pb.Model_TrainServer, m *pb.TrainResponse) error { return s.Send(m) }

func weightsHeader(n uint64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_WeightsHeader{WeightsHeader: &pb.WeightsHeader{Count: n}}}
}

func weightsPart(n int) *pb.TrainResponse {
	p := &pb.NamedValues{Names: make([]string, n), Values: make([]float64, n)}
	for i := range p.Names {
		p.Names[i] = "w"
	}
	return &pb.TrainResponse{Msg: &pb.TrainResponse_Weights{Weights: p}}
}

func TestHostileOutputs(t *testing.T) {
	cases := []struct {
		name  string
		train func(r *raw, s pb.Model_TrainServer) error
		want  error
		text  string
	}{
		{"announces 1e8 floats", func(r *raw, s pb.Model_TrainServer) error {
			if err := send(s, weightsHeader(1e8)); err != nil {
				return err
			}
			for {
				if err := send(s, weightsPart(50_000)); err != nil {
					return err
				}
			}
		}, host.ErrOutputTooLarge, "more than"},
		{"streams 1e8 floats without a header", func(r *raw, s pb.Model_TrainServer) error {
			for i := 0; i < 2000; i++ {
				if err := send(s, weightsPart(50_000)); err != nil {
					return err
				}
			}
			return nil
		}, host.ErrProtocol, "outside its section"},
		{"one message over the size limit", func(r *raw, s pb.Model_TrainServer) error {
			_ = send(s, weightsHeader(300_000))
			return send(s, weightsPart(300_000))
		}, host.ErrOutputTooLarge, "larger than max"},
		{"ends without an output", func(r *raw, s pb.Model_TrainServer) error {
			return send(s, weightsHeader(0))
		}, host.ErrProtocol, "without an output"},
		{"internal status", func(r *raw, s pb.Model_TrainServer) error {
			return status.Error(codes.Internal, "oops")
		}, host.ErrProtocol, "status Internal"},
		{"unknown method", func(r *raw, s pb.Model_TrainServer) error {
			return status.Error(codes.Unimplemented, "no")
		}, host.ErrProtocol, "Unimplemented"},
		{"failure with a hostile message", func(r *raw, s pb.Model_TrainServer) error {
			return status.Error(codes.Aborted, "line1\nline2\x1b[31m"+strings.Repeat("x", 5000))
		}, host.ErrPluginFailed, "the plugin says: line1 line2 [31mxxx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, _ := startRaw(t, &raw{train: c.train}, host.Config{Limits: sdk.Limits{MaxOutputFloats: 1e6}})
			_, err := client.Train(context.Background(), aggregateJob)
			t.Logf("%v", err)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.text)
			}
			if len(err.Error()) > 1200 || strings.ContainsAny(err.Error(), "\n\x1b") {
				t.Fatalf("error message not sanitised: %q", err.Error())
			}
		})
	}
}

func TestHostileDescriptions(t *testing.T) {
	cases := []struct {
		name string
		desc *pb.Description
		text string
	}{
		{"bad family", &pb.Description{Name: "a", Family: "Bad-Family", Mode: pb.Mode_MODE_HE, Outputs: []pb.OutputKind{1}}, "family"},
		{"unknown mode", &pb.Description{Name: "a", Family: "x", Mode: 99, Outputs: []pb.OutputKind{1}}, "unknown mode"},
		{"unknown output", &pb.Description{Name: "a", Family: "x", Mode: 1, Outputs: []pb.OutputKind{77}}, "unknown output kind"},
		{"oversize", &pb.Description{Name: strings.Repeat("a", 100_000), Family: "x", Mode: 1}, "too large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, _ := startRaw(t, &raw{describe: func() (*pb.Description, error) { return c.desc, nil }}, host.Config{})
			_, err := client.Describe(context.Background())
			if !errors.Is(err, host.ErrProtocol) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want ErrProtocol mentioning %q", err, c.text)
			}
			_, err = client.Train(context.Background(), aggregateJob)
			if !errors.Is(err, host.ErrProtocol) {
				t.Fatalf("Train after a bad description: %v", err)
			}
		})
	}
}

func TestDeadlineAndCancel(t *testing.T) {
	hang := func(r *raw, s pb.Model_TrainServer) error {
		<-s.Context().Done()
		return s.Context().Err()
	}
	client, _ := startRaw(t, &raw{train: hang}, host.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := client.Train(ctx, aggregateJob); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := client.Train(ctx, aggregateJob); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
}

func TestPluginGoesAway(t *testing.T) {
	started := make(chan struct{})
	hang := func(r *raw, s pb.Model_TrainServer) error {
		close(started)
		<-s.Context().Done()
		return nil
	}
	client, server := startRaw(t, &raw{train: hang}, host.Config{})
	go func() {
		<-started
		server.Stop()
	}()
	if _, err := client.Train(context.Background(), aggregateJob); !errors.Is(err, host.ErrConnection) {
		t.Fatalf("err = %v, want ErrConnection", err)
	}
}

// TestServicesNotOffered: a plugin that dials the broker for services its job does not offer gets
// a FailedPrecondition status naming the service, not data.
func TestServicesNotOffered(t *testing.T) {
	var refreshErr, queryErr, keysErr error
	train := func(r *raw, s pb.Model_TrainServer) error {
		m, err := s.Recv()
		if err != nil {
			return err
		}
		conn, err := r.broker.Dial(m.GetHeader().GetServicesBrokerId())
		if err != nil {
			return err
		}
		defer conn.Close()
		he := pb.NewHEClient(conn)
		rs, err := he.Refresh(s.Context())
		if err == nil {
			_ = rs.Send(&pb.Chunk{Data: []byte{1}})
			_ = rs.CloseSend()
			_, refreshErr = rs.Recv()
		}
		ks, err := he.EvaluationKeys(s.Context(), &pb.EvaluationKeysRequest{})
		if err == nil {
			_, keysErr = ks.Recv()
		}
		_, queryErr = pb.NewAggregateClient(conn).Query(s.Context(), &pb.AggregateQuery{Statistic: pb.Statistic_STATISTIC_COUNT})
		return send(s, &pb.TrainResponse{Msg: &pb.TrainResponse_End{End: &pb.OutputEnd{}}})
	}
	client, _ := startRaw(t, &raw{train: train}, host.Config{})
	if _, err := client.Train(context.Background(), aggregateJob); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"refresh": refreshErr, "keys": keysErr, "query": queryErr} {
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "does not offer") {
			t.Errorf("%s: %v, want FailedPrecondition", name, err)
		}
	}
}

// TestGarbageConnection: a plugin whose socket answers with bytes that are not HTTP/2 is a
// protocol error, not a lost connection.
func TestGarbageConnection(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nthis is not a gRPC server at all\r\n")); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c) // until the client gives up
			}()
		}
	}()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := (&host.Plugin{}).GRPCClient(context.Background(), nil, conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = raw.(host.Client).Describe(ctx)
	t.Logf("%v", err)
	if !errors.Is(err, host.ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

func TestVersions(t *testing.T) {
	if host.ProtocolVersion != sdk.ProtocolVersion || host.Handshake().ProtocolVersion != sdk.ProtocolVersion {
		t.Fatalf("host speaks %d (handshake %d), the SDK %d", host.ProtocolVersion, host.Handshake().ProtocolVersion, sdk.ProtocolVersion)
	}
	if _, ok := host.VersionedPlugins(host.Config{})[sdk.ProtocolVersion][host.PluginName]; !ok {
		t.Fatal("no plugin for the SDK's protocol version")
	}
	if _, ok := sdk.PluginSets(nil)[sdk.ProtocolVersion][host.PluginName]; !ok {
		t.Fatal("the SDK serves no plugin for its protocol version")
	}
}
