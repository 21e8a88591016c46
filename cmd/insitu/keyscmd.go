package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"insitu/enclave/cohort"
	"insitu/enclave/keys"
)

// passphraseEnv names the variable that holds a party key file's passphrase.
const passphraseEnv = "INSITU_KEY_PASSPHRASE"

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create and show a party's identity (ML-DSA-65 signing key and X-Wing HPKE key)",
	}
	cmd.AddCommand(newKeysNewCmd(), newKeysShowCmd())
	return cmd
}

func newKeysNewCmd() *cobra.Command {
	var role, name, out string
	cmd := &cobra.Command{
		Use:   "new --role bank|steward|researcher|admin --name NAME --out FILE",
		Short: "Create a party's key file (private, mode 0600) and print its public identity",
		Long: `new creates a signing key (ML-DSA-65) and an HPKE key (X-Wing: X25519 + ML-KEM-768) for a party.
The key file holds the private seeds, encrypted under $` + passphraseEnv + ` when it is set (scrypt),
otherwise protected only by its mode 0600. The public identity (FILE.pub.json) is what an admin
registers with the enclave.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || name == "" || role == "" {
				return usageErrorf("pass --role, --name and --out")
			}
			if role == keys.RoleEnclave {
				return usageErrorf("the enclave's identity is made by insitu init")
			}
			id, err := keys.NewIdentity(role, name)
			if err != nil {
				return usageErrorf("%v", err)
			}
			data, err := id.MarshalPartyFile([]byte(os.Getenv(passphraseEnv)))
			if err != nil {
				return err
			}
			pub, err := json.MarshalIndent(id.Public(), "", "  ")
			if err != nil {
				return err
			}
			pubFile := strings.TrimSuffix(out, ".key") + ".pub.json"
			if err := writeNew(out, data, 0o600); err != nil {
				return err
			}
			if err := writeNew(pubFile, append(pub, '\n'), 0o644); err != nil {
				os.Remove(out)
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s %s: fingerprint %s\n", role, name, id.Public().Fingerprint())
			fmt.Fprintf(w, "private key file %s", out)
			if os.Getenv(passphraseEnv) == "" {
				fmt.Fprintf(w, " (not passphrase-protected: set %s to protect it)", passphraseEnv)
			}
			fmt.Fprintf(w, "\npublic identity  %s\n", pubFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "bank, steward, researcher or admin")
	f.StringVar(&name, "name", "", "the party's name: lower-case letters, digits, '.', '_' or '-'")
	f.StringVar(&out, "out", "", "the private key file to create (its public part goes beside it as NAME.pub.json)")
	return cmd
}

func newKeysShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE",
		Short: "Print the public identity of a key file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			id, err := keys.ParsePartyFile(data, []byte(os.Getenv(passphraseEnv)))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			pub, err := json.MarshalIndent(id.Public(), "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "fingerprint", id.Public().Fingerprint())
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(pub))
			return err
		},
	}
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists; choose another path or remove it", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func newLabelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "labels",
		Short: "Seal a bank's label file to the enclave, or check a sealed one inside it",
	}
	cmd.AddCommand(newLabelsSealCmd(), newLabelsCheckCmd(), newLabelsUploadCmd(), newLabelsListCmd())
	return cmd
}

func newLabelsSealCmd() *cobra.Command {
	var to, out string
	cmd := &cobra.Command{
		Use:   "seal LABELS.csv --to ENCLAVE.pub.json --out FILE",
		Short: "Validate a label file and seal it (HPKE, X-Wing) so only the enclave can open it",
		Long: `seal checks the label file first (identifiers with their check characters, duplicates, labels 0 or
1, dates) and reports any problem with its line, row and column; then it seals the file to the
enclave's public identity (insitu identity prints it) and prints the sealed file's SHA-256, which the
job manifest names.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" || out == "" {
				return usageErrorf("pass --to and --out")
			}
			pubData, err := os.ReadFile(to)
			if err != nil {
				return err
			}
			pub, err := keys.ParsePublic(pubData)
			if err != nil {
				return fmt.Errorf("%s: %w", to, err)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			sealed, digest, err := cohort.SealLabels(pub, data, args[0])
			if err != nil {
				return err
			}
			if err := writeNew(out, sealed, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sealed %s to enclave %s: %s\nsha256:%s\n", args[0], pub.Fingerprint(), out, digest)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the enclave's public identity (JSON)")
	cmd.Flags().StringVar(&out, "out", "", "the sealed file to create")
	return cmd
}

func newLabelsCheckCmd() *cobra.Command {
	var ef enclaveFlags
	cmd := &cobra.Command{
		Use:   "check SEALED",
		Short: "Open a sealed label file inside the enclave and validate it; print only counts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := ef.openDataDir()
			if err != nil {
				return err
			}
			id, err := d.Identity()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			l, err := cohort.OpenLabels(id, data, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d subjects (%s), %d labelled 1\n", args[0], l.Len(), l.Kind, l.Positives())
			return nil
		},
	}
	ef.register(cmd)
	return cmd
}
