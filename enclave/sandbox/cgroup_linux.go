package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup file systems are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// cgroup is one run's cgroup: a memory and a pids folder on v1, one folder on v2.
type cgroup struct {
	version string
	dirs    []string // v1: memory, pids; v2: the one folder
}

// detectCgroup says which cgroup version can limit memory and pids here, or why none can.
func detectCgroup() (version, why string) {
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return "", fmt.Sprintf("no cgroup file system at %s: %v", cgroupRoot, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
		if err != nil {
			return "", fmt.Sprintf("cgroup v2: %v", err)
		}
		ctl := strings.Fields(string(b))
		if !contains(ctl, "memory") || !contains(ctl, "pids") {
			return "", "cgroup v2 root offers no memory and pids controllers"
		}
		if err := unix.Access(cgroupRoot, unix.W_OK); err != nil {
			return "", fmt.Sprintf("cgroup v2 root %s is not writable: %v", cgroupRoot, err)
		}
		return "v2", ""
	}
	for _, c := range []string{"memory", "pids"} {
		p := filepath.Join(cgroupRoot, c)
		if err := unix.Statfs(p, &st); err != nil || st.Type != unix.CGROUP_SUPER_MAGIC {
			return "", fmt.Sprintf("no cgroup v1 %s controller at %s", c, p)
		}
		if err := unix.Access(p, unix.W_OK); err != nil {
			return "", fmt.Sprintf("cgroup v1 %s controller %s is not writable: %v", c, p, err)
		}
	}
	return "v1", ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// newCgroup creates the run's cgroup <name>/<id> with the memory and pids limits.
func newCgroup(version, name, id string, lim Limits) (*cgroup, error) {
	c := &cgroup{version: version}
	var err error
	switch version {
	case "v1":
		err = c.createV1(name, id, lim)
	case "v2":
		err = c.createV2(name, id, lim)
	default:
		err = fmt.Errorf("unknown cgroup version %q", version)
	}
	if err != nil {
		c.remove()
		return nil, fmt.Errorf("cgroup %s/%s: %w", name, id, err)
	}
	return c, nil
}

func (c *cgroup) createV1(name, id string, lim Limits) error {
	mem := filepath.Join(cgroupRoot, "memory", name, id)
	pids := filepath.Join(cgroupRoot, "pids", name, id)
	for _, d := range []string{mem, pids} {
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return err
		}
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		c.dirs = append(c.dirs, d)
	}
	limit := strconv.FormatUint(lim.Memory, 10)
	if err := writeFile(mem, "memory.limit_in_bytes", limit); err != nil {
		return err
	}
	// With swap accounting, memory plus swap gets the same bound (so nothing is swapped out).
	if _, err := os.Stat(filepath.Join(mem, "memory.memsw.limit_in_bytes")); err == nil {
		if err := writeFile(mem, "memory.memsw.limit_in_bytes", limit); err != nil {
			return err
		}
	}
	return writeFile(pids, "pids.max", strconv.FormatUint(lim.Pids, 10))
}

func (c *cgroup) createV2(name, id string, lim Limits) error {
	base := filepath.Join(cgroupRoot, name)
	if err := writeFile(cgroupRoot, "cgroup.subtree_control", "+memory +pids"); err != nil {
		return err
	}
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := writeFile(base, "cgroup.subtree_control", "+memory +pids"); err != nil {
		return err
	}
	d := filepath.Join(base, id)
	if err := os.Mkdir(d, 0o755); err != nil {
		return err
	}
	c.dirs = []string{d}
	if err := writeFile(d, "memory.max", strconv.FormatUint(lim.Memory, 10)); err != nil {
		return err
	}
	if err := writeFile(d, "memory.swap.max", "0"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeFile(d, "pids.max", strconv.FormatUint(lim.Pids, 10))
}

func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// add moves a process (all its threads) into the cgroup.
func (c *cgroup) add(pid int) error {
	for _, d := range c.dirs {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// oomKills returns how many processes the kernel killed for memory in the cgroup.
func (c *cgroup) oomKills() int {
	if c == nil || len(c.dirs) == 0 {
		return 0
	}
	file := "memory.oom_control"
	if c.version == "v2" {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(c.dirs[0], file))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "oom_kill" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// kill sends SIGKILL to every process in the cgroup.
func (c *cgroup) kill() {
	if c == nil || len(c.dirs) == 0 {
		return
	}
	killCgroupDir(c.version, c.dirs[0])
}

func killCgroupDir(version, dir string) {
	if version == "v2" {
		if writeFile(dir, "cgroup.kill", "1") == nil {
			return
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// remove deletes the cgroup folders, waiting briefly for killed processes to leave.
func (c *cgroup) remove() error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, d := range c.dirs {
		if err := rmdirRetry(d); err != nil {
			errs = append(errs, err)
		}
	}
	c.dirs = nil
	return errors.Join(errs...)
}

func rmdirRetry(d string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := unix.Rmdir(d)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
