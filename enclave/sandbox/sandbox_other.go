//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"io"
	"os/exec"
)

var errNotLinux = errors.New("the plugin sandbox needs Linux")

// MaybeRunTrampoline does nothing outside Linux.
func MaybeRunTrampoline() {}

// ProbeResult is what Probe found on this machine.
type ProbeResult struct {
	Available   Layer
	Missing     map[Layer]string
	LandlockABI int
	Cgroup      string
}

func (p *ProbeResult) String() string { return "available: none (not Linux)" }

// Probe reports every layer missing outside Linux.
func Probe() *ProbeResult {
	m := map[Layer]string{}
	for _, l := range AllLayers.Each() {
		m[l] = errNotLinux.Error()
	}
	return &ProbeResult{Missing: m}
}

// SweepOptions says where Sweep looks.
type SweepOptions struct{ TempDir, CgroupName string }

// Sweep has nothing to do outside Linux.
func Sweep(SweepOptions) ([]string, error) { return nil, nil }

// Process is a sandboxed plugin process; outside Linux it cannot start.
type Process struct{ spec Spec }

// New checks a Spec.
func New(spec Spec) (*Process, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	return &Process{spec: spec}, nil
}

// FromCmd checks a Spec.
func FromCmd(_ *exec.Cmd, spec Spec) (*Process, error) { return New(spec) }

// Run fails outside Linux.
func Run(context.Context, Spec) (*Result, error) {
	return nil, &LayerError{Layer: Mandatory, Err: errors.Join(ErrLayerUnavailable, errNotLinux)}
}

func (p *Process) Start(context.Context) error {
	return &LayerError{Layer: Mandatory, Err: errors.Join(ErrLayerUnavailable, errNotLinux)}
}
func (p *Process) Wait(context.Context) error { return errNotLinux }
func (p *Process) Result() *Result            { return nil }
func (p *Process) Kill(context.Context) error { return nil }
func (p *Process) Layers() (Layer, Layer, []string) {
	return 0, 0, nil
}
func (p *Process) Stdout() io.ReadCloser           { return nil }
func (p *Process) Stderr() io.ReadCloser           { return nil }
func (p *Process) Name() string                    { return "sandbox:" + p.spec.name() }
func (p *Process) ID() string                      { return "" }
func (p *Process) Diagnose(context.Context) string { return errNotLinux.Error() }
func (p *Process) PluginToHost(n, a string) (string, string, error) {
	return "", "", &AddressError{Network: n, Addr: a}
}
func (p *Process) HostToPlugin(n, a string) (string, string, error) {
	return "", "", &AddressError{Network: n, Addr: a}
}
