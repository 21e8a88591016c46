package audit_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"insitu/connectors/ident"
	"insitu/enclave/audit"
	"insitu/enclave/keys"
	"insitu/enclave/store"
	"insitu/enclave/store/storetest"
)

var ctx = context.Background()

// clock returns a deterministic clock that advances a second per call.
func clock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

var (
	idOnce sync.Once
	enc    *keys.Identity
)

// enclaveID returns one enclave identity for the whole test binary.
func enclaveID(t testing.TB) *keys.Identity {
	idOnce.Do(func() {
		var err error
		if enc, err = keys.NewIdentity(keys.RoleEnclave, "enclave"); err != nil {
			panic(err)
		}
	})
	return enc
}

type fixture struct {
	path string
	db   *store.DB
	log  *audit.Log
	id   *keys.Identity
	now  func() time.Time
	opts audit.Options
}

func newFixture(t *testing.T, every int) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), store.FileName), id: enclaveID(t), now: clock()}
	f.opts = audit.Options{CheckpointEvery: every, Now: f.now}
	f.open(t)
	t.Cleanup(func() { f.db.Close() })
	return f
}

func (f *fixture) open(t *testing.T) {
	t.Helper()
	db, err := store.Open(ctx, f.path, audit.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	f.db = db
	f.log = audit.New(db, f.id, f.opts)
}

func event(i int) audit.Event {
	return audit.Event{Kind: audit.KindJobSubmit, Actor: "bank-a", Subject: fmt.Sprintf("job-%04d", i),
		Payload: map[string]any{"rows": i * 10, "purpose": "model_development", "z": []int{i}, "a": "first"}}
}

func (f *fixture) fill(t *testing.T, n int) []audit.Record {
	t.Helper()
	var out []audit.Record
	for i := range n {
		r, err := f.log.Append(ctx, event(i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (f *fixture) verify(t *testing.T, known ...audit.Head) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(ctx, f.db, f.id.Public(), known)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestAppendChain(t *testing.T) {
	f := newFixture(t, -1)
	recs := f.fill(t, 3)
	var prev audit.Digest
	for i, r := range recs {
		if r.Seq != int64(i+1) || r.PrevHash != prev || r.Hash != r.ComputeHash() {
			t.Fatalf("record %d: seq %d, prev %s (want %s), hash ok %v", i, r.Seq, r.PrevHash, prev, r.Hash == r.ComputeHash())
		}
		if want := time.Date(2026, 7, 1, 9, 0, i+1, 0, time.UTC); !r.Time.Equal(want) {
			t.Errorf("record %d time %v, want %v", i, r.Time, want)
		}
		prev = r.Hash
	}
	if got := string(recs[1].Payload); got != `{"a":"first","purpose":"model_development","rows":10,"z":[1]}` {
		t.Errorf("payload not canonical: %s", got)
	}
	stored, err := f.log.Records(ctx, 0, 10)
	if err != nil || len(stored) != 3 {
		t.Fatalf("Records: %d, %v", len(stored), err)
	}
	for i := range stored {
		if stored[i].Hash != recs[i].Hash || string(stored[i].Payload) != string(recs[i].Payload) || !stored[i].Time.Equal(recs[i].Time) {
			t.Errorf("stored record %d differs from the appended one", i+1)
		}
	}
	head, err := f.log.Head(ctx)
	if err != nil || head != recs[2].Head() {
		t.Errorf("Head %+v, %v", head, err)
	}
	rep := f.verify(t, recs[1].Head())
	if !rep.OK() || rep.Records != 3 || rep.Head != recs[2].Head() || rep.Anchored != 2 || rep.Unanchored != 1 {
		t.Errorf("report %+v", rep)
	}
}

// A known-answer vector: the canonical encoding and hash of a fixed record must never change, or
// every log written before would fail verification.
func TestCanonicalKnownAnswer(t *testing.T) {
	r := audit.Record{Seq: 1, Time: time.Date(2026, 7, 1, 9, 0, 1, 0, time.UTC), Kind: audit.KindIngest, Actor: "steward-1",
		Subject: "dataset/sme v1", Payload: json.RawMessage(`{"rows":1000}`)}
	// Domain, seq 1, time 1782896401000000000 ns, then length-prefixed kind, actor, subject,
	// payload, and 32 zero bytes of prev_hash.
	want := "696e736974752d61756469742d7265636f72642d7631" + "00" + "0000000000000001" + "18be1ed49ced6a00" +
		"00000006" + hex.EncodeToString([]byte("ingest")) + "00000009" + hex.EncodeToString([]byte("steward-1")) +
		"0000000e" + hex.EncodeToString([]byte("dataset/sme v1")) + "0000000d" + hex.EncodeToString([]byte(`{"rows":1000}`)) +
		strings.Repeat("00", 32)
	if got := hex.EncodeToString(r.Canonical()); got != want {
		t.Fatalf("canonical encoding\n got %s\nwant %s", got, want)
	}
	if got := r.ComputeHash().String(); got != "0b2b9a5dc96ba2f2669c2c9539194073788fe65c2a1a63f740d2af4858cf4447" {
		t.Errorf("hash %s", got)
	}
}

func TestAppendRejects(t *testing.T) {
	f := newFixture(t, -1)
	rng := rand.New(rand.NewPCG(1, 2))
	uscc := ident.NewUSCC(rng, "350100")
	rid := ident.NewResidentID(rng, "350102", time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC), true)
	for name, tc := range map[string]struct {
		ev       audit.Event
		personal bool
	}{
		"kind":              {audit.Event{Kind: "Job Submit", Actor: "a"}, false},
		"no actor":          {audit.Event{Kind: audit.KindIngest}, false},
		"control":           {audit.Event{Kind: audit.KindIngest, Actor: "a\nb"}, false},
		"long subject":      {audit.Event{Kind: audit.KindIngest, Actor: "a", Subject: strings.Repeat("x", 300)}, false},
		"array payload":     {audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: []int{1}}, false},
		"bad json":          {audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: json.RawMessage(`{"a":`)}, false},
		"trailing":          {audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: json.RawMessage(`{} {}`)}, false},
		"big":               {audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: map[string]string{"x": strings.Repeat("y", audit.MaxPayload)}}, false},
		"uscc subject":      {audit.Event{Kind: audit.KindIngest, Actor: "a", Subject: "subject " + uscc}, true},
		"uscc in payload":   {audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: map[string]any{"list": []string{"ok", "id:" + uscc}}}, true},
		"resident id value": {audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: json.RawMessage(`{"n":` + numericResidentID(t) + `}`)}, true},
		"resident id key":   {audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: map[string]int{rid: 1}}, true},
	} {
		_, err := f.log.Append(ctx, tc.ev)
		var ee *audit.EventError
		if !errors.Is(err, audit.ErrInvalidEvent) || !errors.As(err, &ee) || errors.Is(err, audit.ErrPersonalData) != tc.personal {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(err.Error(), uscc) || strings.Contains(err.Error(), rid) {
			t.Errorf("%s: error repeats the identifier: %v", name, err)
		}
	}
	if h, _ := f.log.Head(ctx); h.Seq != 0 {
		t.Errorf("refused events were appended: head %d", h.Seq)
	}
	// Pseudonyms and counts are fine.
	ps, _ := ident.NewPseudonymizer(make([]byte, 32))
	p, _ := ps.Pseudonym(ident.KindUSCC, uscc)
	if _, err := f.log.Append(ctx, audit.Event{Kind: audit.KindIngest, Actor: "a", Payload: map[string]any{"subject": p, "rows": 1234567}}); err != nil {
		t.Errorf("pseudonym refused: %v", err)
	}
}

