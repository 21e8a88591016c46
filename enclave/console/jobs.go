package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"insitu/connectors/catalog"
	"insitu/enclave"
	"insitu/enclave/consent"
	"insitu/enclave/gate"
	"insitu/enclave/job"
)

// jobProgress is what the worker last said about a running job.
type jobProgress struct {
	Started, Updated time.Time
	Step             string
	Steps            int
	Done, Total      int // iterations, when the step says "n/m"
}

type progressBoard struct {
	mu sync.Mutex
	m  map[string]*jobProgress
}

var fractionRE = regexp.MustCompile(`(\d+)\s*/\s*(\d+)`)

// Progress records what job id is doing; pass it to the job worker as enclave.RunOptions.Progress.
// It never blocks for long and is safe for concurrent use.
func (c *Console) Progress(id, what string) {
	now := c.now()
	p := c.progress
	p.mu.Lock()
	defer p.mu.Unlock()
	jp, ok := p.m[id]
	if !ok {
		jp = &jobProgress{Started: now}
		p.m[id] = jp
		if len(p.m) > 1000 {
			for k, v := range p.m {
				if now.Sub(v.Updated) > 24*time.Hour {
					delete(p.m, k)
				}
			}
		}
	}
	if what != jp.Step {
		jp.Steps++
	}
	jp.Step, jp.Updated = what, now
	if m := fractionRE.FindStringSubmatch(what); m != nil {
		jp.Done, _ = strconv.Atoi(m[1])
		jp.Total, _ = strconv.Atoi(m[2])
	}
}

// progressView is a running job's progress as pages and the JSON poll show it.
type progressView struct {
	Step      string `json:"step"`
	Steps     int    `json:"steps"`
	Done      int    `json:"done,omitempty"`
	Total     int    `json:"total,omitempty"`
	Elapsed   string `json:"elapsed"`
	Estimate  string `json:"estimate,omitempty"`
	State     string `json:"state"`
	StateText string `json:"state_text"`
	Reason    string `json:"reason,omitempty"`
}

func (c *Console) progressOf(j *job.Job, l *lang) progressView {
	v := progressView{State: string(j.State), StateText: l.T("state." + string(j.State)), Reason: j.Reason}
	p := c.progress
	p.mu.Lock()
	defer p.mu.Unlock()
	jp, ok := p.m[j.ID]
	if !ok {
		return v
	}
	now := c.now()
	end := now
	if j.State != job.Running && j.State != job.Queued {
		end = jp.Updated
	}
	el := end.Sub(jp.Started)
	v.Step, v.Steps, v.Done, v.Total, v.Elapsed = jp.Step, jp.Steps, jp.Done, jp.Total, el.Round(time.Second).String()
	if j.State == job.Running && jp.Total > 0 && jp.Done > 0 && jp.Done < jp.Total {
		v.Estimate = (time.Duration(float64(el) * float64(jp.Total-jp.Done) / float64(jp.Done))).Round(time.Second).String()
	}
	return v
}

type jobRow struct {
	J         *job.Job
	Approvals int
	Quorum    int
}

type jobsData struct {
	Pending, Active, Done []jobRow
}

func (c *Console) jobsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	js, err := c.e.Jobs.List(r.Context(), "")
	if err != nil {
		return err
	}
	var d jobsData
	for i := len(js) - 1; i >= 0; i-- { // newest first
		j := js[i]
		row := jobRow{J: j}
		switch j.State {
		case job.Submitted:
			st, err := c.e.Jobs.Status(r.Context(), j.ID)
			if err != nil {
				return err
			}
			row.Approvals, row.Quorum = st.Approvals, st.Quorum
			d.Pending = append(d.Pending, row)
		case job.Approved, job.Queued, job.Running, job.Succeeded:
			d.Active = append(d.Active, row)
		default:
			d.Done = append(d.Done, row)
		}
	}
	slices.Reverse(d.Pending) // pending: oldest first, the longest waiting on top
	c.render(w, r, s, http.StatusOK, "jobs", "jobs.title", d, "", "")
	return nil
}

// categoryGroup is the requested fields of one catalog category.
type categoryGroup struct {
	No     int
	Name   string
	Fields []enclave.ReviewField
}

type decisionRow struct {
	job.Decision
	Passkey    bool
	Credential string
}

type jobData struct {
	R          *enclave.Review
	Groups     []categoryGroup
	Decisions  []decisionRow
	Counts     *consent.BankCounts
	Epsilon    string
	Outputs    []string
	Credential []string // the signed-in steward's passkey credential ids, base64url
	CanDecide  bool
	Progress   progressView
	Release    *gate.Receipt
	HashHex    string
}

