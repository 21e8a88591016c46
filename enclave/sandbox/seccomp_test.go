//go:build linux

package sandbox

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// seccompData lays out struct seccomp_data for x/net/bpf's VM, which loads words big-endian.
func seccompData(arch uint32, nr uint32, args ...uint32) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], a)
	}
	return b
}

func TestSeccompFilter(t *testing.T) {
	prog, err := seccompFilter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	eval := func(arch, nr uint32, args ...uint32) uint32 {
		t.Helper()
		v, err := vm.Run(seccompData(arch, nr, args...))
		if err != nil {
			t.Fatal(err)
		}
		return uint32(v)
	}
	eperm, enosys := retErrno(unix.EPERM), retErrno(unix.ENOSYS)
	want := map[uint32]uint32{}
	for _, nr := range append(append([]uintptr(nil), deniedSyscalls...), archDenied...) {
		want[uint32(nr)] = eperm
	}
	for _, nr := range enosysSyscalls {
		want[uint32(nr)] = enosys
	}
	// Every syscall number, with argument values that would pass the argument checks of socket
	// and clone: the verdict of a syscall never depends on another syscall's rule.
	for nr := uint32(0); nr < 600; nr++ {
		exp, ok := want[nr]
		if !ok {
			exp = retAllow
		}
		for _, args := range [][]uint32{{0, 0}, {unix.AF_UNIX, 0}, {unix.CLONE_THREAD | unix.CLONE_VM, 0}, {nr, nr}} {
			got := eval(auditArch, nr, args...)
			switch uintptr(nr) {
			case unix.SYS_SOCKET, unix.SYS_SOCKETPAIR, unix.SYS_CLONE, unix.SYS_IOCTL:
				continue // checked below
			}
			if got != exp {
				t.Errorf("syscall %d args %v: got %#x, want %#x", nr, args, got, exp)
			}
		}
	}
	for _, c := range []struct {
		name string
		nr   uintptr
		args []uint32
		want uint32
	}{
		{"fork as clone(SIGCHLD)", unix.SYS_CLONE, []uint32{uint32(unix.SIGCHLD)}, eperm},
		{"vfork as clone", unix.SYS_CLONE, []uint32{unix.CLONE_VM | unix.CLONE_VFORK | uint32(unix.SIGCHLD)}, eperm},
		{"Go thread", unix.SYS_CLONE, []uint32{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD}, retAllow},
		{"thread with new user namespace", unix.SYS_CLONE, []uint32{unix.CLONE_THREAD | unix.CLONE_NEWUSER}, eperm},
		{"thread with new network namespace", unix.SYS_CLONE, []uint32{unix.CLONE_THREAD | unix.CLONE_NEWNET}, eperm},
		{"clone3", unix.SYS_CLONE3, nil, enosys},
		{"unix socket", unix.SYS_SOCKET, []uint32{unix.AF_UNIX}, retAllow},
		{"inet socket", unix.SYS_SOCKET, []uint32{unix.AF_INET}, eperm},
		{"inet6 socket", unix.SYS_SOCKET, []uint32{unix.AF_INET6}, eperm},
		{"netlink socket", unix.SYS_SOCKET, []uint32{unix.AF_NETLINK}, eperm},
		{"packet socket", unix.SYS_SOCKET, []uint32{unix.AF_PACKET}, eperm},
		{"vsock socket", unix.SYS_SOCKET, []uint32{unix.AF_VSOCK}, eperm},
		{"unix socketpair", unix.SYS_SOCKETPAIR, []uint32{unix.AF_UNIX}, retAllow},
		{"inet socketpair", unix.SYS_SOCKETPAIR, []uint32{unix.AF_INET}, eperm},
		{"ioctl TIOCSTI", unix.SYS_IOCTL, []uint32{0, unix.TIOCSTI}, eperm},
		{"ioctl TIOCLINUX", unix.SYS_IOCTL, []uint32{0, unix.TIOCLINUX}, eperm},
		{"ioctl TCGETS", unix.SYS_IOCTL, []uint32{0, unix.TCGETS}, retAllow},
		{"execveat", unix.SYS_EXECVEAT, nil, retAllow},
		{"execve", unix.SYS_EXECVE, nil, eperm},
		{"ptrace", unix.SYS_PTRACE, nil, eperm},
		{"mount", unix.SYS_MOUNT, nil, eperm},
		{"pivot_root", unix.SYS_PIVOT_ROOT, nil, eperm},
		{"kexec_load", unix.SYS_KEXEC_LOAD, nil, eperm},
		{"bpf", unix.SYS_BPF, nil, eperm},
		{"io_uring_setup", unix.SYS_IO_URING_SETUP, nil, eperm},
		{"keyctl", unix.SYS_KEYCTL, nil, eperm},
		{"finit_module", unix.SYS_FINIT_MODULE, nil, eperm},
		{"unshare", unix.SYS_UNSHARE, nil, eperm},
		{"setns", unix.SYS_SETNS, nil, eperm},
		{"perf_event_open", unix.SYS_PERF_EVENT_OPEN, nil, eperm},
		{"read", unix.SYS_READ, nil, retAllow},
		{"mmap", unix.SYS_MMAP, nil, retAllow},
		{"connect", unix.SYS_CONNECT, nil, retAllow},
	} {
		if got := eval(auditArch, uint32(c.nr), c.args...); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
	if got := eval(unix.AUDIT_ARCH_I386, unix.SYS_READ); got != retKill {
		t.Errorf("foreign architecture: got %#x, want kill", got)
	}
	if auditArch == unix.AUDIT_ARCH_X86_64 {
		if got := eval(auditArch, 0x40000000|unix.SYS_READ); got != eperm {
			t.Errorf("x32 read: got %#x, want EPERM", got)
		}
	}
}

func TestBuildFilterRejectsDuplicates(t *testing.T) {
	if _, err := buildFilter(auditArch, []uintptr{unix.SYS_PTRACE, unix.SYS_PTRACE}, nil); err == nil {
		t.Error("a syscall listed twice was accepted")
	}
	if _, err := buildFilter(auditArch, []uintptr{unix.SYS_CLONE}, nil); err == nil {
		t.Error("clone listed again after its argument rule was accepted")
	}
}
