package enclave

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"insitu/enclave/aggregate"
	"insitu/enclave/audit"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/pluginstore"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// aggManifest is an aggregate-mode job of the lab's bank for family (logistic_regression with
// plugins/logagg, scorecard or gbdt) spending at most eps: its fields standardised and clipped so
// that every sum has a bound, and the family's declared outputs with scores and AUC/KS.
func (l *lab) aggManifest(t *testing.T, plugin pluginstore.Digest, labels, family string, eps float64) *manifest.Manifest {
	t.Helper()
	m := l.manifest(t, plugin, labels)
	m.Mode, m.Epsilon = sdk.ModeAggregate, &eps
	// Fields of the sources the synthetic weakness shows in: arrears, defaults, court records.
	m.Fields = nil
	for _, key := range aggFields {
		if _, ok := l.dataset.Column(key); ok {
			m.Fields = append(m.Fields, manifest.Field{Key: key})
		}
	}
	lo, hi := -4.0, 4.0
	if family == sdk.FamilyLogisticRegression {
		// Fewer, tighter inputs: the noise of a GLM answer grows with the rows' norm bound.
		m.Fields, lo, hi = m.Fields[:4], -2, 2
	}
	for i := range m.Fields {
		m.Fields[i].Steps = []features.Step{
			{Impute: &features.Impute{Strategy: features.ImputeMedian}},
			{Scale: &features.Scale{Method: features.ScaleStandard}},
			{Clip: &features.Clip{Min: &lo, Max: &hi}},
		}
	}
	m.Model = manifest.Model{Family: family}
	m.Outputs = manifest.Outputs{Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}}
	switch family {
	case sdk.FamilyLogisticRegression:
		m.Model.Hyperparameters = map[string]any{"lambda": 50.0, "steps": 3.0}
		m.Outputs.Weights = &manifest.WeightsOutput{MaxWeights: 64, MaxAbs: 16}
	case sdk.FamilyScorecard:
		m.Model.Hyperparameters = map[string]any{"max_bins": 6.0}
		m.Outputs.Scorecard = &manifest.ScorecardOutput{MaxBins: 8, MaxAbs: 20}
	case sdk.FamilyGBDT:
		m.Model.Hyperparameters = map[string]any{"trees": 8.0, "depth": 2.0, "min_child_weight": 5.0, "max_features": 4.0}
		m.Outputs.Trees = &manifest.TreesOutput{MaxTrees: 16, MaxDepth: 3, MaxAbs: 8}
	default:
		t.Fatalf("no aggregate manifest for family %s", family)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// aggFields are the lab's aggregate jobs' fields.
var aggFields = []string{
	"tax_arrears_history.arrears_count_24m", "tax_arrears_history.max_arrears_days_24m",
	"pension_contributions.arrears_months", "electricity.defaults_last_2y",
	"dishonest_judgment_debtors.case_count", "water.late_payments_12m", "gas.late_payments_12m",
	"pension_contributions.insured_headcount", "financial_filings.revenue", "customs_duty_payments.overdue_payments_24m",
}

// TestRunAggregateJobs runs each aggregate-mode reference plugin through the whole job path on the
// synthetic lab data: the plugin learns only from the enclave's noisy answers, the gate checks the
// released model's structure (or the weights against the optimum) and releases it, the receipt
// states the ε spent (at most the manifest's), and the ledger holds the spend. A second job that the
// bank's remaining budget on the dataset cannot cover is refused before it runs, with the spent and
// remaining budget in its reason, and spends nothing.
func TestRunAggregateJobs(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	for _, tc := range []struct {
		plugin, family string
		eps            float64
	}{
		{"logagg", sdk.FamilyLogisticRegression, 8},
		{"scorecard", sdk.FamilyScorecard, 4},
		{"gbdt", sdk.FamilyGBDT, 8},
	} {
		t.Run(tc.plugin, func(t *testing.T) {
			ctx := context.Background()
			l := newLab(t, 10000)
			plugin, labels := l.upload(t, tc.plugin)
			// The steward's total for the bank on the dataset covers the first job and not a second.
			total := tc.eps * 1.25
			if err := l.e.Privacy.SetBudget(ctx, "steward-a", l.bank.Name, l.dataset.Name, total); err != nil {
				t.Fatal(err)
			}
			m := l.aggManifest(t, plugin, labels, tc.family, tc.eps)
			id := submitAndApprove(t, l, m)
			rv, err := l.e.Review(ctx, id)
			if err != nil || rv.Privacy == nil || !rv.Privacy.Fits || rv.Privacy.Requested != tc.eps || rv.Privacy.Total != total {
				t.Fatalf("review's privacy impact before the first job: %+v, %v", rv.Privacy, err)
			}
			rep, err := l.e.RunJob(ctx, id, l.runOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Job.State == job.Failed {
				t.Fatalf("job failed: %s", rep.Job.Reason)
			}
			if rep.Run == nil || rep.Run.HE != nil || (rep.Run.Input != nil && rep.Run.Input.Batches != 0) {
				t.Fatalf("run %v: an aggregate job's plugin gets neither rows nor ciphertexts", rep.Run)
			}
			b := checkReleased(t, l, rep)
			switch tc.family {
			case sdk.FamilyLogisticRegression:
				if b.Gate.Result != gate.VerdictVerified || b.Weights == nil || len(b.Weights.Values) != len(rep.Cohort.Features) {
					t.Fatalf("logistic regression released %+v with verdict %+v", b.Weights, b.Gate)
				}
			case sdk.FamilyScorecard:
				if b.Scorecard == nil || len(b.Scorecard.Characteristics) == 0 {
					t.Fatalf("no points table released: %+v", b.Scorecard)
				}
				for _, ch := range b.Scorecard.Characteristics {
					if len(ch.Attributes) != len(ch.Edges)+2 || len(ch.Edges) > m.Outputs.Scorecard.MaxBins {
						t.Fatalf("characteristic %s: %d edges, %d attributes", ch.Feature, len(ch.Edges), len(ch.Attributes))
					}
				}
			case sdk.FamilyGBDT:
				if b.Trees == nil || len(b.Trees.Trees) == 0 || len(b.Trees.Trees) > m.Outputs.Trees.MaxTrees {
					t.Fatalf("released trees: %+v", b.Trees)
				}
			}

			t.Logf("%s: cohort %d (train %d), held-out AUC %.4f KS %.4f", tc.plugin, len(rep.Cohort.Subjects), rep.Cohort.Train, b.Metrics["auc"], b.Metrics["ks"])

			// The receipt states what the answers spent, within the manifest's ε; the ledger holds it.
			p := rep.Receipt.Privacy
			if p == nil || !(p.Epsilon > 0) || p.Epsilon > tc.eps*(1+1e-9) || p.Delta != aggregate.DefaultDelta {
				t.Fatalf("receipt privacy %+v, want 0 < ε <= %v at δ = %v", p, tc.eps, aggregate.DefaultDelta)
			}
			rho, err := l.e.Privacy.JobSpent(ctx, id)
			if err != nil || !(rho > 0) || rho > sdk.EpsilonToRho(tc.eps, aggregate.DefaultDelta)*(1+1e-9) {
				t.Fatalf("ledger: job %s spent ρ %v (%v)", id, rho, err)
			}
			if got := sdk.RhoToEpsilon(rho, aggregate.DefaultDelta); got != p.Epsilon {
				t.Fatalf("the receipt states ε %v, the ledger's spend is ε %v", p.Epsilon, got)
			}
			acct, err := l.e.Privacy.Account(ctx, l.bank.Name, l.dataset.Name)
			if err != nil || acct.RhoSpent != rho || acct.Jobs != 1 || acct.Epsilon != total {
				t.Fatalf("account after one job: %+v, %v", acct, err)
			}
			if !hasAuditKind(t, l, aggregate.KindPrivacySpend) {
				t.Fatal("the job's privacy spend is not in the audit log")
			}

			// A second job of the same ε does not fit in what remains: the review says so, and the
			// run is refused before the plugin starts, naming what was spent and what remains.
			m2 := l.aggManifest(t, plugin, labels, tc.family, tc.eps)
			m2.Expires = time.Now().Add(49 * time.Hour).UTC().Format(time.RFC3339) // another request
			id2 := submitAndApprove(t, l, m2)
			if rv, err := l.e.Review(ctx, id2); err != nil || rv.Privacy == nil || rv.Privacy.Fits || rv.Privacy.Jobs != 1 {
				t.Fatalf("review's privacy impact before the second job: %+v, %v", rv.Privacy, err)
			}
			rep2, err := l.e.RunJob(ctx, id2, l.runOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			if rep2.Job.State != job.Failed || rep2.Run != nil || rep2.Receipt != nil {
				t.Fatalf("second job: %s, run %v: want failed before running", rep2.Job.State, rep2.Run)
			}
			for _, want := range []string{"privacy budget", l.bank.Name, l.dataset.Name, "spent", "remaining", "steward"} {
				if !strings.Contains(rep2.Job.Reason, want) {
					t.Fatalf("the refusal %q does not say %q", rep2.Job.Reason, want)
				}
			}
			t.Logf("refused: %s", rep2.Job.Reason)
			if rho2, err := l.e.Privacy.JobSpent(ctx, id2); err != nil || rho2 != 0 {
				t.Fatalf("the refused job spent ρ %v (%v)", rho2, err)
			}
			if acct2, err := l.e.Privacy.Account(ctx, l.bank.Name, l.dataset.Name); err != nil || acct2.RhoSpent != acct.RhoSpent {
				t.Fatalf("account after the refused job: %+v, %v", acct2, err)
			}
			if _, _, err := l.e.Gate.Result(ctx, id2); !errors.Is(err, gate.ErrNotReleased) {
				t.Fatalf("Result of the refused job: %v", err)
			}
		})
	}
}

// hasAuditKind reports whether the lab's audit log holds a record of kind k.
func hasAuditKind(t *testing.T, l *lab, k audit.Kind) bool {
	t.Helper()
	recs, err := l.e.Audit.Records(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind == k {
			return true
		}
	}
	return false
}
