package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"insitu/connectors/ident"
	"insitu/enclave"
	"insitu/enclave/api/client"
	"insitu/enclave/consent"
)

func newConsentGrantCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	var g consent.Grant
	var idType, purpose, items string
	cmd := &cobra.Command{
		Use:   "grant --id ID --grantee BANK --purpose P --items A,B --from DATE --until DATE --evidence E",
		Short: "Record one enterprise's authorization of a bank",
		Long: `grant records one authorization, as a CSV row of consent import would: the subject (--id-type
uscc or resident_id, --id), the bank it authorizes (--grantee), the purpose (pre_screening,
credit_approval, post_loan_monitoring, model_development) with --detail, the catalog items
(--items, comma-separated), the validity (--from, --until: YYYY-MM-DD, inclusive) and the evidence,
"<name>#sha256=<64 hex>" naming the signed authorization document. The grant is audited without
the identifier.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.IDType, g.Purpose = ident.Kind(idType), consent.Purpose(purpose)
			for _, it := range strings.Split(items, ",") {
				if it = strings.TrimSpace(it); it != "" {
					g.Items = append(g.Items, it)
				}
			}
			print := func(a *consent.Authorization) error {
				fmt.Fprintf(cmd.OutOrStdout(), "authorization %d: %s %s authorizes %s for %s, %d items, %s..%s\n",
					a.ID, a.IDType, a.Subject, a.Grantee, a.Purpose, len(a.Items), a.ValidFrom, a.ValidUntil)
				return nil
			}
			return viaAPI(cmd, &ef, &rf, func(ctx context.Context, c *client.Client) error {
				a, err := c.Grant(ctx, g)
				if err != nil {
					return err
				}
				return print(a)
			}, func(ctx context.Context, e *enclave.Enclave) error {
				a, err := e.Consent.Grant(ctx, localUser(), g)
				if err != nil {
					return err
				}
				return print(a)
			})
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&idType, "id-type", string(ident.KindUSCC), "the subject's identifier kind: uscc or resident_id")
	f.StringVar(&g.Identifier, "id", "", "the subject's identifier")
	f.StringVar(&g.Grantee, "grantee", "", "the bank authorized (its party name)")
	f.StringVar(&purpose, "purpose", "", "pre_screening, credit_approval, post_loan_monitoring or model_development")
	f.StringVar(&g.PurposeDetail, "detail", "", "the purpose in the authorization's words")
	f.StringVar(&items, "items", "", "catalog item keys, comma-separated")
	f.StringVar(&g.ValidFrom, "from", "", "first valid day, YYYY-MM-DD")
	f.StringVar(&g.ValidUntil, "until", "", "last valid day, YYYY-MM-DD")
	f.StringVar(&g.Evidence, "evidence", "", `the signed authorization document: "<name>#sha256=<64 hex>"`)
	return cmd
}

func newConsentRevokeCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	var reason, subject, idType, grantee, purpose string
	cmd := &cobra.Command{
		Use:   "revoke (AUTHORIZATION-ID | --subject ID) --reason TEXT",
		Short: "Revoke an authorization, or every authorization of one subject",
		Long: `revoke records the revocation of one authorization by its id (consent list shows ids), or with
--subject of every current authorization of that subject (narrowed by --grantee and --purpose;
local data directory only). Revocation never deletes: the authorization stays, revoked from now,
and the next job's cohort leaves the subject out. It is audited without the identifier.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("pass --reason: a revocation records why")
			}
			if (len(args) == 1) == (subject != "") {
				return usageErrorf("name one authorization id or pass --subject, not both")
			}
			var id int64
			if len(args) == 1 {
				var err error
				if id, err = strconv.ParseInt(args[0], 10, 64); err != nil || id < 1 {
					return usageErrorf("%q is not an authorization id (consent list shows them)", args[0])
				}
			}
			return viaAPI(cmd, &ef, &rf, func(ctx context.Context, c *client.Client) error {
				if subject != "" {
					return usageErrorf("--subject works on a local data directory only; revoke by id through the API")
				}
				a, err := c.Revoke(ctx, id, reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "authorization %d revoked (%s)\n", a.ID, a.Status)
				return nil
			}, func(ctx context.Context, e *enclave.Enclave) error {
				if subject != "" {
					n, err := e.Consent.RevokeSubject(ctx, localUser(), consent.Selector{IDType: ident.Kind(idType), Identifier: subject,
						Grantee: grantee, Purpose: consent.Purpose(purpose)}, reason)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%d authorizations of %s revoked\n", n, ident.Mask(subject))
					return nil
				}
				a, err := e.Consent.Revoke(ctx, localUser(), id, reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "authorization %d revoked (%s)\n", a.ID, a.Status)
				return nil
			})
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "why (recorded with the revocation)")
	f.StringVar(&subject, "subject", "", "revoke every current authorization of this subject instead")
	f.StringVar(&idType, "id-type", string(ident.KindUSCC), "the identifier kind of --subject")
	f.StringVar(&grantee, "grantee", "", "with --subject: only authorizations of this bank")
	f.StringVar(&purpose, "purpose", "", "with --subject: only authorizations for this purpose")
	return cmd
}
