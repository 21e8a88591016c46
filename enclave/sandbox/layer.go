package sandbox

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Layer is a set of isolation layers, one bit each. The zero value is the empty set.
type Layer uint32

// The isolation layers. Each can be asked for, reported missing by Probe, or turned off in a Spec.
const (
	LayerUserNS       Layer = 1 << iota // user namespace; the plugin's ids are mapped to one host uid/gid
	LayerMountNS                        // mount namespace
	LayerPIDNS                          // pid namespace; the plugin is its pid 1 and sees no host process
	LayerNetNS                          // network namespace with no interface up: no network at all
	LayerIPCNS                          // System V IPC and POSIX message queue namespace
	LayerUTSNS                          // host and domain name namespace
	LayerCgroupNS                       // cgroup namespace rooted at the run's own cgroup
	LayerRootFS                         // read-only tmpfs root (pivot_root) holding only the socket dir and binds
	LayerLandlock                       // Landlock file, TCP and IPC-scope rules
	LayerSeccomp                        // seccomp filter: no new processes, no non-unix sockets, no ptrace, ...
	LayerNoNewPrivs                     // no_new_privs: exec never grants privileges
	LayerCapabilities                   // bounding, permitted, effective, inheritable and ambient sets emptied
	LayerRlimits                        // CPU seconds, processes, open files, file size, address space
	LayerNonRootUID                     // the plugin runs under a dedicated non-root host uid
	LayerCgroup                         // cgroup memory and pids limits with out-of-memory accounting

	layerEnd
)

// Sets of layers.
const (
	// Namespaces are the seven namespace layers.
	Namespaces = LayerUserNS | LayerMountNS | LayerPIDNS | LayerNetNS | LayerIPCNS | LayerUTSNS | LayerCgroupNS
	// Mandatory are the layers strict mode refuses to run without.
	Mandatory = Namespaces | LayerRootFS | LayerSeccomp | LayerNoNewPrivs | LayerCapabilities | LayerRlimits | LayerNonRootUID
	// AllLayers is every layer.
	AllLayers = layerEnd - 1
)

var layerNames = [...]string{
	"user namespace",
	"mount namespace",
	"pid namespace",
	"network namespace",
	"ipc namespace",
	"uts namespace",
	"cgroup namespace",
	"read-only root (pivot_root)",
	"landlock",
	"seccomp",
	"no_new_privs",
	"capabilities",
	"rlimits",
	"non-root uid",
	"cgroup limits",
}

// String names the layers in the set, comma-separated, in the order they are declared.
func (l Layer) String() string {
	if l == 0 {
		return "none"
	}
	var names []string
	for _, one := range l.Each() {
		names = append(names, layerNames[bits.TrailingZeros32(uint32(one))])
	}
	if rest := l &^ AllLayers; rest != 0 {
		names = append(names, fmt.Sprintf("unknown layers %#x", uint32(rest)))
	}
	return strings.Join(names, ", ")
}

// Each returns the single layers of the set, in declaration order.
func (l Layer) Each() []Layer {
	var out []Layer
	for b := Layer(1); b < layerEnd; b <<= 1 {
		if l&b != 0 {
			out = append(out, b)
		}
	}
	return out
}

// Has reports whether every layer of o is in l.
func (l Layer) Has(o Layer) bool { return l&o == o }

var (
	// ErrLayerUnavailable is wrapped by a *LayerError when this machine does not offer a layer that
	// strict mode requires, or when setting the layer up failed.
	ErrLayerUnavailable = errors.New("isolation layer unavailable")
	// ErrLayerDisabled is wrapped by a *LayerError when a Spec turns off a mandatory layer in strict mode.
	ErrLayerDisabled = errors.New("isolation layer disabled")
	// ErrForbiddenAddress is wrapped by an *AddressError when a plugin advertises an address other than
	// a unix socket directly inside its socket dir.
	ErrForbiddenAddress = errors.New("forbidden plugin address")
	// ErrNotSealed is returned by Start when Spec.Binary is not a fully sealed memfd.
	ErrNotSealed = errors.New("plugin binary is not a sealed memfd")
	// ErrNoTrampoline is returned by Start when the program did not call MaybeRunTrampoline first
	// thing in main (or in TestMain): the re-executed binary ran its normal main instead.
	ErrNoTrampoline = errors.New("sandbox trampoline did not run; call sandbox.MaybeRunTrampoline first thing in main or TestMain")
)

// LayerError says which isolation layer is missing, disabled or failed to set up, and why.
type LayerError struct {
	Layer Layer
	Err   error // wraps ErrLayerUnavailable or ErrLayerDisabled
}

func (e *LayerError) Error() string {
	return fmt.Sprintf("sandbox layer %s: %v", e.Layer, e.Err)
}

// Unwrap returns the cause.
func (e *LayerError) Unwrap() error { return e.Err }

// AddressError is a plugin address refused by PluginToHost or HostToPlugin.
type AddressError struct {
	Network, Addr string
	SocketDir     string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("%v: %s address %q; only unix sockets directly inside %s are accepted",
		ErrForbiddenAddress, e.Network, e.Addr, e.SocketDir)
}

// Unwrap returns ErrForbiddenAddress.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }
