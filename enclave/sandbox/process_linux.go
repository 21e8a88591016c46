package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startTimeout bounds set-up when Start's context has no deadline.
const startTimeout = 30 * time.Second

// Process is one sandboxed plugin process. Create it with New or FromCmd, then Start and Wait.
// Its methods Start, Wait, Kill, Stdout, Stderr, Name, ID, Diagnose, PluginToHost and
// HostToPlugin make it a go-plugin runner.Runner.
type Process struct {
	spec Spec
	lim  Limits

	// Pipes offered by Stdout and Stderr (FromCmd); the write ends go to the child.
	stdoutR, stdoutW *os.File
	stderrR, stderrW *os.File
	copying          sync.WaitGroup

	mu         sync.Mutex
	started    bool
	plan       *plan
	proc       *os.Process
	pid        int
	cg         *cgroup
	runDir     string
	start      time.Time
	timer      *time.Timer
	killReason Reason // ReasonTimeout or ReasonKilled once the sandbox killed it; -1 before
	done       chan struct{}
	result     *Result
}

// New checks a Spec and returns an unstarted Process.
func New(spec Spec) (*Process, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	spec.Args = append([]string(nil), spec.Args...)
	spec.Env = append([]string(nil), spec.Env...)
	spec.Binds = append([]Bind(nil), spec.Binds...)
	return &Process{spec: spec, lim: spec.Limits.withDefaults(), killReason: -1, done: make(chan struct{})}, nil
}

// FromCmd turns a plugin command prepared by go-plugin (ClientConfig.RunnerFunc's cmd) into a
// sandboxed Process: cmd.Args[1:] become the arguments unless spec.Args is set, and cmd.Env is
// appended to spec.Env, minus any entry also present in this process's own environment (set
// ClientConfig.SkipHostEnv; this is the second line of defence). cmd.Path, cmd.Stdin, cmd.Stdout,
// cmd.Stderr and cmd.SysProcAttr are ignored: the program is spec.Binary, standard input is
// /dev/null, and the plugin's output is read through the pipes Stdout and Stderr return (go-plugin
// reads the handshake from one and logs the other), so spec.Stdout and spec.Stderr must be nil.
// When spec.SocketDir is empty it is taken from PLUGIN_UNIX_SOCKET_DIR in cmd.Env.
func FromCmd(cmd *exec.Cmd, spec Spec) (*Process, error) {
	if spec.Stdout != nil || spec.Stderr != nil {
		return nil, errors.New("sandbox: FromCmd offers the plugin's output as pipes; leave spec.Stdout and spec.Stderr nil")
	}
	if spec.Args == nil && len(cmd.Args) > 1 {
		spec.Args = cmd.Args[1:]
	}
	host := map[string]bool{}
	for _, e := range os.Environ() {
		host[e] = true
	}
	env := append([]string(nil), spec.Env...)
	for _, e := range cmd.Env {
		if host[e] {
			continue
		}
		env = append(env, e)
		if v, ok := strings.CutPrefix(e, "PLUGIN_UNIX_SOCKET_DIR="); ok && spec.SocketDir == "" {
			spec.SocketDir = filepath.Clean(v)
		}
	}
	spec.Env = env
	p, err := New(spec)
	if err != nil {
		return nil, err
	}
	if p.stdoutR, p.stdoutW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.stderrR, p.stderrW, err = os.Pipe(); err != nil {
		p.closePipes()
		return nil, err
	}
	return p, nil
}

// Run starts a sandboxed process and waits for it. Cancelling ctx kills it (ReasonTimeout when
// ctx's deadline passed, ReasonKilled otherwise). The error is nil only for exit status 0; the
// Result is returned whenever the process started.
func Run(ctx context.Context, spec Spec) (*Result, error) {
	p, err := New(spec)
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			p.killWith(ReasonTimeout)
		} else {
			p.killWith(ReasonKilled)
		}
	})
	defer stop()
	<-p.done
	return p.result, p.result.Err()
}

