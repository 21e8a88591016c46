package audit_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"insitu/enclave/audit"
	"insitu/enclave/keys"
	"insitu/enclave/store"
)

// tamper closes the log's database, edits the file with raw SQL as an attacker with write access
// would (dropping the append-only triggers first), and opens it again.
func (f *fixture) tamper(t *testing.T, edit func(raw *sql.DB)) {
	t.Helper()
	f.db.Close()
	raw, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []string{"audit_records_no_update", "audit_records_no_delete", "audit_checkpoints_no_update", "audit_checkpoints_no_delete"} {
		mustExec(t, raw, "DROP TRIGGER "+tr)
	}
	edit(raw)
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	f.open(t)
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// forge returns a record with a hash computed as the enclave would, as an attacker who knows the
// encoding can.
func forge(seq int64, prev audit.Digest, payload string) audit.Record {
	r := audit.Record{Seq: seq, Time: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), Kind: audit.KindRelease, Actor: "bank-b",
		Subject: "job-forged", Payload: []byte(payload), PrevHash: prev}
	r.Hash = r.ComputeHash()
	return r
}

func insert(t *testing.T, raw *sql.DB, r audit.Record) {
	t.Helper()
	mustExec(t, raw, `INSERT INTO audit_records (seq, time_ns, kind, actor, subject, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.Time.UnixNano(), string(r.Kind), r.Actor, r.Subject, string(r.Payload), r.PrevHash[:], r.Hash[:])
}

// shift moves the records from seq on by d (positive or negative) without primary key clashes.
func shift(t *testing.T, raw *sql.DB, from, d int64) {
	mustExec(t, raw, `UPDATE audit_records SET seq = seq + 100000 WHERE seq >= ?`, from)
	mustExec(t, raw, `UPDATE audit_records SET seq = seq - 100000 + ? WHERE seq >= 100000`, d)
}

type finding struct {
	seq     int64
	problem audit.Problem
}

func findings(rep *audit.Report) []finding {
	var out []finding
	for _, f := range rep.Findings {
		out = append(out, finding{f.Seq, f.Problem})
	}
	return out
}

func TestVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, raw *sql.DB, recs []audit.Record)
		known func(recs []audit.Record) []audit.Head
		want  []finding
	}{{
		name: "modified payload",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `UPDATE audit_records SET payload = '{"rows":0}' WHERE seq = 15`)
		},
		want: []finding{{15, audit.ProblemModified}},
	}, {
		name: "modified first record's actor",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `UPDATE audit_records SET actor = 'bank-b' WHERE seq = 1`)
		},
		want: []finding{{1, audit.ProblemModified}},
	}, {
		name: "modified time",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `UPDATE audit_records SET time_ns = time_ns - 3600000000000 WHERE seq = 30`)
		},
		want: []finding{{30, audit.ProblemModified}},
	}, {
		name: "modified and its hash recomputed",
		edit: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
			r := forge(15, recs[13].Hash, `{"rows":0}`)
			mustExec(t, raw, `DELETE FROM audit_records WHERE seq = 15`)
			insert(t, raw, r)
		},
		want: []finding{{16, audit.ProblemChainBreak}},
	}, {
		name: "chain recomputed from a modified record on",
		edit: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
			mustExec(t, raw, `DELETE FROM audit_records WHERE seq >= 15`)
			prev := recs[13].Hash
			for seq := int64(15); seq <= 30; seq++ {
				r := forge(seq, prev, fmt.Sprintf(`{"rows":%d}`, seq))
				insert(t, raw, r)
				prev = r.Hash
			}
		},
		want: []finding{{20, audit.ProblemCheckpointMismatch}, {30, audit.ProblemCheckpointMismatch}},
	}, {
		name: "deleted",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `DELETE FROM audit_records WHERE seq = 15`)
		},
		want: []finding{{15, audit.ProblemDeleted}},
	}, {
		name: "deleted and the rest renumbered",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `DELETE FROM audit_records WHERE seq IN (15, 16)`)
			shift(t, raw, 17, -2)
		},
		want: []finding{{15, audit.ProblemDeleted}},
	}, {
		name: "inserted with a valid hash",
		edit: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
			shift(t, raw, 15, 1)
			insert(t, raw, forge(15, recs[13].Hash, `{"rows":1}`))
		},
		want: []finding{{15, audit.ProblemInserted}},
	}, {
		name: "inserted with a made-up hash",
		edit: func(t *testing.T, raw *sql.DB, recs []audit.Record) {
			shift(t, raw, 15, 1)
			r := forge(15, recs[13].Hash, `{"rows":1}`)
			r.Hash[0] ^= 1
			insert(t, raw, r)
		},
		want: []finding{{15, audit.ProblemInserted}},
	}, {
		name: "reordered",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `UPDATE audit_records SET seq = 1000 WHERE seq = 14`)
			mustExec(t, raw, `UPDATE audit_records SET seq = 14 WHERE seq = 15`)
			mustExec(t, raw, `UPDATE audit_records SET seq = 15 WHERE seq = 1000`)
		},
		want: []finding{{14, audit.ProblemReordered}},
	}, {
		name: "renumbered",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			shift(t, raw, 1, 100)
		},
		want: []finding{{1, audit.ProblemRenumbered}},
	}, {
		name: "tail truncated",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `DELETE FROM audit_records WHERE seq >= 26`)
		},
		want: []finding{{26, audit.ProblemTruncated}},
	}, {
		name: "tail truncated with its checkpoint, against a receipt",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			mustExec(t, raw, `DELETE FROM audit_records WHERE seq >= 21`)
			mustExec(t, raw, `DELETE FROM audit_checkpoints WHERE seq >= 21`)
		},
		known: func(recs []audit.Record) []audit.Head { return []audit.Head{recs[24].Head()} },
		want:  []finding{{25, audit.ProblemRollback}},
	}, {
		name: "checkpoint signature replaced",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {
			other, err := keys.NewIdentity(keys.RoleEnclave, "impostor")
			if err != nil {
				t.Fatal(err)
			}
			var cp audit.Checkpoint
			var hash []byte
			var ns int64
			if err := raw.QueryRow(`SELECT hash, time_ns FROM audit_checkpoints WHERE seq = 10`).Scan(&hash, &ns); err != nil {
				t.Fatal(err)
			}
			copy(cp.Hash[:], hash)
			sig, _ := other.Sign(audit.CheckpointMessage(10, cp.Hash, time.Unix(0, ns)), audit.CheckpointContext)
			mustExec(t, raw, `UPDATE audit_checkpoints SET signature = ? WHERE seq = 10`, sig)
		},
		want: []finding{{10, audit.ProblemBadSignature}},
	}, {
		name: "receipt head not in the chain",
		edit: func(t *testing.T, raw *sql.DB, _ []audit.Record) {},
		known: func(recs []audit.Record) []audit.Head {
			h := recs[4].Head()
			h.Hash[3] ^= 0x80
			return []audit.Head{h}
		},
		want: []finding{{5, audit.ProblemFork}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 10)
			recs := f.fill(t, 30)
			if rep := f.verify(t); !rep.OK() {
				t.Fatalf("untouched log: %v", rep.Err())
			}
			f.tamper(t, func(raw *sql.DB) { tc.edit(t, raw, recs) })
			var known []audit.Head
			if tc.known != nil {
				known = tc.known(recs)
			}
			rep := f.verify(t, known...)
			if got := findings(rep); !slices.Equal(got, tc.want) {
				t.Errorf("findings %v, want %v\n%v", got, tc.want, rep.Err())
			}
			if err := rep.Err(); !errors.Is(err, audit.ErrTampered) {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

func TestVerifyFindingDetails(t *testing.T) {
	f := newFixture(t, 10)
	f.fill(t, 30)
	f.tamper(t, func(raw *sql.DB) { mustExec(t, raw, `DELETE FROM audit_records WHERE seq >= 26`) })
	rep := f.verify(t)
	if len(rep.Findings) != 1 || rep.Findings[0].Count != 5 || !strings.Contains(rep.Findings[0].Detail, "ends at seq 25") {
		t.Fatalf("findings %+v", rep.Findings)
	}
	if rep.Head.Seq != 25 || rep.LatestCheckpoint.Seq != 30 || rep.Anchored != 20 || rep.Unanchored != 5 {
		t.Errorf("report %+v", rep)
	}
	if msg := rep.Err().Error(); !strings.Contains(msg, "seq 26-30: truncated") {
		t.Errorf("error %q", msg)
	}
}

// A copy of the database taken earlier and put back in place holds an internally consistent chain;
// only heads issued after the copy was taken reveal it.
func TestVerifyDetectsRollback(t *testing.T) {
	f := newFixture(t, 10)
	f.fill(t, 20)
	snap := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, raw, `VACUUM INTO ?`, snap)
	raw.Close()
	recs := f.fill(t, 10) // seq 21-30; checkpoint at 30
	receipt := recs[4].Head()
	cp, ok, err := f.log.LatestCheckpoint(ctx)
	if err != nil || !ok || cp.Seq != 30 {
		t.Fatalf("checkpoint %+v %v %v", cp, ok, err)
	}
	if rep := f.verify(t, receipt, cp.Head()); !rep.OK() || rep.Anchored != 30 {
		t.Fatalf("before the rollback: %+v", rep)
	}

	restore := func() {
		f.db.Close()
		b, err := os.ReadFile(snap)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(f.path + "-wal")
		os.Remove(f.path + "-shm")
		if err := os.WriteFile(f.path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f.open(t)
	}
	restore()
	if rep := f.verify(t); !rep.OK() || rep.Head.Seq != 20 {
		t.Fatalf("the old copy on its own should verify: %+v", rep)
	}
	rep := f.verify(t, receipt, cp.Head())
	if got, want := findings(rep), []finding{{25, audit.ProblemRollback}, {30, audit.ProblemRollback}}; !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}

	// Appending to the old copy does not hide it: the receipt's record is now another.
	f.fill(t, 15)
	rep = f.verify(t, receipt, cp.Head())
	if got, want := findings(rep), []finding{{25, audit.ProblemFork}, {30, audit.ProblemFork}}; !slices.Equal(got, want) {
		t.Errorf("findings after appending to the old copy %v, want %v", got, want)
	}
}

// What Verify cannot see: records appended after the last anchor by someone who knows the encoding.
// Unanchored says how many records are in that position.
func TestVerifyReportsUnanchoredTail(t *testing.T) {
	f := newFixture(t, 10)
	recs := f.fill(t, 30)
	f.tamper(t, func(raw *sql.DB) { insert(t, raw, forge(31, recs[29].Hash, `{}`)) })
	rep := f.verify(t)
	if !rep.OK() || rep.Anchored != 30 || rep.Unanchored != 1 {
		t.Errorf("report %+v", rep)
	}
}

func TestVerifyEmpty(t *testing.T) {
	f := newFixture(t, 10)
	rep := f.verify(t)
	if !rep.OK() || rep.Records != 0 || rep.Head.Seq != 0 {
		t.Errorf("empty log: %+v", rep)
	}
	rep = f.verify(t, audit.Head{Seq: 3})
	if got := findings(rep); !slices.Equal(got, []finding{{3, audit.ProblemRollback}}) {
		t.Errorf("empty log with a known head: %v", got)
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{10000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			db, err := storeOpen(b)
			if err != nil {
				b.Fatal(err)
			}
			l := audit.New(db, enclaveID(b), audit.Options{CheckpointEvery: 100})
			if err := db.Tx(ctx, func(tx *sql.Tx) error {
				for i := range n {
					if _, err := l.AppendTx(ctx, tx, event(i)); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			pub := enclaveID(b).Public()
			for b.Loop() {
				rep, err := audit.Verify(ctx, db, pub, nil)
				if err != nil || !rep.OK() {
					b.Fatal(err, rep)
				}
			}
		})
	}
}

func storeOpen(b *testing.B) (*store.DB, error) {
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), store.FileName), audit.Migrations)
	if err == nil {
		b.Cleanup(func() { db.Close() })
	}
	return db, err
}
