// Package scoring serves released models inside the enclave: online scores for a bank's own
// registered models (Score), yes/no answers to verification queries on the annex items whose
// sharing mode is data verification (Verify), and stability reports of a model's scores and inputs
// between dataset versions (Monitor).
//
// Call New with the enclave's parts (Config) and Close it when done. Every request, answered or
// refused, is recorded in the audit log before its answer is returned; concurrent requests share
// one transaction and one fsync (group commit, Options.GroupCommit).
//
// What a bank learns:
//
//   - Score: for each subject whose authorization covers, for this bank and the request's
//     purpose, every catalog item the model reads, the probability of default (rounded to the
//     model's step) and the points score of a linear model, a tree ensemble or a scorecard, and a
//     scorecard's reason codes: the characteristics whose bin scored below their best bin, each
//     named by feature and bin label; never a feature value. A subject without such an
//     authorization is refused before the enclave looks at its data, so a refusal says nothing
//     about whether the platform holds the subject. Guards against reading data back through the
//     model: only the owner bank's unrevoked models score; a model must read at least the
//     steward's minimum number of input columns (registry.SettingMinFeatures; for a scorecard or
//     a tree ensemble, the columns its characteristics or splits read); scores are rounded; each
//     bank has a rate limit in subjects per second.
//   - Verify: match, no_match or unknown for one claimed value of one field, never the value;
//     rate-limited per bank and capped per (bank, subject, field) so that a small domain (marital
//     status) cannot be enumerated.
//   - Monitor: population stability indexes and bin shares over populations of at least
//     Options.MinPopulation authorized subjects; no count below it and no value.
//
// Features come from the latest version of the model's dataset, transformed with the transforms
// fitted at training; they are computed once per model and version and kept in memory.
package scoring

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"insitu/connectors/catalog"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/registry"
)

// Audit kinds of the requests.
const (
	KindScore   audit.Kind = "model_score"
	KindVerify  audit.Kind = "verification_query"
	KindMonitor audit.Kind = "model_monitor"
)

// Refusal codes of whole requests (Error.Code) and of single subjects (Result.Refused).
const (
	CodeNotFound       = "not_found"           // no such model, or another bank's
	CodeRevoked        = "revoked"             // the model was revoked
	CodeRateLimited    = "rate_limited"        // past the bank's rate limit
	CodeTooFewFeatures = "too_few_features"    // the model reads fewer inputs than the steward's minimum
	CodeNotServable    = "not_servable"        // the model's family cannot be served
	CodeInvalid        = "invalid"             // the request breaks a rule
	CodeDataset        = "dataset_unavailable" // the current dataset version lacks the model's inputs
	CodeNotVerifiable  = "not_verifiable"      // the field is not a data-verification item's
	CodeNotAuthorized  = "not_authorized"      // no valid authorization for this bank, purpose and items
	CodeUnknownSubject = "unknown_subject"     // authorized, but the current version does not hold the subject
	CodeMissing        = "missing_features"    // the subject's features cannot be computed (a missing value)
	CodeTooFewSubjects = "too_few_subjects"    // a stability population below the minimum
)

// Sentinel errors; every *Error wraps ErrRefused and, for its code, ErrNotFound, ErrRevoked or
// ErrRateLimited.
var (
	ErrRefused     = errors.New("request refused")
	ErrNotFound    = errors.New("model not found")
	ErrRevoked     = errors.New("model revoked")
	ErrRateLimited = errors.New("rate limit exceeded")
)

// Error is a refused request: a code, a reason for the bank (no data value in it) and, for rate
// limits, when to retry.
type Error struct {
	Code       string
	Reason     string
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Reason) }

// Unwrap returns ErrRefused and the code's sentinel.
func (e *Error) Unwrap() []error {
	out := []error{ErrRefused}
	switch e.Code {
	case CodeNotFound:
		out = append(out, ErrNotFound)
	case CodeRevoked:
		out = append(out, ErrRevoked)
	case CodeRateLimited:
		out = append(out, ErrRateLimited)
	}
	return out
}

func refuse(code, format string, a ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, a...)}
}

// Options tune the service. Zero fields take their defaults.
type Options struct {
	// ScoreRate and ScoreBurst are each bank's token bucket for scores, in subjects per second and
	// subjects at once. Defaults 2000 and 20000.
	ScoreRate, ScoreBurst float64
	// VerifyRate and VerifyBurst are each bank's token bucket for verification queries. Defaults 5
	// per second and 50.
	VerifyRate, VerifyBurst float64
	// MaxClaims bounds the verification queries of one bank about one field of one subject within
	// ClaimWindow. Defaults 3 and 24 hours.
	MaxClaims   int
	ClaimWindow time.Duration
	// MaxBatch bounds the subjects of one score request. Default 1000.
	MaxBatch int
	// MinPopulation is the smallest population a stability report covers. Default 100.
	MinPopulation int
	// GroupCommit appends the audit records of concurrent requests in one transaction. On unless
	// NoGroupCommit is set.
	NoGroupCommit bool
	// MaxGroup bounds the records of one group commit. Default 256.
	MaxGroup int
	// VersionCheck is how often the service looks for a newer dataset version. Default 2s.
	VersionCheck time.Duration
	// Now is the clock authorizations are checked at; time.Now when nil.
	Now func() time.Time
}

