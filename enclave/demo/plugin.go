package demo

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// The sandbox shows a plugin no file of the host: a plugin must be a statically linked executable.
// The demo runs the reference plugins built into the insitu binary ("insitu plugin serve-builtin
// NAME") when that binary is static (CGO_ENABLED=0), and otherwise builds the reference plugin's own
// main statically with the Go toolchain that runs the demo ("go run ./cmd/insitu demo").

// pluginBinary returns a static executable serving the built-in plugin name and the arguments that
// make it do so.
func pluginBinary(ctx context.Context, name, tmp string, w io.Writer) (path string, args []string, err error) {
	self, err := os.Executable()
	if err == nil {
		if static, serr := isStatic(self); serr == nil && static {
			return self, []string{"plugin", "serve-builtin", name}, nil
		}
	}
	goTool, lerr := exec.LookPath("go")
	if lerr != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	fmt.Fprintf(w, "      this insitu binary is dynamically linked and the sandbox shows a plugin no host library:\n"+
		"      building plugins/%s statically with the Go toolchain (a minute the first time)\n", name)
	out := filepath.Join(tmp, "plugin-"+name)
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-o", out, "insitu/plugins/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("demo: this insitu binary is dynamically linked, so it cannot serve as a sandboxed plugin, "+
			"and building the static plugin %s failed (%v): %s\nbuild insitu statically and run it from the repository: "+
			"CGO_ENABLED=0 go build ./cmd/insitu && ./insitu demo", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil, nil
}

// isStatic reports whether the ELF executable at path needs no dynamic loader.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return false, errors.New("not an executable")
	}
	return true, nil
}
