package pluginstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"insitu/enclave/datadir"
	"insitu/enclave/keys"
)

// tinyELF builds a minimal 64-bit little-endian ELF executable: one PT_LOAD segment holding a few
// code bytes, plus a PT_INTERP segment when interp is set.
func tinyELF(machine elf.Machine, typ elf.Type, interp bool) []byte {
	const ehsize, phentsize = 64, 56
	phnum := 1
	if interp {
		phnum = 2
	}
	code := []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov eax,60; xor edi,edi; syscall
	interpPath := []byte("/lib64/ld-linux-x86-64.so.2\x00")
	codeOff := uint64(ehsize + phnum*phentsize)
	total := codeOff + uint64(len(code)) + uint64(len(interpPath))
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(typ), Machine: uint16(machine), Version: 1, Entry: 0x400000 + codeOff,
		Phoff: ehsize, Ehsize: ehsize, Phentsize: phentsize, Phnum: uint16(phnum),
	}
	copy(h.Ident[:], []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Vaddr: 0x400000, Paddr: 0x400000, Filesz: total, Memsz: total, Align: 0x1000})
	if interp {
		off := codeOff + uint64(len(code))
		binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R),
			Off: off, Vaddr: 0x400000 + off, Filesz: uint64(len(interpPath)), Memsz: uint64(len(interpPath)), Align: 1})
	}
	b.Write(code)
	b.Write(interpPath)
	return b.Bytes()
}

func hostMachine(t testing.TB) elf.Machine {
	m, ok := machines[runtime.GOARCH]
	if !ok {
		t.Skipf("no ELF machine known for %s", runtime.GOARCH)
	}
	return m
}

func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Now == nil {
		now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		o.Now = func() time.Time { now = now.Add(time.Second); return now }
	}
	s, err := Open(filepath.Join(t.TempDir(), "plugins"), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutGetListDedupe(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{})
	bin := tinyELF(hostMachine(t), elf.ET_EXEC, false)
	info, existed, err := s.Put(ctx, bytes.NewReader(bin), Meta{Uploader: "bank-a", Name: "logreg"})
	if err != nil || existed {
		t.Fatalf("put: %v, existed %v", err, existed)
	}
	if info.Digest != sha256.Sum256(bin) || info.Size != int64(len(bin)) || info.Uploader != "bank-a" || info.Name != "logreg" {
		t.Errorf("info %+v", info)
	}
	again, existed, err := s.Put(ctx, bytes.NewReader(bin), Meta{Uploader: "bank-b"})
	if err != nil || !existed || again != info {
		t.Errorf("second put: %+v existed %v err %v; want the first upload's info", again, existed, err)
	}
	pie := tinyELF(hostMachine(t), elf.ET_DYN, false)
	info2, _, err := s.Put(ctx, bytes.NewReader(pie), Meta{Uploader: "bank-b"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, info.Digest)
	if err != nil || got != info {
		t.Errorf("get: %+v %v", got, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0] != info || list[1] != info2 {
		t.Errorf("list: %+v %v", list, err)
	}
	ents, _ := os.ReadDir(s.Dir())
	if len(ents) != 4 {
		t.Errorf("store holds %d entries, want 2 binaries and 2 metadata files", len(ents))
	}
	if err := s.Remove(ctx, info.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, info.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after remove: %v", err)
	}
	if _, err := s.OpenSealed(ctx, info.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("open after remove: %v", err)
	}
}

func TestPutRefuses(t *testing.T) {
	ctx := context.Background()
	m := hostMachine(t)
	other := elf.EM_AARCH64
	if m == elf.EM_AARCH64 {
		other = elf.EM_X86_64
	}
	s := newStore(t, Options{MaxSize: 4096})
	for _, c := range []struct {
		name string
		data []byte
		meta Meta
		want error
		msg  string
	}{
		{"dynamic", tinyELF(m, elf.ET_EXEC, true), Meta{Uploader: "b"}, ErrNotExecutable, "dynamically linked"},
		{"other machine", tinyELF(other, elf.ET_EXEC, false), Meta{Uploader: "b"}, ErrNotExecutable, "built for"},
		{"object file", tinyELF(m, elf.ET_REL, false), Meta{Uploader: "b"}, ErrNotExecutable, "not an executable"},
		{"script", []byte("#!/bin/sh\necho hi\n"), Meta{Uploader: "b"}, ErrNotExecutable, "CGO_ENABLED=0"},
		{"empty", nil, Meta{Uploader: "b"}, ErrNotExecutable, ""},
		{"too large", append(tinyELF(m, elf.ET_EXEC, false), make([]byte, 5000)...), Meta{Uploader: "b"}, ErrTooLarge, "4096"},
		{"no uploader", tinyELF(m, elf.ET_EXEC, false), Meta{}, ErrBadMeta, "uploader"},
		{"control characters", tinyELF(m, elf.ET_EXEC, false), Meta{Uploader: "b\n"}, ErrBadMeta, "control"},
	} {
		_, _, err := s.Put(ctx, bytes.NewReader(c.data), c.meta)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v mentioning %q", c.name, err, c.want, c.msg)
		}
	}
	ents, _ := os.ReadDir(s.Dir())
	if len(ents) != 0 {
		t.Errorf("refused uploads left %d entries", len(ents))
	}
}

func TestOpenSealed(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{})
	bin := tinyELF(hostMachine(t), elf.ET_EXEC, false)
	info, _, err := s.Put(ctx, bytes.NewReader(bin), Meta{Uploader: "bank-a"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenSealed(ctx, info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("sealed content differs: %v", err)
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Error("wrote into a sealed memfd")
	}
	if err := f.Truncate(1); err == nil {
		t.Error("shrank a sealed memfd")
	}
	if err := f.Truncate(int64(len(bin)) + 1); err == nil {
		t.Error("grew a sealed memfd")
	}
	if !strings.HasPrefix(f.Name(), "memfd:insitu-plugin-") {
		t.Errorf("name %q", f.Name())
	}
}

func TestOpenSealedDetectsSwap(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Options{})
	m := hostMachine(t)
	info, _, err := s.Put(ctx, bytes.NewReader(tinyELF(m, elf.ET_EXEC, false)), Meta{Uploader: "bank-a"})
	if err != nil {
		t.Fatal(err)
	}
	// The stored file is replaced after upload (and approval) by another executable.
	p := filepath.Join(s.Dir(), info.Digest.Hex())
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, tinyELF(m, elf.ET_DYN, false), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.OpenSealed(ctx, info.Digest)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), info.Digest.String()) {
		t.Fatalf("got %v, want ErrDigestMismatch naming %s", err, info.Digest)
	}
}

