package plugintest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/host"
	"insitu/plugins/sdk/plugintest"
)

// fn is a model built from functions.
type fn struct {
	desc  sdk.Description
	train func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error)
}

func (m fn) Describe(context.Context) (sdk.Description, error) { return m.desc, nil }
func (m fn) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	return m.train(ctx, in)
}

func plainDesc(outputs ...sdk.OutputKind) sdk.Description {
	return sdk.Description{Name: "t", Family: "test", Mode: sdk.ModePlaintextPublic, Outputs: outputs}
}

func smallTable(n int) *plugintest.Table {
	tab := &plugintest.Table{Features: []string{"a", "b"}, Columns: [][]float64{make([]float64, n), make([]float64, n)}, BatchRows: 7}
	for i := range n {
		tab.Subjects = append(tab.Subjects, fmt.Sprintf("p_%d", i))
		tab.Columns[0][i] = float64(i)
		tab.Columns[1][i] = -float64(i) / 2
		tab.Labels = append(tab.Labels, float64(i%2))
	}
	return tab
}

// TestRoundTrip sends rows and hyperparameters one way and every kind of output back, with
// sections large enough to span several messages.
func TestRoundTrip(t *testing.T) {
	const subjects = 120_000 // ~2.5 MB of scores: several parts
	trees := &sdk.TreeEnsemble{Features: []string{"a", "b"}, BaseScore: 0.25}
	for k := range 3 {
		tr := sdk.Tree{Nodes: []sdk.TreeNode{{Feature: k % 2, Threshold: float64(k), Left: 1, Right: 2, MissingLeft: k == 1}, {Feature: -1, Value: 1}, {Feature: -1, Value: -1}}}
		trees.Trees = append(trees.Trees, tr)
	}
	big := sdk.Tree{Nodes: []sdk.TreeNode{{Feature: -1, Value: 7}}}
	for len(big.Nodes) < 40_001 { // a chain of splits deep enough to span parts
		i := len(big.Nodes)
		big.Nodes[i-1] = sdk.TreeNode{Feature: 0, Threshold: float64(i), Left: i, Right: i + 1}
		big.Nodes = append(big.Nodes, sdk.TreeNode{Feature: -1, Value: float64(i)}, sdk.TreeNode{Feature: -1, Value: 7})
	}
	trees.Trees = append(trees.Trees, big)
	var seen atomic.Value
	m := fn{desc: plainDesc(sdk.OutputWeights, sdk.OutputTrees, sdk.OutputScores, sdk.OutputMetrics),
		train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
			tab, err := sdk.ReadTable(ctx, in)
			if err != nil {
				return nil, err
			}
			var hp struct{ Depth int }
			if err := in.Hyperparameters.Decode(&hp); err != nil {
				return nil, err
			}
			seen.Store(fmt.Sprintf("%d rows, %v, label %s, subject %s, depth %d, sum %v, limits %+v",
				tab.Len(), tab.Features, in.Label, in.Subject, hp.Depth, tab.X[len(tab.X)-1]+tab.Y[tab.Len()-1], in.Limits))
			out := &sdk.Output{
				Weights: &sdk.Weights{Names: []string{"a", "b"}, Values: []float64{1.5, -2}, Intercept: 0.125},
				Trees:   trees,
				Metrics: map[string]float64{"auc": 0.75, "n": float64(tab.Len())},
			}
			for i := range subjects {
				out.Scores = append(out.Scores, sdk.Score{Subject: fmt.Sprintf("subject_%08d", i), Value: float64(i) / subjects})
			}
			return out, nil
		}}
	tab := smallTable(1000)
	req := tab.Request(sdk.MustHyperparameters(map[string]int{"Depth": 4}))
	req.Limits = sdk.Limits{MaxOutputFloats: 1 << 20, MaxOutputBytes: 1 << 25}
	out, err := plugintest.Train(t, m, req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := seen.Load(), "1000 rows, [a b], label label, subject subject, depth 4, sum -498.5, limits {MaxOutputFloats:1048576 MaxOutputBytes:33554432}"; got != want {
		t.Fatalf("plugin saw %q, want %q", got, want)
	}
	if out.Weights.Intercept != 0.125 || !slices.Equal(out.Weights.Values, []float64{1.5, -2}) || out.Metrics["n"] != 1000 {
		t.Fatalf("weights %+v metrics %v", out.Weights, out.Metrics)
	}
	if len(out.Scores) != subjects || out.Scores[subjects-1].Subject != fmt.Sprintf("subject_%08d", subjects-1) ||
		out.Scores[54321].Value != 54321.0/subjects {
		t.Fatalf("%d scores, last %+v", len(out.Scores), out.Scores[len(out.Scores)-1])
	}
	if out.Trees.BaseScore != 0.25 || len(out.Trees.Trees) != 4 || !slices.Equal(out.Trees.Trees[1].Nodes, trees.Trees[1].Nodes) ||
		!slices.Equal(out.Trees.Trees[3].Nodes, big.Nodes) {
		t.Fatalf("trees differ")
	}
}

