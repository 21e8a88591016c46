package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"insitu/enclave"
	"insitu/enclave/aggregate"
)

func newBudgetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "budget",
		Short: "Show and set the privacy budgets of aggregate-mode jobs, per bank and dataset",
		Long: `Every answer an aggregate-mode plugin gets spends privacy budget. A job may spend the ε its
manifest declares (at most 8); all of a bank's jobs on one dataset together may spend the total a
steward sets here (` + fmt.Sprint(aggregate.DefaultTotalEpsilon) + ` unless set), at the δ it sets with --delta (` + fmt.Sprint(aggregate.DefaultDelta) + ` unless set, at most ` + fmt.Sprint(aggregate.MaxDelta) + `).
Cells whose noisy count is below the minimum cell count are suppressed.

Against the enclave's API (insitu login's profile, or --enclave) a steward's or an admin's key
reads and sets them; with --data-dir the operator works on the local data directory.`,
	}
	var f enclaveFlags
	var rf remoteFlags
	var bank, ds string
	show := &cobra.Command{
		Use:   "show",
		Short: "Print budgets and spends, filtered by --bank and --dataset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c, err := remote(&f, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				got, err := c.Budgets(cmd.Context(), bank, ds)
				if err != nil {
					return err
				}
				rows := make([]aggregate.Account, 0, len(got.Budgets))
				for _, b := range got.Budgets {
					rows = append(rows, aggregate.Account{Bank: b.Bank, Dataset: b.Dataset, Epsilon: b.Epsilon, Delta: b.Delta,
						Default: b.Default, EpsilonSpent: b.Spent, Jobs: b.Jobs})
				}
				return printBudgets(cmd.OutOrStdout(), rows, got.MinCount)
			}
			return withEnclave(cmd, &f, func(ctx context.Context, e *enclave.Enclave) error {
				accts, err := e.Privacy.Accounts(ctx, bank, ds)
				if err != nil {
					return err
				}
				if bank != "" && ds != "" && len(accts) == 0 {
					a, err := e.Privacy.Account(ctx, bank, ds)
					if err != nil {
						return err
					}
					accts = append(accts, a)
				}
				k, err := e.Privacy.MinCount(ctx)
				if err != nil {
					return err
				}
				return printBudgets(cmd.OutOrStdout(), accts, k)
			})
		},
	}
	show.Flags().StringVar(&bank, "bank", "", "only this bank")
	show.Flags().StringVar(&ds, "dataset", "", "only this dataset")
	f.register(show)
	rf.register(show)

	var sf enclaveFlags
	var srf remoteFlags
	var sbank, sds string
	var eps, delta float64
	var minCount int
	set := &cobra.Command{
		Use:   "set",
		Short: "Set a bank's total budget on a dataset (--bank --dataset --epsilon [--delta]), or the minimum cell count (--min-count); audited",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			budget := sbank != "" || sds != "" || cmd.Flags().Changed("epsilon") || cmd.Flags().Changed("delta")
			if !budget && !cmd.Flags().Changed("min-count") {
				return usageErrorf("give --bank, --dataset and --epsilon, or --min-count")
			}
			if budget && (sbank == "" || sds == "" || !cmd.Flags().Changed("epsilon")) {
				return usageErrorf("a budget needs --bank, --dataset and --epsilon")
			}
			if c, err := remote(&sf, &srf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				if budget {
					b, err := c.SetBudgetDelta(cmd.Context(), sbank, sds, eps, delta)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "bank %s on dataset %s: ε = %.4g (δ = %g), spent %.4g, remaining %.4g\n",
						b.Bank, b.Dataset, b.Epsilon, b.Delta, b.Spent, b.Remaining)
				}
				if cmd.Flags().Changed("min-count") {
					if err := c.SetMinCount(cmd.Context(), minCount); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "minimum cell count k = %d\n", minCount)
				}
				return nil
			}
			return withEnclave(cmd, &sf, func(ctx context.Context, e *enclave.Enclave) error {
				if budget {
					if err := e.Privacy.SetBudgetDelta(ctx, localActor, sbank, sds, eps, delta); err != nil {
						return err
					}
					a, err := e.Privacy.Account(ctx, sbank, sds)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "bank %s on dataset %s: ε = %.4g (δ = %g), spent %.4g, remaining %.4g\n",
						a.Bank, a.Dataset, a.Epsilon, a.Delta, a.EpsilonSpent, a.EpsilonLeft())
				}
				if cmd.Flags().Changed("min-count") {
					if err := e.Privacy.SetMinCount(ctx, localActor, minCount); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "minimum cell count k = %d\n", minCount)
				}
				return nil
			})
		},
	}
	set.Flags().StringVar(&sbank, "bank", "", "the bank")
	set.Flags().StringVar(&sds, "dataset", "", "the dataset (all its versions)")
	set.Flags().Float64Var(&eps, "epsilon", 0, "the bank's total ε on the dataset, across all its jobs")
	set.Flags().Float64Var(&delta, "delta", 0, fmt.Sprintf("the budget's δ, above 0 and at most %g (default: keep it; %g unless set)", aggregate.MaxDelta, aggregate.DefaultDelta))
	set.Flags().IntVar(&minCount, "min-count", aggregate.DefaultMinCount, "cells whose noisy count is below this are suppressed")
	sf.register(set)
	srf.register(set)
	cmd.AddCommand(show, set)
	return cmd
}

// printBudgets prints one line per (bank, dataset) pair and the minimum cell count.
func printBudgets(out io.Writer, accts []aggregate.Account, k int) error {
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "BANK\tDATASET\tEPSILON\tSPENT\tREMAINING\tDELTA\tJOBS")
	for _, a := range accts {
		total := fmt.Sprintf("%.4g", a.Epsilon)
		if a.Default {
			total += " (default)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.4g\t%.4g\t%g\t%d\n", a.Bank, a.Dataset, total, a.EpsilonSpent, a.EpsilonLeft(), a.Delta, a.Jobs)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "minimum cell count k = %d\n", k)
	return err
}
