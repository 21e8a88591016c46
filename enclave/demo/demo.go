// Package demo runs insitu's whole story on synthetic data: a platform's provider data is ingested
// into an enclave; a bank uploads its plugin and sealed labels and submits a signed HE job; two
// stewards review and approve it; the plugin trains logistic regression on encrypted data in the
// sandbox; the output gate verifies and releases the model; the bank opens its result and checks
// the receipt, and the audit log verifies; the bank scores applicants online; and it asks for a
// credit scorecard in aggregate mode, which the plugin learns from noisy, thresholded answers under
// a privacy budget the stewards see before approving. Call Run.
package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"insitu/connectors"
	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/keys"
	"insitu/modeling/metrics"
)

// Config says what the demo generates and where it works.
type Config struct {
	// Enterprises is the number of synthetic enterprises. Default 20000.
	Enterprises int
	// Seed selects the synthetic data. Default 1.
	Seed uint64
	// Dir is the working folder; it must not exist or be empty, and is kept. When empty the demo
	// works in a new temporary folder and removes it at the end.
	Dir string
	// Iterations are the HE training's iterations. Default 10.
	Iterations int
	// AllowWeakerSandbox runs the plugin with the sandbox layers this machine offers when the strict
	// sandbox cannot start (not root, no Landlock, …): for development only.
	AllowWeakerSandbox bool
	// ScorecardEpsilon is the privacy budget of the aggregate-mode scorecard job (at most 8).
	// Default DefaultScorecardEpsilon.
	ScorecardEpsilon float64
	// PluginBinary is a static executable of plugins/helr to upload; when empty the demo uses the
	// insitu binary itself if it is static, and otherwise builds plugins/helr with the Go toolchain.
	PluginBinary string
	// ScorecardPlugin is a static executable of plugins/scorecard, for the aggregate-mode step; when
	// empty the demo finds or builds one as for PluginBinary.
	ScorecardPlugin string
}

// Result holds the demo's figures, for tests and callers that want more than the printout.
type Result struct {
	Dir         string
	Dataset     *dataset.Manifest
	Report      *connectors.Report
	ChecksOK    int
	AuditOK     bool
	Labelled    int
	Cohort      int
	Unmatched   int
	Lost        map[consent.Reason]int
	Features    int
	Train, Test int
	// Borrowers are the bank's labelled borrowers; Aligned those the PSI found on the platform
	// with an authorization for the bank, whose labels the bank sealed.
	Borrowers, Aligned int
	Job                string
	Iterations         int
	Refreshes          int
	// Bundle is the bank's opened result; Plain the plaintext fit's held-out figures on the same
	// cohort.
	Bundle *gate.Bundle
	// Kept says the working folder stays after the demo (Config.Dir was given).
	Kept      bool
	Plain     metrics.Summary
	ReceiptOK bool
	// Applicants counts the new applicants scored online at the end; VerifyAnswer is the answer to
	// the verification query (match, no_match or unknown).
	Applicants   int
	VerifyAnswer string
	// Scorecard is the aggregate-mode scorecard job's outcome.
	Scorecard *ScorecardResult
}

