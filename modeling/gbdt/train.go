package gbdt

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Options are the training hyperparameters. Start from DefaultOptions: zero values are taken
// literally (Lambda 0 means no L2 penalty).
type Options struct {
	// NumTrees is the number of boosting rounds (>= 1).
	NumTrees int `json:"num_trees"`
	// MaxDepth bounds the depth of every tree (root = depth 0), in [1, 16].
	MaxDepth int `json:"max_depth"`
	// MaxLeaves bounds the leaves of every tree; 0 means only MaxDepth limits them. Within a level
	// the splits with the larger gains are kept.
	MaxLeaves int `json:"max_leaves,omitempty"`
	// LearningRate is the shrinkage η in (0, 1].
	LearningRate float64 `json:"learning_rate"`
	// Lambda is the L2 penalty on leaf values (>= 0).
	Lambda float64 `json:"lambda"`
	// MinChildWeight is the smallest Hessian sum a child may have (>= 0).
	MinChildWeight float64 `json:"min_child_weight"`
	// Gamma is the smallest gain that justifies a split (>= 0).
	Gamma float64 `json:"gamma"`
	// Subsample is the share of rows each tree is grown on, in (0, 1]; rows are drawn from Seed.
	Subsample float64 `json:"subsample"`
	Seed      uint64  `json:"seed,omitempty"`
	// EarlyStoppingRounds stops training when the validation loss has not improved for this many
	// rounds and keeps the trees up to the best round; 0 turns early stopping off. It needs a
	// Validator.
	EarlyStoppingRounds int `json:"early_stopping_rounds,omitempty"`
	// BaseScore is the starting margin (log-odds); xgboost 1.x uses 0 (probability ½).
	BaseScore float64 `json:"base_score"`
	// PriorBaseScore replaces BaseScore by the training data's log-odds, read from the root sums at
	// margin 0 (positives = 2·H − G, negatives = 2·H + G there), which costs one more root query.
	PriorBaseScore bool `json:"prior_base_score,omitempty"`
}

// DefaultOptions returns xgboost's defaults for binary:logistic with 100 trees: depth 6, η 0.3,
// λ 1, min child weight 1, γ 0, no subsampling, base score 0.
func DefaultOptions() Options {
	return Options{NumTrees: 100, MaxDepth: 6, LearningRate: 0.3, Lambda: 1, MinChildWeight: 1, Subsample: 1}
}

func (o Options) validate() error {
	bad := func(name string, v any) error {
		return errf(ErrOptions, -1, -1, "", "%s = %v is out of range", name, v)
	}
	fin := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	switch {
	case o.NumTrees < 1:
		return bad("num_trees", o.NumTrees)
	case o.MaxDepth < 1 || o.MaxDepth > 16:
		return bad("max_depth", o.MaxDepth)
	case o.MaxLeaves < 0 || o.MaxLeaves == 1:
		return bad("max_leaves", o.MaxLeaves)
	case !(o.LearningRate > 0 && o.LearningRate <= 1):
		return bad("learning_rate", o.LearningRate)
	case !(o.Lambda >= 0) || !fin(o.Lambda):
		return bad("lambda", o.Lambda)
	case !(o.MinChildWeight >= 0) || !fin(o.MinChildWeight):
		return bad("min_child_weight", o.MinChildWeight)
	case !(o.Gamma >= 0) || !fin(o.Gamma):
		return bad("gamma", o.Gamma)
	case !(o.Subsample > 0 && o.Subsample <= 1):
		return bad("subsample", o.Subsample)
	case o.EarlyStoppingRounds < 0:
		return bad("early_stopping_rounds", o.EarlyStoppingRounds)
	case !fin(o.BaseScore):
		return bad("base_score", o.BaseScore)
	}
	return nil
}

