package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave/api"
	"insitu/enclave/registry"
	"insitu/enclave/scoring"
)

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Released models: list, show, export (JSON, PMML 4.4), revoke, monitor stability",
		Long: `Every model the output gate releases is registered in the enclave with its receipt, family,
input columns, fitted transforms, version and owner bank. A bank sees and uses its own models;
a steward sees every bank's (without their weights). A revoked model never scores again.`,
	}
	cmd.AddCommand(newModelListCmd(), newModelShowCmd(), newModelExportCmd(), newModelRevokeCmd(),
		newModelMonitorCmd(), newModelSettingCmd())
	return cmd
}

func newModelListCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	var bank string
	var active, asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List registered models (a bank its own; a steward or the local data directory every bank's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var infos []api.ModelInfo
			if c, err := remote(&ef, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				if infos, err = c.ListModels(cmd.Context(), bank, active); err != nil {
					return err
				}
			} else {
				e, err := ef.openEnclave(cmd.Context())
				if err != nil {
					return err
				}
				defer e.Close()
				ms, err := e.Models.List(cmd.Context(), registry.Filter{Bank: bank, Active: active})
				if err != nil {
					return err
				}
				for _, m := range ms {
					infos = append(infos, api.ModelInfoFrom(m))
				}
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), infos)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tBANK\tNAME\tVERSION\tFAMILY\tDATASET\tINPUTS\tREGISTERED\tSTATE")
			for _, m := range infos {
				state := "active"
				if m.Revocation != nil {
					state = "revoked " + m.Revocation.At.Format(time.DateOnly)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\tv%d\t%s\t%s v%d\t%d\t%s\t%s\n", m.ID, m.Bank, m.Name, m.Version, m.Family,
					m.Dataset, m.DatasetVersion, len(m.Inputs), m.RegisteredAt.Format(time.RFC3339), state)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&bank, "bank", "", "only this bank's models")
	cmd.Flags().BoolVar(&active, "active", false, "leave revoked models out")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	ef.register(cmd)
	rf.register(cmd)
	return cmd
}

func newModelShowCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a model: its release, inputs and transforms; the weights to its bank only",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c, err := remote(&ef, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				if _, role := c.Party(); role != api.RoleBank {
					info, err := c.ModelInfo(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					return writeJSONOut(cmd.OutOrStdout(), info)
				}
				m, err := c.Model(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return writeJSONOut(cmd.OutOrStdout(), m)
			}
			e, err := ef.openEnclave(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			m, err := e.Models.Get(cmd.Context(), args[0], "")
			if err != nil {
				return err
			}
			return writeJSONOut(cmd.OutOrStdout(), api.ModelInfoFrom(m))
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	return cmd
}

func newModelExportCmd() *cobra.Command {
	var rf remoteFlags
	var format, out string
	cmd := &cobra.Command{
		Use:   "export ID",
		Short: "Export one of the bank's models as JSON (the model document) or PMML 4.4",
		Long: `export writes the model with the transforms fitted at training, so that the bank's own decision
engine scores raw input values exactly as the enclave does. --format json writes the model
document (README: "The model document"); --format pmml writes PMML 4.4 with the transforms as
DerivedFields: a RegressionModel for logistic regression, a Scorecard with reason codes for a
scorecard, a MiningModel summing TreeModels for gradient-boosted trees; outputs
probability_default and score (and reason_code_1… for a scorecard).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" && format != "pmml" {
				return usageErrorf("--format %q: give json or pmml", format)
			}
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			data, err := c.ExportModel(cmd.Context(), args[0], format)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			if err := os.WriteFile(out, data, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes, %s)\n", out, len(data), format)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "json or pmml")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	rf.register(cmd)
	return cmd
}

func newModelRevokeCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	var reason, actor string
	cmd := &cobra.Command{
		Use:   "revoke ID --reason TEXT",
		Short: "Revoke a model (its bank or a steward): it never scores again; audited",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageErrorf("give --reason: the revocation is audited with it")
			}
			var info api.ModelInfo
			if c, err := remote(&ef, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				if info, err = c.RevokeModel(cmd.Context(), args[0], reason); err != nil {
					return err
				}
			} else {
				if actor == "" {
					return usageErrorf("with --data-dir, name who revokes with --actor (a steward's name)")
				}
				e, err := ef.openEnclave(cmd.Context())
				if err != nil {
					return err
				}
				defer e.Close()
				m, err := e.Models.Revoke(cmd.Context(), actor, "", args[0], reason)
				if err != nil {
					return err
				}
				info = api.ModelInfoFrom(m)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked model %s (%s v%d of %s) at %s\n", info.ID, info.Name, info.Version, info.Bank,
				info.Revocation.At.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (audited)")
	cmd.Flags().StringVar(&actor, "actor", "", "who revokes, with --data-dir")
	ef.register(cmd)
	rf.register(cmd)
	return cmd
}

func newModelMonitorCmd() *cobra.Command {
	var rf remoteFlags
	var req scoring.MonitorRequest
	var purpose string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "monitor ID",
		Short: "Stability of a model's scores and inputs between its training dataset version and a newer one",
		Long: `monitor reports the population stability index (PSI) of the model's scores, and the same index of
each input feature (characteristic stability), between two versions of the model's dataset: by
default the training version and the latest. The populations are the subjects whose authorization
of the model's bank covers its items for the purpose; both must hold at least the enclave's
minimum. PSI below 0.1 reads as stable, 0.1 to 0.25 as some shift, above 0.25 as a major shift.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			req.Purpose = consentPurpose(purpose)
			rep, err := c.Monitor(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), rep)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "model %s (%s v%d) on %s v%d → v%d, purpose %s, populations of at least %d\n",
				rep.Model, rep.Name, rep.Version, rep.Dataset, rep.Baseline, rep.Current, rep.Purpose, rep.MinPopulation)
			fmt.Fprintf(out, "score PSI %.4f (%s) over %d bins\n", rep.Score.PSI, psiReading(rep.Score.PSI), len(rep.Score.Bins))
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "FEATURE\tPSI\tREADING")
			for _, f := range rep.Features {
				fmt.Fprintf(w, "%s\t%.4f\t%s\n", f.Feature, f.PSI, psiReading(f.PSI))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&purpose, "purpose", "", "the authorizations' purpose (default: the model's)")
	cmd.Flags().IntVar(&req.Baseline, "baseline", 0, "baseline dataset version (default: the training version)")
	cmd.Flags().IntVar(&req.Current, "current", 0, "current dataset version (default: the latest)")
	cmd.Flags().IntVar(&req.Bins, "bins", 10, "equal-frequency bins on the baseline")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rf.register(cmd)
	return cmd
}

func psiReading(v float64) string {
	switch {
	case v < 0.1:
		return "stable"
	case v <= 0.25:
		return "some shift"
	}
	return "major shift"
}

func newModelSettingCmd() *cobra.Command {
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "setting [KEY VALUE]",
		Short: "Show or set (steward) the serving settings: " + registry.SettingMinFeatures,
		Args:  cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return usageErrorf("give a key and a value, or neither")
			}
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			var st api.ServingSettings
			if len(args) == 2 {
				var v int
				if _, err := fmt.Sscan(args[1], &v); err != nil {
					return usageErrorf("value %q: give a whole number", args[1])
				}
				st, err = c.SetServingSetting(cmd.Context(), args[0], v)
			} else {
				st, err = c.ServingSettings(cmd.Context())
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s = %d\n", registry.SettingMinFeatures, st.MinFeatures)
			return nil
		},
	}
	rf.register(cmd)
	return cmd
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
