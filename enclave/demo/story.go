package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave"
	"insitu/enclave/audit"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/enclave/psi"
	"insitu/enclave/sandbox"
	"insitu/modeling/logreg"
	"insitu/modeling/metrics"
	"insitu/plugins/sdk"
)

// bankFields are the catalog fields the demo's bank asks for: tax, social insurance, utilities,
// court records, legal representative, shareholders and customs figures, all numeric.
var bankFields = []string{
	"tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m",
	"tax_arrears_history.max_arrears_days_24m", "tax_arrears_history.outstanding_arrears_amount",
	"tax_deferral.deferrals_24m", "financial_filings.revenue", "financial_filings.total_assets",
	"financial_filings.total_liabilities", "financial_filings.net_profit", "financial_filings.taxes_paid",
	"pension_contributions.insured_headcount", "pension_contributions.months_paid_12m",
	"pension_contributions.arrears_months", "pension_contributions.headcount_change_12m",
	"electricity.arrears_amount", "electricity.defaults_last_2y", "electricity.consumption_growth_12m",
	"water.late_payments_12m", "gas.late_payments_12m", "dishonest_judgment_debtors.case_count",
	"dishonest_judgment_debtors.amount_outstanding", "legal_representative.legal_rep_changes_36m",
	"shareholders_and_contributions.shareholder_changes_36m", "customs_duty_payments.overdue_payments_24m",
}

// parties are the demo's identities: the bank and two stewards (a 2-of-2 quorum).
type parties struct {
	bank     *keys.Identity
	stewards []*keys.Identity
}

func newParties(ctx context.Context, e *enclave.Enclave, bank string) (*parties, error) {
	p := &parties{}
	var err error
	if p.bank, err = keys.NewIdentity(keys.RoleBank, bank); err != nil {
		return nil, err
	}
	if _, err := e.Jobs.AddParty(ctx, "demo-admin", p.bank.Public()); err != nil {
		return nil, err
	}
	for _, name := range []string{"steward-li", "steward-wang"} {
		s, err := keys.NewIdentity(keys.RoleSteward, name)
		if err != nil {
			return nil, err
		}
		if _, err := e.Jobs.AddParty(ctx, "demo-admin", s.Public()); err != nil {
			return nil, err
		}
		p.stewards = append(p.stewards, s)
	}
	if err := e.Jobs.SetSetting(ctx, "demo-admin", job.SettingQuorum, len(p.stewards)); err != nil {
		return nil, err
	}
	return p, nil
}

// heManifest is the bank's job: HE logistic regression of plugins/helr on the requested fields,
// with their default transforms, so every encrypted input is bounded.
func heManifest(m *dataset.Manifest, bank string, plugin pluginstore.Digest, labels string, iterations int) (*manifest.Manifest, error) {
	var fields []manifest.Field
	for _, key := range bankFields {
		c, ok := m.Column(key)
		if !ok || (c.CatalogType != "int" && c.CatalogType != "float") {
			continue
		}
		// No steps: the catalog type's default, which for numbers winsorises at the training 1 % and
		// 99 % quantiles, standardises and clips to ±4 — bounded, as HE mode needs.
		fields = append(fields, manifest.Field{Key: key})
	}
	mf := &manifest.Manifest{
		Format: manifest.FormatV1, Bank: bank, Purpose: "model_development",
		PurposeDetail: "small-business default model, joint modeling lab",
		Dataset:       manifest.Dataset{Name: m.Name, Version: fmt.Sprint(m.Version)},
		Fields:        fields, Mode: sdk.ModeHE,
		Model:  manifest.Model{Family: sdk.FamilyLogisticRegression, Hyperparameters: map[string]any{"iterations": iterations, "l2": 0.001}},
		Plugin: plugin.String(), Labels: labels,
		Outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: len(fields), MaxAbs: 16},
			Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}},
		Expires: time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339),
	}
	return mf, mf.Validate()
}

