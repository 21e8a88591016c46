// Package host is the enclave's side of the plugin protocol: the go-plugin configuration that
// starts a model plugin and a typed Client that describes and trains it, enforcing the protocol's
// limits on everything the plugin sends.
//
// Call VersionedPlugins, Handshake and DialOptions to fill a plugin.ClientConfig (with
// GRPCBrokerMultiplex set: the enclave serves its HE and aggregate services to the plugin over the
// multiplexed broker, since a plugin under its own uid cannot connect to sockets the host creates),
// then Dispense on the connected plugin.ClientProtocol:
//
//	cfg := host.Config{}
//	c := plugin.NewClient(&plugin.ClientConfig{
//		HandshakeConfig:     host.Handshake(),
//		VersionedPlugins:    host.VersionedPlugins(cfg),
//		AllowedProtocols:    []plugin.Protocol{plugin.ProtocolGRPC},
//		GRPCBrokerMultiplex: true,
//		GRPCDialOptions:     host.DialOptions(),
//		Logger:              host.ClientLogger(), // level Off: see LogSink
//		Stderr:              host.NewLogSink(handler),
//		// RunnerFunc, SkipHostEnv, UnixSocketConfig: the runner's sandbox.
//	})
//	rpc, err := c.Client()
//	model, err := host.Dispense(rpc)
//	desc, err := model.Describe(ctx)
//	out, err := model.Train(ctx, host.TrainRequest{...})
//
// Errors are *Error values wrapping one sentinel (ErrProtocol, ErrOutputTooLarge, ErrInvalidOutput,
// ErrPluginFailed, ErrConnection, ErrInput, ErrRequest) or the context's error.
package host

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// ProtocolVersion is the plugin protocol version the host speaks (sdk.ProtocolVersion).
const ProtocolVersion = wire.ProtocolVersion

// PluginName is the name to pass to plugin.ClientProtocol.Dispense; Dispense does it for you.
const PluginName = wire.PluginName

// MaxMessageBytes bounds any one gRPC message between host and plugin.
const MaxMessageBytes = wire.MaxMessageBytes

// MaxChunkBytes bounds the payload of one message of a stream (rows, output parts, ciphertexts).
const MaxChunkBytes = wire.MaxChunkBytes

// Config tunes the host side. The zero value gives the defaults.
type Config struct {
	// Limits apply to every Train call whose request sets none (sdk.DefaultLimits when unset).
	Limits sdk.Limits
	// ChunkBytes is the payload of one message of the row stream (default and maximum
	// MaxChunkBytes).
	ChunkBytes int
	// MaxBatchBytes: record batches larger than this are cut into row slices before streaming, so
	// the plugin never needs more memory than this for one batch (default 8 MiB).
	MaxBatchBytes int64
	// MaxRefreshBytes bounds one ciphertext a plugin sends to the HE refresh service
	// (default 64 MiB).
	MaxRefreshBytes int64
	// MaxDescribeBytes bounds the Describe response (default 64 KiB).
	MaxDescribeBytes int
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.WithDefaults()
	if c.ChunkBytes <= 0 || c.ChunkBytes > wire.MaxChunkBytes {
		c.ChunkBytes = wire.MaxChunkBytes
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 8 << 20
	}
	if c.MaxRefreshBytes <= 0 {
		c.MaxRefreshBytes = 64 << 20
	}
	if c.MaxDescribeBytes <= 0 {
		c.MaxDescribeBytes = 64 << 10
	}
	return c
}

// Handshake returns the go-plugin handshake every insitu plugin answers.
func Handshake() plugin.HandshakeConfig { return wire.Handshake }

// VersionedPlugins returns the plugin sets for plugin.ClientConfig.VersionedPlugins, keyed by
// protocol version.
func VersionedPlugins(cfg Config) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		wire.ProtocolVersion: {wire.PluginName: &Plugin{Config: cfg}},
	}
}

// DialOptions returns gRPC dial options for plugin.ClientConfig.GRPCDialOptions: they cap every
// message the plugin sends on any of go-plugin's services (go-plugin's own default is 2 GiB).
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(wire.MaxMessageBytes), grpc.MaxCallSendMsgSize(wire.MaxMessageBytes))}
}

// Dispense returns the Client of a connected plugin.
func Dispense(rpc plugin.ClientProtocol) (Client, error) {
	raw, err := rpc.Dispense(wire.PluginName)
	if err != nil {
		return nil, &Error{Op: "dispense", Err: ErrConnection, Cause: err}
	}
	c, ok := raw.(Client)
	if !ok {
		return nil, &Error{Op: "dispense", Err: ErrProtocol, Detail: fmt.Sprintf("dispensed %T, not a host.Client", raw)}
	}
	return c, nil
}

// Plugin is the host side of the go-plugin plugin. VersionedPlugins builds it; it is exported so a
// harness can pair it with the plugin side (package plugintest does).
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Config Config
}

// GRPCServer implements plugin.GRPCPlugin; the host serves no model.
func (p *Plugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("host: the host side serves no model")
}

// GRPCClient implements plugin.GRPCPlugin: it returns a Client. ctx ends when the plugin process
// exits.
func (p *Plugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &client{cfg: p.Config.withDefaults(), broker: b, model: pluginpb.NewModelClient(conn), done: ctx}, nil
}

// Client describes and trains one plugin. Its methods are safe for concurrent use; Train calls run
// one at a time (go-plugin's multiplexed broker needs its connections opened in turn). A plugin
// process is meant for one job: the runner calls Describe, then Train once.
type Client interface {
	// Describe returns the plugin's validated description. The first successful answer is kept:
	// later calls return it without asking the plugin again.
	Describe(ctx context.Context) (sdk.Description, error)
	// Train streams the job to the plugin and returns its output, checked against the description
	// and the limits. It calls Describe first if nobody has. ctx bounds the whole call: on its end
	// the stream is cancelled and the error wraps ctx.Err().
	Train(ctx context.Context, req TrainRequest) (*sdk.Output, error)
}

type client struct {
	cfg    Config
	broker *plugin.GRPCBroker
	model  pluginpb.ModelClient
	done   context.Context

	mu   sync.Mutex
	desc *sdk.Description

	trainMu sync.Mutex // one Train at a time
}

var _ Client = (*client)(nil)

func (c *client) Describe(ctx context.Context) (sdk.Description, error) {
	d, err := c.describe(ctx)
	if err != nil {
		return sdk.Description{}, err
	}
	out := *d
	out.Outputs = append([]sdk.OutputKind(nil), d.Outputs...)
	return out, nil
}

func (c *client) describe(ctx context.Context) (*sdk.Description, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.desc != nil {
		return c.desc, nil
	}
	p, err := c.model.Describe(ctx, &pluginpb.DescribeRequest{}, grpc.MaxCallRecvMsgSize(c.cfg.MaxDescribeBytes))
	if err != nil {
		return nil, classify(ctx, "describe", err)
	}
	d, err := descriptionFromPB(p)
	if err != nil {
		return nil, err
	}
	c.desc = d
	return d, nil
}
