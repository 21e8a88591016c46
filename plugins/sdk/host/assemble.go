package host

import (
	"errors"
	"fmt"

	"insitu/plugins/sdk"
	"insitu/plugins/sdk/internal/pluginpb"
	"insitu/plugins/sdk/internal/wire"
)

// assembler rebuilds an sdk.Output from the plugin's TrainResponse stream, enforcing the framing
// and the limits as messages arrive: an announced size over a limit fails before anything of it is
// received.
type assembler struct {
	desc *sdk.Description
	lim  sdk.Limits

	out      sdk.Output
	floats   int64 // announced so far
	bytes    int64 // announced or received so far, as sdk.Output.Bytes counts them
	sections map[string]bool
	done     bool

	// the open section and how much of it is still to come
	open     string
	want     uint64 // entries (or bytes, for a ciphertext) announced
	got      uint64
	treeWant uint64 // trees announced
	ct       *sdk.Ciphertext
}

func newAssembler(d *sdk.Description, l sdk.Limits) *assembler {
	return &assembler{desc: d, lim: l, sections: map[string]bool{}}
}

func (a *assembler) tooLarge(format string, args ...any) error {
	return &Error{Op: "train", Err: ErrOutputTooLarge, Detail: fmt.Sprintf(format, args...)}
}

func (a *assembler) undeclared(k sdk.OutputKind) error {
	return &Error{Op: "train", Err: ErrInvalidOutput, Detail: fmt.Sprintf("output %q not declared by the plugin's description", k)}
}

// addFloats counts n more announced floats (and their 8 bytes each) against the limits.
func (a *assembler) addFloats(n uint64) error {
	if n > uint64(a.lim.MaxOutputFloats) || a.floats+int64(n) > a.lim.MaxOutputFloats {
		return a.tooLarge("the plugin announced more than %d floating-point values", a.lim.MaxOutputFloats)
	}
	a.floats += int64(n)
	return a.addBytes(8 * n)
}

// addBytes counts n more bytes against the limit.
func (a *assembler) addBytes(n uint64) error {
	if n > uint64(a.lim.MaxOutputBytes) || a.bytes+int64(n) > a.lim.MaxOutputBytes {
		return a.tooLarge("the plugin sent or announced more than %d bytes of output", a.lim.MaxOutputBytes)
	}
	a.bytes += int64(n)
	return nil
}

// addNames counts the bytes of names against the limit.
func (a *assembler) addNames(names []string) error {
	var n uint64
	for _, s := range names {
		n += uint64(len(s))
	}
	return a.addBytes(n)
}

// start opens a section that may appear once.
func (a *assembler) start(name string, kind sdk.OutputKind) error {
	if a.open != "" {
		return protocolError("train", "%s started while %s has %d of %d entries", name, a.open, a.got, a.want)
	}
	if !a.desc.Declares(kind) {
		return a.undeclared(kind)
	}
	if a.sections[name] {
		return protocolError("train", "%s sent twice", name)
	}
	a.sections[name] = true
	a.open, a.got, a.want = name, 0, 0
	return nil
}

// part checks that a part belongs to the open section and fits what it announced.
func (a *assembler) part(name string, n int) error {
	if a.open != name {
		return protocolError("train", "%s part outside its section", name)
	}
	if n == 0 || uint64(n) > a.want-a.got {
		return protocolError("train", "%s part of %d entries with %d of %d received", name, n, a.got, a.want)
	}
	a.got += uint64(n)
	return nil
}

// closeIfComplete ends the open section once everything announced has arrived.
func (a *assembler) closeIfComplete() {
	if a.open != "" && a.got == a.want && a.open != "trees" {
		a.open = ""
	}
}

func (a *assembler) checkNamedValues(name string, p *pluginpb.NamedValues) error {
	if len(p.GetNames()) != len(p.GetValues()) {
		return protocolError("train", "%s part with %d names and %d values", name, len(p.GetNames()), len(p.GetValues()))
	}
	for _, s := range p.GetNames() {
		if len(s) > wire.MaxNameBytes {
			return &Error{Op: "train", Err: ErrInvalidOutput, Detail: fmt.Sprintf("%s name longer than %d bytes", name, wire.MaxNameBytes)}
		}
	}
	return a.addNames(p.GetNames())
}

