package scoring

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per key (a bank): rate tokens per second up to burst.
type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(rate, burst float64) *limiter {
	return &limiter{rate: rate, burst: burst, buckets: map[string]*bucket{}}
}

// take takes n tokens from key's bucket at now. When there are not enough it takes none and says
// how long until there will be (n beyond the burst never fits: its wait is the time to refill the
// whole bucket, and the request must be split).
func (l *limiter) take(key string, n float64, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		b.at = now
	}
	if n <= b.tokens {
		b.tokens -= n
		return true, 0
	}
	need := math.Min(n, l.burst) - b.tokens
	return false, time.Duration(math.Ceil(need/l.rate*1e3)) * time.Millisecond
}

// claimCounter counts verification queries per (bank, subject, field) in a sliding window.
type claimCounter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	seen   map[string][]time.Time
}

func newClaimCounter(max int, window time.Duration) *claimCounter {
	return &claimCounter{max: max, window: window, seen: map[string][]time.Time{}}
}

// take records one query under key at now unless max were made within the window; it returns
// when the oldest of them leaves the window.
func (c *claimCounter) take(key string, now time.Time) (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.seen[key]
	k := 0
	for _, t := range ts {
		if now.Sub(t) < c.window {
			ts[k] = t
			k++
		}
	}
	ts = ts[:k]
	if len(ts) >= c.max {
		c.seen[key] = ts
		return false, c.window - now.Sub(ts[0])
	}
	c.seen[key] = append(ts, now)
	if len(c.seen) > 1<<20 {
		// Forget keys whose queries all left the window, so memory stays bounded.
		for key, ts := range c.seen {
			if len(ts) == 0 || now.Sub(ts[len(ts)-1]) >= c.window {
				delete(c.seen, key)
			}
		}
	}
	return true, 0
}