// bankSubmits is step 6: the bank uploads its plugin, seals its labels to the enclave, and signs and
// submits its manifest.
func bankSubmits(ctx context.Context, e *enclave.Enclave, p *parties, m *dataset.Manifest, synthDir, work string, cfg Config, res *Result, w io.Writer) (*job.Job, error) {
	bin, args := cfg.PluginBinary, []string(nil)
	if bin == "" {
		var err error
		if bin, args, err = pluginBinary(ctx, "helr", work, w); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return nil, err
	}
	info, _, err := e.UploadPlugin(ctx, f, pluginstore.Meta{Name: "helr", Uploader: p.bank.Name})
	f.Close()
	if err != nil {
		return nil, err
	}
	pluginArgs = args
	fmt.Fprintf(w, "      plugin helr (HE logistic regression) uploaded: %s\n", info.Digest)
	data, err := os.ReadFile(filepath.Join(synthDir, "labels.csv"))
	if err != nil {
		return nil, err
	}
	if data, err = alignLabels(ctx, e, p, m, data, res, w); err != nil {
		return nil, err
	}
	sealed, _, err := cohort.SealLabels(e.Identity.Public(), data, "labels.csv")
	if err != nil {
		return nil, err
	}
	li, err := e.UploadLabels(ctx, p.bank.Name, "labels.csv", sealed)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "      labels of %d borrowers sealed to the enclave's key (X-Wing HPKE) and uploaded: %s\n", li.Subjects, li.Digest)
	mf, err := heManifest(m, p.bank.Name, info.Digest, li.Digest, cfg.Iterations)
	if err != nil {
		return nil, err
	}
	signed, err := manifest.Sign(mf, p.bank)
	if err != nil {
		return nil, err
	}
	j, err := e.Jobs.Submit(ctx, signed.Marshal(), "job.yaml")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "      manifest: purpose %s, mode he, %d fields, family %s, outputs weights/scores/auc,ks\n",
		mf.Purpose, len(mf.Fields), mf.Model.Family)
	fmt.Fprintf(w, "      signed by %s (ML-DSA-65) and submitted as %s, manifest hash %s\n", p.bank.Name, j.ID, j.ManifestHash)
	return j, nil
}

// alignLabels runs the private set intersection of the bank's labelled borrowers with the
// platform's subjects that authorize the bank for model development (ECDH over ristretto255), and
// returns the label file restricted to the intersection: the bank seals and uploads only those.
func alignLabels(ctx context.Context, e *enclave.Enclave, p *parties, m *dataset.Manifest, labels []byte, res *Result, w io.Writer) ([]byte, error) {
	ids, err := psi.ReadIDs("labels.csv", bytes.NewReader(labels), ident.Kind(m.SubjectKind))
	if err != nil {
		return nil, err
	}
	srv := psi.NewServer(psi.DatasetSource{Datasets: e.Datasets, Consent: e.Consent}, psi.Options{})
	cl := &psi.Client{Transport: psi.Local{Server: srv, Bank: p.bank.Name}}
	sess, err := cl.Open(ctx, psi.Request{Dataset: m.Name, Version: m.Version, Purpose: consent.PurposeModelDevelopment})
	if err != nil {
		return nil, err
	}
	psiRes, err := sess.Intersect(ctx, ids.IDs)
	if err != nil {
		return nil, err
	}
	res.Borrowers, res.Aligned = len(ids.IDs), len(psiRes.Matched)
	keep := make(map[int64]bool, len(psiRes.Matched))
	for _, i := range psiRes.Matched {
		keep[ids.Rows[i]] = true
	}
	var out bytes.Buffer
	if err := psi.FilterRows(&out, bytes.NewReader(labels), func(row int64) bool { return keep[row] }); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "      PSI (ECDH over ristretto255): %d of the bank's %d borrowers are on the platform and authorize it;\n"+
		"      the enclave learned only that the bank sent %d identifiers, the bank only the intersection and a padded size (%d)\n",
		len(psiRes.Matched), len(ids.IDs), psiRes.Sent, psiRes.PlatformSize)
	return out.Bytes(), nil
}

// pluginArgs are the arguments that make the uploaded binary serve the plugin (nil for a plugin's
// own main).
var pluginArgs []string

// stewardsApprove is step 7: each steward reviews what the job asks for and the cohort it would get,
// and signs the manifest hash.
func stewardsApprove(ctx context.Context, e *enclave.Enclave, p *parties, j *job.Job, res *Result, w io.Writer) error {
	byItem := map[string][]enclave.ReviewField{}
	var items []string
	for _, f := range enclave.ReviewFields(j) {
		if _, ok := byItem[f.Item]; !ok {
			items = append(items, f.Item)
		}
		byItem[f.Item] = append(byItem[f.Item], f)
	}
	fmt.Fprintf(w, "      the stewards see %d fields from %d catalog items:\n", len(enclave.ReviewFields(j)), len(items))
	for _, it := range items {
		fs := byItem[it]
		auth := ""
		if fs[0].NeedsAuthorization {
			auth = ", needs the enterprise's authorization"
		}
		fmt.Fprintf(w, "        %-32s %2d fields  sharing %s, sensitivity %s%s\n", it, len(fs), fs[0].Sharing, fs[0].Sensitivity, auth)
	}
	labels, err := e.OpenJobLabels(ctx, j.Bank, j.Manifest.Labels)
	if err != nil {
		return err
	}
	c, err := e.PrepareCohort(ctx, j.ID, j.Manifest, labels, time.Now())
	if err != nil {
		return err
	}
	res.Labelled, res.Cohort, res.Unmatched, res.Lost = c.Labelled, len(c.Subjects), c.Labelled-c.Matched, c.Lost
	fmt.Fprintf(w, "      cohort: %d labelled, %d in the dataset, %d with a covering authorization (the bank learns only this number)\n",
		c.Labelled, c.Matched, len(c.Subjects))
	fmt.Fprintf(w, "      left out, and why (for the stewards only):%s\n", lostText(c.Lost))
	for _, s := range p.stewards {
		sig, err := s.Sign(job.ApprovalMessage(j.Manifest), job.ApprovalContext)
		if err != nil {
			return err
		}
		st, err := e.Jobs.Approve(ctx, j.ID, s.Name, sig)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "      %s approves: signature over the manifest hash (%d of %d)\n", s.Name, st.Approvals, st.Quorum)
	}
	return nil
}

