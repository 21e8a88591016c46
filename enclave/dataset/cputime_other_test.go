//go:build !unix

package dataset

import "time"

// processCPU is not measured outside unix systems.
func processCPU() time.Duration { return 0 }
