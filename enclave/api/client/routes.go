package client

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"insitu/enclave"
	"insitu/enclave/api"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
)

// Health calls /healthz.
func (c *Client) Health(ctx context.Context) error {
	var h api.Health
	return c.Do(ctx, http.MethodGet, "/healthz", nil, &h)
}

// Whoami returns the calling party as the enclave has it registered.
func (c *Client) Whoami(ctx context.Context) (api.Party, error) {
	var p api.Party
	err := c.Do(ctx, http.MethodGet, "/v1/whoami", nil, &p)
	return p, err
}

// Metrics returns the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var out string
	err := c.Do(ctx, http.MethodGet, "/metrics", nil, rawText{&out})
	return out, err
}

// rawText marks a destination that takes the body as text.
type rawText struct{ s *string }

// AddParty registers a party's public identity (admin).
func (c *Client) AddParty(ctx context.Context, pub keys.PublicIdentity) (api.Party, error) {
	body, err := json.Marshal(pub)
	if err != nil {
		return api.Party{}, err
	}
	var p api.Party
	err = c.Do(ctx, http.MethodPost, "/v1/parties", body, &p)
	return p, err
}

// ListParties lists the registered parties (admin).
func (c *Client) ListParties(ctx context.Context) ([]api.Party, error) {
	var ps []api.Party
	err := c.Do(ctx, http.MethodGet, "/v1/parties", nil, &ps)
	return ps, err
}

// RemoveParty ends a party's registration (admin).
func (c *Client) RemoveParty(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/parties/"+url.PathEscape(name), nil, nil)
}

// Settings returns the stewards' settings (admin, steward).
func (c *Client) Settings(ctx context.Context) ([]api.Setting, error) {
	var out []api.Setting
	err := c.Do(ctx, http.MethodGet, "/v1/settings", nil, &out)
	return out, err
}

// SetSetting sets a setting (admin, steward).
func (c *Client) SetSetting(ctx context.Context, key string, value int) error {
	body, _ := json.Marshal(api.Setting{Key: key, Value: value})
	return c.Do(ctx, http.MethodPut, "/v1/settings/"+url.PathEscape(key), body, nil)
}

// UploadPlugin streams a plugin binary of size bytes from r (bank, researcher). r is read twice:
// once to hash it (the signature covers the hash), then to send it.
func (c *Client) UploadPlugin(ctx context.Context, r io.ReadSeeker, name string) (api.PluginUploaded, error) {
	h := sha256.New()
	size, err := io.Copy(h, r)
	if err != nil {
		return api.PluginUploaded{}, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return api.PluginUploaded{}, err
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	var out api.PluginUploaded
	err = c.stream(ctx, http.MethodPost, "/v1/plugins?"+url.Values{"name": {name}}.Encode(), r, size, sum, &out)
	return out, err
}

// ListPlugins lists the plugins the caller may see: its own (bank, researcher) or all (steward).
func (c *Client) ListPlugins(ctx context.Context) ([]pluginstore.Info, error) {
	var out []pluginstore.Info
	err := c.Do(ctx, http.MethodGet, "/v1/plugins", nil, &out)
	return out, err
}

// UploadLabels uploads a sealed label file (bank); the enclave opens and validates it and returns
// what it stored, with the digest a manifest names.
func (c *Client) UploadLabels(ctx context.Context, name string, sealed []byte) (enclave.LabelsInfo, error) {
	var out enclave.LabelsInfo
	err := c.Do(ctx, http.MethodPost, "/v1/labels?"+url.Values{"name": {name}}.Encode(), sealed, &out)
	return out, err
}

// ListLabels lists the caller's label files (bank).
func (c *Client) ListLabels(ctx context.Context) ([]enclave.LabelsInfo, error) {
	var out []enclave.LabelsInfo
	err := c.Do(ctx, http.MethodGet, "/v1/labels", nil, &out)
	return out, err
}

// Submit submits a signed manifest envelope (bank, researcher).
func (c *Client) Submit(ctx context.Context, signed []byte) (api.Job, error) {
	var j api.Job
	err := c.Do(ctx, http.MethodPost, "/v1/jobs", signed, &j)
	return j, err
}

// ListJobs lists jobs: the caller's own (bank, researcher), or all, or bank's (steward).
func (c *Client) ListJobs(ctx context.Context, bank string) ([]api.Job, error) {
	uri := "/v1/jobs"
	if bank != "" {
		uri += "?" + url.Values{"bank": {bank}}.Encode()
	}
	var out []api.Job
	err := c.Do(ctx, http.MethodGet, uri, nil, &out)
	return out, err
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string) (api.Job, error) {
	var j api.Job
	err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id), nil, &j)
	return j, err
}

