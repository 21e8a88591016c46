package psi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/consent"
)

// Transport carries one message of the bank to the enclave and returns the enclave's answer. A
// refusal of the enclave is returned as an *Error; any other error is taken for a failure of the
// connection, and the message is sent again as it was.
type Transport interface {
	RoundTrip(ctx context.Context, request []byte) ([]byte, error)
}

// Local is the in-process transport: it hands each message to Server as coming from Bank.
type Local struct {
	Server *Server
	Bank   string
}

var _ Transport = Local{}

// RoundTrip calls Server.Handle.
func (l Local) RoundTrip(ctx context.Context, request []byte) ([]byte, error) {
	return l.Server.Handle(ctx, l.Bank, request)
}

// Request names what a bank aligns with.
type Request struct {
	Dataset string
	Version int // 0 means the latest
	Purpose consent.Purpose
}

// Phase is the stage a running intersection is in.
type Phase string

const (
	PhaseBlind Phase = "blind" // sending the bank's blinded identifiers
	PhaseMatch Phase = "match" // receiving and matching the enclave's set
)

// Progress reports how far an intersection is: Done of Total elements in the phase.
type Progress struct {
	Phase       Phase
	Done, Total int
}

// Client is the bank's side of the protocol. The zero value of every field but Transport works.
type Client struct {
	Transport Transport
	// Workers is the number of goroutines of the group operations; GOMAXPROCS by default.
	Workers int
	// Retries is how many times a message is sent again after a failure of the transport, with
	// backoff from RetryWait (100 ms) doubling; 3 when zero, none when negative.
	Retries   int
	RetryWait time.Duration
	// Progress, if set, is called after every batch and page.
	Progress func(Progress)
}

// Session is an open session of the bank. Use it for one Intersect.
type Session struct {
	c      *Client
	id     SessionID
	opened Opened
	used   bool
}

// Open starts a session on the dataset for the purpose. The enclave answers with the kind of the
// dataset's identifiers (validate the bank's own as that kind) and the size of its set.
func (c *Client) Open(ctx context.Context, req Request) (*Session, error) {
	m := &Message{Type: TypeOpen, Open: &Open{Dataset: req.Dataset, Version: uint32(req.Version), Purpose: string(req.Purpose)}}
	if len(req.Dataset) > maxText || len(req.Purpose) > maxText || req.Version < 0 {
		return nil, &Error{Op: "open", Seq: -1, Err: ErrRequest, Detail: "dataset or purpose name too long, or negative version"}
	}
	reply, err := c.exchange(ctx, m, TypeOpened)
	if err != nil {
		return nil, err
	}
	return &Session{c: c, id: reply.Session, opened: *reply.Opened}, nil
}

// ID returns the session id.
func (s *Session) ID() SessionID { return s.id }

// Opened returns the enclave's answer to Open.
func (s *Session) Opened() Opened { return s.opened }

// Kind returns the kind of the dataset's identifiers.
func (s *Session) Kind() ident.Kind { return s.opened.Kind }

// Result is what a bank learns from an intersection.
type Result struct {
	// Matched are the indices into the identifiers given to Intersect that are in the enclave's
	// set, ascending (every occurrence of a repeated identifier).
	Matched []int
	// PlatformSize is the size of the enclave's set as streamed: the number of subjects that
	// authorize the bank, padded up to a bucket (see Bucket).
	PlatformSize int
	// Sent is the number of distinct identifiers sent.
	Sent int
}

// Intersect runs the session's protocol with ids, identifiers of the session's kind in canonical
// form (see ReadIDs), and closes the session. A repeated identifier is sent once. It fails on an
// identifier that is not valid, before anything is sent; on any error the session is closed and a
// new one must be opened.
func (s *Session) Intersect(ctx context.Context, ids []string) (res *Result, err error) {
	if s.used {
		return nil, &Error{Op: "intersect", Session: s.id.String(), Seq: -1, Err: ErrSession, Detail: "a session runs one intersection"}
	}
	s.used = true
	defer func() {
		cerr := s.close(ctx)
		if err == nil && cerr != nil && !errors.Is(cerr, ErrSession) {
			err = cerr
		}
	}()
	kind := s.opened.Kind
	first := make(map[string]int32, len(ids))
	uniq := make([]int32, 0, len(ids))
	for i, id := range ids {
		if err := ident.Validate(kind, id); err != nil {
			return nil, fmt.Errorf("psi: identifier %d: %w", i, err)
		}
		if _, dup := first[id]; !dup {
			first[id] = int32(i)
			uniq = append(uniq, int32(i))
		}
	}
	if uint64(len(uniq)) > s.opened.MaxElements {
		return nil, &Error{Op: "intersect", Session: s.id.String(), Seq: -1, Err: ErrLimit,
			Detail: fmt.Sprintf("%d identifiers, the enclave takes at most %d in a session", len(uniq), s.opened.MaxElements)}
	}
	table, err := s.blindAll(ctx, ids, uniq)
	if err != nil {
		return nil, err
	}
	matched := make([]bool, len(uniq))
	if len(uniq) > 0 {
		matched, err = s.match(ctx, table, len(uniq))
	}
	if err != nil {
		return nil, err
	}
	res = &Result{PlatformSize: int(s.opened.PlatformSize), Sent: len(uniq)}
	for i, id := range ids {
		if matched[first[id]] {
			res.Matched = append(res.Matched, i)
		}
	}
	return res, nil
}

