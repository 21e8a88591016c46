package scoring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/modeling/features"
)

// Answers of a verification query.
const (
	AnswerMatch   = "match"
	AnswerNoMatch = "no_match"
	// AnswerUnknown: the platform holds no value for the subject's field (the subject is not in
	// the dataset, or the value is missing).
	AnswerUnknown = "unknown"
)

// VerifyRequest asks whether a subject's field holds a claimed value.
type VerifyRequest struct {
	// Field is the catalog field, "item.field"; its item's sharing mode must be data verification.
	Field string `json:"field"`
	// Subject is the subject's identifier, of the kind the dataset is keyed by.
	Subject string `json:"subject"`
	// Claim is the claimed value as text: true/false for a flag, the value for an enum or text,
	// a number, or a date YYYY-MM-DD.
	Claim string `json:"claim"`
	// Purpose is what the bank asks for; the subject's authorization must name it.
	Purpose consent.Purpose `json:"purpose"`
	// Dataset names the dataset to look in; when empty, the first dataset (by name) whose latest
	// version has the field.
	Dataset string `json:"dataset,omitempty"`
}

// VerifyResponse is the answer: match, no_match or unknown. It never holds the stored value.
type VerifyResponse struct {
	Field          string `json:"field"`
	Answer         string `json:"answer"`
	Dataset        string `json:"dataset,omitempty"`
	DatasetVersion int    `json:"dataset_version,omitempty"`
	AuditSeq       int64  `json:"audit_seq"`
}

// Verify answers a verification query of bank. Refusals are *Error values: a field whose item is
// not shared by data verification, an identifier field, an invalid claim or subject, no valid
// authorization, past the rate limits. Every query is audited, without the claim, the value or the
// subject.
func (s *Service) Verify(ctx context.Context, bank string, req VerifyRequest) (*VerifyResponse, error) {
	now := s.o.Now()
	ev := audit.Event{Kind: KindVerify, Actor: bank, Subject: "field " + clipText(req.Field)}
	payload := map[string]any{"purpose": clipText(string(req.Purpose))}
	refused := func(e *Error) (*VerifyResponse, error) {
		payload["outcome"] = e.Code
		ev.Payload = payload
		if _, err := s.audit.append(ctx, ev); err != nil {
			return nil, err
		}
		return nil, e
	}
	itemKey, fieldKey, _ := strings.Cut(req.Field, ".")
	item, field, err := s.cat.Field(itemKey, fieldKey)
	if err != nil {
		return refused(refuse(CodeInvalid, "field %q is not in the catalog (give item.field, see insitu catalog)", clipText(req.Field)))
	}
	if item.Sharing != catalog.VerificationAuthorized {
		return refused(refuse(CodeNotVerifiable, "item %s is shared by %s, not by data verification: verification queries answer only for items shared by verification", item.Key, item.Sharing))
	}
	if field.Role == catalog.RoleIdentifier {
		return refused(refuse(CodeNotVerifiable, "field %s identifies the subject; verification queries answer about the other fields", req.Field))
	}
	if _, err := consent.ParsePurpose(string(req.Purpose)); err != nil {
		return refused(refuse(CodeInvalid, "purpose %q is not one of the purposes authorizations name", clipText(string(req.Purpose))))
	}
	claim, err := parseClaim(field, req.Claim)
	if err != nil {
		return refused(refuse(CodeInvalid, "claim for %s: %v", req.Field, err))
	}
	if ok, wait := s.verifyLimit.take(bank, 1, now); !ok {
		e := refuse(CodeRateLimited, "%s is past its verification rate limit of %g queries per second (burst %g); retry after %s",
			bank, s.o.VerifyRate, s.o.VerifyBurst, wait.Round(time.Millisecond))
		e.RetryAfter = wait
		return refused(e)
	}
	dm, err := s.verificationDataset(ctx, req.Dataset, req.Field)
	if err != nil {
		return nil, err
	}
	if dm == nil {
		return refused(refuse(CodeInvalid, "no dataset holds field %s", req.Field))
	}
	payload["dataset"], payload["dataset_version"] = dm.Name, dm.Version
	kind := ident.Kind(dm.SubjectKind)
	subject, err := ident.Normalize(kind, req.Subject)
	if err != nil {
		return refused(refuse(CodeInvalid, "the subject is not a valid %s identifier", kind))
	}
	covered, err := s.cfg.Consent.Covered(ctx, consent.CohortQuery{IDType: kind, Grantee: bank, Purpose: req.Purpose,
		Items: []string{item.Key}, At: now}, []string{subject})
	if err != nil {
		return nil, err
	}
	if !covered[subject] {
		return refused(refuse(CodeNotAuthorized, "the subject has no valid authorization of %s for purpose %s covering item %s", bank, req.Purpose, item.Key))
	}
	if ok, wait := s.claims.take(bank+"\x00"+subject+"\x00"+req.Field, now); !ok {
		e := refuse(CodeRateLimited, "%s asked about this field of this subject %d times within %s; retry after %s",
			bank, s.o.MaxClaims, s.o.ClaimWindow, wait.Round(time.Second))
		e.RetryAfter = wait
		return refused(e)
	}
	vals, err := s.columnValues(ctx, dm, req.Field)
	if err != nil {
		return nil, err
	}
	answer := AnswerUnknown
	if v, ok := vals.get(subject); ok {
		answer = AnswerNoMatch
		if claim.equal(v) {
			answer = AnswerMatch
		}
	}
	payload["outcome"] = "answered"
	payload["answer"] = answer
	ev.Payload = payload
	rec, err := s.audit.append(ctx, ev)
	if err != nil {
		return nil, err
	}
	return &VerifyResponse{Field: req.Field, Answer: answer, Dataset: dm.Name, DatasetVersion: dm.Version, AuditSeq: rec.Seq}, nil
}

