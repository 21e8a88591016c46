package demo

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"insitu/enclave"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/pluginstore"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// DefaultScorecardEpsilon is the privacy budget the demo's scorecard job asks for.
const DefaultScorecardEpsilon = 2.0

// scorecardFields are the fields of the demo's scorecard job: counts and amounts that are never
// negative, kept in their own units (clipped below at 0 only) so that the points table reads as a
// bank's does. A missing count is no record (0); a missing amount or headcount the median.
var scorecardFields = []string{
	"tax_arrears_history.arrears_count_24m", "tax_arrears_history.max_arrears_days_24m",
	"tax_arrears_history.outstanding_arrears_amount", "pension_contributions.arrears_months",
	"pension_contributions.insured_headcount", "pension_contributions.months_paid_12m",
	"electricity.defaults_last_2y", "water.late_payments_12m", "gas.late_payments_12m",
	"dishonest_judgment_debtors.case_count", "financial_filings.revenue", "customs_duty_payments.overdue_payments_24m",
}

// ScorecardResult is what the demo's aggregate-mode scorecard job gave.
type ScorecardResult struct {
	Job string
	// Bundle is the bank's opened result: the points table, scores and metrics.
	Bundle *gate.Bundle
	// Review is the stewards' view of the job's privacy impact before they approved it.
	Review enclave.ReviewPrivacy
	// EpsilonSpent is what the job's answers spent (the receipt's); EpsilonLeft what remains of the
	// bank's total on the dataset after it.
	EpsilonSpent, EpsilonLeft float64
	// Cohort is the job's cohort size: its fields need fewer authorizations than the HE job's, so
	// it may be larger.
	Cohort int
}

// scorecardManifest is the bank's scorecard job in aggregate mode.
func scorecardManifest(m *dataset.Manifest, bank string, plugin pluginstore.Digest, labels string, eps float64) (*manifest.Manifest, error) {
	zero := 0.0
	var fields []manifest.Field
	for _, key := range scorecardFields {
		if c, ok := m.Column(key); ok && (c.CatalogType == "int" || c.CatalogType == "float") {
			imp := &features.Impute{Strategy: features.ImputeConstant, Value: &zero} // no record: none
			if strings.HasPrefix(key, "financial_filings.") || strings.HasSuffix(key, "headcount") || strings.HasSuffix(key, "months_paid_12m") {
				imp = &features.Impute{Strategy: features.ImputeMedian}
			}
			fields = append(fields, manifest.Field{Key: key, Steps: []features.Step{{Impute: imp}, {Clip: &features.Clip{Min: &zero}}}})
		}
	}
	mf := &manifest.Manifest{
		Format: manifest.FormatV1, Bank: bank, Purpose: "model_development",
		PurposeDetail: "small-business application scorecard, joint modeling lab",
		Dataset:       manifest.Dataset{Name: m.Name, Version: fmt.Sprint(m.Version)},
		Fields:        fields, Mode: sdk.ModeAggregate, Epsilon: &eps,
		// max_abs: the plugin clips to the bound the outputs declare, so a rare extreme weight of
		// evidence from a small, noisy bin does not make the gate refuse the whole scorecard.
		Model:  manifest.Model{Family: sdk.FamilyScorecard, Hyperparameters: map[string]any{"max_bins": 6.0, "max_features": 8.0, "max_abs": 20.0}},
		Plugin: plugin.String(), Labels: labels,
		Outputs: manifest.Outputs{Scorecard: &manifest.ScorecardOutput{MaxBins: 8, MaxAbs: 20, PDO: 20, BaseScore: 600, BaseOdds: 50},
			Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}},
		Expires: time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339),
	}
	return mf, mf.Validate()
}

