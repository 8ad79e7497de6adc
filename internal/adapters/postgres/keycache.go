package postgres

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.KeyStore = (*KeyCache)(nil)

// KeyChannel is the PostgreSQL notification channel on which the triggers
// of migration 0008 announce, in the transaction that makes it, every
// change of what a cached caller carries. A payload names a scope:
// "key:ID" (a key's row changed or went), "user:NAME" or "team:NAME" (a
// budget of that user or team changed); "*" (a table was emptied) and any
// payload this release does not know empty the cache.
const KeyChannel = "tidygate_keys"

// scopeOf returns the payload that names one key, user or team.
func scopeOf(kind domain.ScopeKind, id string) string { return string(kind) + ":" + id }

// DefaultKeyCacheEntries is the most keys a KeyCache holds when its options
// do not say.
const DefaultKeyCacheEntries = 10_000

// KeyCacheOptions configure a KeyCache.
type KeyCacheOptions struct {
	// TTL is the longest an entry is used without reading the key again:
	// the bound on a change whose notification never arrives. It must be
	// positive.
	TTL time.Duration
	// MaxEntries bounds the cache; a key loaded into a full cache takes the
	// place of another. 0 means DefaultKeyCacheEntries.
	MaxEntries int
	// Logger hears of the listener's connections; nil discards.
	Logger *slog.Logger
}

// KeyCache is a KeyStore's CallerByKeyHash answered from memory. Only keys
// that exist and are not revoked are kept (an unknown secret always costs
// a database read, so guessing secrets cannot fill the cache), at most
// MaxEntries of them, each for at most TTL. Whether a kept key may be used
// — its expiry, the end of a rotation's grace — is decided at each use by
// the rule the store itself applies. A change of a key, or of its user's or
// team's budgets, removes what it affects: at once when made through the
// same store, and through KeyChannel when made anywhere else, provided Listen
// is running; while Listen has no connection, nothing is served from memory.
//
// The callers it returns share their slices with the cache; callers must
// not modify them.
type KeyCache struct {
	store  *KeyStore
	ttl    time.Duration
	max    int
	logger *slog.Logger

	mu      sync.Mutex
	entries map[string]cachedKey // by the hash of the secret that found them
	// gen counts invalidations: a key read before one is not kept, since
	// the read may predate the change.
	gen       uint64
	listening bool

	hits, misses, notifications, connections atomic.Int64
}

// cachedKey is a key as read, and when.
type cachedKey struct {
	key    storedKey
	loaded time.Time
}

// NewKeyCache returns a cache in front of s and attaches it to s, so that
// changes made through s reach it when they commit. It serves nothing from
// memory until Listen is connected.
func NewKeyCache(s *KeyStore, opts KeyCacheOptions) (*KeyCache, error) {
	if opts.TTL <= 0 {
		return nil, errors.New("key cache: the TTL must be positive")
	}
	if opts.MaxEntries < 0 {
		return nil, errors.New("key cache: the most entries must not be negative")
	}
	if opts.MaxEntries == 0 {
		opts.MaxEntries = DefaultKeyCacheEntries
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &KeyCache{store: s, ttl: opts.TTL, max: opts.MaxEntries, logger: opts.Logger, entries: map[string]cachedKey{}}
	s.changed = c.invalidate
	return c, nil
}

// CallerByKeyHash implements ports.KeyStore as KeyStore.CallerByKeyHash
// does, from memory when it can.
func (c *KeyCache) CallerByKeyHash(ctx context.Context, hash string) (domain.Caller, error) {
	now := c.store.now()
	c.mu.Lock()
	e, ok := c.entries[hash]
	ok = ok && c.listening && now.Sub(e.loaded) < c.ttl
	gen := c.gen
	c.mu.Unlock()
	if ok {
		c.hits.Add(1)
		return c.store.admit(e.key, hash, now)
	}
	c.misses.Add(1)
	k, err := c.store.lookup(ctx, hash)
	if err != nil {
		return domain.Caller{}, err
	}
	c.keep(hash, k, gen, now)
	return c.store.admit(k, hash, c.store.now())
}

// keep stores k under hash, unless an invalidation came after gen or the
// listener is not connected. A full cache drops an arbitrary entry first.
func (c *KeyCache) keep(hash string, k storedKey, gen uint64, loaded time.Time) {
	caller := &k.key.Caller // appending to a shared slice must copy it
	caller.AllowedModels, caller.Budgets = slices.Clip(caller.AllowedModels), slices.Clip(caller.Budgets)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || !c.listening {
		return
	}
	if _, ok := c.entries[hash]; !ok && len(c.entries) >= c.max {
		for h := range c.entries {
			delete(c.entries, h)
			break
		}
	}
	c.entries[hash] = cachedKey{key: k, loaded: loaded}
}

// invalidate removes the entries scope (a payload of KeyChannel) affects:
// one key's, a user's or a team's keys, or every entry.
func (c *KeyCache) invalidate(scope string) {
	kind, id, _ := strings.Cut(scope, ":")
	match := func(domain.APIKey) bool { return true }
	switch domain.ScopeKind(kind) {
	case domain.ScopeKey:
		match = func(k domain.APIKey) bool { return k.ID == id }
	case domain.ScopeUser:
		match = func(k domain.APIKey) bool { return k.Caller.User == id }
	case domain.ScopeTeam:
		match = func(k domain.APIKey) bool { return k.Caller.Team == id }
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for h, e := range c.entries {
		if match(e.key.key) {
			delete(c.entries, h)
		}
	}
}

// setListening empties the cache and says whether notifications now reach
// it: after a (re)connection some may have been missed, and without a
// connection none arrive.
func (c *KeyCache) setListening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	c.listening = on
}

// KeyCacheStats are a KeyCache's counters, for /metrics.
type KeyCacheStats struct {
	Hits          int64 // lookups answered from memory
	Misses        int64 // lookups that read the database
	Notifications int64 // notifications applied
	Connections   int64 // connections the listener has opened
	Entries       int   // keys held now
	Listening     bool  // whether the listener is connected now
}

// Stats returns the cache's counters now.
func (c *KeyCache) Stats() KeyCacheStats {
	c.mu.Lock()
	entries, listening := len(c.entries), c.listening
	c.mu.Unlock()
	return KeyCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Notifications: c.notifications.Load(),
		Connections: c.connections.Load(), Entries: entries, Listening: listening}
}
