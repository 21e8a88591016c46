package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave"

	"insitu/enclave/audit"
	"insitu/enclave/gate"
	"insitu/enclave/keys"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the enclave's tamper-evident audit log",
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditLogCmd())
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var ef enclaveFlags
	var heads, receipts []string
	var checkpoint bool
	cmd := &cobra.Command{
		Use:   "verify [--head SEQ:HASH]... [--receipt RECEIPT]...",
		Short: "Verify every record, link and signed checkpoint of the audit log",
		Long: `verify recomputes every record's hash and link, checks every checkpoint's ML-DSA-65 signature
against the enclave's public key, and checks the heads given (from receipts, or printed by an earlier
verify): a head the log no longer contains means the log was rolled back or rewritten. Records after
the last signed checkpoint or known head cannot be told from a rewrite; verify says how many there are,
and --checkpoint signs the current head first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			known, err := parseHeads(heads)
			if err != nil {
				return err
			}
			return withEnclave(cmd, &ef, func(ctx context.Context, e *enclave.Enclave) error {
				fromReceipts, err := receiptHeads(receipts, e.Identity.Public())
				if err != nil {
					return err
				}
				known = append(known, fromReceipts...)
				if checkpoint {
					if _, err := e.Audit.Checkpoint(ctx); err != nil {
						return err
					}
				}
				rep, err := e.VerifyAudit(ctx, known)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "%d records, %d checkpoints; head %d:%s\n", rep.Records, rep.Checkpoints, rep.Head.Seq, rep.Head.Hash)
				fmt.Fprintf(out, "anchored through seq %d by signed checkpoints and known heads; %d records after it\n", rep.Anchored, rep.Unanchored)
				for _, f := range rep.Findings {
					fmt.Fprintf(out, "FAIL %s\n", f)
				}
				if err := rep.Err(); err != nil {
					return err
				}
				fmt.Fprintln(out, "ok: keep the head above and pass it with --head next time to detect a rollback")
				return nil
			})
		},
	}
	ef.register(cmd)
	cmd.Flags().StringArrayVar(&heads, "head", nil, "a head known from a receipt or an earlier verify, SEQ:HASH (repeatable)")
	cmd.Flags().StringArrayVar(&receipts, "receipt", nil, "a release receipt whose audit head the log must still hold (repeatable); verified against the enclave's key")
	cmd.Flags().BoolVar(&checkpoint, "checkpoint", false, "sign a checkpoint of the current head before verifying")
	return cmd
}

// receiptHeads reads the audit heads of release receipts, each verified against the enclave's key.
func receiptHeads(files []string, encl keys.PublicIdentity) ([]audit.Head, error) {
	var out []audit.Head
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		r, err := gate.VerifyReceipt(data, encl, gate.VerifyOptions{})
		if err != nil {
			return nil, fmt.Errorf("--receipt %s: %w", f, err)
		}
		out = append(out, r.Audit)
	}
	return out, nil
}

func parseHeads(in []string) ([]audit.Head, error) {
	var out []audit.Head
	for _, h := range in {
		s, hash, ok := strings.Cut(h, ":")
		seq, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || seq < 1 {
			return nil, usageErrorf("--head %q: write SEQ:HASH as verify prints it", h)
		}
		var d audit.Digest
		if err := d.UnmarshalText([]byte(hash)); err != nil {
			return nil, usageErrorf("--head %q: %v", h, err)
		}
		out = append(out, audit.Head{Seq: seq, Hash: d})
	}
	return out, nil
}

func newAuditLogCmd() *cobra.Command {
	var ef enclaveFlags
	var after int64
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Print audit records in order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withEnclave(cmd, &ef, func(ctx context.Context, e *enclave.Enclave) error {
				recs, err := e.Audit.Records(ctx, after, limit)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				for _, r := range recs {
					if asJSON {
						b, err := json.Marshal(r)
						if err != nil {
							return err
						}
						fmt.Fprintln(out, string(b))
						continue
					}
					fmt.Fprintf(out, "%6d  %s  %-20s  %-12s  %s  %s\n", r.Seq, r.Time.Format(time.DateTime), r.Kind, r.Actor, r.Subject, r.Payload)
				}
				return nil
			})
		},
	}
	ef.register(cmd)
	cmd.Flags().Int64Var(&after, "after", 0, "start after this seq")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many records")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	return cmd
}
