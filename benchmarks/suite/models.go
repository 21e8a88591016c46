package suite

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"insitu/modeling/binning"
	"insitu/modeling/features"
	"insitu/modeling/gbdt"
	"insitu/modeling/helr"
	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
	"insitu/modeling/scorecard"
)

func init() {
	Register(heLR{})
	Register(scorecardWorkload{})
	Register(gbdtWorkload{})
	Register(psiWorkload{})
	Register(ingestWorkload{})
	Register(scoringWorkload{})
	Register(sandboxWorkload{})
}

var (
	extraMu    sync.Mutex
	extraCases = map[string][]func(env *Env, data string) []Case{}
)

// RegisterCases adds cases to an existing workload for each data set of a run: how the aggregate
// (differentially private) versions of the scorecard and GBDT workloads slot in next to their
// plaintext rows. When a workload has none, its report says why the private rows are missing.
func RegisterCases(workload string, f func(env *Env, data string) []Case) {
	extraMu.Lock()
	defer extraMu.Unlock()
	extraCases[workload] = append(extraCases[workload], f)
}

func extra(env *Env, workload, data string) ([]Case, bool) {
	extraMu.Lock()
	fs := extraCases[workload]
	extraMu.Unlock()
	var out []Case
	for _, f := range fs {
		out = append(out, f(env, data)...)
	}
	return out, len(fs) > 0
}

// aggregatePending is the row that stands for the aggregate-mode rows while enclave/aggregate does
// not exist in this build.
func aggregatePending(workload, data string) Case {
	return Case{ID: workload + "/" + data + "/aggregate-dp", Data: data, Method: "aggregate mode, ε ∈ {1, 2, 4, 8}", Kind: KindModel,
		Skip: "aggregate mode (enclave/aggregate, issue 6) is not in this build; its rows slot in with suite.RegisterCases"}
}

// split is a table's training and test part.
type split struct {
	names    []string
	tr, te   [][]float64 // columns
	ytr, yte []float64
}

func splitTable(t *Table) split {
	trI, teI := t.Split()
	s := split{names: t.Names}
	s.tr, s.ytr = t.Rows(trI)
	s.te, s.yte = t.Rows(teI)
	return s
}

func (s split) sizes(row *Row) {
	row.Train, row.Test, row.Features = ip(len(s.ytr)), ip(len(s.yte)), ip(len(s.names))
}

// heTransform is the transform the HE workload declares for every feature: the median imputed
// where values are missing, standardised on the training rows and clipped to [−4, 4], so that
// every encrypted input is bounded.
func heTransform(names []string, missing func(j int) bool) features.Spec {
	lo, hi := -4.0, 4.0
	var spec features.Spec
	for j, n := range names {
		var steps []features.Step
		if missing(j) {
			steps = append(steps, features.Step{Impute: &features.Impute{Strategy: features.ImputeMedian}})
		}
		steps = append(steps, features.Step{Scale: &features.Scale{Method: features.ScaleStandard}},
			features.Step{Clip: &features.Clip{Min: &lo, Max: &hi}})
		spec.Columns = append(spec.Columns, features.ColumnSpec{Column: n, Steps: steps})
	}
	return spec
}

func featureCols(names []string, cols [][]float64) []features.Column {
	out := make([]features.Column, len(cols))
	for j, c := range cols {
		var miss []bool
		for i, v := range c {
			if math.IsNaN(v) {
				if miss == nil {
					miss = make([]bool, len(c))
				}
				miss[i] = true
			}
		}
		out[j] = features.NumericColumn(names[j], c, miss)
	}
	return out
}

// transformed fits the HE transform on the training part and applies it to both parts.
func transformed(s split, t *Table) (xtr, xte *mat.Dense, f *features.Fitted, err error) {
	spec := heTransform(s.names, t.HasMissing)
	if f, err = features.Fit(spec, featureCols(s.names, s.tr)); err != nil {
		return nil, nil, nil, err
	}
	if xtr, _, err = f.Transform(featureCols(s.names, s.tr)); err != nil {
		return nil, nil, nil, err
	}
	if xte, _, err = f.Transform(featureCols(s.names, s.te)); err != nil {
		return nil, nil, nil, err
	}
	return xtr, xte, f, nil
}

func evaluate(row *Row, y, score []float64) error {
	s, err := metrics.Evaluate(y, score)
	if err != nil {
		return err
	}
	row.AUC, row.KS = fp(s.AUC), fp(s.KS)
	return nil
}

// heConfig is the HE training's configuration: plugins/helr's defaults, iterations overridden.
func heConfig(cfg *Config) helr.Config {
	c := helr.DefaultConfig()
	if cfg.HEIterations > 0 {
		c.Iterations = cfg.HEIterations
	}
	if cfg.HEL2 > 0 {
		c.L2 = cfg.HEL2
	}
	return c
}

// heLR is the HE logistic-regression workload (issue 5): the encrypted training, the exact
// plaintext optimum of the same objective on the same features, and scikit-learn.
type heLR struct{}

func (heLR) Name() string { return "he-lr" }

func (heLR) Cases(env *Env) []Case {
	var out []Case
	for _, s := range env.Sets {
		d := s.Name
		out = append(out, heCase(env, d),
			Case{ID: "he-lr/" + d + "/plain", Data: d, Kind: KindModel,
				Method: "modeling/logreg, same features and objective (λ = n·l2)", Run: func(ctx context.Context, env *Env, row *Row) error {
					return plainLR(env, d, row)
				}},
			pythonCase(env, "he-lr", d, "lr"))
	}
	return out
}

