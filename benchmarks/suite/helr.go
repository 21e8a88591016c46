package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"insitu/connectors"
	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/he"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/enclave/sandbox"
	"insitu/modeling/helr"
	"insitu/modeling/logreg"
	"insitu/plugins/helr/model"
	"insitu/plugins/sdk"
)

// errNoJobPath marks a job path that cannot run on this machine or these data; in HEPath "auto" the
// case then runs in-process.
var errNoJobPath = errors.New("no enclave job path")

func heCase(env *Env, data string) Case {
	return Case{ID: "he-lr/" + data + "/he", Data: data, Kind: KindModel, Method: "plugins/helr on CKKS (Nesterov, degree-7 sigmoid)",
		Run: func(ctx context.Context, env *Env, row *Row) error {
			mode := env.Config.HEPath
			if mode == "auto" || mode == "job" {
				err := jobHE(ctx, env, data, row)
				if err == nil || mode == "job" || !errors.Is(err, errNoJobPath) {
					return err
				}
				env.Log("the enclave's job path cannot run here (%v): training in-process instead", err)
				row.Note("path", "in-process because "+err.Error())
			}
			return inProcessHE(ctx, env, data, row)
		}}
}

func heParams(cfg *Config) (he.Parameters, error) {
	if cfg.HEParams != nil {
		return he.NewParameters(*cfg.HEParams)
	}
	return he.NewParameters(he.DefaultLiteral)
}

func heHyper(cfg helr.Config) map[string]any {
	return map[string]any{"iterations": cfg.Iterations, "l2": cfg.L2}
}

// inProcessHE trains plugins/helr in this process on the enclave's packing (he.JobKeys.Batches) with
// the enclave's refresh service, without the sandbox, the gRPC transport or the gate.
func inProcessHE(ctx context.Context, env *Env, data string, row *Row) error {
	t, err := env.Table(data)
	if err != nil {
		return err
	}
	s := splitTable(t)
	xtr, xte, f, err := transformed(s, t)
	if err != nil {
		return err
	}
	params, err := heParams(env.Config)
	if err != nil {
		return err
	}
	hc := heConfig(env.Config)
	start := time.Now()
	k, err := he.NewJobKeys(params)
	if err != nil {
		return err
	}
	defer k.Close()
	env.Log("key generation %.1f s", time.Since(start).Seconds())
	var bounds [][2]float64
	for _, iv := range f.Bounds() {
		bounds = append(bounds, [2]float64{iv.Low, iv.High})
	}
	names := f.Names()
	rr, err := k.Batches(ctx, he.Cohort{Features: names, Bounds: bounds, X: helr.Columns(xtr), Y: s.ytr})
	if err != nil {
		return err
	}
	defer rr.Release()
	ref := k.NewRefresher(enclave.DefaultMaxRefreshes)
	fit := time.Now()
	out, err := model.New().Train(ctx, &sdk.TrainInput{
		Mode: sdk.ModeHE, Rows: rr, Features: names, Label: sdk.HELabel, Subject: "subject",
		Hyperparameters: sdk.MustHyperparameters(heHyper(hc)), HE: ref, Limits: sdk.DefaultLimits(),
		Log: slog.New(&iterationLog{log: env.Log, start: fit}),
	})
	if err != nil {
		return err
	}
	row.FitS = fp(time.Since(fit).Seconds())
	w, err := k.DecryptWeights(out.Ciphertexts, names)
	if err != nil {
		return err
	}
	m := logreg.Model{Weights: w.Values, Intercept: w.Intercept}
	row.Path = "in-process (enclave packing and refresh, no sandbox or gate)"
	s.sizes(row)
	row.Refreshes, row.Decrypted = ip(ref.Calls()), ip(len(w.Values)+1)
	row.SetExtra("iterations", float64(hc.Iterations))
	row.SetExtra("keygen_s", fit.Sub(start).Seconds())
	heNotes(row, params)
	return evaluate(row, s.yte, m.Decision(xte))
}

func heNotes(row *Row, p he.Parameters) {
	row.Note("epsilon", "HE adds no differential-privacy noise: the plugin sees ciphertexts only")
	lit := p.Literal()
	row.SetExtra("he_log_n", float64(lit.LogN))
	if !p.Secure() {
		row.Note("refreshes", "caveat: insecure test parameters (log N "+fmt.Sprint(lit.LogN)+"): figures are not representative")
	}
}

// iterationLog turns plugins/helr's "iteration" log lines into progress lines.
type iterationLog struct {
	log   func(string, ...any)
	start time.Time
}

