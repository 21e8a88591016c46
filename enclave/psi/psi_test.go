package psi_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"insitu/connectors/ident"
	"insitu/enclave/consent"
	"insitu/enclave/psi"
)

var ctx = context.Background()

// memSource is a Source holding one set for every query; it records the queries.
type memSource struct {
	kind     ident.Kind
	subjects []string
	mu       sync.Mutex
	queries  []psi.Query
}

func (m *memSource) AuthorizedSubjects(_ context.Context, q psi.Query) (*psi.Set, error) {
	m.mu.Lock()
	m.queries = append(m.queries, q)
	m.mu.Unlock()
	return &psi.Set{Kind: m.kind, Version: 3, Subjects: m.subjects}, nil
}

// usccs returns n distinct valid credit codes from seed.
func usccs(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		s := ident.NewUSCC(r, "350100")
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// recorder is a transport that keeps every request and reply.
type recorder struct {
	next     psi.Transport
	requests [][]byte
	replies  [][]byte
}

func (r *recorder) RoundTrip(ctx context.Context, req []byte) ([]byte, error) {
	r.requests = append(r.requests, slices.Clone(req))
	b, err := r.next.RoundTrip(ctx, req)
	if err == nil {
		r.replies = append(r.replies, slices.Clone(b))
	}
	return b, err
}

var request = psi.Request{Dataset: "credit", Purpose: consent.PurposeModelDevelopment}

// run intersects bank with platform in process and returns the matched identifiers.
func run(t *testing.T, platform, bank []string) ([]string, *psi.Result, *recorder) {
	t.Helper()
	srv := psi.NewServer(&memSource{kind: ident.KindUSCC, subjects: platform}, psi.Options{})
	rec := &recorder{next: psi.Local{Server: srv, Bank: "bank-a"}}
	c := &psi.Client{Transport: rec}
	s, err := c.Open(ctx, request)
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind() != ident.KindUSCC {
		t.Fatalf("kind %q", s.Kind())
	}
	res, err := s.Intersect(ctx, bank)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Sessions() != 0 {
		t.Errorf("%d sessions open after Intersect", srv.Sessions())
	}
	var got []string
	for _, i := range res.Matched {
		got = append(got, bank[i])
	}
	return got, res, rec
}

// plain is the intersection computed in the clear: bank's identifiers, in bank order, that platform
// holds.
func plain(platform, bank []string) []string {
	in := map[string]bool{}
	for _, s := range platform {
		in[s] = true
	}
	var out []string
	for _, s := range bank {
		if in[s] {
			out = append(out, s)
		}
	}
	return out
}

func TestIntersectRandomSets(t *testing.T) {
	all := usccs(1, 5000)
	r := rand.New(rand.NewPCG(2, 2))
	var platform, bank []string
	for _, s := range all {
		switch x := r.IntN(10); {
		case x < 5:
			platform = append(platform, s)
		case x < 7:
			bank = append(bank, s)
		default:
			platform = append(platform, s)
			bank = append(bank, s)
		}
	}
	r.Shuffle(len(bank), func(i, j int) { bank[i], bank[j] = bank[j], bank[i] })
	got, res, rec := run(t, platform, bank)
	want := plain(platform, bank)
	if !slices.Equal(got, want) || len(want) < 1000 {
		t.Fatalf("matched %d, want %d (plain intersection)", len(got), len(want))
	}
	if res.PlatformSize != psi.Bucket(len(platform)) || res.Sent != len(bank) {
		t.Errorf("platform size %d sent %d, want %d and %d", res.PlatformSize, res.Sent, psi.Bucket(len(platform)), len(bank))
	}
	// The bank's messages carry no identifier of the bank, in any form it has them.
	for _, req := range rec.requests {
		for _, id := range bank {
			if bytes.Contains(req, []byte(id)) || bytes.Contains(req, []byte(id[:12])) {
				t.Fatalf("a message to the enclave contains the bank's identifier %s", ident.Mask(id))
			}
		}
		if len(req) > psi.MaxMessageSize {
			t.Fatalf("message of %d bytes", len(req))
		}
	}
	pages := (psi.Bucket(len(platform)) + psi.MaxBatch - 1) / psi.MaxBatch
	if n, want := len(rec.requests), 1+(len(bank)+psi.MaxBatch-1)/psi.MaxBatch+pages+1; n != want { // open, batches, pages, close
		t.Errorf("%d messages, want %d", n, want)
	}
}

func TestIntersectAdversarialSets(t *testing.T) {
	ids := usccs(3, psi.MaxBatch+3)
	one := ids[:1]
	lower := []byte(ids[0])
	lower[17] = bytes.ToLower(lower[17:])[0]
	cases := []struct {
		name           string
		platform, bank []string
	}{
		{"both empty", nil, nil},
		{"empty bank", ids[:10], nil},
		{"empty platform", nil, ids[:10]},
		{"one and one, equal", one, one},
		{"one and one, different", one, ids[1:2]},
		{"bank all duplicates", ids[:3], []string{ids[1], ids[1], ids[1], ids[1]}},
		{"bank duplicates not on the platform", ids[:3], []string{ids[5], ids[1], ids[5]}},
		{"platform duplicates", []string{ids[0], ids[0], ids[1]}, ids[:2]},
		{"equal sets", ids[:50], ids[:50]},
		{"disjoint", ids[:50], ids[50:100]},
		{"bank over one batch", ids[4000:4001], ids},
		{"platform over one page", ids, ids[psi.MaxBatch:]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, res, _ := run(t, c.platform, c.bank)
			if want := plain(c.platform, c.bank); !slices.Equal(got, want) {
				t.Fatalf("matched %v, want %v", got, want)
			}
			if res.PlatformSize != psi.Bucket(len(c.platform)) {
				t.Errorf("platform size %d", res.PlatformSize)
			}
		})
	}
}

