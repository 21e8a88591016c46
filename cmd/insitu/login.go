package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"insitu/enclave/api"
	"insitu/enclave/api/client"
	"insitu/enclave/datadir"
	"insitu/enclave/keys"
)

// profile is what insitu login writes: where the enclave is, its pinned certificate and the party's
// key file. Its passphrase is never stored: it comes from INSITU_KEY_PASSPHRASE or a prompt.
type profile struct {
	Enclave     string `json:"enclave"`
	Fingerprint string `json:"fingerprint"`
	KeyFile     string `json:"key_file"`
}

// defaultProfilePath is $XDG_CONFIG_HOME/insitu/profile.json (os.UserConfigDir's insitu folder).
func defaultProfilePath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "insitu", "profile.json")
}

// remoteFlags select the API instead of a local data directory: --enclave (with --fingerprint and
// --key), or a profile written by insitu login.
type remoteFlags struct {
	enclave, fingerprint, key, profile string
}

func (f *remoteFlags) register(cmd *cobra.Command) { f.registerKey(cmd, true) }

// registerKey registers the flags, --key only when withKey (commands with a --key of their own set
// f.key from it).
func (f *remoteFlags) registerKey(cmd *cobra.Command, withKey bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.enclave, "enclave", "", "the enclave's API, https://host:port (default: the profile's, if any)")
	fl.StringVar(&f.fingerprint, "fingerprint", "", "the enclave's pinned certificate fingerprint, with --enclave")
	if withKey {
		fl.StringVar(&f.key, "key", "", "the party's key file, with --enclave")
	}
	fl.StringVar(&f.profile, "profile", "", "the profile file (default $XDG_CONFIG_HOME/insitu/profile.json)")
}

// client returns an API client when --enclave is given or a profile exists, and nil otherwise (the
// command then works on a local data directory).
func (f *remoteFlags) client(useLocal bool) (*client.Client, error) {
	p := profile{Enclave: f.enclave, Fingerprint: f.fingerprint, KeyFile: f.key}
	if p.Enclave == "" {
		if useLocal && f.profile == "" {
			return nil, nil // --data-dir given: the operator's local path
		}
		path := f.profile
		if path == "" {
			path = defaultProfilePath()
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) && f.profile == "" {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var saved profile
		if err := json.Unmarshal(data, &saved); err != nil {
			return nil, fmt.Errorf("%s: %w (write it again with insitu login)", path, err)
		}
		p = saved
	}
	if p.Fingerprint == "" || p.KeyFile == "" {
		return nil, usageErrorf("with --enclave pass --fingerprint and --key (or run insitu login)")
	}
	id, err := readPartyKey(p.KeyFile)
	if err != nil {
		return nil, err
	}
	return client.New(client.Config{URL: p.Enclave, Fingerprint: p.Fingerprint, Identity: id})
}

func newLoginCmd() *cobra.Command {
	var f remoteFlags
	cmd := &cobra.Command{
		Use:   "login --enclave https://host:8443 --fingerprint SHA256:... --key PARTY.key",
		Short: "Check that the enclave knows the party's key and write a profile the other commands use",
		Long: `login calls the enclave with the party's key (passphrase from $` + passphraseEnv + `), pinning its
certificate by the fingerprint insitu serve printed, and writes a profile (mode 0600) holding the
address, the fingerprint and the key file's path (never the passphrase: it is asked for at a
terminal when $` + passphraseEnv + ` is unset). Commands such as insitu job submit then work
against the API; pass --data-dir to work on a local data directory instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.enclave == "" || f.fingerprint == "" || f.key == "" {
				return usageErrorf("pass --enclave, --fingerprint and --key")
			}
			fp, err := api.ParseFingerprint(f.fingerprint)
			if err != nil {
				return usageErrorf("%v", err)
			}
			key, err := filepath.Abs(f.key)
			if err != nil {
				return err
			}
			f.fingerprint, f.key = fp, key
			c, err := f.client(false)
			if err != nil {
				return err
			}
			defer c.Close()
			me, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			path := f.profile
			if path == "" {
				path = defaultProfilePath()
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			data, _ := json.MarshalIndent(profile{Enclave: f.enclave, Fingerprint: fp, KeyFile: key}, "", "  ")
			if err := datadir.WriteFileAtomic(path, append(data, '\n'), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s %s (%s); profile %s\n", f.enclave, me.Role, me.Name, me.Fingerprint, path)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

// remote returns the API client a command should use, or nil to work on the local data directory
// (when --data-dir or $INSITU_DATA_DIR names one and no --enclave or --profile is given).
func remote(ef *enclaveFlags, rf *remoteFlags) (*client.Client, error) {
	return rf.client(ef.dataDir != "")
}

// readPartyKey reads a party key file. A passphrase-protected file takes its passphrase from
// INSITU_KEY_PASSPHRASE or, when that is unset and standard input is a terminal, from a prompt.
func readPartyKey(path string) (*keys.Identity, error) {
	if path == "" {
		return nil, usageErrorf("no party key file: pass --key or run insitu login")
	}
	kd, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pass := []byte(os.Getenv(passphraseEnv))
	var head struct {
		KDF string `json:"kdf"`
	}
	if len(pass) == 0 && json.Unmarshal(kd, &head) == nil && head.KDF == "scrypt" && term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprintf(os.Stderr, "passphrase for %s: ", path)
		pass, err = term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
	}
	id, err := keys.ParsePartyFile(kd, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}
