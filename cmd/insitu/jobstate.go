package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"insitu/connectors/catalog"
	"insitu/enclave"
	"insitu/enclave/api/client"
	"insitu/enclave/consent"
	"insitu/enclave/job"
	"insitu/enclave/keys"
)

// localActor names who acted in audit events recorded by local commands that take no party key: the
// operator of the enclave's host.
const localActor = "operator"

func newPartyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "party",
		Short: "Register, list and remove the parties whose keys sign manifests and approvals",
	}
	var f enclaveFlags
	var rf remoteFlags
	add := &cobra.Command{
		Use:   "add FILE.pub.json",
		Short: "Register a party's public identity (from insitu keys new)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			pub, err := keys.ParsePublic(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				p, err := c.AddParty(ctx, pub)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "registered %s %s, fingerprint %s\n", p.Role, p.Name, p.Fingerprint)
				return nil
			}, func(ctx context.Context, e *enclave.Enclave) error {
				p, err := e.Jobs.AddParty(ctx, localActor, pub)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "registered %s %s, fingerprint %s\n", p.Role, p.Name, p.Fingerprint)
				return nil
			})
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the registered parties",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				ps, err := c.ListParties(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tROLE\tFINGERPRINT\tADDED")
				for _, p := range ps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Role, p.Fingerprint, p.AddedAt.Format(time.RFC3339))
				}
				return w.Flush()
			}, func(ctx context.Context, e *enclave.Enclave) error {
				ps, err := e.Jobs.ListParties(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tROLE\tFINGERPRINT\tADDED")
				for _, p := range ps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Name, p.Role, p.Fingerprint, p.AddedAt.Format(time.RFC3339))
				}
				return w.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "End a party's registration",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				if err := c.RemoveParty(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
				return nil
			}, func(ctx context.Context, e *enclave.Enclave) error {
				if err := e.Jobs.RemoveParty(ctx, localActor, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{add, list, remove} {
		f.register(c)
		rf.register(c)
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and change the stewards' settings (" + job.SettingQuorum + ", " + job.SettingMinCohort + ")",
	}
	var f enclaveFlags
	var rf remoteFlags
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set a setting to a positive integer",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.Atoi(args[1])
			if err != nil {
				return usageErrorf("%s: %q is not an integer", args[0], args[1])
			}
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				if err := c.SetSetting(ctx, args[0], v); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s = %d\n", args[0], v)
				return nil
			}, func(ctx context.Context, e *enclave.Enclave) error {
				if err := e.Jobs.SetSetting(ctx, localActor, args[0], v); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s = %d\n", args[0], v)
				return nil
			})
		},
	}
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print a setting",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				sts, err := c.Settings(ctx)
				if err != nil {
					return err
				}
				for _, st := range sts {
					if st.Key == args[0] {
						fmt.Fprintf(cmd.OutOrStdout(), "%s = %d\n", st.Key, st.Value)
						return nil
					}
				}
				return usageErrorf("no setting %s", args[0])
			}, func(ctx context.Context, e *enclave.Enclave) error {
				v, err := e.Jobs.Setting(ctx, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s = %d\n", args[0], v)
				return nil
			})
		},
	}
	f.register(set)
	f.register(get)
	rf.register(set)
	rf.register(get)
	cmd.AddCommand(set, get)
	return cmd
}

// jobStateCmds are the job commands that act on the enclave's job board.
func jobStateCmds() []*cobra.Command {
	return []*cobra.Command{newJobSubmitCmd(), newJobListCmd(), newJobShowCmd(), newJobApproveCmd(), newJobRejectCmd(), newJobCancelCmd(),
		newJobWatchCmd(), newJobResultCmd()}
}

func newJobSubmitCmd() *cobra.Command {
	var f enclaveFlags
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "submit SIGNED",
		Short: "Submit a signed manifest: it is verified against its bank's registered key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				j, err := c.Submit(ctx, data)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s submitted by %s\n%s\n", j.ID, j.Bank, j.ManifestHash)
				return nil
			}, func(ctx context.Context, e *enclave.Enclave) error {
				j, err := e.Jobs.Submit(ctx, data, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s submitted by %s\n%s\n", j.ID, j.Bank, j.ManifestHash)
				return nil
			})
		},
	}
	f.register(cmd)
	rf.register(cmd)
	return cmd
}

func newJobListCmd() *cobra.Command {
	var f enclaveFlags
	var rf remoteFlags
	var bank string
	cmd := &cobra.Command{
		Use:   "list [--bank B]",
		Short: "List jobs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				js, err := c.ListJobs(ctx, bank)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tBANK\tSTATE\tSUBMITTED\tREASON")
				for _, j := range js {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.Bank, j.State, j.SubmittedAt.Format(time.RFC3339), j.Reason)
				}
				return w.Flush()
			}, func(ctx context.Context, e *enclave.Enclave) error {
				js, err := e.Jobs.List(ctx, bank)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tBANK\tSTATE\tPURPOSE\tMODE\tSUBMITTED\tREASON")
				for _, j := range js {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Bank, j.State, j.Manifest.Purpose, j.Manifest.Mode,
						j.SubmittedAt.Format(time.RFC3339), j.Reason)
				}
				return w.Flush()
			})
		},
	}
	f.register(cmd)
	rf.register(cmd)
	cmd.Flags().StringVar(&bank, "bank", "", "only this bank's jobs")
	return cmd
}

