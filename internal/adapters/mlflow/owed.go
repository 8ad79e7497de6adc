package mlflow

import (
	"sync"

	"github.com/tidygate/tidygate/internal/ports"
)

// owed are the settlements journaled with their calls' records (kindOwes)
// and not yet acknowledged: those of this process's calls, which the
// settler is applying, and those an earlier process left, found at Open.
// The journal keeps each such record, delivered or not, until its
// acknowledgement is committed.
type owed struct {
	mu   sync.Mutex
	seqs map[string]uint64  // the journal's sequence number of each owed record, by reservation id
	left []ports.Settlement // an earlier process's, found at Open
}

func newOwed() *owed { return &owed{seqs: map[string]uint64{}} }

func (o *owed) add(id string, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seqs[id] = seq
}

// take forgets the settlements of the reservations ids and returns the
// sequence numbers of their records; ids it does not know are skipped.
func (o *owed) take(ids []string) []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	seqs := make([]uint64, 0, len(ids))
	for _, id := range ids {
		if seq, ok := o.seqs[id]; ok {
			seqs = append(seqs, seq)
			delete(o.seqs, id)
		}
	}
	return seqs
}

// unacknowledged returns the earlier process's settlements not
// acknowledged since.
func (o *owed) unacknowledged() []ports.Settlement {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []ports.Settlement
	for _, s := range o.left {
		if _, ok := o.seqs[s.ReservationID]; ok {
			out = append(out, s)
		}
	}
	return out
}

// scan reads the owed records an earlier process left in the journal,
// delivered or not. A record that cannot be read whole or decoded is
// skipped here (the writer sets an undelivered one aside); its settlement
// is then left to the ledger's expiry sweep.
func (o *owed) scan(j *journal) error {
	entries, err := j.readOwed()
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range entries {
		if e.damaged != nil {
			continue
		}
		c, err := decodeRecord(e.value)
		if err != nil || c.owed == nil {
			continue
		}
		o.left = append(o.left, *c.owed)
		o.seqs[c.owed.ReservationID] = keySeq(e.key)
	}
	return nil
}