// numericResidentID returns a valid resident identity number made of digits only.
func numericResidentID(t *testing.T) string {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		if id := ident.NewResidentID(rng, "110101", time.Date(1975, 1, 2, 0, 0, 0, 0, time.UTC), false); !strings.ContainsRune(id, 'X') {
			return id
		}
	}
	t.Fatal("no numeric resident id")
	return ""
}

func TestCheckpoints(t *testing.T) {
	f := newFixture(t, 5)
	if _, err := f.log.Checkpoint(ctx); !errors.Is(err, audit.ErrEmpty) {
		t.Errorf("Checkpoint of an empty log: %v", err)
	}
	recs := f.fill(t, 12)
	cp, ok, err := f.log.LatestCheckpoint(ctx)
	if err != nil || !ok || cp.Seq != 10 || cp.Hash != recs[9].Hash || !cp.Verify(f.id.Public()) {
		t.Fatalf("latest checkpoint %+v, %v, %v", cp, ok, err)
	}
	other, _ := keys.NewIdentity(keys.RoleEnclave, "other")
	if cp.Verify(other.Public()) {
		t.Error("checkpoint verifies under another identity")
	}
	forged := cp
	forged.Seq = 11
	if forged.Verify(f.id.Public()) {
		t.Error("checkpoint verifies for another seq")
	}
	cp12, err := f.log.Checkpoint(ctx)
	if err != nil || cp12.Seq != 12 || cp12.Hash != recs[11].Hash || !cp12.Verify(f.id.Public()) {
		t.Fatalf("on-demand checkpoint %+v, %v", cp12, err)
	}
	again, err := f.log.Checkpoint(ctx)
	if err != nil || again.Time != cp12.Time || string(again.Signature) != string(cp12.Signature) {
		t.Errorf("second checkpoint of the same head is a new one: %v", err)
	}
	rep := f.verify(t)
	if !rep.OK() || rep.Checkpoints != 3 || rep.LatestCheckpoint == nil || rep.LatestCheckpoint.Seq != 12 || rep.Anchored != 12 || rep.Unanchored != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestAppendTxFollowsTheCallersTransaction(t *testing.T) {
	f := newFixture(t, -1)
	boom := errors.New("the change failed")
	err := f.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := f.log.AppendTx(ctx, tx, event(1)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if h, _ := f.log.Head(ctx); h.Seq != 0 {
		t.Fatalf("event kept after the caller rolled back: head %d", h.Seq)
	}
	err = f.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := f.log.AppendTx(ctx, tx, event(1))
		return err
	})
	if h, _ := f.log.Head(ctx); err != nil || h.Seq != 1 {
		t.Fatalf("committed event: head %d, %v", h.Seq, err)
	}
}

