package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"insitu/enclave/sandbox"
)

// runDirPrefix starts the name of every per-run folder: "insitu-run-<pid>.<start>-<random>",
// where pid and start (clock ticks since boot) identify the enclave process that made it.
const runDirPrefix = "insitu-run-"

// SweepOptions says where Sweep looks; zero fields take the defaults Run uses.
type SweepOptions struct {
	// TempDir is RunSpec.TempDir; os.TempDir() when empty.
	TempDir string
	// CgroupName is the sandbox's cgroup folder name (sandbox.Spec.CgroupName); "insitu" when empty.
	CgroupName string
}

// Sweep removes what runs of enclave processes that have died left behind: the runner's per-run
// folders (with go-plugin's socket dirs) and, through sandbox.Sweep, the sandbox's run folders
// and cgroups. Entries of live processes, this one included, are left alone, so it is safe while
// other runs are in progress. Call it at start-up; Run calls it once per process and folder. It
// returns the paths it removed.
func Sweep(o SweepOptions) ([]string, error) {
	dir := o.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	var removed []string
	var errs []error
	ents, err := os.ReadDir(dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), runDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		tag, _, ok := strings.Cut(id, "-")
		if !ok || sandbox.OwnerAlive(tag) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, p)
		}
	}
	more, err := sandbox.Sweep(sandbox.SweepOptions{TempDir: dir, CgroupName: o.CgroupName})
	removed = append(removed, more...)
	if err != nil {
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

var swept sync.Map // SweepOptions → *sync.Once

// sweepOnce sweeps a folder the first time this process runs a plugin there.
func sweepOnce(o SweepOptions) {
	v, _ := swept.LoadOrStore(o, new(sync.Once))
	v.(*sync.Once).Do(func() { Sweep(o) })
}
