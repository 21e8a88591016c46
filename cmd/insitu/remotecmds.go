package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/job"
)

// The commands here exist only against the API: a party on its own machine follows a job, fetches
// its result and uploads labels through the enclave's API.

// needClient returns the client of the profile or --enclave, or a usage error.
func needClient(rf *remoteFlags) (*client.Client, error) {
	c, err := rf.client(false)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, usageErrorf("no enclave: run insitu login, or pass --enclave, --fingerprint and --key")
	}
	return c, nil
}

func newJobWatchCmd() *cobra.Command {
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow a job's state on the enclave until it ends (through the API)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			j, err := c.Job(cmd.Context(), args[0])
			for err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", time.Now().Format(time.TimeOnly), j.State, j.Reason)
				switch j.State {
				case job.Rejected, job.Failed, job.Cancelled, job.Released:
					return nil
				}
				from := j.State
				for err == nil && j.State == from {
					j, err = c.Watch(cmd.Context(), args[0], from, api.MaxWatch)
				}
			}
			return err
		},
	}
	rf.register(cmd)
	return cmd
}

func newJobResultCmd() *cobra.Command {
	var rf remoteFlags
	var out string
	cmd := &cobra.Command{
		Use:   "result ID --out PREFIX",
		Short: "Fetch a released job's sealed result and receipt (PREFIX.sealed, PREFIX.receipt.json)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("pass --out")
			}
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.Result(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := writeNew(out+".sealed", res.Sealed, 0o600); err != nil {
				return err
			}
			if err := writeNew(out+".receipt.json", res.Receipt, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s.sealed (%d bytes), %s.receipt.json\n", args[0], out, len(res.Sealed), out)
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "the prefix of the files to create")
	return cmd
}

func newLabelsUploadCmd() *cobra.Command {
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "upload SEALED",
		Short: "Upload a sealed label file to the enclave, which opens and validates it; print the digest a manifest names",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sealed, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			li, err := c.UploadLabels(cmd.Context(), filepath.Base(args[0]), sealed)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d subjects, %d labelled 1\n%s\n", args[0], li.Subjects, li.Positives, li.Digest)
			return nil
		},
	}
	rf.register(cmd)
	return cmd
}

func newLabelsListCmd() *cobra.Command {
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the label files this bank uploaded to the enclave",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			ls, err := c.ListLabels(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DIGEST\tNAME\tSUBJECTS\tUPLOADED")
			for _, l := range ls {
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", l.Digest, l.Name, l.Subjects, l.Uploaded.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	rf.register(cmd)
	return cmd
}
