package enclave

import (
	"context"
	"strings"

	"insitu/connectors/catalog"
	"insitu/enclave/job"
)

// Review is what a steward weighs before approving a job: the job and its manifest, where its
// approval stands, the earlier jobs that named the same plugin, the minimum cohort, and each
// requested field with its catalog item's sharing mode, sensitivity and authorization need.
type Review struct {
	Job           *job.Job      `json:"-"`
	Status        job.Status    `json:"status"`
	PluginHistory []*job.Job    `json:"-"`
	MinCohort     int           `json:"min_cohort"`
	Fields        []ReviewField `json:"fields"`
}

// ReviewField is one requested field as a steward sees it. Item, ItemName, Sharing and
// Sensitivity are "?" when the catalog does not know the key (a manifest parsed against another
// catalog).
type ReviewField struct {
	Key                string `json:"key"`
	Item               string `json:"item"`
	ItemName           string `json:"item_name"`
	Sharing            string `json:"sharing"`
	Sensitivity        string `json:"sensitivity"`
	NeedsAuthorization bool   `json:"needs_authorization"`
	Personal           bool   `json:"personal"`
	Steps              int    `json:"steps"`
}

// Review gathers what a steward weighs before deciding on job id.
func (e *Enclave) Review(ctx context.Context, id string) (*Review, error) {
	j, err := e.Jobs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := e.Jobs.Status(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	hist, err := e.Jobs.PluginHistory(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	minCohort, err := e.Jobs.Setting(ctx, job.SettingMinCohort)
	if err != nil {
		return nil, err
	}
	return &Review{Job: j, Status: st, PluginHistory: hist, MinCohort: minCohort, Fields: ReviewFields(j)}, nil
}

// ReviewFields describes the fields j's manifest requests, from the embedded catalog.
func ReviewFields(j *job.Job) []ReviewField {
	cat := catalog.Default()
	out := make([]ReviewField, 0, len(j.Manifest.Fields))
	for _, fl := range j.Manifest.Fields {
		item, field, _ := strings.Cut(fl.Key, ".")
		rf := ReviewField{Key: fl.Key, Item: item, ItemName: "?", Sharing: "?", Sensitivity: "?", Personal: fl.Personal, Steps: len(fl.Steps)}
		if it, cf, err := cat.Field(item, field); err == nil {
			rf.Item, rf.ItemName = it.Key, it.NameEN
			rf.Sharing, rf.Sensitivity, rf.NeedsAuthorization = string(it.Sharing), cf.Sensitivity.String(), it.NeedsAuthorization
		}
		out = append(out, rf)
	}
	return out
}
