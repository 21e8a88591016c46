package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"insitu/enclave/datadir"
	"insitu/enclave/keys"
)

func newInitCmd() *cobra.Command {
	var dir, keyFile string
	cmd := &cobra.Command{
		Use:   "init --data-dir DIR [--key-file FILE]",
		Short: "Create an enclave data directory and its master key (kept outside the directory)",
		Long: `init creates an enclave data directory and a new 256-bit master key.

The key is written to --key-file (mode 0600), which must lie outside the data directory; without
--key-file it is printed once, to be kept in the environment variable ` + keys.EnvVar + `.
init refuses to overwrite an existing data directory or key file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageErrorf("pass --data-dir")
			}
			res, err := datadir.Init(dir, keyFile)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "data directory  %s\n", res.Dir)
			fmt.Fprintf(out, "master key id   %s\n", res.KeyID)
			fmt.Fprintf(out, "enclave id      %s (ML-DSA-65 signing key, X-Wing HPKE key; insitu identity prints it)\n", res.Identity.Fingerprint())
			if res.KeyFile != "" {
				fmt.Fprintf(out, "master key file %s (keep it off the data directory's backups)\n", res.KeyFile)
				return nil
			}
			fmt.Fprintf(out, "\nThe master key is shown once and stored nowhere else. Keep it in a secret store and export it:\n\n")
			fmt.Fprintf(out, "  export %s=%s\n", keys.EnvVar, res.EnvValue)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the data directory to create (must not exist, or be empty)")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "where to write the master key (outside the data directory)")
	return cmd
}
