package suite

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"insitu/enclave/aggregate"
	"insitu/enclave/audit"
	"insitu/enclave/keys"
	"insitu/enclave/store"
	"insitu/modeling/features"
	gbdtmodel "insitu/plugins/gbdt/model"
	scmodel "insitu/plugins/scorecard/model"
)

// The aggregate-mode (differentially private) rows of the scorecard and GBDT workloads: the
// reference plugins' model packages (plugins/scorecard/model, plugins/gbdt/model) fitted through
// the enclave's aggregate query service in-process, on the same training rows as the plaintext
// rows, at each ε of aggregateEpsilons. The service adds exact discrete Gaussian noise from
// crypto/rand, suppresses cells with a noisy count below the ledger's minimum, and charges every
// answer to a ledger in a state database of the case's own; only the job's ε binds (the bank's
// total is set high enough not to). The noise is not seeded: a rerun gives another draw.

func init() {
	RegisterCases("scorecard", func(env *Env, data string) []Case { return aggregateCases(env, "scorecard", data) })
	RegisterCases("gbdt", func(env *Env, data string) []Case { return aggregateCases(env, "gbdt", data) })
}

// aggregateEpsilons are the job budgets of the aggregate rows: the ε ∈ {1, 2, 4, 8} on the
// public data sets, a single ε = 8 on synthetic data and with --quick.
func aggregateEpsilons(env *Env, data string) []float64 {
	if env.Config.Quick || data == "synthetic" {
		return []float64{8}
	}
	return []float64{1, 2, 4, 8}
}

func aggregateCases(env *Env, model, data string) []Case {
	var out []Case
	for _, eps := range aggregateEpsilons(env, data) {
		e := strconv.FormatFloat(eps, 'g', -1, 64)
		method := "plugins/scorecard model (monotone WoE, LR on WoE)"
		if model == "gbdt" {
			method = "plugins/gbdt model (noisy histogram boosting)"
		}
		out = append(out, Case{ID: model + "/" + data + "/aggregate-eps" + e, Data: data, Kind: KindModel,
			Method: method + " through enclave/aggregate, job ε = " + e + ", δ = 1e-6",
			Run: func(ctx context.Context, env *Env, row *Row) error {
				return runAggregate(ctx, env, model, data, eps, row)
			}})
	}
	return out
}

// aggregateService is the enclave's aggregate service over the training part of s for one job
// that may spend eps, with a ledger in a fresh state database under dir.
func aggregateService(ctx context.Context, dir string, s split, eps float64) (*aggregate.Service, func(), error) {
	db, err := store.Open(ctx, filepath.Join(dir, "state.db"), audit.Migrations, aggregate.Migrations)
	if err != nil {
		return nil, nil, fmt.Errorf("the aggregate ledger's state database: %w", err)
	}
	id, err := keys.NewIdentity(keys.RoleEnclave, "bench-enclave")
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	led := aggregate.NewLedger(db, audit.New(db, id, audit.Options{}))
	if err := led.SetBudget(ctx, "bench", "bank", "public", 1000); err != nil {
		db.Close()
		return nil, nil, err
	}
	bounds := make([]features.Interval, len(s.names))
	for j := range bounds {
		bounds[j] = features.Interval{Low: math.Inf(-1), High: math.Inf(1)}
	}
	svc, err := aggregate.NewService(ctx, aggregate.Config{Ledger: led, Job: "bench-job", Bank: "bank", Dataset: "public", Epsilon: eps,
		Cohort: aggregate.Cohort{Features: s.names, Bounds: bounds, X: s.tr, Y: s.ytr}})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return svc, func() { db.Close() }, nil
}

func runAggregate(ctx context.Context, env *Env, model, data string, eps float64, row *Row) error {
	t, err := env.Table(data)
	if err != nil {
		return err
	}
	s := splitTable(t)
	dir, err := os.MkdirTemp(env.Config.WorkDir, "aggregate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	svc, closeDB, err := aggregateService(ctx, dir, s, eps)
	if err != nil {
		return err
	}
	defer closeDB()
	start := time.Now()
	var margin func([]float64) float64
	switch model {
	case "scorecard":
		f, err := scmodel.Fit(ctx, svc, s.names, scmodel.DefaultHyperparameters())
		if err != nil {
			return fmt.Errorf("scorecard at ε = %g: %w", eps, err)
		}
		margin = f.Margin
		row.SetExtra("kept_features", float64(len(f.Features)))
	case "gbdt":
		m, _, err := gbdtmodel.Fit(ctx, svc, s.names, gbdtmodel.DefaultHyperparameters())
		if err != nil {
			return fmt.Errorf("gbdt at ε = %g: %w", eps, err)
		}
		margin = m.Margin
	default:
		panic("suite: unknown aggregate model " + model)
	}
	row.FitS = fp(time.Since(start).Seconds())
	rec := svc.Record()
	row.Epsilon, row.Delta = fp(rec.Epsilon), fp(rec.Delta)
	row.SetExtra("epsilon_budget", eps)
	row.SetExtra("queries", float64(rec.Queries))
	row.SetExtra("rho", rec.Rho)
	row.Path = "in-process (enclave/aggregate service, ledger in a state database of its own)"
	row.Note("epsilon", "ε spent as the ledger records it, at δ = delta (zCDP ρ converted)")
	score := make([]float64, len(s.yte))
	x := make([]float64, len(s.names))
	for i := range score {
		for j := range x {
			x[j] = s.te[j][i]
		}
		score[i] = margin(x)
	}
	s.sizes(row)
	return evaluate(row, s.yte, score)
}
