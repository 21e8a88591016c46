package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "insitu",
		Short: "Privacy-preserving joint credit-modeling lab: data stays in the enclave, only verified models leave",
		Long: `insitu is a joint credit-modeling lab for credit service platforms and banks.

The platform's data stays inside the enclave; banks train on encrypted or aggregated data
and only approved scores and model weights leave. Start with "insitu demo".`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newCatalogCmd(),
		newInitCmd(),
		newIdentityCmd(),
		newSynthCmd(),
		newIngestCmd(),
		newDatasetCmd(),
		newDemoCmd(),
	)
	return root
}
