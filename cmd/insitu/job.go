package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave/job/manifest"
	"insitu/enclave/keys"
)

func newJobCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Check, hash, sign and verify job manifests",
		Long: `A job manifest says what a bank asks of the platform: purpose, dataset, catalog fields and their
transforms, mode, model, plugin digest, declared outputs, sealed labels and expiry. The bank signs its
canonical form (ML-DSA-65); stewards approve its hash.`,
	}
	cmd.AddCommand(newJobCheckCmd(), newJobSignCmd(), newJobVerifyCmd())
	cmd.AddCommand(jobStateCmds()...)
	return cmd
}

func readManifest(path string) (*manifest.Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return manifest.Parse(data, path)
}

func newJobCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check MANIFEST",
		Short: "Check a manifest (YAML or JSON) and print its hash, the value approvals sign",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := readManifest(args[0])
			if err != nil {
				return err
			}
			if err := m.CheckSubmission(time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s job of %s on %s, %d fields, expires %s\n%s\n", args[0], m.Mode, m.Bank,
				m.Dataset.Name, len(m.Fields), m.ExpiresAt().Format(time.RFC3339), m.HashString())
			return nil
		},
	}
}

func newJobSignCmd() *cobra.Command {
	var keyFile, out string
	cmd := &cobra.Command{
		Use:   "sign MANIFEST --key BANK.key --out SIGNED",
		Short: "Sign a manifest with the bank's key file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" || out == "" {
				return usageErrorf("pass --key and --out")
			}
			m, err := readManifest(args[0])
			if err != nil {
				return err
			}
			if err := m.CheckSubmission(time.Now()); err != nil {
				return err
			}
			kd, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			id, err := keys.ParsePartyFile(kd, []byte(os.Getenv(passphraseEnv)))
			if err != nil {
				return fmt.Errorf("%s: %w", keyFile, err)
			}
			s, err := manifest.Sign(m, id)
			if err != nil {
				return err
			}
			if err := writeNew(out, s.Marshal(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %s as %s (%s): %s\n%s\n", args[0], id.Name, id.Public().Fingerprint(), out, m.HashString())
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "the bank's key file (insitu keys new)")
	cmd.Flags().StringVar(&out, "out", "", "the signed manifest to create")
	return cmd
}

func newJobVerifyCmd() *cobra.Command {
	var pubFile string
	cmd := &cobra.Command{
		Use:   "verify SIGNED --pub BANK.pub.json",
		Short: "Verify a signed manifest against the bank's public identity",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pubFile == "" {
				return usageErrorf("pass --pub")
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			s, err := manifest.ParseSigned(data, args[0])
			if err != nil {
				return err
			}
			pd, err := os.ReadFile(pubFile)
			if err != nil {
				return err
			}
			pub, err := keys.ParsePublic(pd)
			if err != nil {
				return fmt.Errorf("%s: %w", pubFile, err)
			}
			if err := s.Verify(pub); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s signed by %s (%s)\n%s\n", args[0], pub.Name, pub.Fingerprint(), s.Manifest.HashString())
			return nil
		},
	}
	cmd.Flags().StringVar(&pubFile, "pub", "", "the bank's public identity (JSON)")
	return cmd
}
