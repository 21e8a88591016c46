package suite

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
)

// The sandbox shows a plugin no file of the host, so a plugin must be a static executable: either
// an insitu binary built with CGO_ENABLED=0 (it serves the reference plugins with "plugin
// serve-builtin NAME") or static builds of plugins/helr and plugins/logreg in one folder.

// pluginBinary returns the executable serving the reference plugin name and its arguments.
func pluginBinary(cfg *Config, name string) (string, []string, error) {
	p := cfg.PluginBinary
	if p == "" {
		return "", nil, errors.New("no static plugin binary: build insitu with CGO_ENABLED=0, or let the suite build the plugins (it needs the go tool and the source tree)")
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", nil, err
	}
	if st.IsDir() {
		return filepath.Join(p, name), nil, nil
	}
	return p, []string{"plugin", "serve-builtin", name}, nil
}

// IsStatic reports whether the ELF executable at path needs no dynamic loader.
func IsStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return f.Type == elf.ET_EXEC || f.Type == elf.ET_DYN
}

// needsPlugins reports whether the run starts sandboxed plugins.
func needsPlugins(cfg *Config) bool {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return false
	}
	names := cfg.Suite
	if len(names) == 0 {
		names = Workloads()
	}
	return slices.Contains(names, "sandbox") || slices.Contains(names, "scoring") ||
		(slices.Contains(names, "he-lr") && cfg.HEPath != "in-process")
}

// buildPlugins builds plugins/helr and plugins/logreg statically into the work folder with the Go
// toolchain, from the module this process runs in.
func buildPlugins(ctx context.Context, cfg *Config) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goTool); serr != nil {
			return "", fmt.Errorf("no go tool to build the static plugins: %w", err)
		}
	}
	dir := filepath.Join(cfg.WorkDir, "plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-o", dir+"/", "insitu/plugins/helr", "insitu/plugins/logreg")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build of the static plugins failed (%v): %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return dir, nil
}
