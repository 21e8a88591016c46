//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"insitu/enclave/pluginstore"
)

func TestMain(m *testing.M) {
	MaybeRunTrampoline()
	if os.Getenv(parentHelperEnv) != "" {
		parentHelper()
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string
	probePath string
	buildErr  error
)

// probeProgram builds testdata/probe once per test binary and returns its path.
func probeProgram(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "insitu-sandbox-test-")
		if buildErr != nil {
			return
		}
		probePath = filepath.Join(buildDir, "probe")
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goTool, "build", "-o", probePath, "./testdata/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build probe: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return probePath
}

// sealedProbe returns the probe program in a sealed memfd.
func sealedProbe(tb testing.TB) *os.File {
	tb.Helper()
	f, err := os.Open(probeProgram(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	mfd, _, err := pluginstore.SealReader(context.Background(), f, "probe", 1<<30)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { mfd.Close() })
	return mfd
}

// needRoot skips tests that start sandboxes unless they run as root, as on CI.
func needRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("sandbox tests need root (CI runs them as root)")
	}
}

// needLayers skips when this machine lacks one of the layers.
func needLayers(tb testing.TB, l Layer) {
	tb.Helper()
	needRoot(tb)
	if missing := l &^ cachedProbe().Available; missing != 0 {
		tb.Skipf("this machine lacks %s: %s", missing, cachedProbe())
	}
}

// only returns a spec that applies just the given layers (plus what they need), in AllowWeaker mode.
func only(l Layer) Spec {
	return Spec{Mode: AllowWeaker, Disable: AllLayers &^ l}
}

// socketDir makes a socket dir whose parents the plugin's uid can search.
func socketDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp("", "insitu-sock-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type outcome struct {
	out, errOut string
	res         *Result
	err         error
}

// run starts the probe with the arguments under spec and waits for it.
func run(tb testing.TB, spec Spec, args ...string) outcome {
	tb.Helper()
	var out, errOut bytes.Buffer
	spec.Binary = sealedProbe(tb)
	spec.Name = "probe"
	spec.Args = args
	spec.Stdout, spec.Stderr = &out, &errOut
	if spec.SocketDir == "" {
		spec.SocketDir = socketDir(tb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, spec)
	if res == nil && err != nil {
		tb.Fatalf("probe %v: %v", args, err)
	}
	return outcome{strings.TrimSpace(out.String()), errOut.String(), res, err}
}

// expect runs the probe and checks its one line of output.
func expect(tb testing.TB, spec Spec, want string, args ...string) outcome {
	tb.Helper()
	o := run(tb, spec, args...)
	if o.out != want {
		tb.Errorf("probe %v under %s: got %q, want %q (result: %v; stderr: %.300s)", args, spec.Disable^AllLayers, o.out, want, o.res, o.errOut)
	}
	return o
}

// listener is a TCP listener on 127.0.0.1 that counts the connections it accepts.
type listener struct {
	net.Listener
	n atomic.Int64
}

func tcpListener(tb testing.TB) *listener {
	tb.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ln := &listener{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ln.n.Add(1)
			c.Close()
		}
	}()
	tb.Cleanup(func() { l.Close() })
	return ln
}

func (l *listener) assertNone(tb testing.TB) {
	tb.Helper()
	time.Sleep(20 * time.Millisecond)
	if n := l.n.Load(); n != 0 {
		tb.Errorf("the test's listener saw %d connection(s), want 0", n)
	}
}

// plantedSocket is a unix socket listener at a path outside anything given to the plugin.
func plantedSocket(tb testing.TB) (string, *atomic.Int64) {
	tb.Helper()
	d, err := os.MkdirTemp("", "insitu-planted-")
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(d, 0o755)
	p := filepath.Join(d, "sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		tb.Fatal(err)
	}
	os.Chmod(p, 0o777)
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	tb.Cleanup(func() { l.Close(); os.RemoveAll(d) })
	return p, &n
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// parentHelperEnv makes the test binary a parent that starts one sandboxed "probe hang", prints
// its pid and waits to be killed (TestParentDeath).
const parentHelperEnv = "INSITU_SANDBOX_TEST_PARENT"

func parentHelper() {
	f, err := os.Open(os.Getenv(parentHelperEnv))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	mfd, _, err := pluginstore.SealReader(context.Background(), f, "probe", 1<<30)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	p, err := New(Spec{Binary: mfd, Args: []string{"hang"}, TempDir: os.Getenv("TMPDIR"), CgroupName: os.Getenv("INSITU_SANDBOX_TEST_CGROUP")})
	if err == nil {
		err = p.Start(context.Background())
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(p.ID())
	select {}
}
