package main

import (
	"github.com/spf13/cobra"

	"insitu/enclave/buildinfo"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print insitu's version, the Go version and the versions of its main dependencies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return buildinfo.Read().WriteText(cmd.OutOrStdout())
		},
	}
}
