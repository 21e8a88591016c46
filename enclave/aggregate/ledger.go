package aggregate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job/manifest"
	"insitu/enclave/store"
	"insitu/plugins/sdk"
)

// Defaults of the ledger, used where the steward set nothing.
const (
	// DefaultTotalEpsilon is a bank's total budget on one dataset, across all its jobs.
	DefaultTotalEpsilon = 16.0
	// DefaultDelta is the δ of every (ε, δ) statement.
	DefaultDelta = 1e-6
	// DefaultMinCount is the threshold k: cells whose noisy count is below it are suppressed.
	DefaultMinCount = 10
)

// Audit kinds the ledger records.
const (
	// KindBudgetChange: a steward set a budget or the threshold.
	KindBudgetChange audit.Kind = "privacy_budget"
	// KindPrivacySpend: a job's aggregate answers spent budget (one record per job, at its end).
	KindPrivacySpend audit.Kind = "privacy_spend"
)

var (
	// ErrBudget is wrapped by *BudgetError: a query would exceed the job's or the bank's budget.
	ErrBudget = errors.New("privacy budget exceeded")
	// ErrSetting is wrapped when a steward's budget setting is out of range.
	ErrSetting = errors.New("invalid privacy setting")
)

// BudgetError says why a query, or a job before its first query (CheckFits), was refused: what it
// asked for, and what the job and the bank have spent and have left, in ρ (zCDP) and in ε at the
// ledger's δ. It holds no data-dependent value.
type BudgetError struct {
	Job, Bank, Dataset string
	// Requested is the query's ρ; with Start, what is left of the job's own budget.
	Requested float64
	// Start is set when the job was refused before it ran: its manifest's ε does not fit in what
	// remains of the bank's total on the dataset.
	Start bool
	// Which budget refused it: "job" (the manifest's ε) or "bank" (the bank's total on the dataset).
	Which string
	// JobSpent and JobLimit are the job's spend and budget in ρ; BankSpent and BankLimit the bank's
	// on the dataset, all jobs included.
	JobSpent, JobLimit, BankSpent, BankLimit float64
	Delta                                    float64
}

func (e *BudgetError) Error() string {
	eps := func(rho float64) float64 { return sdk.RhoToEpsilon(rho, e.Delta) }
	spent, limit := e.JobSpent, e.JobLimit
	what := fmt.Sprintf("job %s", e.Job)
	if e.Which == "bank" {
		spent, limit = e.BankSpent, e.BankLimit
		what = fmt.Sprintf("bank %s on dataset %s (all jobs)", e.Bank, e.Dataset)
	}
	if e.Start {
		return fmt.Sprintf("aggregate: %v: job %s may spend ρ=%.6g (its manifest's ε) and %s has spent ρ=%.6g (ε=%.4g) of its ε budget %.4g at δ=%g, remaining ρ=%.6g (ε=%.4g): submit the job with a smaller epsilon, or a steward must raise the budget (insitu budget set)",
			ErrBudget, e.Job, e.Requested, what, spent, eps(spent), eps(limit), e.Delta, math.Max(limit-spent, 0), math.Max(eps(limit)-eps(spent), 0))
	}
	return fmt.Sprintf("aggregate: %v: a query of ρ=%.6g would take %s past its budget: spent ρ=%.6g (ε=%.4g), remaining ρ=%.6g (ε budget %.4g at δ=%g): ask for less ρ, or a steward must raise the budget",
		ErrBudget, e.Requested, what, spent, eps(spent), math.Max(limit-spent, 0), eps(limit), e.Delta)
}

// Unwrap returns ErrBudget.
func (e *BudgetError) Unwrap() error { return ErrBudget }

// Store is the database the ledger lives in; *store.DB is one.
type Store interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
	ReadTx(ctx context.Context, fn func(*sql.Tx) error) error
}

// Auditor records events in the caller's transaction; *audit.Log is one.
type Auditor interface {
	AppendTx(ctx context.Context, tx *sql.Tx, ev audit.Event) (audit.Record, error)
}

// Ledger is the privacy ledger: every ρ an aggregate answer spent, per bank, dataset and job, and
// the budgets stewards set. It lives in the enclave's state database, so spends survive restarts
// and add up across jobs. It is safe for concurrent use.
type Ledger struct {
	db  Store
	log Auditor
	now func() time.Time
}

// NewLedger returns the ledger in db (opened with Migrations), auditing through log.
func NewLedger(db Store, log Auditor) *Ledger {
	return &Ledger{db: db, log: log, now: time.Now}
}