func (o *Options) defaults() {
	def := func(p *float64, v float64) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.ScoreRate, 2000)
	def(&o.ScoreBurst, 20000)
	def(&o.VerifyRate, 5)
	def(&o.VerifyBurst, 50)
	if o.MaxClaims <= 0 {
		o.MaxClaims = 3
	}
	if o.ClaimWindow <= 0 {
		o.ClaimWindow = 24 * time.Hour
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	if o.MinPopulation <= 0 {
		o.MinPopulation = 100
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 256
	}
	if o.VersionCheck <= 0 {
		o.VersionCheck = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Datasets reads dataset versions; *dataset.Store is one.
type Datasets interface {
	Manifest(ctx context.Context, name string, version int) (*dataset.Manifest, error)
	Scan(ctx context.Context, name string, version int, opts dataset.ScanOptions) (*dataset.Scanner, error)
	List(ctx context.Context) ([]dataset.Entry, error)
}

// Authorizations checks subjects' authorizations; *consent.Registry is one.
type Authorizations interface {
	Covered(ctx context.Context, q consent.CohortQuery, subjects []string) (map[string]bool, error)
}

// Models is the model registry; *registry.Registry is one.
type Models interface {
	Get(ctx context.Context, id, bank string) (*registry.Model, error)
	State(ctx context.Context, id string) (bank string, rev *registry.Revocation, err error)
	Setting(ctx context.Context, key string) (int, error)
}

var (
	_ Datasets       = (*dataset.Store)(nil)
	_ Authorizations = (*consent.Registry)(nil)
	_ Models         = (*registry.Registry)(nil)
)

// Config names the enclave's parts the service uses.
type Config struct {
	DB       TxStore
	Audit    *audit.Log
	Datasets Datasets
	Consent  Authorizations
	Models   Models
	// Catalog is the catalog the items' sharing modes come from; catalog.Default() when nil.
	Catalog *catalog.Catalog
	Options Options
}

// Service serves models. It is safe for concurrent use.
type Service struct {
	cfg   Config
	o     Options
	cat   *catalog.Catalog
	audit *auditor

	scoreLimit, verifyLimit *limiter
	claims                  *claimCounter

	mu     sync.Mutex
	tables map[string]*tableEntry // by model id
	values map[string]*valueEntry // by dataset "\x00" column
	docs   map[string]*registry.Model
}

// New returns the service. It panics if a part is missing (programmer error).
func New(cfg Config) *Service {
	if cfg.DB == nil || cfg.Audit == nil || cfg.Datasets == nil || cfg.Consent == nil || cfg.Models == nil {
		panic("scoring: New needs the database, audit log, datasets, consent registry and model registry")
	}
	cfg.Options.defaults()
	s := &Service{cfg: cfg, o: cfg.Options, cat: cfg.Catalog,
		scoreLimit:  newLimiter(cfg.Options.ScoreRate, cfg.Options.ScoreBurst),
		verifyLimit: newLimiter(cfg.Options.VerifyRate, cfg.Options.VerifyBurst),
		claims:      newClaimCounter(cfg.Options.MaxClaims, cfg.Options.ClaimWindow),
		tables:      map[string]*tableEntry{}, values: map[string]*valueEntry{}, docs: map[string]*registry.Model{}}
	if s.cat == nil {
		s.cat = catalog.Default()
	}
	s.audit = newAuditor(cfg.DB, cfg.Audit, !cfg.Options.NoGroupCommit, cfg.Options.MaxGroup)
	return s
}

// Close stops the group committer after the records it holds are written.
func (s *Service) Close() { s.audit.close() }

// model returns bank's servable model id: refusals for an unknown or another bank's model, a
// revoked one, one of too few inputs or of a family that cannot be served.
func (s *Service) model(ctx context.Context, bank, id string) (*registry.Model, *Error, error) {
	// Documents never change once registered: keep them, and read the owner and the revocation
	// on every request.
	owner, rev, err := s.cfg.Models.State(ctx, id)
	if errors.Is(err, registry.ErrNotFound) || (err == nil && owner != bank) {
		return nil, refuse(CodeNotFound, "model %q: no such model of %s (list yours with insitu model list)", clipText(id), bank), nil
	}
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	m := s.docs[id]
	s.mu.Unlock()
	if m == nil {
		if m, err = s.cfg.Models.Get(ctx, id, bank); err != nil {
			return nil, nil, err
		}
		m.Revocation = nil
		s.mu.Lock()
		s.docs[id] = m
		s.mu.Unlock()
	}
	m = &registry.Model{Document: m.Document, RegisteredAt: m.RegisteredAt, Revocation: rev}
	if m.Revoked() {
		return m, refuse(CodeRevoked, "model %s was revoked on %s and never scores again", id, m.Revocation.At.Format(time.DateOnly)), nil
	}
	if !servable(&m.Document) {
		return m, refuse(CodeNotServable, "model %s is of family %s, which online scoring does not serve", id, m.Family), nil
	}
	minInputs, err := s.cfg.Models.Setting(ctx, registry.SettingMinFeatures)
	if err != nil {
		return nil, nil, err
	}
	// A scorecard or a tree ensemble may read fewer columns than it was given: count those it reads.
	if used := len(m.UsedInputs()); used < minInputs {
		return m, refuse(CodeTooFewFeatures, "model %s reads %d input columns; the stewards serve models of at least %d (setting %s)",
			id, used, minInputs, registry.SettingMinFeatures), nil
	}
	return m, nil, nil
}

// servable reports whether a document holds a family's parameters online scoring computes: a linear
// model, a scorecard or a tree ensemble.
func servable(d *registry.Document) bool {
	return d.Linear != nil || d.Scorecard != nil || d.Trees != nil
}
