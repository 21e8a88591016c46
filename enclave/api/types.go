package api

import (
	"encoding/json"
	"fmt"
	"time"

	"insitu/enclave"
	"insitu/enclave/audit"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/job/passkey"
	"insitu/enclave/keys"
)

// Job is a job as the API shows it. Manifest is the canonical manifest, the bytes whose SHA-256
// (ManifestHash) approvals sign: a steward's client recomputes the hash from these bytes before
// signing, so it signs what it showed.
type Job struct {
	ID           string          `json:"id"`
	Bank         string          `json:"bank"`
	State        job.State       `json:"state"`
	Reason       string          `json:"reason,omitempty"`
	ManifestHash string          `json:"manifest_hash"`
	Plugin       string          `json:"plugin"`
	SubmittedAt  time.Time       `json:"submitted_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	Manifest     json.RawMessage `json:"manifest"`
}

// JobFrom converts a job of the board.
func JobFrom(j *job.Job) Job {
	return Job{ID: j.ID, Bank: j.Bank, State: j.State, Reason: j.Reason, ManifestHash: j.ManifestHash, Plugin: j.Plugin,
		SubmittedAt: j.SubmittedAt, UpdatedAt: j.UpdatedAt, Manifest: j.Manifest.Canonical()}
}

// BoardJob converts back, parsing and checking the manifest and that its hash is ManifestHash.
func (j Job) BoardJob() (*job.Job, error) {
	m, err := manifest.Parse(j.Manifest, j.ID)
	if err != nil {
		return nil, err
	}
	if m.HashString() != j.ManifestHash {
		return nil, fmt.Errorf("api: job %s: the manifest's hash is %s, not the %s the enclave states", j.ID, m.HashString(), j.ManifestHash)
	}
	return &job.Job{ID: j.ID, Bank: j.Bank, State: j.State, Reason: j.Reason, ManifestHash: j.ManifestHash, Plugin: j.Plugin,
		SubmittedAt: j.SubmittedAt, UpdatedAt: j.UpdatedAt, Manifest: m}, nil
}

// Decision is a steward's recorded approval or rejection.
type Decision struct {
	Steward     string    `json:"steward"`
	Fingerprint string    `json:"fingerprint"`
	Approve     bool      `json:"approve"`
	Reason      string    `json:"reason,omitempty"`
	At          time.Time `json:"at"`
	Registered  bool      `json:"registered"`
	Signature   []byte    `json:"signature"`
	// WebAuthn is the passkey evidence of a decision made in the console; absent for an ML-DSA one.
	WebAuthn *passkey.Evidence `json:"webauthn,omitempty"`
}

// Status is where a job's approval stands.
type Status struct {
	State     job.State  `json:"state"`
	Approvals int        `json:"approvals"`
	Quorum    int        `json:"quorum"`
	Stewards  int        `json:"stewards"`
	Decisions []Decision `json:"decisions"`
}

// StatusFrom converts a board status.
func StatusFrom(s job.Status) Status {
	out := Status{State: s.State, Approvals: s.Approvals, Quorum: s.Quorum, Stewards: s.Stewards, Decisions: []Decision{}}
	for _, d := range s.Decisions {
		out.Decisions = append(out.Decisions, Decision(d))
	}
	return out
}

// BoardStatus converts back.
func (s Status) BoardStatus() job.Status {
	out := job.Status{State: s.State, Approvals: s.Approvals, Quorum: s.Quorum, Stewards: s.Stewards}
	for _, d := range s.Decisions {
		out.Decisions = append(out.Decisions, job.Decision(d))
	}
	return out
}

// HistoryEntry is an earlier job that named the same plugin.
type HistoryEntry struct {
	ID          string    `json:"id"`
	Bank        string    `json:"bank"`
	State       job.State `json:"state"`
	SubmittedAt time.Time `json:"submitted_at"`
}

// Review is what a steward weighs before deciding (enclave.Review).
type Review struct {
	Job           Job                   `json:"job"`
	Status        Status                `json:"status"`
	PluginHistory []HistoryEntry        `json:"plugin_history"`
	MinCohort     int                   `json:"min_cohort"`
	Fields        []enclave.ReviewField `json:"fields"`
	Cohort        *enclave.ReviewCohort `json:"cohort,omitempty"`
	CohortError   string                `json:"cohort_error,omitempty"`
}

// ReviewFrom converts an enclave review.
func ReviewFrom(r *enclave.Review) Review {
	out := Review{Job: JobFrom(r.Job), Status: StatusFrom(r.Status), PluginHistory: []HistoryEntry{}, MinCohort: r.MinCohort, Fields: r.Fields,
		Cohort: r.Cohort, CohortError: r.CohortError}
	for _, h := range r.PluginHistory {
		out.PluginHistory = append(out.PluginHistory, HistoryEntry{ID: h.ID, Bank: h.Bank, State: h.State, SubmittedAt: h.SubmittedAt})
	}
	return out
}

// EnclaveReview converts back, checking the manifest as BoardJob does.
func (r Review) EnclaveReview() (*enclave.Review, error) {
	j, err := r.Job.BoardJob()
	if err != nil {
		return nil, err
	}
	out := &enclave.Review{Job: j, Status: r.Status.BoardStatus(), MinCohort: r.MinCohort, Fields: r.Fields,
		Cohort: r.Cohort, CohortError: r.CohortError}
	for _, h := range r.PluginHistory {
		out.PluginHistory = append(out.PluginHistory, &job.Job{ID: h.ID, Bank: h.Bank, State: h.State, SubmittedAt: h.SubmittedAt})
	}
	return out, nil
}

// Decide is the body of the approve and reject routes: the steward's signature over
// job.ApprovalMessage (under job.ApprovalContext) or job.RejectionMessage (job.RejectionContext),
// and for a rejection the reason the bank sees.
type Decide struct {
	Signature []byte `json:"signature"`
	Reason    string `json:"reason,omitempty"`
}

// Cancel is the body of the cancel route.
type Cancel struct {
	Reason string `json:"reason,omitempty"`
}

// Party is a registered party.
type Party struct {
	keys.PublicIdentity
	Fingerprint string    `json:"fingerprint"`
	AddedAt     time.Time `json:"added_at"`
}

// Setting is one steward setting's value.
type Setting struct {
	Key   string `json:"key"`
	Value int    `json:"value"`
}

// LabelsUploaded is the answer to a label upload: the digest a manifest names.
type LabelsUploaded struct {
	Digest string `json:"digest"`
}

// Labels is an uploaded sealed label file as its bank sees it.
type Labels struct {
	Digest   string    `json:"digest"`
	Bank     string    `json:"bank"`
	Size     int64     `json:"size"`
	Uploaded time.Time `json:"uploaded"`
}

// PluginUploaded is the answer to a plugin upload.
type PluginUploaded struct {
	Digest  string `json:"digest"`
	Name    string `json:"name,omitempty"`
	Size    int64  `json:"size"`
	Existed bool   `json:"existed"`
}

// DatasetVersion is what a bank or researcher sees of a dataset version: its name, class and
// version, nothing of its content.
type DatasetVersion struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Class   string `json:"class"`
}

// Result is a released job's output: the result sealed to the bank and the enclave's signed
// receipt, as the output gate wrote them.
type Result struct {
	Sealed  []byte `json:"sealed"`
	Receipt []byte `json:"receipt"`
}

// Receipt is a released job's receipt alone.
type Receipt struct {
	Receipt []byte `json:"receipt"`
}

// Revoke is the body of the revoke route.
type Revoke struct {
	Reason string `json:"reason"`
}

// VerifyRequest is the body of the audit verify route: heads known from receipts or an earlier
// verification.
type VerifyRequest struct {
	Heads []audit.Head `json:"heads"`
}

// Health is the body of /healthz.
type Health struct {
	Status string `json:"status"`
}
