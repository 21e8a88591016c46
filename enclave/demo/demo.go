// Package demo runs insitu's walkthrough on synthetic data: it generates a platform's provider data,
// creates an enclave data directory, ingests the data as an encrypted dataset, verifies it, and fits
// the plaintext reference model on the bank's labels. Call Run.
package demo

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"insitu/connectors"
	"insitu/connectors/catalog"
	"insitu/connectors/ident"
	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
	"insitu/modeling/features"
	"insitu/modeling/logreg"
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
	// Lambda is the L2 penalty of the reference model. Default 1.
	Lambda float64
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
	Model       *logreg.Model
	Eval        metrics.Summary
}

// Run executes the demo, printing each step to w.
func Run(ctx context.Context, cfg Config, w io.Writer) (*Result, error) {
	if cfg.Enterprises == 0 {
		cfg.Enterprises = 20000
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Lambda == 0 {
		cfg.Lambda = 1
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
	res.Dir = dir
	fmt.Fprintf(w, "insitu demo: a platform's credit data ingested into an enclave, and the plaintext reference model\n")
	fmt.Fprintf(w, "working in %s\n\n", dir)

	// 1. Synthetic provider data.
	step := stepper(w, 6)
	done := step("synthetic platform data")
	synthDir := filepath.Join(dir, "synth")
	sum, err := synthetic.Generate(synthetic.Config{Enterprises: cfg.Enterprises, Seed: cfg.Seed}, synthDir)
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

	// 6. Plaintext reference model.
	done = step("plaintext reference model on the authorized cohort, inside the enclave")
	if err := fitReference(ctx, e, m, filepath.Join(synthDir, "labels.csv"), sum.Bank, cfg, res, w); err != nil {
		return nil, err
	}
	done()
	fmt.Fprintf(w, "Next: insitu catalog; insitu synth --help; insitu ingest --help.\n")
	return res, nil
}

func fitReference(ctx context.Context, e *enclave.Enclave, m *dataset.Manifest, labelFile, bank string, cfg Config, res *Result, w io.Writer) error {
	labels, err := cohort.ReadLabels(labelFile)
	if err != nil {
		return err
	}
	cols := cohort.FeatureColumns(m)
	sc, err := e.Datasets.Scan(ctx, m.Name, m.Version, dataset.ScanOptions{Columns: names(cols)})
	if err != nil {
		return err
	}
	all, err := cohort.Collect(ctx, sc, cols, labels)
	sc.Close()
	if err != nil {
		return err
	}
	// Keep the subjects whose authorizations cover, for this bank and purpose, every requested item
	// that needs one.
	items := itemsOf(cols)
	kept, lost, err := e.Consent.Cohort(ctx, consent.CohortQuery{IDType: ident.Kind(m.SubjectKind), Grantee: bank,
		Purpose: consent.PurposeModelDevelopment, Items: items, At: synthetic.DefaultAsOf}, slices.Values(all.Subjects))
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, id := range kept {
		keep[id] = true
	}
	var rows []int
	for i, id := range all.Subjects {
		if keep[id] {
			rows = append(rows, i)
		}
	}
	cols2, y := all.Rows(rows)
	t := &cohort.Table{Subjects: kept, Label: y, Columns: cols2, Unmatched: all.Unmatched}
	res.Labelled, res.Lost = labels.Len(), lost
	needing, _ := consent.NeedingAuthorization(catalog.Default(), items)
	fmt.Fprintf(w, "      job: bank %s, purpose model_development, %d catalog items requested (%d need the enterprise's authorization)\n",
		bank, len(items), len(needing))
	fmt.Fprintf(w, "      %d labelled, %d in the dataset, %d with a covering authorization\n", labels.Len(), len(all.Subjects), len(kept))
	fmt.Fprintf(w, "      the steward sees why subjects were left out:%s\n", lostText(lost))
	res.Cohort, res.Unmatched = len(t.Subjects), t.Unmatched
	train, test := cohort.Split(t.Subjects, 5)
	res.Train, res.Test = len(train), len(test)
	trainCols, yTrain := t.Rows(train)
	testCols, yTest := t.Rows(test)
	asOf := synthetic.DefaultAsOf
	fitted, err := features.Fit(cohort.DefaultSpec(&cohort.Table{Columns: trainCols}, asOf), trainCols)
	if err != nil {
		return err
	}
	xTrain, names, err := fitted.Transform(trainCols)
	if err != nil {
		return err
	}
	xTest, _, err := fitted.Transform(testCols)
	if err != nil {
		return err
	}
	res.Features = len(names)
	model, err := logreg.Fit(logreg.Problem{X: xTrain, Y: yTrain, Lambda: cfg.Lambda, FeatureNames: names}, logreg.Options{})
	if err != nil {
		return err
	}
	res.Model = model
	ev, err := metrics.Evaluate(yTest, model.PredictProba(xTest))
	if err != nil {
		return err
	}
	res.Eval = ev
	fmt.Fprintf(w, "      cohort: %d subjects (the bank learns only this number), %d model inputs from %d columns\n",
		len(t.Subjects), len(names), len(cols))
	fmt.Fprintf(w, "      L2 logistic regression (λ=%g, Newton/IRLS): %d iterations, converged=%v\n", cfg.Lambda, model.Iterations, model.Converged)
	fmt.Fprintf(w, "      test split (SHA-256(subject) mod 5 = 0): %d subjects, %d defaults: AUC %.4f  KS %.4f  Gini %.4f\n",
		ev.N, ev.Positives, ev.AUC, ev.KS, ev.Gini)
	fmt.Fprintf(w, "      strongest inputs (standardised weights):\n")
	type wt struct {
		name string
		w    float64
	}
	var ws []wt
	for i, n := range names {
		ws = append(ws, wt{n, model.Weights[i]})
	}
	sort.Slice(ws, func(i, j int) bool { return math.Abs(ws[i].w) > math.Abs(ws[j].w) })
	for _, x := range ws[:min(8, len(ws))] {
		fmt.Fprintf(w, "        %+.3f  %s\n", x.w, x.name)
	}
	return nil
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

// itemsOf lists the catalog items of the columns, in order of first appearance; custom fields have
// no item.
func itemsOf(cols []dataset.Column) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cols {
		if c.Item == "" || c.Item == "custom" || seen[c.Item] {
			continue
		}
		seen[c.Item] = true
		out = append(out, c.Item)
	}
	return out
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

func names(cols []dataset.Column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
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
