//go:build linux

// Command probe is the sandbox tests' one test program: argv[1] picks what it tries, and it
// prints one line: "ok" and details, or "errno NAME" for the error it met.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe OP [ARG]")
		os.Exit(2)
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	report(run(os.Args[1], arg))
}

func report(detail string, err error) {
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			fmt.Println("errno", unix.ErrnoName(errno))
		} else {
			fmt.Println("error", err)
		}
		return
	}
	fmt.Println(strings.TrimSpace("ok " + detail))
}

func run(op, arg string) (string, error) {
	switch op {
	case "hello":
		return "hello from the sandbox", nil
	case "id":
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			return "", err
		}
		nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		sec, _ := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
		host, _ := os.Hostname()
		bset := 0
		for c := 0; c < 64; c++ {
			if v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && v == 1 {
				bset++
			}
		}
		groups, _ := unix.Getgroups()
		return fmt.Sprintf("uid=%d gid=%d groups=%v pid=%d capeff=%x capprm=%x bset=%d nnp=%d seccomp=%d host=%s env=%s",
			os.Getuid(), os.Getgid(), groups, os.Getpid(), uint64(caps[1].Effective)<<32|uint64(caps[0].Effective),
			uint64(caps[1].Permitted)<<32|uint64(caps[0].Permitted), bset, nnp, sec, host, strings.Join(os.Environ(), ",")), nil
	case "fork":
		// A raw clone without CLONE_THREAD, as fork(2) does; a child exits at once.
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
		return fmt.Sprint(n), nil
	case "exec":
		return "", syscall.Exec(arg, []string{arg}, nil)
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
		_, err = c.Write([]byte("probe"))
		return "sent", err
	case "dns":
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
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
		path, size, _ := strings.Cut(arg, ":")
		n := 5
		if size != "" {
			n, _ = strconv.Atoi(size)
		}
		return "written", os.WriteFile(path, make([]byte, n), 0o644)
	case "alloc":
		mib, _ := strconv.Atoi(arg)
		var chunks [][]byte
		for i := 0; i < mib; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			chunks = append(chunks, b)
		}
		return fmt.Sprintf("%d MiB", len(chunks)), nil
	case "spin":
		x := 0
		for {
			x++
		}
	case "hang":
		time.Sleep(time.Hour)
		return "woke", nil
	case "ptrace":
		pid, _ := strconv.Atoi(arg)
		return "attached", unix.PtraceAttach(pid)
	case "kill0":
		pid, _ := strconv.Atoi(arg)
		return "signalled", unix.Kill(pid, 0)
	case "unshare":
		return "unshared", unix.Unshare(unix.CLONE_NEWUTS)
	case "mount":
		if err := unix.Mount("tmpfs", arg, "tmpfs", 0, ""); err != nil {
			return "", err
		}
		unix.Unmount(arg, unix.MNT_DETACH)
		return "mounted", nil
	case "threads":
		// Start n OS threads that stay blocked; the runtime dies if it cannot create one.
		n, _ := strconv.Atoi(arg)
		ready := make(chan struct{})
		for i := 0; i < n; i++ {
			go func() {
				runtime.LockOSThread()
				ready <- struct{}{}
				select {}
			}()
			<-ready
		}
		return fmt.Sprintf("%d threads", n), nil
	case "files":
		n, _ := strconv.Atoi(arg)
		for i := 0; i < n; i++ {
			if _, err := os.Open(os.DevNull); err != nil {
				return fmt.Sprint(i), err
			}
		}
		return fmt.Sprintf("%d files", n), nil
	case "socket":
		// socket(domain, SOCK_STREAM): domain is "inet", "inet6", "netlink" or "unix".
		dom := map[string]int{"inet": unix.AF_INET, "inet6": unix.AF_INET6, "netlink": unix.AF_NETLINK, "unix": unix.AF_UNIX}[arg]
		typ := unix.SOCK_STREAM
		if arg == "netlink" {
			typ = unix.SOCK_RAW
		}
		fd, err := unix.Socket(dom, typ, 0)
		if err == nil {
			unix.Close(fd)
		}
		return "socket", err
	case "bpf":
		_, _, errno := unix.Syscall(unix.SYS_BPF, 0, 0, 0)
		return "", errno
	case "iouring":
		_, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, 0, 0)
		return "", errno
	case "listen":
		l, err := net.Listen("unix", arg)
		if err != nil {
			return "", err
		}
		l.Close()
		return "listening", nil
	}
	return "", fmt.Errorf("unknown op %q", op)
}