func newJobShowCmd() *cobra.Command {
	var f enclaveFlags
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show what a steward judges: bank, purpose, fields, mode, plugin history, outputs, approvals",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				if name, role := c.Party(); role != keys.RoleSteward {
					j, err := c.Job(ctx, args[0])
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "job %s of %s: %s %s\nmanifest hash %s\n", j.ID, name, j.State, j.Reason, j.ManifestHash)
					return nil
				}
				rv, err := c.Review(ctx, args[0])
				if err != nil {
					return err
				}
				return showJob(cmd.OutOrStdout(), rv)
			}, func(ctx context.Context, e *enclave.Enclave) error {
				rv, err := e.Review(ctx, args[0])
				if err != nil {
					return err
				}
				return showJob(cmd.OutOrStdout(), rv)
			})
		},
	}
	f.register(cmd)
	rf.register(cmd)
	return cmd
}

func showJob(out io.Writer, rv *enclave.Review) error {
	j, st, hist, minCohort := rv.Job, rv.Status, rv.PluginHistory, rv.MinCohort
	m := j.Manifest
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "job\t%s\nstate\t%s\n", j.ID, j.State)
	if j.Reason != "" {
		fmt.Fprintf(w, "reason\t%s\n", j.Reason)
	}
	fmt.Fprintf(w, "bank\t%s\npurpose\t%s\n", j.Bank, m.Purpose)
	if m.PurposeDetail != "" {
		fmt.Fprintf(w, "purpose detail\t%s\n", m.PurposeDetail)
	}
	fmt.Fprintf(w, "dataset\t%s version %s\nmode\t%s\nmodel\t%s\n", m.Dataset.Name, m.Dataset.Version, m.Mode, m.Model.Family)
	if len(m.Model.Hyperparameters) > 0 {
		hp, err := json.Marshal(m.Model.Hyperparameters)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "hyperparameters\t%s\n", hp)
	}
	if m.Epsilon != nil {
		fmt.Fprintf(w, "privacy budget\tepsilon %g\n", *m.Epsilon)
	}
	if p := rv.Privacy; p != nil {
		fits := "fits"
		if !p.Fits {
			fits = "does NOT fit: its queries will be refused once the bank's budget is spent"
		}
		fmt.Fprintf(w, "bank's budget on %s\tepsilon %.4g total, %.4g spent by %d jobs, %.4g remaining (delta %g): the request %s\n",
			m.Dataset.Name, p.Total, p.Spent, p.Jobs, p.Remaining, p.Delta, fits)
	}
	fmt.Fprintf(w, "manifest hash\t%s\nsubmitted\t%s\nexpires\t%s\n", j.ManifestHash, j.SubmittedAt.Format(time.RFC3339), m.Expires)
	if m.Labels != "" {
		fmt.Fprintf(w, "labels\t%s\n", m.Labels)
	}
	seen := "never seen before"
	if len(hist) > 0 {
		counts := map[job.State]int{}
		var order []string
		for _, h := range hist {
			if counts[h.State] == 0 {
				order = append(order, string(h.State))
			}
			counts[h.State]++
		}
		parts := make([]string, len(order))
		for i, s := range order {
			parts[i] = fmt.Sprintf("%d %s", counts[job.State(s)], s)
		}
		seen = fmt.Sprintf("seen in %d earlier jobs (%s)", len(hist), strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "plugin\t%s, %s\n", m.Plugin, seen)
	var outs []string
	if o := m.Outputs.Weights; o != nil {
		outs = append(outs, fmt.Sprintf("weights (at most %d, |w| ≤ %g)", o.MaxWeights, o.MaxAbs))
	}
	if o := m.Outputs.Scores; o != nil {
		outs = append(outs, fmt.Sprintf("scores in %v", o.Range))
	}
	if o := m.Outputs.Metrics; o != nil {
		outs = append(outs, "metrics "+strings.Join(o.Names, ", "))
	}
	fmt.Fprintf(w, "outputs\t%s\n", strings.Join(outs, "; "))
	fmt.Fprintf(w, "approvals\t%d/%d (quorum %d of %d registered stewards)\n", st.Approvals, st.Quorum, st.Quorum, st.Stewards)
	for _, d := range st.Decisions {
		what := "approved"
		if !d.Approve {
			what = "rejected: " + d.Reason
		}
		if !d.Registered {
			what += " (key no longer registered: not counted)"
		}
		fmt.Fprintf(w, "\t%s %s at %s\n", d.Steward, what, d.At.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "minimum cohort\t%d subjects\n", minCohort)
	if c := rv.Cohort; c != nil {
		verdict := "enough to run"
		if c.Kept < minCohort {
			verdict = "below the minimum: the job cannot run"
		}
		fmt.Fprintf(w, "cohort now\t%d labelled, %d in the dataset, %d with a covering authorization (%s)\n", c.Labelled, c.Matched, c.Kept, verdict)
		if c.Authorization != "" {
			fmt.Fprintf(w, "authorization\t%s\n", c.Authorization)
		}
		var lost []string
		for _, r := range consent.Reasons {
			if n := c.Lost[r]; n > 0 {
				lost = append(lost, fmt.Sprintf("%s %d", r, n))
			}
		}
		if len(lost) > 0 {
			fmt.Fprintf(w, "left out\t%s (the bank sees only the cohort's size)\n", strings.Join(lost, ", "))
		}
	} else if rv.CohortError != "" {
		fmt.Fprintf(w, "cohort now\tcannot be told: %s\n", rv.CohortError)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nrequested fields (%d):\n", len(m.Fields))
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "FIELD\tITEM\tSHARING\tSENSITIVITY\tPERSONAL\tSTEPS")
	cat := catalog.Default()
	for _, fl := range m.Fields {
		item, field, _ := strings.Cut(fl.Key, ".")
		itemName, sharing, sens := item, "?", "?"
		if it, cf, err := cat.Field(item, field); err == nil {
			itemName = fmt.Sprintf("%s (%s)", it.Key, it.NameEN)
			sharing, sens = string(it.Sharing), cf.Sensitivity.String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%d\n", fl.Key, itemName, sharing, sens, fl.Personal, len(fl.Steps))
	}
	return w.Flush()
}

// readStewardKey reads a party key file (its passphrase from INSITU_KEY_PASSPHRASE).
func readStewardKey(path string) (*keys.Identity, error) {
	if path == "" {
		return nil, usageErrorf("pass --key with the steward's key file")
	}
	kd, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	id, err := keys.ParsePartyFile(kd, []byte(os.Getenv(passphraseEnv)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

func newJobApproveCmd() *cobra.Command {
	var f enclaveFlags
	var rf remoteFlags
	var keyFile string
	cmd := &cobra.Command{
		Use:   "approve ID --key STEWARD.key",
		Short: "Approve a job: sign its manifest hash with the steward's key and record the signature",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rf.key = keyFile
			if c, err := remote(&f, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				st, err := c.Approve(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: approvals %d/%d, %s\n", args[0], st.Approvals, st.Quorum, st.State)
				return nil
			}
			id, err := readStewardKey(keyFile)
			if err != nil {
				return err
			}
			return withEnclave(cmd, &f, func(ctx context.Context, e *enclave.Enclave) error {
				j, err := e.Jobs.Get(ctx, args[0])
				if err != nil {
					return err
				}
				sig, err := id.Sign(job.ApprovalMessage(j.Manifest), job.ApprovalContext)
				if err != nil {
					return err
				}
				st, err := e.Jobs.Approve(ctx, j.ID, id.Name, sig)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: approvals %d/%d, %s\n", j.ID, st.Approvals, st.Quorum, st.State)
				return nil
			})
		},
	}
	f.register(cmd)
	rf.registerKey(cmd, false)
	cmd.Flags().StringVar(&keyFile, "key", "", "the steward's key file (insitu keys new --role steward)")
	return cmd
}

func newJobRejectCmd() *cobra.Command {
	var f enclaveFlags
	var rf remoteFlags
	var keyFile, reason string
	cmd := &cobra.Command{
		Use:   "reject ID --key STEWARD.key --reason TEXT",
		Short: "Reject a job with a reason the bank sees, signed with the steward's key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageErrorf("pass --reason: the bank sees it")
			}
			rf.key = keyFile
			if c, err := remote(&f, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				if _, err := c.Reject(cmd.Context(), args[0], reason); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: rejected: %s\n", args[0], reason)
				return nil
			}
			id, err := readStewardKey(keyFile)
			if err != nil {
				return err
			}
			return withEnclave(cmd, &f, func(ctx context.Context, e *enclave.Enclave) error {
				j, err := e.Jobs.Get(ctx, args[0])
				if err != nil {
					return err
				}
				sig, err := id.Sign(job.RejectionMessage(j.Manifest, reason), job.RejectionContext)
				if err != nil {
					return err
				}
				if _, err := e.Jobs.Reject(ctx, j.ID, id.Name, sig, reason); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: rejected: %s\n", j.ID, reason)
				return nil
			})
		},
	}
	f.register(cmd)
	rf.registerKey(cmd, false)
	cmd.Flags().StringVar(&keyFile, "key", "", "the steward's key file")
	cmd.Flags().StringVar(&reason, "reason", "", "why: the bank sees it")
	return cmd
}

func newJobCancelCmd() *cobra.Command {
	var f enclaveFlags
	var rf remoteFlags
	var reason string
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a job that has not ended",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return viaAPI(cmd, &f, &rf, func(ctx context.Context, c *client.Client) error {
				j, err := c.Cancel(ctx, args[0], reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", j.ID, j.State)
				return nil
			}, func(ctx context.Context, e *enclave.Enclave) error {
				j, err := e.Jobs.Cancel(ctx, args[0], localActor, reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", j.ID, j.State)
				return nil
			})
		},
	}
	f.register(cmd)
	rf.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return cmd
}
