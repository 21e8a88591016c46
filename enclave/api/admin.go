package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"insitu/enclave/audit"
	"insitu/enclave/job"
	"insitu/enclave/keys"
)

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	s.MetricsHandler().ServeHTTP(w, r)
	return nil
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, c *Caller) error {
	p, err := s.e.Jobs.Party(r.Context(), c.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, partyFrom(p))
	return nil
}

func partyFrom(p job.Party) Party {
	return Party{PublicIdentity: p.PublicIdentity, Fingerprint: p.Fingerprint, AddedAt: p.AddedAt}
}

func (s *Server) addParty(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		return err
	}
	pub, err := keys.ParsePublic(raw)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
	}
	p, err := s.e.Jobs.AddParty(r.Context(), c.Name, pub)
	if err != nil {
		if errors.Is(err, job.ErrParty) {
			return errorf(http.StatusConflict, CodeConflict, err.Error())
		}
		return err
	}
	writeJSON(w, http.StatusCreated, partyFrom(p))
	return nil
}

func (s *Server) listParties(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	ps, err := s.e.Jobs.ListParties(r.Context())
	if err != nil {
		return err
	}
	out := make([]Party, 0, len(ps))
	for _, p := range ps {
		out = append(out, partyFrom(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) removeParty(w http.ResponseWriter, r *http.Request, c *Caller) error {
	name := r.PathValue("name")
	if name == c.Name {
		return errorf(http.StatusConflict, CodeConflict, "an admin cannot remove its own registration: ask another admin")
	}
	if err := s.e.Jobs.RemoveParty(r.Context(), c.Name, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// settingKeys are the settings the API reads and sets.
var settingKeys = []string{job.SettingQuorum, job.SettingMinCohort}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	out := make([]Setting, 0, len(settingKeys))
	for _, k := range settingKeys {
		v, err := s.e.Jobs.Setting(r.Context(), k)
		if err != nil {
			return err
		}
		out = append(out, Setting{Key: k, Value: v})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) setSetting(w http.ResponseWriter, r *http.Request, c *Caller) error {
	key := r.PathValue("key")
	known := false
	for _, k := range settingKeys {
		known = known || k == key
	}
	if !known {
		return errNotFound("no setting " + key + " (settings: " + rolesText(settingKeys) + ")")
	}
	var st Setting
	if err := decodeJSON(r, &st); err != nil {
		return err
	}
	if st.Key != "" && st.Key != key {
		return errBad("the body's key is not the path's")
	}
	if st.Value < 1 {
		return errorf(http.StatusBadRequest, CodeInvalid, key+": the value must be a positive integer")
	}
	if err := s.e.Jobs.SetSetting(r.Context(), c.Name, key, st.Value); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Setting{Key: key, Value: st.Value})
	return nil
}

func (s *Server) auditRecords(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	q := r.URL.Query()
	var after int64
	limit := 100
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errBad("after: a record seq")
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errBad("limit: 1 to 1000")
		}
		limit = n
	}
	recs, err := s.e.Audit.Records(r.Context(), after, limit)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	writeJSON(w, http.StatusOK, recs)
	return nil
}

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	var req VerifyRequest
	if err := decodeOptionalJSON(r, &req); err != nil {
		return err
	}
	rep, err := s.e.VerifyAudit(r.Context(), req.Heads)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) auditCheckpoint(w http.ResponseWriter, r *http.Request, _ *Caller) error {
	cp, err := s.e.Audit.Checkpoint(r.Context())
	if err != nil {
		if errors.Is(err, audit.ErrEmpty) {
			return errorf(http.StatusConflict, CodeConflict, err.Error())
		}
		return err
	}
	writeJSON(w, http.StatusOK, cp)
	return nil
}
