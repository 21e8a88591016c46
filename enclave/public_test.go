package enclave

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/ident"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
	"insitu/enclave/he"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// publicMapping maps the small public-like benchmark file of writePublicData: an opaque record id,
// three custom feature columns and the outcome, all declared by the mapping itself.
const publicMapping = `source: loans
provider: test_benchmarks
provider_name: A published benchmark (test data)
format: csv
path: loans.csv
csv:
  null: [""]
subject: {column: id, kind: opaque}
columns:
  - {column: income, field: custom.income}
  - {column: delays, field: custom.delays}
  - {column: region, field: custom.region}
  - {column: outcome, field: custom.outcome}
custom_fields:
  - {key: income, name_en: Income, type: float, min: 0, sensitivity: 1}
  - {key: delays, name_en: Payment delays, type: int, min: 0, max: 12, sensitivity: 1}
  - {key: region, name_en: Region, type: enum, values: [north, south, east], sensitivity: 1}
  - {key: outcome, name_en: Default, type: int, min: 0, max: 1, sensitivity: 1}
`

// writePublicData writes n rows of public-like loan data under dir (seeded, so every run has the
// same file) and returns the rows whose outcome is left empty: those have no label.
func writePublicData(t *testing.T, dir string, n int) (unlabelled int) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	var b strings.Builder
	b.WriteString("id,income,delays,region,outcome\n")
	regions := []string{"north", "south", "east"}
	for i := 1; i <= n; i++ {
		income := math.Exp(10 + 0.5*r.NormFloat64())
		delays := min(12, int(math.Abs(r.NormFloat64())*2))
		region := r.IntN(3)
		z := -1.2 + 0.9*float64(delays) - 0.8*(math.Log(income)-10)/0.5 + 0.4*float64(region)
		y := 0
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y = 1
		}
		inc := fmt.Sprintf("%.2f", income)
		if i%37 == 0 {
			inc = ""
		}
		out := fmt.Sprint(y)
		if i%50 == 0 {
			out, unlabelled = "", unlabelled+1
		}
		fmt.Fprintf(&b, "%d,%s,%d,%s,%s\n", i, inc, delays, regions[region], out)
	}
	if err := os.WriteFile(filepath.Join(dir, "loans.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return unlabelled
}

// ingestPublic ingests n rows of public-like data as a dataset of the given class and returns its
// manifest and the number of rows without an outcome.
func (l *lab) ingestPublic(t *testing.T, name, class string, n int) (*dataset.Manifest, int) {
	t.Helper()
	dir := filepath.Join(l.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unlabelled := writePublicData(t, dir, n)
	spec := fmt.Sprintf("dataset: %s\nclass: %s\nsubject: opaque\nmappings: [mapping.yaml]\n", name, class)
	for file, body := range map[string]string{"dataset.yaml": spec, "mapping.yaml": publicMapping} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, maps, err := connectors.LoadDatasetSpec(filepath.Join(dir, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := l.e.Ingest(context.Background(), "test", s, maps,
		dataset.IngestOptions{Inputs: map[string]string{maps[0].Source: filepath.Join(dir, "loans.csv")}})
	if err != nil {
		t.Fatal(err)
	}
	return m, unlabelled
}

// publicManifest is a job of party on dataset dm that takes its outcome from the dataset's
// custom.outcome column: every field a custom column with its steps written out.
func publicManifest(t *testing.T, party string, dm *dataset.Manifest, mode sdk.Mode, plugin pluginstore.Digest) *manifest.Manifest {
	t.Helper()
	m := &manifest.Manifest{
		Format: manifest.FormatV1, Bank: party, Purpose: consent.PurposeModelDevelopment,
		PurposeDetail: "benchmark on published data",
		Dataset:       manifest.Dataset{Name: dm.Name, Version: fmt.Sprint(dm.Version)},
		Fields: []manifest.Field{
			{Key: "custom.income", Name: "income", Steps: []features.Step{
				{Impute: &features.Impute{Strategy: features.ImputeMedian}},
				{Scale: &features.Scale{Method: features.ScaleStandard}},
				{Clip: &features.Clip{Min: ptr(-4.0), Max: ptr(4.0)}}}},
			{Key: "custom.delays", Name: "delays", Steps: []features.Step{
				{Scale: &features.Scale{Method: features.ScaleStandard}},
				{Clip: &features.Clip{Min: ptr(-4.0), Max: ptr(4.0)}}}},
			{Key: "custom.region", Name: "region", Steps: []features.Step{
				{Impute: &features.Impute{Strategy: features.ImputeMostFrequent}},
				{OneHot: &features.OneHot{Categories: []string{"north", "south", "east"}, Unknown: features.UnknownIgnore}}}},
		},
		Mode:        mode,
		Model:       manifest.Model{Family: sdk.FamilyLogisticRegression, Hyperparameters: map[string]any{"lambda": 0.01}},
		Plugin:      plugin.String(),
		LabelColumn: "custom.outcome",
		Outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 16, MaxAbs: 100},
			Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}},
		Expires: time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
	}
	if mode == sdk.ModeHE {
		m.Model.Hyperparameters = map[string]any{"iterations": 6, "l2": 0.01}
		m.Outputs.Weights.MaxAbs = 16
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// researcher registers a researcher party and makes it the lab's requesting party.
func (l *lab) researcher(t *testing.T) {
	t.Helper()
	res, err := keys.NewIdentity(keys.RoleResearcher, "lab-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.e.Jobs.AddParty(context.Background(), "test", res.Public()); err != nil {
		t.Fatal(err)
	}
	l.bank = res
}

// TestPublicDatasetCohort: on a dataset of class public the cohort is every subject its outcome
// column labels, no authorization applies (the consent registry holds none for its subjects), the
// steward's review says so, and the authorization digest records the query marked public.
func TestPublicDatasetCohort(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 200)
	l.researcher(t)
	dm, unlabelled := l.ingestPublic(t, "public-loans", connectors.ClassPublic, 1000)
	m := publicManifest(t, l.bank.Name, dm, sdk.ModeHE, pluginstore.Digest{9})
	at := time.Now()
	c, err := l.e.PrepareCohort(ctx, "job-p", m, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1000 - unlabelled; c.Labelled != want || c.Matched != want || len(c.Subjects) != want || len(c.Lost) != 0 || !c.Public {
		t.Fatalf("labelled %d matched %d kept %d lost %v public %v, want %d", c.Labelled, c.Matched, len(c.Subjects), c.Lost, c.Public, want)
	}
	if got := len(c.Features); got != 5 {
		t.Fatalf("features %v, want income, delays and three regions", c.Features)
	}
	pos := 0.0
	for _, y := range append(slices.Clone(c.YTrain), c.YTest...) {
		pos += y
	}
	if pos == 0 || int(pos) == len(c.Subjects) {
		t.Fatalf("%v positives of %d: the outcome column was not read", pos, len(c.Subjects))
	}
	q := consent.CohortQuery{IDType: ident.KindOpaque, Grantee: l.bank.Name, Purpose: m.Purpose, Items: Items(m), At: at}
	if len(q.Items) != 0 {
		t.Fatalf("custom fields counted as catalog items: %v", q.Items)
	}
	if want := authorizationDigest(q, c.Subjects, true); c.AuthorizationDigest != want || want == authorizationDigest(q, c.Subjects, false) {
		t.Fatalf("authorization digest %s, want %s (and unlike a consent decision's)", c.AuthorizationDigest, want)
	}

	signed, err := manifest.Sign(m, l.bank)
	if err != nil {
		t.Fatal(err)
	}
	j, err := l.e.Jobs.Submit(ctx, signed.Marshal(), "job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rv, err := l.e.Review(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rc := rv.Cohort; rc == nil || rc.Authorization != PublicAuthorization || rc.Kept != len(c.Subjects) || rc.Labelled != rc.Kept || len(rc.Lost) != 0 {
		t.Fatalf("review cohort %+v (%s)", rv.Cohort, rv.CohortError)
	}
	for _, f := range rv.Fields {
		if f.Item != "custom" || f.Sharing != "custom" || f.Sensitivity != "confidential" || f.NeedsAuthorization {
			t.Fatalf("review field %+v", f)
		}
	}
}

// TestPublicDatasetJob: a researcher submits a job on a public dataset ingested here, with custom
// fields and the outcome column; two stewards approve it; it runs in the sandbox and its outputs
// leave through the output gate, sealed to the researcher, with a receipt that verifies.
func TestPublicDatasetJob(t *testing.T) {
	if binDir == "" {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	params, err := he.NewParameters(testInsecureLogN11)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode   sdk.Mode
		plugin string
	}{{sdk.ModeHE, "helr"}, {sdk.ModePlaintextPublic, "logreg"}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			ctx := context.Background()
			l := newLab(t, 200)
			l.researcher(t)
			dm, _ := l.ingestPublic(t, "public-loans", connectors.ClassPublic, 1000)
			bin, err := os.Open(filepath.Join(binDir, tc.plugin))
			if err != nil {
				t.Fatal(err)
			}
			pinfo, _, err := l.e.UploadPlugin(ctx, bin, pluginstore.Meta{Name: tc.plugin, Uploader: l.bank.Name})
			bin.Close()
			if err != nil {
				t.Fatal(err)
			}
			id := submitAndApprove(t, l, publicManifest(t, l.bank.Name, dm, tc.mode, pinfo.Digest))
			rep, err := l.e.RunJob(ctx, id, l.runOptions(&params))
			if err != nil {
				t.Fatal(err)
			}
			if rep.Job.State != job.Released {
				t.Fatalf("job ended %s: %s (run: %v, refusal: %v)", rep.Job.State, rep.Job.Reason, rep.Run, rep.Refusal)
			}
			if !rep.Cohort.Public || len(rep.Cohort.Lost) != 0 {
				t.Fatalf("cohort public %v, lost %v", rep.Cohort.Public, rep.Cohort.Lost)
			}
			if tc.mode == sdk.ModePlaintextPublic && (rep.Run.Input == nil || rep.Run.Input.Rows != rep.Cohort.Train) {
				t.Fatalf("the plugin got %v rows, the training part has %d", rep.Run.Input, rep.Cohort.Train)
			}
			if tc.mode == sdk.ModeHE && (rep.Run.HE == nil || rep.Run.HE.Refreshes == 0) {
				t.Fatalf("he run %v", rep.Run)
			}
			b := checkReleased(t, l, rep)
			if len(b.Weights.Values) != len(rep.Cohort.Features) {
				t.Fatalf("%d weights for %d features", len(b.Weights.Values), len(rep.Cohort.Features))
			}
		})
	}
}

// TestLabelColumnAndCustomFieldsRefused: the outcome may come from the dataset only on a public
// dataset, custom fields never run on a platform dataset, a custom field's steps must fit its
// column, and a manifest naming both labels and label_column does not parse.
func TestLabelColumnAndCustomFieldsRefused(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, 600)
	labels, err := l.e.UploadLabels(ctx, l.bank.Name, "labels.csv", l.sealedLabels(t))
	if err != nil {
		t.Fatal(err)
	}
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(l.synth, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec.Dataset, spec.Class = "platform_copy", connectors.ClassPlatform
	pm, _, err := l.e.Ingest(ctx, "test", spec, mappings, dataset.IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	onPlatform := func(m *manifest.Manifest) *manifest.Manifest {
		m.Dataset = manifest.Dataset{Name: pm.Name, Version: fmt.Sprint(pm.Version)}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// A bank's job with label_column on a platform dataset, and on a synthetic one.
	outcome := "legal_representative.legal_rep_changes_36m"
	for _, m := range []*manifest.Manifest{onPlatform(l.manifest(t, pluginstore.Digest{5}, "")), l.manifest(t, pluginstore.Digest{5}, "")} {
		m.LabelColumn = outcome
		m.Fields = slices.DeleteFunc(m.Fields, func(f manifest.Field) bool { return f.Key == outcome })
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		rep, err := l.e.RunJob(ctx, submitAndApprove(t, l, m), RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("label_column %s takes the outcome from the dataset, which only a dataset of class public may give; dataset %s is of class", outcome, m.Dataset.Name)
		if rep.Job.State != job.Failed || !strings.Contains(rep.Job.Reason, want) || rep.Run != nil {
			t.Fatalf("label_column on %s: %s %q", m.Dataset.Name, rep.Job.State, rep.Job.Reason)
		}
	}

	// A custom field adds no authorization need on the synthetic dataset and is refused on the
	// platform copy.
	industry := manifest.Field{Key: "custom.industry", Steps: []features.Step{
		{Impute: &features.Impute{Strategy: features.ImputeMostFrequent}}, {OneHot: &features.OneHot{MaxCategories: 8}}}}
	base := l.manifest(t, pluginstore.Digest{6}, labels.Digest)
	withCustom := l.manifest(t, pluginstore.Digest{6}, labels.Digest)
	withCustom.Fields = append(withCustom.Fields, industry)
	if err := withCustom.Validate(); err != nil {
		t.Fatal(err)
	}
	open, err := l.e.OpenJobLabels(ctx, l.bank.Name, labels.Digest)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := l.e.PrepareCohort(ctx, "job-a", base, open, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.e.PrepareCohort(ctx, "job-b", withCustom, open, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c1.Subjects, c2.Subjects) || c2.Public || len(c2.Features) <= len(c1.Features) {
		t.Fatalf("with custom.industry the cohort has %d subjects and %d features, without %d and %d",
			len(c2.Subjects), len(c2.Features), len(c1.Subjects), len(c1.Features))
	}
	_, err = l.e.PrepareCohort(ctx, "job-c", onPlatform(withCustom), open, time.Now())
	var pe *PrepareError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "custom.industry is a custom column of platform dataset platform_copy") {
		t.Fatalf("custom field on a platform dataset: %v", err)
	}
	// A custom field whose steps do not fit its column: registration_date is a date.
	badSteps := l.manifest(t, pluginstore.Digest{6}, labels.Digest)
	badSteps.Fields = append(badSteps.Fields, manifest.Field{Key: "custom.registration_date", Steps: []features.Step{
		{Impute: &features.Impute{Strategy: features.ImputeMedian}}, {Scale: &features.Scale{Method: features.ScaleStandard}}}})
	if err := badSteps.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err = l.e.PrepareCohort(ctx, "job-d", badSteps, open, time.Now())
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, fmt.Sprintf("fields[%d].steps", len(badSteps.Fields)-1)) {
		t.Fatalf("numeric steps on a date column: %v", err)
	}

	// Both labels and label_column: refused at parse, with the path.
	both := l.manifest(t, pluginstore.Digest{6}, labels.Digest)
	both.LabelColumn = "custom.outcome"
	_, err = manifest.Parse(both.Canonical(), "job.json")
	var me *manifest.Error
	if !errors.As(err, &me) || me.Path != "label_column" || me.Rule != manifest.RuleLabels || !strings.Contains(err.Error(), "job.json") {
		t.Fatalf("labels and label_column: %v", err)
	}
}
