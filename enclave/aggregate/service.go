package aggregate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"sync"

	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// ErrQuery is wrapped by *QueryError: a malformed query, refused before anything is spent.
var ErrQuery = errors.New("malformed aggregate query")

// QueryError says what is wrong with a query. Its message reaches the plugin: it names the query,
// the field and the rule, never a data value.
type QueryError struct {
	Query  string // "histogram", "moments", "glm", "tree", "query"
	Field  string
	Detail string
}

func (e *QueryError) Error() string {
	s := "aggregate: " + ErrQuery.Error() + " (" + e.Query + ")"
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Detail
}

// Unwrap returns ErrQuery.
func (e *QueryError) Unwrap() error { return ErrQuery }

func qerr(query, field, format string, a ...any) error {
	return &QueryError{Query: query, Field: field, Detail: fmt.Sprintf(format, a...)}
}

// Cohort is the training part of a job's cohort as the service answers about it: the transformed
// features column-major and the labels. It is read, never changed.
type Cohort struct {
	// Features names the columns of X; Bounds holds each one's guaranteed range after its transform
	// (features.Fitted.Bounds); values are clipped to it.
	Features []string
	Bounds   []features.Interval
	// X[j][i] is feature j of row i (NaN = missing); Y[i] is row i's label, 0 or 1.
	X [][]float64
	Y []float64
}

// Config configures the service of one job.
type Config struct {
	// Ledger records every spend; Job, Bank and Dataset (the dataset's name: versions share their
	// subjects) are what spends are charged to, and Epsilon the job's budget from its manifest.
	Ledger             *Ledger
	Job, Bank, Dataset string
	Epsilon            float64
	// Label is the name the plugin uses for the label column in AggregateQuery; "label" when empty.
	Label string
	// Cohort is what the answers are about.
	Cohort Cohort
	// Rand is the source of the noise; crypto/rand when nil. Tests only set it.
	Rand io.Reader
}

// Service answers one job's aggregate queries: it implements sdk.AggregateClient for the runner to
// offer the plugin. Every answer is checked against the job's and the bank's budget and recorded in
// the ledger before it is computed and returned. It is safe for concurrent use (queries run one at a
// time).
type Service struct {
	cfg      Config
	minCount int
	delta    float64
	n        int
	index    map[string]int

	mu       sync.Mutex
	sampler  *Sampler
	edges    map[string][]float64 // every edge answered, per feature
	spent    float64
	queries  int
	treeMemo *treeCache
}

var _ sdk.AggregateClient = (*Service)(nil)

// NewService checks the configuration and the cohort's shape, reads the threshold and δ from the
// ledger, and returns the job's service. Call Ledger.CheckFits first to refuse a job whose budget
// does not fit in what remains of its bank's.
func NewService(ctx context.Context, cfg Config) (*Service, error) {
	c := &cfg.Cohort
	if cfg.Ledger == nil || cfg.Job == "" || cfg.Bank == "" || cfg.Dataset == "" {
		return nil, errors.New("aggregate: the service needs a ledger, a job, a bank and a dataset")
	}
	if len(c.Features) != len(c.X) || len(c.Bounds) != len(c.X) {
		return nil, fmt.Errorf("aggregate: job %s: %d feature names, %d bounds and %d columns", cfg.Job, len(c.Features), len(c.Bounds), len(c.X))
	}
	n := len(c.Y)
	for j, col := range c.X {
		if len(col) != n {
			return nil, fmt.Errorf("aggregate: job %s: feature %q has %d rows, the labels %d", cfg.Job, c.Features[j], len(col), n)
		}
	}
	for i, y := range c.Y {
		if y != 0 && y != 1 {
			return nil, fmt.Errorf("aggregate: job %s: label of training row %d is not 0 or 1", cfg.Job, i+1)
		}
	}
	if n >= 1<<30 {
		return nil, fmt.Errorf("aggregate: job %s: %d rows, more than the service sums exactly", cfg.Job, n)
	}
	if cfg.Label == "" {
		cfg.Label = "label"
	}
	s := &Service{cfg: cfg, n: n, index: make(map[string]int, len(c.Features)), sampler: NewSampler(cfg.Rand),
		edges: map[string][]float64{}}
	for j, f := range c.Features {
		s.index[f] = j
	}
	var err error
	if s.minCount, err = cfg.Ledger.MinCount(ctx); err != nil {
		return nil, err
	}
	a, err := cfg.Ledger.Account(ctx, cfg.Bank, cfg.Dataset)
	if err != nil {
		return nil, err
	}
	s.delta = a.Delta
	if s.spent, err = cfg.Ledger.JobSpent(ctx, cfg.Job); err != nil {
		return nil, err
	}
	return s, nil
}

// Record is what the service did for its job: for the output gate and the receipt.
type Record struct {
	// Edges holds, per feature, every bin edge its answers used, sorted and distinct.
	Edges map[string][]float64
	// Queries counts the answers given; Rho is what they spent, and Epsilon its (ε, Delta)
	// equivalent.
	Queries             int
	Rho, Epsilon, Delta float64
}

