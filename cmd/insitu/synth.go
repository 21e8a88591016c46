package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"insitu/connectors/synthetic"
)

func newSynthCmd() *cobra.Command {
	var cfg synthetic.Config
	var out, asOf string
	cmd := &cobra.Command{
		Use:   "synth --enterprises N --seed S --out DIR",
		Short: "Generate synthetic platform data across all 17 categories, a bank's labels and authorizations",
		Long: `synth writes one CSV per data provider with its mapping file, a dataset spec (dataset.yaml) for
insitu ingest, the bank's labels (labels.csv), authorization records (authorizations.csv) and a
manifest.json with every file's SHA-256. The same seed and options give byte-identical files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("pass --out")
			}
			if asOf != "" {
				t, err := time.Parse(time.DateOnly, asOf)
				if err != nil {
					return usageErrorf("--as-of %q: want a date YYYY-MM-DD", asOf)
				}
				cfg.AsOf = t
			}
			if cmd.Flags().Changed("authorization-rate") && cfg.AuthorizationRate == 0 {
				cfg.AuthorizationRate = -1 // synthetic.Config reads 0 as "default"; a negative rate means none
			}
			start := time.Now()
			sum, err := synthetic.Generate(cfg, out)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%d enterprises (seed %d) in %s, %.1fs\n", sum.Enterprises, sum.Seed, out, time.Since(start).Seconds())
			fmt.Fprintf(w, "%d sources covering categories %v\n", len(sum.Sources), sum.Categories)
			fmt.Fprintf(w, "%d labelled for %s, %d defaults (%.1f %%)\n", sum.Labelled, sum.Bank, sum.Defaults, 100*sum.DefaultRate)
			fmt.Fprintf(w, "%d authorization records, %d of the labelled currently authorized\n", sum.Authorizations, sum.CurrentlyAuthorized)
			fmt.Fprintf(w, "next: insitu ingest --spec %s/dataset.yaml --data-dir DIR --key-file FILE\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Enterprises, "enterprises", 20000, "number of enterprises")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed; the same seed gives the same files")
	f.StringVar(&cfg.Bank, "bank", synthetic.DefaultBank, "the bank that owns the labels and receives the authorizations")
	f.Float64Var(&cfg.LabelFraction, "label-fraction", synthetic.DefaultLabelFraction, "share of enterprises that are the bank's borrowers")
	f.Float64Var(&cfg.AuthorizationRate, "authorization-rate", synthetic.DefaultAuthorizationRate, "share of labelled enterprises with an authorization record")
	f.StringVar(&asOf, "as-of", "", "the date the data describe, YYYY-MM-DD (default "+synthetic.DefaultAsOf.Format(time.DateOnly)+")")
	f.StringVar(&out, "out", "", "output folder (must not exist, or be empty)")
	return cmd
}
