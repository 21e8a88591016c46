package connectors

import (
	"sync"

	"github.com/axiomhq/hyperloglog"
)

// exactDistinct is the number of distinct values a column counts exactly before it switches to a
// HyperLogLog sketch.
const exactDistinct = 2048

// distinct counts the distinct values of one column as seen by one worker: exactly (a set of 64-bit
// value hashes) up to exactDistinct values, then approximately with a dense HyperLogLog sketch of
// precision 14. Both only grow by set union and register maximum, so merging the counters of all
// workers gives the same result whichever worker saw which rows.
type distinct struct {
	set   map[uint64]struct{}
	dense *hyperloglog.Sketch
}

func (d *distinct) add(h uint64) {
	if d.dense != nil {
		d.dense.InsertHash(h)
		return
	}
	if d.set == nil {
		d.set = make(map[uint64]struct{})
	}
	if _, ok := d.set[h]; ok {
		return
	}
	d.set[h] = struct{}{}
	if len(d.set) > exactDistinct {
		d.dense = hyperloglog.NewNoSparse()
		for k := range d.set {
			d.dense.InsertHash(k)
		}
		d.set = nil
	}
}

// workerStats are the distinct counters of one conversion worker, one per mapped field.
type workerStats struct {
	mu   sync.Mutex
	cols []distinct
}

// addHashes records the valid values of a converted chunk.
func (ws *workerStats) addHashes(cols []*colBuf) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for j, c := range cols {
		d := &ws.cols[j]
		for _, h := range c.hash {
			d.add(h)
		}
	}
}

// mergedDistinct returns the distinct count of field j over all workers.
func mergedDistinct(all []*workerStats, j int) uint64 {
	union := map[uint64]struct{}{}
	var dense *hyperloglog.Sketch
	for _, ws := range all {
		ws.mu.Lock()
		d := &ws.cols[j]
		if d.dense != nil {
			if dense == nil {
				dense = hyperloglog.NewNoSparse()
			}
			dense.Merge(d.dense)
		}
		for k := range d.set {
			union[k] = struct{}{}
		}
		ws.mu.Unlock()
	}
	if dense == nil && len(union) <= exactDistinct {
		return uint64(len(union))
	}
	if dense == nil {
		dense = hyperloglog.NewNoSparse()
	}
	for k := range union {
		dense.InsertHash(k)
	}
	return dense.Estimate()
}