func TestIntersectRefusesInvalidIdentifiers(t *testing.T) {
	ids := usccs(4, 3)
	srv := psi.NewServer(&memSource{kind: ident.KindUSCC, subjects: ids}, psi.Options{})
	rec := &recorder{next: psi.Local{Server: srv, Bank: "bank-a"}}
	s, err := (&psi.Client{Transport: rec}).Open(ctx, request)
	if err != nil {
		t.Fatal(err)
	}
	bad := ids[1][:17] + "0"
	if bad == ids[1] {
		bad = ids[1][:17] + "1"
	}
	_, err = s.Intersect(ctx, []string{ids[0], bad})
	if !errors.Is(err, ident.ErrInvalid) {
		t.Fatalf("got %v, want an invalid identifier", err)
	}
	for _, req := range rec.requests {
		if m, _ := psi.ParseMessage(req); m.Type == psi.TypeBlind {
			t.Fatal("a batch was sent despite an invalid identifier")
		}
	}
	if srv.Sessions() != 0 {
		t.Error("the session stays open")
	}
	if _, err := s.Intersect(ctx, ids); !errors.Is(err, psi.ErrSession) {
		t.Errorf("a second Intersect on a session: %v", err)
	}
}

func TestBucket(t *testing.T) {
	for _, c := range [][2]int{{0, 256}, {1, 256}, {256, 256}, {257, 272}, {1000, 1024}, {1024, 1024}, {1025, 1088}, {1_000_000, 1_015_808}} {
		if got := psi.Bucket(c[0]); got != c[1] {
			t.Errorf("Bucket(%d) = %d, want %d", c[0], got, c[1])
		}
	}
	for n := 1; n < 1<<20; n = n*3 + 1 {
		if b := psi.Bucket(n); b < n || (n > psi.MinBucket && (b-n)*16 >= n) {
			t.Errorf("Bucket(%d) = %d", n, b)
		}
	}
}
