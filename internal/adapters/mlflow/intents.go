package mlflow

import (
	"math"
	"sync"

	"github.com/tidygate/tidygate/internal/domain"
)

// intents are the calls whose intent is journaled and whose record is not
// yet: calls in flight, and those an earlier process left unfinished. The
// writer skips an intent while its call is open, and removes it from the
// journal with the record that supersedes it; it never delivers one.
type intents struct {
	mu   sync.Mutex
	open map[string]bool
	left []domain.CallIntent // an earlier process's, found at Open
}

func newIntents() *intents { return &intents{open: map[string]bool{}} }

func (s *intents) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open[id] = true
}

func (s *intents) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, id)
}

// count returns how many intents are open: how many journal entries the
// writer may have to read past.
func (s *intents) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// unfinished returns the earlier process's intents still without a record.
func (s *intents) unfinished() []domain.CallIntent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.CallIntent
	for _, i := range s.left {
		if s.open[i.RequestID] {
			out = append(out, i)
		}
	}
	return out
}

// scan reads what an earlier process left in the journal and keeps the
// intents that no record there supersedes: that process stopped while
// their calls were in flight.
func (s *intents) scan(j *journal) error {
	entries, err := j.read(j.len()+1, math.MaxInt)
	if err != nil {
		return err
	}
	recorded := map[string]bool{}
	var found []domain.CallIntent
	for _, e := range entries {
		if e.damaged != nil {
			continue // the writer sets it aside
		}
		// A call's record is read only as far as its request id.
		h, ok := decodeHead(e.value)
		switch {
		case !ok: // the writer sets it aside
		case h.Kind != intentKind:
			recorded[h.RequestID] = true
		default:
			if c, err := decodeRecord(e.value); err == nil && c.intent != nil {
				found = append(found, *c.intent)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range found {
		if !recorded[i.RequestID] {
			s.left = append(s.left, i)
			s.open[i.RequestID] = true
		}
	}
	return nil
}
