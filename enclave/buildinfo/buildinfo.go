// Package buildinfo reports what an insitu binary was built from: its version, the Go toolchain and
// the versions of the libraries the design names. Call Read.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"text/tabwriter"
)

// Version is insitu's version; release builds set it with -ldflags "-X insitu/enclave/buildinfo.Version=…".
var Version = "0.1.0-dev"

// Named lists the dependencies whose versions matter to a reviewer, in the order they are printed.
var Named = []string{
	"github.com/tuneinsight/lattigo/v5",
	"github.com/apache/arrow/go/v17",
	"github.com/cloudflare/circl",
	"gonum.org/v1/gonum",
	"github.com/hashicorp/go-plugin",
	"github.com/spf13/cobra",
	"modernc.org/sqlite",
	"github.com/jackc/pgx/v5",
}

// Info is what Read found.
type Info struct {
	Version   string
	GoVersion string
	Revision  string // VCS revision, when the build recorded one
	Deps      []Dep
}

// Dep is one dependency and its version; Version is empty when the binary does not link it.
type Dep struct {
	Path    string
	Version string
}

// Read returns the build information of the running binary.
func Read() Info {
	in := Info{Version: Version, GoVersion: runtime.Version()}
	have := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			v := d.Version
			if d.Replace != nil {
				v = d.Replace.Path + "@" + d.Replace.Version
			}
			have[d.Path] = v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				in.Revision = s.Value
			}
		}
	}
	for _, p := range Named {
		in.Deps = append(in.Deps, Dep{Path: p, Version: have[p]})
	}
	return in
}

// WriteText prints the information as an aligned table.
func (in Info) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "insitu\t%s\n", in.Version)
	if in.Revision != "" {
		fmt.Fprintf(tw, "revision\t%s\n", in.Revision)
	}
	fmt.Fprintf(tw, "go\t%s\n", in.GoVersion)
	for _, d := range in.Deps {
		v := d.Version
		if v == "" {
			v = "(not linked)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", d.Path, v)
	}
	return tw.Flush()
}
