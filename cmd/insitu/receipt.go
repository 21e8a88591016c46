package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"insitu/enclave/gate"
	"insitu/enclave/keys"
)

func newReceiptCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "receipt",
		Short: "Check release receipts offline",
	}
	cmd.AddCommand(newReceiptVerifyCmd())
	return cmd
}

func newReceiptVerifyCmd() *cobra.Command {
	var enclaveFile, resultFile, keyFile string
	var stewardFiles []string
	var minApprovals int
	cmd := &cobra.Command{
		Use:   "verify RECEIPT --enclave ENCLAVE.pub [--steward STEWARD.pub]... [--result RESULT.sealed --key BANK.key]",
		Short: "Verify a release receipt offline, with public keys only",
		Long: `verify checks a receipt without contacting the enclave: its strict format, the enclave's ML-DSA-65
signature (--enclave: the enclave's public identity, as insitu identity prints it), and each approval's
signature over the manifest hash against the stewards' public keys given with --steward; at least the
quorum the receipt states must verify (or --min-approvals). With --result and --key (the bank's key
file, passphrase from $` + passphraseEnv + `) it also opens the sealed result and checks it against the
receipt's hashes and bits bound. The exit status is non-zero on any failure.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if enclaveFile == "" {
				return usageErrorf("pass --enclave with the enclave's public identity file")
			}
			if (resultFile == "") != (keyFile == "") {
				return usageErrorf("--result and --key go together: the bank's key opens the sealed result")
			}
			encl, err := readPublic(enclaveFile)
			if err != nil {
				return err
			}
			var stewards []keys.PublicIdentity
			for _, f := range stewardFiles {
				p, err := readPublic(f)
				if err != nil {
					return err
				}
				stewards = append(stewards, p)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			r, err := gate.VerifyReceipt(data, encl, gate.VerifyOptions{Stewards: stewards, MinApprovals: minApprovals})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "receipt of job %s for %s: signed by enclave %s\n", r.Job, r.Bank, r.Enclave)
			fmt.Fprintf(out, "manifest %s, purpose %s, mode %s\n", r.ManifestHash, r.Purpose, r.Mode)
			fmt.Fprintf(out, "dataset %s version %s (%s), plugin %s\n", r.Dataset.Name, r.Dataset.Version, r.Dataset.ManifestHash, r.Plugin)
			fmt.Fprintf(out, "cohort %d subjects (%d train, %d held out), authorizations %s\n", r.Cohort.Total, r.Cohort.Train, r.Cohort.Test, r.AuthorizationDigest)
			var names []string
			for _, a := range r.Approvals {
				names = append(names, a.Steward)
			}
			sort.Strings(names)
			if len(stewards) == 0 && minApprovals == 0 {
				fmt.Fprintf(out, "approvals: %s (quorum %d) NOT CHECKED: pass --steward keys to check them\n", strings.Join(names, ", "), r.Quorum)
			} else {
				fmt.Fprintf(out, "approvals: %s (quorum %d) verified against the stewards' keys\n", strings.Join(names, ", "), r.Quorum)
			}
			if r.Waiver != nil {
				fmt.Fprintf(out, "verification waived by %s: %s\n", r.Waiver.Steward, r.Waiver.Reason)
			}
			fmt.Fprintf(out, "gate: %s %s, weights rounded to %g, at most %.2f bits hideable in %d parameters\n",
				r.Gate.Result, r.Gate.Family, r.Gate.Step, r.Gate.BitsBound, r.Gate.Parameters)
			fmt.Fprintf(out, "audit head %d:%s (pass it to insitu audit verify --head, or the receipt with --receipt)\n", r.Audit.Seq, r.Audit.Hash)
			if resultFile != "" {
				sealed, err := os.ReadFile(resultFile)
				if err != nil {
					return err
				}
				bank, err := readStewardKey(keyFile)
				if err != nil {
					return err
				}
				b, err := gate.OpenResult(sealed, bank)
				if err != nil {
					return fmt.Errorf("%s: %w", resultFile, err)
				}
				if err := b.Check(r); err != nil {
					return fmt.Errorf("%s: %w", resultFile, err)
				}
				fmt.Fprintf(out, "result %s opens with %s's key and matches the receipt: %d weights, %d scores, metrics %v\n",
					resultFile, bank.Name, len(b.Weights.Values), len(b.Scores), b.Metrics)
			}
			fmt.Fprintln(out, "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&enclaveFile, "enclave", "", "the enclave's public identity file")
	cmd.Flags().StringArrayVar(&stewardFiles, "steward", nil, "a steward's public identity file (repeatable)")
	cmd.Flags().IntVar(&minApprovals, "min-approvals", 0, "approvals that must verify (default: the receipt's quorum when --steward is given)")
	cmd.Flags().StringVar(&resultFile, "result", "", "the sealed result to open and check")
	cmd.Flags().StringVar(&keyFile, "key", "", "the bank's key file, to open --result")
	return cmd
}

// readPublic reads a public identity file.
func readPublic(path string) (keys.PublicIdentity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return keys.PublicIdentity{}, err
	}
	p, err := keys.ParsePublic(data)
	if err != nil {
		return keys.PublicIdentity{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
