package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"insitu/enclave"
	"insitu/enclave/api/client"
	"insitu/enclave/datadir"
	"insitu/enclave/dataset"
	"insitu/enclave/keys"
)

// enclaveFlags are the flags every command that opens the enclave's data directory shares.
type enclaveFlags struct {
	dataDir string
	keyFile string
}

func (f *enclaveFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", os.Getenv("INSITU_DATA_DIR"),
		"the enclave's data directory (default $INSITU_DATA_DIR)")
	cmd.Flags().StringVar(&f.keyFile, "key-file", os.Getenv("INSITU_KEY_FILE"),
		"the master key file, kept outside the data directory (default $INSITU_KEY_FILE; without it the key is read from $"+keys.EnvVar+")")
}

func (f *enclaveFlags) openStore() (*dataset.Store, error) {
	d, err := f.openDataDir()
	if err != nil {
		return nil, err
	}
	return dataset.Open(d)
}

func (f *enclaveFlags) openDataDir() (*datadir.DataDir, error) {
	if f.dataDir == "" {
		return nil, usageErrorf("no data directory: pass --data-dir or set INSITU_DATA_DIR (create one with insitu init)")
	}
	return datadir.Open(f.dataDir, keys.Source{File: f.keyFile})
}

// openEnclave opens the data directory with its state database and audit log; close it after use.
func (f *enclaveFlags) openEnclave(ctx context.Context) (*enclave.Enclave, error) {
	d, err := f.openDataDir()
	if err != nil {
		return nil, err
	}
	return enclave.OpenDataDir(ctx, d)
}

// withEnclave opens the enclave for one command and closes it after fn.
func withEnclave(cmd *cobra.Command, f *enclaveFlags, fn func(ctx context.Context, e *enclave.Enclave) error) error {
	ctx := cmd.Context()
	e, err := f.openEnclave(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(ctx, e)
}

// viaAPI runs onAPI with the enclave API's client when a profile or --enclave names one, and onLocal
// on the local data directory (--data-dir) otherwise: the two ways every party command works.
func viaAPI(cmd *cobra.Command, ef *enclaveFlags, rf *remoteFlags,
	onAPI func(ctx context.Context, c *client.Client) error,
	onLocal func(ctx context.Context, e *enclave.Enclave) error) error {
	c, err := remote(ef, rf)
	if err != nil {
		return err
	}
	if c != nil {
		defer c.Close()
		return onAPI(cmd.Context(), c)
	}
	return withEnclave(cmd, ef, onLocal)
}
