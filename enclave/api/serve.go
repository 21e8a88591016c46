package api

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// DefaultDrain is how long Serve waits for requests in flight after its context ends.
const DefaultDrain = 30 * time.Second

// Serve serves the API over TLS on ln until ctx ends, then shuts down gracefully: it stops
// accepting connections, answers watches at once with the job as it stands, and waits up to drain
// (DefaultDrain when zero) for the requests in flight. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener, cert tls.Certificate, drain time.Duration) error {
	if drain <= 0 {
		drain = DefaultDrain
	}
	hs := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         ServerTLSConfig(cert),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.closing()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// closing makes watches in flight answer now.
func (s *Server) closing() {
	s.closeOnce.Do(func() { close(s.done) })
}
