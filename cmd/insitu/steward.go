package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newStewardCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "steward",
		Short: "Steward and admin tasks for the web console",
	}
	cmd.AddCommand(newEnrollPasskeyCmd())
	return cmd
}

func newEnrollPasskeyCmd() *cobra.Command {
	var rf remoteFlags
	var code, origin string
	cmd := &cobra.Command{
		Use:   "enroll-passkey --code XXXXX-XXXXX --origin https://HOST:PORT",
		Short: "Enrol a passkey registered in the console: sign its statement with your identity (through the API)",
		Long: `enroll-passkey enrols a passkey created on the console's enrol page. The page shows a code; this
command fetches the statement filed under it (your party name and key fingerprint, the credential, the
relying party and the origin the passkey was made at), checks that it names your identity and the origin
you give with --origin (the address you opened the console at), signs it with your ML-DSA key and
uploads it. From then on the passkey signs you in to the console and, for a steward, approves jobs:
receipts verify those approvals offline with your public key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if code == "" || origin == "" {
				return usageErrorf("pass --code (shown by the console's enrol page) and --origin (the console's address, e.g. https://console.example:8443)")
			}
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			pr, st, err := c.PasskeyRequest(cmd.Context(), code)
			if err != nil {
				return err
			}
			if st.Origin != strings.TrimRight(origin, "/") {
				return fmt.Errorf("the passkey was registered at %s, not at %s: if you did not open the console there, do not enrol it", st.Origin, origin)
			}
			pk, err := c.EnrollPasskey(cmd.Context(), pr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled passkey %s of %s for %s (relying party %s)\n", pk.Credential, pk.Party, pk.Origin, pk.RPID)
			return nil
		},
	}
	rf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&code, "code", "", "the code the console's enrol page shows")
	f.StringVar(&origin, "origin", "", "the console's origin, scheme://host:port, as the browser's address bar shows it")
	return cmd
}
