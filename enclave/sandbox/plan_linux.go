package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// plan is what Start will apply, decided from the Spec and what the machine offers.
type plan struct {
	layers   Layer
	weakened Layer
	warnings []string
	cgroup   string
	abi      int
}

// makePlan decides the layers to apply. In strict mode it refuses, naming the layers, when a
// Mandatory layer is disabled or missing.
func makePlan(s *Spec, pr *ProbeResult) (*plan, error) {
	avail := pr.Available &^ s.Unavailable
	why := func(l Layer) string {
		if s.Unavailable&l != 0 {
			return "marked unavailable by the spec"
		}
		if w := pr.Missing[l]; w != "" {
			return w
		}
		return "not offered by this machine"
	}
	if s.Mode == Strict {
		if d := s.Disable & Mandatory; d != 0 {
			return nil, &LayerError{Layer: d, Err: fmt.Errorf("%w in strict mode; only --allow-weaker-sandbox (development) may turn it off", ErrLayerDisabled)}
		}
		if m := Mandatory &^ avail; m != 0 {
			var reasons []string
			for _, l := range m.Each() {
				reasons = append(reasons, l.String()+": "+why(l))
			}
			return nil, &LayerError{Layer: m, Err: fmt.Errorf("%w (%s); strict mode refuses to run the plugin without it",
				ErrLayerUnavailable, strings.Join(reasons, "; "))}
		}
	}
	p := &plan{layers: AllLayers &^ s.Disable & avail, abi: pr.LandlockABI, cgroup: pr.Cgroup}
	// The new root needs a mount namespace of its own, whether or not it was asked for.
	if p.layers&LayerRootFS != 0 && p.layers&LayerMountNS == 0 {
		if avail&LayerMountNS == 0 {
			p.layers &^= LayerRootFS
		} else {
			p.layers |= LayerMountNS
		}
	}
	// A dedicated uid needs either a user namespace mapping it or host root to switch to it.
	if p.layers&LayerNonRootUID != 0 && p.layers&LayerUserNS == 0 && os.Geteuid() != 0 {
		p.layers &^= LayerNonRootUID
	}
	// Once capabilities are gone, Landlock and seccomp can only be enforced under no_new_privs.
	if p.layers&LayerNoNewPrivs == 0 && p.layers&LayerCapabilities != 0 && p.layers&(LayerLandlock|LayerSeccomp) != 0 {
		return nil, &LayerError{Layer: LayerNoNewPrivs, Err: fmt.Errorf("%w: landlock and seccomp need no_new_privs when capabilities are dropped", ErrLayerDisabled)}
	}
	if p.layers&LayerLandlock == 0 {
		p.abi = 0
	}
	if p.layers&LayerCgroup == 0 {
		p.cgroup = ""
	}
	p.weakened = AllLayers &^ p.layers
	if p.layers&LayerCgroup == 0 {
		p.warnings = append(p.warnings, fmt.Sprintf("no cgroup memory and pids limits (%s): memory is bounded only by the address-space backstop",
			why(LayerCgroup)))
	}
	if p.layers&LayerLandlock == 0 {
		p.warnings = append(p.warnings, "no landlock ("+why(LayerLandlock)+")")
	}
	if w := p.weakened & Mandatory; w != 0 {
		p.warnings = append(p.warnings, "SANDBOX WEAKENED (development only): running without "+w.String())
	}
	return p, nil
}

// runID returns a fresh identifier naming the run's temporary folder and cgroup: the owner
// process (pid and start time, so that Sweep can tell whether it is still alive) and a random part.
func runID() string {
	var b [6]byte
	rand.Read(b[:])
	return OwnerTag() + "-" + hex.EncodeToString(b[:])
}