// scorecardJob is the demo's aggregate-mode step: the bank submits a scorecard job that may spend
// ε = 2 of its privacy budget on the dataset, the stewards see that impact in the review and
// approve, the plugin learns only from noisy, thresholded answers, and the gate releases the points
// table with the ε spent in the receipt.
func scorecardJob(ctx context.Context, e *enclave.Enclave, p *parties, m *dataset.Manifest, labels, work string, cfg Config, res *Result, w io.Writer) error {
	bin, args := cfg.ScorecardPlugin, []string(nil)
	if bin == "" {
		var err error
		if bin, args, err = pluginBinary(ctx, "scorecard", work, w); err != nil {
			return err
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	info, _, err := e.UploadPlugin(ctx, f, pluginstore.Meta{Name: "scorecard", Uploader: p.bank.Name})
	f.Close()
	if err != nil {
		return err
	}
	mf, err := scorecardManifest(m, p.bank.Name, info.Digest, labels, cfg.ScorecardEpsilon)
	if err != nil {
		return err
	}
	signed, err := manifest.Sign(mf, p.bank)
	if err != nil {
		return err
	}
	j, err := e.Jobs.Submit(ctx, signed.Marshal(), "scorecard.yaml")
	if err != nil {
		return err
	}
	sr := &ScorecardResult{Job: j.ID}
	res.Scorecard = sr
	fmt.Fprintf(w, "      plugin scorecard uploaded: %s; job %s: mode aggregate, family scorecard, %d fields in their own units, ε = %g\n",
		info.Digest, j.ID, len(mf.Fields), cfg.ScorecardEpsilon)
	rv, err := e.Review(ctx, j.ID)
	if err != nil {
		return err
	}
	if rv.Privacy == nil {
		return fmt.Errorf("demo: the review of aggregate job %s shows no privacy impact", j.ID)
	}
	sr.Review = *rv.Privacy
	pv := rv.Privacy
	fits := "fits"
	if !pv.Fits {
		fits = "does NOT fit"
	}
	fmt.Fprintf(w, "      the stewards' review: privacy budget of %s on %s: total ε %g (δ = %g), spent %.3g by %d earlier jobs, remaining %.3g;\n"+
		"      this job asks for ε %g, which %s\n", j.Bank, m.Name, pv.Total, pv.Delta, pv.Spent, pv.Jobs, pv.Remaining, pv.Requested, fits)
	for _, s := range p.stewards {
		sig, err := s.Sign(job.ApprovalMessage(j.Manifest), job.ApprovalContext)
		if err != nil {
			return err
		}
		st, err := e.Jobs.Approve(ctx, j.ID, s.Name, sig)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "      %s approves (%d of %d)\n", s.Name, st.Approvals, st.Quorum)
	}
	pluginArgs = args
	run, err := runJob(ctx, e, j, cfg, res, w)
	if err != nil {
		return err
	}
	if run.Refusal != nil {
		return fmt.Errorf("demo: the output gate refused the scorecard: %v", run.Refusal)
	}
	sealed, _, err := e.Gate.Result(ctx, j.ID)
	if err != nil {
		return err
	}
	b, err := gate.OpenResult(sealed, p.bank)
	if err != nil {
		return err
	}
	sr.Bundle, sr.Cohort = b, len(run.Cohort.Subjects)
	if run.Receipt.Privacy != nil {
		sr.EpsilonSpent = run.Receipt.Privacy.Epsilon
	}
	acct, err := e.Privacy.Account(ctx, p.bank.Name, m.Name)
	if err != nil {
		return err
	}
	sr.EpsilonLeft = acct.EpsilonLeft()
	fmt.Fprintf(w, "      gate: splits only at bin edges the service answered, values rounded, points computed by the enclave (%s)\n", b.Gate.Result)
	writePoints(w, b.Scorecard, 4)
	fmt.Fprintf(w, "      held-out test (%d subjects): scorecard from noisy aggregates  AUC %.4f  KS %.4f\n", run.Cohort.Test, b.Metrics["auc"], b.Metrics["ks"])
	fmt.Fprintf(w, "      privacy: the job spent ε %.3f of its %g (δ = %g, stated in the receipt); %s has ε %.3g left of %g on %s\n",
		sr.EpsilonSpent, cfg.ScorecardEpsilon, acct.Delta, p.bank.Name, sr.EpsilonLeft, acct.Epsilon, m.Name)
	return nil
}

// writePoints prints the n characteristics with the widest spread of points, each bin with its
// points.
func writePoints(w io.Writer, sc *gate.Scorecard, n int) {
	if sc == nil {
		return
	}
	type ch struct {
		c      gate.Characteristic
		spread float64
	}
	var chs []ch
	for _, c := range sc.Characteristics {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, a := range c.Attributes {
			lo, hi = math.Min(lo, a.Points), math.Max(hi, a.Points)
		}
		chs = append(chs, ch{c, hi - lo})
	}
	sort.SliceStable(chs, func(i, j int) bool { return chs[i].spread > chs[j].spread })
	fmt.Fprintf(w, "      points table (PDO %g, %g points at odds %g:1; %d characteristics, the %d widest shown):\n",
		sc.Scaling.PDO, sc.Scaling.BaseScore, sc.Scaling.BaseOdds, len(sc.Characteristics), min(n, len(chs)))
	for _, c := range chs[:min(n, len(chs))] {
		var parts []string
		for _, a := range c.c.Attributes {
			parts = append(parts, fmt.Sprintf("%s: %+.0f", a.Label, a.Points))
		}
		fmt.Fprintf(w, "        %-46s %s\n", c.c.Feature, strings.Join(parts, "  "))
	}
}
