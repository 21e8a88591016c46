package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// pluginBin is the reference logistic-regression plugin, a static executable built once per test
// binary: the plugin store accepts only such binaries.
var pluginBin string

func TestMain(m *testing.M) {
	sandbox.MaybeRunTrampoline()
	code := func() int {
		dir, err := os.MkdirTemp("", "insitu-api-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-o", dir+"/", "insitu/plugins/logreg")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build the reference plugin: %v\n%s", err, out)
			return 1
		}
		pluginBin = filepath.Join(dir, "logreg")
		return m.Run()
	}()
	os.Exit(code)
}

// The callers of the route × role test, by label.
const (
	asBank       = "bank"
	asOtherBank  = "other-bank"
	asSteward    = "steward"
	asResearcher = "researcher"
	asAdmin      = "admin"
	asUnreg      = "unregistered"
	asBadSig     = "bad-signature"
	asReplayed   = "replayed"
)

var callers = []string{asBank, asOtherBank, asSteward, asResearcher, asAdmin, asUnreg, asBadSig, asReplayed}

// fixture is an enclave holding a small synthetic dataset and its authorizations, with parties
// registered (two banks, two stewards, a researcher, an admin), served over TLS on loopback.
type fixture struct {
	e       *enclave.Enclave
	srv     *api.Server
	url, fp string
	dir     string
	synth   string
	sum     *synthetic.Summary
	ds      *dataset.Manifest
	ids     map[string]*keys.Identity // by caller label, plus "steward2"
	hc      *http.Client              // raw client pinning the certificate
	clock   *clock
	stop    func()
}

// clock is the server's clock, which tests may move.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) set(d time.Duration) {
	c.mu.Lock()
	c.off = d
	c.mu.Unlock()
}

func newFixture(t testing.TB, opts api.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "insitu-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o711)
	f := &fixture{dir: dir, synth: filepath.Join(dir, "synth"), ids: map[string]*keys.Identity{}, clock: &clock{}}
	if f.sum, err = synthetic.Generate(synthetic.Config{Enterprises: 400, Seed: 5}, f.synth); err != nil {
		t.Fatal(err)
	}
	in, err := datadir.Init(filepath.Join(dir, "dd"), filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if f.e, err = enclave.Open(ctx, in.Dir, keys.Source{File: filepath.Join(dir, "master.key")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.e.Close() })
	f.e.Consent = consent.New(f.e.DB, f.e.Audit, consent.Options{Now: func() time.Time { return synthetic.DefaultAsOf.Add(-time.Minute) }})
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(f.synth, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.ds, _, err = f.e.Ingest(ctx, "test", spec, mappings, dataset.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	af, err := os.Open(filepath.Join(f.synth, "authorizations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	if _, err := f.e.Consent.Import(ctx, "test", "authorizations.csv", af); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][3]string{
		{asBank, keys.RoleBank, f.sum.Bank}, {asOtherBank, keys.RoleBank, "other-bank"},
		{asSteward, keys.RoleSteward, "steward-1"}, {"steward2", keys.RoleSteward, "steward-2"},
		{asResearcher, keys.RoleResearcher, "researcher-1"}, {asAdmin, keys.RoleAdmin, "admin-1"},
		{asUnreg, keys.RoleBank, "bank-x"}, {asBadSig, keys.RoleBank, f.sum.Bank},
	} {
		id, err := keys.NewIdentity(p[1], p[2])
		if err != nil {
			t.Fatal(err)
		}
		f.ids[p[0]] = id
		if p[0] != asUnreg && p[0] != asBadSig {
			if _, err := f.e.Jobs.AddParty(ctx, "test", id.Public()); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.ids[asReplayed] = f.ids[asBank]
	cert, fp, err := api.LoadOrCreateCert(f.e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	f.fp = fp
	if opts.Now == nil {
		opts.Now = f.clock.now
	}
	f.srv = api.New(f.e, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.url = "https://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(sctx, ln, cert, 5*time.Second) }()
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(f.stop)
	tc, err := api.ClientTLSConfig(fp)
	if err != nil {
		t.Fatal(err)
	}
	f.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	t.Cleanup(f.hc.CloseIdleConnections)
	return f
}

// client returns an API client signing as the caller labelled who.
func (f *fixture) client(t testing.TB, who string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URL: f.url, Fingerprint: f.fp, Identity: f.ids[who]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// request builds a request signed by id (nil: unsigned) at the given time.
func (f *fixture) request(t *testing.T, id *keys.Identity, method, uri string, body []byte, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, f.url+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if id != nil {
		if err := api.SignRequest(req, id, sha256.Sum256(body), at); err != nil {
			t.Fatal(err)
		}
	}
	return req
}

// do sends req (again, with its body re-read from body) and returns the status and the error code.
func (f *fixture) do(t *testing.T, req *http.Request, body []byte) (int, string) {
	t.Helper()
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb struct {
		Error api.ErrorDetail `json:"error"`
	}
	if resp.StatusCode >= 400 {
		if err := jsonUnmarshal(data, &eb); err != nil || eb.Error.Code == "" {
			t.Fatalf("%s %s: status %d without a JSON error body: %q", req.Method, req.URL.Path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, eb.Error.Code
}

// sealedLabels seals the synthetic bank's labels to the enclave.
func (f *fixture) sealedLabels(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.synth, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, _, err := cohort.SealLabels(f.e.Identity.Public(), data, "labels.csv")
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// manifest is a plaintext-public logistic-regression job of bank on the synthetic dataset.
func (f *fixture) manifest(t *testing.T, bank, plugin, labels, detail string) *manifest.Manifest {
	t.Helper()
	var fields []manifest.Field
	for _, c := range cohort.FeatureColumns(f.ds) {
		if c.Item == "custom" || (c.CatalogType != "int" && c.CatalogType != "float") {
			continue
		}
		fields = append(fields, manifest.Field{Key: c.Name})
		if len(fields) == 6 {
			break
		}
	}
	m := &manifest.Manifest{
		Format: manifest.FormatV1, Bank: bank, Purpose: consent.PurposeModelDevelopment, PurposeDetail: detail,
		Dataset: manifest.Dataset{Name: f.ds.Name, Version: fmt.Sprint(f.ds.Version)},
		Fields:  fields, Mode: sdk.ModePlaintextPublic,
		Model:  manifest.Model{Family: sdk.FamilyLogisticRegression, Hyperparameters: map[string]any{"lambda": 0.01}},
		Plugin: plugin, Labels: labels,
		Outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 64, MaxAbs: 100},
			Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}},
		Expires: time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// signed signs m with id and returns the envelope.
func signed(t *testing.T, m *manifest.Manifest, id *keys.Identity) []byte {
	t.Helper()
	s, err := manifest.Sign(m, id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Marshal()
}

// uploadPlugin uploads the reference plugin as who.
func (f *fixture) uploadPlugin(t *testing.T, c *client.Client) string {
	t.Helper()
	fh, err := os.Open(pluginBin)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	up, err := c.UploadPlugin(context.Background(), fh, "logreg")
	if err != nil {
		t.Fatal(err)
	}
	return up.Digest
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// api0 is the server's default options.
func api0() api.Options { return api.Options{} }