// Run executes the demo, printing each step to w.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Result, error) {
	if cfg.Enterprises == 0 {
		cfg.Enterprises = 20000
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 10
	}
	if cfg.ScorecardEpsilon == 0 {
		cfg.ScorecardEpsilon = DefaultScorecardEpsilon
	}
	res := &Result{}
	dir := cfg.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "insitu-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := requireEmpty(dir); err != nil {
		return nil, err
	}
	res.Dir, res.Kept = dir, cfg.Dir != ""
	fmt.Fprintf(w, "insitu demo: a bank trains a credit model on a platform's data it never sees\n")
	fmt.Fprintf(w, "working in %s\n\n", dir)

	// 1. Synthetic provider data.
	step := stepper(w, 12)
	done := step("synthetic platform data")
	synthDir := filepath.Join(dir, "synth")
	// The data describe today, so that the authorizations are valid now.
	sum, err := synthetic.Generate(synthetic.Config{Enterprises: cfg.Enterprises, Seed: cfg.Seed,
		AsOf: time.Now().UTC().Truncate(24 * time.Hour)}, synthDir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "      %d enterprises (seed %d), %d provider files covering annex categories %s\n",
		sum.Enterprises, sum.Seed, len(sum.Sources), intsRange(sum.Categories))
	fmt.Fprintf(w, "      bank %s: %d labelled borrowers, %d defaults (%.1f %%); %d authorization records\n",
		sum.Bank, sum.Labelled, sum.Defaults, 100*sum.DefaultRate, sum.Authorizations)
	done()

	// 2. Enclave data directory, master key outside it.
	done = step("enclave data directory")
	keyFile := filepath.Join(dir, "master.key")
	init, err := datadir.Init(filepath.Join(dir, "enclave"), keyFile)
	if err != nil {
		return nil, err
	}
	dd, err := datadir.Open(init.Dir, keys.Source{File: keyFile})
	if err != nil {
		return nil, err
	}
	e, err := enclave.OpenDataDir(ctx, dd)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	fmt.Fprintf(w, "      %s, master key %s kept outside it in %s\n", init.Dir, init.KeyID, keyFile)
	fmt.Fprintf(w, "      enclave identity %s (ML-DSA-65 signing key, X-Wing HPKE key)\n", init.Identity.Fingerprint())
	done()

	// 3. Ingest.
	done = step("ingest into an encrypted dataset")
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(synthDir, "dataset.yaml"))
	if err != nil {
		return nil, err
	}
	m, rep, err := e.Ingest(ctx, "demo", spec, mappings, dataset.IngestOptions{})
	if err != nil {
		return nil, err
	}
	res.Dataset, res.Report = m, rep
	fmt.Fprintf(w, "      %s v%d: %d subjects, %d columns from %d sources; data-quality report:\n\n",
		m.Name, m.Version, m.Subjects, len(m.Columns)-1, len(m.Sources))
	if err := writeQuality(w, rep); err != nil {
		return nil, err
	}
	done()

	// 4. Authorizations.
	done = step("enterprises' authorizations")
	af, err := os.Open(filepath.Join(synthDir, "authorizations.csv"))
	if err != nil {
		return nil, err
	}
	imp, err := e.Consent.Import(ctx, "demo", "authorizations.csv", af)
	af.Close()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "      %d authorization records imported for %s (audit record %d)\n", imp.Added, sum.Bank, imp.AuditSeq)
	done()

	// 5. Verify.
	done = step("verify the dataset and the audit log")
	vr, err := e.Datasets.Verify(ctx, m.Name, m.Version)
	if err != nil {
		return nil, err
	}
	if failed := vr.Failed(); len(failed) > 0 {
		return nil, fmt.Errorf("demo: verify found %d failed checks, the first: %s", len(failed), failed[0].Detail)
	}
	res.ChecksOK = len(vr.Checks)
	fmt.Fprintf(w, "      dataset: %d checks passed, every block decrypted, every hash recomputed\n", res.ChecksOK)
	if _, err := e.Audit.Checkpoint(ctx); err != nil {
		return nil, err
	}
	ar, err := e.VerifyAudit(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := ar.Err(); err != nil {
		return nil, err
	}
	res.AuditOK = true
	fmt.Fprintf(w, "      audit log: %d records in an intact hash chain, head signed by the enclave\n", ar.Records)
	done()

	// 6. The bank's job.
	done = step("the bank aligns its borrowers (PSI), uploads its plugin and sealed labels, and signs and submits an HE job")
	p, err := newParties(ctx, e, sum.Bank)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "      identities (ML-DSA-65 + X-Wing) registered: bank %s; stewards %s and %s, 2 of 2 must approve\n",
		p.bank.Name, p.stewards[0].Name, p.stewards[1].Name)
	j, err := bankSubmits(ctx, e, p, m, synthDir, dir, cfg, res, w)
	if err != nil {
		return nil, err
	}
	res.Job = j.ID
	done()

	// 7. Review and approval.
	done = step("the stewards review the request and approve it")
	if err := stewardsApprove(ctx, e, p, j, res, w); err != nil {
		return nil, err
	}
	done()

	// 8. The run.
	done = step("the enclave runs the plugin in the sandbox on CKKS-encrypted data")
	run, err := runJob(ctx, e, j, cfg, res, w)
	if err != nil {
		return nil, err
	}
	res.Features, res.Train, res.Test = len(run.Cohort.Features), run.Cohort.Train, run.Cohort.Test
	done()

	// 9. The gate and the bank's result.
	done = step("the output gate verifies and releases; the bank opens its result")
	_, receipt, err := bankOpens(ctx, e, p, run, res, w)
	if err != nil {
		return nil, err
	}
	done()

	// 10. Receipt and audit.
	done = step("verify the receipt offline and the audit log")
	if err := verifyReceipt(ctx, e, p, receipt, res, w); err != nil {
		return nil, err
	}
	done()

	// 11. The model in use.
	done = step("the bank scores three new applicants online and asks one verification query")
	if err := useModel(ctx, e, p, run, res, w); err != nil {
		return nil, err
	}
	done()
	// 12. Aggregate mode.
	done = step("the bank asks for a scorecard in aggregate mode: noisy answers under a privacy budget")
	if err := scorecardJob(ctx, e, p, m, j.Manifest.Labels, dir, cfg, res, w); err != nil {
		return nil, err
	}
	done()
	fmt.Fprintf(w, "Next: insitu serve --help (the daemon banks and stewards talk to); insitu job --help; insitu catalog.\n")
	return res, nil
}

