package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"insitu/enclave"
	"insitu/enclave/api"
	"insitu/enclave/sandbox"
	"insitu/enclave/scoring"
)

// serveConfig is insitu serve's configuration; each field is one flag.
type serveConfig struct {
	// listen is the API's address (TLS).
	listen string
	// metricsListen, when set, serves /metrics without authentication on a plain-HTTP address of
	// its own, for the monitoring system.
	metricsListen string
	// hosts are extra names or addresses put in a certificate made at first start.
	hosts []string
	// logJSON writes logs as JSON lines instead of text.
	logJSON bool
	// noWorker serves the API without running approved jobs.
	noWorker bool
	// weaker runs jobs with the sandbox layers available here (development only).
	weaker bool
	// drain is how long shutdown waits for requests in flight.
	drain time.Duration
	// limits are every job's sandbox limits.
	limits sandbox.Limits
	// scoring holds the scoring service's per-bank rate limits.
	scoring scoring.Options
}

// apiOptions are the API server's options from the configuration.
func (cfg *serveConfig) apiOptions(log *slog.Logger) (api.Options, error) {
	for _, v := range []struct {
		flag string
		val  float64
	}{{"--score-rate", cfg.scoring.ScoreRate}, {"--score-burst", cfg.scoring.ScoreBurst},
		{"--verify-rate", cfg.scoring.VerifyRate}, {"--verify-burst", cfg.scoring.VerifyBurst},
		{"--max-claims", float64(cfg.scoring.MaxClaims)}, {"--claim-window", float64(cfg.scoring.ClaimWindow)}} {
		if !(v.val > 0) {
			return api.Options{}, fmt.Errorf("serve %s: %v is not positive: give a limit above zero", v.flag, v.val)
		}
	}
	return api.Options{Logger: log, Scoring: cfg.scoring}, nil
}

// registerScoringFlags adds the scoring service's rate limits to f, with the service's defaults.
func registerScoringFlags(f *pflag.FlagSet, o *scoring.Options) {
	f.Float64Var(&o.ScoreRate, "score-rate", 2000, "each bank's online scoring rate, in subjects per second")
	f.Float64Var(&o.ScoreBurst, "score-burst", 20000, "each bank's online scoring burst, in subjects at once")
	f.Float64Var(&o.VerifyRate, "verify-rate", 5, "each bank's verification queries per second")
	f.Float64Var(&o.VerifyBurst, "verify-burst", 50, "each bank's verification queries at once")
	f.IntVar(&o.MaxClaims, "max-claims", 3, "verification queries a bank may make about one field of one subject within --claim-window")
	f.DurationVar(&o.ClaimWindow, "claim-window", 24*time.Hour, "the window of --max-claims")
}

func newServeCmd() *cobra.Command {
	var ef enclaveFlags
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve --data-dir D --listen 127.0.0.1:8443",
		Short: "Run the enclave daemon: the JSON API over TLS and the worker that runs approved jobs",
		Long: `serve opens the data directory, marks jobs a crash left running as failed, and serves the API under
/v1 over TLS 1.3 with the enclave's self-signed certificate (made at first start; its fingerprint is
printed, and clients pin it with insitu login --fingerprint). Every request is signed with a registered
party's key. Approved jobs run one at a time in the sandbox. SIGINT or SIGTERM stops it gracefully:
no new requests, requests in flight drained, the running job stopped, the database closed.

Online scoring and verification queries are rate-limited per bank (token buckets: --score-rate and
--score-burst in subjects, --verify-rate and --verify-burst in queries, and --max-claims queries about
one field of one subject within --claim-window); a request beyond its limit is answered 429.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			if cfg.logJSON {
				h = slog.NewJSONHandler(cmd.ErrOrStderr(), nil)
			}
			return runServe(cmd.Context(), &ef, cfg, slog.New(h), func(addr, fp string) {
				fmt.Fprintf(cmd.OutOrStdout(), "insitu enclave listening on https://%s\ncertificate fingerprint %s\n", addr, fp)
			})
		},
	}
	ef.register(cmd)
	f := cmd.Flags()
	f.StringVar(&cfg.listen, "listen", "127.0.0.1:8443", "the API's address")
	f.StringVar(&cfg.metricsListen, "metrics-listen", "", "serve /metrics unauthenticated over plain HTTP on this address (keep it private)")
	f.StringSliceVar(&cfg.hosts, "host", nil, "a DNS name or IP address to put in the certificate made at first start (repeatable)")
	f.BoolVar(&cfg.logJSON, "log-json", false, "log JSON lines instead of text")
	f.BoolVar(&cfg.noWorker, "no-worker", false, "serve the API without running approved jobs")
	f.BoolVar(&cfg.weaker, "allow-weaker-sandbox", false, "DEVELOPMENT ONLY: run jobs with the sandbox layers available here")
	f.DurationVar(&cfg.drain, "drain", api.DefaultDrain, "how long shutdown waits for requests in flight")
	f.DurationVar(&cfg.limits.CPUTime, "cpu", 10*time.Minute, "every job's CPU time limit")
	f.DurationVar(&cfg.limits.WallClock, "timeout", 30*time.Minute, "every job's wall-clock limit")
	f.Uint64Var(&cfg.limits.Memory, "memory", 2<<30, "every job's memory limit in bytes")
	registerScoringFlags(f, &cfg.scoring)
	return cmd
}

// runServe runs the daemon until ctx ends; ready is told the address and certificate fingerprint
// once the API accepts connections.
func runServe(ctx context.Context, ef *enclaveFlags, cfg serveConfig, log *slog.Logger, ready func(addr, fingerprint string)) error {
	opts, err := cfg.apiOptions(log)
	if err != nil {
		return err
	}
	e, err := ef.openEnclave(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	recovered, err := e.Jobs.Recover(ctx)
	if err != nil {
		return err
	}
	for _, id := range recovered {
		log.Warn("job was running when the enclave stopped: marked failed", "job", id)
	}
	cert, fp, err := api.LoadOrCreateCert(e.Dir, cfg.hosts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	srv := api.New(e, opts)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	workerDone := make(chan error, 1)
	if cfg.noWorker {
		workerDone <- nil
	} else {
		spec := sandbox.Spec{Limits: cfg.limits}
		if cfg.weaker {
			spec.Mode = sandbox.AllowWeaker
		}
		go func() {
			workerDone <- e.RunApproved(ctx, enclave.WorkerOptions{RunOptions: enclave.RunOptions{Sandbox: spec, Logger: log, Progress: srv.Console().Progress},
				Done: func(id string, rep *enclave.RunReport, err error) {
					if err != nil {
						log.Error("job did not finish", "job", id, "err", err)
					} else if rep != nil && rep.Job != nil {
						log.Info("job ran", "job", id, "state", rep.Job.State, "reason", rep.Job.Reason)
					}
				}})
		}()
	}
	var ms *http.Server
	if cfg.metricsListen != "" {
		mln, err := net.Listen("tcp", cfg.metricsListen)
		if err != nil {
			ln.Close()
			return err
		}
		ms = &http.Server{Handler: srv.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(mln)
		defer ms.Close()
	}
	log.Info("serving", "addr", ln.Addr().String(), "fingerprint", fp, "data_dir", e.Dir.Path(), "worker", !cfg.noWorker)
	if ready != nil {
		ready(ln.Addr().String(), fp)
	}
	serr := srv.Serve(ctx, ln, cert, cfg.drain)
	stop()
	if werr := <-workerDone; werr != nil && !errors.Is(werr, context.Canceled) {
		log.Error("job worker stopped", "err", werr)
	}
	log.Info("stopped")
	if serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return nil
}
