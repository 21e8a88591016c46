//go:build linux

package sandbox

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_X86_64

// archDenied are the denied syscalls that exist on amd64 only.
var archDenied = []uintptr{
	unix.SYS_FORK, unix.SYS_VFORK,
	unix.SYS_IOPL, unix.SYS_IOPERM, unix.SYS_MODIFY_LDT,
	unix.SYS_USELIB, unix.SYS_USTAT, unix.SYS_SYSFS, unix.SYS_NFSSERVCTL,
	unix.SYS_LOOKUP_DCOOKIE,
}
