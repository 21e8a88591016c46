package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Mode says what to do when a layer is missing.
type Mode int

const (
	// Strict (the default) refuses to start unless every Mandatory layer is available and enabled.
	// A missing cgroup is tolerated with a warning: memory is then bounded by the address-space
	// backstop only.
	Strict Mode = iota
	// AllowWeaker runs with whatever this machine offers and records the weakened layers in the
	// Result. For development only (the CLI's --allow-weaker-sandbox).
	AllowWeaker
)

func (m Mode) String() string {
	switch m {
	case Strict:
		return "strict"
	case AllowWeaker:
		return "allow-weaker"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DefaultUID and DefaultGID are the host ids a plugin runs under when the Spec names none. They
// need no /etc/passwd entry; give each concurrently running plugin of different trust its own.
const (
	DefaultUID = 65533
	DefaultGID = 65533
)

// Limits bounds a sandboxed process. A zero field takes the value from DefaultLimits.
type Limits struct {
	// CPUTime is the CPU time (user + system, all threads) after which the kernel kills the
	// process (RLIMIT_CPU, soft limit; the hard limit is one second more, so SIGKILL follows).
	// Rounded up to whole seconds.
	CPUTime time.Duration
	// WallClock is the real time after Start at which the process is killed.
	WallClock time.Duration
	// Threads bounds the number of threads of the plugin's uid (RLIMIT_NPROC; in a user namespace
	// it counts this sandbox's threads only). A Go program needs about ten.
	Threads uint64
	// OpenFiles bounds open file descriptors (RLIMIT_NOFILE).
	OpenFiles uint64
	// FileSize bounds the size of any file the process writes (RLIMIT_FSIZE), in bytes.
	FileSize uint64
	// AddressSpace is the coarse virtual-memory backstop (RLIMIT_AS), in bytes. A Go program cannot
	// start below about 800 MiB; keep it at 2–4 GiB and rely on Memory for the real bound.
	AddressSpace uint64
	// Memory is the cgroup memory limit in bytes (memory.limit_in_bytes on cgroup v1, memory.max on
	// v2; swap is limited to the same value or zero).
	Memory uint64
	// Pids is the cgroup pids limit (tasks, i.e. threads).
	Pids uint64
}

// DefaultLimits are used for zero fields of Spec.Limits.
var DefaultLimits = Limits{
	CPUTime:      time.Hour,
	WallClock:    2 * time.Hour,
	Threads:      256,
	OpenFiles:    256,
	FileSize:     64 << 20,
	AddressSpace: 4 << 30,
	Memory:       2 << 30,
	Pids:         256,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.CPUTime > 0 {
		d.CPUTime = l.CPUTime
	}
	if l.WallClock > 0 {
		d.WallClock = l.WallClock
	}
	if l.Threads > 0 {
		d.Threads = l.Threads
	}
	if l.OpenFiles > 0 {
		d.OpenFiles = l.OpenFiles
	}
	if l.FileSize > 0 {
		d.FileSize = l.FileSize
	}
	if l.AddressSpace > 0 {
		d.AddressSpace = l.AddressSpace
	}
	if l.Memory > 0 {
		d.Memory = l.Memory
	}
	if l.Pids > 0 {
		d.Pids = l.Pids
	}
	return d
}

// cpuSeconds is CPUTime rounded up to whole seconds, at least 1.
func (l Limits) cpuSeconds() uint64 {
	s := uint64((l.CPUTime + time.Second - 1) / time.Second)
	if s == 0 {
		s = 1
	}
	return s
}

// Bind is a host path made visible to the plugin at the same path.
type Bind struct {
	// Path is an absolute host path, a folder or a file.
	Path string
	// Writable lets the plugin create, write and remove files below Path. The sandbox chowns a
	// writable folder (not its contents) to the plugin's uid and gid.
	Writable bool
}

// Spec describes one sandboxed process. Build one, then call New (or FromCmd for go-plugin) and
// Start.
type Spec struct {
	// Binary is the program to run: a sealed memfd, as pluginstore.OpenSealed returns. The sandbox
	// executes it by file descriptor (execveat), so it needs no path inside the sandbox. The caller
	// keeps ownership and may close it once Start has returned.
	Binary *os.File
	// Name is argv[0] of the plugin; "plugin" when empty.
	Name string
	// Args are the arguments after argv[0].
	Args []string
	// Env is the plugin's whole environment; nothing is inherited from the host.
	Env []string
	// SocketDir is the folder where the plugin creates its unix socket (go-plugin's socket dir). It
	// appears at the same path inside the sandbox, writable, and is chowned to the plugin's uid.
	// Its parent folders must be searchable by that uid.
	SocketDir string
	// Binds are further host paths shown to the plugin at the same paths. Everything else of the
	// host file system is invisible. /dev/null is always present.
	Binds []Bind
	// UID and GID are the host ids the plugin runs under; DefaultUID and DefaultGID when zero.
	// Running a plugin as host root is not possible in strict mode.
	UID, GID int
	// Limits bounds the process; zero fields take DefaultLimits.
	Limits Limits
	// Mode is Strict unless set to AllowWeaker.
	Mode Mode
	// Disable turns layers off. Strict mode refuses to disable a Mandatory layer; AllowWeaker
	// records disabled layers in Result.Weakened. Tests use it to try one layer on its own.
	Disable Layer
	// Unavailable makes Start treat these layers as missing from this machine, as if Probe had not
	// found them. It exists for tests that show strict mode refuses and names the missing layer.
	Unavailable Layer
	// TempDir holds the per-run folder (the mount point of the new root); os.TempDir() when empty.
	// Its path must be searchable by the plugin's uid.
	TempDir string
	// CgroupName is the folder under each cgroup controller holding the per-run cgroups; "insitu"
	// when empty.
	CgroupName string
	// Stdout and Stderr receive the plugin's output when set. FromCmd leaves them nil and offers
	// pipes through Process.Stdout and Process.Stderr instead. Standard input is always /dev/null.
	Stdout, Stderr io.Writer
}

func (s *Spec) uid() int {
	if s.UID == 0 {
		return DefaultUID
	}
	return s.UID
}

func (s *Spec) gid() int {
	if s.GID == 0 {
		return DefaultGID
	}
	return s.GID
}

func (s *Spec) name() string {
	if s.Name == "" {
		return "plugin"
	}
	return s.Name
}

func (s *Spec) cgroupName() string {
	if s.CgroupName == "" {
		return "insitu"
	}
	return s.CgroupName
}

func (s *Spec) tempDir() string {
	if s.TempDir == "" {
		return os.TempDir()
	}
	return s.TempDir
}

// validate checks what does not depend on the machine.
func (s *Spec) validate() error {
	if s.Binary == nil {
		return errors.New("sandbox spec: no plugin binary; open one with pluginstore.OpenSealed")
	}
	if s.Mode != Strict && s.Mode != AllowWeaker {
		return fmt.Errorf("sandbox spec: unknown mode %d", int(s.Mode))
	}
	if s.UID < 0 || s.GID < 0 {
		return fmt.Errorf("sandbox spec: negative uid %d or gid %d", s.UID, s.GID)
	}
	if s.SocketDir != "" {
		if err := checkAbs("socket dir", s.SocketDir); err != nil {
			return err
		}
	}
	for _, b := range s.Binds {
		if err := checkAbs("bind", b.Path); err != nil {
			return err
		}
		if b.Path == "/" {
			return errors.New("sandbox spec: bind of / would show the whole host file system")
		}
	}
	for _, e := range s.Env {
		if !strings.Contains(e, "=") || strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("sandbox spec: environment entry %q is not KEY=VALUE", e)
		}
	}
	for _, a := range append([]string{s.Name}, s.Args...) {
		if strings.IndexByte(a, 0) >= 0 {
			return errors.New("sandbox spec: argument contains a NUL byte")
		}
	}
	if s.Disable&^AllLayers != 0 || s.Unavailable&^AllLayers != 0 {
		return errors.New("sandbox spec: unknown layer bits")
	}
	return nil
}

func checkAbs(what, p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("sandbox spec: %s %q must be an absolute, clean path", what, p)
	}
	if strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("sandbox spec: %s %q contains a NUL or newline", what, p)
	}
	return nil
}
