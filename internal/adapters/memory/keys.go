// Package memory holds in-memory implementations of the ports, for the unit
// tests of the packages that consume them. They keep the ports' contracts
// (the suites in internal/ports/contract run against them), are safe for
// concurrent use, and keep nothing beyond the process.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.KeyStore = (*KeyStore)(nil)

// KeyStore knows the callers behind the keys added to it.
type KeyStore struct {
	mu     sync.Mutex
	byHash map[string]*storedKey
	added  int
}

// storedKey is a key's caller and whether the key is revoked.
type storedKey struct {
	caller  domain.Caller
	revoked bool
}

// NewKeyStore returns an empty key store.
func NewKeyStore() *KeyStore {
	return &KeyStore{byHash: map[string]*storedKey{}}
}

// Add stores an active key with this secret for c, replacing any key with
// the same secret, and returns the key's ID: c.KeyID when set, else a new
// one. Callers get c back as given, budgets included.
func (s *KeyStore) Add(secret string, c domain.Caller) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.added++
	if c.KeyID == "" {
		c.KeyID = fmt.Sprintf("key_%d", s.added)
	}
	s.byHash[domain.HashKey(secret)] = &storedKey{caller: clone(c)}
	return c.KeyID
}

// Revoke revokes the key with this ID. Revoking a revoked key changes
// nothing; an unknown ID is a domain.KindNotFound error.
func (s *KeyStore) Revoke(keyID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, k := range s.byHash {
		if k.caller.KeyID == keyID {
			k.revoked, found = true, true
		}
	}
	if !found {
		return &domain.Error{Kind: domain.KindNotFound, Code: "key_not_found", Param: "id",
			Message: fmt.Sprintf("there is no API key with ID %q", keyID)}
	}
	return nil
}

// CallerByKeyHash returns the caller of the active key with this hash, or a
// domain.KindUnauthenticated error for an unknown or revoked key.
func (s *KeyStore) CallerByKeyHash(_ context.Context, hash string) (domain.Caller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.byHash[hash]
	if !ok || k.revoked {
		return domain.Caller{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_api_key", Message: "invalid API key"}
	}
	return clone(k.caller), nil
}

// clone returns c with slices of its own, so that no caller can change a
// stored key.
func clone(c domain.Caller) domain.Caller {
	c.AllowedModels = slices.Clone(c.AllowedModels)
	c.Budgets = slices.Clone(c.Budgets)
	return c
}