func TestHEServices(t *testing.T) {
	literal := []byte(`{"LogN":14}`)
	digest := sha256.Sum256(literal)
	keys := bytes.Repeat([]byte{1, 2, 3}, 1_500_000) // 4.5 MB: several chunks
	he := &fakeHE{params: sdk.HEParameters{Literal: literal, Digest: digest[:]}, keys: keys}
	m := fn{desc: sdk.Description{Name: "he", Family: "helr", Mode: sdk.ModeHE, Outputs: []sdk.OutputKind{sdk.OutputCiphertexts}, Needs: sdk.Needs{Refresh: true}},
		train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
			if in.HE == nil || in.Aggregate != nil {
				return nil, errors.New("HE context missing")
			}
			if !bytes.Equal(in.HE.Parameters().Literal, literal) {
				return nil, errors.New("wrong parameters")
			}
			k, err := in.HE.EvaluationKeys(ctx)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(k, keys) {
				return nil, fmt.Errorf("keys: got %d bytes", len(k))
			}
			var rows int64
			for in.Rows.Next() {
				rows += in.Rows.Record().NumRows()
			}
			ct := bytes.Repeat([]byte("abc"), 1_000_000)
			fresh, err := in.HE.Refresh(ctx, ct)
			if err != nil {
				return nil, err
			}
			return &sdk.Output{Ciphertexts: []sdk.Ciphertext{{Name: "weights", Data: fresh}, {Name: "rows", Data: []byte(fmt.Sprint(rows))}}}, nil
		}}
	tab := smallTable(50)
	req := tab.Request(sdk.Hyperparameters{})
	req.Mode, req.HE = sdk.ModeHE, he
	out, err := plugintest.Train(t, m, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Ciphertexts) != 2 || !bytes.Equal(out.Ciphertexts[0].Data, bytes.Repeat([]byte("ABC"), 1_000_000)) || string(out.Ciphertexts[1].Data) != "50" {
		t.Fatalf("ciphertexts: %d, rows %q", len(out.Ciphertexts), out.Ciphertexts[1].Data)
	}
	if he.refreshes.Load() != 1 {
		t.Fatalf("%d refreshes", he.refreshes.Load())
	}
	// A refresh over the host's limit is refused before the service sees it.
	he.refreshes.Store(0)
	m.train = func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
		_, err := in.HE.Refresh(ctx, make([]byte, 3<<20))
		return nil, err
	}
	client := plugintest.Start(t, m, host.Config{MaxRefreshBytes: 2 << 20})
	req.Rows = tab.Reader()
	if _, err := client.Train(context.Background(), req); !errors.Is(err, host.ErrPluginFailed) || !strings.Contains(err.Error(), "larger than 2097152") || he.refreshes.Load() != 0 {
		t.Fatalf("oversize refresh: %v (%d refreshes)", err, he.refreshes.Load())
	}
}

type fakeHE struct {
	params    sdk.HEParameters
	keys      []byte
	refreshes atomic.Int64
}

func (f *fakeHE) Parameters() sdk.HEParameters                   { return f.params }
func (f *fakeHE) EvaluationKeys(context.Context) ([]byte, error) { return f.keys, nil }
func (f *fakeHE) Refresh(_ context.Context, ct []byte) ([]byte, error) {
	f.refreshes.Add(1)
	return bytes.ToUpper(ct), nil
}

type fakeAggregate struct{}

