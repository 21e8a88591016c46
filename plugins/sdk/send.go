package sdk

import (
	"slices"

	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// Estimated encoded sizes used to pack output parts under wire.MaxChunkBytes: a named value costs
// its name plus a tag, a length and a packed double; a tree node at most treeNodeBytes.
const (
	namedValueOverhead = 4 + 8
	treeNodeBytes      = 64
	partBudget         = wire.MaxChunkBytes - 4<<10
)

// sendOutput sends a checked output as protocol sections followed by OutputEnd.
func sendOutput(send func(*pluginpb.TrainResponse) error, o *Output) error {
	if w := o.Weights; w != nil {
		hdr := &pluginpb.WeightsHeader{Count: uint64(len(w.Values)), Intercept: w.Intercept}
		if err := send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_WeightsHeader{WeightsHeader: hdr}}); err != nil {
			return err
		}
		err := sendNamedValues(w.Names, w.Values, func(p *pluginpb.NamedValues) error {
			return send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_Weights{Weights: p}})
		})
		if err != nil {
			return err
		}
	}
	if t := o.Trees; t != nil {
		if err := sendTrees(send, t); err != nil {
			return err
		}
	}
	if len(o.Scores) > 0 {
		hdr := &pluginpb.ScoresHeader{Count: uint64(len(o.Scores))}
		if err := send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_ScoresHeader{ScoresHeader: hdr}}); err != nil {
			return err
		}
		names := make([]string, len(o.Scores))
		values := make([]float64, len(o.Scores))
		for i, s := range o.Scores {
			names[i], values[i] = s.Subject, s.Value
		}
		err := sendNamedValues(names, values, func(p *pluginpb.NamedValues) error {
			return send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_Scores{Scores: p}})
		})
		if err != nil {
			return err
		}
	}
	if len(o.Metrics) > 0 {
		names := make([]string, 0, len(o.Metrics))
		for k := range o.Metrics {
			names = append(names, k)
		}
		slices.Sort(names)
		p := &pluginpb.NamedValues{Names: names, Values: make([]float64, len(names))}
		for i, k := range names {
			p.Values[i] = o.Metrics[k]
		}
		if err := send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_Metrics{Metrics: p}}); err != nil {
			return err
		}
	}
	for _, c := range o.Ciphertexts {
		hdr := &pluginpb.CiphertextHeader{Name: c.Name, Size: uint64(len(c.Data))}
		if err := send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_CiphertextHeader{CiphertextHeader: hdr}}); err != nil {
			return err
		}
		for data := c.Data; len(data) > 0; {
			k := min(len(data), wire.MaxChunkBytes)
			if err := send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_Ciphertext{Ciphertext: data[:k]}}); err != nil {
				return err
			}
			data = data[k:]
		}
	}
	return send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_End{End: &pluginpb.OutputEnd{}}})
}

// sendNamedValues sends parallel names and values in parts of at most partBudget bytes.
func sendNamedValues(names []string, values []float64, send func(*pluginpb.NamedValues) error) error {
	for start := 0; start < len(names); {
		end, size := start, 0
		for end < len(names) && (end == start || size+len(names[end])+namedValueOverhead <= partBudget) {
			size += len(names[end]) + namedValueOverhead
			end++
		}
		if err := send(&pluginpb.NamedValues{Names: names[start:end], Values: values[start:end]}); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func sendTrees(send func(*pluginpb.TrainResponse) error, t *TreeEnsemble) error {
	var nodes uint64
	for _, tr := range t.Trees {
		nodes += uint64(len(tr.Nodes))
	}
	hdr := &pluginpb.TreesHeader{Features: t.Features, BaseScore: t.BaseScore, Trees: uint64(len(t.Trees)), Nodes: nodes}
	if err := send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_TreesHeader{TreesHeader: hdr}}); err != nil {
		return err
	}
	const perPart = partBudget / treeNodeBytes
	for ti, tr := range t.Trees {
		for start := 0; start < len(tr.Nodes); start += perPart {
			part := tr.Nodes[start:min(len(tr.Nodes), start+perPart)]
			p := &pluginpb.TreeNodes{Tree: uint32(ti), Nodes: make([]*pluginpb.TreeNode, len(part))}
			for i, n := range part {
				p.Nodes[i] = &pluginpb.TreeNode{
					Feature: int32(n.Feature), Threshold: n.Threshold, Left: uint32(n.Left), Right: uint32(n.Right),
					MissingLeft: n.MissingLeft, Value: n.Value,
				}
			}
			if err := send(&pluginpb.TrainResponse{Msg: &pluginpb.TrainResponse_TreeNodes{TreeNodes: p}}); err != nil {
				return err
			}
		}
	}
	return nil
}
