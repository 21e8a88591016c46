package enclave

import (
	"context"
	"fmt"
	"log/slog"
)

// iterationHandler passes a plugin's log records on and turns those that report an iteration — the
// message "iteration" with integer attributes "iteration" and "of", as plugins/helr and the
// aggregate plugins write them — into a progress line "training: iteration N/M", which the console
// shows with an estimate. A plugin's log is untrusted: only the two integers are read, bounded.
type iterationHandler struct {
	next   slog.Handler
	report func(string)
}

var _ slog.Handler = iterationHandler{}

func (h iterationHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || (h.next != nil && h.next.Enabled(ctx, l))
}

func (h iterationHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "iteration" {
		var it, of int64
		r.Attrs(func(a slog.Attr) bool {
			if v, ok := attrInt(a.Value); ok {
				switch a.Key {
				case "iteration":
					it = v
				case "of":
					of = v
				}
			}
			return true
		})
		if it > 0 && of > 0 && it <= of && of <= 1e6 {
			h.report(fmt.Sprintf("training: iteration %d/%d", it, of))
		}
	}
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h iterationHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if h.next != nil {
		return iterationHandler{next: h.next.WithAttrs(as), report: h.report}
	}
	return h
}

func (h iterationHandler) WithGroup(name string) slog.Handler {
	if h.next != nil {
		return iterationHandler{next: h.next.WithGroup(name), report: h.report}
	}
	return h
}

// attrInt reads an integer attribute as the log sink parses it from the plugin's JSON (a float64)
// or as a Go plugin logs it.
func attrInt(v slog.Value) (int64, bool) {
	switch v.Kind() {
	case slog.KindInt64:
		return v.Int64(), true
	case slog.KindUint64:
		return int64(min(v.Uint64(), 1<<62)), true
	case slog.KindFloat64:
		f := v.Float64()
		if f >= 0 && f < 1<<53 && f == float64(int64(f)) {
			return int64(f), true
		}
	}
	return 0, false
}

// progressLogger returns the logger a run's plugin logs to: opts.Logger's handler (nothing when
// nil), with the plugin's iterations reported as progress when opts.Progress is set.
func progressLogger(opts RunOptions, progress func(string)) *slog.Logger {
	if opts.Progress == nil {
		return opts.Logger
	}
	var next slog.Handler
	if opts.Logger != nil {
		next = opts.Logger.Handler()
	}
	return slog.New(iterationHandler{next: next, report: progress})
}
