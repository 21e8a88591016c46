package main

import (
	"github.com/spf13/cobra"

	"insitu/enclave/demo"
)

func newDemoCmd() *cobra.Command {
	var cfg demo.Config
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story on synthetic data: ingest, a bank's signed HE job, approval, encrypted training in the sandbox, the gate, the receipt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := demo.Run(cmd.Context(), cfg, cmd.OutOrStdout())
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Enterprises, "enterprises", 20000, "number of synthetic enterprises")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the synthetic data")
	f.StringVar(&cfg.Dir, "keep", "", "work in this folder (new or empty) and keep it, instead of a temporary one")
	f.IntVar(&cfg.Iterations, "iterations", 10, "iterations of the encrypted training")
	f.Float64Var(&cfg.ScorecardEpsilon, "scorecard-epsilon", demo.DefaultScorecardEpsilon, "privacy budget ε of the aggregate-mode scorecard job (at most 8)")
	f.BoolVar(&cfg.AllowWeakerSandbox, "allow-weaker-sandbox", false, "DEVELOPMENT ONLY: run the plugin with the sandbox layers this machine offers when the strict sandbox cannot start")
	return cmd
}
