package job

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"insitu/enclave/keys"
)

// killChildEnv makes the test binary act as an enclave that is killed mid-run: see TestKillRecover.
const killChildEnv = "INSITU_JOB_KILL_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	os.Exit(m.Run())
}

// killChild submits and approves two jobs in the database under dir, starts one and queues the
// other, prints their ids and blocks until killed.
func killChild(dir string) {
	var t childT
	encl, err := keys.NewIdentity(keys.RoleEnclave, "enclave")
	check(err)
	pub := mustJSON(encl.Public())
	check(os.WriteFile(filepath.Join(dir, "enclave.pub.json"), pub, 0o600))
	e := openEnvChild(filepath.Join(dir, "state.db"), encl)
	bank, _ := keys.NewIdentity(keys.RoleBank, "bank-a")
	st, _ := keys.NewIdentity(keys.RoleSteward, "steward-1")
	ctx := context.Background()
	for _, id := range []*keys.Identity{bank, st} {
		_, err := e.board.AddParty(ctx, "admin", id.Public())
		check(err)
	}
	var out []string
	for i, detail := range []string{"runs", "waits"} {
		_, data := signedManifest(t, "bank-a", detail, bank)
		j, err := e.board.Submit(ctx, data, detail)
		check(err)
		sig, err := st.Sign(ApprovalMessage(j.Manifest), ApprovalContext)
		check(err)
		_, err = e.board.Approve(ctx, j.ID, "steward-1", sig)
		check(err)
		_, err = e.board.Queue(ctx, j.ID)
		check(err)
		if i == 0 {
			_, err = e.board.Start(ctx, j.ID)
			check(err)
		}
		out = append(out, j.ID)
	}
	os.Stdout.WriteString("ready " + strings.Join(out, " ") + "\n")
	for {
		time.Sleep(time.Hour)
	}
}

func check(err error) {
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
}

func openEnvChild(path string, encl *keys.Identity) *env {
	return openEnvNoCleanup(childT{}, path, encl)
}

// childT is the kill test child's fataler: it exits.
type childT struct{}

func (childT) Helper() {}

func (childT) Fatal(args ...any) {
	os.Stderr.WriteString(fmt.Sprint(args...) + "\n")
	os.Exit(3)
}

func TestKillRecover(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	jobIDs := strings.Fields(strings.TrimPrefix(line, "ready "))
	pubData, err := os.ReadFile(filepath.Join(dir, "enclave.pub.json"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublic(pubData)
	if err != nil {
		t.Fatal(err)
	}

	// Reopen with a new signer (the checkpoints verify against the child's public key).
	e := openEnv(t, filepath.Join(dir, "state.db"), identity(t, keys.RoleEnclave, "enclave"))
	ctx := context.Background()
	got, err := e.board.Recover(ctx)
	if err != nil || len(got) != 1 || got[0] != jobIDs[0] {
		t.Fatalf("recovered %v %v, want [%s]", got, err, jobIDs[0])
	}
	if j, _ := e.board.Get(ctx, jobIDs[0]); j.State != Failed || j.Reason != ReasonRestarted {
		t.Fatalf("running job after restart: %s %q", j.State, j.Reason)
	}
	if j, _ := e.board.Get(ctx, jobIDs[1]); j.State != Queued || j.Reason != "" {
		t.Fatalf("queued job after restart: %s %q", j.State, j.Reason)
	}
	if again, err := e.board.Recover(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second recover: %v %v", again, err)
	}
	rep, err := auditVerify(ctx, e, pub)
	if err != nil || !rep.OK() {
		t.Fatalf("audit after restart: %v %v", rep.Err(), err)
	}
}
