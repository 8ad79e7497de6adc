package memory

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.ResponseStore = (*ResponseStore)(nil)

// ResponseStore keeps stored responses in a map.
type ResponseStore struct {
	mu   sync.Mutex
	byID map[string]domain.StoredResponse
}

// NewResponseStore returns an empty response store.
func NewResponseStore() *ResponseStore {
	return &ResponseStore{byID: map[string]domain.StoredResponse{}}
}

// SaveResponse stores r; an ID already stored is a domain.KindInvalid error.
func (s *ResponseStore) SaveResponse(_ context.Context, r domain.StoredResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[r.ID]; ok {
		return domain.InvalidParam("id", "a response with id %q is already stored", r.ID)
	}
	s.byID[r.ID] = cloneResponse(r)
	return nil
}

// Response returns owner's unexpired response id; an expired one it finds
// is deleted.
func (s *ResponseStore) Response(_ context.Context, owner, id string, now time.Time) (domain.StoredResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.find(owner, id, now)
	if err != nil {
		return domain.StoredResponse{}, err
	}
	return cloneResponse(r), nil
}

// DeleteResponse deletes owner's unexpired response id.
func (s *ResponseStore) DeleteResponse(_ context.Context, owner, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.find(owner, id, now); err != nil {
		return err
	}
	delete(s.byID, id)
	return nil
}

// DeleteExpiredResponses deletes at most limit responses expired at now.
func (s *ResponseStore) DeleteExpiredResponses(_ context.Context, now time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.byID {
		if n >= limit {
			break
		}
		if !now.Before(r.ExpiresAt) {
			delete(s.byID, id)
			n++
		}
	}
	return n, nil
}

// Len returns how many responses are stored, expired ones included.
func (s *ResponseStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// find returns owner's unexpired response id; s.mu is held.
func (s *ResponseStore) find(owner, id string, now time.Time) (domain.StoredResponse, error) {
	r, ok := s.byID[id]
	if ok && !now.Before(r.ExpiresAt) {
		delete(s.byID, id)
		ok = false
	}
	if !ok || r.Owner != owner {
		return domain.StoredResponse{}, domain.Errorf(domain.KindNotFound, "no response with id %q", id)
	}
	return r, nil
}

// cloneResponse copies r's slices, so that the store and its callers share none.
func cloneResponse(r domain.StoredResponse) domain.StoredResponse {
	r.Input = slices.Clone(r.Input)
	for i := range r.Input {
		r.Input[i].Blocks = slices.Clone(r.Input[i].Blocks)
	}
	r.Output = slices.Clone(r.Output)
	r.Settings = slices.Clone(r.Settings)
	return r
}
