package sandbox

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

var (
	ownerOnce sync.Once
	owner     string
)

// OwnerTag identifies this process as "<pid>.<start time>", unique across pid reuse. Run folders
// and cgroups carry it so that Sweep (and the runner's own sweep) can tell whether their owner still
// runs.
func OwnerTag() string {
	ownerOnce.Do(func() {
		pid := os.Getpid()
		owner = strconv.Itoa(pid) + "." + strconv.FormatUint(startTime(pid), 10)
	})
	return owner
}

// OwnerAlive reports whether the process an OwnerTag names still runs. Without /proc it cannot know
// and says yes, so that nothing of a live process is removed.
func OwnerAlive(tag string) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return true
	}
	pidStr, startStr, ok := strings.Cut(tag, ".")
	if !ok {
		return false
	}
	pid, err1 := strconv.Atoi(pidStr)
	st, err2 := strconv.ParseUint(startStr, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return false
	}
	return st != 0 && startTime(pid) == st
}

// startTime returns a process's start time in clock ticks since boot (field 22 of
// /proc/<pid>/stat), 0 when unknown.
func startTime(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