// Migrations creates the ledger's tables, scope "aggregate".
var Migrations = []store.Migration{{
	Scope: "aggregate", Version: 1, Name: "privacy budgets, spends, settings",
	SQL: `
CREATE TABLE dp_budgets (
	bank    TEXT NOT NULL,
	dataset TEXT NOT NULL,
	epsilon REAL NOT NULL CHECK (epsilon > 0),
	set_by  TEXT NOT NULL,
	set_at  INTEGER NOT NULL,
	PRIMARY KEY (bank, dataset)
) STRICT;
CREATE TABLE dp_spends (
	id      INTEGER PRIMARY KEY,
	bank    TEXT NOT NULL,
	dataset TEXT NOT NULL,
	job_id  TEXT NOT NULL,
	query   TEXT NOT NULL,
	rho     REAL NOT NULL CHECK (rho > 0),
	at      INTEGER NOT NULL
) STRICT;
CREATE INDEX dp_spends_pair ON dp_spends (bank, dataset);
CREATE INDEX dp_spends_job ON dp_spends (job_id);
CREATE TABLE dp_settings (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
CREATE TRIGGER dp_spends_no_update BEFORE UPDATE ON dp_spends BEGIN SELECT RAISE(ABORT, 'privacy spends are append-only'); END;
CREATE TRIGGER dp_spends_no_delete BEFORE DELETE ON dp_spends BEGIN SELECT RAISE(ABORT, 'privacy spends are append-only'); END;`,
}, {
	Scope: "aggregate", Version: 2, Name: "per-budget delta",
	SQL: `ALTER TABLE dp_budgets ADD COLUMN delta REAL CHECK (delta IS NULL OR (delta > 0 AND delta <= 1e-5))`,
}}

// MaxDelta is the largest δ a steward may set on a budget (SetBudgetDelta).
const MaxDelta = 1e-5

// Settings keys in dp_settings.
const (
	settingMinCount = "min_count"
	settingDelta    = "delta"
)

// Account is one (bank, dataset) pair's budget and spend.
type Account struct {
	Bank, Dataset string
	// Epsilon is the total budget at Delta; Default is whether it is the default (no steward set
	// one).
	Epsilon float64
	Delta   float64
	Default bool
	// Rho is the budget in zCDP (sdk.EpsilonToRho(Epsilon, Delta)); RhoSpent what all the bank's
	// jobs on the dataset spent, and EpsilonSpent its (ε, δ) equivalent.
	Rho, RhoSpent, EpsilonSpent float64
	// Jobs counts the jobs that spent any.
	Jobs int
}

// EpsilonLeft is the ε still available: Epsilon − EpsilonSpent, at least 0.
func (a Account) EpsilonLeft() float64 { return math.Max(a.Epsilon-a.EpsilonSpent, 0) }

// RhoLeft is the ρ still available.
func (a Account) RhoLeft() float64 { return math.Max(a.Rho-a.RhoSpent, 0) }

// Account returns the budget and spend of bank on dataset.
func (l *Ledger) Account(ctx context.Context, bank, dataset string) (Account, error) {
	var a Account
	err := l.db.ReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = accountTx(ctx, tx, bank, dataset)
		return err
	})
	return a, err
}

func deltaTx(ctx context.Context, tx *sql.Tx) (float64, error) {
	v, ok, err := settingTx(ctx, tx, settingDelta)
	if err != nil || !ok {
		return DefaultDelta, err
	}
	return strconv.ParseFloat(v, 64)
}

func settingTx(ctx context.Context, tx *sql.Tx, key string) (string, bool, error) {
	var v string
	err := tx.QueryRowContext(ctx, `SELECT value FROM dp_settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

func accountTx(ctx context.Context, tx *sql.Tx, bank, dataset string) (Account, error) {
	a := Account{Bank: bank, Dataset: dataset}
	var err error
	if a.Delta, err = deltaTx(ctx, tx); err != nil {
		return a, err
	}
	var delta sql.NullFloat64
	err = tx.QueryRowContext(ctx, `SELECT epsilon, delta FROM dp_budgets WHERE bank = ? AND dataset = ?`, bank, dataset).Scan(&a.Epsilon, &delta)
	if delta.Valid {
		a.Delta = delta.Float64
	}
	if errors.Is(err, sql.ErrNoRows) {
		a.Epsilon, a.Default, err = DefaultTotalEpsilon, true, nil
	}
	if err != nil {
		return a, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(rho), 0), COUNT(DISTINCT job_id) FROM dp_spends WHERE bank = ? AND dataset = ?`,
		bank, dataset).Scan(&a.RhoSpent, &a.Jobs); err != nil {
		return a, err
	}
	a.Rho = sdk.EpsilonToRho(a.Epsilon, a.Delta)
	a.EpsilonSpent = sdk.RhoToEpsilon(a.RhoSpent, a.Delta)
	return a, nil
}