// runJob is step 8: the enclave runs the approved job; the plugin's iterations show as a progress bar.
func runJob(ctx context.Context, e *enclave.Enclave, j *job.Job, cfg Config, res *Result, w io.Writer) (*enclave.RunReport, error) {
	bar := &progressBar{w: w, start: time.Now()}
	// The runner's per-run folders must be searchable by the plugin's uid: a folder of their own
	// under the system's temporary folder, whatever the working folder's mode.
	runDir, err := os.MkdirTemp("", "insitu-demo-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(runDir)
	if err := os.Chmod(runDir, 0o711); err != nil {
		return nil, err
	}
	opts := enclave.RunOptions{
		Sandbox: sandbox.Spec{Limits: sandbox.Limits{WallClock: 10 * time.Minute, CPUTime: 20 * time.Minute, Memory: 8 << 30}},
		TempDir: runDir,
		Logger:  slog.New(bar),
		Progress: func(_, what string) {
			if !strings.HasPrefix(what, "training: iteration") { // the bar shows those
				fmt.Fprintf(w, "      %s\n", what)
			}
		},
		Args: pluginArgs,
	}
	if cfg.AllowWeakerSandbox {
		opts.Sandbox.Mode = sandbox.AllowWeaker
	}
	rep, err := e.RunJob(ctx, j.ID, opts)
	if err != nil {
		return nil, err
	}
	if rep.Run != nil && rep.Run.RefusedLayer != 0 {
		return rep, fmt.Errorf("demo: the strict sandbox needs %s, which this machine does not give (%s); run as root on Linux, "+
			"or, to run anyway with the layers it has, for development only: insitu demo --allow-weaker-sandbox", rep.Run.RefusedLayer, rep.Run.Detail)
	}
	if rep.Job.State == job.Failed {
		return rep, fmt.Errorf("demo: the job failed: %s", rep.Job.Reason)
	}
	if rep.Run != nil {
		if rep.Run.Weakened != 0 {
			fmt.Fprintf(w, "      WARNING: the sandbox ran without %s (--allow-weaker-sandbox)\n", rep.Run.Weakened)
		} else {
			fmt.Fprintf(w, "      sandbox: %s\n", rep.Run.Layers)
		}
		if rep.Run.HE != nil {
			res.Refreshes = rep.Run.HE.Refreshes
			res.Iterations = bar.last
			fmt.Fprintf(w, "      the plugin saw %d encrypted rows, %d refreshes by the enclave, run %.1f s\n",
				rep.Cohort.Train, res.Refreshes, rep.Run.Wall.Seconds())
		} else {
			fmt.Fprintf(w, "      the plugin saw no row: only noisy, thresholded answers about %d subjects, run %.1f s\n",
				rep.Cohort.Train, rep.Run.Wall.Seconds())
		}
	}
	return rep, nil
}

// progressBar is a slog.Handler that turns the plugin's "iteration" log lines into a progress bar.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	last  int
}

func (p *progressBar) Enabled(context.Context, slog.Level) bool { return true }
func (p *progressBar) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *progressBar) WithGroup(string) slog.Handler            { return p }

func (p *progressBar) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "iteration" {
		return nil
	}
	var it, of int
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "iteration":
			it = attrInt(a.Value)
		case "of":
			of = attrInt(a.Value)
		}
		return true
	})
	if it <= 0 || of <= 0 || it > of {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = it
	elapsed := time.Since(p.start)
	left := time.Duration(float64(elapsed) / float64(it) * float64(of-it))
	const width = 20
	done := width * it / of
	fmt.Fprintf(p.w, "      [%s%s] iteration %d/%d  elapsed %.1f s  about %.0f s left\n",
		strings.Repeat("█", done), strings.Repeat("░", width-done), it, of, elapsed.Seconds(), left.Seconds())
	return nil
}

func attrInt(v slog.Value) int {
	switch v.Kind() {
	case slog.KindInt64:
		return int(v.Int64())
	case slog.KindUint64:
		return int(v.Uint64())
	case slog.KindFloat64:
		return int(v.Float64())
	}
	var n int
	fmt.Sscan(v.String(), &n)
	return n
}

