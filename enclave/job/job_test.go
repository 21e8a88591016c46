package job

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
	"insitu/enclave/store"
)

// fataler is the part of testing.TB the helpers use, so that the kill test's child can use them.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

var (
	idsOnce sync.Once
	ids     map[string]*keys.Identity
)

// identity returns a test identity of the given role and name, created once per test binary.
func identity(t testing.TB, role, name string) *keys.Identity {
	t.Helper()
	idsOnce.Do(func() { ids = map[string]*keys.Identity{} })
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

type env struct {
	db    *store.DB
	log   *audit.Log
	board *Board
	encl  *keys.Identity
}

func openEnv(t testing.TB, path string, encl *keys.Identity) *env {
	t.Helper()
	e := openEnvNoCleanup(t, path, encl)
	t.Cleanup(func() { e.db.Close() })
	return e
}

func openEnvNoCleanup(t fataler, path string, encl *keys.Identity) *env {
	db, err := store.Open(context.Background(), path, audit.Migrations, Migrations)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(db, encl, audit.Options{})
	return &env{db: db, log: log, board: New(db, log, Options{}), encl: encl}
}

func auditVerify(ctx context.Context, e *env, pub keys.PublicIdentity) (*audit.Report, error) {
	return audit.Verify(ctx, e.db, pub, nil)
}

func newEnv(t testing.TB) *env {
	return openEnv(t, filepath.Join(t.TempDir(), "state.db"), identity(t, keys.RoleEnclave, "enclave"))
}

// signedManifest returns the test manifest of bank with purpose detail detail, signed by signer
// (which need not be the bank: Sign's check is bypassed).
func signedManifest(t fataler, bank, detail string, signer *keys.Identity) (*manifest.Manifest, []byte) {
	t.Helper()
	data, err := os.ReadFile("manifest/testdata/good-plaintext-public.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`(?m)^bank: .*$`).ReplaceAllString(string(data), "bank: "+bank)
	s = regexp.MustCompile(`(?m)^purpose_detail: .*$`).ReplaceAllString(s, "purpose_detail: "+detail)
	s = regexp.MustCompile(`(?m)^expires: .*$`).ReplaceAllString(s, "expires: "+time.Now().AddDate(0, 2, 0).UTC().Format(time.RFC3339))
	m, err := manifest.Parse([]byte(s), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(m.Canonical(), manifest.SignatureContext)
	if err != nil {
		t.Fatal(err)
	}
	return m, (&manifest.Signed{Manifest: m, Signer: signer.Public().Fingerprint(), Signature: sig}).Marshal()
}

func (e *env) register(t testing.TB, ids ...*keys.Identity) {
	t.Helper()
	for _, id := range ids {
		if _, err := e.board.AddParty(context.Background(), "admin", id.Public()); err != nil {
			t.Fatal(err)
		}
	}
}

func approve(t testing.TB, b *Board, j *Job, st *keys.Identity) (Status, error) {
	t.Helper()
	sig, err := st.Sign(ApprovalMessage(j.Manifest), ApprovalContext)
	if err != nil {
		t.Fatal(err)
	}
	return b.Approve(context.Background(), j.ID, st.Name, sig)
}

func (e *env) verifyAudit(t testing.TB) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), e.db, e.encl.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("audit log fails verification: %v", rep.Err())
	}
	return rep
}

