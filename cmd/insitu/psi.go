package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"insitu/enclave"
	"insitu/enclave/api/client"
	"insitu/enclave/consent"
	"insitu/enclave/psi"
)

func newPSICmd() *cobra.Command {
	var (
		ef               enclaveFlags
		rf               remoteFlags
		ds, idsFile, out string
		purpose, bank    string
		version          int
		quiet            bool
	)
	cmd := &cobra.Command{
		Use:   "psi --dataset D --ids my_customers.csv [--purpose P] [--out FILE]",
		Short: "Find which of the bank's customers are on the platform and authorize it (private set intersection)",
		Long: `psi aligns the bank's customers with a platform dataset by ECDH private set intersection over
ristretto255: the enclave learns how many identifiers the bank sent, not which; the bank learns
which of its own identifiers are subjects of the dataset that hold a valid authorization for it and
the purpose, and the size of that set rounded up to a bucket — nothing about other subjects.

The identifier file is CSV with a header naming the identifier column (id, subject_id or the
dataset's kind, e.g. uscc), so a label file serves as it is. Identifiers are checked first; invalid
rows are listed with their row and not sent. The rows of the matched identifiers (header included)
are written to --out (default: the file's name with .matched.csv), ready to seal as labels.

It runs through the API (a profile from insitu login, or --enclave), or, with --data-dir and
--bank, on a local data directory in one process.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ds == "" || idsFile == "" {
				return usageErrorf("pass --dataset and --ids")
			}
			p, err := consent.ParsePurpose(purpose)
			if err != nil {
				return usageErrorf("--purpose %q: one of %v", purpose, consent.Purposes)
			}
			if out == "" {
				out = strings.TrimSuffix(idsFile, filepath.Ext(idsFile)) + ".matched.csv"
			}
			data, err := os.ReadFile(idsFile)
			if err != nil {
				return err
			}
			req := psi.Request{Dataset: ds, Version: version, Purpose: p}
			progress := io.Writer(cmd.ErrOrStderr())
			if quiet {
				progress = nil
			}
			c, err := remote(&ef, &rf)
			if err != nil {
				return err
			}
			if c != nil {
				defer c.Close()
				return runPSI(cmd.Context(), cmd.OutOrStdout(), progress, client.PSITransport{Client: c}, req, idsFile, data, out)
			}
			if bank == "" {
				return usageErrorf("on a local data directory pass --bank, the bank whose authorizations count")
			}
			return withEnclave(cmd, &ef, func(ctx context.Context, e *enclave.Enclave) error {
				srv := psi.NewServer(psi.DatasetSource{Datasets: e.Datasets, Consent: e.Consent}, psi.Options{})
				return runPSI(ctx, cmd.OutOrStdout(), progress, psi.Local{Server: srv, Bank: bank}, req, idsFile, data, out)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&ds, "dataset", "", "the platform dataset to align with")
	f.IntVar(&version, "version", 0, "the dataset version (default: the latest)")
	f.StringVar(&idsFile, "ids", "", "the bank's identifier file (CSV with a header)")
	f.StringVar(&purpose, "purpose", string(consent.PurposeModelDevelopment), "the purpose the authorizations must name")
	f.StringVar(&out, "out", "", "where to write the matched rows (must not exist)")
	f.StringVar(&bank, "bank", "", "with --data-dir: the bank to align for")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar on standard error")
	ef.register(cmd)
	rf.register(cmd)
	return cmd
}

// runPSI opens a session, checks the identifier file as the dataset's kind, intersects and writes the
// matched rows.
func runPSI(ctx context.Context, stdout, progress io.Writer, t psi.Transport, req psi.Request, name string, data []byte, out string) error {
	c := &psi.Client{Transport: t}
	if progress != nil {
		c.Progress = newPSIBar(progress)
	}
	s, err := c.Open(ctx, req)
	if err != nil {
		return err
	}
	o := s.Opened()
	fmt.Fprintf(stdout, "session %s on %s v%d (%s identifiers), purpose %s\n", s.ID().String()[:8], req.Dataset, o.DatasetVersion, o.Kind, req.Purpose)
	ids, err := psi.ReadIDs(name, bytes.NewReader(data), o.Kind)
	if err != nil {
		s.Close(ctx)
		return err
	}
	fmt.Fprintf(stdout, "%s: %d rows, %d identifiers, %d repeated, %d invalid (not sent)\n", name, ids.DataRows, len(ids.IDs), ids.Duplicates, ids.InvalidRows)
	for _, e := range ids.Invalid {
		fmt.Fprintf(stdout, "  %v\n", e)
	}
	if ids.InvalidRows > int64(len(ids.Invalid)) {
		fmt.Fprintf(stdout, "  … and %d more invalid rows\n", ids.InvalidRows-int64(len(ids.Invalid)))
	}
	start := time.Now()
	res, err := s.Intersect(ctx, ids.IDs)
	if err != nil {
		return err
	}
	keep := make(map[int64]bool, len(res.Matched))
	for _, i := range res.Matched {
		keep[ids.Rows[i]] = true
	}
	var buf bytes.Buffer
	if err := psi.FilterRows(&buf, bytes.NewReader(data), func(row int64) bool { return keep[row] }); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := writeNew(out, buf.Bytes(), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d; the platform's authorized set: %d (rounded up to its bucket); matched %d in %s\n",
		res.Sent, res.PlatformSize, len(res.Matched), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "wrote the %d matched rows to %s\n", len(res.Matched), out)
	return nil
}

// newPSIBar draws a progress bar per phase on w: redrawn in place on a terminal, one line at the end
// of each phase otherwise.
func newPSIBar(w io.Writer) func(psi.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	var last time.Time
	start := time.Now()
	var phase psi.Phase
	return func(p psi.Progress) {
		if p.Phase != phase {
			phase, start = p.Phase, time.Now()
		}
		end := p.Done >= p.Total
		if !end && (!tty || time.Since(last) < 100*time.Millisecond) {
			return
		}
		last = time.Now()
		const width = 30
		filled := width
		if p.Total > 0 {
			filled = width * p.Done / p.Total
		}
		line := fmt.Sprintf("%-5s [%s%s] %3d%% %d/%d %s", p.Phase, strings.Repeat("#", filled), strings.Repeat("-", width-filled),
			percent(p.Done, p.Total), p.Done, p.Total, time.Since(start).Round(time.Second))
		switch {
		case tty && end:
			fmt.Fprintf(w, "\r\033[K%s\n", line)
		case tty:
			fmt.Fprintf(w, "\r\033[K%s", line)
		default:
			fmt.Fprintln(w, line)
		}
	}
}

func percent(done, total int) int {
	if total == 0 {
		return 100
	}
	return 100 * done / total
}
