package enclave

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"insitu/connectors/catalog"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/job"
	"insitu/plugins/sdk"
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
	// Cohort is the cohort the job would get if it ran now; nil when it cannot be told (the
	// labels are not uploaded), with the reason in CohortError.
	Cohort      *ReviewCohort `json:"cohort,omitempty"`
	CohortError string        `json:"cohort_error,omitempty"`
	// Privacy is the job's privacy budget impact, for an aggregate-mode job; nil otherwise.
	Privacy *ReviewPrivacy `json:"privacy,omitempty"`
}

// ReviewPrivacy is an aggregate-mode job's impact on its bank's privacy budget on the dataset: the
// ε the manifest requests, what the bank's jobs spent so far and what remains, at δ. Fits says
// whether the request fits in what remains (in ρ, where spends add up); a job that does not fit is
// refused when it would run (aggregate.Ledger.CheckFits).
type ReviewPrivacy struct {
	Requested float64 `json:"epsilon_requested"`
	Total     float64 `json:"epsilon_total"`
	Spent     float64 `json:"epsilon_spent"`
	Remaining float64 `json:"epsilon_remaining"`
	Delta     float64 `json:"delta"`
	Jobs      int     `json:"jobs"`
	Fits      bool    `json:"fits"`
}

// ReviewCohort is what the steward sees of a job's cohort: how many labelled subjects, how many the
// dataset holds, how many a covering authorization keeps, and why the others were left out. The
// bank sees only Kept.
type ReviewCohort struct {
	Labelled int                    `json:"labelled"`
	Matched  int                    `json:"in_dataset"`
	Kept     int                    `json:"kept"`
	Lost     map[consent.Reason]int `json:"lost"`
	At       time.Time              `json:"at"`
	// Authorization says what decides which subjects are kept: the consent registry's
	// authorizations for the job's bank and purpose, or, on a public dataset,
	// PublicAuthorization.
	Authorization string `json:"authorization"`
}

// ReviewField is one requested field as a steward sees it. Item, ItemName, Sharing and
// Sensitivity are "?" when the catalog does not know the key (a manifest parsed against another
// catalog). A custom field (custom.<key>) has item "custom" and sharing "custom": the catalog knows
// neither its sharing mode nor its sensitivity, so it is shown as confidential, or as what its
// provider's mapping declared when that is higher (Review reads the dataset).
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
	rv := &Review{Job: j, Status: st, PluginHistory: hist, MinCohort: minCohort, Fields: ReviewFields(j)}
	e.reviewCustomFields(ctx, j, rv.Fields)
	rv.Cohort, err = e.previewCohort(ctx, j, time.Now())
	if err != nil {
		rv.CohortError = err.Error()
	}
	if m := j.Manifest; m.Mode == sdk.ModeAggregate && m.Epsilon != nil {
		a, err := e.Privacy.Account(ctx, m.Bank, m.Dataset.Name)
		if err != nil {
			return nil, err
		}
		rv.Privacy = &ReviewPrivacy{Requested: *m.Epsilon, Total: a.Epsilon, Spent: a.EpsilonSpent, Remaining: a.EpsilonLeft(),
			Delta: a.Delta, Jobs: a.Jobs, Fits: sdk.EpsilonToRho(*m.Epsilon, a.Delta) <= a.RhoLeft()}
	}
	return rv, nil
}

// previewCohort selects the cohort job j would run on at time at, without fitting anything.
func (e *Enclave) previewCohort(ctx context.Context, j *job.Job, at time.Time) (*ReviewCohort, error) {
	m := j.Manifest
	if m.Labels == "" && m.LabelColumn == "" {
		return nil, errors.New("the job names no labels")
	}
	var labels *cohort.Labels
	if m.Labels != "" {
		var err error
		if labels, err = e.OpenJobLabels(ctx, j.Bank, m.Labels); err != nil {
			return nil, err
		}
	}
	sel, err := e.selectCohort(ctx, j.ID, m, labels, at)
	if err != nil {
		return nil, err
	}
	rc := &ReviewCohort{Labelled: len(sel.all.Subjects), Matched: len(sel.all.Subjects), Kept: len(sel.kept), Lost: sel.lost, At: at.UTC(),
		Authorization: PublicAuthorization}
	if labels != nil {
		rc.Labelled = labels.Len()
	}
	if !sel.public {
		items := "no requested item needs one"
		if needed, err := consent.NeedingAuthorization(catalog.Default(), sel.query.Items); err == nil && len(needed) > 0 {
			items = "covering " + strings.Join(needed, ", ")
		}
		rc.Authorization = fmt.Sprintf("consent registry: authorizations of %s for %s, %s", m.Bank, m.Purpose, items)
	}
	return rc, nil
}

// reviewCustomFields shows each custom field with the sensitivity its provider's mapping declared
// for the column, where that is above confidential. A dataset that cannot be read leaves the
// fields as ReviewFields gave them; the cohort preview says why.
func (e *Enclave) reviewCustomFields(ctx context.Context, j *job.Job, fields []ReviewField) {
	v, err := DatasetVersion(j.Manifest.Dataset.Version)
	if err != nil {
		return
	}
	dm, err := e.Datasets.Manifest(ctx, j.Manifest.Dataset.Name, v)
	if err != nil {
		return
	}
	for i := range fields {
		if fields[i].Item != "custom" {
			continue
		}
		if c, ok := dm.Column(fields[i].Key); ok && c.Sensitivity > int(catalog.Confidential) {
			fields[i].Sensitivity = catalog.Sensitivity(c.Sensitivity).String()
		}
	}
}

// ReviewFields describes the fields j's manifest requests, from the embedded catalog.
func ReviewFields(j *job.Job) []ReviewField {
	cat := catalog.Default()
	out := make([]ReviewField, 0, len(j.Manifest.Fields))
	for _, fl := range j.Manifest.Fields {
		item, field, _ := strings.Cut(fl.Key, ".")
		rf := ReviewField{Key: fl.Key, Item: item, ItemName: "?", Sharing: "?", Sensitivity: "?", Personal: fl.Personal, Steps: len(fl.Steps)}
		if fl.Custom() {
			rf.Item, rf.ItemName, rf.Sharing = "custom", "custom field (not in the catalog)", "custom"
			rf.Sensitivity = catalog.Confidential.String()
		} else if it, cf, err := cat.Field(item, field); err == nil {
			rf.Item, rf.ItemName = it.Key, it.NameEN
			rf.Sharing, rf.Sensitivity, rf.NeedsAuthorization = string(it.Sharing), cf.Sensitivity.String(), it.NeedsAuthorization
		}
		out = append(out, rf)
	}
	return out
}
