package api_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"insitu/connectors/synthetic"
	"insitu/enclave"
	"insitu/enclave/api/client"
	"insitu/enclave/audit"
	"insitu/enclave/consent"
	"insitu/enclave/gate"
	"insitu/enclave/job"
	"insitu/enclave/keys"
	"insitu/enclave/sandbox"
	"insitu/enclave/store"
)

// submittedJob runs the first half of the end-to-end story over the real API: bank A uploads the
// reference plugin and its sealed labels and submits; both stewards approve (quorum 2 of 2); bank B
// is refused at every step. It returns bank A's client and the job.
func submittedJob(t *testing.T, f *fixture) (*client.Client, string) {
	t.Helper()
	ctx := context.Background()
	bankA, bankB := f.client(t, asBank), f.client(t, asOtherBank)
	s1, s2, admin := f.client(t, asSteward), f.client(t, "steward2"), f.client(t, asAdmin)
	if err := admin.SetSetting(ctx, job.SettingQuorum, 2); err != nil {
		t.Fatal(err)
	}
	plugin := f.uploadPlugin(t, bankA)
	li, err := bankA.UploadLabels(ctx, "labels.sealed", f.sealedLabels(t))
	if err != nil {
		t.Fatal(err)
	}
	if li.Bank != f.ids[asBank].Name || li.Subjects == 0 {
		t.Fatalf("labels: %+v", li)
	}
	m := f.manifest(t, f.ids[asBank].Name, plugin, li.Digest, "end to end")
	j, err := bankA.Submit(ctx, signed(t, m, f.ids[asBank]))
	if err != nil {
		t.Fatal(err)
	}
	if j.State != job.Submitted || j.ManifestHash != m.HashString() {
		t.Fatalf("submitted: %+v", j)
	}

	// Bank B sees nothing of bank A's and can do nothing to it.
	if js, err := bankB.ListJobs(ctx, ""); err != nil || len(js) != 0 {
		t.Fatalf("bank B lists %d jobs, %v", len(js), err)
	}
	_, err = bankB.ListJobs(ctx, f.ids[asBank].Name)
	wantErr(t, "bank B lists bank A's jobs", err, client.ErrForbidden)
	_, err = bankB.Job(ctx, j.ID)
	wantErr(t, "bank B shows A's job", err, client.ErrNotFound)
	_, err = bankB.Watch(ctx, j.ID, "", 0)
	wantErr(t, "bank B watches A's job", err, client.ErrNotFound)
	_, err = bankB.Cancel(ctx, j.ID, "mine now")
	wantErr(t, "bank B cancels A's job", err, client.ErrNotFound)
	_, err = bankB.Result(ctx, j.ID)
	wantErr(t, "bank B fetches A's result", err, client.ErrNotFound)
	_, err = bankB.Receipt(ctx, j.ID)
	wantErr(t, "bank B fetches A's receipt", err, client.ErrNotFound)
	_, err = bankB.Review(ctx, j.ID)
	wantErr(t, "bank B reviews A's job", err, client.ErrForbidden)
	sig, err := f.ids[asOtherBank].Sign(job.ApprovalMessage(m), job.ApprovalContext)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bankB.ApproveSigned(ctx, j.ID, sig)
	wantErr(t, "bank B approves A's job", err, client.ErrForbidden)
	_, err = bankB.Submit(ctx, signed(t, f.manifest(t, f.ids[asBank].Name, plugin, li.Digest, "as A"), f.ids[asBank]))
	wantErr(t, "bank B submits A's manifest", err, client.ErrForbidden)
	bm := f.manifest(t, f.ids[asOtherBank].Name, plugin, li.Digest, "A's labels")
	_, err = bankB.Submit(ctx, signed(t, bm, f.ids[asOtherBank]))
	wantErr(t, "bank B submits with A's labels", err, client.ErrInvalid)
	if ls, err := bankB.ListLabels(ctx); err != nil || len(ls) != 0 {
		t.Fatalf("bank B lists labels %v, %v", ls, err)
	}
	if ps, err := bankB.ListPlugins(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("bank B lists plugins %v, %v", ps, err)
	}
	if cs, err := bankB.ConsentCounts(ctx, ""); err != nil || slices.ContainsFunc(cs, func(c consent.BankCounts) bool { return c.Grantee != f.ids[asOtherBank].Name }) {
		t.Fatalf("bank B's consent counts %v, %v", cs, err)
	}
	_, err = bankB.ConsentCounts(ctx, f.ids[asBank].Name)
	wantErr(t, "bank B counts A's authorizations", err, client.ErrForbidden)
	// A steward cannot submit, even a bank's signed manifest.
	_, err = s1.Submit(ctx, signed(t, f.manifest(t, f.ids[asBank].Name, plugin, li.Digest, "by a steward"), f.ids[asBank]))
	wantErr(t, "steward submits", err, client.ErrForbidden)

	// The stewards review and approve, signing locally; 2 of 2.
	rv, err := s1.Review(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rv.Job.ManifestHash != m.HashString() || len(rv.Fields) != len(m.Fields) || rv.Status.Quorum != 2 || rv.Status.Stewards != 2 {
		t.Fatalf("review: %+v", rv)
	}
	st, err := s1.Approve(ctx, j.ID)
	if err != nil || st.Approvals != 1 || st.State != job.Submitted {
		t.Fatalf("first approval: %+v, %v", st, err)
	}
	st, err = s2.Approve(ctx, j.ID)
	if err != nil || st.Approvals != 2 || (st.State != job.Approved && st.State != job.Queued && st.State != job.Running) {
		t.Fatalf("second approval: %+v, %v", st, err)
	}
	// The audit log verifies through the API.
	rep, err := s1.VerifyAudit(ctx, nil)
	if err != nil || len(rep.Findings) != 0 {
		t.Fatalf("audit verify: %+v, %v", rep, err)
	}
	return bankA, j.ID
}

// TestEndToEndTwoBanksTwoStewards is the governance half of the end-to-end story, which needs no
// sandbox: submission, refusals of bank B, 2-of-2 approval, bank A watching its job become approved.
func TestEndToEndTwoBanksTwoStewards(t *testing.T) {
	f := newFixture(t, api0())
	bankA, id := submittedJob(t, f)
	j, err := bankA.Watch(context.Background(), id, job.Submitted, 5*time.Second)
	if err != nil || j.State != job.Approved {
		t.Fatalf("bank A watches: %+v, %v", j, err)
	}
}

// TestEndToEndRunAndRelease is the whole story: after the 2-of-2 approval the enclave's worker runs
// the reference plugin in the sandbox on the synthetic dataset, the output gate releases the result,
// bank A fetches and opens it and verifies the receipt, and bank B still gets nothing.
func TestEndToEndRunAndRelease(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("running a job starts a sandboxed plugin: it needs root on Linux (CI runs it so)")
	}
	f := newFixture(t, api0())
	bankA, id := submittedJob(t, f)
	// A copy of the state database from before the run: restoring it later is a rollback.
	before := dbCopy(t, f.e, "before.db")
	ctx, cancel := context.WithCancel(context.Background())
	worker := make(chan error, 1)
	go func() {
		worker <- f.e.RunApproved(ctx, enclave.WorkerOptions{RunOptions: enclave.RunOptions{
			Sandbox: sandbox.Spec{Mode: sandbox.AllowWeaker, UID: 65529, GID: 65529, CgroupName: "insitu-api-test",
				Limits: sandbox.Limits{WallClock: 2 * time.Minute}},
			TempDir: f.dir, Now: func() time.Time { return synthetic.DefaultAsOf }}})
	}()
	defer func() { cancel(); <-worker }()
	j, err := bankA.Job(ctx, id)
	for err == nil && j.State != job.Released && j.State != job.Failed && j.State != job.Cancelled && j.State != job.Rejected {
		from := j.State
		j, err = bankA.Watch(ctx, id, from, 30*time.Second)
		if err == nil && from == job.Succeeded && j.State == job.Succeeded {
			t.Fatalf("job %s succeeded and was not released within 30 s", id)
		}
	}
	if err != nil || j.State != job.Released {
		t.Fatalf("job ended %s (%s), %v", j.State, j.Reason, err)
	}
	res, err := bankA.Result(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var stewards []keys.PublicIdentity
	for _, s := range []string{asSteward, "steward2"} {
		stewards = append(stewards, f.ids[s].Public())
	}
	rc, err := gate.VerifyReceipt(res.Receipt, f.e.Identity.Public(), gate.VerifyOptions{Stewards: stewards})
	if err != nil {
		t.Fatal(err)
	}
	b, err := gate.OpenResult(res.Sealed, f.ids[asBank])
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(rc); err != nil {
		t.Fatal(err)
	}
	if rc.Job != id || rc.Bank != f.ids[asBank].Name || len(rc.Approvals) != 2 {
		t.Fatalf("receipt: job %s bank %s, %d approvals", rc.Job, rc.Bank, len(rc.Approvals))
	}
	// The audit log verifies through the API, anchored by the receipt's head.
	rep, err := f.client(t, asSteward).VerifyAudit(ctx, []audit.Head{rc.Audit})
	if err != nil || len(rep.Findings) != 0 || rep.Anchored < rc.Audit.Seq {
		t.Fatalf("audit verify with the receipt's head: %+v, %v", rep, err)
	}
	// The steward sees the receipt, not the result.
	if r, err := f.client(t, asSteward).Receipt(ctx, id); err != nil || string(r) != string(res.Receipt) {
		t.Fatalf("steward's receipt: %v", err)
	}
	_, err = f.client(t, asSteward).Result(ctx, id)
	wantErr(t, "steward fetches the result", err, client.ErrForbidden)
	_, err = f.client(t, asOtherBank).Result(ctx, id)
	wantErr(t, "bank B fetches the released result", err, client.ErrNotFound)
	if _, err := gate.OpenResult(res.Sealed, f.ids[asOtherBank]); err == nil {
		t.Fatal("bank B opens bank A's sealed result")
	}

	// A modified, a truncated and a rolled-back audit database each fail verification against the
	// enclave's key and the receipt's head.
	known := []audit.Head{rc.Audit}
	modified := dbCopy(t, f.e, "modified.db")
	tamper(t, modified, `DROP TRIGGER audit_records_no_update; UPDATE audit_records SET payload = '{"forged":true}' WHERE seq = 2`)
	wantFinding(t, "modified", modified, f.e.Identity.Public(), known, audit.ProblemModified)
	truncated := dbCopy(t, f.e, "truncated.db")
	tamper(t, truncated, `DROP TRIGGER audit_records_no_delete; DROP TRIGGER audit_checkpoints_no_delete;
		DELETE FROM audit_records WHERE seq >= `+strconv.FormatInt(rc.Audit.Seq, 10)+`;
		DELETE FROM audit_checkpoints WHERE seq >= `+strconv.FormatInt(rc.Audit.Seq, 10))
	wantFinding(t, "truncated", truncated, f.e.Identity.Public(), known, audit.ProblemRollback)
	wantFinding(t, "rolled back", before, f.e.Identity.Public(), known, audit.ProblemRollback)
	// The live database still verifies.
	if rep, err := f.e.VerifyAudit(context.Background(), known); err != nil || !rep.OK() {
		t.Fatalf("live audit log: %+v, %v", rep, err)
	}
}

// dbCopy writes a consistent copy of the enclave's state database (VACUUM INTO, so the WAL is
// included) and returns its path.
func dbCopy(t *testing.T, e *enclave.Enclave, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	db, err := sql.Open("sqlite", e.DB.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`VACUUM INTO ?`, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// tamper runs SQL on a copied database directly, as someone with the file could.
func tamper(t *testing.T, path, stmts string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range strings.Split(stmts, ";") {
		if strings.TrimSpace(st) == "" {
			continue
		}
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
}

// wantFinding verifies the audit log of the database at path and wants the given problem found.
func wantFinding(t *testing.T, what, path string, pub keys.PublicIdentity, known []audit.Head, want audit.Problem) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, path, enclave.Migrations()...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := audit.Verify(ctx, db, pub, known)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if rep.OK() || !slices.ContainsFunc(rep.Findings, func(f audit.Finding) bool { return f.Problem == want }) {
		t.Fatalf("%s audit database: findings %+v, want %s", what, rep.Findings, want)
	}
}
