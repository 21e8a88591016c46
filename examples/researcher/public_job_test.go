package researcher_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"insitu/connectors"
	"insitu/enclave"
	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/gate"
	"insitu/enclave/he"
	"insitu/enclave/job"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/sandbox"
)

// TestMain lets the test binary serve as the sandbox's trampoline when a job runs.
func TestMain(m *testing.M) {
	sandbox.MaybeRunTrampoline()
	os.Exit(m.Run())
}

// writeTaiwanLike writes n rows in the layout of the Taiwan credit-card file (the columns
// examples/public-taiwan/mapping.yaml maps), with an outcome that depends on the repayment status,
// the credit limit and the payments, so that the walkthrough runs without the published file.
func writeTaiwanLike(t *testing.T, path string, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(2005, 10))
	var b strings.Builder
	b.WriteString(`"ID","LIMIT_BAL","SEX","EDUCATION","MARRIAGE","AGE","PAY_0","PAY_2","PAY_3","PAY_4","PAY_5","PAY_6",` +
		`"BILL_AMT1","BILL_AMT2","BILL_AMT3","BILL_AMT4","BILL_AMT5","BILL_AMT6",` +
		`"PAY_AMT1","PAY_AMT2","PAY_AMT3","PAY_AMT4","PAY_AMT5","PAY_AMT6","default.payment.next.month"` + "\n")
	for i := 1; i <= n; i++ {
		limit := 10000 * (1 + r.IntN(50))
		status := min(8, max(-2, int(math.Round(r.NormFloat64()*1.2))))
		fmt.Fprintf(&b, "%d,%d,%d,%d,%d,%d", i, limit, 1+r.IntN(2), 1+r.IntN(4), 1+r.IntN(3), 21+r.IntN(45))
		for k := 0; k < 6; k++ {
			fmt.Fprintf(&b, ",%d", min(8, max(-2, status+r.IntN(3)-1)))
		}
		bill := float64(limit) * r.Float64()
		for k := 0; k < 6; k++ {
			fmt.Fprintf(&b, ",%d", int(bill*(0.8+0.4*r.Float64())))
		}
		paid := bill * 0.1 * r.Float64()
		for k := 0; k < 6; k++ {
			fmt.Fprintf(&b, ",%d", int(paid*(0.5+r.Float64())))
		}
		z := -1.4 + 0.9*float64(status) - 0.4*math.Log(float64(limit)/100000) - 0.3*paid/(bill+1)*10
		y := 0
		if r.Float64() < 1/(1+math.Exp(-z)) {
			y = 1
		}
		fmt.Fprintf(&b, ",%d\n", y)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// publicEnclave is the platform's side of the walkthrough: an enclave holding the Taiwan data
// (or data shaped like it) as the dataset public-taiwan of class public, the same rows as a
// platform dataset, the researcher and a steward registered, and the API serving on loopback.
type publicEnclave struct {
	e                   *enclave.Enclave
	dir, url, fp        string
	researcher, steward *keys.Identity
}

func newPublicEnclave(t *testing.T) *publicEnclave {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "insitu-researcher-") // short, and searchable by the plugin's uid
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o711)
	p := &publicEnclave{dir: dir}
	// insitu init --data-dir $W/enclave --key-file $W/master.key
	in, err := datadir.Init(filepath.Join(dir, "enclave"), filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if p.e, err = enclave.Open(ctx, in.Dir, keys.Source{File: filepath.Join(dir, "master.key")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.e.Close() })
	// insitu ingest --spec examples/public-taiwan/dataset.yaml --input UCI_Credit_Card.csv
	data := filepath.Join(dir, "UCI_Credit_Card.csv")
	writeTaiwanLike(t, data, 2000)
	spec, maps, err := connectors.LoadDatasetSpec("../public-taiwan/dataset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts := dataset.IngestOptions{Inputs: map[string]string{maps[0].Source: data}}
	if dm, _, err := p.e.Ingest(ctx, "steward-1", spec, maps, opts); err != nil || dm.Class != connectors.ClassPublic {
		t.Fatalf("ingest: %v, %v", dm, err)
	}
	// The same rows as platform data, which a researcher may not touch.
	spec.Dataset, spec.Class = "taiwan-as-platform", connectors.ClassPlatform
	if _, _, err := p.e.Ingest(ctx, "steward-1", spec, maps, opts); err != nil {
		t.Fatal(err)
	}
	// insitu keys new --role researcher --name lab-1 --out lab-1.key; insitu party add lab-1.pub.json
	if p.researcher, err = keys.NewIdentity(keys.RoleResearcher, "lab-1"); err != nil {
		t.Fatal(err)
	}
	if p.steward, err = keys.NewIdentity(keys.RoleSteward, "steward-1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []*keys.Identity{p.researcher, p.steward} {
		if _, err := p.e.Jobs.AddParty(ctx, "admin", id.Public()); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.e.Jobs.SetSetting(ctx, "admin", job.SettingQuorum, 1); err != nil {
		t.Fatal(err)
	}
	// insitu serve --data-dir $W/enclave --listen 127.0.0.1:8443
	cert, fp, err := api.LoadOrCreateCert(p.e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url, p.fp = "https://"+ln.Addr().String(), fp
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.New(p.e, api.Options{}).Serve(sctx, ln, cert, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return p
}

// client is `insitu login --enclave URL --fingerprint FP --key NAME.key` for id.
func (p *publicEnclave) client(t *testing.T, id *keys.Identity) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URL: p.url, Fingerprint: p.fp, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// readManifest reads taiwan-he.yaml as the researcher edits it before signing: the plugin's
// digest, an expiry a day ahead, and the dataset named.
func readManifest(t *testing.T, plugin, datasetName string) *manifest.Manifest {
	t.Helper()
	data, err := os.ReadFile("taiwan-he.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`(?m)^plugin: .*$`).ReplaceAllString(string(data), "plugin: "+plugin)
	s = regexp.MustCompile(`(?m)^expires: .*$`).ReplaceAllString(s, "expires: "+time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339))
	s = strings.Replace(s, "name: public-taiwan,", "name: "+datasetName+",", 1)
	m, err := manifest.Parse([]byte(s), "taiwan-he.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// buildHELR builds plugins/helr as a static binary, as `CGO_ENABLED=0 go build ./plugins/helr` does.
func buildHELR(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "helr")
	cmd := exec.Command(goTool, "build", "-o", out, "insitu/plugins/helr")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build plugins/helr: %v\n%s", err, b)
	}
	return out
}

// TestPublicJobThroughAPI runs README.md's job on a public dataset through the API: the
// researcher lists the datasets it may use, uploads plugins/helr, signs and submits taiwan-he.yaml;
// the steward reviews it (no authorization applies to public data) and approves it; the enclave's
// worker runs it in the sandbox (root on Linux only); the researcher watches it, fetches the
// sealed result and the receipt, opens the one and verifies the other. A researcher's job on a
// platform dataset is refused at submission.
func TestPublicJobThroughAPI(t *testing.T) {
	ctx := context.Background()
	p := newPublicEnclave(t)
	rc, sc := p.client(t, p.researcher), p.client(t, p.steward)

	// GET /v1/datasets: a researcher sees the public and synthetic datasets only.
	ds, err := rc.Datasets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Name != "public-taiwan" || ds[0].Class != connectors.ClassPublic {
		t.Fatalf("the researcher sees %+v", ds)
	}

	// insitu plugin upload helr (the digest goes into taiwan-he.yaml)
	root := runtime.GOOS == "linux" && os.Geteuid() == 0 && !testing.Short()
	plugin := "sha256:" + strings.Repeat("0", 64)
	if root {
		f, err := os.Open(buildHELR(t, p.dir))
		if err != nil {
			t.Fatal(err)
		}
		up, err := rc.UploadPlugin(ctx, f, "helr")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		plugin = up.Digest
	}

	// insitu job sign taiwan-he.yaml --key lab-1.key --out taiwan-he.signed; insitu job submit taiwan-he.signed
	m := readManifest(t, plugin, "public-taiwan")
	signed, err := manifest.Sign(m, p.researcher)
	if err != nil {
		t.Fatal(err)
	}
	j, err := rc.Submit(ctx, signed.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	// The same job on the platform copy of the data is refused at submission.
	other, err := manifest.Sign(readManifest(t, plugin, "taiwan-as-platform"), p.researcher)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Submit(ctx, other.Marshal()); !errors.Is(err, client.ErrForbidden) || !strings.Contains(err.Error(), "public and synthetic datasets only") {
		t.Fatalf("a researcher's job on a platform dataset: %v", err)
	}

	// insitu job show ID (as the steward): the cohort is every labelled record, and no
	// authorization applies to published data.
	rv, err := sc.Review(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c := rv.Cohort; c == nil || c.Authorization != enclave.PublicAuthorization || c.Kept != 2000 || len(c.Lost) != 0 {
		t.Fatalf("review cohort %+v (%s)", rv.Cohort, rv.CohortError)
	}
	for _, f := range rv.Fields {
		if f.Item != "custom" || f.Sensitivity != "confidential" {
			t.Fatalf("review field %+v", f)
		}
	}
	// insitu job approve ID --key steward-1.key
	if st, err := sc.Approve(ctx, j.ID); err != nil || st.State != job.Approved {
		t.Fatalf("approve: %+v, %v", st, err)
	}
	if !root {
		t.Log("running the job starts a sandboxed plugin: it needs root on Linux; the walkthrough stops at the approval")
		return
	}

	// The enclave's worker (insitu serve runs it) picks the approved job up.
	params, err := he.NewParameters(testInsecureLogN11)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go p.e.RunApproved(wctx, enclave.WorkerOptions{Poll: 100 * time.Millisecond, RunOptions: enclave.RunOptions{
		Sandbox: sandbox.Spec{Mode: sandbox.AllowWeaker, UID: 65528, GID: 65528, CgroupName: "insitu-researcher-test",
			Limits: sandbox.Limits{WallClock: 3 * time.Minute}},
		TempDir: p.dir, HEParams: &params}})

	// insitu job watch ID
	deadline := time.Now().Add(4 * time.Minute)
	for j.State != job.Released && j.State != job.Failed && time.Now().Before(deadline) {
		if j, err = rc.Watch(ctx, j.ID, j.State, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if j.State != job.Released {
		t.Fatalf("job %s: %s %s", j.ID, j.State, j.Reason)
	}
	// insitu job result ID --out taiwan; insitu receipt verify taiwan.receipt.json --enclave enclave.pub.json
	//   --steward steward-1.pub.json --result taiwan.sealed --key lab-1.key
	res, err := rc.Result(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gate.VerifyReceipt(res.Receipt, p.e.Identity.Public(), gate.VerifyOptions{Stewards: []keys.PublicIdentity{p.steward.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := gate.OpenResult(res.Sealed, p.researcher)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(r); err != nil {
		t.Fatal(err)
	}
	if b.Gate.Result != gate.VerdictVerified || b.Weights == nil || len(b.Weights.Values) != len(m.Fields) || b.Metrics["auc"] < 0.6 {
		t.Fatalf("released: verdict %s, weights %+v, metrics %v", b.Gate.Result, b.Weights, b.Metrics)
	}
	t.Logf("released to %s: %d weights, held-out AUC %.4f KS %.4f, %d subjects", b.Bank, len(b.Weights.Values), b.Metrics["auc"], b.Metrics["ks"], r.Cohort.Total)
}
