package aggregate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"insitu/enclave/audit"
	"insitu/enclave/keys"
	"insitu/enclave/store"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// seeded is a deterministic byte source for tests only; production noise comes from crypto/rand.
type seeded struct{ r *rand.ChaCha8 }

func newSeeded(seed byte) *seeded {
	var s [32]byte
	s[0] = seed
	return &seeded{r: rand.NewChaCha8(s)}
}

func (s *seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

var (
	encOnce sync.Once
	encID   *keys.Identity
)

func enclaveIdentity(t testing.TB) *keys.Identity {
	encOnce.Do(func() {
		id, err := keys.NewIdentity(keys.RoleEnclave, "enclave")
		if err != nil {
			t.Fatal(err)
		}
		encID = id
	})
	return encID
}

// openLedger opens (or reopens, as a restarted enclave does) the state database at path.
func openLedger(t testing.TB, path string) (*Ledger, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), path, audit.Migrations, Migrations)
	if err != nil {
		t.Fatal(err)
	}
	return NewLedger(db, audit.New(db, enclaveIdentity(t), audit.Options{})), db
}

func newLedger(t testing.TB) *Ledger {
	l, db := openLedger(t, filepath.Join(t.TempDir(), "state.db"))
	t.Cleanup(func() { db.Close() })
	return l
}

// testCohort has n rows: feature "a" uniform in [0, 10], feature "b" = 1 for every 7th row, and the
// label 1 where a > 6.
func testCohort(n int) Cohort {
	rng := rand.New(rand.NewPCG(1, 2))
	a, b, y := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		a[i] = 10 * rng.Float64()
		if i%7 == 0 {
			b[i] = 1
		}
		if a[i] > 6 {
			y[i] = 1
		}
	}
	return Cohort{Features: []string{"x.a", "x.b"}, Bounds: []features.Interval{{Low: 0, High: 10}, {Low: 0, High: 1}},
		X: [][]float64{a, b}, Y: y}
}