func (h *iterationLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *iterationLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *iterationLog) WithGroup(string) slog.Handler            { return h }

func (h *iterationLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "iteration" {
		return nil
	}
	var it, of int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "iteration":
			it = attrInt(a.Value)
		case "of":
			of = attrInt(a.Value)
		}
		return true
	})
	if it > 0 && of > 0 {
		el := time.Since(h.start)
		h.log("iteration %d/%d  elapsed %.1f s  about %.0f s left", it, of, el.Seconds(),
			el.Seconds()/float64(it)*float64(of-it))
	}
	return nil
}

// attrInt reads a log attribute as an integer, whichever number kind the log line carried.
func attrInt(v slog.Value) int64 {
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return int64(v.Uint64())
	case slog.KindFloat64:
		return int64(v.Float64())
	}
	return 0
}

// heJob is a released HE job in a throw-away enclave.
type heJob struct {
	e      *enclave.Enclave
	rep    *enclave.RunReport
	bank   *keys.Identity // the requesting party: the bank, or the researcher on public data
	bundle *gate.Bundle
	t      *Table
	teI    []int
	hc     helr.Config
	params he.Parameters
	// key maps a feature of t to the dataset column the manifest names; public is true on a
	// public data set.
	key    func(string) string
	public bool
	close  func()
}

// publicLabel is the outcome column of a public data set as the suite ingests it (writeFlatSpec).
const publicLabel = "custom.label"

// publicKey is the dataset column of a public data set's feature: the custom field writeFlatSpec
// declares for it.
func publicKey(name string) string { return "custom." + csvName(name) }

// runHEJob runs the HE training as a job through a new enclave, the whole path a party's job takes:
// on synthetic data a bank's job (ingest the synthetic providers' data and the authorizations, seal
// and upload the training rows' labels); on a public data set a researcher's job (ingest the flat
// table as a dataset of class public whose outcome column labels the training rows only; the
// manifest names custom fields and label_column, and no authorization applies). Then upload the
// plugin, sign, submit and approve the manifest, run it in the strict sandbox, release through the
// output gate and open the sealed result. The caller closes the returned job.
func runHEJob(ctx context.Context, env *Env, data string) (_ *heJob, err error) {
	var set DataSet
	for _, s := range env.Sets {
		if s.Name == data {
			set = s
		}
	}
	public := set.SynthDir == ""
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: it needs root on Linux (namespaces, cgroups, a dedicated uid)", errNoJobPath)
	}
	bin, args, err := pluginBinary(env.Config, "helr")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoJobPath, err)
	}
	t, err := env.Table(data)
	if err != nil {
		return nil, err
	}
	dir, err := env.TempDir("he-job-")
	if err != nil {
		return nil, err
	}
	var cleanup []func()
	closeAll := func() {
		for k := len(cleanup) - 1; k >= 0; k-- {
			cleanup[k]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	cleanup = append(cleanup, func() { os.RemoveAll(dir) })
	var e *enclave.Enclave
	var m *dataset.Manifest
	if public {
		e, m, err = publicEnclave(ctx, dir, set, t)
	} else {
		e, m, err = syntheticEnclave(ctx, dir, set)
	}
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { e.Close() })
	_, teI := t.Split()
	var bank *keys.Identity
	if public {
		env.Log("ingested %s into an enclave as a public dataset: %d subjects, the training rows labelled by its column %s", m.Name, m.Subjects, publicLabel)
		bank, err = keys.NewIdentity(keys.RoleResearcher, "bench-researcher")
	} else {
		env.Log("ingested %s into an enclave: %d subjects, the bank's authorizations imported", m.Name, m.Subjects)
		bank, err = keys.NewIdentity(keys.RoleBank, synthetic.DefaultBank)
	}
	if err != nil {
		return nil, err
	}
	steward, err := keys.NewIdentity(keys.RoleSteward, "bench-steward")
	if err != nil {
		return nil, err
	}
	for _, p := range []*keys.Identity{bank, steward} {
		if _, err := e.Jobs.AddParty(ctx, "bench", p.Public()); err != nil {
			return nil, err
		}
	}
	if err := e.Jobs.SetSetting(ctx, "bench", job.SettingQuorum, 1); err != nil {
		return nil, err
	}
	labels := ""
	if !public {
		if labels, err = uploadTrainLabels(ctx, e, bank.Name, set); err != nil {
			return nil, err
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return nil, err
	}
	pinfo, _, err := e.UploadPlugin(ctx, f, pluginstore.Meta{Name: "helr", Uploader: bank.Name})
	f.Close()
	if err != nil {
		return nil, err
	}
	hc := heConfig(env.Config)
	key := synthKey
	if public {
		key = publicKey
	}
	mf := heManifest(m, t, key, bank.Name, pinfo.Digest, labels, hc)
	if public {
		mf.LabelColumn = publicLabel
	}
	if err := mf.Validate(); err != nil {
		return nil, err
	}
	signedM, err := manifest.Sign(mf, bank)
	if err != nil {
		return nil, err
	}
	j, err := e.Jobs.Submit(ctx, signedM.Marshal(), "job.yaml")
	if err != nil {
		return nil, err
	}
	sig, err := steward.Sign(job.ApprovalMessage(mf), job.ApprovalContext)
	if err != nil {
		return nil, err
	}
	if _, err := e.Jobs.Approve(ctx, j.ID, steward.Name, sig); err != nil {
		return nil, err
	}
	runDir, err := runTempDir()
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { os.RemoveAll(runDir) })
	opts := enclave.RunOptions{
		Sandbox:  sandbox.Spec{Limits: sandbox.Limits{WallClock: 30 * time.Minute, CPUTime: 60 * time.Minute, Memory: 12 << 30}},
		TempDir:  runDir,
		Args:     args,
		Logger:   slog.New(&iterationLog{log: env.Log, start: time.Now()}),
		Progress: func(_, what string) { env.Log("%s", what) },
	}
	if !public {
		opts.Now = func() time.Time { return synthetic.DefaultAsOf }
	}
	if env.Config.HEParams != nil {
		p, err := heParams(env.Config)
		if err != nil {
			return nil, err
		}
		opts.HEParams = &p
	}
	params, err := heParams(env.Config)
	if err != nil {
		return nil, err
	}
	rep, err := e.RunJob(ctx, j.ID, opts)
	if err != nil {
		return nil, err
	}
	if rep.Run != nil && rep.Run.RefusedLayer != 0 {
		return nil, fmt.Errorf("%w: this machine lacks the layer %s (%s)", errNoJobPath, rep.Run.RefusedLayer, rep.Run.Detail)
	}
	if rep.Job.State == job.Failed {
		return nil, fmt.Errorf("the job failed: %s", rep.Job.Reason)
	}
	if rep.Refusal != nil {
		return nil, fmt.Errorf("the output gate refused the release: %v", rep.Refusal)
	}
	res, _, err := e.Gate.Result(ctx, j.ID)
	if err != nil {
		return nil, err
	}
	b, err := gate.OpenResult(res, bank)
	if err != nil {
		return nil, err
	}
	return &heJob{e: e, rep: rep, bank: bank, bundle: b, t: t, teI: teI, hc: hc, params: params, key: key, public: public, close: closeAll}, nil
}

