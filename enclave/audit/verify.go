package audit

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"insitu/enclave/keys"
)

// Problem names what Verify found wrong.
type Problem string

const (
	// ProblemModified: a record's content no longer gives its hash.
	ProblemModified Problem = "modified"
	// ProblemDeleted: records of the chain are missing (Seq is the first, Count how many).
	ProblemDeleted Problem = "deleted"
	// ProblemInserted: a record that is not part of the chain (Seq is its seq as stored).
	ProblemInserted Problem = "inserted"
	// ProblemReordered: a record is stored after a record that follows it in the chain.
	ProblemReordered Problem = "reordered"
	// ProblemRenumbered: records are stored under another seq than the one they were written with.
	ProblemRenumbered Problem = "renumbered"
	// ProblemChainBreak: a record does not link to the record before it: that one was replaced by
	// a record with a recomputed hash, or the chain was rewritten from there.
	ProblemChainBreak Problem = "chain_break"
	// ProblemTruncated: the database's own signed checkpoint names records past its last one.
	ProblemTruncated Problem = "truncated"
	// ProblemRollback: a head issued earlier (a receipt's, or a checkpoint already seen) lies past
	// the database's last record: the database is an older copy, or its tail was removed with its
	// checkpoints.
	ProblemRollback Problem = "rollback"
	// ProblemFork: a head issued earlier names a record the database holds differently: the chain
	// was rewritten from before it, or an older copy was restored and appended to.
	ProblemFork Problem = "fork"
	// ProblemBadSignature: a checkpoint's signature is not the enclave's.
	ProblemBadSignature Problem = "bad_signature"
	// ProblemCheckpointMismatch: a validly signed checkpoint names another hash than the record's.
	ProblemCheckpointMismatch Problem = "checkpoint_mismatch"
)

// Finding is one thing wrong with the log.
type Finding struct {
	Seq     int64   `json:"seq"`
	Count   int64   `json:"count"` // records concerned from Seq on
	Problem Problem `json:"problem"`
	Detail  string  `json:"detail"`
}

func (f Finding) String() string {
	if f.Count > 1 {
		return fmt.Sprintf("seq %d-%d: %s: %s", f.Seq, f.Seq+f.Count-1, f.Problem, f.Detail)
	}
	return fmt.Sprintf("seq %d: %s: %s", f.Seq, f.Problem, f.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	Records     int64 `json:"records"`     // rows read
	Head        Head  `json:"head"`        // the last record of the chain
	Checkpoints int   `json:"checkpoints"` // checkpoint rows read
	// LatestCheckpoint is the validly signed checkpoint with the highest seq, if any.
	LatestCheckpoint *Checkpoint `json:"latest_checkpoint,omitempty"`
	// Anchored is the highest seq whose hash a valid checkpoint or a known head vouches for;
	// Unanchored counts the records after it, which Verify cannot tell from a rewrite.
	Anchored   int64     `json:"anchored"`
	Unanchored int64     `json:"unanchored"`
	Findings   []Finding `json:"findings"`
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

// ErrTampered is wrapped by *VerifyError.
var ErrTampered = errors.New("audit log fails verification")

// VerifyError lists the findings of a failed verification.
type VerifyError struct{ Findings []Finding }

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "audit log fails verification: %d finding(s)", len(e.Findings))
	for i, f := range e.Findings {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Findings)-5)
			break
		}
		b.WriteString("; ")
		b.WriteString(f.String())
	}
	return b.String()
}

// Unwrap returns ErrTampered.
func (e *VerifyError) Unwrap() error { return ErrTampered }

// Err returns nil when the report is OK, else a *VerifyError.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	return &VerifyError{Findings: r.Findings}
}

// Reader is what Verify reads the log from; *store.DB is one.
type Reader interface {
	ReadTx(ctx context.Context, fn func(*sql.Tx) error) error
}

