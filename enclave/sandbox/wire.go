package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
)

// The trampoline's file descriptors: the parent passes these as ExtraFiles in this order.
const (
	fdSpec   = 3 // read end of a pipe carrying the JSON initSpec; EOF after it
	fdStatus = 4 // write end of a pipe: a JSON initReport on failure, nothing (EOF at exec) on success
	fdBinary = 5 // the sealed memfd to execute
)

// maxInitSpec bounds what the trampoline reads from fdSpec.
const maxInitSpec = 1 << 20

// initSpec is what the parent tells the trampoline. It is JSON on fdSpec.
type initSpec struct {
	Layers   Layer      `json:"layers"`
	Argv     []string   `json:"argv"`
	Env      []string   `json:"env"`
	Root     string     `json:"root,omitempty"` // host folder to mount the new root on (LayerRootFS)
	Mounts   []initBind `json:"mounts,omitempty"`
	UID      int        `json:"uid"` // host ids to switch to when there is no user namespace
	GID      int        `json:"gid"`
	Hostname string     `json:"hostname,omitempty"`
	Rlimits  []rlimit   `json:"rlimits,omitempty"`
	// Probe asks the trampoline to report which layers work instead of executing a plugin.
	Probe bool `json:"probe,omitempty"`
}

// initBind is a host path shown at the same path inside the new root and allowed by Landlock.
type initBind struct {
	Path     string `json:"path"`
	Writable bool   `json:"writable,omitempty"`
	File     bool   `json:"file,omitempty"`   // a file (or device), not a folder
	Device   bool   `json:"device,omitempty"` // keep device access (for /dev/null)
	Socket   bool   `json:"socket,omitempty"` // the plugin may create unix sockets here
}

type rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// initReport is what the trampoline writes to fdStatus: a failure, or the result of a probe.
type initReport struct {
	Layer Layer  `json:"layer,omitempty"` // the layer being set up when it failed
	Step  string `json:"step,omitempty"`
	Errno int    `json:"errno,omitempty"`
	Msg   string `json:"msg,omitempty"`
	// Probe results.
	Working     Layer             `json:"working,omitempty"`
	Missing     map[string]string `json:"missing,omitempty"` // layer name → why
	LandlockABI int               `json:"landlock_abi,omitempty"`
}

func decodeInitSpec(b []byte) (*initSpec, error) {
	if len(b) > maxInitSpec {
		return nil, fmt.Errorf("init spec of %d bytes exceeds %d", len(b), maxInitSpec)
	}
	var s initSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("init spec: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// check rejects what the trampoline cannot act on safely.
func (s *initSpec) check() error {
	if s.Layers&^AllLayers != 0 {
		return errors.New("init spec: unknown layer bits")
	}
	if !s.Probe && len(s.Argv) == 0 {
		return errors.New("init spec: empty argv")
	}
	if s.Layers&LayerRootFS != 0 {
		if !filepath.IsAbs(s.Root) || filepath.Clean(s.Root) != s.Root || s.Root == "/" {
			return fmt.Errorf("init spec: root %q is not an absolute clean path other than /", s.Root)
		}
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Path) || filepath.Clean(m.Path) != m.Path || m.Path == "/" {
			return fmt.Errorf("init spec: mount %q is not an absolute clean path other than /", m.Path)
		}
	}
	if s.UID < 0 || s.GID < 0 {
		return errors.New("init spec: negative id")
	}
	for _, r := range s.Rlimits {
		if r.Resource < 0 || r.Resource > 15 || r.Cur > r.Max {
			return fmt.Errorf("init spec: bad rlimit %+v", r)
		}
	}
	return nil
}
