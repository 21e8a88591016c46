package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave"
	"insitu/enclave/api/client"

	"insitu/enclave/consent"
)

func newConsentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consent",
		Short: "The registry of enterprises' authorizations (信息主体授权): import, grant, revoke, list, count",
	}
	cmd.AddCommand(newConsentImportCmd(), newConsentCountsCmd(), newConsentListCmd(), newConsentGrantCmd(), newConsentRevokeCmd())
	return cmd
}

func newConsentImportCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Import authorization records from CSV, all or nothing",
		Long: `import reads authorization records (columns id_type, id, grantee, purpose, purpose_detail, items,
valid_from, valid_until, evidence; items separated by ';') and records them in one transaction: any
invalid row fails the whole import, with its line, data row, column and rule. Rows already recorded
with the same terms are counted as unchanged, so an import can be repeated. The import is audited
without the identifiers.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return viaAPI(cmd, &ef, &rf, func(ctx context.Context, c *client.Client) error {
				data, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				res, err := c.ImportConsent(ctx, filepath.Base(args[0]), data)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d rows, %d authorizations added, %d already recorded (audit record %d)\n",
					args[0], res.Rows, res.Added, res.Unchanged, res.AuditSeq)
				return nil
			}, func(ctx context.Context, e *enclave.Enclave) error {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				res, err := e.Consent.Import(ctx, localUser(), args[0], f)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d rows, %d authorizations added, %d already recorded (audit record %d)\n",
					res.File, res.Rows, res.Added, res.Unchanged, res.AuditSeq)
				return nil
			})
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	return cmd
}

func newConsentCountsCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	var grantee string
	cmd := &cobra.Command{
		Use:   "counts",
		Short: "Count authorizations per bank and status (current, not yet valid, expired, revoked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return viaAPI(cmd, &ef, &rf, func(ctx context.Context, c *client.Client) error {
				cs, err := c.ConsentCounts(ctx, grantee)
				if err != nil {
					return err
				}
				return writeCounts(cmd, cs)
			}, func(ctx context.Context, e *enclave.Enclave) error {
				cs, err := e.Consent.Counts(ctx, grantee, time.Now())
				if err != nil {
					return err
				}
				return writeCounts(cmd, cs)
			})
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	cmd.Flags().StringVar(&grantee, "bank", "", "only this bank")
	return cmd
}

func writeCounts(cmd *cobra.Command, cs []consent.BankCounts) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "bank\tauthorizations\tsubjects\tcurrently authorized subjects\tcurrent\tnot yet valid\texpired\trevoked")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", c.Grantee, c.Authorizations, c.Subjects, c.CurrentSubjects,
			c.Current, c.NotYetValid, c.Expired, c.Revoked)
	}
	return tw.Flush()
}

func newConsentListCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	var f consent.Filter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List authorizations (identifiers masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return viaAPI(cmd, &ef, &rf, func(ctx context.Context, c *client.Client) error {
				as, err := c.ListConsent(ctx, f)
				if err != nil {
					return err
				}
				return writeAuthorizations(cmd, as)
			}, func(ctx context.Context, e *enclave.Enclave) error {
				as, err := e.Consent.List(ctx, f)
				if err != nil {
					return err
				}
				return writeAuthorizations(cmd, as)
			})
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	cmd.Flags().StringVar(&f.Grantee, "bank", "", "only this bank's")
	cmd.Flags().Int64Var(&f.AfterID, "after", 0, "start after this id")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many")
	return cmd
}

func writeAuthorizations(cmd *cobra.Command, as []consent.Authorization) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tsubject\tbank\tpurpose\tvalid\tstatus\titems")
	for _, a := range as {
		fmt.Fprintf(tw, "%d\t%s %s\t%s\t%s\t%s..%s\t%s\t%d items\n", a.ID, a.IDType, a.Subject, a.Grantee, a.Purpose,
			a.ValidFrom, a.ValidUntil, a.Status, len(a.Items))
	}
	return tw.Flush()
}
