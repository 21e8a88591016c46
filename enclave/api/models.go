package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"insitu/enclave/buildinfo"
	"insitu/enclave/registry"
	"insitu/enclave/scoring"
)

// CodeRateLimited is the error code of a request past the caller's rate limit (HTTP 429, with a
// Retry-After header in seconds).
const CodeRateLimited = "rate_limited"

// LimitScore is the body limit of a score request: MaxBatch subjects with room to spare.
const LimitScore = 256 << 10

// ModelInfo is a registered model as a list shows it: no weights and no transforms.
type ModelInfo struct {
	ID             string               `json:"id"`
	Bank           string               `json:"bank"`
	Name           string               `json:"name"`
	Version        int                  `json:"version"`
	Family         string               `json:"family"`
	Purpose        string               `json:"purpose"`
	Dataset        string               `json:"dataset"`
	DatasetVersion int                  `json:"dataset_version"`
	Inputs         []string             `json:"inputs"`
	Items          []string             `json:"items"`
	Features       int                  `json:"features"`
	Release        registry.Release     `json:"release"`
	RegisteredAt   time.Time            `json:"registered_at"`
	Revocation     *registry.Revocation `json:"revocation,omitempty"`
}

// ModelInfoFrom summarises a registry entry.
func ModelInfoFrom(m *registry.Model) ModelInfo {
	return ModelInfo{ID: m.ID, Bank: m.Bank, Name: m.Name, Version: m.Version, Family: m.Family, Purpose: m.Purpose,
		Dataset: m.Dataset, DatasetVersion: m.DatasetVersion, Inputs: m.Inputs, Items: m.Items, Features: len(m.Features),
		Release: m.Release, RegisteredAt: m.RegisteredAt, Revocation: m.Revocation}
}

// ServingSetting is the body of PUT /v1/serving/settings/{key}.
type ServingSetting struct {
	Value int `json:"value"`
}

// ServingSettings lists the serving settings.
type ServingSettings struct {
	MinFeatures int `json:"serving.min_features"`
}

// ownerOf returns the bank whose models the caller may reach: its own name for a bank, "" (every
// bank's) for a steward.
func ownerOf(c *Caller) string {
	if c.Role == RoleSteward {
		return ""
	}
	return c.Name
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request, c *Caller) error {
	f := registry.Filter{Bank: ownerOf(c), Active: r.URL.Query().Get("active") == "true"}
	if b := r.URL.Query().Get("bank"); b != "" {
		if f.Bank != "" && b != f.Bank {
			return errForbidden("a bank lists its own models only")
		}
		f.Bank = b
	}
	ms, err := s.e.Models.List(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]ModelInfo, len(ms))
	for i, m := range ms {
		out[i] = ModelInfoFrom(m)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getModel shows a model: in full (weights, transforms) to its bank, summarised to a steward.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request, c *Caller) error {
	m, err := s.e.Models.Get(r.Context(), r.PathValue("id"), ownerOf(c))
	if err != nil {
		return modelError(err)
	}
	if c.Role == RoleSteward {
		writeJSON(w, http.StatusOK, ModelInfoFrom(m))
		return nil
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// exportModel returns the owner bank's model as its JSON document or as PMML 4.4.
func (s *Server) exportModel(w http.ResponseWriter, r *http.Request, c *Caller) error {
	m, err := s.e.Models.Get(r.Context(), r.PathValue("id"), c.Name)
	if err != nil {
		return modelError(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		writeJSON(w, http.StatusOK, m.Document)
	case "pmml":
		doc, err := m.PMML(buildinfo.Read().Version)
		if err != nil {
			return errorf(http.StatusConflict, CodeConflict, fmt.Sprintf("model %s cannot be written as PMML: %v", m.ID, err))
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(doc)
	default:
		return errBad(fmt.Sprintf("format %q: give json or pmml", f))
	}
	return nil
}

func (s *Server) revokeModel(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var body Revoke
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	m, err := s.e.Models.Revoke(r.Context(), c.Name, ownerOf(c), r.PathValue("id"), body.Reason)
	if err != nil {
		return modelError(err)
	}
	writeJSON(w, http.StatusOK, ModelInfoFrom(m))
	return nil
}

func (s *Server) score(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var req scoring.ScoreRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.scoring.Score(r.Context(), c.Name, req)
	if err != nil {
		return scoringError(w, err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var req scoring.VerifyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	res, err := s.scoring.Verify(r.Context(), c.Name, req)
	if err != nil {
		return scoringError(w, err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) monitorModel(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var req scoring.MonitorRequest
	if err := decodeBody(r, &req, true); err != nil {
		return err
	}
	req.Model = r.PathValue("id")
	res, err := s.scoring.Monitor(r.Context(), ownerOf(c), req)
	if err != nil {
		return scoringError(w, err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) getServingSettings(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	v, err := s.e.Models.Setting(r.Context(), registry.SettingMinFeatures)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ServingSettings{MinFeatures: v})
	return nil
}

func (s *Server) setServingSetting(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var body ServingSetting
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if err := s.e.Models.SetSetting(r.Context(), c.Name, r.PathValue("key"), body.Value); err != nil {
		return modelError(err)
	}
	return s.getServingSettings(w, r, c)
}

// modelError maps the registry's errors.
func modelError(err error) error {
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return errNotFound(err.Error())
	case errors.Is(err, registry.ErrRevoked):
		return errorf(http.StatusConflict, CodeConflict, err.Error())
	case errors.Is(err, registry.ErrInvalid):
		return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
	}
	return err
}

// RefusalDetails is the details of an error answer that refuses a score, verification or
// monitoring request: the scoring package's refusal code.
type RefusalDetails struct {
	Refusal string `json:"refusal"`
}

// scoringError maps a refusal of package scoring to a status and code, with the refusal's own
// code in the details.
func scoringError(w http.ResponseWriter, err error) error {
	var e *scoring.Error
	if !errors.As(err, &e) {
		return err
	}
	status, code := http.StatusConflict, CodeConflict
	switch e.Code {
	case scoring.CodeNotFound:
		status, code = http.StatusNotFound, CodeNotFound
	case scoring.CodeInvalid, scoring.CodeNotVerifiable:
		status, code = http.StatusBadRequest, CodeInvalid
	case scoring.CodeNotAuthorized:
		status, code = http.StatusForbidden, CodeForbidden
	case scoring.CodeRateLimited:
		status, code = http.StatusTooManyRequests, CodeRateLimited
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((e.RetryAfter+time.Second-1)/time.Second))))
	}
	return &apiError{status: status, code: code, msg: e.Reason, details: RefusalDetails{Refusal: e.Code}}
}
