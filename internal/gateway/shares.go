package gateway

import (
	"cmp"
	"fmt"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// shares bounds how many of the concurrency slots one key and one team may
// hold at once, so that one caller cannot starve the rest.
type shares struct {
	mu              sync.Mutex
	perKey, perTeam int
	keys, teams     map[string]int // calls in flight
}

func newShares(perKey, perTeam int) *shares {
	return &shares{perKey: perKey, perTeam: perTeam, keys: make(map[string]int), teams: make(map[string]int)}
}

// take counts one more call in flight for c's key and team, or refuses it
// when either is at its share; a caller without a team has only its key's.
// A key's own MaxConcurrent, when set, replaces the per-key share.
func (s *shares) take(c domain.Caller) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if share := cmp.Or(c.MaxConcurrent, s.perKey); s.keys[c.KeyID] >= share {
		return atShare("key_concurrency_limit", fmt.Sprintf("this API key already has %d calls in flight, its limit (its own max_concurrent, else MAX_CONCURRENT_PER_KEY); retry when one ends", share))
	}
	if c.Team != "" && s.teams[c.Team] >= s.perTeam {
		return atShare("team_concurrency_limit", fmt.Sprintf("team %q already has %d calls in flight, its limit (MAX_CONCURRENT_PER_TEAM); retry when one ends", c.Team, s.perTeam))
	}
	s.keys[c.KeyID]++
	if c.Team != "" {
		s.teams[c.Team]++
	}
	return nil
}

// give ends one call in flight counted by take.
func (s *shares) give(c domain.Caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	decrement(s.keys, c.KeyID)
	if c.Team != "" {
		decrement(s.teams, c.Team)
	}
}

func decrement(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

func atShare(code, msg string) error {
	return &domain.Error{Kind: domain.KindRateLimited, Code: code, Message: msg, RetryAfter: time.Second}
}
