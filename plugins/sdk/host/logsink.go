package host

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// LogSink turns a plugin's stderr into slog records, safely: use it as plugin.ClientConfig.Stderr
// together with ClientConfig.Logger set to ClientLogger(). go-plugin's own stderr parser is unsafe
// against a hostile plugin: a JSON line whose "@message" or "@level" is not a string panics the
// host process. Only a logger whose level is Off makes go-plugin skip that parser and just copy
// the lines here (hclog.NewNullLogger does not: its level is NoLevel).
//
// Lines in go-plugin's JSON format (what sdk.Serve writes: "@level", "@message", "@timestamp" and
// key/value pairs) become records at their level with their message, other lines become records at
// level Info with the line as message. Every line is cut to MaxLineBytes, control characters are
// replaced, at most MaxAttrs key/value pairs are kept, and lines beyond a burst of Burst, then Rate
// a second, are dropped and counted; the next record that passes reports the count.
type LogSink struct {
	h slog.Handler

	// MaxLineBytes bounds a line (default 4096); the rest of a longer line is discarded.
	MaxLineBytes int
	// MaxAttrs bounds the key/value pairs kept from a JSON line (default 16).
	MaxAttrs int
	// Burst and Rate bound the records per second (defaults 200 and 50).
	Burst, Rate float64

	mu      sync.Mutex
	buf     []byte
	skip    bool // discarding the rest of an overlong line
	tokens  float64
	last    time.Time
	dropped int64
	lines   int64
	now     func() time.Time
}

// ClientLogger returns the logger to give plugin.ClientConfig.Logger: level Off, output discarded.
// go-plugin's own messages about the plugin process are lost with it; the runner learns the same
// from the process's exit status and the errors of Client.
func ClientLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Off, Output: io.Discard})
}

// NewLogSink returns a LogSink emitting records to h.
func NewLogSink(h slog.Handler) *LogSink {
	return &LogSink{h: h, MaxLineBytes: 4096, MaxAttrs: 16, Burst: 200, Rate: 50, tokens: 200, now: time.Now}
}

// Write takes any part of the stderr stream; records are emitted per complete line. It never fails.
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !s.skip {
			room := s.MaxLineBytes - len(s.buf)
			if len(part) > room {
				s.buf = append(s.buf, part[:room]...)
				s.skip = true
			} else {
				s.buf = append(s.buf, part...)
			}
		}
		if i < 0 {
			break
		}
		s.emit(s.buf)
		s.buf, s.skip = s.buf[:0], false
		p = p[i+1:]
	}
	return n, nil
}

// Flush emits a last line that has no newline.
func (s *LogSink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		s.emit(s.buf)
		s.buf, s.skip = s.buf[:0], false
	}
}

// Lines returns the number of lines seen.
func (s *LogSink) Lines() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines
}

// Dropped returns the number of lines dropped by the rate limit.
func (s *LogSink) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *LogSink) emit(line []byte) {
	s.lines++
	now := s.now()
	if !s.last.IsZero() {
		s.tokens = min(s.Burst, s.tokens+now.Sub(s.last).Seconds()*s.Rate)
	}
	s.last = now
	if s.tokens < 1 {
		s.dropped++
		return
	}
	s.tokens--
	ctx := context.Background()
	if s.dropped > 0 {
		r := slog.NewRecord(now, slog.LevelWarn, "plugin log lines dropped by the rate limit", 0)
		r.AddAttrs(slog.Int64("dropped", s.dropped))
		_ = s.h.Handle(ctx, r)
		s.dropped = 0
	}
	level, msg, attrs := parseLine(line, s.MaxAttrs)
	if !s.h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(now, level, msg, 0)
	r.AddAttrs(attrs...)
	_ = s.h.Handle(ctx, r)
}

// parseLine reads a go-plugin JSON log line, checking every type, or takes the line as text.
func parseLine(line []byte, maxAttrs int) (slog.Level, string, []slog.Attr) {
	var m map[string]any
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &m) != nil {
		return slog.LevelInfo, clean(string(line)), nil
	}
	msg, ok := m["@message"].(string)
	if !ok {
		return slog.LevelInfo, clean(string(line)), nil
	}
	level := slog.LevelInfo
	if l, ok := m["@level"].(string); ok {
		switch strings.ToLower(l) {
		case "trace", "debug":
			level = slog.LevelDebug
		case "warn":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var attrs []slog.Attr
	for _, k := range keys {
		if len(attrs) == maxAttrs {
			attrs = append(attrs, slog.Int("more_attrs", len(keys)-maxAttrs))
			break
		}
		v := m[k]
		switch v.(type) {
		case string, float64, bool, nil:
		default:
			b, _ := json.Marshal(v)
			v = string(b)
		}
		if str, ok := v.(string); ok {
			v = clean(str)
		}
		attrs = append(attrs, slog.Any(clean(k), v))
	}
	return level, clean(msg), attrs
}

// clean replaces control characters and invalid UTF-8 and bounds the length of plugin text.
func clean(s string) string { return sanitize(s) }
