package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave/pluginstore"
	gbdtplugin "insitu/plugins/gbdt/model"
	helrplugin "insitu/plugins/helr/model"
	logaggplugin "insitu/plugins/logagg/model"
	logregplugin "insitu/plugins/logreg/model"
	scorecardplugin "insitu/plugins/scorecard/model"
)

func newPluginCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Upload and list model plugins in the enclave's content-addressed plugin store",
	}
	cmd.AddCommand(newPluginUploadCmd(), newPluginListCmd(), newPluginRunCmd(), newPluginServeBuiltinCmd())
	return cmd
}

func (f *enclaveFlags) openPluginStore() (*pluginstore.Store, error) {
	d, err := f.openDataDir()
	if err != nil {
		return nil, err
	}
	return pluginstore.OpenIn(d, pluginstore.Options{})
}

func newPluginUploadCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	var name, uploader string
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a plugin binary (a static Linux executable built with sdk.Serve) and print its digest",
		Long: `upload stores a plugin binary under its SHA-256 digest. A job names the plugin by that digest; when
the job runs, the enclave copies the stored bytes into a sealed in-memory file, checks the digest
there and executes exactly those bytes. Build a plugin with CGO_ENABLED=0 go build.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				name = filepath.Base(args[0])
			}
			if c, err := remote(&ef, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				up, err := c.UploadPlugin(cmd.Context(), f, name)
				if err != nil {
					return err
				}
				state := "stored"
				if up.Existed {
					state = "already stored"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s, %d bytes)\n", state, up.Digest, up.Name, up.Size)
				return nil
			}
			e, err := ef.openEnclave(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			info, existed, err := e.UploadPlugin(cmd.Context(), f, pluginstore.Meta{Uploader: uploader, Name: name})
			if err != nil {
				return err
			}
			state := "stored"
			if existed {
				state = "already stored"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s, %d bytes)\n", state, info.Digest, info.Name, info.Size)
			return nil
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "a name to show beside the digest (default: the file name)")
	cmd.Flags().StringVar(&uploader, "uploader", localUser(), "who uploads it, recorded with the plugin (local data directory only; through the API, the signing party)")
	return cmd
}

func newPluginListCmd() *cobra.Command {
	var ef enclaveFlags
	var rf remoteFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the stored plugins",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var infos []pluginstore.Info
			if c, err := remote(&ef, &rf); err != nil {
				return err
			} else if c != nil {
				defer c.Close()
				if infos, err = c.ListPlugins(cmd.Context()); err != nil {
					return err
				}
			} else {
				s, err := ef.openPluginStore()
				if err != nil {
					return err
				}
				if infos, err = s.List(cmd.Context()); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if len(infos) == 0 {
				fmt.Fprintln(out, "no plugins; insitu plugin upload FILE stores one")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "digest\tname\tbytes\tuploaded\tuploader")
			for _, in := range infos {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", in.Digest, in.Name, in.Size, in.Uploaded.Format(time.DateTime), in.Uploader)
			}
			return tw.Flush()
		},
	}
	ef.register(cmd)
	rf.register(cmd)
	return cmd
}

// localUser names the account running the command, for records made from the local CLI.
func localUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "local"
}

// newPluginServeBuiltinCmd runs a reference plugin built into this binary, so the demo and the tests
// need nothing built by hand. go-plugin starts it; it is not for people to call.
func newPluginServeBuiltinCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "serve-builtin NAME",
		Short:  "Serve a built-in reference plugin over go-plugin (started by the enclave's runner)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			switch args[0] {
			case "logreg":
				logregplugin.Serve()
				return nil
			case "helr":
				helrplugin.Serve()
				return nil
			case "logagg":
				logaggplugin.Serve()
				return nil
			case "scorecard":
				scorecardplugin.Serve()
				return nil
			case "gbdt":
				gbdtplugin.Serve()
				return nil
			default:
				return usageErrorf("no built-in plugin %q (built in: logreg, helr, logagg, scorecard, gbdt)", args[0])
			}
		},
	}
}