func (fakeAggregate) Query(_ context.Context, q sdk.AggregateQuery) (sdk.AggregateAnswer, error) {
	if q.Column == "secret" {
		return sdk.AggregateAnswer{}, errors.New("privacy budget exhausted")
	}
	a := sdk.AggregateAnswer{Epsilon: 0.1}
	for i := range len(q.GroupBy[0].Edges) + 1 {
		a.Cells = append(a.Cells, sdk.AggregateCell{Bins: []int{i}, Value: float64(10 * i), Suppressed: i == 0})
	}
	return a, nil
}

func TestAggregateService(t *testing.T) {
	m := fn{desc: sdk.Description{Name: "agg", Family: "scorecard", Mode: sdk.ModeAggregate, Outputs: []sdk.OutputKind{sdk.OutputMetrics}},
		train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
			if in.Rows != nil || in.HE != nil || in.Aggregate == nil {
				return nil, errors.New("wrong inputs for aggregate mode")
			}
			a, err := in.Aggregate.Query(ctx, sdk.AggregateQuery{Statistic: sdk.StatSum, Column: "label", GroupBy: []sdk.Bins{{Column: "a", Edges: []float64{0, 1}}}})
			if err != nil {
				return nil, err
			}
			_, refused := in.Aggregate.Query(ctx, sdk.AggregateQuery{Statistic: sdk.StatCount, Column: "secret"})
			return &sdk.Output{Metrics: map[string]float64{
				"cells": float64(len(a.Cells)), "last": a.Cells[2].Value, "suppressed": b2f(a.Cells[0].Suppressed),
				"epsilon": a.Epsilon, "refused": b2f(refused != nil && strings.Contains(refused.Error(), "budget exhausted")),
			}}, nil
		}}
	out, err := plugintest.Train(t, m, host.TrainRequest{Mode: sdk.ModeAggregate, Subject: "s", Aggregate: fakeAggregate{}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"cells": 3, "last": 20, "suppressed": 1, "epsilon": 0.1, "refused": 1}
	for k, v := range want {
		if out.Metrics[k] != v {
			t.Fatalf("metrics %v, want %v", out.Metrics, want)
		}
	}
}

// The typed queries echo what they were asked, so a round trip through the transport shows.
func (fakeAggregate) Histogram(_ context.Context, q sdk.HistogramQuery) (*sdk.HistogramAnswer, error) {
	a := &sdk.HistogramAnswer{Spent: sdk.Spent{Rho: q.Rho, Epsilon: 2 * q.Rho}}
	for _, f := range q.Features {
		n := len(f.Edges) + 2
		h := sdk.FeatureHistogram{Column: f.Column, Edges: f.Edges}
		for l := range 2 {
			c, s, sup := make([]float64, n), make([]float64, n), make([]bool, n)
			for b := range n {
				c[b], s[b], sup[b] = float64(100*l+b), float64(-b), b == 1
			}
			h.Counts, h.Sums, h.Suppressed = append(h.Counts, c), append(h.Sums, s), append(h.Suppressed, sup)
		}
		a.Features = append(a.Features, h)
	}
	return a, nil
}

func (fakeAggregate) Moments(_ context.Context, q sdk.MomentsQuery) (*sdk.MomentsAnswer, error) {
	return &sdk.MomentsAnswer{Features: q.Features, XtX: [][]float64{{1, 2}, {3, q.ClipNorm}}, Xty: []float64{5, 6}, Spent: sdk.Spent{Rho: q.Rho}}, nil
}

func (fakeAggregate) GLM(_ context.Context, q sdk.GLMQuery) (*sdk.GLMAnswer, error) {
	a := &sdk.GLMAnswer{Features: q.Features, Gradient: append([]float64{q.Intercept}, q.Weights...), Spent: sdk.Spent{Rho: q.Rho}}
	if q.Hessian {
		a.Hessian = [][]float64{{7}}
	}
	return a, nil
}

func (fakeAggregate) TreeHistograms(_ context.Context, q sdk.TreeQuery) (*sdk.TreeAnswer, error) {
	a := &sdk.TreeAnswer{Spent: sdk.Spent{Rho: q.Rho}}
	for _, n := range q.Nodes {
		h := sdk.TreeNodeHistogram{ID: n.ID, SumG: float64(len(q.Model)), Count: float64(len(n.Path))}
		for f := range q.Features {
			k := len(q.Edges[f]) + 2
			h.G, h.H, h.Counts, h.Suppressed = append(h.G, make([]float64, k)), append(h.H, make([]float64, k)),
				append(h.Counts, make([]float64, k)), append(h.Suppressed, make([]bool, k))
			h.G[f][k-1] = float64(n.Path[0].Bin)
		}
		a.Nodes = append(a.Nodes, h)
	}
	return a, nil
}

