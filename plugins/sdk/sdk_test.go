package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

func validDescription() Description {
	return Description{Name: "m", Version: "1.0", Family: FamilyGBDT, Mode: ModeHE,
		Outputs: []OutputKind{OutputWeights, OutputTrees, OutputScores, OutputMetrics, OutputCiphertexts}, Needs: Needs{Refresh: true}}
}

func TestDescriptionValidate(t *testing.T) {
	d := validDescription()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(*Description)
		want string
	}{
		{"empty name", func(d *Description) { d.Name = "" }, "name"},
		{"upper-case name", func(d *Description) { d.Name = "LogReg" }, "name"},
		{"long version", func(d *Description) { d.Version = strings.Repeat("v", 65) }, "version"},
		{"control in version", func(d *Description) { d.Version = "1\n2" }, "version"},
		{"family with a dash", func(d *Description) { d.Family = "logistic-regression" }, "family"},
		{"family with a digit first", func(d *Description) { d.Family = "1gbdt" }, "family"},
		{"unknown mode", func(d *Description) { d.Mode = "plaintext" }, "mode"},
		{"no outputs", func(d *Description) { d.Outputs = nil }, "no outputs"},
		{"unknown output", func(d *Description) { d.Outputs = []OutputKind{"weights", "secrets"} }, `"secrets"`},
		{"repeated output", func(d *Description) { d.Outputs = []OutputKind{"scores", "scores"} }, "twice"},
		{"ciphertexts outside HE", func(d *Description) { d.Mode = ModeAggregate; d.Needs.Refresh = false }, "only for mode"},
		{"refresh outside HE", func(d *Description) { d.Mode = ModeAggregate; d.Outputs = []OutputKind{OutputWeights} }, "refresh"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := validDescription()
			c.edit(&d)
			err := d.Validate()
			if !errors.Is(err, ErrInvalidDescription) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalidDescription mentioning %q", err, c.want)
			}
		})
	}
	if !ValidFamily("my_model2") || ValidFamily("") || ValidFamily(strings.Repeat("a", 65)) {
		t.Fatal("ValidFamily")
	}
}

func validOutput() *Output {
	return &Output{
		Weights: &Weights{Names: []string{"a", "b"}, Values: []float64{1, -2}, Intercept: 0.5},
		Trees: &TreeEnsemble{Features: []string{"a", "b"}, BaseScore: -1, Trees: []Tree{
			{Nodes: []TreeNode{{Feature: 1, Threshold: 3, Left: 1, Right: 2, MissingLeft: true}, {Feature: -1, Value: 0.1}, {Feature: -1, Value: -0.2}}},
			{Nodes: []TreeNode{{Feature: -1, Value: 0.3}}},
		}},
		Scores:      []Score{{"p_1", 0.1}, {"p_2", 0.9}},
		Metrics:     map[string]float64{"auc": 0.7},
		Ciphertexts: []Ciphertext{{"w", []byte{1, 2, 3}}},
	}
}

