package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"insitu/connectors/catalog"
)

func newCatalogCmd() *cobra.Command {
	var lang string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Print the annex catalog: 17 categories, items, typed fields, sharing modes, authorization and sensitivity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := catalog.Default()
			if asJSON {
				return c.WriteJSON(cmd.OutOrStdout())
			}
			if lang == "" {
				lang = langFromEnv()
			}
			l, err := catalog.ParseLang(lang)
			if err != nil {
				return err
			}
			return c.WriteTable(cmd.OutOrStdout(), string(l))
		},
	}
	cmd.Flags().StringVar(&lang, "lang", "", "language of the listing: zh or en (default from $LANG, else en)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// langFromEnv picks zh when the locale asks for Chinese, en otherwise.
func langFromEnv() string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := os.Getenv(v); s != "" {
			if strings.HasPrefix(strings.ToLower(s), "zh") {
				return "zh"
			}
			return "en"
		}
	}
	return "en"
}
