//go:build linux

package sandbox

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_AARCH64

// archDenied are the denied syscalls that exist on arm64 only (arm64 has no fork or vfork: new
// processes come from clone and clone3, which the filter checks).
var archDenied = []uintptr{
	unix.SYS_LOOKUP_DCOOKIE, unix.SYS_NFSSERVCTL,
}