func TestOutputCheck(t *testing.T) {
	d := validDescription()
	o := validOutput()
	if err := o.Check(&d, Limits{}); err != nil {
		t.Fatal(err)
	}
	// 2 weights + intercept, base score + 2·4 nodes, 2 scores, 1 metric.
	if n := o.Floats(); n != 3+9+2+1 {
		t.Fatalf("Floats = %d", n)
	}
	if err := o.Check(&d, Limits{MaxOutputFloats: 14}); !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("over the float limit: %v", err)
	}
	// floats, then names: a b | a b | p_1 p_2 | auc | w, then 3 ciphertext bytes.
	if n := o.Bytes(); n != 8*15+2+2+6+3+1+3 {
		t.Fatalf("Bytes = %d", n)
	}
	if err := o.Check(&d, Limits{MaxOutputBytes: o.Bytes() - 1}); !errors.Is(err, ErrOutputTooLarge) {
		t.Fatalf("over the byte limit: %v", err)
	}
	if err := o.Check(&d, Limits{MaxOutputBytes: o.Bytes()}); err != nil {
		t.Fatalf("at the byte limit: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Output, *Description)
		want string
	}{
		{"undeclared trees", func(o *Output, d *Description) {
			d.Outputs = []OutputKind{OutputWeights, OutputScores, OutputMetrics, OutputCiphertexts}
		}, "not declared"},
		{"NaN weight", func(o *Output, d *Description) { o.Weights.Values[1] = math.NaN() }, `weight "b" is NaN`},
		{"infinite intercept", func(o *Output, d *Description) { o.Weights.Intercept = math.Inf(1) }, "intercept"},
		{"names and values differ", func(o *Output, d *Description) { o.Weights.Names = o.Weights.Names[:1] }, "1 names but 2 values"},
		{"repeated weight name", func(o *Output, d *Description) { o.Weights.Names[1] = "a" }, "twice"},
		{"empty subject", func(o *Output, d *Description) { o.Scores[0].Subject = "" }, "empty name"},
		{"repeated subject", func(o *Output, d *Description) { o.Scores[1].Subject = "p_1" }, "twice"},
		{"long subject", func(o *Output, d *Description) { o.Scores[1].Subject = strings.Repeat("x", MaxNameBytes+1) }, "longer than"},
		{"control in metric name", func(o *Output, d *Description) { o.Metrics["a\x00"] = 1 }, "printable"},
		{"NaN metric", func(o *Output, d *Description) { o.Metrics["ks"] = math.NaN() }, "undefined"},
		{"empty ciphertext", func(o *Output, d *Description) { o.Ciphertexts[0].Data = nil }, "empty"},
		{"leaf with children", func(o *Output, d *Description) { o.Trees.Trees[0].Nodes[1].Left = 2 }, "leaf node 1"},
		{"child before parent", func(o *Output, d *Description) { o.Trees.Trees[0].Nodes[0].Left = 0 }, "children must come after"},
		{"shared child", func(o *Output, d *Description) { o.Trees.Trees[0].Nodes[0].Right = 1 }, "child of two"},
		{"orphan", func(o *Output, d *Description) {
			o.Trees.Trees[1].Nodes = append(o.Trees.Trees[1].Nodes, TreeNode{Feature: -1})
		}, "nobody's child"},
		{"unknown feature", func(o *Output, d *Description) { o.Trees.Trees[0].Nodes[0].Feature = 2 }, "feature 2 of 2"},
		{"empty tree", func(o *Output, d *Description) { o.Trees.Trees[1].Nodes = nil }, "no nodes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, d := validOutput(), validDescription()
			c.edit(o, &d)
			err := o.Check(&d, Limits{})
			if !errors.Is(err, ErrInvalidOutput) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalidOutput mentioning %q", err, c.want)
			}
		})
	}
}

