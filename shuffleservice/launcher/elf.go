package launcher

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"runtime"
)

// buildHint is the command line that builds a binary this node can run.
func buildHint() string {
	return fmt.Sprintf("CGO_ENABLED=0 GOOS=linux GOARCH=%s", runtime.GOARCH)
}

// elfMachine is the ELF machine and class of a Go architecture; ok is
// false for one this check does not know (then any machine is taken).
func elfMachine(goarch string) (elf.Machine, elf.Class, bool) {
	switch goarch {
	case "amd64":
		return elf.EM_X86_64, elf.ELFCLASS64, true
	case "arm64":
		return elf.EM_AARCH64, elf.ELFCLASS64, true
	case "386":
		return elf.EM_386, elf.ELFCLASS32, true
	case "arm":
		return elf.EM_ARM, elf.ELFCLASS32, true
	case "riscv64":
		return elf.EM_RISCV, elf.ELFCLASS64, true
	case "ppc64le", "ppc64":
		return elf.EM_PPC64, elf.ELFCLASS64, true
	case "s390x":
		return elf.EM_S390, elf.ELFCLASS64, true
	case "loong64":
		return elf.EM_LOONGARCH, elf.ELFCLASS64, true
	}
	return 0, 0, false
}

// maxInterpLen bounds what is read of a PT_INTERP segment.
const maxInterpLen = 4096

// CheckRunnable reports whether the node can run the executable at path:
// a Linux ELF executable for the node's architecture, statically linked
// (no PT_INTERP: a container FROM scratch has no dynamic loader). The
// error wraps ErrCannotRun and says how to build one it can run.
func CheckRunnable(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return fmt.Errorf("%w: it is not an ELF executable (%v): build it for this node with %s go build", ErrCannotRun, fe, buildHint())
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: it is not an ELF executable (too short for its headers): build it for this node with %s go build", ErrCannotRun, buildHint())
		}
		return fmt.Errorf("launcher: read binary: %w", err)
	}
	defer f.Close()
	if m, c, ok := elfMachine(runtime.GOARCH); ok && (f.Machine != m || f.Class != c) {
		return fmt.Errorf("%w: it is built for another architecture (ELF %v, %v) and this node runs linux/%s: build it with %s go build",
			ErrCannotRun, f.Machine, f.Class, runtime.GOARCH, buildHint())
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return fmt.Errorf("%w: it is built for another OS (ELF OS ABI %v): build it with %s go build", ErrCannotRun, f.OSABI, buildHint())
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN || f.Entry == 0 {
		return fmt.Errorf("%w: it is not an executable (ELF type %v): build a main package with %s go build", ErrCannotRun, f.Type, buildHint())
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(p.Open(), maxInterpLen))
		interp := string(bytes.TrimRight(b, "\x00"))
		return fmt.Errorf("%w: the binary is dynamically linked (it needs %s): build it with %s go build", ErrCannotRun, interp, buildHint())
	}
	return nil
}
