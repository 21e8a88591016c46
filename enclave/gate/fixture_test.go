package gate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"insitu/enclave/audit"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/store"
	"insitu/enclave/store/storetest"
	"insitu/modeling/logreg"
	"insitu/plugins/sdk"
)

var (
	idsMu sync.Mutex
	ids   = map[string]*keys.Identity{}
)

// identity returns a test identity, created once per test binary (ML-DSA key generation is slow).
func identity(t testing.TB, role, name string) *keys.Identity {
	t.Helper()
	idsMu.Lock()
	defer idsMu.Unlock()
	if id, ok := ids[role+"/"+name]; ok {
		return id
	}
	id, err := keys.NewIdentity(role, name)
	if err != nil {
		t.Fatal(err)
	}
	ids[role+"/"+name] = id
	return id
}

type fixture struct {
	db       *store.DB
	faulty   *storetest.Faulty
	log      *audit.Log
	board    *job.Board
	gate     *Gate
	dir      string
	encl     *keys.Identity
	bank     *keys.Identity
	steward  *keys.Identity
	steward2 *keys.Identity
}

// newFixture opens a state database with two stewards (quorum 2) and a bank registered. The gate runs
// on a fault-injecting wrapper of the database.
func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	f := &fixture{
		db:       storetest.Open(t, audit.Migrations, job.Migrations, Migrations),
		dir:      t.TempDir(),
		encl:     identity(t, keys.RoleEnclave, "enclave"),
		bank:     identity(t, keys.RoleBank, "bank-a"),
		steward:  identity(t, keys.RoleSteward, "steward-1"),
		steward2: identity(t, keys.RoleSteward, "steward-2"),
	}
	f.faulty = storetest.NewFaulty(f.db)
	f.log = audit.New(f.db, f.encl, audit.Options{})
	f.board = job.New(f.db, f.log, job.Options{})
	f.gate = New(f.faulty, f.log, f.board, f.encl, f.dir, opts)
	ctx := context.Background()
	for _, id := range []*keys.Identity{f.bank, f.steward, f.steward2} {
		if _, err := f.board.AddParty(ctx, "admin", id.Public()); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.board.SetSetting(ctx, "admin", job.SettingQuorum, 2); err != nil {
		t.Fatal(err)
	}
	return f
}

// testFields are catalog fields of numeric type: the manifest's features.
var testFields = []string{
	"tax_arrears_history.arrears_amount_24m", "tax_arrears_history.arrears_count_24m", "tax_arrears_history.outstanding_arrears_amount",
	"tax_deferral.deferrals_24m", "shareholders_and_contributions.shareholder_count", "shareholders_and_contributions.paid_in_capital",
}

type jobSpec struct {
	mode    sdk.Mode
	family  string
	hp      map[string]any
	outputs manifest.Outputs
	detail  string // purpose detail, to make manifests distinct
	fields  int    // how many of testFields the manifest requests; all when 0
}

func defaultOutputs() manifest.Outputs {
	return manifest.Outputs{
		Weights: &manifest.WeightsOutput{MaxWeights: 16, MaxAbs: 10},
		Scores:  &manifest.ScoresOutput{},
		Metrics: &manifest.MetricsOutput{Names: []string{"auc", "ks", "log_loss"}},
	}
}