func (fakeAggregate) Budget(context.Context) (sdk.Budget, error) {
	return sdk.Budget{Epsilon: 2, Delta: 1e-6, Rho: 0.1, RhoSpent: 0.05, RhoLeft: 0.05, MinCount: 10}, nil
}

func TestAggregateTypedQueries(t *testing.T) {
	big := bytes.Repeat([]byte("m"), 3<<20) // a model larger than one message
	m := fn{desc: sdk.Description{Name: "agg", Family: "scorecard", Mode: sdk.ModeAggregate, Outputs: []sdk.OutputKind{sdk.OutputMetrics}},
		train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
			h, err := in.Aggregate.Histogram(ctx, sdk.HistogramQuery{Features: []sdk.Bins{{Column: "a", Edges: []float64{0, 1}}}, ByLabel: true, Sums: true, Rho: 0.25})
			if err != nil {
				return nil, err
			}
			mo, err := in.Aggregate.Moments(ctx, sdk.MomentsQuery{Features: []string{"a"}, ClipNorm: 4, Rho: 0.5})
			if err != nil {
				return nil, err
			}
			g, err := in.Aggregate.GLM(ctx, sdk.GLMQuery{Features: []string{"a"}, Weights: []float64{3}, Intercept: -1, Hessian: true, Rho: 0.5})
			if err != nil {
				return nil, err
			}
			tr, err := in.Aggregate.TreeHistograms(ctx, sdk.TreeQuery{Model: big, Features: []string{"a", "b"}, Edges: [][]float64{{1}, {1, 2}},
				Nodes: []sdk.TreeNodeQuery{{ID: 7, Path: []sdk.TreeCondition{{Feature: 1, Bin: 1, Left: true}}}}, Rho: 0.125})
			if err != nil {
				return nil, err
			}
			b, err := in.Aggregate.Budget(ctx)
			if err != nil {
				return nil, err
			}
			f := h.Features[0]
			return &sdk.Output{Metrics: map[string]float64{
				"h_labels": float64(len(f.Counts)), "h_bins": float64(len(f.Counts[1])), "h_count": f.Counts[1][3], "h_sum": f.Sums[0][2],
				"h_sup": b2f(f.Suppressed[1][1] && !f.Suppressed[1][2]), "h_eps": h.Epsilon,
				"m_xtx": mo.XtX[1][1], "m_xty": mo.Xty[1], "m_rho": mo.Rho,
				"g_grad": g.Gradient[0] + g.Gradient[1], "g_hess": g.Hessian[0][0],
				"t_id": float64(tr.Nodes[0].ID), "t_model": tr.Nodes[0].SumG, "t_bins": float64(len(tr.Nodes[0].G[1])), "t_last": tr.Nodes[0].G[1][3],
				"t_rho": tr.Rho, "b_k": float64(b.MinCount), "b_left": b.RhoLeft,
			}}, nil
		}}
	out, err := plugintest.Train(t, m, host.TrainRequest{Mode: sdk.ModeAggregate, Subject: "s", Aggregate: fakeAggregate{}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"h_labels": 2, "h_bins": 4, "h_count": 103, "h_sum": -2, "h_sup": 1, "h_eps": 0.5,
		"m_xtx": 4, "m_xty": 6, "m_rho": 0.5, "g_grad": 2, "g_hess": 7,
		"t_id": 7, "t_model": float64(len(big)), "t_bins": 4, "t_last": 1, "t_rho": 0.125, "b_k": 10, "b_left": 0.05}
	for k, v := range want {
		if out.Metrics[k] != v {
			t.Fatalf("metric %s = %v, want %v (all: %v)", k, out.Metrics[k], v, out.Metrics)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// lazyRows generates batches on demand and counts how many were read.
type lazyRows struct {
	schema  *arrow.Schema
	batches int
	read    atomic.Int64
	cur     arrow.Record
	fail    error
}

func newLazyRows(batches int) *lazyRows {
	return &lazyRows{schema: (&plugintest.Table{Features: []string{"a"}, Labels: []float64{}}).Schema(), batches: batches}
}

func (r *lazyRows) Retain()               {}
func (r *lazyRows) Release()              {}
func (r *lazyRows) Schema() *arrow.Schema { return r.schema }
func (r *lazyRows) Record() arrow.Record  { return r.cur }
func (r *lazyRows) Err() error {
	if int(r.read.Load()) == r.batches {
		return r.fail
	}
	return nil
}
func (r *lazyRows) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if int(r.read.Load()) == r.batches {
		return false
	}
	r.read.Add(1)
	const n = 65536 // ~1.6 MB per batch
	tab := &plugintest.Table{Features: []string{"a"}, Columns: [][]float64{make([]float64, n)}, Subjects: make([]string, n), Labels: make([]float64, n), BatchRows: n}
	for i := range tab.Subjects {
		tab.Subjects[i] = "s"
	}
	rr := tab.Reader()
	rr.Next()
	r.cur = rr.Record()
	r.cur.Retain()
	rr.Release()
	return true
}

// TestBackPressure: a plugin that answers without reading its rows gets them only as far as the
// transport buffers; the host stops producing and Train returns the answer.
func TestBackPressure(t *testing.T) {
	m := fn{desc: plainDesc(sdk.OutputMetrics), train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
		in.Rows.Next() // one batch, then answer
		return &sdk.Output{Metrics: map[string]float64{"rows": float64(in.Rows.Record().NumRows())}}, nil
	}}
	rows := newLazyRows(1000) // 1.6 GB if it were all sent
	out, err := plugintest.Train(t, m, host.TrainRequest{Mode: sdk.ModePlaintextPublic, Rows: rows, Features: []string{"a"}, Subject: "subject", Label: "label"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Metrics["rows"] != 65536 || rows.read.Load() > 100 {
		t.Fatalf("plugin read %v rows; the host produced %d of 1000 batches", out.Metrics["rows"], rows.read.Load())
	}
}

func TestHostInputError(t *testing.T) {
	m := fn{desc: plainDesc(sdk.OutputMetrics), train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
		for in.Rows.Next() {
		}
		return nil, in.Rows.Err()
	}}
	rows := newLazyRows(3)
	rows.fail = errors.New("disk on fire")
	_, err := plugintest.Train(t, m, host.TrainRequest{Mode: sdk.ModePlaintextPublic, Rows: rows, Features: []string{"a"}, Subject: "subject", Label: "label"})
	if !errors.Is(err, host.ErrInput) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v, want ErrInput", err)
	}
}

func TestRequestChecks(t *testing.T) {
	m := fn{desc: sdk.Description{Name: "t", Family: "test", Mode: sdk.ModePlaintextPublic, Outputs: []sdk.OutputKind{sdk.OutputMetrics}, Needs: sdk.Needs{Labels: true}},
		train: func(context.Context, *sdk.TrainInput) (*sdk.Output, error) { return &sdk.Output{}, nil }}
	client := plugintest.Start(t, m)
	tab := smallTable(3)
	cases := []struct {
		name string
		edit func(*host.TrainRequest)
		want string
	}{
		{"other mode", func(r *host.TrainRequest) { r.Mode = sdk.ModeHE }, "declares mode"},
		{"no rows", func(r *host.TrainRequest) { r.Rows = nil }, "needs rows"},
		{"service the mode does not use", func(r *host.TrainRequest) { r.Aggregate = fakeAggregate{} }, "does not use"},
		{"no label", func(r *host.TrainRequest) { r.Label = "" }, "needs labels"},
		{"missing feature", func(r *host.TrainRequest) { r.Features = []string{"a", "z"} }, `column "z" appears 0 times`},
		{"subject not a string", func(r *host.TrainRequest) { r.Subject = "a" }, `column "a" has type float64, want utf8`},
		{"huge header", func(r *host.TrainRequest) {
			r.Hyperparameters = sdk.MustHyperparameters(map[string]string{"x": strings.Repeat("y", 2<<20)})
		}, "header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := tab.Request(sdk.Hyperparameters{})
			c.edit(&req)
			_, err := client.Train(context.Background(), req)
			if !errors.Is(err, host.ErrRequest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrRequest mentioning %q", err, c.want)
			}
		})
	}
	if _, err := client.Train(context.Background(), tab.Request(sdk.Hyperparameters{})); err != nil {
		t.Fatalf("a valid request after refused ones: %v", err)
	}
}

