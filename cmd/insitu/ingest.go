package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"insitu/connectors"
	"insitu/enclave/dataset"
)

func newIngestCmd() *cobra.Command {
	var ef enclaveFlags
	var specFile, name, class, reportFile string
	var mappingFiles, inputs []string
	var maxRejects int64
	var quiet bool
	cmd := &cobra.Command{
		Use:   "ingest (--spec dataset.yaml | --mapping m.yaml... --dataset NAME --class CLASS)",
		Short: "Ingest sources into a new encrypted version of a dataset and print its data-quality report",
		Long: `ingest reads every source of a dataset through its mapping file, validates and types every value,
and writes a new version of the dataset: encrypted at rest, with an authenticated manifest. The
version appears only when every source has been read and written; a failed or interrupted ingest
leaves no version.

Any invalid row fails the ingest with an error naming the file, line, data row, column and rule,
unless --max-rejects allows up to N invalid rows to be left out; they are listed in the report.`,
		Example: `  insitu ingest --spec synth/dataset.yaml
  insitu ingest --mapping examples/public-taiwan/mapping.yaml --dataset taiwan --class public \
      --input ../shared/data/default_credit/UCI_Credit_Card.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, mappings, err := ingestSpec(specFile, mappingFiles, name, class)
			if err != nil {
				return err
			}
			inputMap, err := parseInputs(inputs, mappings)
			if err != nil {
				return err
			}
			e, err := ef.openEnclave(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			opts := dataset.IngestOptions{MaxRejects: maxRejects, Inputs: inputMap}
			if !quiet {
				opts.Progress = newProgressPrinter(cmd.ErrOrStderr())
			}
			start := time.Now()
			m, rep, err := e.Ingest(cmd.Context(), localUser(), spec, mappings, opts)
			if rep != nil && reportFile != "" {
				if werr := writeReport(reportFile, rep); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := rep.WriteText(out); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nwrote %s v%d: %d subjects, %d columns, %d sources in %.1fs\n",
				m.Name, m.Version, m.Subjects, len(m.Columns)-1, len(m.Sources), time.Since(start).Seconds())
			return nil
		},
	}
	ef.register(cmd)
	f := cmd.Flags()
	f.StringVar(&specFile, "spec", "", "dataset spec listing the sources' mapping files")
	f.StringArrayVar(&mappingFiles, "mapping", nil, "a source's mapping file (repeat for several sources; instead of --spec)")
	f.StringVar(&name, "dataset", "", "dataset name, with --mapping")
	f.StringVar(&class, "class", "", "dataset class with --mapping: platform, public or synthetic")
	f.StringArrayVar(&inputs, "input", nil, "read a source from this file instead of its mapping's path: PATH (one source) or SOURCE=PATH")
	f.Int64Var(&maxRejects, "max-rejects", 0, "invalid rows the ingest may leave out (0: any invalid row fails it)")
	f.StringVar(&reportFile, "report", "", "also write the quality report as JSON to this file (it holds data-dependent figures)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress on standard error")
	return cmd
}

func ingestSpec(specFile string, mappingFiles []string, name, class string) (*connectors.DatasetSpec, []*connectors.Mapping, error) {
	switch {
	case specFile != "" && len(mappingFiles) > 0:
		return nil, nil, usageErrorf("pass either --spec or --mapping, not both")
	case specFile != "":
		if name != "" || class != "" {
			return nil, nil, usageErrorf("--dataset and --class come from the spec file; leave them out with --spec")
		}
		return connectors.LoadDatasetSpec(specFile)
	case len(mappingFiles) == 0:
		return nil, nil, usageErrorf("pass --spec FILE, or --mapping FILE with --dataset and --class")
	}
	if name == "" || class == "" {
		return nil, nil, usageErrorf("--mapping needs --dataset NAME and --class platform|public|synthetic")
	}
	var ms []*connectors.Mapping
	for _, p := range mappingFiles {
		m, err := connectors.LoadMapping(p)
		if err != nil {
			return nil, nil, err
		}
		ms = append(ms, m)
	}
	spec := &connectors.DatasetSpec{Dataset: name, Class: class, Subject: ms[0].Subject.Kind, Mappings: mappingFiles}
	return spec, ms, nil
}

// parseInputs turns --input values into source → path. A bare PATH is allowed with one source only.
func parseInputs(inputs []string, ms []*connectors.Mapping) (map[string]string, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	known := map[string]bool{}
	for _, m := range ms {
		known[m.Source] = true
	}
	out := map[string]string{}
	for _, in := range inputs {
		src, path, ok := strings.Cut(in, "=")
		if !ok {
			if len(ms) != 1 {
				return nil, usageErrorf("--input %s: with %d sources, write SOURCE=PATH", in, len(ms))
			}
			src, path = ms[0].Source, in
		}
		if !known[src] {
			return nil, usageErrorf("--input %s: no source named %q", in, src)
		}
		if _, dup := out[src]; dup {
			return nil, usageErrorf("--input: source %q given twice", src)
		}
		out[src] = path
	}
	return out, nil
}

func writeReport(path string, rep *connectors.Report) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("quality report: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("quality report %s: %w", path, err)
	}
	return f.Close()
}

// newProgressPrinter reports ingest progress: a line per finished source, and on a terminal a
// running count for the source being read.
func newProgressPrinter(w io.Writer) func(dataset.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	var last time.Time
	return func(p dataset.Progress) {
		if p.Done {
			if tty {
				fmt.Fprint(w, "\r\033[K")
			}
			fmt.Fprintf(w, "[%d/%d] %s: %d rows, %.1f MB\n", p.Part, p.Parts, p.Source, p.Rows, float64(p.Bytes)/1e6)
			return
		}
		if tty && time.Since(last) > 200*time.Millisecond {
			last = time.Now()
			fmt.Fprintf(w, "\r\033[K[%d/%d] %s: %d rows…", p.Part, p.Parts, p.Source, p.Rows)
		}
	}
}
