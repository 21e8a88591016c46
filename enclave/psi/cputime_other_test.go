//go:build !unix

package psi

import "time"

// cpuTime is not measured on this platform: cpu-ratio is reported as NaN.
func cpuTime() time.Duration { return 0 }
