package host

import (
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"insitu/plugins/sdk"
	pb "insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

func fullDescription() *sdk.Description {
	return &sdk.Description{Name: "t", Family: "gbdt", Mode: sdk.ModeHE,
		Outputs: []sdk.OutputKind{sdk.OutputWeights, sdk.OutputTrees, sdk.OutputScores, sdk.OutputMetrics, sdk.OutputCiphertexts}}
}

func wHeader(n uint64, b float64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_WeightsHeader{WeightsHeader: &pb.WeightsHeader{Count: n, Intercept: b}}}
}
func wPart(names []string, v []float64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_Weights{Weights: &pb.NamedValues{Names: names, Values: v}}}
}
func sHeader(n uint64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_ScoresHeader{ScoresHeader: &pb.ScoresHeader{Count: n}}}
}
func sPart(names []string, v []float64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_Scores{Scores: &pb.NamedValues{Names: names, Values: v}}}
}
func tHeader(features []string, trees, nodes uint64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_TreesHeader{TreesHeader: &pb.TreesHeader{Features: features, BaseScore: 0.5, Trees: trees, Nodes: nodes}}}
}
func tNodes(tree uint32, nodes ...*pb.TreeNode) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_TreeNodes{TreeNodes: &pb.TreeNodes{Tree: tree, Nodes: nodes}}}
}
func leaf(v float64) *pb.TreeNode { return &pb.TreeNode{Feature: -1, Value: v} }
func metrics(names []string, v []float64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_Metrics{Metrics: &pb.NamedValues{Names: names, Values: v}}}
}
func cHeader(name string, n uint64) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_CiphertextHeader{CiphertextHeader: &pb.CiphertextHeader{Name: name, Size: n}}}
}
func cChunk(b []byte) *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_Ciphertext{Ciphertext: b}}
}
func end() *pb.TrainResponse {
	return &pb.TrainResponse{Msg: &pb.TrainResponse_End{End: &pb.OutputEnd{}}}
}

// validStream is a complete output using every section, weights and scores split in two parts.
func validStream() []*pb.TrainResponse {
	return []*pb.TrainResponse{
		wHeader(3, -0.25), wPart([]string{"a"}, []float64{1}), wPart([]string{"b", "c"}, []float64{2, 3}),
		tHeader([]string{"a", "b"}, 2, 4),
		tNodes(0, &pb.TreeNode{Feature: 1, Threshold: 2, Left: 1, Right: 2}, leaf(0.1)), tNodes(0, leaf(-0.1)),
		tNodes(1, leaf(0.2)),
		sHeader(2), sPart([]string{"p1", "p2"}, []float64{0.2, 0.8}),
		metrics([]string{"auc", "ks"}, []float64{0.7, 0.3}),
		cHeader("w", 5), cChunk([]byte{1, 2}), cChunk([]byte{3, 4, 5}),
		cHeader("s", 1), cChunk([]byte{9}),
		end(),
	}
}

func feed(a *assembler, msgs []*pb.TrainResponse) error {
	for _, m := range msgs {
		if err := a.add(m); err != nil {
			return err
		}
	}
	return nil
}

func TestAssembleValid(t *testing.T) {
	a := newAssembler(fullDescription(), sdk.DefaultLimits())
	if err := feed(a, validStream()); err != nil {
		t.Fatal(err)
	}
	o := a.out
	if strings.Join(o.Weights.Names, "") != "abc" || o.Weights.Values[2] != 3 || o.Weights.Intercept != -0.25 {
		t.Fatalf("weights %+v", o.Weights)
	}
	if len(o.Trees.Trees) != 2 || len(o.Trees.Trees[0].Nodes) != 3 || o.Trees.Trees[1].Nodes[0].Value != 0.2 || o.Trees.BaseScore != 0.5 {
		t.Fatalf("trees %+v", o.Trees)
	}
	if len(o.Scores) != 2 || o.Scores[1] != (sdk.Score{Subject: "p2", Value: 0.8}) || o.Metrics["ks"] != 0.3 {
		t.Fatalf("scores %+v metrics %v", o.Scores, o.Metrics)
	}
	if len(o.Ciphertexts) != 2 || string(o.Ciphertexts[0].Data) != "\x01\x02\x03\x04\x05" || o.Ciphertexts[1].Name != "s" {
		t.Fatalf("ciphertexts %+v", o.Ciphertexts)
	}
	if a.floats != o.Floats() || a.bytes != o.Bytes() {
		t.Fatalf("counted %d floats and %d bytes, the output has %d and %d", a.floats, a.bytes, o.Floats(), o.Bytes())
	}
}