func TestAppendUnderFaults(t *testing.T) {
	f := newFixture(t, 2)
	faulty := storetest.NewFaulty(f.db)
	l := audit.New(faulty, f.id, f.opts)
	faulty.Fail(1, storetest.FailBegin)
	faulty.Fail(2, storetest.FailCommit)
	faulty.Fail(4, storetest.FailAfterCommit)
	for i := range 6 {
		_, err := l.Append(ctx, event(i))
		if wantErr := i == 0 || i == 1 || i == 3; (err != nil) != wantErr || (err != nil && !errors.Is(err, storetest.ErrInjected)) {
			t.Errorf("append %d: %v", i, err)
		}
	}
	// Begin and commit failures kept nothing; the lost commit outcome kept its record.
	h, err := l.Head(ctx)
	if err != nil || h.Seq != 4 {
		t.Errorf("head %d, %v; want 4", h.Seq, err)
	}
	rep := f.verify(t)
	if !rep.OK() || rep.Checkpoints != 2 {
		t.Errorf("report %+v", rep)
	}
}

func TestRecordsAreAppendOnly(t *testing.T) {
	f := newFixture(t, 1)
	f.fill(t, 2)
	for _, q := range []string{
		`UPDATE audit_records SET actor = 'x' WHERE seq = 1`,
		`DELETE FROM audit_records WHERE seq = 2`,
		`UPDATE audit_checkpoints SET time_ns = 0`,
		`DELETE FROM audit_checkpoints`,
	} {
		err := f.db.Tx(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(q); return err })
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestConcurrentAppends(t *testing.T) {
	f := newFixture(t, 7)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := f.log.Append(ctx, event(w*100+i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	rep := f.verify(t)
	if !rep.OK() || rep.Records != 40 || rep.Checkpoints != 5 {
		t.Errorf("report %+v", rep)
	}
}

func BenchmarkAppend(b *testing.B) {
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), store.FileName), audit.Migrations)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	l := audit.New(db, enclaveID(b), audit.Options{CheckpointEvery: 100})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := l.Append(ctx, event(i)); err != nil {
			b.Fatal(err)
		}
	}
}
