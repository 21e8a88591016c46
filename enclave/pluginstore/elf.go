package pluginstore

import (
	"debug/elf"
	"fmt"
	"io"
	"runtime"
)

// machines maps GOARCH to the ELF machine a plugin must be built for.
var machines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"riscv64": elf.EM_RISCV,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"loong64": elf.EM_LOONGARCH,
}

// CheckELF reports whether r holds a 64-bit static ELF executable for this machine's
// architecture: the sandbox has no dynamic loader or libraries to offer. It returns an error
// wrapping ErrNotExecutable saying what is wrong and how to build a plugin that fits.
func CheckELF(r io.ReaderAt) error {
	const hint = "build the plugin with CGO_ENABLED=0 GOOS=linux GOARCH=" + runtime.GOARCH
	f, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("%w: %v; %s", ErrNotExecutable, err, hint)
	}
	if f.Class != elf.ELFCLASS64 {
		return fmt.Errorf("%w: %s binary; %s", ErrNotExecutable, f.Class, hint)
	}
	if want, ok := machines[runtime.GOARCH]; !ok || f.Machine != want {
		return fmt.Errorf("%w: built for %s, this machine is %s; %s", ErrNotExecutable, f.Machine, runtime.GOARCH, hint)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: ELF type %s is not an executable; %s", ErrNotExecutable, f.Type, hint)
	}
	if f.Entry == 0 {
		return fmt.Errorf("%w: no entry point; %s", ErrNotExecutable, hint)
	}
	loads := 0
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			return fmt.Errorf("%w: dynamically linked (needs an interpreter); %s", ErrNotExecutable, hint)
		case elf.PT_LOAD:
			loads++
		}
	}
	if loads == 0 {
		return fmt.Errorf("%w: no loadable segment; %s", ErrNotExecutable, hint)
	}
	return nil
}
