package sandbox

import (
	"fmt"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Access rights granted below the plugin's paths. Nothing grants execute: the plugin itself is a
// memfd, which Landlock does not govern. No TCP port is granted, and (ABI 6) abstract unix sockets
// and signals are scoped to the sandbox. Connecting to path-named unix sockets is restricted only
// from ABI 9 on; below that it is left to the read-only root and the mount namespace.
const (
	llRead      = ll.AccessFSReadFile | ll.AccessFSReadDir
	llWrite     = llRead | ll.AccessFSWriteFile | ll.AccessFSTruncate | ll.AccessFSRemoveFile | ll.AccessFSRemoveDir | ll.AccessFSMakeReg | ll.AccessFSMakeDir
	llSocketDir = llWrite | ll.AccessFSMakeSock
	llDevice    = ll.AccessFSReadFile | ll.AccessFSWriteFile
)

// landlockABI returns the kernel's Landlock ABI version, 0 without Landlock.
func landlockABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// restrictLandlock enforces the ruleset on the calling (locked) thread. The caller holds
// no_new_privs or CAP_SYS_ADMIN. Paths are resolved in the caller's current root.
func restrictLandlock(mounts []initBind) error {
	var rules []landlock.Rule
	for _, m := range mounts {
		access := landlock.AccessFSSet(llRead)
		switch {
		case m.Device:
			access = llDevice
		case m.Socket:
			access = llSocketDir
		case m.Writable:
			access = llWrite
		}
		if m.File {
			access &= ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate
		}
		rules = append(rules, landlock.PathAccess(access, m.Path))
	}
	fd, flags, err := landlock.V11.BestEffort().NewRulesetFD(rules...)
	if err != nil {
		return fmt.Errorf("ruleset: %w", err)
	}
	if fd < 0 {
		return fmt.Errorf("ruleset: landlock not supported by this kernel")
	}
	defer closeFD(fd)
	if err := ll.LandlockRestrictSelf(fd, flags); err != nil {
		return fmt.Errorf("restrict self: %w", err)
	}
	return nil
}
