package buildinfo

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestWriteText(t *testing.T) {
	in := Info{Version: "1.2.3", GoVersion: "go1.26.8", Revision: "abc",
		Deps: []Dep{{Path: "github.com/tuneinsight/lattigo/v5", Version: "v5.0.7"}, {Path: "modernc.org/sqlite"}}}
	var b bytes.Buffer
	if err := in.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := []string{"insitu", "1.2.3", "revision", "abc", "go1.26.8", "lattigo/v5  v5.0.7", "modernc.org/sqlite", "(not linked)"}
	for _, w := range want {
		if !strings.Contains(b.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, b.String())
		}
	}
}

func TestRead(t *testing.T) {
	in := Read()
	if in.GoVersion != runtime.Version() || in.Version != Version {
		t.Fatalf("%+v", in)
	}
	if len(in.Deps) != len(Named) {
		t.Fatalf("%d deps, want %d", len(in.Deps), len(Named))
	}
	for i, d := range in.Deps {
		if d.Path != Named[i] {
			t.Fatalf("dep %d is %s, want %s", i, d.Path, Named[i])
		}
	}
}
