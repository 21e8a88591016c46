package scoring

import (
	"context"
	"errors"
	"fmt"

	"insitu/connectors/ident"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/registry"
	"insitu/modeling/metrics"
)

// MonitorRequest asks for a model's stability between two versions of its dataset.
type MonitorRequest struct {
	Model string `json:"model"`
	// Purpose selects the populations: the subjects whose authorization of the model's bank for
	// this purpose covers the model's items. The model's own purpose when empty.
	Purpose consent.Purpose `json:"purpose,omitempty"`
	// Baseline and Current are the dataset versions compared; 0 means the model's training version
	// and the latest version.
	Baseline int `json:"baseline,omitempty"`
	Current  int `json:"current,omitempty"`
	// Bins is the number of equal-frequency bins on the baseline; 10 when 0.
	Bins int `json:"bins,omitempty"`
}

// MonitorReport is a stability report: the population stability index of the model's scores and
// the characteristic stability (the same index) of each feature, with the bins' shares. Both
// populations hold at least MinPopulation subjects; no value and no subject is in it.
type MonitorReport struct {
	Model         string             `json:"model"`
	Name          string             `json:"name"`
	Version       int                `json:"version"`
	Dataset       string             `json:"dataset"`
	Purpose       consent.Purpose    `json:"purpose"`
	Baseline      int                `json:"baseline_version"`
	Current       int                `json:"current_version"`
	MinPopulation int                `json:"min_population"`
	Score         metrics.Stability  `json:"score"`
	Features      []FeatureStability `json:"features"`
	AuditSeq      int64              `json:"audit_seq"`
}

// FeatureStability is one feature's characteristic stability index.
type FeatureStability struct {
	Feature string  `json:"feature"`
	PSI     float64 `json:"psi"`
	Bins    int     `json:"bins"`
}

// minBinSize is the fewest baseline subjects per bin: the number of bins shrinks to keep it.
const minBinSize = 10

// Monitor reports the stability of a model between two versions of its dataset. bank is the
// calling bank, which must own the model, or "" for a steward. The request is audited.
func (s *Service) Monitor(ctx context.Context, bank string, req MonitorRequest) (*MonitorReport, error) {
	ev := audit.Event{Kind: KindMonitor, Actor: bank, Subject: "model " + clipText(req.Model)}
	if bank == "" {
		ev.Actor = "steward"
	}
	payload := map[string]any{}
	refused := func(e *Error) (*MonitorReport, error) {
		payload["outcome"] = e.Code
		ev.Payload = payload
		if _, err := s.audit.append(ctx, ev); err != nil {
			return nil, err
		}
		return nil, e
	}
	m, err := s.cfg.Models.Get(ctx, req.Model, bank)
	if errors.Is(err, registry.ErrNotFound) {
		return refused(refuse(CodeNotFound, "model %q: no such model", clipText(req.Model)))
	}
	if err != nil {
		return nil, err
	}
	if !servable(&m.Document) {
		return refused(refuse(CodeNotServable, "model %s is of family %s, which the service cannot score", m.ID, m.Family))
	}
	purpose := req.Purpose
	if purpose == "" {
		purpose = consent.Purpose(m.Purpose)
	}
	if _, err := consent.ParsePurpose(string(purpose)); err != nil {
		return refused(refuse(CodeInvalid, "purpose %q is not one of the purposes authorizations name", clipText(string(purpose))))
	}
	base, cur := req.Baseline, req.Current
	if base == 0 {
		base = m.DatasetVersion
	}
	latest, err := s.cfg.Datasets.Manifest(ctx, m.Dataset, cur)
	if errors.Is(err, dataset.ErrNotFound) {
		return refused(refuse(CodeInvalid, "dataset %s has no version %d", m.Dataset, cur))
	}
	if err != nil {
		return nil, err
	}
	cur = latest.Version
	bins := req.Bins
	if bins == 0 {
		bins = 10
	}
	if bins < 2 || bins > 100 {
		return refused(refuse(CodeInvalid, "give 2 to 100 bins"))
	}
	payload["baseline"], payload["current"], payload["purpose"] = base, cur, string(purpose)
	pops := make([]*population, 2)
	for i, v := range []int{base, cur} {
		dm := latest
		if v != cur {
			if dm, err = s.cfg.Datasets.Manifest(ctx, m.Dataset, v); errors.Is(err, dataset.ErrNotFound) {
				return refused(refuse(CodeInvalid, "dataset %s has no version %d", m.Dataset, v))
			} else if err != nil {
				return nil, err
			}
		}
		p, rerr, err := s.population(ctx, m, dm, purpose)
		if err != nil {
			return nil, err
		}
		if rerr != nil {
			return refused(rerr)
		}
		if p.n < s.o.MinPopulation {
			return refused(refuse(CodeTooFewSubjects, "dataset %s v%d holds fewer than %d subjects whose authorization covers the model's items for %s: no report",
				m.Dataset, v, s.o.MinPopulation, purpose))
		}
		pops[i] = p
	}
	bins = min(bins, pops[0].n/minBinSize)
	rep := &MonitorReport{Model: m.ID, Name: m.Name, Version: m.Version, Dataset: m.Dataset, Purpose: purpose,
		Baseline: base, Current: cur, MinPopulation: s.o.MinPopulation}
	if rep.Score, _, err = metrics.ScorePSI(pops[0].scores, pops[1].scores, bins); err != nil {
		return nil, fmt.Errorf("scoring: monitor %s: %w", m.ID, err)
	}
	for j, name := range m.Features {
		st, _, err := metrics.ScorePSI(pops[0].column(j), pops[1].column(j), bins)
		if err != nil {
			return nil, fmt.Errorf("scoring: monitor %s: feature %s: %w", m.ID, name, err)
		}
		rep.Features = append(rep.Features, FeatureStability{Feature: name, PSI: st.PSI, Bins: len(st.Bins)})
	}
	payload["outcome"], payload["score_psi"] = "answered", rep.Score.PSI
	ev.Payload = payload
	rec, err := s.audit.append(ctx, ev)
	if err != nil {
		return nil, err
	}
	rep.AuditSeq = rec.Seq
	return rep, nil
}

// population is the authorized subjects of one version: their scores and features.
type population struct {
	n      int
	p      int
	scores []float64
	x      []float64
}

func (p *population) column(j int) []float64 {
	out := make([]float64, p.n)
	for i := range out {
		out[i] = p.x[i*p.p+j]
	}
	return out
}

func (s *Service) population(ctx context.Context, m *registry.Model, dm *dataset.Manifest, purpose consent.Purpose) (*population, *Error, error) {
	t, rerr, err := buildTable(ctx, s.cfg.Datasets, dm, m.Inputs, m.Transforms)
	if err != nil || rerr != nil {
		return nil, rerr, err
	}
	subjects := make([]string, 0, len(t.rows))
	for subj, i := range t.rows {
		if i >= 0 {
			subjects = append(subjects, subj)
		}
	}
	covered, err := s.cfg.Consent.Covered(ctx, consent.CohortQuery{IDType: ident.Kind(t.subjectKind), Grantee: m.Bank,
		Purpose: purpose, Items: m.Items, At: s.o.Now()}, subjects)
	if err != nil {
		return nil, nil, err
	}
	p := &population{p: t.p}
	for _, subj := range subjects {
		if !covered[subj] {
			continue
		}
		x, _, _ := t.row(subj)
		p.x = append(p.x, x...)
		p.scores = append(p.scores, m.Probability(x))
		p.n++
	}
	return p, nil, nil
}
