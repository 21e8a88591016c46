package main

import (
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave/cohort"
	"insitu/enclave/pluginstore"
	"insitu/enclave/runner"
	"insitu/enclave/sandbox"
	"insitu/plugins/sdk"
)

func newPluginRunCmd() *cobra.Command {
	var ef enclaveFlags
	var ref, labelColumn, labelFile string
	var weaker bool
	var limits sandbox.Limits
	cmd := &cobra.Command{
		Use:   "run DIGEST --dataset NAME[@vN] (--label-column COL | --labels FILE)",
		Short: "Run a stored plugin in the sandbox on a public or synthetic dataset (development and testing)",
		Long: `run starts a stored plugin by digest in the strict sandbox and trains it on the plaintext rows
of a public or synthetic dataset (never a platform dataset: those reach plugins only encrypted or as
aggregates, through an approved job). It prints how the run ended, the sandbox's layers and the
plugin's outputs. The sandbox needs Linux and root; --allow-weaker-sandbox (development only) runs
with the layers this machine offers, says loudly which are missing, and marks the result.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			digest, err := pluginstore.ParseDigest(args[0])
			if err != nil {
				return usageErrorf("%q: %v", args[0], err)
			}
			name, version, err := parseDatasetRef(ref)
			if err != nil {
				return err
			}
			if name == "" || (labelColumn == "") == (labelFile == "") {
				return usageErrorf("pass --dataset and exactly one of --label-column and --labels")
			}
			e, err := ef.openEnclave(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			in := &runner.PlainInput{Datasets: e.Datasets, Dataset: name, Version: version, LabelColumn: labelColumn}
			if labelFile != "" {
				if in.Labels, err = cohort.ReadLabels(labelFile); err != nil {
					return err
				}
			}
			spec := runner.RunSpec{
				Plugins: e.Plugins, Digest: digest, Mode: sdk.ModePlaintextPublic, Input: in,
				Sandbox: sandbox.Spec{Limits: limits},
				Logger:  slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
			}
			if weaker {
				spec.Sandbox.Mode = sandbox.AllowWeaker
			}
			res, err := runner.Run(cmd.Context(), spec)
			if err != nil {
				return err
			}
			printRun(cmd, res)
			return res.Err()
		},
	}
	ef.register(cmd)
	f := cmd.Flags()
	f.StringVar(&ref, "dataset", "", "the dataset, NAME or NAME@vN (public or synthetic)")
	f.StringVar(&labelColumn, "label-column", "", "the dataset column holding the outcome (0 or 1)")
	f.StringVar(&labelFile, "labels", "", "a label file (uscc|resident_id|id, label[, observation_date])")
	f.BoolVar(&weaker, "allow-weaker-sandbox", false, "DEVELOPMENT ONLY: run with the sandbox layers available here, even if mandatory ones are missing")
	f.DurationVar(&limits.CPUTime, "cpu", 10*time.Minute, "CPU time limit")
	f.DurationVar(&limits.WallClock, "timeout", 30*time.Minute, "wall-clock limit")
	f.Uint64Var(&limits.Memory, "memory", 2<<30, "memory limit in bytes (cgroup, where the machine offers one)")
	return cmd
}

func printRun(cmd *cobra.Command, res *runner.Result) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "plugin %s: %s\n", res.Digest, res)
	fmt.Fprintf(out, "sandbox %s: layers %s\n", res.SandboxMode, res.Layers)
	if res.Weakened != 0 {
		fmt.Fprintf(out, "WEAKENED: %s missing — this run does not count as sandboxed\n", res.Weakened)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	if in := res.Input; in != nil {
		fmt.Fprintf(out, "input: %s v%d (%s), %d rows, %d features, %d batches, %.1f MB streamed\n",
			in.Dataset, in.Version, in.Class, in.Rows, len(in.Features), in.Batches, float64(in.Bytes)/1e6)
	}
	o := res.Output
	if o == nil {
		return
	}
	if o.Weights != nil {
		type nw struct {
			n string
			w float64
		}
		var ws []nw
		for i, n := range o.Weights.Names {
			ws = append(ws, nw{n, o.Weights.Values[i]})
		}
		sort.Slice(ws, func(i, j int) bool { return math.Abs(ws[i].w) > math.Abs(ws[j].w) })
		fmt.Fprintf(out, "weights: %d and intercept %+.4f; the largest:\n", len(ws), o.Weights.Intercept)
		for _, x := range ws[:min(8, len(ws))] {
			fmt.Fprintf(out, "  %+.4f  %s\n", x.w, x.n)
		}
	}
	if len(o.Scores) > 0 {
		fmt.Fprintf(out, "scores: %d subjects\n", len(o.Scores))
	}
	keys := make([]string, 0, len(o.Metrics))
	for k := range o.Metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "metric %s = %.4f\n", k, o.Metrics[k])
	}
}