// bankOpens is step 9: the gate's verdict, and the bank's result next to a plaintext fit of the same
// cohort inside the enclave.
func bankOpens(ctx context.Context, e *enclave.Enclave, p *parties, rep *enclave.RunReport, res *Result, w io.Writer) (*gate.Receipt, []byte, error) {
	if rep.Refusal != nil {
		return nil, nil, fmt.Errorf("demo: the output gate refused the release: %v", rep.Refusal)
	}
	v := rep.Receipt.Gate
	fmt.Fprintf(w, "      gate: weights decrypted (only the declared ones), %s against the enclave's own optimum, rounded;\n", v.Result)
	fmt.Fprintf(w, "      at most %.0f bits could hide in the released weights (stated in the receipt)\n", v.BitsBound)
	sealed, receipt, err := e.Gate.Result(ctx, rep.Job.ID)
	if err != nil {
		return nil, nil, err
	}
	b, err := gate.OpenResult(sealed, p.bank)
	if err != nil {
		return nil, nil, err
	}
	res.Bundle = b
	// The plaintext reference: the same objective on the same transformed cohort, fitted exactly.
	c := rep.Cohort
	n := c.Train
	ref, err := logreg.Fit(logreg.Problem{X: c.XTrain, Y: c.YTrain, Lambda: 0.001 * float64(n), FeatureNames: c.Features}, logreg.Options{})
	if err != nil {
		return nil, nil, err
	}
	plain, err := metrics.Evaluate(c.YTest, ref.PredictProba(c.XTest))
	if err != nil {
		return nil, nil, err
	}
	res.Plain = plain
	fmt.Fprintf(w, "      the bank opens its sealed result: %d weights, %d scores keyed by its own credit codes\n", len(b.Weights.Values), len(b.Scores))
	fmt.Fprintf(w, "      held-out test (%d subjects, %d defaults):\n", plain.N, plain.Positives)
	fmt.Fprintf(w, "        encrypted training (HE, released):  AUC %.4f  KS %.4f\n", b.Metrics["auc"], b.Metrics["ks"])
	fmt.Fprintf(w, "        plaintext fit, same data:           AUC %.4f  KS %.4f\n", plain.AUC, plain.KS)
	type wt struct {
		name string
		w    float64
	}
	var ws []wt
	for i, name := range b.Weights.Names {
		ws = append(ws, wt{name, b.Weights.Values[i]})
	}
	sort.Slice(ws, func(i, j int) bool { return math.Abs(ws[i].w) > math.Abs(ws[j].w) })
	fmt.Fprintf(w, "      strongest released weights:\n")
	for _, x := range ws[:min(6, len(ws))] {
		fmt.Fprintf(w, "        %+.4f  %s\n", x.w, x.name)
	}
	if err := os.WriteFile(filepath.Join(res.Dir, "result.sealed"), sealed, 0o600); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(res.Dir, "receipt.json"), receipt, 0o600); err != nil {
		return nil, nil, err
	}
	return rep.Receipt, receipt, nil
}

// verifyReceipt is step 10: the receipt checked offline with public keys only, the result against
// it, and the audit log against the receipt's head.
func verifyReceipt(ctx context.Context, e *enclave.Enclave, p *parties, receipt []byte, res *Result, w io.Writer) error {
	var stewards []keys.PublicIdentity
	for _, s := range p.stewards {
		stewards = append(stewards, s.Public())
	}
	r, err := gate.VerifyReceipt(receipt, e.Identity.Public(), gate.VerifyOptions{Stewards: stewards})
	if err != nil {
		return err
	}
	if err := res.Bundle.Check(r); err != nil {
		return err
	}
	res.ReceiptOK = true
	fmt.Fprintf(w, "      receipt: enclave signature, %d steward approvals over manifest %s, dataset %s, plugin, authorization snapshot\n",
		len(r.Approvals), short(r.ManifestHash), short(r.Dataset.ManifestHash))
	fmt.Fprintf(w, "      and the hashes of every released output: verified offline with public keys only\n")
	ar, err := e.VerifyAudit(ctx, []audit.Head{r.Audit})
	if err != nil {
		return err
	}
	if err := ar.Err(); err != nil {
		return err
	}
	res.AuditOK = true
	fmt.Fprintf(w, "      audit log: %d records, intact, and its head matches the receipt's (record %d)\n", ar.Records, r.Audit.Seq)
	if res.Kept {
		fmt.Fprintf(w, "      kept in %s: result.sealed, receipt.json (check again: insitu receipt verify)\n", res.Dir)
	}
	return nil
}

func short(h string) string {
	if len(h) > 19 {
		return h[:19] + "…"
	}
	return h
}
