package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/scoring"
)

// verifyField is the data-verification field the demo's bank asks about.
const verifyField = "innovation_evaluation.high_tech_enterprise"

// useModel is the demo's last step: the bank scores three new applicants online with the model it
// just got released (registered with the release), and asks one verification query. New applicants
// are subjects outside the training cohort whose authorization covers the model's items for a
// credit decision.
func useModel(ctx context.Context, e *enclave.Enclave, p *parties, run *enclave.RunReport, res *Result, w io.Writer) error {
	svc := scoring.New(scoring.Config{DB: e.DB, Audit: e.Audit, Datasets: e.Datasets, Consent: e.Consent, Models: e.Models})
	defer svc.Close()
	m, err := e.Models.Get(ctx, run.Job.ID, p.bank.Name)
	if err != nil {
		return fmt.Errorf("demo: the released model: %w", err)
	}
	fmt.Fprintf(w, "      registered model %s: %s v%d, %d inputs, %d features\n", m.ID, m.Name, m.Version, len(m.Inputs), len(m.Features))
	inCohort := make(map[string]bool, len(run.Cohort.Subjects))
	for _, s := range run.Cohort.Subjects {
		inCohort[s] = true
	}
	var candidates []string
	for _, s := range datasetSubjects(ctx, e, m.Dataset, m.Inputs[0]) {
		if !inCohort[s] {
			candidates = append(candidates, s)
		}
	}
	var applicants []string
	var purpose consent.Purpose
	for _, pu := range []consent.Purpose{consent.PurposeCreditApproval, consent.PurposePreScreening, consent.PurposeModelDevelopment} {
		cov, err := e.Consent.Covered(ctx, consent.CohortQuery{IDType: ident.KindUSCC, Grantee: p.bank.Name, Purpose: pu,
			Items: m.Items, At: time.Now()}, candidates)
		if err != nil {
			return err
		}
		applicants = applicants[:0]
		for _, s := range candidates {
			if cov[s] && len(applicants) < 3 {
				applicants = append(applicants, s)
			}
		}
		if len(applicants) == 3 {
			purpose = pu
			break
		}
	}
	if len(applicants) < 3 {
		return errors.New("demo: fewer than three subjects outside the cohort authorized the bank")
	}
	sr, err := svc.Score(ctx, p.bank.Name, scoring.ScoreRequest{Model: m.ID, Purpose: purpose, Subjects: applicants})
	if err != nil {
		return err
	}
	for _, r := range sr.Results {
		if r.Refused != "" {
			fmt.Fprintf(w, "      applicant %s: refused (%s)\n", ident.Mask(r.Subject), r.Refused)
			continue
		}
		res.Applicants++
		fmt.Fprintf(w, "      applicant %s: probability of default %.3f, score %.0f\n", ident.Mask(r.Subject), *r.PD, *r.Score)
	}
	fmt.Fprintf(w, "      purpose %s, features from %s v%d; no feature value left the enclave (audit record %d)\n",
		purpose, sr.Dataset, sr.DatasetVersion, sr.AuditSeq)

	// One verification query, for an applicant whose authorization covers the item.
	cov, err := e.Consent.Covered(ctx, consent.CohortQuery{IDType: ident.KindUSCC, Grantee: p.bank.Name, Purpose: purpose,
		Items: []string{"innovation_evaluation"}, At: time.Now()}, candidates)
	if err != nil {
		return err
	}
	for _, s := range candidates {
		if !cov[s] {
			continue
		}
		vr, err := svc.Verify(ctx, p.bank.Name, scoring.VerifyRequest{Field: verifyField, Subject: s, Claim: "true", Purpose: purpose})
		if err != nil {
			return err
		}
		res.VerifyAnswer = vr.Answer
		fmt.Fprintf(w, "      verification: is %s a high-tech enterprise, as it claims? %s (the record stays in the enclave; audit record %d)\n",
			ident.Mask(s), vr.Answer, vr.AuditSeq)
		return nil
	}
	return errors.New("demo: no subject authorized the bank to verify " + verifyField)
}

// datasetSubjects lists the subjects of the latest version of a dataset (read through one column).
func datasetSubjects(ctx context.Context, e *enclave.Enclave, name, column string) []string {
	sc, err := e.Datasets.Scan(ctx, name, 0, dataset.ScanOptions{Columns: []string{column}})
	if err != nil {
		return nil
	}
	defer sc.Close()
	var out []string
	for {
		rec, err := sc.Next(ctx)
		if err != nil {
			return out
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, rec.Column(0).ValueStr(i))
		}
		rec.Release()
	}
}