// Start sets up the sandbox and executes the plugin in it. It returns once the plugin's program
// is running (or set-up failed). ctx bounds set-up only, as go-plugin's runner contract wants;
// the process's lifetime is bounded by Limits.WallClock, Kill, or Run's context. In strict mode
// a missing or disabled mandatory layer makes Start fail with a *LayerError. The plugin is
// killed if this process dies (Pdeathsig). Call Wait (or let go-plugin call it) to learn the
// Result.
func (p *Process) Start(ctx context.Context) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("sandbox: process already started")
	}
	p.started = true
	if len(os.Args) > 1 && os.Args[1] == trampolineArg {
		return ErrNoTrampoline
	}
	if err := checkSealed(p.spec.Binary); err != nil {
		return err
	}
	pl, err := makePlan(&p.spec, cachedProbe())
	if err != nil {
		return err
	}
	p.plan = pl
	defer func() {
		if err != nil {
			p.cleanup()
			p.closePipes()
		}
	}()

	id := runID()
	uid, gid := os.Getuid(), os.Getgid()
	if pl.layers&LayerNonRootUID != 0 {
		uid, gid = p.spec.uid(), p.spec.gid()
	}
	mounts := []initBind{{Path: "/dev/null", File: true, Device: true, Writable: true}}
	if d := p.spec.SocketDir; d != "" {
		if err := os.Chown(d, uid, gid); err != nil {
			return fmt.Errorf("sandbox: give socket dir to the plugin's uid: %w", err)
		}
		mounts = append(mounts, initBind{Path: d, Writable: true, Socket: true})
	}
	for _, b := range p.spec.Binds {
		st, err := os.Stat(b.Path)
		if err != nil {
			return fmt.Errorf("sandbox: bind: %w", err)
		}
		if b.Writable && st.IsDir() {
			if err := os.Chown(b.Path, uid, gid); err != nil {
				return fmt.Errorf("sandbox: give bind %s to the plugin's uid: %w", b.Path, err)
			}
		}
		mounts = append(mounts, initBind{Path: b.Path, Writable: b.Writable, File: !st.IsDir()})
	}
	is := &initSpec{
		Layers:   pl.layers,
		Argv:     append([]string{p.spec.name()}, p.spec.Args...),
		Env:      p.spec.Env,
		Mounts:   mounts,
		UID:      uid,
		GID:      gid,
		Hostname: "insitu-sandbox",
		Rlimits:  p.rlimits(),
	}
	if is.Env == nil {
		is.Env = []string{}
	}
	if pl.layers&LayerRootFS != 0 {
		if p.runDir, is.Root, err = makeRunDir(p.spec.tempDir(), id); err != nil {
			return err
		}
	}
	if pl.layers&LayerCgroup != 0 {
		p.cg, err = newCgroup(pl.cgroup, p.spec.cgroupName(), id, p.lim)
		if err != nil {
			// The cgroup is not mandatory: fall back to the address-space backstop, loudly.
			p.cg = nil
			pl.layers &^= LayerCgroup
			pl.weakened |= LayerCgroup
			pl.cgroup = ""
			pl.warnings = append(pl.warnings, fmt.Sprintf("no cgroup memory and pids limits (%v): memory is bounded only by the address-space backstop", err))
		}
	}
	stdout, err := p.output(p.spec.Stdout, &p.stdoutW)
	if err != nil {
		return err
	}
	stderr, err := p.output(p.spec.Stderr, &p.stderrW)
	if err != nil {
		return err
	}
	p.start = time.Now()
	proc, statusR, err := startTrampoline(is, pl.layers, uid, gid, stdout, stderr, p.spec.Binary, p.cg)
	if p.stdoutW != nil {
		p.stdoutW.Close()
		p.stdoutW = nil
	}
	if p.stderrW != nil {
		p.stderrW.Close()
		p.stderrW = nil
	}
	if err != nil {
		return err
	}
	p.proc, p.pid = proc, proc.Pid
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	rep, err := readReport(ctx, proc, statusR)
	if err == nil && rep != nil {
		err = rep.asError()
	}
	if err != nil {
		proc.Kill()
		proc.Wait()
		p.proc = nil
		return err
	}
	p.timer = time.AfterFunc(p.lim.WallClock, func() { p.killWith(ReasonTimeout) })
	go p.reap()
	return nil
}

