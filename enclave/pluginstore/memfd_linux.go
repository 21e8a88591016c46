package pluginstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Seals that make a memfd's content final: no write, grow or shrink, and no change of seals.
const seals = unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK | unix.F_SEAL_SEAL

// SealReader copies at most max bytes from r into a new memfd, seals it, and returns it with the
// SHA-256 of its sealed content (read back from the memfd, not from r). The memfd is executable
// and close-on-exec; its offset is 0.
func SealReader(ctx context.Context, r io.Reader, name string, max int64) (*os.File, Digest, error) {
	var d Digest
	// MFD_EXEC asks for an executable memfd where vm.memfd_noexec would otherwise refuse; kernels
	// before 6.3 do not know the flag.
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, d, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	if err == nil {
		_, err = unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals)
		if err != nil {
			err = fmt.Errorf("seal memfd: %w", err)
		}
	}
	if err == nil {
		h := sha256.New()
		_, err = io.Copy(h, io.NewSectionReader(f, 0, 1<<62))
		h.Sum(d[:0])
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, Digest{}, err
	}
	return f, d, nil
}
