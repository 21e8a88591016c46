package model

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/he/hefloat"
	"github.com/tuneinsight/lattigo/v5/utils/bignum"

	"insitu/modeling/helr"
	"insitu/plugins/sdk"
)

// block is one block of encrypted samples: one ciphertext per feature, the scaled labels and the
// mask of valid slots.
type block struct {
	rows int
	x    []*rlwe.Ciphertext // features, fresh at the top level, scale Δ
	ys   *rlwe.Ciphertext   // (α/n)·y at level L−1 and scale qσ
}

// trainer runs the encrypted Nesterov iterations of modeling/helr. Index 0 of every weight vector is
// the intercept, index j ≥ 1 feature j−1. Each weight is one ciphertext holding the value in every
// slot.
type trainer struct {
	params  hefloat.Parameters
	evk     *rlwe.MemEvaluationKeySet
	workers []*worker
	he      sdk.HEContext
	cfg     helr.Config
	coeffs  []float64 // (α/n)·sigmoid coefficients
	poly    hefloat.Polynomial
	depth   int // levels the polynomial consumes
	blocks  []block
	d, n    int
	log     *slog.Logger

	refreshes atomic.Int64
}

// worker holds what one goroutine evaluates with: evaluators and encoders are not safe for
// concurrent use.
type worker struct {
	eval *hefloat.Evaluator
	poly *hefloat.PolynomialEvaluator
	enc  *hefloat.Encoder
}

// levels: a refreshed weight is at the top level L; the point v a gradient is taken at is at L−1;
// the margin u at L−2; the sigmoid at lσ = L−2−depth; the gradient products at lσ−1, dropped to 0
// before the slot sums. So L ≥ depth + 3.
func (tr *trainer) sigmaLevel() int { return tr.params.MaxLevel() - 2 - tr.depth }

// sigmaScale is the scale of the sigmoid's output: the modulus at its level, so that the gradient
// products (times the features' scale Δ) rescale to exactly Δ.
func (tr *trainer) sigmaScale() rlwe.Scale {
	return rlwe.NewScale(tr.params.Q()[tr.sigmaLevel()])
}

func newTrainer(params hefloat.Parameters, evk *rlwe.MemEvaluationKeySet, workers int, cfg helr.Config, n, d int) (*trainer, error) {
	tr := &trainer{params: params, evk: evk, cfg: cfg, n: n, d: d}
	sig := cfg.Sigmoid()
	tr.coeffs = make([]float64, len(sig))
	c := cfg.LearningRate / float64(n)
	for k, v := range sig {
		tr.coeffs[k] = c * v
	}
	r := cfg.SigmoidRange
	tr.poly = hefloat.NewPolynomial(bignum.NewPolynomial(bignum.Monomial, tr.coeffs, [2]float64{-r, r}))
	tr.depth = tr.poly.Depth()
	if need := tr.depth + 3; params.MaxLevel() < need {
		return nil, &sdk.Error{Column: "sigmoid_degree", Err: sdk.ErrHyperparameter,
			Detail: fmt.Sprintf("degree %d needs %d levels per iteration, the job's parameters have %d: choose a lower degree",
				cfg.SigmoidDegree, need, params.MaxLevel())}
	}
	base := hefloat.NewEvaluator(params, evk)
	enc := hefloat.NewEncoder(params)
	for range max(1, workers) {
		ev := base.ShallowCopy()
		tr.workers = append(tr.workers, &worker{eval: ev, poly: hefloat.NewPolynomialEvaluator(params, ev), enc: enc.ShallowCopy()})
	}
	return tr, nil
}

// parallel runs f(w, i) for i in [0, n) on the workers and returns the first error.
func (tr *trainer) parallel(ctx context.Context, n int, f func(w *worker, i int) error) error {
	next := atomic.Int64{}
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for _, w := range tr.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = f(w, i)
				}
				if err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// mulConst returns c·ct at ct's level minus one with the given scale: an exact integer product
// followed by a rescale.
func (tr *trainer) mulConst(w *worker, ct *rlwe.Ciphertext, c float64, scale rlwe.Scale) (*rlwe.Ciphertext, error) {
	q := rlwe.NewScale(tr.params.Q()[ct.Level()])
	// k·Δ_ct / (scale·q) = c
	kf := new(big.Float).SetPrec(256).SetFloat64(c)
	kf.Mul(kf, &scale.Value)
	kf.Mul(kf, &q.Value)
	kf.Quo(kf, &ct.Scale.Value)
	k, _ := new(big.Float).SetPrec(256).Add(kf, big.NewFloat(math.Copysign(0.5, c))).Int(nil)
	out := hefloat.NewCiphertext(tr.params, 1, ct.Level())
	if err := w.eval.Mul(ct, k, out); err != nil {
		return nil, err
	}
	out.Scale = scale.Mul(q)
	if err := w.eval.Rescale(out, out); err != nil {
		return nil, err
	}
	out.Scale = scale
	return out, nil
}