func TestAssembleViolations(t *testing.T) {
	lim := sdk.Limits{MaxOutputFloats: 100, MaxOutputBytes: 1000}
	declaredWeights := &sdk.Description{Name: "t", Family: "x", Mode: sdk.ModePlaintextPublic, Outputs: []sdk.OutputKind{sdk.OutputWeights}}
	cases := []struct {
		name string
		desc *sdk.Description
		msgs []*pb.TrainResponse
		want error
		text string
	}{
		{"1e8 floats announced", nil, []*pb.TrainResponse{wHeader(1e8, 0)}, ErrOutputTooLarge, "more than 100"},
		{"section started inside another", nil, []*pb.TrainResponse{wHeader(60, 0), sHeader(40)}, ErrProtocol, "started while weights"},
		{"floats over the limit in total", nil, []*pb.TrainResponse{wHeader(1, 0), wPart([]string{"a"}, []float64{1}), sHeader(99)}, ErrOutputTooLarge, ""},
		{"huge tree", nil, []*pb.TrainResponse{tHeader(nil, 1, 1<<40)}, ErrOutputTooLarge, "tree nodes"},
		{"ciphertext over the limit", nil, []*pb.TrainResponse{cHeader("a", 600), cChunk(make([]byte, 600)), cHeader("b", 500)}, ErrOutputTooLarge, "more than 1000 bytes"},
		{"names over the byte limit", nil, []*pb.TrainResponse{sHeader(4), sPart([]string{strings.Repeat("s", 250), strings.Repeat("t", 250), strings.Repeat("u", 250), strings.Repeat("v", 250)}, make([]float64, 4))}, ErrOutputTooLarge, "more than 1000 bytes"},
		{"parts without a header", nil, []*pb.TrainResponse{wPart([]string{"a"}, []float64{1})}, ErrProtocol, "outside its section"},
		{"more entries than announced", nil, []*pb.TrainResponse{wHeader(1, 0), wPart([]string{"a", "b"}, []float64{1, 2})}, ErrProtocol, "with 0 of 1"},
		{"names and values differ", nil, []*pb.TrainResponse{wHeader(2, 0), wPart([]string{"a", "b"}, []float64{1})}, ErrProtocol, "2 names and 1 values"},
		{"end inside a section", nil, []*pb.TrainResponse{wHeader(2, 0), wPart([]string{"a"}, []float64{1}), end()}, ErrProtocol, "at 1 of 2"},
		{"section twice", nil, []*pb.TrainResponse{wHeader(0, 0), wHeader(0, 0)}, ErrProtocol, "twice"},
		{"message after the end", nil, []*pb.TrainResponse{end(), end()}, ErrProtocol, "after the end"},
		{"undeclared section", declaredWeights, []*pb.TrainResponse{sHeader(1)}, ErrInvalidOutput, `"scores" not declared`},
		{"undeclared ciphertext", declaredWeights, []*pb.TrainResponse{cHeader("a", 1)}, ErrInvalidOutput, "not declared"},
		{"NaN weight", nil, []*pb.TrainResponse{wHeader(1, 0), wPart([]string{"a"}, []float64{math.NaN()}), end()}, ErrInvalidOutput, "NaN"},
		{"repeated subject", nil, []*pb.TrainResponse{sHeader(2), sPart([]string{"p", "p"}, []float64{0, 1}), end()}, ErrInvalidOutput, "twice"},
		{"long name", nil, []*pb.TrainResponse{wHeader(1, 0), wPart([]string{strings.Repeat("n", wire.MaxNameBytes+1)}, []float64{1})}, ErrInvalidOutput, "longer than"},
		{"tree index skips", nil, []*pb.TrainResponse{tHeader(nil, 2, 2), tNodes(1, leaf(1))}, ErrProtocol, "nodes of tree 1 after 0 trees"},
		{"more trees than announced", nil, []*pb.TrainResponse{tHeader(nil, 1, 2), tNodes(0, leaf(1)), tNodes(1, leaf(1))}, ErrProtocol, "of 1 announced"},
		{"fewer trees than announced", nil, []*pb.TrainResponse{tHeader(nil, 2, 2), tNodes(0, leaf(1), leaf(2))}, ErrProtocol, "1 trees received, 2 announced"},
		{"cyclic tree", nil, []*pb.TrainResponse{tHeader([]string{"a"}, 1, 2), tNodes(0, &pb.TreeNode{Feature: 0, Left: 0, Right: 1}, leaf(1)), end()}, ErrInvalidOutput, "children must come after"},
		{"empty ciphertext", nil, []*pb.TrainResponse{cHeader("a", 0)}, ErrProtocol, "empty ciphertext"},
		{"ciphertext longer than announced", nil, []*pb.TrainResponse{cHeader("a", 2), cChunk([]byte{1, 2, 3})}, ErrProtocol, "3 entries"},
		{"repeated metric", nil, []*pb.TrainResponse{metrics([]string{"a", "a"}, []float64{1, 2})}, ErrInvalidOutput, "twice"},
		{"unknown message", nil, []*pb.TrainResponse{{}}, ErrProtocol, "unknown message"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.desc
			if d == nil {
				d = fullDescription()
			}
			err := feed(newAssembler(d, lim), c.msgs)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.text)
			}
		})
	}
}