// TestSDKChecksOutputs: the SDK refuses to send what the host would refuse, with the host's reason.
func TestSDKChecksOutputs(t *testing.T) {
	cases := []struct {
		name string
		out  *sdk.Output
		err  error
		want error
		text string
	}{
		{"1e8 floats", &sdk.Output{Scores: make([]sdk.Score, 1e6)}, nil, host.ErrOutputTooLarge, "1000000 floating-point values, limit 1000"},
		{"undeclared output", &sdk.Output{Weights: &sdk.Weights{}}, nil, host.ErrInvalidOutput, "not declared"},
		{"NaN metric", &sdk.Output{Metrics: map[string]float64{"auc": math.NaN()}}, nil, host.ErrInvalidOutput, "NaN"},
		{"nil output", nil, nil, host.ErrInvalidOutput, "neither an output nor an error"},
		{"model error", nil, errors.New("cannot converge"), host.ErrPluginFailed, "cannot converge"},
		{"panic", nil, nil, host.ErrPluginFailed, "plugin panicked: runtime error: index out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := fn{desc: plainDesc(sdk.OutputMetrics, sdk.OutputScores), train: func(_ context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
				if c.name == "panic" {
					return nil, fmt.Errorf("%v", in.Features[len(in.Features)+1])
				}
				return c.out, c.err
			}}
			req := smallTable(3).Request(sdk.Hyperparameters{})
			req.Limits = sdk.Limits{MaxOutputFloats: 1000}
			_, err := plugintest.Train(t, m, req)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.text)
			}
		})
	}
}