// Watch waits up to wait (at most api.MaxWatch) for job id to leave state from (its current state
// when empty) and returns it as it then is.
func (c *Client) Watch(ctx context.Context, id string, from job.State, wait time.Duration) (api.Job, error) {
	q := url.Values{"wait": {strconv.Itoa(int(wait / time.Second))}}
	if from != "" {
		q.Set("state", string(from))
	}
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	var j api.Job
	err := c.send(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/watch?"+q.Encode(), http.NoBody, 0, api.EmptyBodyHash, &j)
	return j, err
}

// Cancel cancels a job.
func (c *Client) Cancel(ctx context.Context, id, reason string) (api.Job, error) {
	body, _ := json.Marshal(api.Cancel{Reason: reason})
	var j api.Job
	err := c.Do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/cancel", body, &j)
	return j, err
}

// Result returns a released job's sealed result and receipt (the bank that submitted it).
func (c *Client) Result(ctx context.Context, id string) (api.Result, error) {
	var out api.Result
	err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/result", nil, &out)
	return out, err
}

// Receipt returns a released job's receipt.
func (c *Client) Receipt(ctx context.Context, id string) ([]byte, error) {
	var out api.Receipt
	err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/receipt", nil, &out)
	return out.Receipt, err
}

// Review returns what a steward weighs before deciding on job id; the manifest is parsed and its
// hash checked against the one stated.
func (c *Client) Review(ctx context.Context, id string) (*enclave.Review, error) {
	var rv api.Review
	if err := c.Do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/review", nil, &rv); err != nil {
		return nil, err
	}
	return rv.EnclaveReview()
}

// Approve approves job id: it fetches the job, recomputes the manifest hash from the manifest
// itself, signs it with the steward's key and sends the signature.
func (c *Client) Approve(ctx context.Context, id string) (api.Status, error) {
	m, err := c.manifestOf(ctx, id)
	if err != nil {
		return api.Status{}, err
	}
	sig, err := c.id.Sign(job.ApprovalMessage(m), job.ApprovalContext)
	if err != nil {
		return api.Status{}, err
	}
	return c.decide(ctx, id, "approve", api.Decide{Signature: sig})
}

// Reject rejects job id with reason, signed as Approve signs.
func (c *Client) Reject(ctx context.Context, id, reason string) (api.Status, error) {
	m, err := c.manifestOf(ctx, id)
	if err != nil {
		return api.Status{}, err
	}
	sig, err := c.id.Sign(job.RejectionMessage(m, reason), job.RejectionContext)
	if err != nil {
		return api.Status{}, err
	}
	return c.decide(ctx, id, "reject", api.Decide{Signature: sig, Reason: reason})
}

// ApproveSigned sends an approval signature made elsewhere (a passkey console, a test).
func (c *Client) ApproveSigned(ctx context.Context, id string, sig []byte) (api.Status, error) {
	return c.decide(ctx, id, "approve", api.Decide{Signature: sig})
}

func (c *Client) decide(ctx context.Context, id, verb string, d api.Decide) (api.Status, error) {
	body, err := json.Marshal(d)
	if err != nil {
		return api.Status{}, err
	}
	var st api.Status
	err = c.Do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/"+verb, body, &st)
	return st, err
}

func (c *Client) manifestOf(ctx context.Context, id string) (*manifest.Manifest, error) {
	j, err := c.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	bj, err := j.BoardJob()
	if err != nil {
		return nil, err
	}
	return bj.Manifest, nil
}