// encodeStream writes messages as length-delimited protobuf, the fuzz corpus format.
func encodeStream(msgs []*pb.TrainResponse) []byte {
	var out []byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			panic(err)
		}
		out = protowire.AppendBytes(out, b)
	}
	return out
}

// FuzzAssemble feeds arbitrary message sequences to the assembler: it must never panic, and an
// output it accepts must pass Check and respect the limits.
func FuzzAssemble(f *testing.F) {
	f.Add(encodeStream(validStream()))
	f.Add(encodeStream([]*pb.TrainResponse{wHeader(1e8, 0)}))
	f.Add(encodeStream([]*pb.TrainResponse{tHeader([]string{"a"}, 1, 2), tNodes(0, &pb.TreeNode{Feature: 0, Left: 1, Right: 1}, leaf(1)), end()}))
	f.Add(encodeStream([]*pb.TrainResponse{cHeader("a", 3), cChunk([]byte{1}), end()}))
	lim := sdk.Limits{MaxOutputFloats: 1000, MaxOutputBytes: 4000}
	f.Fuzz(func(t *testing.T, data []byte) {
		a := newAssembler(fullDescription(), lim)
		for len(data) > 0 {
			b, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return
			}
			data = data[n:]
			var m pb.TrainResponse
			if proto.Unmarshal(b, &m) != nil {
				return
			}
			if err := a.add(&m); err != nil {
				var he *Error
				if !errors.As(err, &he) {
					t.Fatalf("error %v is not a *host.Error", err)
				}
				return
			}
		}
		if a.done {
			if err := a.out.Check(fullDescription(), lim); err != nil {
				t.Fatalf("accepted an output that fails Check: %v", err)
			}
			if a.out.Floats() > lim.MaxOutputFloats || a.out.Bytes() > lim.MaxOutputBytes {
				t.Fatalf("accepted an output over the limits")
			}
			if a.floats != a.out.Floats() || a.bytes != a.out.Bytes() {
				t.Fatalf("counted %d floats and %d bytes, the output has %d and %d", a.floats, a.bytes, a.out.Floats(), a.out.Bytes())
			}
		}
	})
}
