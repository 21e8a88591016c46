//go:build linux

package sandbox

import (
	"context"
	"os/exec"
	"testing"
)

// BenchmarkStart measures start-to-exit latency of the probe printing one line, sandboxed in
// strict mode and run directly.
func BenchmarkStart(b *testing.B) {
	needRoot(b)
	b.Run("sandbox=strict", func(b *testing.B) {
		needLayers(b, Mandatory)
		spec := Spec{Binary: sealedProbe(b), Args: []string{"hello"}, SocketDir: socketDir(b)}
		for b.Loop() {
			if _, err := Run(context.Background(), spec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sandbox=none", func(b *testing.B) {
		path := probeProgram(b)
		for b.Loop() {
			if err := exec.Command(path, "hello").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