// Accounts lists the pairs that have a budget set or a spend recorded, filtered by bank and
// dataset when they are not empty, sorted by bank then dataset.
func (l *Ledger) Accounts(ctx context.Context, bank, dataset string) ([]Account, error) {
	var out []Account
	err := l.db.ReadTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT bank, dataset FROM dp_budgets UNION SELECT bank, dataset FROM dp_spends ORDER BY 1, 2`)
		if err != nil {
			return err
		}
		var pairs [][2]string
		for rows.Next() {
			var p [2]string
			if err := rows.Scan(&p[0], &p[1]); err != nil {
				rows.Close()
				return err
			}
			if (bank == "" || p[0] == bank) && (dataset == "" || p[1] == dataset) {
				pairs = append(pairs, p)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range pairs {
			a, err := accountTx(ctx, tx, p[0], p[1])
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// SetBudget sets bank's total budget on dataset to epsilon (at the budget's δ, kept), audited with
// the steward as actor. A budget below what was already spent is allowed: no further query is answered.
func (l *Ledger) SetBudget(ctx context.Context, actor, bank, dataset string, epsilon float64) error {
	return l.SetBudgetDelta(ctx, actor, bank, dataset, epsilon, 0)
}

// SetBudgetDelta is SetBudget that also sets the budget's δ, in (0, MaxDelta]; 0 keeps the δ it has
// (the ledger's, DefaultDelta, unless set). The spend so far, kept in ρ, is restated at the new δ.
func (l *Ledger) SetBudgetDelta(ctx context.Context, actor, bank, dataset string, epsilon, delta float64) error {
	if bank == "" || dataset == "" {
		return fmt.Errorf("aggregate: set budget: %w: name both the bank and the dataset", ErrSetting)
	}
	if !(epsilon > 0) || epsilon > 1e6 {
		return fmt.Errorf("aggregate: set budget of %s on %s: %w: ε %v must be a positive number (at most 1e6)", bank, dataset, ErrSetting, epsilon)
	}
	if delta != 0 && !(delta > 0 && delta <= MaxDelta) {
		return fmt.Errorf("aggregate: set budget of %s on %s: %w: δ %v must be above 0 and at most %g", bank, dataset, ErrSetting, delta, MaxDelta)
	}
	return l.db.Tx(ctx, func(tx *sql.Tx) error {
		old, err := accountTx(ctx, tx, bank, dataset)
		if err != nil {
			return err
		}
		newDelta := old.Delta
		if delta != 0 {
			newDelta = delta
		}
		var setDelta any // NULL: the ledger's δ
		if delta != 0 {
			setDelta = delta
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dp_budgets (bank, dataset, epsilon, delta, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (bank, dataset) DO UPDATE SET epsilon = excluded.epsilon, delta = COALESCE(excluded.delta, dp_budgets.delta),
			set_by = excluded.set_by, set_at = excluded.set_at`,
			bank, dataset, epsilon, setDelta, actor, l.now().UnixNano()); err != nil {
			return err
		}
		_, err = l.log.AppendTx(ctx, tx, audit.Event{Kind: KindBudgetChange, Actor: actor, Subject: "bank " + bank + " dataset " + dataset,
			Payload: map[string]any{"bank": bank, "dataset": dataset, "old_epsilon": old.Epsilon, "new_epsilon": epsilon,
				"delta": newDelta, "old_delta": old.Delta, "epsilon_spent": old.EpsilonSpent}})
		return err
	})
}

// MinCount returns the threshold k.
func (l *Ledger) MinCount(ctx context.Context) (int, error) {
	k := DefaultMinCount
	err := l.db.ReadTx(ctx, func(tx *sql.Tx) error {
		v, ok, err := settingTx(ctx, tx, settingMinCount)
		if err != nil || !ok {
			return err
		}
		k, err = strconv.Atoi(v)
		return err
	})
	return k, err
}

// SetMinCount sets the threshold k (1 to 1e6), audited.
func (l *Ledger) SetMinCount(ctx context.Context, actor string, k int) error {
	if k < 1 || k > 1e6 {
		return fmt.Errorf("aggregate: set the minimum cell count: %w: %d is out of range: give an integer from 1 to 1000000", ErrSetting, k)
	}
	return l.db.Tx(ctx, func(tx *sql.Tx) error {
		old, _, err := settingTx(ctx, tx, settingMinCount)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dp_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			settingMinCount, strconv.Itoa(k)); err != nil {
			return err
		}
		_, err = l.log.AppendTx(ctx, tx, audit.Event{Kind: KindBudgetChange, Actor: actor, Subject: "minimum cell count",
			Payload: map[string]any{"min_count_old": old, "min_count": k}})
		return err
	})
}

