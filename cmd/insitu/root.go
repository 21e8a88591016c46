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
	// A mistyped or unknown flag is a usage mistake like the others: exit code 2.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: 2, err: err} })
	root.AddCommand(
		newVersionCmd(),
		newCatalogCmd(),
		newInitCmd(),
		newIdentityCmd(),
		newSynthCmd(),
		newIngestCmd(),
		newDatasetCmd(),
		newDemoCmd(),
		newPluginCmd(),
		newConsentCmd(),
		newAuditCmd(),
		newKeysCmd(),
		newLabelsCmd(),
		newJobCmd(),
		newPartyCmd(),
		newConfigCmd(),
		newPSICmd(),
		newReceiptCmd(),
		newReportCmd(),
		newServeCmd(),
		newLoginCmd(),
		newStewardCmd(),
		newBudgetCmd(),
		newBenchCmd(),
		newModelCmd(), newScoreCmd(), newVerifyCmd(),
	)
	return root
}