// verificationDataset returns the latest version of the named dataset, or of the first dataset
// (by name) whose latest version has the field; nil when none has it.
func (s *Service) verificationDataset(ctx context.Context, name, field string) (*dataset.Manifest, error) {
	if name != "" {
		dm, err := s.cfg.Datasets.Manifest(ctx, name, 0)
		if errors.Is(err, dataset.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if _, ok := dm.Column(field); !ok {
			return nil, nil
		}
		return dm, nil
	}
	entries, err := s.cfg.Datasets.List(ctx)
	if err != nil {
		return nil, err
	}
	latest := map[string]int{}
	var names []string
	for _, e := range entries {
		if e.Problem != "" {
			continue
		}
		if _, ok := latest[e.Name]; !ok {
			names = append(names, e.Name)
		}
		latest[e.Name] = max(latest[e.Name], e.Version)
	}
	slices.Sort(names)
	for _, n := range names {
		dm, err := s.cfg.Datasets.Manifest(ctx, n, latest[n])
		if err != nil {
			continue
		}
		if _, ok := dm.Column(field); ok {
			return dm, nil
		}
	}
	return nil, nil
}

// claimValue is a parsed claim, compared with a stored value of the field's type.
type claimValue struct {
	typ catalog.FieldType
	num float64
	str string
}

func parseClaim(f *catalog.Field, s string) (claimValue, error) {
	s = strings.TrimSpace(s)
	c := claimValue{typ: f.Type}
	switch f.Type {
	case catalog.TypeBool:
		switch strings.ToLower(s) {
		case "true", "yes", "1":
			c.num = 1
		case "false", "no", "0":
		default:
			return c, fmt.Errorf("give true or false")
		}
	case catalog.TypeInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return c, fmt.Errorf("give a whole number")
		}
		c.num = float64(n)
	case catalog.TypeFloat:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return c, fmt.Errorf("give a number")
		}
		c.num = v
	case catalog.TypeDate:
		d, err := features.ParseDate(s)
		if err != nil {
			return c, fmt.Errorf("give a date YYYY-MM-DD")
		}
		c.num = float64(d)
	case catalog.TypeEnum:
		for _, v := range f.Values {
			if v == s {
				c.str = s
				return c, nil
			}
		}
		return c, fmt.Errorf("give one of %s", strings.Join(f.Values, ", "))
	case catalog.TypeString:
		if s == "" || len(s) > 500 {
			return c, fmt.Errorf("give 1 to 500 bytes of text")
		}
		c.str = s
	default:
		return c, fmt.Errorf("fields of type %s cannot be verified", f.Type)
	}
	return c, nil
}

// equal compares the claim with a stored value: numbers to a relative 1e-9 (a claimed amount must
// be the registered amount), text exactly.
func (c claimValue) equal(v storedValue) bool {
	if v.isStr {
		return c.str != "" && c.str == v.str
	}
	if c.str != "" {
		return false
	}
	return math.Abs(c.num-v.num) <= 1e-9*math.Max(1, math.Abs(v.num))
}

// storedValue is one stored value of a column.
type storedValue struct {
	num   float64
	str   string
	isStr bool
}

// columnValues is one column of one dataset version, by subject.
type columnValues struct {
	version int
	vals    map[string]storedValue
}

func (c *columnValues) get(subject string) (storedValue, bool) {
	v, ok := c.vals[subject]
	return v, ok
}

// valueEntry caches one column of the latest version of a dataset.
type valueEntry struct {
	mu   sync.Mutex
	vals *columnValues
}

// columnValues returns the values of column name in version dm (cached per dataset and column;
// read again when the version changes).
func (s *Service) columnValues(ctx context.Context, dm *dataset.Manifest, name string) (*columnValues, error) {
	key := dm.Name + "\x00" + name
	s.mu.Lock()
	e, ok := s.values[key]
	if !ok {
		e = &valueEntry{}
		s.values[key] = e
	}
	s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.vals != nil && e.vals.version == dm.Version {
		return e.vals, nil
	}
	sc, err := s.cfg.Datasets.Scan(ctx, dm.Name, dm.Version, dataset.ScanOptions{Columns: []string{name}})
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	cv := &columnValues{version: dm.Version, vals: map[string]storedValue{}}
	for {
		rec, err := sc.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		err = readValues(rec, name, cv.vals)
		rec.Release()
		if err != nil {
			return nil, err
		}
	}
	e.vals = cv
	return cv, nil
}

func readValues(rec arrow.Record, name string, out map[string]storedValue) error {
	ids, ok := rec.Column(0).(*array.String)
	idx := rec.Schema().FieldIndices(name)
	if !ok || len(idx) == 0 {
		return fmt.Errorf("scoring: the scanned records lack subject_id or %s", name)
	}
	col := rec.Column(idx[0])
	for r := 0; r < int(rec.NumRows()); r++ {
		if col.IsNull(r) {
			continue
		}
		var v storedValue
		switch a := col.(type) {
		case *array.String:
			v = storedValue{str: a.Value(r), isStr: true}
		case *array.Int64:
			v.num = float64(a.Value(r))
		case *array.Float64:
			v.num = a.Value(r)
		case *array.Boolean:
			if a.Value(r) {
				v.num = 1
			}
		case *array.Date32:
			v.num = float64(a.Value(r))
		default:
			return fmt.Errorf("scoring: column %s has type %s", name, col.DataType())
		}
		out[ids.Value(r)] = v
	}
	return nil
}