// writeQuality prints one line per source and the least complete fields.
func writeQuality(w io.Writer, rep *connectors.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "      source\trows\taccepted\trejected\tinvalid ids\tduplicates\tcompleteness\tprovider")
	type low struct {
		name string
		c    float64
	}
	var lows []low
	for _, s := range rep.Sources {
		var c float64
		n := 0
		for _, f := range s.Fields {
			if f.Column == "subject_id" {
				continue
			}
			c += f.Completeness
			n++
			if f.Completeness < 1 {
				lows = append(lows, low{f.Column, f.Completeness})
			}
		}
		if n > 0 {
			c /= float64(n)
		}
		name := s.ProviderName
		if name == "" {
			name = s.Provider
		}
		fmt.Fprintf(tw, "      %s\t%d\t%d\t%d\t%d\t%d\t%.1f %%\t%s\n", s.Source, s.RowsRead, s.RowsAccepted,
			s.RowsRejected, s.InvalidIdentifiers, s.DuplicateSubjects, 100*c, name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sort.SliceStable(lows, func(i, j int) bool { return lows[i].c < lows[j].c })
	if len(lows) > 0 {
		var parts []string
		for _, l := range lows[:min(5, len(lows))] {
			parts = append(parts, fmt.Sprintf("%s %.1f %%", l.name, 100*l.c))
		}
		fmt.Fprintf(w, "      least complete fields: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "      (the full report, per field with distinct counts and ranges: insitu dataset show --quality)\n")
	return nil
}

// stepper prints a numbered heading for each step; the function it returns prints the time taken.
func stepper(w io.Writer, total int) func(string) func() {
	n := 0
	return func(what string) func() {
		n++
		fmt.Fprintf(w, "[%d/%d] %s\n", n, total, what)
		start := time.Now()
		return func() { fmt.Fprintf(w, "      (%.2f s)\n\n", time.Since(start).Seconds()) }
	}
}

func lostText(lost map[consent.Reason]int) string {
	var b strings.Builder
	for _, r := range consent.Reasons {
		if n := lost[r]; n > 0 {
			fmt.Fprintf(&b, " %s %d", r, n)
		}
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}

func intsRange(xs []int) string {
	if len(xs) == 0 {
		return "none"
	}
	contiguous := true
	for i := 1; i < len(xs); i++ {
		if xs[i] != xs[i-1]+1 {
			contiguous = false
		}
	}
	if contiguous && len(xs) > 2 {
		return fmt.Sprintf("%d–%d", xs[0], xs[len(xs)-1])
	}
	return strings.Trim(fmt.Sprint(xs), "[]")
}

func requireEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return os.MkdirAll(dir, 0o700)
		}
		return fmt.Errorf("demo: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("demo: working folder %s is not empty; choose a new or empty one", dir)
	}
	return nil
}
