package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"insitu/enclave"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
)

func decodeJSON(r *http.Request, v any) error { return decodeBody(r, v, false) }

// decodeOptionalJSON is decodeJSON for a body that may be empty.
func decodeOptionalJSON(r *http.Request, v any) error { return decodeBody(r, v, true) }

func decodeBody(r *http.Request, v any, optional bool) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if optional && errors.Is(err, io.EOF) {
			return nil
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errBodyDigest) {
			return err
		}
		return errBad("the body is not the JSON this route takes: " + err.Error())
	}
	if dec.More() {
		return errBad("the body holds more than one JSON value")
	}
	return nil
}

// isRequester reports whether the caller sees only its own jobs and objects.
func (c *Caller) isRequester() bool { return c.Role == RoleBank || c.Role == RoleResearcher }

// visibleJob returns job id if the caller may see it; another party's job is not found, as an unknown
// id is, so that a bank learns nothing of other banks' jobs.
func (s *Server) visibleJob(r *http.Request, c *Caller) (*job.Job, error) {
	id := r.PathValue("id")
	j, err := s.e.Jobs.Get(r.Context(), id)
	if err != nil {
		if errors.Is(err, job.ErrNotFound) {
			return nil, errNotFound("no job " + id)
		}
		return nil, err
	}
	if c.isRequester() && j.Bank != c.Name {
		return nil, errNotFound("no job " + id)
	}
	return j, nil
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request, c *Caller) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	sm, err := manifest.ParseSigned(data, "request body")
	if err != nil {
		return err
	}
	m := sm.Manifest
	if m.Bank != c.Name {
		return errForbidden(fmt.Sprintf("the manifest names %q as its bank; %s may submit only its own manifests", m.Bank, c.Name))
	}
	if c.Role == RoleResearcher {
		v, err := enclave.DatasetVersion(m.Dataset.Version)
		if err != nil {
			return errorf(http.StatusBadRequest, CodeInvalid, err.Error())
		}
		dm, err := s.e.Datasets.Manifest(r.Context(), m.Dataset.Name, v)
		if err != nil {
			return err
		}
		if dm.Class != "public" && dm.Class != "synthetic" {
			return errForbidden(fmt.Sprintf("dataset %s is of class %s: a researcher may run jobs on public and synthetic datasets only",
				m.Dataset.Name, dm.Class))
		}
	}
	if m.Labels != "" {
		own, err := s.e.ListLabels(r.Context(), c.Name)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(own, func(l enclave.LabelsInfo) bool { return l.Digest == m.Labels }) {
			return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("labels: %s is not a label file %s uploaded: upload it first (insitu labels upload)", m.Labels, c.Name))
		}
	}
	j, err := s.e.Jobs.Submit(r.Context(), data, "request body")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, JobFrom(j))
	return nil
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, c *Caller) error {
	bank := r.URL.Query().Get("bank")
	if c.isRequester() {
		if bank != "" && bank != c.Name {
			return errForbidden("a " + c.Role + " lists only its own jobs")
		}
		bank = c.Name
	}
	js, err := s.e.Jobs.List(r.Context(), bank)
	if err != nil {
		return err
	}
	out := make([]Job, 0, len(js))
	for _, j := range js {
		out = append(out, JobFrom(j))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, c *Caller) error {
	j, err := s.visibleJob(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, JobFrom(j))
	return nil
}

// MaxWatch is the longest a watch waits before answering with the unchanged job.
const MaxWatch = 60 * time.Second

func (s *Server) watchJob(w http.ResponseWriter, r *http.Request, c *Caller) error {
	j, err := s.visibleJob(r, c)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from := job.State(q.Get("state"))
	wait := 30 * time.Second
	if v := q.Get("wait"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			return errBad("wait: a whole number of seconds")
		}
		wait = min(time.Duration(secs)*time.Second, MaxWatch)
	}
	if from == "" {
		from = j.State
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(s.o.WatchPoll)
	defer tick.Stop()
	for j.State == from {
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-s.done:
			writeJSON(w, http.StatusOK, JobFrom(j))
			return nil
		case <-deadline.C:
			writeJSON(w, http.StatusOK, JobFrom(j))
			return nil
		case <-tick.C:
		}
		if j, err = s.e.Jobs.Get(r.Context(), j.ID); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, JobFrom(j))
	return nil
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, c *Caller) error {
	j, err := s.visibleJob(r, c)
	if err != nil {
		return err
	}
	var body Cancel
	if err := decodeOptionalJSON(r, &body); err != nil {
		return err
	}
	if j, err = s.e.Jobs.Cancel(r.Context(), j.ID, c.Name, body.Reason); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, JobFrom(j))
	return nil
}

func (s *Server) result(r *http.Request, c *Caller) (sealed, receipt []byte, err error) {
	j, err := s.visibleJob(r, c)
	if err != nil {
		return nil, nil, err
	}
	if s.o.Results == nil {
		return nil, nil, errorf(http.StatusServiceUnavailable, CodeUnavailable, "this enclave serves no results: it has no output gate")
	}
	if j.State != job.Released {
		return nil, nil, errorf(http.StatusConflict, CodeConflict, fmt.Sprintf("job %s is %s: results exist once it is released", j.ID, j.State))
	}
	return s.o.Results.Result(r.Context(), j.ID)
}

func (s *Server) jobResult(w http.ResponseWriter, r *http.Request, c *Caller) error {
	sealed, receipt, err := s.result(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Result{Sealed: sealed, Receipt: receipt})
	return nil
}

func (s *Server) jobReceipt(w http.ResponseWriter, r *http.Request, c *Caller) error {
	_, receipt, err := s.result(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, Receipt{Receipt: receipt})
	return nil
}

func (s *Server) reviewJob(w http.ResponseWriter, r *http.Request, c *Caller) error {
	rv, err := s.e.Review(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ReviewFrom(rv))
	return nil
}

func (s *Server) approveJob(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var d Decide
	if err := decodeJSON(r, &d); err != nil {
		return err
	}
	st, err := s.e.Jobs.Approve(r.Context(), r.PathValue("id"), c.Name, d.Signature)
	if err != nil {
		return err
	}
	if st.State == job.Approved {
		s.e.Wake()
	}
	writeJSON(w, http.StatusOK, StatusFrom(st))
	return nil
}

func (s *Server) rejectJob(w http.ResponseWriter, r *http.Request, c *Caller) error {
	var d Decide
	if err := decodeJSON(r, &d); err != nil {
		return err
	}
	if d.Reason == "" {
		return errBad("reason: the bank sees it; it must not be empty")
	}
	st, err := s.e.Jobs.Reject(r.Context(), r.PathValue("id"), c.Name, d.Signature, d.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, StatusFrom(st))
	return nil
}