// Verify checks the log in db: every record's hash, the links between records, their order and
// numbering, every checkpoint's signature by enclave and its hash, and each known head — heads
// carried by receipts already issued and checkpoints seen before — against the records. It returns
// an error only when the database cannot be read; what is wrong with the log is in
// Report.Findings. It reads one consistent snapshot and holds every record's hashes in memory
// (about 100 bytes a record).
func Verify(ctx context.Context, db Reader, enclave keys.PublicIdentity, known []Head) (*Report, error) {
	var rows []vrow
	var cps []Checkpoint
	err := db.ReadTx(ctx, func(tx *sql.Tx) error {
		rs, err := tx.QueryContext(ctx, `SELECT seq, time_ns, kind, actor, subject, payload, prev_hash, hash FROM audit_records ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			if len(rows)%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			s, err := scanRecord(rs)
			if err != nil {
				return err
			}
			rows = append(rows, newVRow(s))
		}
		if err := rs.Err(); err != nil {
			return err
		}
		crs, err := tx.QueryContext(ctx, `SELECT seq, hash, time_ns, signature FROM audit_checkpoints ORDER BY seq`)
		if err != nil {
			return err
		}
		cps, err = scanCheckpoints(crs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: read the log: %w", err)
	}
	v := &verifier{rows: rows}
	v.resolve()
	v.classify()
	rep := &Report{Records: int64(len(rows)), Checkpoints: len(cps)}
	if v.maxPresent > 0 {
		rep.Head = Head{Seq: v.maxPresent, Hash: v.rows[v.present[v.maxPresent]].hash}
	}
	v.checkAnchors(rep, enclave, cps, known)
	if rep.Anchored < v.maxPresent {
		rep.Unanchored = v.maxPresent - rep.Anchored
	}
	slices.SortStableFunc(v.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Problem, b.Problem))
	})
	rep.Findings = v.findings
	return rep, nil
}

// States of a row while the verifier works out which seq it was written with.
const (
	unresolved uint8 = iota
	resolved         // orig is the seq the row's hash was computed with
	failed           // no seq gives the row's hash
	visiting         // on the resolution stack
)

// vrow is a stored row as the verifier sees it.
type vrow struct {
	stored     int64 // seq as stored
	hash, prev Digest
	orig       int64 // seq the hash was computed with, once resolved
	state      uint8
	direct     bool    // the hash matches at the stored seq
	rec        *Record // content, kept only for rows that do not match at their stored seq
}

func newVRow(s scanned) vrow {
	r := vrow{stored: s.Seq, hash: s.Hash, prev: s.PrevHash}
	switch {
	case s.malformed != "":
		r.state = failed
	case s.ComputeHash() == s.Hash:
		r.direct, r.orig, r.state = true, s.Seq, resolved
	default:
		rec := s.Record
		r.rec = &rec
	}
	return r
}

// windowSearch bounds how far from its stored seq a row whose predecessor is gone is looked for,
// and searchBudget the hashes spent on such searches in one Verify.
const (
	windowSearch = 256
	searchBudget = 1 << 20
)

type verifier struct {
	rows     []vrow
	byHash   map[Digest][]int
	budget   int
	genuine  []int         // rows of the chain, in stored order
	present  map[int64]int // orig seq → row (genuine or modified)
	modified map[int]int64 // failed rows taken as modified records → their seq
	// maxPresent is the highest seq present.
	maxPresent int64
	findings   []Finding
}

func (v *verifier) add(seq, count int64, p Problem, format string, args ...any) {
	v.findings = append(v.findings, Finding{Seq: seq, Count: count, Problem: p, Detail: fmt.Sprintf(format, args...)})
}

// validAt reports whether row i's content hashes to its stored hash under seq.
func (v *verifier) validAt(i int, seq int64) bool {
	r := *v.rows[i].rec
	r.Seq = seq
	return r.ComputeHash() == v.rows[i].hash
}

// resolve finds, for every row that does not match at its stored seq, the seq it was written with:
// one more than the seq of the row its prev_hash names, or, when that row is gone, a seq near the
// stored one.
func (v *verifier) resolve() {
	need := false
	for i := range v.rows {
		if v.rows[i].state == unresolved {
			need = true
		}
	}
	if !need {
		return
	}
	v.byHash = make(map[Digest][]int, len(v.rows))
	for i := range v.rows {
		v.byHash[v.rows[i].hash] = append(v.byHash[v.rows[i].hash], i)
	}
	v.budget = searchBudget
	for i := range v.rows {
		if v.rows[i].state != unresolved {
			continue
		}
		stack := []int{i}
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			r := &v.rows[j]
			if r.state == resolved || r.state == failed {
				stack = stack[:len(stack)-1]
				continue
			}
			r.state = visiting
			var base int64
			if r.prev != (Digest{}) {
				k := v.predecessor(j)
				switch {
				case k < 0:
					v.search(j)
					stack = stack[:len(stack)-1]
					continue
				case v.rows[k].state == unresolved:
					stack = append(stack, k)
					continue
				case v.rows[k].state != resolved: // failed, or visiting: a cycle of links
					r.state = failed
					stack = stack[:len(stack)-1]
					continue
				}
				base = v.rows[k].orig
			}
			if cand := base + 1; cand != r.stored && v.validAt(j, cand) {
				r.orig, r.state = cand, resolved
			} else {
				r.state = failed
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// predecessor returns the row whose hash is row j's prev_hash, preferring a resolved one, or -1.
func (v *verifier) predecessor(j int) int {
	k := -1
	for _, c := range v.byHash[v.rows[j].prev] {
		if c == j {
			continue
		}
		if v.rows[c].state == resolved {
			return c
		}
		if k < 0 {
			k = c
		}
	}
	return k
}

// search looks for the seq of row j, whose predecessor is gone, near its stored seq.
func (v *verifier) search(j int) {
	r := &v.rows[j]
	r.state = failed
	for d := int64(1); d <= windowSearch && v.budget > 0; d++ {
		for _, cand := range []int64{r.stored + d, r.stored - d} {
			v.budget--
			if cand >= 1 && v.validAt(j, cand) {
				r.orig, r.state = cand, resolved
				return
			}
		}
	}
}

// classify picks the chain's rows among the resolved ones and reports insertions, modifications,
// deletions, reordering, renumbering and broken links.
func (v *verifier) classify() {
	byOrig := map[int64][]int{}
	for i := range v.rows {
		if v.rows[i].state == resolved {
			byOrig[v.rows[i].orig] = append(byOrig[v.rows[i].orig], i)
		}
	}
	isGenuine := make([]bool, len(v.rows))
	for o, cands := range byOrig {
		g := cands[0]
		if len(cands) > 1 {
			g = v.pickGenuine(o, cands, byOrig[o+1])
		}
		isGenuine[g] = true
		for _, c := range cands {
			if c != g {
				v.add(v.rows[c].stored, 1, ProblemInserted, "stored record %d repeats seq %d, which another record holds in the chain", v.rows[c].stored, o)
			}
		}
	}
	v.present = map[int64]int{}
	v.modified = map[int]int64{}
	// Failed rows between two rows of the chain stand for the records missing between them, in
	// order; any beyond those were inserted.
	var run []int
	prevOrig := int64(0)
	flush := func(nextOrig int64, atEnd bool) {
		gap := int64(len(run))
		if !atEnd {
			gap = max(nextOrig-prevOrig-1, 0)
		}
		for n, i := range run {
			if int64(n) < gap {
				o := prevOrig + int64(n) + 1
				v.modified[i] = o
				v.present[o] = i
				v.add(o, 1, ProblemModified, "record %d does not give its hash: its content was changed", o)
			} else {
				v.add(v.rows[i].stored, 1, ProblemInserted, "stored record %d is not part of the chain", v.rows[i].stored)
			}
		}
		run = run[:0]
	}
	for i := range v.rows {
		switch {
		case isGenuine[i]:
			flush(v.rows[i].orig, false)
			v.genuine = append(v.genuine, i)
			v.present[v.rows[i].orig] = i
			prevOrig = max(prevOrig, v.rows[i].orig)
		case v.rows[i].state == failed:
			run = append(run, i)
		}
	}
	flush(0, true)
	for o := range v.present {
		v.maxPresent = max(v.maxPresent, o)
	}
	structural := false
	for _, f := range v.findings {
		structural = structural || f.Problem == ProblemInserted
	}
	// Deleted: seqs up to the highest present that no row holds.
	renumbered := 0
	for _, i := range v.genuine {
		if v.rows[i].stored != v.rows[i].orig {
			renumbered++
		}
	}
	for o := int64(1); o <= v.maxPresent; o++ {
		if _, ok := v.present[o]; ok {
			continue
		}
		end := o
		for end+1 <= v.maxPresent {
			if _, ok := v.present[end+1]; ok {
				break
			}
			end++
		}
		detail := "missing from the chain"
		if renumbered > 0 {
			detail += "; later records were renumbered to close the gap"
		}
		v.add(o, end-o+1, ProblemDeleted, "%s", detail)
		structural = true
		o = end
	}
	// Reordered: a record stored after one that follows it.
	var maxSoFar int64
	for i := range v.rows {
		o, mod := v.modified[i]
		if !isGenuine[i] && !mod {
			continue
		}
		if !mod {
			o = v.rows[i].orig
		}
		if o < maxSoFar {
			v.add(o, 1, ProblemReordered, "record %d is stored after record %d", o, maxSoFar)
			structural = true
		}
		maxSoFar = max(maxSoFar, o)
	}
	if !structural && renumbered > 0 {
		for _, i := range v.genuine {
			if r := v.rows[i]; r.stored != r.orig {
				v.add(r.orig, int64(renumbered), ProblemRenumbered, "record %d is stored as seq %d (%d records renumbered)", r.orig, r.stored, renumbered)
				break
			}
		}
	}
	// Links: a record that matches its stored seq must name the hash of the record before it.
	for _, i := range v.genuine {
		r := v.rows[i]
		if !r.direct {
			continue // resolved through its link
		}
		var want Digest
		if r.orig > 1 {
			p, ok := v.present[r.orig-1]
			if !ok {
				continue // reported as deleted
			}
			want = v.rows[p].hash
		}
		if r.prev != want {
			v.add(r.orig, 1, ProblemChainBreak, "record %d does not link to record %d as stored: that record was replaced with a recomputed hash, or the chain rewritten", r.orig, r.orig-1)
		}
	}
}

// pickGenuine chooses, among rows claiming seq o, the one the next record links to, preferring one
// stored at seq o, then the first stored.
func (v *verifier) pickGenuine(o int64, cands, next []int) int {
	score := func(c int) int {
		s := 0
		for _, n := range next {
			if v.rows[n].prev == v.rows[c].hash {
				s += 2
				break
			}
		}
		if v.rows[c].stored == o {
			s++
		}
		return s
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if score(c) > score(best) {
			best = c
		}
	}
	return best
}

// checkAnchors verifies the checkpoints and the known heads against the chain.
func (v *verifier) checkAnchors(rep *Report, enclave keys.PublicIdentity, cps []Checkpoint, known []Head) {
	var maxSigned int64
	for i := range cps {
		cp := &cps[i]
		if !cp.Verify(enclave) {
			v.add(cp.Seq, 1, ProblemBadSignature, "checkpoint %d is not signed by the enclave %s", cp.Seq, enclave.Fingerprint())
			continue
		}
		rep.LatestCheckpoint = cp
		maxSigned = max(maxSigned, cp.Seq)
		j, ok := v.present[cp.Seq]
		switch {
		case !ok:
			// Past the end (reported below) or deleted (reported already).
		case v.rows[j].hash != cp.Hash:
			v.add(cp.Seq, 1, ProblemCheckpointMismatch, "record %d has hash %s, the enclave signed %s at %s",
				cp.Seq, short(v.rows[j].hash), short(cp.Hash), cp.Time.Format("2006-01-02T15:04:05Z"))
		case !v.isModified(j):
			rep.Anchored = max(rep.Anchored, cp.Seq)
		}
	}
	if maxSigned > v.maxPresent {
		v.add(v.maxPresent+1, maxSigned-v.maxPresent, ProblemTruncated,
			"the log ends at seq %d but the enclave signed a checkpoint at seq %d", v.maxPresent, maxSigned)
	}
	for _, h := range known {
		if h.Seq <= 0 {
			continue
		}
		if h.Seq > v.maxPresent {
			v.add(h.Seq, 1, ProblemRollback, "a head at seq %d (%s) was issued but the log ends at seq %d: the database is an older copy or its tail was removed",
				h.Seq, short(h.Hash), v.maxPresent)
			continue
		}
		j, ok := v.present[h.Seq]
		switch {
		case !ok:
		case v.rows[j].hash != h.Hash:
			v.add(h.Seq, 1, ProblemFork, "record %d has hash %s, a head issued earlier names %s: the log was rewritten or restored from an older copy and appended to",
				h.Seq, short(v.rows[j].hash), short(h.Hash))
		case !v.isModified(j):
			rep.Anchored = max(rep.Anchored, h.Seq)
		}
	}
}

func (v *verifier) isModified(i int) bool {
	_, ok := v.modified[i]
	return ok
}

func short(d Digest) string { return d.String()[:16] }
