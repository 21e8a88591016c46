package sdk

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Log rate: a burst of logBurst lines, then logRate lines a second. Lines beyond are dropped and
// counted; the next line that passes reports the count.
const (
	logBurst     = 200
	logRate      = 50
	maxLineBytes = 4 << 10
)

// hclogTime is the timestamp layout go-plugin's host parses in a plugin's JSON log lines.
const hclogTime = "2006-01-02T15:04:05.000000Z07:00"

// logWriter writes whole lines to w at a bounded rate. It is shared by the plugin's slog logger and
// go-plugin's own logger, so together they cannot flood the enclave.
type logWriter struct {
	mu      sync.Mutex
	w       io.Writer
	tokens  float64
	last    time.Time
	dropped int64
	now     func() time.Time
}

func newLogWriter(w io.Writer) *logWriter {
	return &logWriter{w: w, tokens: logBurst, now: time.Now}
}

// Write writes p (one log line) if the rate allows and drops it otherwise. It never fails: a
// plugin's logging must not break its training.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(logBurst, l.tokens+now.Sub(l.last).Seconds()*logRate)
	}
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		return len(p), nil
	}
	l.tokens--
	if l.dropped > 0 {
		fmt.Fprintf(l.w, "{\"@level\":\"warn\",\"@message\":\"plugin log rate limit: %d lines dropped\",\"@timestamp\":%q}\n",
			l.dropped, now.Format(hclogTime))
		l.dropped = 0
	}
	line := p
	if len(line) > maxLineBytes {
		line = append(append([]byte(nil), line[:maxLineBytes-1]...), '\n')
	}
	_, _ = l.w.Write(line)
	return len(p), nil
}

// newLogger returns a slog.Logger writing go-plugin's JSON log lines (@level, @message,
// @timestamp) through w, so the enclave's go-plugin client files them under the right level.
func newLogger(w io.Writer) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hclogTime))
			case slog.LevelKey:
				return slog.String("@level", hclogLevel(a.Value.Any()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
	return slog.New(h)
}

func hclogLevel(v any) string {
	l, ok := v.(slog.Level)
	if !ok {
		return "info"
	}
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// sanitize makes an error message safe to send as a status message: printable, one line, bounded.
func sanitize(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return clip2(s, n)
}

func clip2(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
