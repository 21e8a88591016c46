package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"insitu/enclave/consent"
	"insitu/enclave/scoring"
)

// scoreBatch is how many subjects one score request carries.
const scoreBatch = 1000

func consentPurpose(s string) consent.Purpose { return consent.Purpose(strings.TrimSpace(s)) }

func newScoreCmd() *cobra.Command {
	var rf remoteFlags
	var purpose, file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "score MODEL [SUBJECT...]",
		Short: "Score subjects online with one of the bank's released models",
		Long: `score asks the enclave for the probability of default and the points score of each subject, with
the bank's registered model MODEL (insitu model list). The enclave checks, per request, that each
subject's authorization covers this bank, the purpose and the model's items, and computes the
features from the current dataset version with the model's training transforms; the answer never
holds a feature value. Subjects come as arguments or, one per line, from --file (- for standard
input); they are sent in batches of 1000.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			subjects := args[1:]
			if file != "" {
				more, err := readLines(file)
				if err != nil {
					return err
				}
				subjects = append(subjects, more...)
			}
			if len(subjects) == 0 {
				return usageErrorf("give subjects as arguments or with --file")
			}
			c, err := needClient(&rf)
			if err != nil {
				return err
			}
			defer c.Close()
			var all []scoring.Result
			var last *scoring.ScoreResponse
			for start := 0; start < len(subjects); start += scoreBatch {
				res, err := c.Score(cmd.Context(), scoring.ScoreRequest{Model: args[0], Purpose: consentPurpose(purpose),
					Subjects: subjects[start:min(start+scoreBatch, len(subjects))]})
				if err != nil {
					return err
				}
				all, last = append(all, res.Results...), res
			}
			if asJSON {
				last.Results = all
				return writeJSONOut(cmd.OutOrStdout(), last)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "model %s (%s v%d), purpose %s, features from %s v%d\n",
				last.Model, last.Name, last.Version, last.Purpose, last.Dataset, last.DatasetVersion)
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SUBJECT\tPD\tSCORE\tREFUSED\tREASONS")
			for _, r := range all {
				if r.Refused != "" {
					fmt.Fprintf(w, "%s\t-\t-\t%s\t\n", r.Subject, r.Refused)
					continue
				}
				fmt.Fprintf(w, "%s\t%g\t%g\t\t%s\n", r.Subject, *r.PD, *r.Score, strings.Join(r.Reasons, "; "))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&purpose, "purpose", "", "what the scores are for: pre_screening, credit_approval, post_loan_monitoring, model_development (default: the model's purpose)")
	cmd.Flags().StringVar(&file, "file", "", "a file of subject identifiers, one per line (- for standard input)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rf.register(cmd)
	return cmd
}

// readLines reads the non-empty lines of a file (- for standard input).
func readLines(path string) ([]string, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
		defer f.Close()
	}
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out, sc.Err()
}