// ImportConsent imports an authorizations CSV file (steward), all or nothing.
func (c *Client) ImportConsent(ctx context.Context, name string, csv []byte) (*consent.ImportResult, error) {
	var out consent.ImportResult
	if err := c.Do(ctx, http.MethodPost, "/v1/consent/import?"+url.Values{"name": {name}}.Encode(), csv, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Grant records one authorization (steward).
func (c *Client) Grant(ctx context.Context, g consent.Grant) (*consent.Authorization, error) {
	body, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	var out consent.Authorization
	if err := c.Do(ctx, http.MethodPost, "/v1/consent/grants", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke revokes authorization id (steward).
func (c *Client) Revoke(ctx context.Context, id int64, reason string) (*consent.Authorization, error) {
	body, _ := json.Marshal(api.Revoke{Reason: reason})
	var out consent.Authorization
	if err := c.Do(ctx, http.MethodPost, fmt.Sprintf("/v1/consent/%d/revoke", id), body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListConsent lists authorizations, identifiers masked (steward). Grantee, Purpose, Status, AfterID
// and Limit of f are sent.
func (c *Client) ListConsent(ctx context.Context, f consent.Filter) ([]consent.Authorization, error) {
	q := url.Values{}
	if f.Grantee != "" {
		q.Set("bank", f.Grantee)
	}
	if f.Purpose != "" {
		q.Set("purpose", string(f.Purpose))
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if f.AfterID > 0 {
		q.Set("after", strconv.FormatInt(f.AfterID, 10))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []consent.Authorization
	err := c.Do(ctx, http.MethodGet, "/v1/consent?"+q.Encode(), nil, &out)
	return out, err
}

// ConsentCounts counts authorizations per bank: every bank or bank's (steward), the caller's own
// (bank).
func (c *Client) ConsentCounts(ctx context.Context, bank string) ([]consent.BankCounts, error) {
	uri := "/v1/consent/counts"
	if bank != "" {
		uri += "?" + url.Values{"bank": {bank}}.Encode()
	}
	var out []consent.BankCounts
	err := c.Do(ctx, http.MethodGet, uri, nil, &out)
	return out, err
}

// AuditRecords returns up to limit records after seq after (steward, admin).
func (c *Client) AuditRecords(ctx context.Context, after int64, limit int) ([]audit.Record, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var out []audit.Record
	err := c.Do(ctx, http.MethodGet, "/v1/audit/records?"+q.Encode(), nil, &out)
	return out, err
}

// VerifyAudit verifies the audit log against known heads (steward, admin).
func (c *Client) VerifyAudit(ctx context.Context, known []audit.Head) (*audit.Report, error) {
	body, err := json.Marshal(api.VerifyRequest{Heads: known})
	if err != nil {
		return nil, err
	}
	var out audit.Report
	if err := c.Do(ctx, http.MethodPost, "/v1/audit/verify", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Checkpoint signs a checkpoint of the audit head (steward, admin).
func (c *Client) Checkpoint(ctx context.Context) (audit.Checkpoint, error) {
	var out audit.Checkpoint
	err := c.Do(ctx, http.MethodPost, "/v1/audit/checkpoint", nil, &out)
	return out, err
}

// Datasets lists dataset versions as a bank or researcher sees them: names, classes, versions.
func (c *Client) Datasets(ctx context.Context) ([]api.DatasetVersion, error) {
	var out []api.DatasetVersion
	err := c.Do(ctx, http.MethodGet, "/v1/datasets", nil, &out)
	return out, err
}

// DatasetEntries lists dataset versions in full (steward).
func (c *Client) DatasetEntries(ctx context.Context) ([]dataset.Entry, error) {
	var out []dataset.Entry
	err := c.Do(ctx, http.MethodGet, "/v1/datasets", nil, &out)
	return out, err
}

// Dataset returns a version's manifest and quality report (steward); version 0 is the latest.
func (c *Client) Dataset(ctx context.Context, name string, version int) (api.DatasetShow, error) {
	var out api.DatasetShow
	err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/datasets/%s/%d", url.PathEscape(name), version), nil, &out)
	return out, err
}

// Budgets returns the privacy budgets of aggregate-mode jobs and what was spent, filtered by bank and
// dataset when not empty, and the minimum cell count (admin, steward).
func (c *Client) Budgets(ctx context.Context, bank, dataset string) (api.PrivacyBudgets, error) {
	q := url.Values{}
	if bank != "" {
		q.Set("bank", bank)
	}
	if dataset != "" {
		q.Set("dataset", dataset)
	}
	path := "/v1/budgets"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.PrivacyBudgets
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// SetBudget sets bank's total privacy budget on dataset to epsilon and returns the pair's budget
// (admin, steward; audited).
func (c *Client) SetBudget(ctx context.Context, bank, dataset string, epsilon float64) (api.PrivacyBudget, error) {
	return c.SetBudgetDelta(ctx, bank, dataset, epsilon, 0)
}

// SetBudgetDelta is SetBudget that also sets the budget's δ; 0 keeps it.
func (c *Client) SetBudgetDelta(ctx context.Context, bank, dataset string, epsilon, delta float64) (api.PrivacyBudget, error) {
	body, err := json.Marshal(api.BudgetSetting{Epsilon: epsilon, Delta: delta})
	if err != nil {
		return api.PrivacyBudget{}, err
	}
	var out api.PrivacyBudget
	err = c.Do(ctx, http.MethodPut, "/v1/budgets/"+url.PathEscape(bank)+"/"+url.PathEscape(dataset), body, &out)
	return out, err
}

// SetMinCount sets the minimum cell count k of aggregate answers (admin, steward; audited).
func (c *Client) SetMinCount(ctx context.Context, k int) error {
	body, _ := json.Marshal(api.MinCountSetting{MinCount: k})
	return c.Do(ctx, http.MethodPut, "/v1/budgets/min-count", body, nil)
}
