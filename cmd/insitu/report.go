package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave"
	"insitu/enclave/report"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Reports the platform sends out",
	}
	cmd.AddCommand(newReportUsageCmd())
	return cmd
}

func newReportUsageCmd() *cobra.Command {
	var ef enclaveFlags
	var q report.Query
	var since, format string
	cmd := &cobra.Command{
		Use:   "usage (--provider P | --category C) [--since DATE] [--format csv|json|md]",
		Short: "The usage report to a data provider: which released jobs used its data, for which bank and purpose, on how many subjects",
		Long: `usage lists every job whose outputs were released and that used data of the provider (as the
dataset manifests record each column's provider) or of a catalog category (its key or number): the job,
bank, purpose, dataset version, the items and fields used, the providers, the cohort size and when it
was released. It reads the audit log's release records and holds no data value.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (q.Provider == "") == (q.Category == "") {
				return usageErrorf("pass --provider or --category (one of them)")
			}
			if since != "" {
				t, err := time.ParseInLocation(time.DateOnly, since, time.UTC)
				if err != nil {
					return usageErrorf("--since %q: write a date as 2025-06-30", since)
				}
				q.Since = t
			}
			switch format {
			case "csv", "json", "md":
			default:
				return usageErrorf("--format %q: use csv, json or md", format)
			}
			return withEnclave(cmd, &ef, func(ctx context.Context, e *enclave.Enclave) error {
				rows, err := report.Usage(ctx, e.Audit, e.Datasets, q)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				switch format {
				case "json":
					return report.WriteJSON(out, q, rows)
				case "md":
					return report.WriteMarkdown(out, q, rows)
				}
				return report.WriteCSV(out, rows)
			})
		},
	}
	ef.register(cmd)
	cmd.Flags().StringVar(&q.Provider, "provider", "", "the provider id, as dataset manifests name it")
	cmd.Flags().StringVar(&q.Category, "category", "", "a catalog category: its key or number")
	cmd.Flags().StringVar(&since, "since", "", "only releases on or after this date (YYYY-MM-DD, UTC)")
	cmd.Flags().StringVar(&format, "format", "csv", "csv, json or md")
	return cmd
}
