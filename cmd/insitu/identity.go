package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"insitu/enclave/api"
	"insitu/enclave/datadir"
	"insitu/enclave/keys"
)

func newIdentityCmd() *cobra.Command {
	var ef enclaveFlags
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Print the enclave's public identity (JSON), which banks use to seal data to the enclave and verify its receipts, and its TLS certificate's fingerprint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ef.dataDir == "" {
				return usageErrorf("no data directory: pass --data-dir or set INSITU_DATA_DIR")
			}
			d, err := datadir.Open(ef.dataDir, keys.Source{File: ef.keyFile})
			if err != nil {
				return err
			}
			id, err := d.Identity()
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(id.Public(), "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "fingerprint", id.Public().Fingerprint())
			// The API's TLS certificate, made here if insitu serve has not run yet: clients pin it.
			_, tlsFP, err := api.LoadOrCreateCert(d)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "tls certificate", tlsFP)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return err
		},
	}
	ef.register(cmd)
	return cmd
}