func TestDigest(t *testing.T) {
	d := Digest(sha256.Sum256([]byte("x")))
	for _, s := range []string{d.String(), d.Hex(), strings.ToUpper(d.Hex())} {
		got, err := ParseDigest(s)
		if err != nil || got != d {
			t.Errorf("ParseDigest(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "sha256:", "sha256:" + d.Hex()[:63], "sha512:" + d.Hex(), d.Hex() + "00", "sha256:" + strings.Repeat("g", 64)} {
		if _, err := ParseDigest(s); !errors.Is(err, ErrBadDigest) {
			t.Errorf("ParseDigest(%q): %v, want ErrBadDigest", s, err)
		}
	}
	b, _ := d.MarshalText()
	var back Digest
	if err := back.UnmarshalText(b); err != nil || back != d {
		t.Errorf("text round trip: %v %v", back, err)
	}
}

func FuzzParseDigest(f *testing.F) {
	d := Digest(sha256.Sum256([]byte("x")))
	for _, s := range []string{d.String(), d.Hex(), "", "sha256:", "sha256:zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if again, err := ParseDigest(d.String()); err != nil || again != d {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
	})
}

func FuzzCheckELF(f *testing.F) {
	for _, m := range []elf.Machine{elf.EM_X86_64, elf.EM_AARCH64} {
		f.Add(tinyELF(m, elf.ET_EXEC, false))
		f.Add(tinyELF(m, elf.ET_DYN, true))
	}
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckELF(bytes.NewReader(b))
		if err != nil && !errors.Is(err, ErrNotExecutable) {
			t.Fatalf("error %v does not wrap ErrNotExecutable", err)
		}
	})
}

func TestOpenInDataDir(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	if _, err := datadir.Init(filepath.Join(dir, "dd"), keyFile); err != nil {
		t.Fatal(err)
	}
	dd, err := datadir.Open(filepath.Join(dir, "dd"), keys.Source{File: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenIn(dd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dd.Path(), SubDir); s.Dir() != want {
		t.Errorf("store in %s, want %s", s.Dir(), want)
	}
	info, _, err := s.Put(context.Background(), bytes.NewReader(tinyELF(hostMachine(t), elf.ET_EXEC, false)), Meta{Uploader: "bank-a"})
	if err != nil {
		t.Fatal(err)
	}
	// A second handle on the same folder sees the upload.
	s2, err := OpenIn(dd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get(context.Background(), info.Digest); err != nil || got != info {
		t.Errorf("reopened store: %+v %v", got, err)
	}
}
