package scoring

import (
	"context"
	"database/sql"
	"sync"

	"insitu/enclave/audit"
)

// TxStore runs write transactions; *store.DB is one.
type TxStore interface {
	Tx(ctx context.Context, fn func(*sql.Tx) error) error
}

// auditor makes each request's audit record durable before the request is answered. With group
// commit, one goroutine takes every record waiting (up to max) and appends them in one
// transaction: one fsync for all the requests that arrived while the previous commit ran.
type auditor struct {
	db    TxStore
	log   *audit.Log
	group bool
	max   int

	ch   chan *pending
	wg   sync.WaitGroup
	once sync.Once
	mu   sync.RWMutex // held for reading by senders, for writing by close
	shut bool
}

type pending struct {
	ev   audit.Event
	done chan result
}

type result struct {
	rec audit.Record
	err error
}

func newAuditor(db TxStore, log *audit.Log, group bool, max int) *auditor {
	a := &auditor{db: db, log: log, group: group, max: max, ch: make(chan *pending, 4*max)}
	if group {
		a.wg.Add(1)
		go a.run()
	}
	return a
}

// append records ev and returns once it is on disk.
func (a *auditor) append(ctx context.Context, ev audit.Event) (audit.Record, error) {
	if !a.group {
		return a.log.Append(context.WithoutCancel(ctx), ev)
	}
	p := &pending{ev: ev, done: make(chan result, 1)}
	a.mu.RLock()
	if a.shut {
		a.mu.RUnlock()
		return a.log.Append(context.WithoutCancel(ctx), ev)
	}
	a.ch <- p
	a.mu.RUnlock()
	// The record is being written whatever happens to the request: wait for it, so that no answer
	// leaves before its record.
	r := <-p.done
	return r.rec, r.err
}

func (a *auditor) run() {
	defer a.wg.Done()
	for p := range a.ch {
		batch := []*pending{p}
	drain:
		for len(batch) < a.max {
			select {
			case q, ok := <-a.ch:
				if !ok {
					break drain
				}
				batch = append(batch, q)
			default:
				break drain
			}
		}
		a.commit(batch)
	}
}

// commit appends a batch in one transaction; if that fails (one refused event spoils the batch),
// each record is appended on its own so that every request gets its own outcome.
func (a *auditor) commit(batch []*pending) {
	ctx := context.Background()
	recs := make([]audit.Record, len(batch))
	err := a.db.Tx(ctx, func(tx *sql.Tx) error {
		for i, p := range batch {
			r, err := a.log.AppendTx(ctx, tx, p.ev)
			if err != nil {
				return err
			}
			recs[i] = r
		}
		return nil
	})
	if err == nil {
		for i, p := range batch {
			p.done <- result{rec: recs[i]}
		}
		return
	}
	for _, p := range batch {
		r, err := a.log.Append(ctx, p.ev)
		p.done <- result{rec: r, err: err}
	}
}

func (a *auditor) close() {
	a.once.Do(func() {
		a.mu.Lock()
		a.shut = true
		a.mu.Unlock()
		if a.group {
			close(a.ch)
			a.wg.Wait()
		}
	})
}
