package dataset

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of the child process of TestKilledIngest.
const (
	envKillRoot = "INSITU_TEST_KILL_ROOT" // the store's folder
	envKillSpec = "INSITU_TEST_KILL_SPEC" // the dataset spec to ingest
)

// TestKilledIngestChild is the child of TestKilledIngest: it ingests a large source and, once more
// than 1 MiB of it is written, announces it and waits to be killed.
func TestKilledIngestChild(t *testing.T) {
	root, specPath := os.Getenv(envKillRoot), os.Getenv(envKillSpec)
	if root == "" {
		t.Skip("run by TestKilledIngest as a child process")
	}
	st, err := NewDirStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	s := New(st, testMaster(1))
	f := &fixture{spec: specPath}
	spec, maps := f.load(t)
	announced := false
	_, _, err = s.Ingest(context.Background(), spec, maps, IngestOptions{Progress: func(p Progress) {
		if p.Bytes > 1<<20 && !announced {
			announced = true
			write(t, filepath.Join(root, "started"), p.Source)
			time.Sleep(time.Minute) // the parent kills us here
		}
	}})
	t.Fatalf("ingest returned (%v) instead of being killed", err)
}

func TestKilledIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a large source")
	}
	s, root := newTestStore(t)
	f := newFixture(t, 60000, 10, 0)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledIngestChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillRoot+"="+root, envKillSpec+"="+f.spec)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	started := filepath.Join(root, "started")
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("child ended before it was killed: %v\n%s", err, out)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done

	// The child died with a stage holding a part file under way, and no version.
	stages, _ := filepath.Glob(filepath.Join(root, "credit", stagePrefix+"*"))
	if len(stages) != 1 {
		t.Fatalf("%d stages after the kill, want 1 (the child's)", len(stages))
	}
	st, err := os.Stat(filepath.Join(stages[0], partFile("tax")))
	if err != nil || st.Size() < 1<<18 {
		t.Fatalf("the killed ingest's part file: %v, %v", st, err)
	}
	list, err := s.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("a killed ingest left versions %+v (%v)", list, err)
	}

	// The next ingest takes the lock the dead child held, removes its stage and succeeds.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec, maps := f.load(t)
	m, _, err := s.Ingest(ctx, spec, maps, IngestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || m.Parts[0].Rows != 60000 {
		t.Fatalf("ingest after the kill: v%d, %d rows", m.Version, m.Parts[0].Rows)
	}
	if stages, _ := filepath.Glob(filepath.Join(root, "credit", stagePrefix+"*")); len(stages) != 0 {
		t.Fatalf("stages left after the next ingest: %v", stages)
	}
	if _, err := s.Verify(context.Background(), "credit", 1); err != nil {
		t.Fatal(err)
	}
}