// uploadTrainLabels seals the synthetic bank's labels of its training rows to the enclave and
// uploads them, returning their digest: line i of its label file is borrower i, a test row when
// i % 5 == 0, which the bank does not label.
func uploadTrainLabels(ctx context.Context, e *enclave.Enclave, bank string, set DataSet) (string, error) {
	all, err := os.ReadFile(filepath.Join(set.SynthDir, "labels.csv"))
	if err != nil {
		return "", err
	}
	var lb bytes.Buffer
	for i, line := range bytes.SplitAfter(all, []byte("\n")) {
		if i%5 != 0 || i == 0 {
			lb.Write(line)
		}
	}
	sealed, _, err := cohort.SealLabels(e.Identity.Public(), lb.Bytes(), "labels.csv")
	if err != nil {
		return "", err
	}
	li, err := e.UploadLabels(ctx, bank, "labels.csv", sealed)
	if err != nil {
		return "", err
	}
	return li.Digest, nil
}

// publicEnclave creates an enclave data directory under dir and ingests the flat table of a public
// data set as a dataset of class public: subject id (opaque), every feature a custom field, and the
// outcome in custom.label for the training rows only (empty on the test rows, id % 5 == 0, so that
// the job's cohort leaves them out as the bank's labels leave out its test borrowers).
func publicEnclave(ctx context.Context, dir string, set DataSet, t *Table) (*enclave.Enclave, *dataset.Manifest, error) {
	train := *t
	train.Y = make([]float64, len(t.Y))
	for i, id := range t.IDs {
		train.Y[i] = t.Y[i]
		if id%5 == 0 {
			train.Y[i] = math.NaN()
		}
	}
	flat := set
	flat.Flat = filepath.Join(dir, set.Name+"-train-labelled.csv")
	if err := train.WriteCSV(flat.Flat); err != nil {
		return nil, nil, err
	}
	spec, err := writeFlatSpec(dir, flat, t, true)
	if err != nil {
		return nil, nil, err
	}
	e, err := newEnclave(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	s, maps, err := connectors.LoadDatasetSpec(spec)
	if err == nil {
		var m *dataset.Manifest
		if m, _, err = e.Ingest(ctx, "bench", s, maps, dataset.IngestOptions{}); err == nil {
			return e, m, nil
		}
	}
	e.Close()
	return nil, nil, err
}

// newEnclave creates and opens an enclave data directory under dir, its master key beside it.
func newEnclave(ctx context.Context, dir string) (*enclave.Enclave, error) {
	keyFile := filepath.Join(dir, "master.key")
	init, err := datadir.Init(filepath.Join(dir, "enclave"), keyFile)
	if err != nil {
		return nil, err
	}
	d, err := datadir.Open(init.Dir, keys.Source{File: keyFile})
	if err != nil {
		return nil, err
	}
	return enclave.OpenDataDir(ctx, d)
}

// jobHE runs the HE training through the enclave's job path (runHEJob) and evaluates the released
// weights on the test rows (id % 5 == 0), which the bank never labelled for the enclave.
func jobHE(ctx context.Context, env *Env, data string, row *Row) error {
	hj, err := runHEJob(ctx, env, data)
	if err != nil {
		return err
	}
	defer hj.close()
	t, teI, rep, b, hc, params := hj.t, hj.teI, hj.rep, hj.bundle, hj.hc, hj.params
	// Evaluate the released model on the test rows with the transforms the enclave fitted.
	c := rep.Cohort
	teCols, yte := t.Rows(teI)
	keysOf := make([]string, len(t.Names))
	for j, n := range t.Names {
		keysOf[j] = hj.key(n)
	}
	xte, outNames, err := c.Fitted.Transform(featureCols(keysOf, teCols))
	if err != nil {
		return err
	}
	w := make([]float64, len(outNames))
	pos := map[string]int{}
	for j, n := range outNames {
		pos[n] = j
	}
	for k, n := range b.Weights.Names {
		j, ok := pos[n]
		if !ok {
			return fmt.Errorf("released weight %q names no transformed feature", n)
		}
		w[j] = b.Weights.Values[k]
	}
	released := logreg.Model{Weights: w, Intercept: b.Weights.Intercept}
	if err := evaluate(row, yte, released.Decision(xte)); err != nil {
		return err
	}
	row.Train, row.Test, row.Features = ip(c.Train), ip(len(yte)), ip(len(c.Features))
	if hj.public {
		row.Note("train", "caveat: a researcher's job on the public dataset (no authorization applies); the enclave holds 1 in 5 labelled "+
			"subjects out for its own evaluation (by SHA-256 of the id), so the plugin trains on fewer rows (64 %) than the plaintext rows (80 %)")
	} else {
		row.Note("train", "caveat: the enclave holds 1 in 5 labelled subjects out for its own evaluation (by SHA-256 of the id) "+
			"and keeps only authorizing subjects, so the plugin trains on fewer rows (about 64 %) than the plaintext rows (80 %)")
	}
	row.Refreshes = ip(rep.Run.HE.Refreshes)
	row.Decrypted = ip(b.Gate.Parameters)
	row.FitS = fp(rep.Run.Wall.Seconds())
	row.Note("fit_s", "caveat: the plugin's whole sandboxed run: start, encryption as it streams, training, output")
	layers := "strict sandbox"
	if rep.Run.Weakened != 0 {
		layers = "sandbox without " + rep.Run.Weakened.String()
	}
	row.Path = "enclave job (" + layers + ", output gate " + b.Gate.Result + ")"
	row.SetExtra("iterations", float64(hc.Iterations))
	row.SetExtra("gate_bits_bound", b.Gate.BitsBound)
	if v, ok := b.Metrics["auc"]; ok {
		row.SetExtra("enclave_holdout_auc", v)
	}
	if p := rep.Run.Process; p != nil {
		row.SetExtra("plugin_cpu_s", p.CPUTime.Seconds())
		row.SetExtra("plugin_peak_mb", float64(p.MaxRSS)/(1<<20))
	}
	// The exact optimum of the same objective on the same rows, for the gap the encryption costs.
	exact, err := logreg.Fit(logreg.Problem{X: c.XTrain, Y: c.YTrain, Lambda: hc.Lambda(c.Train)}, logreg.Options{})
	if err == nil {
		ex := Row{}
		if evaluate(&ex, yte, exact.Decision(xte)) == nil {
			row.SetExtra("exact_same_rows_auc", *ex.AUC)
		}
	}
	heNotes(row, params)
	return nil
}

// runTempDir is a short folder for the runner's per-run folders (a unix socket path is at most 107
// bytes), searchable by the plugin's uid.
func runTempDir() (string, error) {
	d, err := os.MkdirTemp("", "ib-")
	if err != nil {
		return "", err
	}
	return d, os.Chmod(d, 0o711)
}

// syntheticEnclave creates an enclave data directory under dir, ingests the synthetic providers'
// files of set into it and imports the enterprises' authorizations of the bank.
func syntheticEnclave(ctx context.Context, dir string, set DataSet) (*enclave.Enclave, *dataset.Manifest, error) {
	e, err := newEnclave(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	m, err := func() (*dataset.Manifest, error) {
		s, maps, err := connectors.LoadDatasetSpec(filepath.Join(set.SynthDir, "dataset.yaml"))
		if err != nil {
			return nil, err
		}
		m, _, err := e.Ingest(ctx, "bench", s, maps, dataset.IngestOptions{})
		if err != nil {
			return nil, err
		}
		af, err := os.Open(filepath.Join(set.SynthDir, "authorizations.csv"))
		if err != nil {
			return nil, err
		}
		defer af.Close()
		_, err = e.Consent.Import(ctx, "bench", "authorizations.csv", af)
		return m, err
	}()
	if err != nil {
		e.Close()
		return nil, nil, err
	}
	return e, m, nil
}

// synthKey returns the catalog key of a synthetic flat table's column (its CSV header spells the
// key with '_' for '.').
func synthKey(name string) string {
	for _, k := range syntheticFields {
		if csvName(k) == name || k == name {
			return k
		}
	}
	return name
}

// writeFlatSpec writes a dataset spec and mapping for a flat table: subject "id" (opaque), each
// feature a float custom field, and the label too when withLabel is set.
func writeFlatSpec(dir string, set DataSet, t *Table, withLabel bool) (string, error) {
	class := "public"
	if set.Name == "synthetic" {
		class = "synthetic"
	}
	var mb strings.Builder
	fmt.Fprintf(&mb, "source: flat\nprovider: insitu_bench\nprovider_name: insitu bench (%s)\nformat: csv\npath: %q\n", set.Name, set.Flat)
	mb.WriteString("csv:\n  null: [\"\"]\nsubject:\n  column: id\n  kind: opaque\ncolumns:\n")
	cols := t.Names
	if withLabel {
		cols = append([]string{"label"}, cols...)
	}
	for _, n := range cols {
		fmt.Fprintf(&mb, "  - {column: %s, field: custom.%s}\n", csvName(n), csvName(n))
	}
	mb.WriteString("custom_fields:\n")
	for _, n := range cols {
		fmt.Fprintf(&mb, "  - {key: %s, type: float, sensitivity: 1}\n", csvName(n))
	}
	if err := os.WriteFile(filepath.Join(dir, "mapping.yaml"), []byte(mb.String()), 0o644); err != nil {
		return "", err
	}
	spec := fmt.Sprintf("dataset: bench-%s\nclass: %s\nsubject: opaque\nmappings: [mapping.yaml]\n", set.Name, class)
	path := filepath.Join(dir, "dataset.yaml")
	return path, os.WriteFile(path, []byte(spec), 0o644)
}

// heManifest is the bank's HE job: every feature transformed by heTransform (imputed, winsorised,
// standardised, clipped to [−4, 4]); weights, scores and the enclave's AUC and KS as outputs.
func heManifest(m *dataset.Manifest, t *Table, key func(string) string, bank string, plugin pluginstore.Digest, labels string, hc helr.Config) *manifest.Manifest {
	spec := heTransform(t.Names)
	var fields []manifest.Field
	for _, c := range spec.Columns {
		fields = append(fields, manifest.Field{Key: key(c.Column), Steps: c.Steps})
	}
	return &manifest.Manifest{
		Format: manifest.FormatV1, Bank: bank, Purpose: consent.PurposeModelDevelopment,
		PurposeDetail: "insitu bench: HE logistic regression",
		Dataset:       manifest.Dataset{Name: m.Name, Version: fmt.Sprint(m.Version)},
		Fields:        fields, Mode: sdk.ModeHE,
		Model:  manifest.Model{Family: sdk.FamilyLogisticRegression, Hyperparameters: heHyper(hc)},
		Plugin: plugin.String(), Labels: labels,
		Outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: len(fields), MaxAbs: 16},
			Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}},
		Expires: time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339),
	}
}

var _ mat.Matrix = (*mat.Dense)(nil)