func TestParties(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank := identity(t, keys.RoleBank, "bank-a")
	e.register(t, bank, identity(t, keys.RoleSteward, "steward-1"))
	if _, err := e.board.AddParty(ctx, "admin", bank.Public()); !errors.Is(err, ErrParty) {
		t.Fatalf("registered twice: %v", err)
	}
	if _, err := e.board.AddParty(ctx, "admin", e.encl.Public()); !errors.Is(err, ErrParty) {
		t.Fatalf("registered the enclave: %v", err)
	}
	ps, err := e.board.ListParties(ctx)
	if err != nil || len(ps) != 2 || ps[0].Name != "bank-a" || ps[1].Role != keys.RoleSteward || ps[0].Fingerprint != bank.Public().Fingerprint() {
		t.Fatalf("list: %+v %v", ps, err)
	}
	if err := e.board.RemoveParty(ctx, "admin", "bank-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.board.Party(ctx, "bank-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed party still there: %v", err)
	}
	if err := e.board.RemoveParty(ctx, "admin", "bank-a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed twice: %v", err)
	}
	e.register(t, bank) // a removed name may be registered again
	if p, err := e.board.Party(ctx, "bank-a"); err != nil || p.Role != keys.RoleBank {
		t.Fatalf("re-added: %+v %v", p, err)
	}
	if rep := e.verifyAudit(t); rep.Records != 4 {
		t.Fatalf("audit records: %d, want 4", rep.Records)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bankA, bankB := identity(t, keys.RoleBank, "bank-a"), identity(t, keys.RoleBank, "bank-b")
	s1, s2 := identity(t, keys.RoleSteward, "steward-1"), identity(t, keys.RoleSteward, "steward-2")
	unreg := identity(t, keys.RoleSteward, "steward-x")
	e.register(t, bankA, bankB, s1, s2)
	if err := e.board.SetSetting(ctx, "admin", SettingQuorum, 2); err != nil {
		t.Fatal(err)
	}

	// A manifest naming bank-a signed by bank-b is refused, and so is an unregistered bank's.
	if _, data := signedManifest(t, "bank-a", "forged", bankB); true {
		if _, err := e.board.Submit(ctx, data, "forged"); !errors.Is(err, manifest.ErrSignature) {
			t.Fatalf("forged manifest: %v", err)
		}
	}
	if _, data := signedManifest(t, "bank-c", "unknown", identity(t, keys.RoleBank, "bank-c")); true {
		if _, err := e.board.Submit(ctx, data, "c"); !errors.Is(err, ErrParty) {
			t.Fatalf("unregistered bank: %v", err)
		}
	}

	_, data := signedManifest(t, "bank-a", "first", bankA)
	j, err := e.board.Submit(ctx, data, "first")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != Submitted || !strings.HasPrefix(j.ID, "job-") {
		t.Fatalf("submitted: %+v", j)
	}
	if _, err := e.board.Submit(ctx, data, "again"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("resubmission: %v", err)
	}
	// Only stewards, registered, with a valid signature.
	if _, err := approve(t, e.board, j, bankA); !errors.Is(err, ErrParty) {
		t.Fatalf("bank approved: %v", err)
	}
	if _, err := approve(t, e.board, j, unreg); !errors.Is(err, ErrParty) {
		t.Fatalf("unregistered steward approved: %v", err)
	}
	if _, err := e.board.Approve(ctx, j.ID, "steward-1", make([]byte, 10)); !errors.Is(err, ErrSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	// steward-1 twice counts once.
	for range 2 {
		st, err := approve(t, e.board, j, s1)
		if err != nil || st.State != Submitted || st.Approvals != 1 || st.Quorum != 2 || st.Stewards != 2 {
			t.Fatalf("first approval: %+v %v", st, err)
		}
	}
	st, err := approve(t, e.board, j, s2)
	if err != nil || st.State != Approved || st.Approvals != 2 {
		t.Fatalf("second approval: %+v %v", st, err)
	}
	if _, err := approve(t, e.board, j, s2); !errors.Is(err, ErrTransition) {
		t.Fatalf("approved an approved job: %v", err)
	}

	// Illegal transitions name the job and both states.
	_, err = e.board.Succeed(ctx, j.ID, nil)
	var te *TransitionError
	if !errors.As(err, &te) || te.From != Approved || te.To != Succeeded || !strings.Contains(err.Error(), j.ID) ||
		!strings.Contains(err.Error(), "is approved and cannot become succeeded") {
		t.Fatalf("illegal transition: %v", err)
	}
	for _, step := range []func() (*Job, error){
		func() (*Job, error) { return e.board.Queue(ctx, j.ID) },
		func() (*Job, error) { return e.board.Start(ctx, j.ID) },
		func() (*Job, error) { return e.board.Succeed(ctx, j.ID, map[string]any{"rows": 120}) },
		func() (*Job, error) { return e.board.Release(ctx, j.ID, map[string]any{"outputs": "sha256:00"}) },
	} {
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := e.board.Get(ctx, j.ID); got.State != Released {
		t.Fatalf("state %s, want released", got.State)
	}
	if _, err := e.board.Cancel(ctx, j.ID, "bank-a", ""); !errors.Is(err, ErrTransition) {
		t.Fatalf("cancelled a released job: %v", err)
	}

	// A rejection carries its reason; the signature binds it.
	_, data2 := signedManifest(t, "bank-a", "second", bankA)
	j2, err := e.board.Submit(ctx, data2, "second")
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := s1.Sign(RejectionMessage(j2.Manifest, "too broad"), RejectionContext)
	if _, err := e.board.Reject(ctx, j2.ID, "steward-1", sig, "too narrow"); !errors.Is(err, ErrSignature) {
		t.Fatalf("rejection under another reason: %v", err)
	}
	if st, err := e.board.Reject(ctx, j2.ID, "steward-1", sig, "too broad"); err != nil || st.State != Rejected {
		t.Fatalf("reject: %+v %v", st, err)
	}
	if got, _ := e.board.Get(ctx, j2.ID); got.State != Rejected || got.Reason != "too broad" {
		t.Fatalf("rejected job: %+v", got)
	}

	// bank-b's jobs are listed apart; the plugin's history counts earlier jobs.
	_, data3 := signedManifest(t, "bank-b", "third", bankB)
	j3, err := e.board.Submit(ctx, data3, "third")
	if err != nil {
		t.Fatal(err)
	}
	if js, err := e.board.List(ctx, "bank-b"); err != nil || len(js) != 1 || js[0].ID != j3.ID {
		t.Fatalf("list bank-b: %v %v", js, err)
	}
	if js, _ := e.board.List(ctx, ""); len(js) != 3 {
		t.Fatalf("list all: %d jobs", len(js))
	}
	if h, err := e.board.PluginHistory(ctx, j3.ID); err != nil || len(h) != 2 || h[0].State != Released || h[1].State != Rejected {
		t.Fatalf("plugin history: %v %v", h, err)
	}
	if _, err := e.board.Cancel(ctx, j3.ID, "bank-b", "no longer needed"); err != nil {
		t.Fatal(err)
	}
	e.verifyAudit(t)
}

func TestSettingsAndCohort(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.board.CheckCohortSize(ctx, 99); !errors.Is(err, ErrCohortTooSmall) {
		t.Fatalf("99 < 100: %v", err)
	}
	if err := e.board.CheckCohortSize(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := e.board.SetSetting(ctx, "steward-1", SettingMinCohort, 500); err != nil {
		t.Fatal(err)
	}
	if err := e.board.CheckCohortSize(ctx, 499); !errors.Is(err, ErrCohortTooSmall) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("499 < 500: %v", err)
	}
	if err := e.board.SetSetting(ctx, "admin", SettingQuorum, 0); err == nil {
		t.Fatal("quorum 0 accepted")
	}
	if err := e.board.SetSetting(ctx, "admin", "approvals.quorom", 2); err == nil {
		t.Fatal("unknown setting accepted")
	}
	if q, err := e.board.Setting(ctx, SettingQuorum); err != nil || q != DefaultQuorum {
		t.Fatalf("quorum %d %v", q, err)
	}
}

func TestExpiredSubmission(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank := identity(t, keys.RoleBank, "bank-a")
	e.register(t, bank)
	_, data := signedManifest(t, "bank-a", "late", bank)
	late := New(e.db, e.log, Options{Now: func() time.Time { return time.Now().AddDate(0, 3, 0) }})
	if _, err := late.Submit(ctx, data, "late"); !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired manifest: %v", err)
	}
}

func TestRemovedStewardNoLongerCounts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	bank := identity(t, keys.RoleBank, "bank-a")
	s1, s2 := identity(t, keys.RoleSteward, "steward-1"), identity(t, keys.RoleSteward, "steward-2")
	e.register(t, bank, s1, s2)
	if err := e.board.SetSetting(ctx, "admin", SettingQuorum, 2); err != nil {
		t.Fatal(err)
	}
	_, data := signedManifest(t, "bank-a", "removed", bank)
	j, err := e.board.Submit(ctx, data, "removed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approve(t, e.board, j, s1); err != nil {
		t.Fatal(err)
	}
	if err := e.board.RemoveParty(ctx, "admin", "steward-1"); err != nil {
		t.Fatal(err)
	}
	st, err := approve(t, e.board, j, s2)
	if err != nil || st.State != Submitted || st.Approvals != 1 || len(st.Decisions) != 2 || st.Decisions[0].Registered {
		t.Fatalf("after steward-1's removal: %+v %v", st, err)
	}
	if _, err := approve(t, e.board, j, s1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed steward approved: %v", err)
	}
}
