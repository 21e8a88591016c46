package runner

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"insitu/enclave/he"
	"insitu/enclave/pluginstore"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

// testInsecureLogN10Real is a small real-only parameter set (1024 slots), far below 128-bit
// security: unit tests only.
var testInsecureLogN10Real = he.Literal{
	LogN: 10, LogQ: []int{50, 40, 40}, LogP: []int{55}, LogDefaultScale: 40, RealOnly: true, InsecureForTesting: true,
}

// heCohort is the source of an HE test job: a table of enterprises keyed by credit code, and the
// HEInput the enclave prepares from it (the features only: identifiers never enter an HEInput).
type heCohort struct {
	codes []string // unified social credit codes, one per sample
	in    *HEInput
}

// Canaries planted in the test cohort: high-entropy feature values, a credit code.
var (
	canaryValues = []float64{0.7184305519368302, -0.4619837230165114, 0.9073180046127195}
	canaryCode   = "91350100MA2XN4PY7Q"
)

func newHECohort(t testing.TB, n int) *heCohort {
	t.Helper()
	p, err := he.NewParameters(testInsecureLogN10Real)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 9))
	feats := []string{"num.capital", "num.employees", "num.tax_paid", "cat.industry=c"}
	in := &HEInput{
		Params: p, Features: feats, Bounds: [][2]float64{{-1, 1}, {-1, 1}, {0, 1}, {0, 1}},
		MaxRefreshes: 3, Dataset: "sme_platform", Version: 1, Class: "platform",
	}
	for j := range feats {
		col := make([]float64, n)
		for i := range col {
			if j == 3 {
				col[i] = float64(rng.IntN(2))
			} else {
				col[i] = in.Bounds[j][0] + (in.Bounds[j][1]-in.Bounds[j][0])*rng.Float64()
			}
		}
		in.X = append(in.X, col)
	}
	in.Y = make([]float64, n)
	for i := range in.Y {
		in.Y[i] = float64(rng.IntN(2))
	}
	c := &heCohort{in: in}
	for i := range n {
		c.codes = append(c.codes, fmt.Sprintf("913501%012d", i))
	}
	// Sample 0 carries canaries (its values come back as the probe's "weights"), and so do samples
	// in the last block.
	in.X[0][0], in.X[1][0], in.X[0][n-2], in.X[1][n-1] = canaryValues[0], canaryValues[1], canaryValues[2], canaryValues[0]
	c.codes[7] = canaryCode
	return c
}

// heSpec is a strict run of the heprobe plugin on the cohort.
func heSpec(p *plugins, c *heCohort, tempDir string) RunSpec {
	return RunSpec{
		Plugins: p.store, Digest: p.heprobe, Mode: sdk.ModeHE, HE: c.in,
		Sandbox: sandbox.Spec{
			UID: testUID, GID: testUID, CgroupName: testCgroup,
			Limits: sandbox.Limits{WallClock: 60 * time.Second, Memory: 512 << 20},
		},
		Hyperparameters: sdk.MustHyperparameters(map[string]any{"refreshes": c.in.MaxRefreshes}),
		TempDir:         tempDir,
	}
}

func TestRunHERefusesBeforeStarting(t *testing.T) {
	c := newHECohort(t, 100)
	spec := RunSpec{Plugins: nil, Mode: sdk.ModeHE, HE: c.in}
	if _, err := Run(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "plugin store") {
		t.Fatalf("no store: %v", err)
	}
	store, err := pluginstore.Open(filepath.Join(t.TempDir(), "plugins"), pluginstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec.Plugins = store
	spec.Input = &PlainInput{}
	if _, err := Run(context.Background(), spec); err == nil || !strings.Contains(err.Error(), "no PlainInput") {
		t.Fatalf("both inputs: %v", err)
	}
	spec.Input = nil
	c.in.X[2][40] = 1.5 // outside [0, 1]
	res, err := Run(context.Background(), spec)
	if res != nil || !errors.Is(err, ErrInput) || !errors.Is(err, he.ErrCohort) || !strings.Contains(err.Error(), `"num.tax_paid"`) || !strings.Contains(err.Error(), "sample 41") {
		t.Fatalf("out-of-bounds value: %v", err)
	}
	if strings.Contains(err.Error(), "1.5") {
		t.Fatalf("the error shows the value: %v", err)
	}
}

func TestRunHE(t *testing.T) {
	needRoot(t)
	p := newPlugins(t)
	c := newHECohort(t, 2600) // 3 blocks of 1024 slots
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, heSpec(p, c, runDir(t)))
	if err != nil {
		if res != nil {
			t.Fatalf("%v (stderr %.1000s)", err, res.Stderr)
		}
		t.Fatal(err)
	}
	defer res.HE.Keys.Close()
	m := res.Output.Metrics
	if m["blocks"] != 3 || m["rows"] != 2600 || m["slots"] != 1024 || m["evk_bytes"] < 1<<20 || m["refused_beyond_budget"] != 1 {
		t.Fatalf("probe metrics %v", m)
	}
	if res.HE.Refreshes != 3 || res.HE.RefreshCalls != 4 || res.HE.ParamsDigest != c.in.Params.Digest() {
		t.Fatalf("HE result %+v", res.HE)
	}
	if res.Input.Rows != 2600 || res.Input.Class != "platform" || res.Input.Batches != 3*5 {
		t.Fatalf("input summary %+v", res.Input)
	}
	// The gate's view: slot 0 of each returned ciphertext is the first sample's value.
	w, err := res.HE.Keys.DecryptWeights(res.Output.Ciphertexts, c.in.Features)
	if err != nil {
		t.Fatal(err)
	}
	for j := range c.in.Features {
		if math.Abs(w.Values[j]-c.in.X[j][0]) > 1e-6 {
			t.Fatalf("weight %d decrypts to %g, want %g", j, w.Values[j], c.in.X[j][0])
		}
	}
	if math.Abs(w.Intercept-c.in.Y[0]) > 1e-6 {
		t.Fatalf("intercept %g, want %g", w.Intercept, c.in.Y[0])
	}
}

