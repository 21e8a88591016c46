//go:build !unix

package sandbox

import (
	"fmt"
	"syscall"
)

// SignalName names a signal by its number; plugins are sandboxed on Linux only.
func SignalName(s syscall.Signal) string { return fmt.Sprintf("signal %d (%s)", int(s), s) }