func TestInvalidDescription(t *testing.T) {
	m := fn{desc: sdk.Description{Name: "t", Family: "Logistic Regression", Mode: sdk.ModePlaintextPublic, Outputs: []sdk.OutputKind{sdk.OutputMetrics}}}
	_, err := plugintest.Start(t, m).Describe(context.Background())
	if !errors.Is(err, host.ErrProtocol) || !strings.Contains(err.Error(), "family") {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelledTrainStopsPlugin(t *testing.T) {
	started, stopped := make(chan struct{}), make(chan error, 1)
	m := fn{desc: plainDesc(sdk.OutputMetrics), train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	client := plugintest.Start(t, m)
	done := make(chan error, 1)
	go func() {
		_, err := client.Train(ctx, smallTable(10).Request(sdk.Hyperparameters{}))
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Train: %v", err)
	}
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("plugin's context: %v", err)
	}
}

var _ array.RecordReader = (*lazyRows)(nil)

// TestBatchSlicingAndEmptyRows: a batch over Config.MaxBatchBytes reaches the plugin cut into
// slices with every row intact, and an empty table streams a schema and no batches.
func TestBatchSlicingAndEmptyRows(t *testing.T) {
	m := fn{desc: plainDesc(sdk.OutputMetrics), train: func(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
		var batches, rows, sum float64
		for in.Rows.Next() {
			rec := in.Rows.Record()
			batches++
			rows += float64(rec.NumRows())
			for _, v := range rec.Column(1).(*array.Float64).Float64Values() {
				sum += v
			}
		}
		return &sdk.Output{Metrics: map[string]float64{"batches": batches, "rows": rows, "sum": sum, "fields": float64(in.Rows.Schema().NumFields())}}, in.Rows.Err()
	}}
	client := plugintest.Start(t, m, host.Config{MaxBatchBytes: 64 << 10, ChunkBytes: 10_000})
	tab := smallTable(20_000)
	tab.BatchRows = 20_000 // one batch of ~600 kB
	out, err := client.Train(context.Background(), tab.Request(sdk.Hyperparameters{}))
	if err != nil {
		t.Fatal(err)
	}
	if out.Metrics["rows"] != 20_000 || out.Metrics["sum"] != 20_000*19_999/2 || out.Metrics["batches"] < 9 {
		t.Fatalf("metrics %v", out.Metrics)
	}
	empty := smallTable(0)
	out, err = client.Train(context.Background(), empty.Request(sdk.Hyperparameters{}))
	if err != nil {
		t.Fatal(err)
	}
	if out.Metrics["rows"] != 0 || out.Metrics["batches"] != 0 || out.Metrics["fields"] != 3 {
		t.Fatalf("empty table: metrics %v", out.Metrics)
	}
}