// recorder keeps every message the runner sends the plugin.
type recorder struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (r *recorder) add(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, bytes.Clone(b))
}

// recordingHE records what the HE service hands the plugin: the parameters, the evaluation keys
// and every refreshed ciphertext.
type recordingHE struct {
	sdk.HEContext
	rec *recorder
}

func (h recordingHE) Parameters() sdk.HEParameters {
	p := h.HEContext.Parameters()
	h.rec.add(p.Literal)
	h.rec.add(p.Digest)
	return p
}

func (h recordingHE) EvaluationKeys(ctx context.Context) ([]byte, error) {
	b, err := h.HEContext.EvaluationKeys(ctx)
	h.rec.add(b)
	if err != nil {
		h.rec.add([]byte(err.Error()))
	}
	return b, err
}

func (h recordingHE) Refresh(ctx context.Context, ct []byte) ([]byte, error) {
	b, err := h.HEContext.Refresh(ctx, ct)
	h.rec.add(b)
	if err != nil {
		h.rec.add([]byte(err.Error()))
	}
	return b, err
}

// canaryPatterns returns the byte strings whose presence in a message means a canary leaked: each
// float64 canary as its 8-byte little- and big-endian encodings, its float32 encoding, and its
// decimal text (shortest form and the first 10 significant digits); the credit code as text.
func canaryPatterns() map[string][]byte {
	pats := map[string][]byte{}
	for _, v := range canaryValues {
		bits := math.Float64bits(v)
		pats[fmt.Sprintf("%v as float64 LE", v)] = binary.LittleEndian.AppendUint64(nil, bits)
		pats[fmt.Sprintf("%v as float64 BE", v)] = binary.BigEndian.AppendUint64(nil, bits)
		pats[fmt.Sprintf("%v as float32 LE", v)] = binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(v)))
		pats[fmt.Sprintf("%v as text", v)] = []byte(strconv.FormatFloat(v, 'g', -1, 64))
		pats[fmt.Sprintf("%v as 10 digits", v)] = []byte(strconv.FormatFloat(math.Abs(v), 'f', 10, 64)[2:])
	}
	pats["credit code"] = []byte(canaryCode)
	return pats
}

// leaks returns the canaries found in the messages.
func leaks(msgs [][]byte) []string {
	var found []string
	for name, pat := range canaryPatterns() {
		for i, m := range msgs {
			if bytes.Contains(m, pat) {
				found = append(found, fmt.Sprintf("%s in message %d", name, i))
				break
			}
		}
	}
	return found
}

// TestHENoPlaintextLeak runs an HE job with canaries in the cohort, records every message sent to
// the plugin at the application layer (each gRPC request on the plugin's connection, marshalled,
// and everything the HE service answers over the broker), and finds none of the canaries. The
// positive control sends one canary in plaintext (in the hyperparameters) and the same search
// finds it.
func TestHENoPlaintextLeak(t *testing.T) {
	needRoot(t)
	p := newPlugins(t)
	c := newHECohort(t, 2600)
	if !slices.Contains(c.codes, canaryCode) {
		t.Fatal("the canary credit code is not in the cohort's source")
	}
	run := func(hyper map[string]any) (*recorder, *Result) {
		rec := &recorder{}
		spec := heSpec(p, c, runDir(t))
		spec.Hyperparameters = sdk.MustHyperparameters(hyper)
		spec.observe = &observer{sent: rec.add, wrapHE: func(h sdk.HEContext) sdk.HEContext { return recordingHE{h, rec} }}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := Run(ctx, spec)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		res.HE.Keys.Close()
		return rec, res
	}

	rec, res := run(map[string]any{"refreshes": 3})
	total := 0
	for _, m := range rec.msgs {
		total += len(m)
	}
	// What was recorded is the whole job: the batches (3 blocks × 5 ciphertexts), the keys and the
	// refreshed ciphertexts.
	if total < int(res.Input.Bytes) || len(rec.msgs) < 10 || res.HE.Refreshes != 3 {
		t.Fatalf("recorded %d messages, %d bytes; the batches alone took %d bytes", len(rec.msgs), total, res.Input.Bytes)
	}
	if !bytes.Contains(bytes.Join(rec.msgs, nil), []byte(sdk.MetaHELayout)) {
		t.Fatal("the recorded messages do not hold the Arrow stream of the batches")
	}
	if found := leaks(rec.msgs); len(found) > 0 {
		t.Fatalf("plaintext canaries reached the plugin: %v", found)
	}
	t.Logf("searched %d messages, %d bytes, for %d canary patterns: none found", len(rec.msgs), total, len(canaryPatterns()))

	// Positive control: one canary sent in plaintext is found by the same search.
	rec, _ = run(map[string]any{"refreshes": 3, "leak": canaryValues[1]})
	if found := leaks(rec.msgs); len(found) == 0 || !strings.Contains(strings.Join(found, " "), fmt.Sprint(canaryValues[1])) {
		t.Fatalf("the positive control's canary was not found: %v", found)
	}
}
