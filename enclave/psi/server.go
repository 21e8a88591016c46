package psi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/bits"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/cloudflare/circl/group"

	"insitu/connectors/ident"
	"insitu/enclave/consent"
	"insitu/enclave/dataset"
)

// Query is what the enclave asks its Source when a bank opens a session.
type Query struct {
	Dataset string
	Version int // 0 means the latest
	Bank    string
	Purpose consent.Purpose
	At      time.Time
}

// Set is the enclave's side of a session: the dataset version's subjects that hold a valid
// authorization for the bank and purpose, in canonical form.
type Set struct {
	Kind     ident.Kind
	Version  int
	Subjects []string
}

// Source gives the enclave's set for a session; DatasetSource is the one the enclave uses.
type Source interface {
	AuthorizedSubjects(ctx context.Context, q Query) (*Set, error)
}

// Options tune a Server. Zero fields take the defaults.
type Options struct {
	// MaxElements bounds the elements a bank may send in one session; 1<<22 by default.
	MaxElements int
	// TTL is a session's lifetime from its opening; 30 minutes by default.
	TTL time.Duration
	// MaxSessionsPerBank bounds the open sessions of one bank (4); MaxSessions those of all banks (64).
	MaxSessionsPerBank int
	MaxSessions        int
	// Workers is the number of goroutines of the group operations; GOMAXPROCS by default.
	Workers int
	// Now returns the current time; time.Now by default.
	Now func() time.Time
}

// MinBucket is the smallest size the enclave's set is padded to.
const MinBucket = 256

// Bucket returns the size an enclave set of n subjects is streamed as: MinBucket for up to
// MinBucket subjects, and above that n rounded up to a multiple of 2^(⌊log₂ n⌋−4), so that the
// padding (uniformly random elements, indistinguishable from real ones) is less than 1/16 of n.
func Bucket(n int) int {
	if n <= MinBucket {
		return MinBucket
	}
	step := 1 << (bits.Len(uint(n)) - 1 - 4)
	return (n + step - 1) / step * step
}

// Server is the enclave's side of the protocol and its session store. Handle answers one message of
// a bank. A Server is safe for concurrent use.
type Server struct {
	src  Source
	opts Options

	mu       sync.Mutex
	sessions map[SessionID]*session
	ended    map[SessionID]time.Time // closed or expired sessions, remembered until the time given
}

// NewServer returns a server whose sessions draw their sets from src.
func NewServer(src Source, opts Options) *Server {
	if opts.MaxElements <= 0 {
		opts.MaxElements = 1 << 22
	}
	if opts.TTL <= 0 {
		opts.TTL = 30 * time.Minute
	}
	if opts.MaxSessionsPerBank <= 0 {
		opts.MaxSessionsPerBank = 4
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 64
	}
	opts.Workers = workers(opts.Workers)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{src: src, opts: opts, sessions: map[SessionID]*session{}, ended: map[SessionID]time.Time{}}
}

// session is one open session. mu serialises its messages.
type session struct {
	id      SessionID
	bank    string
	expires time.Time

	mu    sync.Mutex
	done  bool
	b     group.Scalar // the enclave's secret, fresh for the session, zeroed when it ends
	dst   []byte
	set   []string // shuffled subjects; "" marks a padding element
	pages uint32

	nextBatch, nextPage uint32
	received            int
	// last is the last answered message, kept so that its retransmission after a dropped connection
	// gets the same answer.
	last struct {
		typ    Type
		seq    uint32
		digest [32]byte
		reply  []byte
	}
}