// Train grows o.NumTrees trees from the provider's histograms. With a non-nil Validator and
// EarlyStoppingRounds > 0 it stops early and returns the trees up to the round with the lowest
// validation loss (ValidLoss records every round's). It returns errors wrapping ErrOptions, ErrCuts
// or ErrProvider (the provider's own error wrapped with %w), and the context's error when ctx ends.
func Train(ctx context.Context, p Provider, v Validator, o Options) (*Model, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.EarlyStoppingRounds > 0 && v == nil {
		return nil, errf(ErrOptions, -1, -1, "", "early stopping needs a validation set")
	}
	cuts := p.Cuts()
	if err := cuts.Validate(); err != nil {
		return nil, err
	}
	m := &Model{FeatureNames: slices.Clone(cuts.Names), Edges: cuts.Edges, BaseScore: o.BaseScore}
	if o.PriorBaseScore {
		m.BaseScore = 0
		if err := p.BeginTree(ctx, TreeRequest{Model: m, Subsample: 1}); err != nil {
			return nil, providerErr(0, err)
		}
		h, err := histograms(ctx, p, 0, []NodeRequest{{ID: 0, Parent: -1}}, cuts)
		if err != nil {
			return nil, err
		}
		pos, neg := 2*h[0].SumH-h[0].SumG, 2*h[0].SumH+h[0].SumG
		if !(pos > 0 && neg > 0) {
			return nil, errf(ErrData, -1, -1, "", "root sums give %v positives and %v negatives: need both classes", pos, neg)
		}
		m.BaseScore = math.Log(pos / neg)
	}
	best, bestLoss, since := -1, math.Inf(1), 0
	for round := range o.NumTrees {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := p.BeginTree(ctx, TreeRequest{Round: round, Model: m, Subsample: o.Subsample, Seed: o.Seed}); err != nil {
			return nil, providerErr(round, err)
		}
		t, err := buildTree(ctx, p, cuts, o, round)
		if err != nil {
			return nil, err
		}
		m.Trees = append(m.Trees, t)
		if v == nil || o.EarlyStoppingRounds == 0 {
			continue
		}
		loss, err := v.Loss(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("gbdt: validation after tree %d: %w", round, err)
		}
		m.ValidLoss = append(m.ValidLoss, loss)
		if loss < bestLoss {
			best, bestLoss, since = round, loss, 0
		} else if since++; since >= o.EarlyStoppingRounds {
			break
		}
	}
	if best >= 0 {
		m.Trees = m.Trees[:best+1]
	}
	return m, nil
}

func providerErr(round int, err error) error {
	return &Error{Tree: round, Node: -1, Detail: err.Error(), Err: fmt.Errorf("%w: %w", ErrProvider, err)}
}

// histograms asks the provider and checks the shape of its answer.
func histograms(ctx context.Context, p Provider, round int, reqs []NodeRequest, cuts Cuts) ([]Histogram, error) {
	hs, err := p.Histograms(ctx, reqs)
	if err != nil {
		return nil, providerErr(round, err)
	}
	if len(hs) != len(reqs) {
		return nil, errf(ErrProvider, round, -1, "", "%d histograms for %d nodes", len(hs), len(reqs))
	}
	for k, h := range hs {
		if len(h.G) != len(cuts.Edges) || len(h.H) != len(cuts.Edges) {
			return nil, errf(ErrProvider, round, reqs[k].ID, "", "histogram has %d features, want %d", len(h.G), len(cuts.Edges))
		}
		for f, e := range cuts.Edges {
			if len(h.G[f]) != len(e)+2 || len(h.H[f]) != len(e)+2 {
				return nil, errf(ErrProvider, round, reqs[k].ID, cuts.Names[f], "histogram has %d bins, want %d", len(h.G[f]), len(e)+2)
			}
		}
	}
	return hs, nil
}

// split is the best split found for one node.
type split struct {
	feature, bin   int
	missingLeft    bool
	gain           float64
	gl, hl, gr, hr float64
	ok             bool
}

// leafWeight is the optimal leaf value −G/(H+λ) before shrinkage (0 when H+λ is not positive).
func leafWeight(g, h, lambda float64) float64 {
	if h+lambda <= 0 {
		return 0
	}
	return -g / (h + lambda)
}

// score is G²/(H+λ), −Inf when H+λ is not positive.
func score(g, h, lambda float64) float64 {
	if h+lambda <= 0 {
		return math.Inf(-1)
	}
	return g * g / (h + lambda)
}