// JobSpent returns what job id spent, in ρ.
func (l *Ledger) JobSpent(ctx context.Context, id string) (float64, error) {
	var rho float64
	err := l.db.ReadTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(rho), 0) FROM dp_spends WHERE job_id = ?`, id).Scan(&rho)
	})
	return rho, err
}

// Charge is one query's spend.
type Charge struct {
	Job, Bank, Dataset string
	// JobEpsilon is the job's budget (its manifest's ε, at most manifest.MaxEpsilon).
	JobEpsilon float64
	// Query names the kind of query, for the record.
	Query string
	Rho   float64
}

// Spend records c if neither the job's budget nor the bank's total on the dataset would be
// exceeded, and returns the job's spend after it; otherwise it records nothing and returns a
// *BudgetError. The record is on disk when Spend returns, so an answer is never given without it.
func (l *Ledger) Spend(ctx context.Context, c Charge) (jobSpent float64, err error) {
	if !(c.Rho > 0) || math.IsInf(c.Rho, 1) {
		return 0, fmt.Errorf("aggregate: job %s: ρ %v: %w", c.Job, c.Rho, ErrQuery)
	}
	if !(c.JobEpsilon > 0) || c.JobEpsilon > manifest.MaxEpsilon {
		return 0, fmt.Errorf("aggregate: job %s: its ε %v is not in (0, %v]", c.Job, c.JobEpsilon, manifest.MaxEpsilon)
	}
	err = l.db.Tx(ctx, func(tx *sql.Tx) error {
		a, err := accountTx(ctx, tx, c.Bank, c.Dataset)
		if err != nil {
			return err
		}
		var js float64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(rho), 0) FROM dp_spends WHERE job_id = ?`, c.Job).Scan(&js); err != nil {
			return err
		}
		jobLimit := sdk.EpsilonToRho(c.JobEpsilon, a.Delta)
		be := &BudgetError{Job: c.Job, Bank: c.Bank, Dataset: c.Dataset, Requested: c.Rho,
			JobSpent: js, JobLimit: jobLimit, BankSpent: a.RhoSpent, BankLimit: a.Rho, Delta: a.Delta}
		switch {
		case js+c.Rho > jobLimit:
			be.Which = "job"
			return be
		case a.RhoSpent+c.Rho > a.Rho:
			be.Which = "bank"
			return be
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO dp_spends (bank, dataset, job_id, query, rho, at) VALUES (?, ?, ?, ?, ?, ?)`,
			c.Bank, c.Dataset, c.Job, c.Query, c.Rho, l.now().UnixNano()); err != nil {
			return err
		}
		jobSpent = js + c.Rho
		return nil
	})
	return jobSpent, err
}

// CheckFits returns a *BudgetError (Start set) when what job may still spend of its budget epsilon
// (its manifest's ε, less what it spent already) is more than what remains of bank's total on
// dataset, and nil when it fits. The executor calls it before a job runs, so that a job approved
// for ε either gets all of it or does not start.
func (l *Ledger) CheckFits(ctx context.Context, job, bank, dataset string, epsilon float64) error {
	a, err := l.Account(ctx, bank, dataset)
	if err != nil {
		return err
	}
	spent, err := l.JobSpent(ctx, job)
	if err != nil {
		return err
	}
	limit := sdk.EpsilonToRho(epsilon, a.Delta)
	if need := limit - spent; need > a.RhoLeft()*(1+1e-9) {
		return &BudgetError{Job: job, Bank: bank, Dataset: dataset, Requested: need, Which: "bank", Start: true,
			JobSpent: spent, JobLimit: limit, BankSpent: a.RhoSpent, BankLimit: a.Rho, Delta: a.Delta}
	}
	return nil
}

// RecordJob appends the audit record of job id's spend: its queries, ρ and (ε, δ). Call it once
// the job's run ended.
func (l *Ledger) RecordJob(ctx context.Context, id, bank, dataset string) (rho, eps, delta float64, err error) {
	err = l.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(rho), 0), COUNT(*) FROM dp_spends WHERE job_id = ?`, id).Scan(&rho, &n); err != nil {
			return err
		}
		a, err := accountTx(ctx, tx, bank, dataset)
		if err != nil {
			return err
		}
		delta = a.Delta
		eps = sdk.RhoToEpsilon(rho, delta)
		_, err = l.log.AppendTx(ctx, tx, audit.Event{Kind: KindPrivacySpend, Actor: "enclave", Subject: id,
			Payload: map[string]any{"bank": bank, "dataset": dataset, "queries": n, "rho": rho, "epsilon": eps, "delta": delta}})
		return err
	})
	return rho, eps, delta, err
}