// output returns the file the child writes to: w itself when it is a file, a pipe copied into w
// otherwise, or the write end of the pipe FromCmd made (*pw) when w is nil.
func (p *Process) output(w io.Writer, pw **os.File) (*os.File, error) {
	if w == nil {
		return *pw, nil // nil means /dev/null
	}
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	r, wf, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	*pw = wf
	p.copying.Add(1)
	go func() {
		defer p.copying.Done()
		io.Copy(w, r)
		r.Close()
	}()
	return wf, nil
}

func (p *Process) rlimits() []rlimit {
	l := p.lim
	cpu := l.cpuSeconds()
	return []rlimit{
		{unix.RLIMIT_CPU, cpu, cpu + 1},
		{unix.RLIMIT_NPROC, l.Threads, l.Threads},
		{unix.RLIMIT_NOFILE, l.OpenFiles, l.OpenFiles},
		{unix.RLIMIT_FSIZE, l.FileSize, l.FileSize},
		{unix.RLIMIT_AS, l.AddressSpace, l.AddressSpace},
		{unix.RLIMIT_CORE, 0, 0},
		{unix.RLIMIT_MEMLOCK, 0, 0},
		{unix.RLIMIT_MSGQUEUE, 0, 0},
		{unix.RLIMIT_NICE, 0, 0},
		{unix.RLIMIT_RTPRIO, 0, 0},
	}
}

// reap waits for the process, works out why it ended and removes the run's cgroup and folder.
func (p *Process) reap() {
	st, err := p.proc.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer.Stop()
	res := &Result{
		Limits:      p.lim,
		Layers:      p.plan.layers,
		Weakened:    p.plan.weakened,
		Warnings:    p.plan.warnings,
		LandlockABI: p.plan.abi,
		Cgroup:      p.plan.cgroup,
		WallTime:    time.Since(p.start),
		ExitCode:    -1,
		OOMKills:    p.cg.oomKills(),
	}
	if err == nil {
		ws := st.Sys().(syscall.WaitStatus)
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			res.CPUTime = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			res.MaxRSS = ru.Maxrss * 1024
		}
		if ws.Signaled() {
			res.Signal = ws.Signal()
		} else {
			res.ExitCode = ws.ExitStatus()
		}
	}
	cpuLimit := time.Duration(p.lim.cpuSeconds()) * time.Second
	switch {
	case res.Signal == syscall.SIGKILL && p.killReason >= 0:
		res.Reason = p.killReason
	case res.Signal == syscall.SIGKILL && res.OOMKills > 0:
		res.Reason = ReasonOutOfMemory
	case res.Signal == syscall.SIGXCPU || res.Signal == syscall.SIGKILL && p.plan.layers&LayerRlimits != 0 && res.CPUTime >= cpuLimit:
		res.Reason = ReasonCPULimit
	case res.Signal != 0:
		res.Reason = ReasonSignaled
	default:
		res.Reason = ReasonExited
	}
	p.cg.kill()
	p.cleanup()
	p.mu.Unlock()
	p.copying.Wait()
	p.mu.Lock()
	p.result = res
	close(p.done)
}

// cleanup removes the cgroup and the run folder. Called with p.mu held.
func (p *Process) cleanup() {
	if p.cg != nil {
		p.cg.remove()
		p.cg = nil
	}
	if p.runDir != "" {
		os.RemoveAll(p.runDir)
		p.runDir = ""
	}
}

