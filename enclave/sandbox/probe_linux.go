package sandbox

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ProbeResult is what Probe found on this machine.
type ProbeResult struct {
	// Available are the layers this machine offers.
	Available Layer
	// Missing says, for each layer not available, why.
	Missing map[Layer]string
	// LandlockABI is the kernel's Landlock ABI version, 0 without Landlock.
	LandlockABI int
	// Cgroup is "v1" or "v2" when cgroup memory and pids limits are possible, else "".
	Cgroup string
}

// String lists the available and the missing layers with reasons.
func (p *ProbeResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "available: %s", p.Available)
	if p.LandlockABI > 0 {
		fmt.Fprintf(&b, " (landlock ABI %d)", p.LandlockABI)
	}
	if p.Cgroup != "" {
		fmt.Fprintf(&b, " (cgroup %s)", p.Cgroup)
	}
	var missing []Layer
	for l := range p.Missing {
		missing = append(missing, l)
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	for _, l := range missing {
		fmt.Fprintf(&b, "\nmissing: %s: %s", l, p.Missing[l])
	}
	return b.String()
}

var (
	probeMu     sync.Mutex
	probeCached *ProbeResult
)

// Probe finds out which layers this machine offers, by starting the trampoline once with every
// namespace (and, if that fails, once per namespace) and trying each layer inside. It needs
// MaybeRunTrampoline, like Start. Start probes once per process and keeps the answer.
func Probe() *ProbeResult {
	pr := probe()
	probeMu.Lock()
	probeCached = pr
	probeMu.Unlock()
	return pr
}

func cachedProbe() *ProbeResult {
	probeMu.Lock()
	defer probeMu.Unlock()
	if probeCached == nil {
		probeCached = probe()
	}
	return probeCached
}

func probe() *ProbeResult {
	pr := &ProbeResult{Missing: map[Layer]string{}, LandlockABI: landlockABI()}
	pr.Available = LayerRlimits
	if os.Geteuid() == 0 {
		pr.Available |= LayerNonRootUID
	} else {
		pr.Missing[LayerNonRootUID] = fmt.Sprintf("insitu runs as uid %d; only root can run a plugin under a dedicated uid", os.Geteuid())
	}
	if v, why := detectCgroup(); v != "" {
		pr.Available |= LayerCgroup
		pr.Cgroup = v
	} else {
		pr.Missing[LayerCgroup] = why
	}
	nsLayers := Namespaces &^ LayerCgroupNS // the cgroup namespace is entered by the trampoline
	rep, err := spawnProbe(nsLayers | LayerCgroupNS | LayerRootFS)
	if err == nil {
		pr.Available |= nsLayers | rep.Working
	} else {
		// Find out which namespace is missing, one at a time; then probe the rest with the
		// namespaces that work.
		var ok Layer
		for _, l := range nsLayers.Each() {
			if _, err := spawnProbe(l); err == nil {
				ok |= l
			} else {
				pr.Missing[l] = err.Error()
			}
		}
		pr.Available |= ok
		want := ok | LayerCgroupNS
		if ok&LayerMountNS != 0 {
			want |= LayerRootFS
		} else {
			pr.Missing[LayerRootFS] = "needs a mount namespace"
		}
		rep, err = spawnProbe(want)
		if err != nil {
			for _, l := range (AllLayers &^ LayerRlimits &^ LayerNonRootUID &^ LayerCgroup &^ ok).Each() {
				if pr.Missing[l] == "" {
					pr.Missing[l] = err.Error()
				}
			}
			return pr
		}
		pr.Available |= rep.Working
	}
	for name, why := range rep.Missing {
		for _, l := range AllLayers.Each() {
			if l.String() == name {
				pr.Missing[l] = why
			}
		}
	}
	if pr.Available&LayerUserNS == 0 && os.Geteuid() != 0 {
		pr.Available &^= LayerNonRootUID
	}
	return pr
}

// spawnProbe starts the trampoline with the given namespace layers and returns what it found.
func spawnProbe(layers Layer) (*initReport, error) {
	id := runID()
	var root, runDir string
	if layers&LayerRootFS != 0 {
		var err error
		if runDir, root, err = makeRunDir(os.TempDir(), id); err != nil {
			return nil, err
		}
		defer os.RemoveAll(runDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = DefaultUID, DefaultGID
	}
	spec := &initSpec{Layers: layers, Root: root, Probe: true, UID: uid, GID: gid}
	proc, statusR, err := startTrampoline(spec, layers, uid, gid, nil, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	rep, err := readReport(ctx, proc, statusR)
	proc.Wait()
	if err != nil {
		return nil, err
	}
	if !rep.isProbe() {
		return nil, fmt.Errorf("%s: %s", rep.Step, rep.Msg)
	}
	return rep, nil
}

// probeInside runs in the trampoline: it tries each layer that does not need a namespace.
func probeInside(s *initSpec) *initReport {
	rep := &initReport{Missing: map[string]string{}}
	miss := func(l Layer, err error) { rep.Missing[l.String()] = err.Error() }
	if s.Layers&LayerCgroupNS != 0 {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			miss(LayerCgroupNS, err)
		} else {
			rep.Working |= LayerCgroupNS
		}
	}
	if s.Layers&LayerRootFS != 0 {
		if err := makeRoot(s.Root, nil); err != nil {
			miss(LayerRootFS, err)
		} else {
			rep.Working |= LayerRootFS
		}
	}
	if err := unix.Prctl(unix.PR_CAPBSET_READ, 0, 0, 0, 0); err != nil {
		miss(LayerCapabilities, err)
	} else {
		rep.Working |= LayerCapabilities
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		miss(LayerNoNewPrivs, err)
		return rep
	}
	rep.Working |= LayerNoNewPrivs
	if abi := landlockABI(); abi > 0 {
		if err := restrictLandlock(nil); err != nil {
			miss(LayerLandlock, err)
		} else {
			rep.Working |= LayerLandlock
			rep.LandlockABI = abi
		}
	} else {
		miss(LayerLandlock, fmt.Errorf("the kernel offers no landlock (not built in, or not in the lsm= boot list)"))
	}
	if err := installAllowAll(); err != nil {
		miss(LayerSeccomp, err)
	} else if _, err := seccompFilter(); err != nil {
		miss(LayerSeccomp, err)
	} else {
		rep.Working |= LayerSeccomp
	}
	return rep
}

// installAllowAll loads a filter that allows everything, to learn whether filters work at all.
func installAllowAll() error {
	return loadFilter([]bpf.Instruction{bpf.RetConstant{Val: retAllow}})
}
