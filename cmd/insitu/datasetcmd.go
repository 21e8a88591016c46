package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"insitu/enclave/dataset"
)

func newDatasetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "List, show and verify the enclave's datasets",
	}
	cmd.AddCommand(newDatasetListCmd(), newDatasetShowCmd(), newDatasetVerifyCmd())
	return cmd
}

func newDatasetListCmd() *cobra.Command {
	var ef enclaveFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every version of every dataset",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := ef.openStore()
			if err != nil {
				return err
			}
			es, err := s.List(cmd.Context())
			if err != nil {
				return err
			}
			return dataset.WriteListText(cmd.OutOrStdout(), es)
		},
	}
	ef.register(cmd)
	return cmd
}

func newDatasetShowCmd() *cobra.Command {
	var ef enclaveFlags
	var quality bool
	cmd := &cobra.Command{
		Use:   "show NAME[@vN]",
		Short: "Show a dataset version's manifest (the latest unless @vN is given), and with --quality its full quality report",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, v, err := parseDatasetRef(args[0])
			if err != nil {
				return err
			}
			s, err := ef.openStore()
			if err != nil {
				return err
			}
			m, q, err := s.Show(cmd.Context(), name, v)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := m.WriteText(out); err != nil {
				return err
			}
			if quality && q != nil && q.Report != nil {
				fmt.Fprintln(out)
				return q.Report.WriteText(out)
			}
			return nil
		},
	}
	ef.register(cmd)
	cmd.Flags().BoolVar(&quality, "quality", false, "also print the full data-quality report (decrypted)")
	return cmd
}

func newDatasetVerifyCmd() *cobra.Command {
	var ef enclaveFlags
	cmd := &cobra.Command{
		Use:   "verify NAME[@vN]",
		Short: "Decrypt every block of a dataset version and recompute every hash",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, v, err := parseDatasetRef(args[0])
			if err != nil {
				return err
			}
			s, err := ef.openStore()
			if err != nil {
				return err
			}
			res, err := s.Verify(cmd.Context(), name, v)
			if res != nil {
				if werr := res.WriteText(cmd.OutOrStdout()); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			if failed := res.Failed(); len(failed) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("dataset %s: %d checks failed", args[0], len(failed))}
			}
			return nil
		},
	}
	ef.register(cmd)
	return cmd
}

// parseDatasetRef reads NAME or NAME@vN; version 0 means the latest.
func parseDatasetRef(s string) (string, int, error) {
	name, ver, ok := strings.Cut(s, "@")
	if !ok {
		return name, 0, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ver, "v"))
	if err != nil || n < 1 {
		return "", 0, usageErrorf("%q: write NAME or NAME@vN with N ≥ 1", s)
	}
	return name, n, nil
}