// key is how the bank keeps b·H(x): the first 16 bytes of its encoding, enough to tell a million
// elements apart with a collision probability below 2^-88.
type key [16]byte

// blindAll sends the bank's distinct identifiers (ids[uniq[i]]) in batches as a·H(x) under a fresh
// secret a, unblinds the answers b·a·H(x) to b·H(x) and returns them, mapped to their position i in
// uniq.
func (s *Session) blindAll(ctx context.Context, ids []string, uniq []int32) (map[key]int32, error) {
	w := workers(s.c.Workers)
	dst := DST(s.opened.Kind)
	a := g.RandomNonZeroScalar(rand.Reader)
	aInv := g.NewScalar().Inv(a)
	defer func() { a.SetUint64(0); aInv.SetUint64(0) }()
	batch := int(min(s.opened.MaxBatch, MaxBatch))
	table := make(map[key]int32, len(uniq))
	keys := make([]key, batch)
	for seq, lo := uint32(0), 0; lo < len(uniq); seq, lo = seq+1, lo+batch {
		part := uniq[lo:min(lo+batch, len(uniq))]
		m := &Message{Type: TypeBlind, Session: s.id, Seq: seq, Elements: make([]byte, len(part)*ElementSize)}
		err := parallel(len(part), w, func(lo, hi int) error {
			for i := lo; i < hi; i++ {
				e := hashID(dst, ids[part[i]])
				putElement(m.Elements[i*ElementSize:], e.Mul(e, a))
			}
			return ctx.Err()
		})
		if err != nil {
			return nil, err
		}
		reply, err := s.c.exchange(ctx, m, TypeBlinded)
		if err != nil {
			return nil, err
		}
		if reply.Count() != len(part) {
			return nil, replyError(m, "%d elements for a batch of %d", reply.Count(), len(part))
		}
		err = parallel(len(part), w, func(lo, hi int) error {
			var buf [ElementSize]byte
			for i := lo; i < hi; i++ {
				e, ok := getElement(reply.Elements[i*ElementSize:])
				if !ok {
					return replyError(m, "element %d is not a valid ristretto255 element", i)
				}
				putElement(buf[:], e.Mul(e, aInv))
				keys[i] = key(buf[:16])
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i := range part {
			if _, dup := table[keys[i]]; dup {
				return nil, replyError(m, "equal elements for distinct identifiers")
			}
			table[keys[i]] = int32(lo + i)
		}
		s.c.progress(PhaseBlind, lo+len(part), len(uniq))
	}
	return table, nil
}

// match pulls the enclave's set page by page and marks the bank's elements found in it, by their
// position in uniq.
func (s *Session) match(ctx context.Context, table map[key]int32, n int) ([]bool, error) {
	matched := make([]bool, n)
	total := int(s.opened.PlatformSize)
	for page := uint32(0); page < s.opened.Pages; page++ {
		m := &Message{Type: TypePull, Session: s.id, Seq: page}
		reply, err := s.c.exchange(ctx, m, TypePage)
		if err != nil {
			return nil, err
		}
		lo := int(page) * MaxBatch
		if want := min(total-lo, MaxBatch); reply.Count() != want {
			return nil, replyError(m, "page of %d elements, want %d", reply.Count(), want)
		}
		for i := range reply.Count() {
			if j, ok := table[key(reply.Elements[i*ElementSize:])]; ok {
				matched[j] = true
			}
		}
		s.c.progress(PhaseMatch, lo+reply.Count(), total)
	}
	return matched, nil
}

// Close ends a session that will not run Intersect (Intersect closes its own).
func (s *Session) Close(ctx context.Context) error {
	if s.used {
		return nil
	}
	s.used = true
	return s.close(ctx)
}

func (s *Session) close(ctx context.Context) error {
	_, err := s.c.exchange(context.WithoutCancel(ctx), &Message{Type: TypeClose, Session: s.id}, TypeClosed)
	return err
}

func (c *Client) progress(p Phase, done, total int) {
	if c.Progress != nil {
		c.Progress(Progress{Phase: p, Done: done, Total: total})
	}
}

func replyError(m *Message, format string, args ...any) *Error {
	e := refuse(m, ErrMalformed, format, args...)
	e.Op = "reply to " + e.Op
	return e
}

// exchange sends m, retrying after transport failures, and checks the reply's type, session and
// sequence number.
func (c *Client) exchange(ctx context.Context, m *Message, want Type) (*Message, error) {
	req, _ := m.MarshalBinary()
	retries := c.Retries
	if retries == 0 {
		retries = 3
	}
	wait := c.RetryWait
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	var b []byte
	for attempt := 0; ; attempt++ {
		var err error
		b, err = c.Transport.RoundTrip(ctx, req)
		if err == nil {
			break
		}
		var pe *Error
		if errors.As(err, &pe) || ctx.Err() != nil || attempt >= retries {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait << attempt):
		}
	}
	reply, err := ParseMessage(b)
	if err != nil {
		e := err.(*Error)
		e.Op = "reply to " + m.Type.String()
		return nil, e
	}
	if reply.Type != want || (m.Type != TypeOpen && reply.Session != m.Session) || reply.Seq != m.Seq {
		return nil, replyError(m, "answered by %s %d of session %s", reply.Type, reply.Seq, reply.Session)
	}
	return reply, nil
}
