package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"insitu/enclave/scoring"
)

func newVerifyCmd() *cobra.Command {
	var rf remoteFlags
	var purpose, dataset string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify FIELD SUBJECT CLAIM",
		Short: "Ask whether a subject's data-verification field holds a claimed value: match, no_match or unknown",
		Long: `verify asks the enclave about one field of an annex item whose sharing mode is data verification
(real estate, innovation evaluation, new agricultural operators, medical-insurance designation,
marital status), e.g.

  insitu verify legal_rep_marital_status.marital_status 91110000... married --purpose credit_approval
  insitu verify innovation_evaluation.high_tech_enterprise 91110000... true --purpose credit_approval

The subject's authorization must cover this bank, the purpose and the field's item. The answer is
match, no_match or unknown (the platform holds no value); the stored value never leaves. Queries
are audited and rate-limited, and each bank may ask about one field of one subject only a few
times a day.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if purpose == "" {
				return usageErrorf("give --purpose: the subject's authorization must name it")
			}
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Verify(cmd.Context(), scoring.VerifyRequest{Field: args[0], Subject: args[1], Claim: args[2],
				Purpose: consentPurpose(purpose), Dataset: dataset})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (dataset %s v%d, audit record %d)\n", res.Field, res.Answer, res.Dataset, res.DatasetVersion, res.AuditSeq)
			return nil
		},
	}
	cmd.Flags().StringVar(&purpose, "purpose", "", "what the answer is for (the authorization's purpose)")
	cmd.Flags().StringVar(&dataset, "dataset", "", "the dataset to look in (default: the first whose latest version has the field)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rf.register(cmd)
	return cmd
}
