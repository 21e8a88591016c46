// Package plugintest runs a model plugin in-process through the real plugin transport, so a bank
// can test its plugin with go test: the same gRPC services, the same Arrow streaming in bounded
// chunks, the same output framing and limits, and the enclave's services over go-plugin's
// multiplexed broker, only without a subprocess or a sandbox.
//
// Call Train with a Model and a host.TrainRequest (Table builds the rows of one), or Start for the
// host.Client to call Describe and Train on yourself:
//
//	tab := &plugintest.Table{Features: []string{"x1", "x2"}, Subjects: ..., Columns: ..., Labels: ...}
//	out, err := plugintest.Train(t, mymodel.New(), tab.Request(sdk.MustHyperparameters(map[string]any{"lambda": 1})))
package plugintest

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/internal/wire"
)

// pair joins the plugin side (serving the model) and the host side (the client) of the go-plugin
// plugin, since go-plugin's test connection takes one plugin set for both ends.
type pair struct {
	plugin.NetRPCUnsupportedPlugin
	server plugin.GRPCPlugin
	client plugin.GRPCPlugin
}

func (p *pair) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	return p.server.GRPCServer(b, s)
}

func (p *pair) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return p.client.GRPCClient(ctx, b, c)
}

// Start serves m in-process over a unix socket with go-plugin's multiplexed gRPC broker and returns
// the host's client for it. cfg, when given, configures the host side (limits, chunk size). The
// connection is closed when the test ends.
//
// go-plugin's in-process connection logs at debug level to hclog's default output; Start keeps
// only its warnings and errors (it redirects hclog.DefaultOutput once, if nobody has).
func Start(t testing.TB, m sdk.Model, cfg ...host.Config) host.Client {
	t.Helper()
	quietOnce.Do(func() {
		if hclog.DefaultOutput == io.Writer(os.Stderr) {
			hclog.DefaultOutput = warningsOnly{os.Stderr}
		}
	})
	var c host.Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	serverSide, ok := sdk.PluginSets(m)[wire.ProtocolVersion][wire.PluginName].(plugin.GRPCPlugin)
	if !ok {
		t.Fatal("plugintest: the SDK serves no gRPC plugin")
	}
	ps := map[string]plugin.Plugin{wire.PluginName: &pair{server: serverSide, client: &host.Plugin{Config: c}}}
	// Closing the client asks the plugin side to stop (go-plugin's controller service); stopping
	// the server here as well would race with that.
	rpc, _ := plugin.TestPluginGRPCConn(t, true, ps)
	t.Cleanup(func() { _ = rpc.Close() })
	client, err := host.Dispense(rpc)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return client
}

// Train serves m in-process, runs one training job and returns the output, or the error the
// enclave's runner would see (a *host.Error).
func Train(t testing.TB, m sdk.Model, req host.TrainRequest) (*sdk.Output, error) {
	t.Helper()
	return Start(t, m).Train(context.Background(), req)
}

var quietOnce sync.Once

// warningsOnly passes on the log lines of hclog's text format at level WARN or ERROR.
type warningsOnly struct{ w io.Writer }

func (q warningsOnly) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("[WARN]")) || bytes.Contains(p, []byte("[ERROR]")) {
		return q.w.Write(p)
	}
	return len(p), nil
}
