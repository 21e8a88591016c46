package psi

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"insitu/connectors/ident"
)

type fixedSource struct{ ids []string }

func (f fixedSource) AuthorizedSubjects(context.Context, Query) (*Set, error) {
	return &Set{Kind: ident.KindUSCC, Version: 1, Subjects: f.ids}, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testIDs(n int) []string {
	r := rand.New(rand.NewPCG(5, 5))
	out := make([]string, n)
	for i := range out {
		out[i] = ident.NewUSCC(r, "110100")
	}
	return out
}

func mustMarshal(m *Message) []byte {
	b, _ := m.MarshalBinary()
	return b
}

func openSession(t *testing.T, s *Server, bank string) *Message {
	t.Helper()
	b, err := s.Handle(context.Background(), bank, mustMarshal(&Message{Type: TypeOpen, Open: &Open{Dataset: "d", Purpose: "model_development"}}))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMessage(b)
	if err != nil || m.Type != TypeOpened {
		t.Fatalf("open: %v %v", m, err)
	}
	return m
}

// blindOf returns a Blind message of seq with the elements H(id) for ids.
func blindOf(sess SessionID, seq uint32, ids []string) *Message {
	m := &Message{Type: TypeBlind, Session: sess, Seq: seq, Elements: make([]byte, len(ids)*ElementSize)}
	for i, id := range ids {
		putElement(m.Elements[i*ElementSize:], hashID(DST(ident.KindUSCC), id))
	}
	return m
}

func TestSessionSecretsFreshAndErased(t *testing.T) {
	s := NewServer(fixedSource{testIDs(3)}, Options{})
	ids := testIDs(2)
	o1, o2 := openSession(t, s, "bank-a"), openSession(t, s, "bank-a")
	if o1.Session == o2.Session {
		t.Fatal("two sessions with one id")
	}
	s1, s2 := s.sessions[o1.Session], s.sessions[o2.Session]
	if s1.b.IsEqual(s2.b) || s1.b.IsZero() {
		t.Fatal("two sessions share their secret, or it is zero")
	}
	// The same element gets unrelated answers in the two sessions.
	r1, err1 := s.Handle(context.Background(), "bank-a", mustMarshal(blindOf(o1.Session, 0, ids)))
	r2, err2 := s.Handle(context.Background(), "bank-a", mustMarshal(blindOf(o2.Session, 0, ids)))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	m1, _ := ParseMessage(r1)
	m2, _ := ParseMessage(r2)
	if string(m1.Elements[:ElementSize]) == string(m2.Elements[:ElementSize]) {
		t.Fatal("one element blinded alike in two sessions")
	}
	if _, err := s.Handle(context.Background(), "bank-a", mustMarshal(&Message{Type: TypeClose, Session: o1.Session})); err != nil {
		t.Fatal(err)
	}
	if !s1.b.IsZero() || s1.set != nil || s1.last.reply != nil {
		t.Error("a closed session keeps its secret or its set")
	}
	// A closed session's id is never used again.
	if _, err := s.Handle(context.Background(), "bank-a", mustMarshal(blindOf(o1.Session, 1, ids))); !errors.Is(err, ErrSession) {
		t.Errorf("batch on a closed session: %v", err)
	}
	if _, ok := s.ended[o1.Session]; !ok {
		t.Error("the closed session's id is not remembered")
	}
}

func TestBankSecretFresh(t *testing.T) {
	ids := testIDs(5)
	s := NewServer(fixedSource{ids}, Options{})
	var blinds [][]byte
	tr := transportFunc(func(ctx context.Context, req []byte) ([]byte, error) {
		if m, err := ParseMessage(req); err == nil && m.Type == TypeBlind {
			blinds = append(blinds, append([]byte(nil), m.Elements...))
		}
		return s.Handle(ctx, "bank-a", req)
	})
	for range 2 {
		sess, err := (&Client{Transport: tr}).Open(context.Background(), Request{Dataset: "d", Purpose: "model_development"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sess.Intersect(context.Background(), ids); err != nil {
			t.Fatal(err)
		}
	}
	if len(blinds) != 2 {
		t.Fatalf("%d batches", len(blinds))
	}
	seen := map[string]bool{}
	for _, b := range blinds {
		for i := 0; i < len(b); i += ElementSize {
			if seen[string(b[i:i+ElementSize])] {
				t.Fatal("the bank sent the same blinded element in two sessions")
			}
			seen[string(b[i:i+ElementSize])] = true
		}
	}
}

type transportFunc func(ctx context.Context, req []byte) ([]byte, error)

func (f transportFunc) RoundTrip(ctx context.Context, req []byte) ([]byte, error) { return f(ctx, req) }

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	ids := testIDs(4)
	c := &clock{t: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	s := NewServer(fixedSource{ids}, Options{Now: c.Now, MaxElements: 6, MaxSessionsPerBank: 2, TTL: time.Minute})
	handle := func(bank string, m *Message) error {
		_, err := s.Handle(ctx, bank, mustMarshal(m))
		return err
	}
	o := openSession(t, s, "bank-a")
	if err := handle("bank-a", blindOf(o.Session, 0, ids[:2])); err != nil {
		t.Fatal(err)
	}
	// Another bank cannot reach the session, and does not end it.
	if err := handle("bank-b", blindOf(o.Session, 1, ids[:2])); !errors.Is(err, ErrSession) {
		t.Errorf("another bank's batch: %v", err)
	}
	// Over the element limit.
	if err := handle("bank-a", blindOf(o.Session, 1, testIDs(5))); !errors.Is(err, ErrLimit) {
		t.Errorf("over the limit: %v", err)
	}
	// A replayed batch (with other content) and an out-of-order page end the session.
	if err := handle("bank-a", blindOf(o.Session, 0, ids[2:])); !errors.Is(err, ErrReplay) {
		t.Errorf("replayed batch: %v", err)
	}
	if err := handle("bank-a", &Message{Type: TypePull, Session: o.Session}); !errors.Is(err, ErrSession) {
		t.Errorf("after a replay the session goes on: %v", err)
	}
	o = openSession(t, s, "bank-a")
	if err := handle("bank-a", &Message{Type: TypePull, Session: o.Session, Seq: 1}); !errors.Is(err, ErrReplay) {
		t.Errorf("page 1 before page 0: %v", err)
	}
	// Malformed elements: the identity, a non-canonical encoding, and bytes off the curve.
	for name, el := range map[string][]byte{
		"identity":      make([]byte, ElementSize),
		"non-canonical": append([]byte{0xff}, make([]byte, ElementSize-1)...),
		"high bit":      func() []byte { b := blindOf(SessionID{}, 0, ids[:1]).Elements; b[31] |= 0x80; return b }(),
		"not a point":   append([]byte{2}, make([]byte, ElementSize-1)...),
	} {
		o := openSession(t, s, "bank-a")
		m := blindOf(o.Session, 0, ids[:2])
		copy(m.Elements[ElementSize:], el)
		if err := handle("bank-a", m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s element: %v", name, err)
		}
		if err := handle("bank-a", blindOf(o.Session, 0, ids[:1])); !errors.Is(err, ErrSession) {
			t.Errorf("%s element: the session goes on: %v", name, err)
		}
	}
	// Messages a bank does not send, and garbage.
	o = openSession(t, s, "bank-a")
	if err := handle("bank-a", &Message{Type: TypePage, Session: o.Session}); !errors.Is(err, ErrMalformed) {
		t.Errorf("page from a bank: %v", err)
	}
	if _, err := s.Handle(ctx, "bank-a", []byte("GET / HTTP/1.1")); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
	// Unknown session, bad open requests.
	if err := handle("bank-a", blindOf(SessionID{1}, 0, ids[:1])); !errors.Is(err, ErrSession) {
		t.Errorf("unknown session: %v", err)
	}
	for _, op := range []*Open{{Dataset: "D!", Purpose: "model_development"}, {Dataset: "d", Purpose: "fun"}} {
		if err := handle("bank-a", &Message{Type: TypeOpen, Open: op}); !errors.Is(err, ErrRequest) {
			t.Errorf("open %+v: %v", op, err)
		}
	}
	// Session limits per bank.
	openSession(t, s, "bank-a")
	if err := handle("bank-a", &Message{Type: TypeOpen, Open: &Open{Dataset: "d", Purpose: "model_development"}}); !errors.Is(err, ErrLimit) {
		t.Errorf("a third open session: %v", err)
	}
	openSession(t, s, "bank-b")
	// Expiry ends every session and erases its secret.
	sess := s.sessions[o.Session]
	c.Add(time.Minute)
	if err := handle("bank-a", &Message{Type: TypePull, Session: o.Session}); !errors.Is(err, ErrSession) {
		t.Errorf("expired session: %v", err)
	}
	if !sess.b.IsZero() || s.Sessions() != 0 {
		t.Errorf("after expiry: secret zero %v, %d sessions open", sess.b.IsZero(), s.Sessions())
	}
	openSession(t, s, "bank-a")
}

func TestRetransmissionGetsTheSameAnswer(t *testing.T) {
	ctx := context.Background()
	ids := testIDs(3)
	s := NewServer(fixedSource{ids}, Options{})
	o := openSession(t, s, "bank-a")
	req := mustMarshal(blindOf(o.Session, 0, ids))
	r1, err := s.Handle(ctx, "bank-a", req)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Handle(ctx, "bank-a", req)
	if err != nil || string(r1) != string(r2) {
		t.Fatalf("retransmission: %v, same answer %v", err, string(r1) == string(r2))
	}
	pull := mustMarshal(&Message{Type: TypePull, Session: o.Session})
	p1, err1 := s.Handle(ctx, "bank-a", pull)
	p2, err2 := s.Handle(ctx, "bank-a", pull)
	if err1 != nil || err2 != nil || string(p1) != string(p2) {
		t.Fatalf("page retransmission: %v %v", err1, err2)
	}
	// The batch before the last one is a replay.
	if _, err := s.Handle(ctx, "bank-a", req); !errors.Is(err, ErrReplay) {
		t.Errorf("an older message again: %v", err)
	}
}

// flaky drops the reply of every other message after the enclave handled it.
type flaky struct {
	s     *Server
	n     int
	drops int
}

func (f *flaky) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	b, err := f.s.Handle(ctx, "bank-a", req)
	f.n++
	if err == nil && f.n%2 == 0 {
		f.drops++
		return nil, errors.New("connection reset by peer")
	}
	return b, err
}

func TestDroppedConnectionResumes(t *testing.T) {
	ids := testIDs(MaxBatch + 100)
	s := NewServer(fixedSource{ids[100:]}, Options{})
	f := &flaky{s: s}
	c := &Client{Transport: f, RetryWait: time.Millisecond}
	sess, err := c.Open(context.Background(), Request{Dataset: "d", Purpose: "model_development"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sess.Intersect(context.Background(), ids[:300])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matched) != 200 || res.Matched[0] != 100 || f.drops < 2 {
		t.Fatalf("matched %d from %v, %d replies dropped", len(res.Matched), res.Matched[:1], f.drops)
	}
	// A transport that keeps failing ends in an error, not a wrong result.
	dead := transportFunc(func(context.Context, []byte) ([]byte, error) { return nil, errors.New("no route to host") })
	if _, err := (&Client{Transport: dead, RetryWait: time.Millisecond}).Open(context.Background(), Request{Dataset: "d", Purpose: "model_development"}); err == nil {
		t.Fatal("open over a dead transport succeeds")
	}
}
