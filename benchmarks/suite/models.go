package suite

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"insitu/connectors/synthetic"
	"insitu/enclave/scoring"
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
// plaintext rows (aggregate.go registers them).
func RegisterCases(workload string, f func(env *Env, data string) []Case) {
	extraMu.Lock()
	defer extraMu.Unlock()
	extraCases[workload] = append(extraCases[workload], f)
}

func extra(env *Env, workload, data string) []Case {
	extraMu.Lock()
	fs := extraCases[workload]
	extraMu.Unlock()
	var out []Case
	for _, f := range fs {
		out = append(out, f(env, data)...)
	}
	return out
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

// heTransform is the transform the HE workload declares for every feature: helr.FeatureSpec, the
// transform plugins/helr's defaults are chosen for — the median imputed where values are missing,
// winsorised at the training 1 % and 99 % quantiles, standardised on the training rows and clipped
// to [−4, 4], so that every encrypted input is bounded and heavy-tailed columns keep about unit
// variance (modeling/helr's package doc, "Features").
func heTransform(names []string) features.Spec {
	var spec features.Spec
	for _, n := range names {
		spec.Columns = append(spec.Columns, helr.FeatureSpec(n))
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
	spec := heTransform(s.names)
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
// regression on WoE in plaintext, the aggregate-mode rows at each ε, and the Python models.
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
		out = append(out, extra(env, "scorecard", d)...)
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
		out = append(out, extra(env, "gbdt", d)...)
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

// scoringWorkload is online scoring (issue 7): a model released through the HE job path is served by
// enclave/scoring in the same process, with durable audit (group commit), and asked for single
// scores one after another and for batches of 100.
type scoringWorkload struct{}

func (scoringWorkload) Name() string { return "scoring" }

func (scoringWorkload) Cases(env *Env) []Case {
	c := Case{ID: "scoring/synthetic/online", Data: "synthetic", Kind: KindSystem,
		Method: "enclave/scoring of a released HE model, in-process, durable audit", Run: runScoring}
	synth := false
	for _, s := range env.Sets {
		synth = synth || s.Name == "synthetic"
	}
	switch {
	case !synth:
		c.Skip = "a model to serve is released through the enclave's job path, whose manifests name catalog fields: " +
			"the scoring workload runs on the synthetic platform data (insitu bench without --data)"
	case runtime.GOOS != "linux" || os.Geteuid() != 0:
		c.Skip = "a model to serve is released through the enclave's job path, whose sandbox needs root on Linux"
	case env.Config.PluginBinary == "":
		c.Skip = "no static plugin binary for the job that releases the model to serve"
	}
	return []Case{c}
}

func runScoring(ctx context.Context, env *Env, row *Row) error {
	hj, err := runHEJob(ctx, env, "synthetic")
	if err != nil {
		return err
	}
	defer hj.close()
	e := hj.e
	m, err := e.Models.Get(ctx, hj.rep.Job.ID, hj.bank.Name)
	if err != nil {
		return fmt.Errorf("the released model: %w", err)
	}
	svc := scoring.New(scoring.Config{DB: e.DB, Audit: e.Audit, Datasets: e.Datasets, Consent: e.Consent, Models: e.Models,
		Options: scoring.Options{ScoreRate: 1e9, ScoreBurst: 1e9, Now: func() time.Time { return synthetic.DefaultAsOf }}})
	defer svc.Close()
	subjects := hj.rep.Cohort.Subjects
	score := func(ids []string) (time.Duration, error) {
		start := time.Now()
		res, err := svc.Score(ctx, hj.bank.Name, scoring.ScoreRequest{Model: m.ID, Subjects: ids})
		if err != nil {
			return 0, err
		}
		for _, r := range res.Results {
			if r.Refused != "" {
				return 0, fmt.Errorf("a cohort subject was refused a score (%s)", r.Refused)
			}
		}
		return time.Since(start), nil
	}
	// The first request computes the model's features for the dataset version.
	warm, err := score(subjects[:1])
	if err != nil {
		return err
	}
	singles, batches := 300, 30
	if env.Config.Quick {
		singles, batches = 100, 10
	}
	env.Log("scoring: model %s, %d single requests, then %d batches of 100", m.ID, singles, batches)
	var lat []float64
	start := time.Now()
	for i := range singles {
		d, err := score(subjects[i%len(subjects) : i%len(subjects)+1])
		if err != nil {
			return err
		}
		lat = append(lat, d.Seconds()*1000)
	}
	singleWall := time.Since(start)
	var blat []float64
	start = time.Now()
	for i := range batches {
		ids := make([]string, 100)
		for k := range ids {
			ids[k] = subjects[(i*100+k)%len(subjects)]
		}
		d, err := score(ids)
		if err != nil {
			return err
		}
		blat = append(blat, d.Seconds()*1000)
	}
	batchWall := time.Since(start)
	row.Path = "in-process (no TLS or HTTP; over HTTPS: go test ./enclave/scoring -bench BenchmarkServeScore)"
	row.FitS = fp(warm.Seconds())
	row.Note("fit_s", "caveat: the first request, which computes the model's features for the dataset version")
	row.SetExtra("single_p50_ms", percentile(lat, 0.50))
	row.SetExtra("single_p99_ms", percentile(lat, 0.99))
	row.SetExtra("single_req_per_s", float64(singles)/singleWall.Seconds())
	row.SetExtra("batch100_p50_ms", percentile(blat, 0.50))
	row.SetExtra("batch100_scores_per_s", float64(batches*100)/batchWall.Seconds())
	row.SetExtra("model_features", float64(len(m.Features)))
	return nil
}

// percentile returns the q-quantile of v (nearest rank).
func percentile(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}