func newService(t testing.TB, l *Ledger, job string, eps float64, c Cohort, seed byte) *Service {
	t.Helper()
	s, err := NewService(context.Background(), Config{Ledger: l, Job: job, Bank: "bank-a", Dataset: "ds", Epsilon: eps,
		Cohort: c, Rand: newSeeded(seed)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDiscreteGaussianMoments(t *testing.T) {
	for _, sigma2 := range []float64{0.5, 9, 2500, 1e8} {
		s := NewSampler(newSeeded(7))
		v := VarianceFor(big.NewInt(1), 1/(2*sigma2)) // σ² = 1/(2ρ)
		const n = 20000
		var sum, sum2 float64
		for range n {
			x := float64(s.Gaussian(v))
			sum += x
			sum2 += x * x
		}
		mean, variance := sum/n, sum2/n-(sum/n)*(sum/n)
		sd := math.Sqrt(sigma2)
		// The discrete Gaussian's variance is below σ² and within 1e-4 of it for σ² ≥ 1 (CKS Cor. 9).
		if math.Abs(mean) > 4*sd/math.Sqrt(n) {
			t.Errorf("σ²=%v: mean %v, want 0 within %v", sigma2, mean, 4*sd/math.Sqrt(n))
		}
		lo := 0.94 * sigma2
		if sigma2 < 1 {
			lo = 0.3 * sigma2
		}
		if variance < lo || variance > 1.06*sigma2 {
			t.Errorf("σ²=%v: sample variance %v", sigma2, variance)
		}
		if got := v.Sigma(); math.Abs(got-sd) > 1e-6*sd+1e-6 {
			t.Errorf("σ²=%v: Sigma() = %v", sigma2, got)
		}
	}
}

func TestDiscreteLaplaceVariance(t *testing.T) {
	s := NewSampler(newSeeded(3))
	const n, scale = 20000, 5
	var sum2 float64
	for range n {
		x := float64(s.Laplace(scale))
		sum2 += x * x
	}
	q := math.Exp(-1.0 / scale)
	want := 2 * q / ((1 - q) * (1 - q))
	if got := sum2 / n; math.Abs(got-want) > 0.06*want {
		t.Fatalf("discrete Laplace variance %v, want %v", got, want)
	}
}

func TestVarianceForRoundsUp(t *testing.T) {
	v := VarianceFor(big.NewInt(3), 0.7)
	exact := 3 / (2 * 0.7)
	f, _ := new(big.Float).SetInt(v.Num).Float64()
	got := f / (1 << VarianceBits)
	if got < exact || got > exact+1.0/(1<<VarianceBits) {
		t.Fatalf("σ² = %v, want the next multiple of 2^-20 from %v", got, exact)
	}
}

func TestSuppressedCellsNeverAppear(t *testing.T) {
	l := newLedger(t)
	if err := l.SetBudget(context.Background(), "steward", "bank-a", "ds", 1000); err != nil {
		t.Fatal(err)
	}
	c := testCohort(2000)
	// Bins of "x.a": [0, 0.004] holds about 1 row, then about 2000 rows, then none above 10, and no
	// missing values: three sparse cells per label. ρ is large (σ = 1 for the counts), so the noise
	// never lifts a cell of 0 to 2 rows over k = 10, and never drops 1000 rows below it.
	for trial := range 20 {
		s := newService(t, l, fmt.Sprintf("job-supp-%d", trial), 8, c, byte(trial))
		a, err := s.Histogram(context.Background(), sdk.HistogramQuery{
			Features: []sdk.Bins{{Column: "x.a", Edges: []float64{0.004, 10}}}, ByLabel: true, Sums: true, Rho: 1})
		if err != nil {
			t.Fatal(err)
		}
		h := a.Features[0]
		for l := range 2 {
			for b := range 4 {
				if h.Suppressed[l][b] {
					if h.Counts[l][b] != 0 || h.Sums[l][b] != 0 {
						t.Fatalf("trial %d: suppressed cell [%d][%d] carries count %v sum %v", trial, l, b, h.Counts[l][b], h.Sums[l][b])
					}
					continue
				}
				if h.Counts[l][b] < 10 {
					t.Fatalf("trial %d: cell [%d][%d] with noisy count %v below k was returned", trial, l, b, h.Counts[l][b])
				}
			}
			for _, b := range []int{0, 2, 3} {
				if !h.Suppressed[l][b] {
					t.Fatalf("trial %d: sparse cell [%d][%d] not suppressed", trial, l, b)
				}
			}
			if h.Suppressed[l][1] {
				t.Fatalf("trial %d: a cell of ~1000 rows suppressed", trial)
			}
		}
	}
	// The grouped query and the tree query suppress the same way.
	s := newService(t, l, "job-supp", 8, c, 99)
	g, err := s.Query(context.Background(), sdk.AggregateQuery{Statistic: sdk.StatMean, Column: "x.a",
		GroupBy: []sdk.Bins{{Column: "x.a", Edges: []float64{0.004, 10}}}, Rho: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range g.Cells {
		if (cell.Bins[0] != 1) != cell.Suppressed || cell.Suppressed && cell.Value != 0 {
			t.Fatalf("grouped cell %v", cell)
		}
	}
	tr, err := s.TreeHistograms(context.Background(), sdk.TreeQuery{Features: []string{"x.a"}, Edges: [][]float64{{0.004, 10}},
		Nodes: []sdk.TreeNodeQuery{{ID: 1, Path: []sdk.TreeCondition{{Feature: 0, Bin: 0, Left: true}}}, {ID: 2, Path: []sdk.TreeCondition{{Feature: 0, Bin: 0}}}}, Rho: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if n := tr.Nodes[0]; !n.NodeSuppressed || n.SumG != 0 || n.G[0][0] != 0 || !n.Suppressed[0][0] {
		t.Fatalf("the node of ~1 row was not suppressed: %+v", n)
	}
	if n := tr.Nodes[1]; n.NodeSuppressed || !n.Suppressed[0][0] || n.Suppressed[0][1] || n.G[0][0] != 0 {
		t.Fatalf("node 2: %+v", n)
	}
}

func TestLedgerRefusesPastJobBudget(t *testing.T) {
	l := newLedger(t)
	s := newService(t, l, "job-1", 1, testCohort(500), 2) // ε = 1: ρ ≈ 0.02436
	ctx := context.Background()
	q := sdk.HistogramQuery{Features: []sdk.Bins{{Column: "x.a", Edges: []float64{5}}}, Rho: 0.02}
	if _, err := s.Histogram(ctx, q); err != nil {
		t.Fatal(err)
	}
	q.Rho = 0.01
	_, err := s.Histogram(ctx, q)
	var be *BudgetError
	if !errors.As(err, &be) || !errors.Is(err, ErrBudget) || be.Which != "job" {
		t.Fatalf("err = %v, want a job BudgetError", err)
	}
	if be.JobSpent != 0.02 || math.Abs(be.JobLimit-sdk.EpsilonToRho(1, DefaultDelta)) > 1e-12 {
		t.Fatalf("spent %v, limit %v", be.JobSpent, be.JobLimit)
	}
	for _, want := range []string{"job job-1", "spent ρ=0.02", "remaining ρ=0.004355", "ε budget 1 "} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if spent, _ := l.JobSpent(ctx, "job-1"); spent != 0.02 {
		t.Fatalf("the refused query was recorded: spent %v", spent)
	}
	b, err := s.Budget(ctx)
	if err != nil || b.RhoSpent != 0.02 || math.Abs(b.RhoLeft-(b.Rho-0.02)) > 1e-12 || b.MinCount != DefaultMinCount || b.Epsilon != 1 {
		t.Fatalf("budget %+v, %v", b, err)
	}
}

func TestLedgerRefusesAcrossJobsAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	l, db := openLedger(t, path)
	if err := l.SetBudget(ctx, "steward-1", "bank-a", "ds", 2); err != nil { // ρ ≈ 0.0882 for the bank on ds
		t.Fatal(err)
	}
	c := testCohort(500)
	q := sdk.HistogramQuery{Features: []sdk.Bins{{Column: "x.a", Edges: []float64{5}}}, Rho: 0.05}
	if _, err := newService(t, l, "job-1", 8, c, 1).Histogram(ctx, q); err != nil {
		t.Fatal(err)
	}
	db.Close()

	l, db = openLedger(t, path) // the enclave restarted
	defer db.Close()
	a, err := l.Account(ctx, "bank-a", "ds")
	if err != nil || a.RhoSpent != 0.05 || a.Epsilon != 2 || a.Default || a.Jobs != 1 {
		t.Fatalf("account after restart %+v, %v", a, err)
	}
	s2 := newService(t, l, "job-2", 8, c, 2)
	q.Rho = 0.03
	if _, err := s2.Histogram(ctx, q); err != nil {
		t.Fatal(err)
	}
	q.Rho = 0.01 // 0.05 + 0.03 + 0.01 > 0.0882, though job-2's own budget (ε = 8) is far from spent
	_, err = s2.Histogram(ctx, q)
	var be *BudgetError
	if !errors.As(err, &be) || be.Which != "bank" || math.Abs(be.BankSpent-0.08) > 1e-12 {
		t.Fatalf("err = %v, want the bank's budget to refuse", err)
	}
	if !strings.Contains(err.Error(), "bank bank-a on dataset ds (all jobs)") || !strings.Contains(err.Error(), "remaining ρ=0.00815") {
		t.Fatalf("error %q", err)
	}
	// Another dataset has its own (default) budget.
	other, err := l.Account(ctx, "bank-a", "other")
	if err != nil || !other.Default || other.Epsilon != DefaultTotalEpsilon || other.RhoSpent != 0 {
		t.Fatalf("other dataset %+v, %v", other, err)
	}
	accts, err := l.Accounts(ctx, "bank-a", "")
	if err != nil || len(accts) != 1 || accts[0].Jobs != 2 || math.Abs(accts[0].EpsilonSpent-sdk.RhoToEpsilon(0.08, DefaultDelta)) > 1e-9 {
		t.Fatalf("accounts %+v, %v", accts, err)
	}
	// The budget change was audited.
	rep, err := audit.Verify(ctx, db, enclaveIdentity(t).Public(), nil)
	if err != nil || rep.Records < 1 {
		t.Fatalf("audit %+v, %v", rep, err)
	}
}

func TestMalformedQueriesRefused(t *testing.T) {
	l := newLedger(t)
	s := newService(t, l, "job-bad", 8, testCohort(200), 1)
	ctx := context.Background()
	unbounded := testCohort(200)
	unbounded.Bounds[0] = features.Interval{Low: math.Inf(-1), High: math.Inf(1)}
	su := newService(t, l, "job-unb", 8, unbounded, 1)
	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"unknown feature", func() error {
			_, err := s.Histogram(ctx, sdk.HistogramQuery{Features: []sdk.Bins{{Column: "secret"}}, Rho: 0.1})
			return err
		}, "no such feature"},
		{"unsorted edges", func() error {
			_, err := s.Histogram(ctx, sdk.HistogramQuery{Features: []sdk.Bins{{Column: "x.a", Edges: []float64{2, 1}}}, Rho: 0.1})
			return err
		}, "strictly ascending"},
		{"NaN edge", func() error {
			_, err := s.Query(ctx, sdk.AggregateQuery{Statistic: sdk.StatCount, GroupBy: []sdk.Bins{{Column: "x.a", Edges: []float64{math.NaN()}}}, Rho: 0.1})
			return err
		}, "not a finite number"},
		{"zero rho", func() error {
			_, err := s.Moments(ctx, sdk.MomentsQuery{})
			return err
		}, "ρ 0 must be a positive number"},
		{"infinite rho", func() error {
			_, err := s.GLM(ctx, sdk.GLMQuery{Weights: []float64{0, 0}, Rho: math.Inf(1)})
			return err
		}, "positive number"},
		{"weights", func() error {
			_, err := s.GLM(ctx, sdk.GLMQuery{Weights: []float64{1}, Rho: 0.1})
			return err
		}, "1 weights for 2 features"},
		{"unbounded sum", func() error {
			_, err := su.Histogram(ctx, sdk.HistogramQuery{Features: []sdk.Bins{{Column: "x.a"}}, Sums: true, Rho: 0.1})
			return err
		}, "no finite bounds"},
		{"bad statistic", func() error {
			_, err := s.Query(ctx, sdk.AggregateQuery{Statistic: "median", Rho: 0.1})
			return err
		}, "not count, sum or mean"},
		{"tree bin", func() error {
			_, err := s.TreeHistograms(ctx, sdk.TreeQuery{Features: []string{"x.a"}, Edges: [][]float64{{1}},
				Nodes: []sdk.TreeNodeQuery{{ID: 1, Path: []sdk.TreeCondition{{Feature: 0, Bin: 1}}}}, Rho: 0.1})
			return err
		}, "a split after bin 1"},
		{"tree model", func() error {
			_, err := s.TreeHistograms(ctx, sdk.TreeQuery{Model: []byte(`{"feature_names":["x.b"],"edges":[[]],"base_score":0,"trees":[]}`),
				Features: []string{"x.a"}, Edges: [][]float64{{1}}, Nodes: []sdk.TreeNodeQuery{{ID: 1}}, Rho: 0.1})
			return err
		}, "model"},
		{"tree duplicate node", func() error {
			_, err := s.TreeHistograms(ctx, sdk.TreeQuery{Features: []string{"x.a"}, Edges: [][]float64{{1}}, Nodes: []sdk.TreeNodeQuery{{ID: 1}, {ID: 1}}, Rho: 0.1})
			return err
		}, "repeated"},
		{"too many cells", func() error {
			e := make([]float64, MaxEdges)
			for i := range e {
				e[i] = float64(i)
			}
			_, err := s.Query(ctx, sdk.AggregateQuery{Statistic: sdk.StatCount, GroupBy: []sdk.Bins{{Column: "x.a", Edges: e}, {Column: "x.b", Edges: e}}, Rho: 0.1})
			return err
		}, "more than 65536 cells"},
	}
	for _, tc := range cases {
		err := tc.run()
		if !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrQuery saying %q", tc.name, err, tc.want)
		}
	}
	for _, job := range []string{"job-bad", "job-unb"} {
		if spent, _ := l.JobSpent(ctx, job); spent != 0 {
			t.Fatalf("%s: a refused query spent %v", job, spent)
		}
	}
}

// TestCheckFits: a job whose ε does not fit in what remains of its bank's total is refused before it
// starts, with the bank's spend and what remains; one that fits, or one that spent part of its own
// budget already, is not.
func TestCheckFits(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t)
	if err := l.SetBudget(ctx, "steward-1", "bank-a", "ds", 10); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckFits(ctx, "job-1", "bank-a", "ds", 8); err != nil {
		t.Fatalf("the first job of ε 8 in a total of 10: %v", err)
	}
	if _, err := l.Spend(ctx, Charge{Job: "job-1", Bank: "bank-a", Dataset: "ds", JobEpsilon: 8, Query: "histogram", Rho: sdk.EpsilonToRho(8, DefaultDelta) / 2}); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckFits(ctx, "job-1", "bank-a", "ds", 8); err != nil {
		t.Fatalf("job-1 with half its budget spent: %v", err)
	}
	err := l.CheckFits(ctx, "job-2", "bank-a", "ds", 8)
	var be *BudgetError
	if !errors.As(err, &be) || !be.Start || be.Which != "bank" || !errors.Is(err, ErrBudget) {
		t.Fatalf("job-2: %v", err)
	}
	for _, want := range []string{"job job-2", "bank bank-a on dataset ds", "has spent ρ=0.52", "remaining ρ=", "smaller epsilon"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if err := l.CheckFits(ctx, "job-3", "bank-a", "ds", 1); err != nil {
		t.Fatalf("a job of ε 1: %v", err)
	}
}