func TestHyperparameters(t *testing.T) {
	type hp struct {
		Lambda float64 `json:"lambda"`
		Depth  int     `json:"depth"`
	}
	h, err := NewHyperparameters([]byte(` {"lambda": 0.5} `))
	if err != nil {
		t.Fatal(err)
	}
	v := hp{Lambda: 1, Depth: 3}
	if err := h.Decode(&v); err != nil || v != (hp{0.5, 3}) {
		t.Fatalf("Decode = %+v, %v", v, err)
	}
	if string(h.JSON()) != `{"lambda": 0.5}` || string((Hyperparameters{}).JSON()) != "{}" {
		t.Fatalf("JSON = %s", h.JSON())
	}
	for _, bad := range []string{`[1]`, `"x"`, `null`, `{`, `1`} {
		if _, err := NewHyperparameters([]byte(bad)); !errors.Is(err, ErrHyperparameter) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	h = MustHyperparameters(map[string]any{"lamda": 1})
	if err := h.Decode(&v); !errors.Is(err, ErrHyperparameter) || !strings.Contains(err.Error(), "lamda") {
		t.Fatalf("misspelt key: %v", err)
	}
	if err := MustHyperparameters(nil).Decode(&v); err != nil {
		t.Fatal(err)
	}
}

// FuzzHyperparameters checks that any input either is refused or decodes as an object whose JSON
// form decodes again.
func FuzzHyperparameters(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"lambda": 0.5}`, `{"a": {"b": [1, 2]}}`, `[1]`, `null`, `{`, ` {"x":1} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		h, err := NewHyperparameters(raw)
		if err != nil {
			if !errors.Is(err, ErrHyperparameter) {
				t.Fatalf("error %v does not wrap ErrHyperparameter", err)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(h.JSON(), &m); err != nil || m == nil {
			t.Fatalf("accepted %q but JSON() = %q does not decode as an object: %v", raw, h.JSON(), err)
		}
	})
}

func TestLogWriterRate(t *testing.T) {
	var buf bytes.Buffer
	lw := newLogWriter(&buf)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lw.now = func() time.Time { return now }
	for range logBurst + 50 {
		_, _ = lw.Write([]byte("{\"@message\":\"x\"}\n"))
	}
	if n := strings.Count(buf.String(), "\n"); n != logBurst {
		t.Fatalf("%d lines passed the burst of %d", n, logBurst)
	}
	now = now.Add(time.Second) // logRate more tokens
	buf.Reset()
	for range logRate + 10 {
		_, _ = lw.Write([]byte("{\"@message\":\"y\"}\n"))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// the drop report rides on the first line through, then logRate lines.
	if len(lines) != logRate+1 || !strings.Contains(lines[0], "50 lines dropped") {
		t.Fatalf("%d lines, first %q", len(lines), lines[0])
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil || entry["@level"] != "warn" {
		t.Fatalf("drop report %q: %v", lines[0], err)
	}
	if _, err := time.Parse(hclogTime, entry["@timestamp"].(string)); err != nil {
		t.Fatalf("timestamp: %v", err)
	}
	buf.Reset()
	now = now.Add(time.Hour)
	_, _ = lw.Write(append(bytes.Repeat([]byte("z"), 3*maxLineBytes), '\n'))
	lines = strings.SplitAfter(buf.String(), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "10 lines dropped") || len(lines[1]) != maxLineBytes {
		t.Fatalf("after a pause: %d lines, first %q, second of %d bytes", len(lines), lines[0], len(lines[1]))
	}
}

func TestLoggerFormat(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf).Warn("fitted", "iterations", 7)
	var entry map[string]any
	if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
		t.Fatal(err)
	}
	if entry["@level"] != "warn" || entry["@message"] != "fitted" || entry["iterations"] != 7.0 {
		t.Fatalf("%s", buf.Bytes())
	}
	if _, err := time.Parse(hclogTime, entry["@timestamp"].(string)); err != nil {
		t.Fatalf("go-plugin cannot parse the timestamp: %v", err)
	}
}

// record builds one record batch of the given columns.
func record(t *testing.T, fields []arrow.Field, build func(b *array.RecordBuilder)) arrow.Record {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	build(b)
	return b.NewRecord()
}

func TestReadTable(t *testing.T) {
	fields := []arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "g", Type: arrow.PrimitiveTypes.Int32},
		{Name: "y", Type: arrow.FixedWidthTypes.Boolean},
	}
	batch := func(ids []string, f []float64, fvalid []bool, g []int32, y []bool) arrow.Record {
		return record(t, fields, func(b *array.RecordBuilder) {
			b.Field(0).(*array.StringBuilder).AppendValues(ids, nil)
			b.Field(1).(*array.Float64Builder).AppendValues(f, fvalid)
			b.Field(2).(*array.Int32Builder).AppendValues(g, nil)
			b.Field(3).(*array.BooleanBuilder).AppendValues(y, nil)
		})
	}
	read := func(recs ...arrow.Record) (*Table, error) {
		rr, err := array.NewRecordReader(arrow.NewSchema(fields, nil), recs)
		if err != nil {
			t.Fatal(err)
		}
		in := &TrainInput{Mode: ModePlaintextPublic, Rows: rr, Features: []string{"g", "f"}, Label: "y", Subject: "id"}
		return ReadTable(context.Background(), in)
	}
	tab, err := read(batch([]string{"a", "b"}, []float64{1.5, 2.5}, nil, []int32{7, 8}, []bool{true, false}),
		batch([]string{"c"}, []float64{-1}, nil, []int32{9}, []bool{true}))
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != 3 || strings.Join(tab.Subjects, "") != "abc" || tab.Row(1)[0] != 8 || tab.Row(1)[1] != 2.5 ||
		tab.Row(2)[1] != -1 || tab.Y[0] != 1 || tab.Y[1] != 0 {
		t.Fatalf("%+v", tab)
	}
	_, err = read(batch([]string{"a", "b"}, []float64{1, 2}, nil, []int32{1, 2}, []bool{true, false}),
		batch([]string{"c", "d"}, []float64{1, 0}, []bool{true, false}, []int32{1, 2}, []bool{true, false}))
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), `data row 4: "f": null value`) {
		t.Fatalf("null feature: %v", err)
	}
	_, err = read(batch([]string{"a"}, []float64{math.Inf(-1)}, nil, []int32{1}, []bool{true}))
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), `data row 1: "f": value is -Inf`) {
		t.Fatalf("infinite feature: %v", err)
	}
	rr, _ := array.NewRecordReader(arrow.NewSchema(fields, nil), nil)
	_, err = ReadTable(context.Background(), &TrainInput{Rows: rr, Features: []string{"h"}, Subject: "id"})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), `"h": the feature column appears 0 times`) {
		t.Fatalf("missing column: %v", err)
	}
	if _, err := ReadTable(context.Background(), &TrainInput{Mode: ModeAggregate}); !errors.Is(err, ErrInput) {
		t.Fatalf("no rows: %v", err)
	}
}
