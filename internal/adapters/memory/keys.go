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
	"time"

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

// storedKey is a key's caller and whether the key is revoked. A secret that
// a rotation replaced has its own entry, valid until the grace ends.
type storedKey struct {
	caller     domain.Caller
	revoked    bool
	validUntil time.Time // zero for the key's current secret
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

// Rotate gives the key with this ID a new secret and returns it; the
// replaced secret keeps working for grace, and one replaced before stops.
func (s *KeyStore) Rotate(keyID string, grace time.Duration) (string, error) {
	secret, err := domain.NewKeySecret()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var current string
	for h, k := range s.byHash {
		switch {
		case k.caller.KeyID != keyID:
		case !k.validUntil.IsZero():
			delete(s.byHash, h)
		default:
			current = h
		}
	}
	if current == "" {
		return "", &domain.Error{Kind: domain.KindNotFound, Code: "key_not_found", Param: "id",
			Message: fmt.Sprintf("there is no API key with ID %q", keyID)}
	}
	k := s.byHash[current]
	s.byHash[domain.HashKey(secret)] = &storedKey{caller: k.caller, revoked: k.revoked}
	k.validUntil = time.Now().Add(grace)
	return secret, nil
}

// CallerByKeyHash returns the caller of the active key with this hash, or a
// domain.KindUnauthenticated error for an unknown, revoked or expired key
// or for a replaced secret whose grace has ended.
func (s *KeyStore) CallerByKeyHash(_ context.Context, hash string) (domain.Caller, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	k, ok := s.byHash[hash]
	if !ok || k.revoked || (!k.validUntil.IsZero() && !now.Before(k.validUntil)) {
		return domain.Caller{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_api_key", Message: "invalid API key"}
	}
	if err := k.caller.CheckKeyActive(now); err != nil {
		return domain.Caller{}, err
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
