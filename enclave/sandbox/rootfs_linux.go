package sandbox

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// makeRoot mounts a small tmpfs on root, binds each path at the same path inside it, makes it
// read-only and pivots into it, detaching the old root. It runs in the sandbox's own mount
// namespace.
func makeRoot(root string, mounts []initBind) error {
	// Nothing mounted below may propagate back to the host (a mount namespace created without a
	// user namespace keeps the host's shared propagation).
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	const rootFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("tmpfs", root, "tmpfs", rootFlags, "size=64k,nr_inodes=256,mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", root, err)
	}
	for _, m := range mounts {
		if err := bindInto(root, m); err != nil {
			return err
		}
	}
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|rootFlags, ""); err != nil {
		return fmt.Errorf("make root read-only: %w", err)
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only
	// the new root, with no folder needed for the old one.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

func bindInto(root string, m initBind) error {
	target := filepath.Join(root, m.Path)
	parent := target
	if m.File {
		parent = filepath.Dir(target)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("mount point for %s: %w", m.Path, err)
	}
	if m.File {
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("mount point for %s: %w", m.Path, err)
		}
		f.Close()
	}
	if err := unix.Mount(m.Path, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", m.Path, err)
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NOSUID | unix.MS_NOEXEC)
	if !m.Writable && !m.Device && !m.Socket {
		flags |= unix.MS_RDONLY
	}
	if !m.Device {
		flags |= unix.MS_NODEV
	}
	// In a user namespace the flags of the source mount are locked: a remount must keep them.
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", m.Path, err)
	}
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	switch {
	case uintptr(st.Flags)&unix.ST_NOATIME != 0:
		flags |= unix.MS_NOATIME
	case uintptr(st.Flags)&unix.ST_RELATIME != 0:
		flags |= unix.MS_RELATIME
	default:
		flags |= unix.MS_STRICTATIME
	}
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s: %w", m.Path, err)
	}
	return nil
}
