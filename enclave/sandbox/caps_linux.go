package sandbox

import (
	"golang.org/x/sys/unix"
)

// Securebits (linux/securebits.h): uid 0 gains no capabilities on exec, changing uids does not
// touch capabilities (they are cleared explicitly), and none of it can be undone.
const (
	secbitNoRoot                = 1 << 0
	secbitNoRootLocked          = 1 << 1
	secbitNoSetuidFixup         = 1 << 2
	secbitNoSetuidFixupLocked   = 1 << 3
	secbitKeepCapsLocked        = 1 << 5
	secbitNoCapAmbientRaise     = 1 << 6
	secbitNoCapAmbientRaiseLock = 1 << 7
	lockedSecurebits            = secbitNoRoot | secbitNoRootLocked | secbitNoSetuidFixup | secbitNoSetuidFixupLocked | secbitKeepCapsLocked | secbitNoCapAmbientRaise | secbitNoCapAmbientRaiseLock
	maxCap                      = 63
)

// dropBoundingSet empties the capability bounding set of the calling thread and locks the
// securebits. It needs CAP_SETPCAP, so it runs before the ids change.
func dropBoundingSet() error {
	for c := 0; c <= maxCap; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL { // past the kernel's last capability
				break
			}
			return err
		}
	}
	return unix.Prctl(unix.PR_SET_SECUREBITS, lockedSecurebits, 0, 0, 0)
}

// clearCaps empties the ambient, permitted, effective and inheritable sets of the calling thread.
func clearCaps() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return err
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	return unix.Capset(&hdr, &data[0])
}

// switchIDs drops supplementary groups and sets all gids and uids (of every thread).
func switchIDs(uid, gid int) error {
	if err := unix.Setgroups(nil); err != nil {
		return err
	}
	if err := unix.Setresgid(gid, gid, gid); err != nil {
		return err
	}
	return unix.Setresuid(uid, uid, uid)
}
