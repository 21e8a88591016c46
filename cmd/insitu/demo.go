package main

import (
	"github.com/spf13/cobra"

	"insitu/enclave/demo"
)

func newDemoCmd() *cobra.Command {
	var cfg demo.Config
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the walkthrough on synthetic data: generate, ingest into an encrypted enclave dataset, verify, fit the reference model",
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
	f.Float64Var(&cfg.Lambda, "lambda", 1, "L2 penalty of the reference logistic regression")
	return cmd
}
