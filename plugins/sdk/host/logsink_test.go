package host

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type capture struct{ recs []slog.Record }

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.recs = append(c.recs, r)
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

func attrs(r slog.Record) string {
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, "%s=%v ", a.Key, a.Value)
		return true
	})
	return strings.TrimSpace(b.String())
}

func TestLogSink(t *testing.T) {
	c := &capture{}
	s := NewLogSink(c)
	s.MaxLineBytes = 96
	// go-plugin writes a line's bytes and its newline separately, long lines in pieces.
	for _, p := range []string{
		`{"@level":"warn","@message":"fitted","@timestamp":"x","iter":7,"path":"a\u0000b"}`, "\n",
		`{"@message":1,"@level":"info"}`, "\n", // types go-plugin's own parser panics on
		`{"@message":"m","@level":["error"],"nested":{"a":[1,2]}}` + "\n",
		"plain ", "text\x1b[31m\n",
		strings.Repeat("y", 100), strings.Repeat("z", 100), "\n",
		"no newline",
	} {
		if n, err := s.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	s.Flush()
	want := []struct {
		level slog.Level
		msg   string
		attrs string
	}{
		{slog.LevelWarn, "fitted", "iter=7 path=a b"},
		{slog.LevelInfo, `{"@message":1,"@level":"info"}`, ""},
		{slog.LevelInfo, "m", `nested={"a":[1,2]}`},
		{slog.LevelInfo, "plain text [31m", ""},
		{slog.LevelInfo, strings.Repeat("y", 96), ""},
		{slog.LevelInfo, "no newline", ""},
	}
	if len(c.recs) != len(want) || s.Lines() != int64(len(want)) {
		t.Fatalf("%d records for %d lines, want %d", len(c.recs), s.Lines(), len(want))
	}
	for i, w := range want {
		r := c.recs[i]
		if r.Level != w.level || r.Message != w.msg || attrs(r) != w.attrs {
			t.Errorf("record %d: %v %q %q, want %v %q %q", i, r.Level, r.Message, attrs(r), w.level, w.msg, w.attrs)
		}
	}
}

func TestLogSinkRate(t *testing.T) {
	c := &capture{}
	s := NewLogSink(c)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	for i := range 1000 {
		_, _ = fmt.Fprintf(s, "line %d\n", i)
	}
	if len(c.recs) != 200 || s.Dropped() != 800 {
		t.Fatalf("%d records, %d dropped", len(c.recs), s.Dropped())
	}
	now = now.Add(time.Second)
	_, _ = s.Write([]byte("later\n"))
	last := c.recs[len(c.recs)-2:]
	if last[0].Message != "plugin log lines dropped by the rate limit" || attrs(last[0]) != "dropped=800" || last[1].Message != "later" {
		t.Fatalf("after the pause: %q %q, %q", last[0].Message, attrs(last[0]), last[1].Message)
	}
}