// add takes the next message. It returns an error on any violation; after OutputEnd the output is
// checked as a whole.
func (a *assembler) add(msg *pluginpb.TrainResponse) error {
	if a.done {
		return protocolError("train", "message after the end of the output")
	}
	switch m := msg.Msg.(type) {
	case *pluginpb.TrainResponse_WeightsHeader:
		if err := a.start("weights", sdk.OutputWeights); err != nil {
			return err
		}
		h := m.WeightsHeader
		if err := a.addFloats(h.GetCount() + 1); err != nil {
			return err
		}
		a.want = h.GetCount()
		a.out.Weights = &sdk.Weights{Intercept: h.GetIntercept(), Names: []string{}, Values: []float64{}}
	case *pluginpb.TrainResponse_Weights:
		p := m.Weights
		if err := a.checkNamedValues("weights", p); err != nil {
			return err
		}
		if err := a.part("weights", len(p.GetNames())); err != nil {
			return err
		}
		a.out.Weights.Names = append(a.out.Weights.Names, p.GetNames()...)
		a.out.Weights.Values = append(a.out.Weights.Values, p.GetValues()...)
	case *pluginpb.TrainResponse_ScoresHeader:
		if err := a.start("scores", sdk.OutputScores); err != nil {
			return err
		}
		if err := a.addFloats(m.ScoresHeader.GetCount()); err != nil {
			return err
		}
		a.want = m.ScoresHeader.GetCount()
		if a.want == 0 {
			return protocolError("train", "empty scores section")
		}
	case *pluginpb.TrainResponse_Scores:
		p := m.Scores
		if err := a.checkNamedValues("scores", p); err != nil {
			return err
		}
		if err := a.part("scores", len(p.GetNames())); err != nil {
			return err
		}
		for i, s := range p.GetNames() {
			a.out.Scores = append(a.out.Scores, sdk.Score{Subject: s, Value: p.GetValues()[i]})
		}
	case *pluginpb.TrainResponse_TreesHeader:
		if err := a.start("trees", sdk.OutputTrees); err != nil {
			return err
		}
		h := m.TreesHeader
		if h.GetNodes() > uint64(a.lim.MaxOutputFloats)/2 {
			return a.tooLarge("the plugin announced %d tree nodes", h.GetNodes())
		}
		if err := a.addFloats(2*h.GetNodes() + 1); err != nil {
			return err
		}
		if h.GetTrees() > h.GetNodes() {
			return protocolError("train", "%d trees announced with %d nodes", h.GetTrees(), h.GetNodes())
		}
		for _, f := range h.GetFeatures() {
			if len(f) > wire.MaxNameBytes {
				return &Error{Op: "train", Err: ErrInvalidOutput, Detail: fmt.Sprintf("tree feature name longer than %d bytes", wire.MaxNameBytes)}
			}
		}
		if err := a.addNames(h.GetFeatures()); err != nil {
			return err
		}
		a.want, a.treeWant = h.GetNodes(), h.GetTrees()
		a.out.Trees = &sdk.TreeEnsemble{Features: h.GetFeatures(), BaseScore: h.GetBaseScore(), Trees: []sdk.Tree{}}
		if a.want == 0 {
			a.open = ""
		}
	case *pluginpb.TrainResponse_TreeNodes:
		p := m.TreeNodes
		if err := a.part("trees", len(p.GetNodes())); err != nil {
			return err
		}
		trees := a.out.Trees.Trees
		switch ti := uint64(p.GetTree()); {
		case len(trees) > 0 && ti == uint64(len(trees)-1):
		case ti == uint64(len(trees)) && ti < a.treeWant:
			a.out.Trees.Trees = append(trees, sdk.Tree{})
		default:
			return protocolError("train", "nodes of tree %d after %d trees (of %d announced)", ti, len(trees), a.treeWant)
		}
		t := &a.out.Trees.Trees[len(a.out.Trees.Trees)-1]
		for _, n := range p.GetNodes() {
			t.Nodes = append(t.Nodes, sdk.TreeNode{
				Feature: int(n.GetFeature()), Threshold: n.GetThreshold(), Left: int(n.GetLeft()), Right: int(n.GetRight()),
				MissingLeft: n.GetMissingLeft(), Value: n.GetValue(),
			})
		}
		if a.got == a.want {
			if uint64(len(a.out.Trees.Trees)) != a.treeWant {
				return protocolError("train", "%d trees received, %d announced", len(a.out.Trees.Trees), a.treeWant)
			}
			a.open = ""
		}
	case *pluginpb.TrainResponse_Metrics:
		if err := a.start("metrics", sdk.OutputMetrics); err != nil {
			return err
		}
		p := m.Metrics
		if err := a.checkNamedValues("metrics", p); err != nil {
			return err
		}
		if len(p.GetNames()) > sdk.MaxMetrics {
			return a.tooLarge("%d metrics, limit %d", len(p.GetNames()), sdk.MaxMetrics)
		}
		if err := a.addFloats(uint64(len(p.GetNames()))); err != nil {
			return err
		}
		a.out.Metrics = make(map[string]float64, len(p.GetNames()))
		for i, k := range p.GetNames() {
			if _, dup := a.out.Metrics[k]; dup {
				return &Error{Op: "train", Err: ErrInvalidOutput, Detail: "a metric name appears twice"}
			}
			a.out.Metrics[k] = p.GetValues()[i]
		}
		a.open = ""
		return nil
	case *pluginpb.TrainResponse_CiphertextHeader:
		h := m.CiphertextHeader
		if a.open != "" {
			return protocolError("train", "ciphertext started while %s is open", a.open)
		}
		if !a.desc.Declares(sdk.OutputCiphertexts) {
			return a.undeclared(sdk.OutputCiphertexts)
		}
		if len(a.out.Ciphertexts) >= sdk.MaxCiphertexts {
			return a.tooLarge("more than %d ciphertexts", sdk.MaxCiphertexts)
		}
		if h.GetSize() == 0 {
			return protocolError("train", "empty ciphertext")
		}
		if len(h.GetName()) > wire.MaxNameBytes {
			return &Error{Op: "train", Err: ErrInvalidOutput, Detail: fmt.Sprintf("ciphertext name longer than %d bytes", wire.MaxNameBytes)}
		}
		if err := a.addBytes(h.GetSize()); err != nil {
			return err
		}
		if err := a.addNames([]string{h.GetName()}); err != nil {
			return err
		}
		a.out.Ciphertexts = append(a.out.Ciphertexts, sdk.Ciphertext{Name: h.GetName(), Data: make([]byte, 0, min(h.GetSize(), wire.MaxChunkBytes))})
		a.ct = &a.out.Ciphertexts[len(a.out.Ciphertexts)-1]
		a.open, a.got, a.want = "ciphertext", 0, h.GetSize()
	case *pluginpb.TrainResponse_Ciphertext:
		if len(m.Ciphertext) > wire.MaxChunkBytes {
			return protocolError("train", "ciphertext chunk of %d bytes", len(m.Ciphertext))
		}
		if err := a.part("ciphertext", len(m.Ciphertext)); err != nil {
			return err
		}
		a.ct.Data = append(a.ct.Data, m.Ciphertext...)
	case *pluginpb.TrainResponse_End:
		if a.open != "" {
			return protocolError("train", "output ended with %s at %d of %d", a.open, a.got, a.want)
		}
		a.done = true
		if err := a.out.Check(a.desc, a.lim); err != nil {
			return outputError(err)
		}
		return nil
	default:
		return protocolError("train", "unknown message %T", msg.Msg)
	}
	a.closeIfComplete()
	return nil
}

// outputError maps an sdk.Output.Check failure to the host's sentinels.
func outputError(err error) error {
	if errors.Is(err, sdk.ErrOutputTooLarge) {
		return &Error{Op: "train", Err: ErrOutputTooLarge, Detail: err.Error(), Cause: err}
	}
	return &Error{Op: "train", Err: ErrInvalidOutput, Detail: err.Error(), Cause: err}
}
