package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"insitu/benchmarks/suite"
)

func newBenchCmd() *cobra.Command {
	var cfg suite.Config
	var list string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "The researchers' benchmark suite: time, memory, AUC/KS and privacy cost next to plaintext baselines",
		Long: `bench runs the benchmark suite: each workload on the public data sets (--data, laid out as
../shared/data) or on synthetic data, with fixed seeds and the id % 5 == 0 test split. For each case
it reports wall time, CPU time and peak memory (each case in a child process of its own), and for
models AUC, KS and the privacy cost (ε, refreshes, decrypted values) next to the plaintext baseline
of insitu's modeling packages and scikit-learn / xgboost (Debian's /usr/bin/python3, when installed).
It writes bench-<time>.json (schema: go doc insitu/benchmarks/suite) and bench-<time>.md to --out.

Workloads: ` + strings.Join(suite.Workloads(), ", ") + `.`,
		Example: `  insitu bench --suite he-lr,scorecard --data ../shared/data
  insitu bench --quick
  insitu bench compare results/a.json results/b.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if list != "" {
				cfg.Suite = strings.Split(list, ",")
			}
			cfg.Progress = cmd.ErrOrStderr()
			cfg.Command = "insitu " + strings.Join(os.Args[1:], " ")
			self, err := os.Executable()
			if err != nil {
				return err
			}
			if cfg.PluginBinary == "" && suite.IsStatic(self) {
				cfg.PluginBinary = self
			}
			cfg.Child = func(configFile, caseID, outFile string) *exec.Cmd {
				return exec.Command(self, "bench", "case", configFile, caseID, outFile)
			}
			rep, err := suite.Run(cmd.Context(), cfg)
			if errors.Is(err, suite.ErrConfig) {
				return &exitError{code: 2, err: err}
			}
			if err != nil {
				return err
			}
			js, md, err := rep.Write(cfg.Out)
			if err != nil {
				return err
			}
			rep.Markdown(cmd.OutOrStdout())
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s and %s\n", js, md)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&list, "suite", "", "comma-separated workloads (default: all)")
	f.StringVar(&cfg.Data, "data", "", "folder of the public data sets (layout of ../shared/data); synthetic data when empty")
	f.StringVar(&cfg.Out, "out", "benchmarks/results", "folder for the JSON and Markdown report")
	f.BoolVar(&cfg.Quick, "quick", false, "smaller workloads: Taiwan only, 5,000 synthetic enterprises, PSI 10³ × 10⁴, 3 sandbox runs")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the synthetic data and the PSI identifiers")
	f.IntVar(&cfg.Enterprises, "enterprises", 0, "synthetic enterprises (default 20,000; --quick 5,000)")
	f.StringVar(&cfg.Python, "python", "/usr/bin/python3", `interpreter of the scikit-learn/xgboost baselines ("-" for none)`)
	f.StringVar(&cfg.HEPath, "he-path", "auto", "how HE-LR runs: auto, job (enclave job in the strict sandbox) or in-process")
	f.IntVar(&cfg.HEIterations, "he-iterations", 0, "iterations of the HE training (plugins/helr's default when 0)")
	f.StringVar(&cfg.PluginBinary, "plugin-binary", "", "static insitu binary or folder of static plugin builds (found or built when empty)")
	cmd.AddCommand(newBenchCompareCmd(), newBenchCaseCmd())
	return cmd
}

func newBenchCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare A.json B.json",
		Short: "Print the ratios B/A of wall time, CPU time and peak memory, and the AUC/KS differences, of two runs",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := suite.ReadReport(args[0])
			if err != nil {
				return err
			}
			b, err := suite.ReadReport(args[1])
			if err != nil {
				return err
			}
			suite.Compare(cmd.OutOrStdout(), a, b)
			return nil
		},
	}
}

// newBenchCaseCmd is the child process of one case (hidden): insitu bench case CONFIG CASE OUT.
func newBenchCaseCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "case CONFIG CASE OUT",
		Hidden: true,
		Args:   cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return suite.RunCase(cmd.Context(), args[0], args[1], args[2], cmd.ErrOrStderr())
		},
	}
}
