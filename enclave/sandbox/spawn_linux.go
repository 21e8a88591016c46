package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
)

// makeRunDir creates the run's folder, searchable by the plugin's uid, with the mount point of
// the new root inside.
func makeRunDir(tempDir, id string) (runDir, root string, err error) {
	runDir = filepath.Join(tempDir, runDirPrefix+id)
	if err := os.Mkdir(runDir, 0o711); err != nil {
		return "", "", fmt.Errorf("sandbox: run folder: %w", err)
	}
	if err := os.Chmod(runDir, 0o711); err != nil {
		os.RemoveAll(runDir)
		return "", "", fmt.Errorf("sandbox: run folder: %w", err)
	}
	root = filepath.Join(runDir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		os.RemoveAll(runDir)
		return "", "", fmt.Errorf("sandbox: run folder: %w", err)
	}
	return runDir, root, nil
}

const runDirPrefix = "insitu-sandbox-"

// startTrampoline starts /proc/self/exe as the trampoline in the namespaces of layers, places it
// in the cgroup, and sends it the spec. It returns the process and the read end of the status pipe.
func startTrampoline(is *initSpec, layers Layer, uid, gid int, stdout, stderr, binary *os.File, cg *cgroup) (*os.Process, *os.File, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	defer devnull.Close()
	if stdout == nil {
		stdout = devnull
	}
	if stderr == nil {
		stderr = devnull
	}
	if binary == nil {
		binary = devnull
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer specR.Close()
	defer specW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer statusW.Close()

	attr := &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	for _, f := range []struct {
		l    Layer
		flag uintptr
	}{
		{LayerUserNS, syscall.CLONE_NEWUSER}, {LayerMountNS, syscall.CLONE_NEWNS}, {LayerPIDNS, syscall.CLONE_NEWPID},
		{LayerNetNS, syscall.CLONE_NEWNET}, {LayerIPCNS, syscall.CLONE_NEWIPC}, {LayerUTSNS, syscall.CLONE_NEWUTS},
	} {
		if layers&f.l != 0 {
			attr.Cloneflags |= f.flag
		}
	}
	if layers&LayerUserNS != 0 {
		// The trampoline is root in its namespace (it keeps its capabilities there across the
		// exec of /proc/self/exe); that root is the plugin's host uid and gid.
		root := os.Geteuid() == 0
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		attr.GidMappingsEnableSetgroups = root
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !root}
	}
	var proc *os.Process
	onSpawner(func() {
		proc, err = os.StartProcess("/proc/self/exe", []string{"insitu-sandbox", trampolineArg}, &os.ProcAttr{
			Env:   []string{},
			Files: []*os.File{devnull, stdout, stderr, specR, statusW, binary},
			Sys:   attr,
		})
	})
	if err != nil {
		statusR.Close()
		return nil, nil, namespaceError(layers, err)
	}
	fail := func(err error) (*os.Process, *os.File, error) {
		proc.Kill()
		proc.Wait()
		statusR.Close()
		return nil, nil, err
	}
	if cg != nil {
		if err := cg.add(proc.Pid); err != nil {
			return fail(&LayerError{Layer: LayerCgroup, Err: fmt.Errorf("%w: %w", ErrLayerUnavailable, err)})
		}
	}
	b, err := json.Marshal(is)
	if err != nil {
		return fail(err)
	}
	if _, err := specW.Write(b); err != nil {
		return fail(fmt.Errorf("sandbox: send spec to trampoline: %w", err))
	}
	return proc, statusR, nil
}

// namespaceError explains a failed clone: a namespace the kernel or its settings refuse.
func namespaceError(layers Layer, err error) error {
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EUSERS) {
		return &LayerError{Layer: layers & Namespaces, Err: fmt.Errorf("%w: creating the namespaces failed: %w", ErrLayerUnavailable, err)}
	}
	return fmt.Errorf("sandbox: start trampoline: %w", err)
}

// readReport reads the trampoline's status pipe to its end: nothing means the plugin was
// executed. It closes statusR. When ctx ends first, the process is killed.
func readReport(ctx context.Context, proc *os.Process, statusR *os.File) (*initReport, error) {
	type answer struct {
		b   []byte
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(statusR, 1<<20))
		ch <- answer{b, err}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-ctx.Done():
		proc.Kill()
		a = <-ch
		statusR.Close()
		return nil, fmt.Errorf("sandbox: set-up did not finish: %w", ctx.Err())
	}
	statusR.Close()
	if a.err != nil {
		return nil, fmt.Errorf("sandbox: read set-up status: %w", a.err)
	}
	if len(a.b) == 0 {
		return nil, nil
	}
	var rep initReport
	if err := json.Unmarshal(a.b, &rep); err != nil {
		return nil, fmt.Errorf("%w (the re-executed binary wrote %q)", ErrNoTrampoline, truncate(a.b, 80))
	}
	return &rep, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// asError turns a failure report into an error naming the layer.
func (r *initReport) asError() error {
	if r.isProbe() {
		return errors.New("sandbox: trampoline answered a probe to a start")
	}
	cause := errors.New(r.Msg)
	if r.Errno != 0 {
		cause = fmt.Errorf("%s: %w", r.Msg, syscall.Errno(r.Errno))
	}
	if r.Layer != 0 {
		return &LayerError{Layer: r.Layer, Err: fmt.Errorf("%w: %s: %w", ErrLayerUnavailable, r.Step, cause)}
	}
	return fmt.Errorf("sandbox set-up: %s: %w", r.Step, cause)
}

// Pdeathsig fires when the thread that forked the child ends, not the process, and Go ends a thread
// whenever a goroutine exits while locked to it. Sandboxes are therefore forked from one goroutine
// locked to its thread for the life of the process, so that no other goroutine can ever run on (and
// end) that thread.
var (
	spawnOnce sync.Once
	spawnCh   = make(chan func())
)

func onSpawner(f func()) {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread()
			for f := range spawnCh {
				f()
			}
		}()
	})
	done := make(chan struct{})
	spawnCh <- func() { f(); close(done) }
	<-done
}