func plainLR(env *Env, data string, row *Row) error {
	t, err := env.Table(data)
	if err != nil {
		return err
	}
	s := splitTable(t)
	xtr, xte, _, err := transformed(s, t)
	if err != nil {
		return err
	}
	cfg := heConfig(env.Config)
	start := time.Now()
	m, err := logreg.Fit(logreg.Problem{X: xtr, Y: s.ytr, Lambda: cfg.Lambda(len(s.ytr))}, logreg.Options{})
	if err != nil {
		return err
	}
	row.FitS = fp(time.Since(start).Seconds())
	row.Path = "in-process"
	s.sizes(row)
	return evaluate(row, s.yte, m.Decision(xte))
}

// scorecardWorkload is the credit scorecard (issue 6): monotone-WoE binning and logistic
// regression on WoE in plaintext, the aggregate-mode rows when they exist, and the Python models.
type scorecardWorkload struct{}

func (scorecardWorkload) Name() string { return "scorecard" }

func (scorecardWorkload) Cases(env *Env) []Case {
	var out []Case
	for _, s := range env.Sets {
		d := s.Name
		out = append(out, Case{ID: "scorecard/" + d + "/plain", Data: d, Kind: KindModel,
			Method: "modeling/scorecard, monotone WoE (256 fine bins, ≤ 10 bins), LR λ=1", Run: func(ctx context.Context, env *Env, row *Row) error {
				return plainScorecard(env, d, row)
			}})
		if more, ok := extra(env, "scorecard", d); ok {
			out = append(out, more...)
		} else {
			out = append(out, aggregatePending("scorecard", d))
		}
		out = append(out, pythonCase(env, "scorecard", d, "lr"), pythonCase(env, "scorecard", d, "xgb"))
	}
	return out
}

func plainScorecard(env *Env, data string, row *Row) error {
	t, err := env.Table(data)
	if err != nil {
		return err
	}
	s := splitTable(t)
	start := time.Now()
	bins := make([]*binning.Binning, len(s.names))
	for j, name := range s.names {
		if bins[j], err = binning.FitValues(name, s.tr[j], s.ytr, 256, binning.Options{Method: binning.MonotoneWoE}); err != nil {
			return err
		}
	}
	sc, _, err := scorecard.Fit(bins, s.tr, s.ytr, scorecard.Options{Lambda: 1})
	if err != nil {
		return err
	}
	row.FitS = fp(time.Since(start).Seconds())
	score := make([]float64, len(s.yte))
	x := make([]float64, len(s.names))
	for i := range score {
		for j := range x {
			x[j] = s.te[j][i]
		}
		// A higher score means a lower risk: negated, a higher value means more likely bad.
		score[i] = -sc.Score(x)
	}
	row.Path = "in-process"
	s.sizes(row)
	return evaluate(row, s.yte, score)
}

// gbdtWorkload is histogram gradient boosting (issue 6) with xgboost's baseline settings.
type gbdtWorkload struct{}

func (gbdtWorkload) Name() string { return "gbdt" }

func (gbdtWorkload) Cases(env *Env) []Case {
	var out []Case
	for _, s := range env.Sets {
		d := s.Name
		out = append(out, Case{ID: "gbdt/" + d + "/plain", Data: d, Kind: KindModel,
			Method: "modeling/gbdt hist (200 trees, depth 4, η 0.1, 256 bins)", Run: func(ctx context.Context, env *Env, row *Row) error {
				return plainGBDT(ctx, env, d, row)
			}})
		if more, ok := extra(env, "gbdt", d); ok {
			out = append(out, more...)
		} else {
			out = append(out, aggregatePending("gbdt", d))
		}
		out = append(out, pythonCase(env, "gbdt", d, "xgb"))
	}
	return out
}

func plainGBDT(ctx context.Context, env *Env, data string, row *Row) error {
	t, err := env.Table(data)
	if err != nil {
		return err
	}
	s := splitTable(t)
	toDense := func(cols [][]float64, n int) *mat.Dense {
		X := mat.NewDense(n, len(cols), nil)
		for j, c := range cols {
			X.SetCol(j, c)
		}
		return X
	}
	xtr, xte := toDense(s.tr, len(s.ytr)), toDense(s.te, len(s.yte))
	o := gbdt.DefaultOptions()
	o.NumTrees, o.MaxDepth, o.LearningRate = 200, 4, 0.1
	start := time.Now()
	p, err := gbdt.NewExact(xtr, s.ytr, gbdt.QuantileCuts(xtr, s.names, 256))
	if err != nil {
		return err
	}
	m, err := gbdt.Train(ctx, p, nil, o)
	if err != nil {
		return err
	}
	row.FitS = fp(time.Since(start).Seconds())
	row.Path = "in-process"
	s.sizes(row)
	return evaluate(row, s.yte, m.PredictProba(xte))
}

// scoringWorkload stands for online scoring (issue 7).
type scoringWorkload struct{}

func (scoringWorkload) Name() string { return "scoring" }

func (scoringWorkload) Cases(env *Env) []Case {
	return []Case{{ID: "scoring/-/online", Data: "-", Method: "online scoring over HTTPS (POST /v1/score)", Kind: KindSystem,
		Skip: "online scoring (model registry and POST /v1/score, issue 7) is not in this build: there is no released-model " +
			"scoring path to time yet"}}
}

var _ = fmt.Sprint
