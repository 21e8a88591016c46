package runner

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Capture is what the runner kept of one of the plugin's output streams: the first and the last
// bytes, up to a bound, and the count of everything written.
type Capture struct {
	// Head is the start of the stream and Tail its end; they are contiguous when Dropped is 0.
	Head, Tail []byte
	// Total is every byte the plugin wrote; Dropped those kept in neither Head nor Tail.
	Total, Dropped int64
}

// String returns the kept bytes as text, with a marker where bytes were dropped.
func (c Capture) String() string {
	if c.Dropped == 0 {
		return string(c.Head) + string(c.Tail)
	}
	return fmt.Sprintf("%s\n[… %d bytes dropped …]\n%s", c.Head, c.Dropped, c.Tail)
}

// capture is an io.Writer that keeps the first half of max bytes and a ring of the last half, and
// counts the rest. Its memory never exceeds max, whatever is written; it is safe for concurrent use.
type capture struct {
	mu    sync.Mutex
	half  int
	head  []byte
	ring  []byte
	pos   int // next write position in ring once it is full
	full  bool
	total int64
}

func newCapture(max int) *capture {
	if max < 2 {
		max = 2
	}
	return &capture{half: max / 2}
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.total += int64(n)
	if room := c.half - len(c.head); room > 0 {
		k := min(room, len(p))
		c.head = append(c.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	if len(p) >= c.half {
		// Only the last half bytes of p can stay.
		c.ring = append(c.ring[:0], p[len(p)-c.half:]...)
		c.pos, c.full = 0, true
		return n, nil
	}
	if !c.full {
		if room := c.half - len(c.ring); len(p) <= room {
			c.ring = append(c.ring, p...)
			c.full = len(c.ring) == c.half
			return n, nil
		}
		k := c.half - len(c.ring)
		c.ring = append(c.ring, p[:k]...)
		p = p[k:]
		c.full = true
	}
	for len(p) > 0 {
		k := copy(c.ring[c.pos:], p)
		p = p[k:]
		c.pos = (c.pos + k) % c.half
	}
	return n, nil
}

// snapshot returns what the capture holds.
func (c *capture) snapshot() Capture {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Capture{Head: bytes.Clone(c.head), Total: c.total}
	if c.full {
		out.Tail = append(bytes.Clone(c.ring[c.pos:]), c.ring[:c.pos]...)
	} else {
		out.Tail = bytes.Clone(c.ring)
	}
	out.Dropped = c.total - int64(len(out.Head)+len(out.Tail))
	return out
}

// sanitizeLine makes untrusted bytes one printable line of valid UTF-8.
func sanitizeLine(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if r == utf8.RuneError || r < 0x20 || r == 0x7f {
			r = ' '
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// clip bounds a detail quoted from the plugin or a library.
func clip(s string, n int) string {
	s = sanitizeLine([]byte(s))
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