// succeededJob submits, approves (2 of 2) and runs a job to succeeded and returns it with its status.
func (f *fixture) succeededJob(t testing.TB, s jobSpec) (*job.Job, job.Status) {
	t.Helper()
	ctx := context.Background()
	if s.mode == "" {
		s.mode = sdk.ModePlaintextPublic
	}
	if s.family == "" {
		s.family = sdk.FamilyLogisticRegression
	}
	if s.outputs == (manifest.Outputs{}) {
		s.outputs = defaultOutputs()
	}
	m := &manifest.Manifest{Format: manifest.FormatV1, Bank: f.bank.Name, Purpose: "credit_approval", PurposeDetail: s.detail,
		Dataset: manifest.Dataset{Name: "sme-credit", Version: "3"}, Mode: s.mode,
		Model:   manifest.Model{Family: s.family, Hyperparameters: s.hp},
		Plugin:  "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Outputs: s.outputs, Expires: time.Now().AddDate(0, 1, 0).UTC().Format(time.RFC3339)}
	if s.mode == sdk.ModeHE || s.mode == sdk.ModeAggregate {
		m.Labels = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	}
	if s.mode == sdk.ModeAggregate {
		eps := 2.0
		m.Epsilon = &eps
	}
	if s.fields == 0 {
		s.fields = len(testFields)
	}
	for _, k := range testFields[:s.fields] {
		m.Fields = append(m.Fields, manifest.Field{Key: k})
	}
	signed, err := manifest.Sign(m, f.bank)
	if err != nil {
		t.Fatal(err)
	}
	j, err := f.board.Submit(ctx, signed.Marshal(), "test manifest")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*keys.Identity{f.steward, f.steward2} {
		sig, err := st.Sign(job.ApprovalMessage(j.Manifest), job.ApprovalContext)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.board.Approve(ctx, j.ID, st.Name, sig); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []func(context.Context, string) (*job.Job, error){f.board.Queue, f.board.Start} {
		if _, err := step(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if j, err = f.board.Succeed(ctx, j.ID, nil); err != nil {
		t.Fatal(err)
	}
	st, err := f.board.Status(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return j, st
}

// cohort is a synthetic evaluation cohort: d features uniform in [−1, 1], labels drawn from a
// logistic model.
func cohort(seed uint64, nTrain, nTest int) *Evaluation {
	r := rand.New(rand.NewPCG(seed, 7))
	truth := []float64{1.5, -1, 0.5, 0, 2, -0.7}
	d := len(truth)
	e := &Evaluation{TrainX: make([][]float64, d), TestX: make([][]float64, d)}
	for j := range d {
		e.Features = append(e.Features, testFields[j])
	}
	for i := range nTrain + nTest {
		z := -0.5
		x := make([]float64, d)
		for j := range d {
			x[j] = 2*r.Float64() - 1
			z += truth[j] * x[j]
		}
		y := 0.0
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y = 1
		}
		for j := range d {
			if i < nTrain {
				e.TrainX[j] = append(e.TrainX[j], x[j])
			} else {
				e.TestX[j] = append(e.TestX[j], x[j])
			}
		}
		if i < nTrain {
			e.TrainY = append(e.TrainY, y)
		} else {
			e.TestY = append(e.TestY, y)
		}
		e.Subjects = append(e.Subjects, fmt.Sprintf("S%05d", i))
	}
	return e
}

// optimum fits the reference model the gate fits, with λ.
func optimum(t testing.TB, e *Evaluation, lambda float64) *logreg.Model {
	t.Helper()
	n, d := len(e.TrainY), len(e.Features)
	data := make([]float64, n*d)
	for j := range d {
		for i := range n {
			data[i*d+j] = e.TrainX[j][i]
		}
	}
	m, err := logreg.Fit(logreg.Problem{X: mat.NewDense(n, d, data), Y: e.TrainY, Lambda: lambda}, logreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// request builds a release request for job j with the given output.
func (f *fixture) request(j *job.Job, st job.Status, e *Evaluation, out *sdk.Output) Request {
	return Request{Job: j, Approvals: st, Bank: f.bank.Public(),
		Dataset:             DatasetRef{Name: "sme-credit", Version: "3", ManifestHash: "sha256:" + sha256Hex([]byte("dataset manifest"))},
		AuthorizationDigest: "sha256:" + sha256Hex([]byte("authorizations")),
		Cohort:              CohortSummary{Total: len(e.TrainY) + len(e.TestY), Train: len(e.TrainY), Test: len(e.TestY)},
		Plugin:              j.Plugin, Run: RunSummary{Reason: "completed", SandboxMode: "strict", WallTime: 3 * time.Second},
		Output: out, Eval: e}
}

func weightsOutput(e *Evaluation, w []float64, b float64) *sdk.Output {
	return &sdk.Output{Weights: &sdk.Weights{Names: append([]string(nil), e.Features...), Values: w, Intercept: b}}
}