// end erases the session's secret and set. The caller holds s.mu.
func (s *session) end() {
	if s.done {
		return
	}
	s.done = true
	s.b.SetUint64(0)
	s.set = nil
	s.last.reply = nil
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Handle answers one message of bank, the authenticated caller, and returns the encoded reply.
// Refusals are *Error wrapping ErrMalformed, ErrReplay, ErrSession, ErrLimit or ErrRequest; the
// Source's errors (an unknown dataset) are returned wrapped. A malformed or replayed message ends
// its session.
func (s *Server) Handle(ctx context.Context, bank string, request []byte) ([]byte, error) {
	m, err := ParseMessage(request)
	if err != nil {
		return nil, err
	}
	s.sweep()
	switch m.Type {
	case TypeOpen:
		return s.open(ctx, bank, m)
	case TypeBlind, TypePull, TypeClose:
	default:
		return nil, refuse(m, ErrMalformed, "a bank does not send %s messages", m.Type)
	}
	s.mu.Lock()
	sess := s.sessions[m.Session]
	s.mu.Unlock()
	if sess == nil || sess.bank != bank {
		return nil, refuse(m, ErrSession, "open a new session")
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.done || !s.opts.Now().Before(sess.expires) {
		s.drop(sess)
		return nil, refuse(m, ErrSession, "the session ended; open a new one")
	}
	digest := sha256.Sum256(request)
	if sess.last.reply != nil && sess.last.typ == m.Type && sess.last.seq == m.Seq && sess.last.digest == digest {
		return append([]byte(nil), sess.last.reply...), nil
	}
	var reply *Message
	switch m.Type {
	case TypeBlind:
		reply, err = s.blind(ctx, sess, m)
	case TypePull:
		reply, err = s.pull(ctx, sess, m)
	case TypeClose:
		s.drop(sess)
		reply = &Message{Type: TypeClosed, Session: m.Session}
	}
	if err != nil {
		if e, ok := err.(*Error); ok && (e.Err == ErrMalformed || e.Err == ErrReplay) {
			s.drop(sess)
		}
		return nil, err
	}
	out, _ := reply.MarshalBinary()
	if !sess.done {
		sess.last.typ, sess.last.seq, sess.last.digest = m.Type, m.Seq, digest
		sess.last.reply = out
	}
	return append([]byte(nil), out...), nil
}

// open starts a session: the authorized subjects of the dataset, shuffled and padded, and a fresh
// secret scalar.
func (s *Server) open(ctx context.Context, bank string, m *Message) ([]byte, error) {
	o := m.Open
	if bank == "" {
		return nil, refuse(m, ErrRequest, "no calling bank")
	}
	if !dataset.ValidName(o.Dataset) {
		return nil, refuse(m, ErrRequest, "dataset name %q: lower-case letters, digits, '_' and '-'", o.Dataset)
	}
	purpose, err := consent.ParsePurpose(o.Purpose)
	if err != nil {
		return nil, refuse(m, ErrRequest, "purpose %q: use one of %v", o.Purpose, consent.Purposes)
	}
	if err := s.admit(bank); err != nil {
		return nil, refuse(m, ErrLimit, "%v", err)
	}
	now := s.opts.Now()
	set, err := s.src.AuthorizedSubjects(ctx, Query{Dataset: o.Dataset, Version: int(o.Version), Bank: bank, Purpose: purpose, At: now})
	if err != nil {
		return nil, fmt.Errorf("psi open on dataset %s: %w", o.Dataset, err)
	}
	n := Bucket(len(set.Subjects))
	items := make([]string, n)
	copy(items, set.Subjects)
	var seed [32]byte
	rand.Read(seed[:])
	mrand.New(mrand.NewChaCha8(seed)).Shuffle(n, func(i, j int) { items[i], items[j] = items[j], items[i] })
	sess := &session{bank: bank, expires: now.Add(s.opts.TTL), b: g.RandomNonZeroScalar(rand.Reader), dst: DST(set.Kind),
		set: items, pages: uint32((n + MaxBatch - 1) / MaxBatch)}
	rand.Read(sess.id[:])
	if err := s.register(sess); err != nil {
		sess.end()
		return nil, refuse(m, ErrLimit, "%v", err)
	}
	reply := &Message{Type: TypeOpened, Session: sess.id, Opened: &Opened{Kind: set.Kind, DatasetVersion: uint32(set.Version),
		PlatformSize: uint64(n), Pages: sess.pages, MaxBatch: MaxBatch, MaxElements: uint64(s.opts.MaxElements),
		Expires: sess.expires.Unix()}}
	return reply.MarshalBinary()
}

// admit checks the session limits before the set is read; register checks them again and adds the
// session.
func (s *Server) admit(bank string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limitsLocked(bank)
}

func (s *Server) register(sess *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.limitsLocked(sess.bank); err != nil {
		return err
	}
	if _, used := s.ended[sess.id]; used || s.sessions[sess.id] != nil {
		return fmt.Errorf("session id drawn twice") // 2^-128: the random source is broken
	}
	s.sessions[sess.id] = sess
	return nil
}

func (s *Server) limitsLocked(bank string) error {
	if len(s.sessions) >= s.opts.MaxSessions {
		return fmt.Errorf("the enclave has %d open sessions; try again later", len(s.sessions))
	}
	mine := 0
	for _, x := range s.sessions {
		if x.bank == bank {
			mine++
		}
	}
	if mine >= s.opts.MaxSessionsPerBank {
		return fmt.Errorf("bank %s has %d open sessions; close one or wait until it expires", bank, mine)
	}
	return nil
}

// drop ends a session whose lock the caller holds and forgets it, remembering its id.
func (s *Server) drop(sess *session) {
	sess.end()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	s.ended[sess.id] = sess.expires.Add(s.opts.TTL)
}

// sweep ends the expired sessions and forgets old ids of ended ones.
func (s *Server) sweep() {
	now := s.opts.Now()
	var expired []*session
	s.mu.Lock()
	for id, x := range s.sessions {
		if !now.Before(x.expires) {
			expired = append(expired, x)
			delete(s.sessions, id)
			s.ended[id] = x.expires.Add(s.opts.TTL)
		}
	}
	for id, until := range s.ended {
		if now.After(until) {
			delete(s.ended, id)
		}
	}
	s.mu.Unlock()
	for _, x := range expired {
		x.mu.Lock()
		x.end()
		x.mu.Unlock()
	}
}

// blind answers batch m.Seq: b·P for each element P, in order.
func (s *Server) blind(ctx context.Context, sess *session, m *Message) (*Message, error) {
	if m.Seq != sess.nextBatch {
		return nil, refuse(m, ErrReplay, "expected batch %d", sess.nextBatch)
	}
	n := m.Count()
	if sess.received+n > s.opts.MaxElements {
		return nil, refuse(m, ErrLimit, "a session takes at most %d elements", s.opts.MaxElements)
	}
	out := make([]byte, len(m.Elements))
	err := parallel(n, s.opts.Workers, func(lo, hi int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			p, ok := getElement(m.Elements[i*ElementSize:])
			if !ok {
				return refuse(m, ErrMalformed, "element %d is not a canonical ristretto255 encoding of an element other than the identity", i)
			}
			putElement(out[i*ElementSize:], p.Mul(p, sess.b))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sess.nextBatch++
	sess.received += n
	return &Message{Type: TypeBlinded, Session: sess.id, Seq: m.Seq, Elements: out}, nil
}

// pull answers page m.Seq of the enclave's set: b·H(y) for its subjects, random elements for the
// padding.
func (s *Server) pull(ctx context.Context, sess *session, m *Message) (*Message, error) {
	if m.Seq != sess.nextPage || m.Seq >= sess.pages {
		return nil, refuse(m, ErrReplay, "expected page %d of %d", sess.nextPage, sess.pages)
	}
	lo := int(m.Seq) * MaxBatch
	items := sess.set[lo:min(lo+MaxBatch, len(sess.set))]
	out := make([]byte, len(items)*ElementSize)
	err := parallel(len(items), s.opts.Workers, func(lo, hi int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			var e group.Element
			if items[i] == "" {
				e = g.RandomElement(rand.Reader)
			} else {
				e = hashID(sess.dst, items[i])
				e.Mul(e, sess.b)
			}
			putElement(out[i*ElementSize:], e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sess.nextPage++
	return &Message{Type: TypePage, Session: sess.id, Seq: m.Seq, Elements: out}, nil
}
