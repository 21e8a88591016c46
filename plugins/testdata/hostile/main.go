//go:build linux

// Command hostile is the runner tests' one hostile plugin: argv[1] picks what it does, argv[2] (when
// needed) its target. It is built by enclave/runner's tests and uploaded to a plugin store there.
//
// In-plugin attacks run inside Train, after the handshake, and report what happened as the single
// metric of the output: "errno:NAME" for the error met (e.g. "errno:EPERM"), "ok:DETAIL" when the
// attack succeeded, "error:TEXT" for another error. The rest end the process, break the protocol
// or exceed a limit, so that the enclave's runner has to name the reason.
//
//	tcp ADDR | udp ADDR | dns NAME | unixsock PATH    network from inside the sandbox
//	read PATH | write PATH                            file access
//	fork | forkbomb | ptrace [PID]                    new processes, tracing the parent
//	alloc MIB | spin | hang | exit CODE | panic | panic-goroutine | segv
//	alloc-early MIB                                   allocate before the handshake
//	flood MIB                                         write MIB to each of stdout and stderr, then train
//	stderr LINE                                       write LINE to stderr, then train
//	output-huge                                       return 10^8 floats
//	output-lie N                                      raise its own output limit and return N weights
//	nan                                               return a metric that is not a number
//	declare-aggregate                                 declare aggregate mode
//	garbage                                           handshake, then write garbage on the connection
//	listen-exit CODE                                  handshake for a socket it listens on, exit on
//	                                                  the first connection
//	handshake LINE                                    print LINE as its handshake (e.g. one naming
//	                                                  tcp|169.254.169.254:80) instead of serving;
//	                                                  $PLUGIN_UNIX_SOCKET_DIR in LINE is expanded
//	drain                                             read every row; report rows, bytes and columns
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"insitu/plugins/sdk"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hostile MODE [ARG]")
		os.Exit(2)
	}
	mode, arg := os.Args[1], ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch mode {
	case "handshake":
		fakeHandshake(arg)
	case "garbage":
		garbage()
	case "alloc-early":
		// Before the handshake, so the runner learns of the limit only from the process's end.
		allocate(atoi(arg))
	case "listen-exit":
		// Exit the moment the enclave connects, while its plugin client is being set up.
		l := listen()
		l.Accept()
		os.Exit(atoi(arg))
	}
	sdk.Serve(&model{mode: mode, arg: arg})
}

type model struct {
	mode, arg string
}

func (m *model) Describe(context.Context) (sdk.Description, error) {
	mode := sdk.ModePlaintextPublic
	if m.mode == "declare-aggregate" {
		mode = sdk.ModeAggregate
	}
	return sdk.Description{
		Name:    "hostile",
		Version: "1",
		Family:  "hostile_test",
		Mode:    mode,
		Outputs: []sdk.OutputKind{sdk.OutputWeights, sdk.OutputMetrics},
	}, nil
}

func (m *model) Train(ctx context.Context, in *sdk.TrainInput) (*sdk.Output, error) {
	switch m.mode {
	case "alloc":
		return report(fmt.Sprintf("%d MiB", allocate(atoi(m.arg))), nil), nil
	case "spin":
		x := 0
		for {
			x++
		}
	case "hang":
		time.Sleep(time.Hour)
	case "exit":
		code, _ := strconv.Atoi(m.arg)
		os.Exit(code)
	case "panic":
		panic("hostile plugin panics")
	case "panic-goroutine":
		go func() { panic("hostile plugin panics on another goroutine") }()
		time.Sleep(time.Hour)
	case "segv":
		// Die of the signal itself rather than Go's panic and exit status 2: restore the default
		// action (a zeroed struct sigaction is SIG_DFL), then fault. A fault kills even a pid
		// namespace's init, which ignores signals it merely sends itself.
		var act [4]uint64
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGSEGV), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); errno != 0 {
			return nil, errno
		}
		var p *int
		*p = 1
	case "stderr":
		syscall.Write(2, []byte(m.arg+"\n"))
		return report("written", nil), nil
	case "flood":
		mib, _ := strconv.Atoi(m.arg)
		flood(mib)
		return report("flooded", nil), nil
	case "nan":
		return &sdk.Output{Metrics: map[string]float64{"auc": math.NaN()}}, nil
	case "output-huge":
		// 10^8 weights: untouched zero pages, so this costs address space, not memory. The SDK
		// refuses to send it; the enclave reports the refusal.
		return &sdk.Output{Weights: &sdk.Weights{Values: make([]float64, 100_000_000)}}, nil
	case "output-lie":
		n, _ := strconv.Atoi(m.arg)
		in.Limits.MaxOutputFloats = 1 << 40 // the SDK's own check now lets it through
		w := &sdk.Weights{Names: make([]string, n), Values: make([]float64, n)}
		for i := range w.Names {
			w.Names[i] = "w" + strconv.Itoa(i)
		}
		return &sdk.Output{Weights: w}, nil
	case "drain":
		var rows, bytes int64
		for in.Rows.Next() {
			rec := in.Rows.Record()
			rows += rec.NumRows()
			for _, c := range rec.Columns() {
				for _, b := range c.Data().Buffers() {
					if b != nil {
						bytes += int64(b.Len())
					}
				}
			}
		}
		if err := in.Rows.Err(); err != nil {
			return nil, err
		}
		return &sdk.Output{Metrics: map[string]float64{
			"rows": float64(rows), "bytes": float64(bytes), "columns": float64(in.Rows.Schema().NumFields()),
		}}, nil
	}
	detail, err := attack(ctx, m.mode, m.arg)
	return report(detail, err), nil
}