func (p *Process) closePipes() {
	for _, f := range []**os.File{&p.stdoutR, &p.stdoutW, &p.stderrR, &p.stderrW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// killWith kills the sandbox (its pid 1, so every process in it) and records why.
func (p *Process) killWith(r Reason) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil || p.result != nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	if p.killReason < 0 {
		p.killReason = r
	}
	p.proc.Signal(syscall.SIGKILL)
	p.cg.kill()
}

// Wait waits until the process has ended and its cgroup and folder are removed, or ctx is done.
// It returns nil for exit status 0 and an *ExitError otherwise; Result has the details. Wait
// closes the pipes returned by Stdout and Stderr: read them to the end first.
func (p *Process) Wait(ctx context.Context) error {
	p.mu.Lock()
	started := p.proc != nil
	p.mu.Unlock()
	if !started {
		return errors.New("sandbox: process not started")
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	p.closePipes()
	p.mu.Unlock()
	return p.result.Err()
}

// Result returns how the process ended, or nil while it runs.
func (p *Process) Result() *Result {
	select {
	case <-p.done:
		return p.result
	default:
		return nil
	}
}

// Kill kills the sandboxed process and everything in its sandbox. Killing an ended process is not
// an error. The Result's reason is ReasonKilled.
func (p *Process) Kill(context.Context) error {
	p.killWith(ReasonKilled)
	return nil
}

// Layers returns the layers applied, the layers weakened and the warnings to log, once Start
// has succeeded.
func (p *Process) Layers() (applied, weakened Layer, warnings []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plan == nil {
		return 0, 0, nil
	}
	return p.plan.layers, p.plan.weakened, append([]string(nil), p.plan.warnings...)
}

// Stdout returns the plugin's standard output for a Process made by FromCmd; for one made by New
// (whose output goes to Spec.Stdout) it returns an empty reader.
func (p *Process) Stdout() io.ReadCloser { return readCloser(p.stdoutR) }

// Stderr returns the plugin's standard error for a Process made by FromCmd; for one made by New
// it returns an empty reader.
func (p *Process) Stderr() io.ReadCloser { return readCloser(p.stderrR) }

func readCloser(f *os.File) io.ReadCloser {
	if f == nil {
		return io.NopCloser(strings.NewReader(""))
	}
	return f
}

// Name returns "sandbox:" and the plugin's argv[0].
func (p *Process) Name() string { return "sandbox:" + p.spec.name() }

// ID returns the host pid of the sandbox's pid 1 (the plugin), or "" before Start.
func (p *Process) ID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 {
		return ""
	}
	return strconv.Itoa(p.pid)
}

// Diagnose describes the sandbox, for go-plugin's start-up failure message.
func (p *Process) Diagnose(context.Context) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plan == nil {
		return "the sandbox was not set up"
	}
	s := fmt.Sprintf("the plugin ran in a sandbox with %s; it must be a static executable for this architecture that serves over a unix socket in %s",
		p.plan.layers, p.spec.SocketDir)
	if p.result != nil {
		s += "; it " + p.result.String()
	}
	return s
}

// PluginToHost accepts only a unix socket directly inside the socket dir; anything else (a TCP
// address, a socket elsewhere) is refused with an *AddressError before go-plugin dials it.
func (p *Process) PluginToHost(network, addr string) (string, string, error) {
	if err := p.checkAddr(network, addr); err != nil {
		return "", "", err
	}
	return network, addr, nil
}

// HostToPlugin applies the same rule to addresses the host hands to the plugin.
func (p *Process) HostToPlugin(network, addr string) (string, string, error) {
	if err := p.checkAddr(network, addr); err != nil {
		return "", "", err
	}
	return network, addr, nil
}

func (p *Process) checkAddr(network, addr string) error {
	dir := p.spec.SocketDir
	if network == "unix" && dir != "" && filepath.IsAbs(addr) && filepath.Clean(addr) == addr &&
		filepath.Dir(addr) == dir && filepath.Base(addr) != ".." {
		return nil
	}
	return &AddressError{Network: network, Addr: addr, SocketDir: dir}
}

// checkSealed makes sure the binary is a memfd whose content can no longer change.
func checkSealed(f *os.File) error {
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotSealed, err)
	}
	const want = unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK | unix.F_SEAL_SEAL
	if seals&want != want {
		return fmt.Errorf("%w: seals %#x lack %#x", ErrNotSealed, seals, want&^seals)
	}
	return nil
}
