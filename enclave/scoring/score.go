package scoring

import (
	"context"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/registry"
)

// ScoreRequest asks for the scores of one or more subjects with one of the bank's models.
type ScoreRequest struct {
	// Model is the model's id (insitu model list).
	Model string `json:"model"`
	// Purpose is what the bank will use the scores for: each subject's authorization must name
	// it. The model's own purpose when empty.
	Purpose consent.Purpose `json:"purpose,omitempty"`
	// Subjects are the subjects' identifiers, of the kind the model's dataset is keyed by.
	Subjects []string `json:"subjects"`
}

// ScoreResponse answers a ScoreRequest: one result per subject, in order.
type ScoreResponse struct {
	Model          string          `json:"model"`
	Name           string          `json:"name"`
	Version        int             `json:"version"`
	Purpose        consent.Purpose `json:"purpose"`
	Dataset        string          `json:"dataset"`
	DatasetVersion int             `json:"dataset_version"`
	Results        []Result        `json:"results"`
	// AuditSeq is the seq of the request's audit record.
	AuditSeq int64 `json:"audit_seq"`
}

// Result is one subject's answer: a probability of default and a points score, or why not.
type Result struct {
	Subject string   `json:"subject"`
	PD      *float64 `json:"pd,omitempty"`
	Score   *float64 `json:"score,omitempty"`
	// Reasons are a scorecard's reason codes, largest shortfall first: each names a characteristic
	// whose bin scored below its best bin, and the bin's label ("feature: (a, b]"), never a value.
	Reasons []string `json:"reasons,omitempty"`
	// Refused is the code of a subject not scored (CodeNotAuthorized, CodeUnknownSubject,
	// CodeMissing, CodeInvalid).
	Refused string `json:"refused,omitempty"`
}

// Score scores req's subjects with bank's model. A refusal of the whole request is an *Error; a
// subject that cannot be scored gets its refusal code in its Result. The request is audited either
// way, and the record is on disk when Score returns.
func (s *Service) Score(ctx context.Context, bank string, req ScoreRequest) (*ScoreResponse, error) {
	now := s.o.Now()
	ev := audit.Event{Kind: KindScore, Actor: bank, Subject: "model " + clipText(req.Model)}
	payload := map[string]any{"requested": len(req.Subjects)}
	refused := func(e *Error) (*ScoreResponse, error) {
		payload["outcome"] = e.Code
		ev.Payload = payload
		if _, err := s.audit.append(ctx, ev); err != nil {
			return nil, err
		}
		return nil, e
	}
	if req.Model == "" {
		return refused(refuse(CodeInvalid, "name the model to score with"))
	}
	if len(req.Subjects) == 0 || len(req.Subjects) > s.o.MaxBatch {
		return refused(refuse(CodeInvalid, "give 1 to %d subjects per request (%d given)", s.o.MaxBatch, len(req.Subjects)))
	}
	m, rerr, err := s.model(ctx, bank, req.Model)
	if err != nil {
		return nil, err
	}
	if m != nil {
		payload["version"], payload["name"] = m.Version, m.Name
	}
	if rerr != nil {
		return refused(rerr)
	}
	purpose := req.Purpose
	if purpose == "" {
		purpose = consent.Purpose(m.Purpose)
	}
	if _, err := consent.ParsePurpose(string(purpose)); err != nil {
		return refused(refuse(CodeInvalid, "purpose %q is not one of the purposes authorizations name", clipText(string(purpose))))
	}
	payload["purpose"] = string(purpose)
	if ok, wait := s.scoreLimit.take(bank, float64(len(req.Subjects)), now); !ok {
		e := refuse(CodeRateLimited, "%s is past its scoring rate limit of %g subjects per second (burst %g); retry after %s",
			bank, s.o.ScoreRate, s.o.ScoreBurst, wait.Round(time.Millisecond))
		e.RetryAfter = wait
		return refused(e)
	}
	t, rerr, err := s.features(ctx, m)
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return refused(rerr)
	}
	payload["dataset_version"] = t.version

	results := make([]Result, len(req.Subjects))
	canon := make([]string, len(req.Subjects))
	var valid []string
	for i, subj := range req.Subjects {
		results[i].Subject = subj
		c, err := ident.Normalize(ident.Kind(t.subjectKind), subj)
		if err != nil {
			results[i].Refused = CodeInvalid
			continue
		}
		canon[i] = c
		valid = append(valid, c)
	}
	covered, err := s.cfg.Consent.Covered(ctx, consent.CohortQuery{IDType: ident.Kind(t.subjectKind), Grantee: bank,
		Purpose: purpose, Items: m.Items, At: now}, valid)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	scored := 0
	for i := range results {
		r := &results[i]
		if r.Refused == "" {
			r.Refused = s.scoreOne(&m.Document, t, covered, canon[i], r)
		}
		if r.Refused != "" {
			counts[r.Refused]++
		} else {
			scored++
		}
	}
	payload["scored"], payload["outcome"] = scored, "answered"
	if len(counts) > 0 {
		payload["refused"] = counts
	}
	ev.Payload = payload
	rec, err := s.audit.append(ctx, ev)
	if err != nil {
		return nil, err
	}
	return &ScoreResponse{Model: m.ID, Name: m.Name, Version: m.Version, Purpose: purpose, Dataset: t.dataset,
		DatasetVersion: t.version, Results: results, AuditSeq: rec.Seq}, nil
}

// scoreOne fills r for one canonical subject, or returns its refusal code. The authorization is
// checked before the data is looked at.
func (s *Service) scoreOne(d *registry.Document, t *table, covered map[string]bool, subject string, r *Result) string {
	if !covered[subject] {
		return CodeNotAuthorized
	}
	x, held, ok := t.row(subject)
	switch {
	case !held:
		return CodeUnknownSubject
	case !ok:
		return CodeMissing
	}
	a := d.Answer(x)
	r.PD, r.Score, r.Reasons = &a.PD, &a.Score, a.Reasons
	return ""
}

// clipText keeps what a caller typed short enough for an audit record.
func clipText(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}