// allocate touches mib MiB of fresh memory and returns how much it holds.
func allocate(mib int) int {
	var chunks [][]byte
	for i := 0; i < mib; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		chunks = append(chunks, b)
	}
	return len(chunks)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// attack tries one thing the sandbox must stop and returns what happened.
func attack(ctx context.Context, op, arg string) (string, error) {
	switch op {
	case "tcp":
		c, err := net.DialTimeout("tcp", arg, 2*time.Second)
		if err != nil {
			return "", err
		}
		c.Close()
		return "connected", nil
	case "udp":
		c, err := net.Dial("udp", arg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_, err = c.Write([]byte("hostile"))
		return "sent", err
	case "dns":
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, arg)
		return strings.Join(addrs, ","), err
	case "unixsock":
		c, err := net.Dial("unix", arg)
		if err != nil {
			return "", err
		}
		c.Close()
		return "connected", nil
	case "read":
		b, err := os.ReadFile(arg)
		return fmt.Sprintf("%d bytes", len(b)), err
	case "write":
		return "written", os.WriteFile(arg, []byte("hostile"), 0o644)
	case "fork":
		pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if errno != 0 {
			return "", errno
		}
		if pid == 0 {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
		}
		var ws syscall.WaitStatus
		syscall.Wait4(int(pid), &ws, 0, nil)
		return "forked", nil
	case "forkbomb":
		n := 0
		for i := 0; i < 1000; i++ {
			pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
			if errno != 0 {
				return fmt.Sprint(n), errno
			}
			if pid == 0 {
				for {
					syscall.RawSyscall6(syscall.SYS_PPOLL, 0, 0, 0, 0, 0, 0)
				}
			}
			n++
		}
		return fmt.Sprintf("%d children", n), nil
	case "ptrace":
		pid := os.Getppid()
		if arg != "" {
			pid, _ = strconv.Atoi(arg)
		}
		if err := syscall.PtraceAttach(pid); err != nil {
			return "", err
		}
		syscall.PtraceDetach(pid)
		return "attached to " + strconv.Itoa(pid), nil
	}
	return "", fmt.Errorf("unknown mode %q", op)
}

// report turns an attack's outcome into the output's one metric.
func report(detail string, err error) *sdk.Output {
	key := "ok:" + detail
	if err != nil {
		key = "error:" + err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			key = "errno:" + errnoName(errno)
		} else {
			// The resolver's errors do not unwrap to the errno; their text ends with its message.
			for e, name := range errnoNames {
				if strings.HasSuffix(err.Error(), ": "+e.Error()) {
					key = "errno:" + name
				}
			}
		}
	}
	if len(key) > 200 {
		key = key[:200]
	}
	return &sdk.Output{Metrics: map[string]float64{key: 1}}
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.ESRCH: "ESRCH", syscall.EACCES: "EACCES",
	syscall.EROFS: "EROFS", syscall.EAGAIN: "EAGAIN", syscall.ENETUNREACH: "ENETUNREACH",
	syscall.ECONNREFUSED: "ECONNREFUSED", syscall.ENOSYS: "ENOSYS", syscall.EAFNOSUPPORT: "EAFNOSUPPORT",
	syscall.EINVAL: "EINVAL",
}

func errnoName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "errno" + strconv.Itoa(int(e))
}

// flood writes mib MiB of short lines to the process's stdout and stderr, both the real
// descriptors (read by go-plugin's handshake scanner and log reader) and the os.Stdout and
// os.Stderr that go-plugin's Serve redirects to the enclave over gRPC.
func flood(mib int) {
	line := []byte(strings.Repeat("flood ", 170) + "\n") // 1021 bytes
	for _, w := range []func([]byte){
		func(b []byte) { syscall.Write(1, b) },
		func(b []byte) { syscall.Write(2, b) },
		func(b []byte) { os.Stdout.Write(b) },
		func(b []byte) { os.Stderr.Write(b) },
	} {
		for n := 0; n < mib<<20; n += len(line) {
			w(line)
		}
	}
}

// fakeHandshake prints line where go-plugin expects its handshake ("1|1|tcp|169.254.169.254:80|grpc||true"
// advertises a TCP address) instead of serving, then waits to be killed.
func fakeHandshake(line string) {
	fmt.Println(strings.ReplaceAll(line, "$PLUGIN_UNIX_SOCKET_DIR", os.Getenv("PLUGIN_UNIX_SOCKET_DIR")))
	time.Sleep(time.Hour)
	os.Exit(0)
}

// garbage listens where go-plugin expects, prints a correct handshake line, and answers every
// connection with bytes that are neither yamux nor HTTP/2.
func garbage() {
	l := listen()
	junk := []byte(strings.Repeat("\xff\x00garbage\x13\x37", 512))
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		go func() {
			for {
				if _, err := c.Write(junk); err != nil {
					c.Close()
					return
				}
			}
		}()
	}
}

// listen listens where go-plugin expects and prints a correct handshake line for it.
func listen() net.Listener {
	path := filepath.Join(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"), "plugin-hostile")
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Printf("1|%d|unix|%s|grpc||true\n", sdk.ProtocolVersion, path)
	return l
}