// addBlock unmarshals one block and prepares its scaled labels.
func (tr *trainer) addBlock(b int, hb sdk.HEBlock) error {
	w := tr.workers[0]
	blk := block{rows: hb.Rows, x: make([]*rlwe.Ciphertext, len(hb.Features))}
	for j, data := range hb.Features {
		ct, err := unmarshalFresh(tr.params, data, fmt.Sprintf("block %d feature %d", b, j))
		if err != nil {
			return err
		}
		blk.x[j] = ct
	}
	y, err := unmarshalFresh(tr.params, hb.Label, fmt.Sprintf("block %d label", b))
	if err != nil {
		return err
	}
	if blk.ys, err = tr.mulConst(w, y, tr.cfg.LearningRate/float64(tr.n), tr.sigmaScale()); err != nil {
		return err
	}
	tr.blocks = append(tr.blocks, blk)
	return nil
}

// mask encodes value in the first rows slots (0 elsewhere) at the given level and scale.
func (tr *trainer) mask(w *worker, rows int, value float64, level int, scale rlwe.Scale) (*rlwe.Plaintext, error) {
	v := make([]float64, tr.params.MaxSlots())
	for i := range rows {
		v[i] = value
	}
	pt := hefloat.NewPlaintext(tr.params, level)
	pt.Scale = scale
	if err := w.enc.Encode(v, pt); err != nil {
		return nil, err
	}
	return pt, nil
}

// errorTerms returns e_b = (α/n)·p(u_b) − (α/n)·y_b for every block at v (nil at the first iteration,
// where u = 0 and p(0) = 1/2 on the valid rows).
func (tr *trainer) errorTerms(ctx context.Context, v []*rlwe.Ciphertext) ([]*rlwe.Ciphertext, error) {
	e := make([]*rlwe.Ciphertext, len(tr.blocks))
	if v == nil {
		return e, tr.parallel(ctx, len(tr.blocks), func(w *worker, b int) error {
			blk := tr.blocks[b]
			pt, err := tr.mask(w, blk.rows, tr.coeffs[0], blk.ys.Level(), blk.ys.Scale)
			if err != nil {
				return err
			}
			out := hefloat.NewCiphertext(tr.params, 1, blk.ys.Level())
			if err := w.eval.Sub(blk.ys, pt, out); err != nil { // (α/n)·y − (α/n)/2
				return err
			}
			if err := w.eval.Mul(out, -1, out); err != nil {
				return err
			}
			// At the sigmoid's level, so that the gradient products rescale to exactly Δ.
			w.eval.DropLevel(out, out.Level()-tr.sigmaLevel())
			e[b] = out
			return nil
		})
	}
	// u_b = v_0 + Σ_j v_j ⊙ x_bj: the products accumulate unrelinearised, split across the workers.
	nw := len(tr.workers)
	level := v[0].Level()
	partial := make([][]*rlwe.Ciphertext, len(tr.blocks))
	for b := range partial {
		partial[b] = make([]*rlwe.Ciphertext, nw)
	}
	err := tr.parallel(ctx, len(tr.blocks)*nw, func(w *worker, i int) error {
		b, c := i/nw, i%nw
		acc := hefloat.NewCiphertext(tr.params, 2, level)
		acc.Scale = v[1].Scale.Mul(tr.blocks[b].x[0].Scale)
		for j := c; j < tr.d; j += nw {
			if err := w.eval.MulThenAdd(v[j+1], tr.blocks[b].x[j], acc); err != nil {
				return err
			}
		}
		partial[b][c] = acc
		return nil
	})
	if err != nil {
		return nil, err
	}
	target := tr.sigmaScale()
	err = tr.parallel(ctx, len(tr.blocks), func(w *worker, b int) error {
		acc := partial[b][0]
		for _, p := range partial[b][1:] {
			if err := w.eval.Add(acc, p, acc); err != nil {
				return err
			}
		}
		if err := w.eval.Add(acc, v[0], acc); err != nil {
			return err
		}
		u := hefloat.NewCiphertext(tr.params, 1, level)
		if err := w.eval.Relinearize(acc, u); err != nil {
			return err
		}
		if err := w.eval.Rescale(u, u); err != nil {
			return err
		}
		s, err := w.poly.Evaluate(u, tr.poly, target)
		if err != nil {
			return err
		}
		if s.Level() != tr.sigmaLevel() {
			panic(fmt.Sprintf("helr: sigmoid at level %d, planned %d", s.Level(), tr.sigmaLevel()))
		}
		if err := w.eval.Sub(s, tr.blocks[b].ys, s); err != nil {
			return err
		}
		e[b] = s
		return nil
	})
	return e, err
}