// Record returns what the service answered so far.
func (s *Service) Record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Record{Edges: make(map[string][]float64, len(s.edges)), Queries: s.queries, Rho: s.spent, Delta: s.delta,
		Epsilon: sdk.RhoToEpsilon(s.spent, s.delta)}
	for f, e := range s.edges {
		e = slices.Clone(e)
		slices.Sort(e)
		r.Edges[f] = slices.Compact(e)
	}
	return r
}

// Budget reports the job's budget; it spends nothing.
func (s *Service) Budget(ctx context.Context) (sdk.Budget, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.cfg.Ledger.Account(ctx, s.cfg.Bank, s.cfg.Dataset)
	if err != nil {
		return sdk.Budget{}, err
	}
	rho := sdk.EpsilonToRho(s.cfg.Epsilon, s.delta)
	return sdk.Budget{Epsilon: s.cfg.Epsilon, Delta: s.delta, Rho: rho, RhoSpent: s.spent,
		EpsilonSpent: sdk.RhoToEpsilon(s.spent, s.delta), RhoLeft: math.Max(math.Min(rho-s.spent, a.RhoLeft()), 0), MinCount: s.minCount}, nil
}

// checkRho refuses a ρ that is not a positive finite number.
func checkRho(query string, rho float64) error {
	if !(rho > 0) || math.IsInf(rho, 1) {
		return qerr(query, "rho", "ρ %v must be a positive number: the budget this answer spends", rho)
	}
	return nil
}

// spend charges rho to the job; call it with s.mu held, after the query validated and before its
// answer is computed.
func (s *Service) spend(ctx context.Context, query string, rho float64) (sdk.Spent, error) {
	js, err := s.cfg.Ledger.Spend(ctx, Charge{Job: s.cfg.Job, Bank: s.cfg.Bank, Dataset: s.cfg.Dataset,
		JobEpsilon: s.cfg.Epsilon, Query: query, Rho: rho})
	if err != nil {
		return sdk.Spent{}, err
	}
	s.spent = js
	s.queries++
	return sdk.Spent{Rho: rho, Epsilon: sdk.RhoToEpsilon(js, s.delta)}, nil
}

// noteEdges records edges as answered for feature f.
func (s *Service) noteEdges(f string, edges []float64) {
	s.edges[f] = append(s.edges[f], edges...)
}

// checkEdges validates one feature's cut points.
func checkEdges(query, column string, edges []float64, maxEdges int) error {
	if len(edges) > maxEdges {
		return qerr(query, column, "%d edges, at most %d", len(edges), maxEdges)
	}
	for i, e := range edges {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return qerr(query, column, "edge %d is not a finite number", i)
		}
		if i > 0 && !(e > edges[i-1]) {
			return qerr(query, column, "edges must be strictly ascending (edge %d)", i)
		}
	}
	return nil
}

// feature returns the index of a feature named by a query.
func (s *Service) feature(query, name string) (int, error) {
	j, ok := s.index[name]
	if !ok {
		return 0, qerr(query, name, "no such feature: the job's features are TrainInput.Features")
	}
	return j, nil
}

// bound returns B = max(|lo|, |hi|) of feature j, or an error when it is not finite.
func (s *Service) bound(query string, j int) (float64, error) {
	b := s.cfg.Cohort.Bounds[j]
	m := math.Max(math.Abs(b.Low), math.Abs(b.High))
	if math.IsInf(m, 0) || math.IsNaN(m) {
		return 0, qerr(query, s.cfg.Cohort.Features[j], "the feature has no finite bounds after its transform, so its sensitivity is unbounded: clip it in the manifest, or pass ClipNorm")
	}
	return m, nil
}

// clip returns x clipped to feature j's bounds; NaN stays NaN.
func (s *Service) clip(j int, x float64) float64 {
	b := s.cfg.Cohort.Bounds[j]
	return math.Min(math.Max(x, b.Low), b.High)
}

// gridShift returns s such that bound·2^s is in (2^(bits−1), 2^bits]: the fixed-point grid of values
// bounded by bound has step 2^−s, a 2^−bits share of the bound.
func gridShift(bound float64, bits int) int {
	if bound <= 0 {
		return 0
	}
	_, e := math.Frexp(bound) // bound = f·2^e, f ∈ [½, 1)
	return bits - e
}

// noisy adds discrete Gaussian noise of variance v to the integer x and returns it scaled back by
// 2^−shift; the conversion is exact for |x| < 2^53.
func (s *Service) noisy(x int64, v Variance, shift int) float64 {
	return math.Ldexp(float64(x+s.sampler.Gaussian(v)), -shift)
}

func bigInt(x int64) *big.Int { return big.NewInt(x) }

// sqInt returns x² as a big integer.
func sqInt(x int64) *big.Int {
	b := big.NewInt(x)
	return b.Mul(b, b)
}
