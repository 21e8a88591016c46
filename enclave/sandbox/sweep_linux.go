package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// SweepOptions says where Sweep looks; zero fields take the defaults Spec uses.
type SweepOptions struct {
	TempDir    string // os.TempDir() when empty
	CgroupName string // "insitu" when empty
}

// Sweep removes run folders and cgroups left behind by sandboxes whose owning process has died
// (a crash, or SIGKILL of the enclave; Pdeathsig has already killed their plugins). Entries of
// live processes, including this one, are left alone, so it is safe while other sandboxes run.
// Call it at start-up. It returns the paths it removed.
func Sweep(o SweepOptions) ([]string, error) {
	s := Spec{TempDir: o.TempDir, CgroupName: o.CgroupName}
	var removed []string
	var errs []error
	ents, err := os.ReadDir(s.tempDir())
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), runDirPrefix)
		if !ok || !e.IsDir() || !stale(name) {
			continue
		}
		p := filepath.Join(s.tempDir(), e.Name())
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, p)
		}
	}
	version, _ := detectCgroup()
	var bases []string
	switch version {
	case "v1":
		bases = []string{filepath.Join(cgroupRoot, "memory", s.cgroupName()), filepath.Join(cgroupRoot, "pids", s.cgroupName())}
	case "v2":
		bases = []string{filepath.Join(cgroupRoot, s.cgroupName())}
	}
	for _, base := range bases {
		ents, err := os.ReadDir(base)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || !stale(e.Name()) {
				continue
			}
			p := filepath.Join(base, e.Name())
			killCgroupDir(version, p)
			if err := rmdirRetry(p); err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, p)
			}
		}
	}
	return removed, errors.Join(errs...)
}

// stale reports whether a run id ("<pid>.<start>-<random>") belongs to a process that is gone.
func stale(id string) bool {
	tag, _, ok := strings.Cut(id, "-")
	return ok && !OwnerAlive(tag)
}