func (c *Console) jobData(r *http.Request, s *session, id string, l *lang) (*jobData, error) {
	rv, err := c.e.Review(r.Context(), id)
	if err != nil {
		if errors.Is(err, job.ErrNotFound) {
			return nil, notFound("no job " + id)
		}
		return nil, err
	}
	d := &jobData{R: rv, HashHex: rv.Job.ManifestHash[len("sha256:"):]}
	cat := catalog.Default()
	byNo := map[int]*categoryGroup{}
	for _, f := range rv.Fields {
		no, name := 0, "?"
		if it, err := cat.Item(f.Item); err == nil && it.Category != nil {
			no, name = it.Category.No, it.Category.NameEN
			if l.Code == LangZH {
				name, f.ItemName = it.Category.NameZH, it.NameZH
			}
		}
		g, ok := byNo[no]
		if !ok {
			g = &categoryGroup{No: no, Name: name}
			byNo[no] = g
		}
		g.Fields = append(g.Fields, f)
	}
	for _, g := range byNo {
		d.Groups = append(d.Groups, *g)
	}
	slices.SortFunc(d.Groups, func(a, b categoryGroup) int { return a.No - b.No })
	for _, dec := range rv.Status.Decisions {
		row := decisionRow{Decision: dec, Passkey: dec.WebAuthn != nil}
		if dec.WebAuthn != nil {
			row.Credential = job.CredentialString(dec.WebAuthn.CredentialID)
		}
		d.Decisions = append(d.Decisions, row)
	}
	counts, err := c.e.Consent.Counts(r.Context(), rv.Job.Bank, c.now())
	if err != nil {
		return nil, err
	}
	for i := range counts {
		if counts[i].Grantee == rv.Job.Bank {
			d.Counts = &counts[i]
		}
	}
	m := rv.Job.Manifest
	if m.Epsilon != nil {
		d.Epsilon = strconv.FormatFloat(*m.Epsilon, 'g', -1, 64)
	}
	o := m.Outputs
	if o.Weights != nil {
		d.Outputs = append(d.Outputs, fmt.Sprintf("weights (≤ %d, |w| ≤ %g)", o.Weights.MaxWeights, o.Weights.MaxAbs))
	}
	if o.Scores != nil {
		d.Outputs = append(d.Outputs, "scores")
	}
	if o.Metrics != nil {
		d.Outputs = append(d.Outputs, fmt.Sprintf("metrics %v", o.Metrics.Names))
	}
	if o.Scorecard != nil {
		d.Outputs = append(d.Outputs, "scorecard")
	}
	if o.Trees != nil {
		d.Outputs = append(d.Outputs, "trees")
	}
	if s.role == "steward" && rv.Job.State == job.Submitted {
		d.CanDecide = true
		for _, dec := range rv.Status.Decisions {
			if dec.Steward == s.party && dec.Approve {
				d.CanDecide = false
			}
		}
		pks, err := c.e.Jobs.Passkeys(r.Context(), s.party)
		if err != nil {
			return nil, err
		}
		for _, pk := range pks {
			d.Credential = append(d.Credential, b64.EncodeToString(pk.Statement.CredentialID))
		}
	}
	d.Progress = c.progressOf(rv.Job, l)
	if rv.Job.State == job.Released && c.o.Results != nil {
		if _, receipt, err := c.o.Results.Result(r.Context(), id); err == nil {
			if rc, err := gate.ParseReceipt(receipt); err == nil {
				d.Release = rc
			}
		}
	}
	return d, nil
}

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.showJob(w, r, s, http.StatusOK, "", "")
}

func (c *Console) showJob(w http.ResponseWriter, r *http.Request, s *session, status int, notice, problem string) error {
	l := pickLang(r)
	d, err := c.jobData(r, s, r.PathValue("id"), l)
	if err != nil {
		return err
	}
	c.render(w, r, s, status, "job", "job.title", d, notice, problem)
	return nil
}

func decisionStatus(err error) (int, bool) {
	switch {
	case errors.Is(err, job.ErrSignature), errors.Is(err, job.ErrParty), errors.Is(err, job.ErrPasskey):
		return http.StatusForbidden, true
	case errors.Is(err, job.ErrTransition), errors.Is(err, job.ErrExpired):
		return http.StatusConflict, true
	case errors.Is(err, job.ErrNotFound):
		return http.StatusNotFound, true
	}
	return 0, false
}

func (c *Console) approve(w http.ResponseWriter, r *http.Request, s *session) error {
	l := pickLang(r)
	st, err := c.e.Jobs.ApprovePasskey(r.Context(), r.PathValue("id"), s.party, assertionFrom(r))
	if err != nil {
		if code, ok := decisionStatus(err); ok {
			return c.showJob(w, r, s, code, "", l.T("job.refused")+": "+err.Error())
		}
		return err
	}
	if st.State == job.Approved {
		c.e.Wake()
	}
	http.Redirect(w, r, Prefix+"/jobs/"+r.PathValue("id")+"?done=approved", http.StatusSeeOther)
	return nil
}

func (c *Console) reject(w http.ResponseWriter, r *http.Request, s *session) error {
	l := pickLang(r)
	reason := r.PostFormValue("reason")
	if _, err := c.e.Jobs.RejectPasskey(r.Context(), r.PathValue("id"), s.party, assertionFrom(r), reason); err != nil {
		if code, ok := decisionStatus(err); ok {
			return c.showJob(w, r, s, code, "", l.T("job.refused")+": "+err.Error())
		}
		if reason == "" {
			return c.showJob(w, r, s, http.StatusBadRequest, "", l.T("job.refused")+": "+err.Error())
		}
		return err
	}
	http.Redirect(w, r, Prefix+"/jobs/"+r.PathValue("id")+"?done=rejected", http.StatusSeeOther)
	return nil
}

func (c *Console) progressJSON(w http.ResponseWriter, r *http.Request, s *session) error {
	j, err := c.e.Jobs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		if errors.Is(err, job.ErrNotFound) {
			return notFound("no job " + r.PathValue("id"))
		}
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(c.progressOf(j, pickLang(r)))
}

func (c *Console) receiptFile(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if c.o.Results == nil {
		return notFound("no output gate")
	}
	_, receipt, err := c.o.Results.Result(r.Context(), id)
	if err != nil {
		return notFound("no receipt for " + id + ": it is released only once the gate released it")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.receipt.json"`)
	_, err = w.Write(receipt)
	return err
}