// gradient returns g_j = Σ_b Σ_slots e_b ⊙ x_bj (g_0: e_b masked to the valid rows) at level 0 and
// scale Δ, the same value in every slot.
func (tr *trainer) gradient(w *worker, e []*rlwe.Ciphertext, j int) (*rlwe.Ciphertext, error) {
	level := e[0].Level()
	delta := tr.params.DefaultScale()
	acc := hefloat.NewCiphertext(tr.params, 2, level)
	if j == 0 {
		acc = hefloat.NewCiphertext(tr.params, 1, level)
	}
	acc.Scale = e[0].Scale.Mul(delta)
	for b, blk := range tr.blocks {
		if j == 0 {
			pt, err := tr.mask(w, blk.rows, 1, level, delta)
			if err != nil {
				return nil, err
			}
			if err := w.eval.MulThenAdd(e[b], pt, acc); err != nil {
				return nil, err
			}
		} else if err := w.eval.MulThenAdd(e[b], blk.x[j-1], acc); err != nil {
			return nil, err
		}
	}
	g := acc
	if acc.Degree() == 2 {
		g = hefloat.NewCiphertext(tr.params, 1, level)
		if err := w.eval.Relinearize(acc, g); err != nil {
			return nil, err
		}
	}
	if err := w.eval.Rescale(g, g); err != nil {
		return nil, err
	}
	g.Scale = delta // e's scale is the rescaled-away modulus, so this is exact up to float rounding
	w.eval.DropLevel(g, g.Level())
	sum := hefloat.NewCiphertext(tr.params, 1, 0)
	if err := w.eval.InnerSum(g, 1, tr.params.MaxSlots(), sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// refresh sends ct to the enclave and checks what comes back.
func (tr *trainer) refresh(ctx context.Context, he sdk.HEContext, ct *rlwe.Ciphertext) (*rlwe.Ciphertext, error) {
	data, err := ct.MarshalBinary()
	if err != nil {
		return nil, err
	}
	back, err := he.Refresh(ctx, data)
	if err != nil {
		return nil, fmt.Errorf("helr: refresh: %w", err)
	}
	tr.refreshes.Add(1)
	out := new(rlwe.Ciphertext)
	if err := out.UnmarshalBinary(back); err != nil {
		return nil, fmt.Errorf("helr: refreshed ciphertext does not unmarshal: %w", err)
	}
	if err := checkFresh(tr.params, out); err != nil {
		return nil, fmt.Errorf("helr: refreshed ciphertext: %w", err)
	}
	return out, nil
}

// run does cfg.Iterations iterations from zero and returns the last iterate w_T (index 0 the
// intercept), at level 0.
func (tr *trainer) run(ctx context.Context, he sdk.HEContext, log *slog.Logger) ([]*rlwe.Ciphertext, error) {
	start := time.Now()
	var v, wPrev []*rlwe.Ciphertext // v_t at level L−1; w_t refreshed, at level L; nil while zero
	shrink := 1 - tr.cfg.LearningRate*tr.cfg.L2
	for t := range tr.cfg.Iterations {
		e, err := tr.errorTerms(ctx, v)
		if err != nil {
			return nil, err
		}
		last := t == tr.cfg.Iterations-1
		mu := helr.Momentum(t)
		wNew := make([]*rlwe.Ciphertext, tr.d+1)
		vNew := make([]*rlwe.Ciphertext, tr.d+1)
		wTop := make([]*rlwe.Ciphertext, tr.d+1)
		err = tr.parallel(ctx, tr.d+1, func(w *worker, j int) error {
			g, err := tr.gradient(w, e, j)
			if err != nil {
				return err
			}
			// w_{t+1} = a·v_t − g with a = 1 − α·l2 (1 for the intercept); −g when v_t = 0.
			wj := hefloat.NewCiphertext(tr.params, 1, 0)
			switch {
			case v == nil:
				err = w.eval.Mul(g, -1, wj)
			case j == 0:
				err = w.eval.Sub(v[0], g, wj)
			default:
				var av *rlwe.Ciphertext
				if av, err = w.eval.MulNew(v[j], shrink); err == nil {
					if err = w.eval.Rescale(av, av); err == nil {
						err = w.eval.Sub(av, g, wj)
					}
				}
			}
			if err != nil {
				return err
			}
			wNew[j] = wj
			if last {
				return nil
			}
			top, err := tr.refresh(ctx, he, wj)
			if err != nil {
				return err
			}
			wTop[j] = top
			// v_{t+1} = (1 + μ_t)·w_{t+1} − μ_t·w_t, at level L−1.
			if mu == 0 {
				vNew[j] = top.CopyNew()
				w.eval.DropLevel(vNew[j], 1)
				return nil
			}
			a, err := w.eval.MulNew(top, 1+mu)
			if err != nil {
				return err
			}
			if err := w.eval.Rescale(a, a); err != nil {
				return err
			}
			b, err := w.eval.MulNew(wPrev[j], mu)
			if err != nil {
				return err
			}
			if err := w.eval.Rescale(b, b); err != nil {
				return err
			}
			if err := w.eval.Sub(a, b, a); err != nil {
				return err
			}
			vNew[j] = a
			return nil
		})
		if err != nil {
			return nil, err
		}
		log.Info("iteration", "iteration", t+1, "of", tr.cfg.Iterations,
			"elapsed", time.Since(start).Round(time.Millisecond).String(), "refreshes", tr.refreshes.Load())
		if last {
			return wNew, nil
		}
		v, wPrev = vNew, wTop
	}
	panic("unreachable")
}
