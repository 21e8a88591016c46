package runner

import (
	"net"

	"golang.org/x/sys/unix"
)

// spliceRelay copies src to dst through a pipe with splice(2), without bringing the bytes into
// user space, until either side fails or src ends. It reports false, having copied nothing, when
// the connections are not unix sockets or no pipe can be made.
func spliceRelay(dst, src net.Conn) bool {
	s, ok1 := src.(*net.UnixConn)
	d, ok2 := dst.(*net.UnixConn)
	if !ok1 || !ok2 {
		return false
	}
	rs, err1 := s.SyscallConn()
	rd, err2 := d.SyscallConn()
	if err1 != nil || err2 != nil {
		return false
	}
	var pfd [2]int
	if err := unix.Pipe2(pfd[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return false
	}
	defer unix.Close(pfd[0])
	defer unix.Close(pfd[1])
	unix.FcntlInt(uintptr(pfd[1]), unix.F_SETPIPE_SZ, relayBuffer) // a failure keeps the default
	const flags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
	for {
		var n int64
		var serr error
		err := rs.Read(func(fd uintptr) bool {
			n, serr = unix.Splice(int(fd), nil, pfd[1], nil, relayBuffer, flags)
			return serr != unix.EAGAIN
		})
		if err != nil || serr != nil || n == 0 {
			return true
		}
		for n > 0 {
			var m int64
			err := rd.Write(func(fd uintptr) bool {
				m, serr = unix.Splice(pfd[0], nil, int(fd), nil, int(n), flags)
				return serr != unix.EAGAIN
			})
			if err != nil || serr != nil || m <= 0 {
				return true
			}
			n -= m
		}
	}
}