// bestSplit scans every feature's bins for the split with the largest gain. The parent's score uses
// each feature's own bin totals, so that noisy histograms compare like with like.
func bestSplit(h Histogram, cuts Cuts, o Options) split {
	var best split
	minH := max(o.MinChildWeight, 0)
	for f, e := range cuts.Edges {
		gf, hf := h.G[f], h.H[f]
		nb := len(e) + 1 // regular bins
		var gt, ht float64
		for b := range nb {
			gt += gf[b]
			ht += hf[b]
		}
		gm, hm := gf[nb], hf[nb]
		parent := score(gt+gm, ht+hm, o.Lambda)
		var gl, hl float64
		for b := range nb - 1 {
			gl += gf[b]
			hl += hf[b]
			for _, ml := range []bool{false, true} {
				l, lh := gl, hl
				if ml {
					l, lh = gl+gm, hl+hm
				}
				r, rh := gt+gm-l, ht+hm-lh
				if lh < minH || rh < minH {
					continue
				}
				gain := score(l, lh, o.Lambda) + score(r, rh, o.Lambda) - parent
				if !best.ok || gain > best.gain {
					best = split{feature: f, bin: b, missingLeft: ml, gain: gain, gl: l, hl: lh, gr: r, hr: rh, ok: true}
				}
			}
		}
	}
	if best.ok && !(best.gain > o.Gamma && best.gain > 1e-12) {
		best.ok = false
	}
	return best
}

// buildTree grows one tree level by level.
func buildTree(ctx context.Context, p Provider, cuts Cuts, o Options, round int) (Tree, error) {
	type open struct {
		req    NodeRequest
		sg, sh float64 // sums from the parent's split (not used for the root)
	}
	t := Tree{Nodes: []Node{{Feature: -1}}}
	level := []open{{req: NodeRequest{ID: 0, Parent: -1}}}
	leaves := 1
	for depth := 0; depth < o.MaxDepth && len(level) > 0; depth++ {
		reqs := make([]NodeRequest, len(level))
		for k, n := range level {
			reqs[k] = n.req
		}
		hs, err := histograms(ctx, p, round, reqs, cuts)
		if err != nil {
			return Tree{}, err
		}
		type cand struct {
			k int
			s split
		}
		var cands []cand
		for k, n := range level {
			if depth == 0 {
				n.sg, n.sh = hs[k].SumG, hs[k].SumH
				t.Nodes[0].Value = o.LearningRate * leafWeight(n.sg, n.sh, o.Lambda)
				t.Nodes[0].Cover = n.sh
			}
			if s := bestSplit(hs[k], cuts, o); s.ok {
				cands = append(cands, cand{k, s})
			}
		}
		if o.MaxLeaves > 0 {
			slices.SortStableFunc(cands, func(a, b cand) int {
				switch {
				case a.s.gain > b.s.gain:
					return -1
				case a.s.gain < b.s.gain:
					return 1
				}
				return 0
			})
			if room := o.MaxLeaves - leaves; len(cands) > room {
				cands = cands[:max(room, 0)]
			}
			slices.SortFunc(cands, func(a, b cand) int { return a.k - b.k })
		}
		var next []open
		for _, c := range cands {
			id := level[c.k].req.ID
			s := c.s
			left, right := len(t.Nodes), len(t.Nodes)+1
			n := &t.Nodes[id]
			*n = Node{Feature: s.feature, Bin: s.bin, Threshold: cuts.Edges[s.feature][s.bin], MissingLeft: s.missingLeft,
				Left: left, Right: right, Gain: s.gain, Cover: n.Cover}
			t.Nodes = append(t.Nodes,
				Node{Feature: -1, Value: o.LearningRate * leafWeight(s.gl, s.hl, o.Lambda), Cover: s.hl},
				Node{Feature: -1, Value: o.LearningRate * leafWeight(s.gr, s.hr, o.Lambda), Cover: s.hr})
			leaves++
			path := level[c.k].req.Path
			for _, side := range []struct {
				id     int
				left   bool
				sg, sh float64
			}{{left, true, s.gl, s.hl}, {right, false, s.gr, s.hr}} {
				cp := append(slices.Clip(path), Condition{Feature: s.feature, Bin: s.bin, MissingLeft: s.missingLeft, Left: side.left})
				next = append(next, open{req: NodeRequest{ID: side.id, Parent: id, Path: cp}, sg: side.sg, sh: side.sh})
			}
		}
		level = next
	}
	return t, nil
}
