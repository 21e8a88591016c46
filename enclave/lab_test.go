package enclave

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/connectors/synthetic"
	"insitu/enclave/cohort"
	"insitu/enclave/consent"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/he"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/pluginstore"
	"insitu/enclave/sandbox"
	"insitu/modeling/features"
	"insitu/plugins/sdk"
)

// binDir holds the reference plugins, built once per test binary when the tests run as root on Linux.
var binDir string

func TestMain(m *testing.M) {
	sandbox.MaybeRunTrampoline()
	code := func() int {
		if runtime.GOOS == "linux" && os.Geteuid() == 0 {
			var err error
			if binDir, err = os.MkdirTemp("", "insitu-enclave-bin-"); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(binDir)
			goTool, err := exec.LookPath("go")
			if err != nil {
				goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
			}
			cmd := exec.Command(goTool, "build", "-o", binDir+"/", "insitu/plugins/logreg", "insitu/plugins/helr", "insitu/plugins/testdata/smuggler",
				"insitu/plugins/logagg", "insitu/plugins/scorecard", "insitu/plugins/gbdt")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "go build the reference plugin: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// lab is an enclave holding the synthetic platform data, the bank's authorizations and the parties
// of a job: one bank and two stewards.
type lab struct {
	e        *Enclave
	dir      string // the test's folder, searchable by the plugin's uid
	synth    string
	sum      *synthetic.Summary
	dataset  *dataset.Manifest
	bank     *keys.Identity
	stewards []*keys.Identity
}

func newLab(t *testing.T, enterprises int) *lab {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "insitu-lab-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o711)
	l := &lab{dir: dir, synth: filepath.Join(dir, "synth")}
	if l.sum, err = synthetic.Generate(synthetic.Config{Enterprises: enterprises, Seed: 11}, l.synth); err != nil {
		t.Fatal(err)
	}
	init, err := datadir.Init(filepath.Join(dir, "dd"), filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := datadir.Open(init.Dir, keys.Source{File: filepath.Join(dir, "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	if l.e, err = OpenDataDir(ctx, d); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.e.Close() })
	// The lab's clock for grants and revocations is just before the synthetic data's date, at
	// which the tests check authorizations: whatever today's date, a revocation applies to them.
	l.e.Consent = consent.New(l.e.DB, l.e.Audit, consent.Options{Now: func() time.Time { return synthetic.DefaultAsOf.Add(-time.Minute) }})
	spec, mappings, err := connectors.LoadDatasetSpec(filepath.Join(l.synth, "dataset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if l.dataset, _, err = l.e.Ingest(ctx, "test", spec, mappings, dataset.IngestOptions{}); err != nil {
		t.Fatal(err)
	}
	af, err := os.Open(filepath.Join(l.synth, "authorizations.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	if _, err := l.e.Consent.Import(ctx, "test", "authorizations.csv", af); err != nil {
		t.Fatal(err)
	}
	if l.bank, err = keys.NewIdentity(keys.RoleBank, l.sum.Bank); err != nil {
		t.Fatal(err)
	}
	if _, err := l.e.Jobs.AddParty(ctx, "test", l.bank.Public()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"steward-a", "steward-b"} {
		s, err := keys.NewIdentity(keys.RoleSteward, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.e.Jobs.AddParty(ctx, "test", s.Public()); err != nil {
			t.Fatal(err)
		}
		l.stewards = append(l.stewards, s)
	}
	return l
}

// sealedLabels seals the synthetic bank's label file to the enclave.
func (l *lab) sealedLabels(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.synth, "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, _, err := cohort.SealLabels(l.e.Identity.Public(), data, "labels.csv")
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// fields picks n numeric feature columns of the dataset whose items need no more than the
// synthetic authorizations grant, with their default transforms.
func (l *lab) fields(n int) []manifest.Field {
	var out []manifest.Field
	for _, c := range cohort.FeatureColumns(l.dataset) {
		if c.Item == "custom" || (c.CatalogType != "int" && c.CatalogType != "float") {
			continue
		}
		out = append(out, manifest.Field{Key: c.Name})
		if len(out) == n {
			break
		}
	}
	return out
}

// heManifest is an HE logistic-regression job of the lab's bank: every field standardised and
// clipped, so that every input is bounded.
func (l *lab) heManifest(t *testing.T, plugin pluginstore.Digest, labels string) *manifest.Manifest {
	t.Helper()
	m := l.manifest(t, plugin, labels)
	m.Mode = sdk.ModeHE
	m.Model.Hyperparameters = map[string]any{"iterations": 6, "l2": 0.01}
	for i := range m.Fields {
		m.Fields[i].Steps = []features.Step{
			{Impute: &features.Impute{Strategy: features.ImputeMedian}},
			{Scale: &features.Scale{Method: features.ScaleStandard}},
			{Clip: &features.Clip{Min: ptr(-4.0), Max: ptr(4.0)}},
		}
	}
	m.Outputs = manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 64, MaxAbs: 16},
		Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// manifest is a plaintext-public logistic-regression job of the lab's bank.
func (l *lab) manifest(t *testing.T, plugin pluginstore.Digest, labels string) *manifest.Manifest {
	t.Helper()
	m := &manifest.Manifest{
		Format: manifest.FormatV1, Bank: l.bank.Name, Purpose: consent.PurposeModelDevelopment,
		Dataset: manifest.Dataset{Name: l.dataset.Name, Version: fmt.Sprint(l.dataset.Version)},
		Fields:  l.fields(6), Mode: sdk.ModePlaintextPublic,
		Model:  manifest.Model{Family: sdk.FamilyLogisticRegression, Hyperparameters: map[string]any{"lambda": 0.01}},
		Plugin: plugin.String(), Labels: labels,
		Outputs: manifest.Outputs{Weights: &manifest.WeightsOutput{MaxWeights: 64, MaxAbs: 100},
			Scores: &manifest.ScoresOutput{}, Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks"}}},
		Expires: time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// upload stores the reference plugin built as name (needs binDir) and the bank's sealed labels,
// and returns the plugin's digest and the labels' digest.
func (l *lab) upload(t *testing.T, name string) (pluginstore.Digest, string) {
	t.Helper()
	ctx := context.Background()
	bin, err := os.Open(filepath.Join(binDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	pinfo, _, err := l.e.UploadPlugin(ctx, bin, pluginstore.Meta{Name: name, Uploader: l.bank.Name})
	if err != nil {
		t.Fatal(err)
	}
	linfo, err := l.e.UploadLabels(ctx, l.bank.Name, "labels.csv", l.sealedLabels(t))
	if err != nil {
		t.Fatal(err)
	}
	return pinfo.Digest, linfo.Digest
}

// runOptions run the lab's jobs in the sandbox (development mode, a test uid and cgroup) at the
// synthetic data's date, HE jobs on params (the production set when nil).
func (l *lab) runOptions(params *he.Parameters) RunOptions {
	return RunOptions{
		Sandbox: sandbox.Spec{Mode: sandbox.AllowWeaker, UID: 65529, GID: 65529, CgroupName: "insitu-enclave-test",
			Limits: sandbox.Limits{WallClock: 3 * time.Minute}},
		TempDir:  l.dir,
		Now:      func() time.Time { return synthetic.DefaultAsOf },
		HEParams: params,
	}
}
