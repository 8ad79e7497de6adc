package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
)

// cacheOn returns a listening cache over a store with no database, whose
// clock is *now.
func cacheOn(t *testing.T, now *time.Time, opts KeyCacheOptions) *KeyCache {
	t.Helper()
	s := NewKeyStore(unreachable{})
	s.now = func() time.Time { return *now }
	c, err := NewKeyCache(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	c.setListening(true)
	return c
}

func stored(id, user, team string) storedKey {
	return storedKey{hash: "h-" + id, key: domain.APIKey{ID: id, Caller: domain.Caller{KeyID: id, User: user, Team: team}}}
}

// held reports whether the cache would answer hash from memory.
func held(c *KeyCache, hash string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[hash]
	return ok
}

func TestKeyCacheDropsAReadThatAnInvalidationOvertook(t *testing.T) {
	now := time.Now()
	c := cacheOn(t, &now, KeyCacheOptions{TTL: time.Minute})
	gen := c.gen // the read begins
	c.invalidate("key:k1")
	c.keep("h-k1", stored("k1", "u", "t"), gen, now) // and ends with what it read before the change
	if held(c, "h-k1") {
		t.Fatal("a key read before an invalidation was kept")
	}
	c.keep("h-k1", stored("k1", "u", "t"), c.gen, now)
	if !held(c, "h-k1") {
		t.Fatal("a key read after the last invalidation was not kept")
	}
}

func TestKeyCacheInvalidatesByScope(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		scope string
		gone  []string
	}{
		{"key:k1", []string{"k1"}},
		{"user:ann", []string{"k1", "k2"}},
		{"team:red", []string{"k2", "k3"}},
		{"user:nobody", nil},
		{"*", []string{"k1", "k2", "k3"}},
		{"something:new", []string{"k1", "k2", "k3"}}, // a later release's payload: be safe
	} {
		t.Run(tc.scope, func(t *testing.T) {
			c := cacheOn(t, &now, KeyCacheOptions{TTL: time.Minute})
			for _, k := range []storedKey{stored("k1", "ann", "blue"), stored("k2", "ann", "red"), stored("k3", "bob", "red")} {
				c.keep(k.hash, k, c.gen, now)
			}
			c.invalidate(tc.scope)
			for _, id := range []string{"k1", "k2", "k3"} {
				want := true
				for _, g := range tc.gone {
					want = want && g != id
				}
				if got := held(c, "h-"+id); got != want {
					t.Errorf("after %q, %s held = %v, want %v", tc.scope, id, got, want)
				}
			}
		})
	}
}

func TestKeyCacheIsBounded(t *testing.T) {
	now := time.Now()
	c := cacheOn(t, &now, KeyCacheOptions{TTL: time.Minute, MaxEntries: 3})
	for i := range 10 {
		k := stored(string(rune('a'+i)), "u", "t")
		c.keep(k.hash, k, c.gen, now)
	}
	if n := c.Stats().Entries; n != 3 {
		t.Fatalf("%d entries, want the bound, 3", n)
	}
}

// TestKeyCacheServesNothingWithoutItsListener: a cache whose notifications
// have stopped keeps nothing and answers nothing from memory.
func TestKeyCacheServesNothingWithoutItsListener(t *testing.T) {
	now := time.Now()
	c := cacheOn(t, &now, KeyCacheOptions{TTL: time.Minute})
	k := stored("k1", "u", "t")
	c.keep(k.hash, k, c.gen, now)
	c.setListening(false)
	if held(c, k.hash) {
		t.Fatal("the cache kept its entries when its listener stopped")
	}
	c.keep(k.hash, k, c.gen, now)
	if held(c, k.hash) {
		t.Fatal("the cache kept a key while its listener was stopped")
	}
}

// TestKeyCacheChecksExpiryAndGraceAtEachUse: a key held in memory is
// refused once it expires, and a replaced secret once its grace ends,
// without reading the database (the store cannot reach one).
func TestKeyCacheChecksExpiryAndGraceAtEachUse(t *testing.T) {
	now := time.Now()
	c := cacheOn(t, &now, KeyCacheOptions{TTL: time.Hour})
	expiring := stored("k1", "u", "t")
	expiring.key.Caller.KeyExpiresAt = now.Add(time.Minute)
	graceEnd := now.Add(time.Minute)
	rotated := stored("k2", "u", "t")
	rotated.previousHash, rotated.key.PreviousValidUntil = "h-old", &graceEnd
	c.keep(expiring.hash, expiring, c.gen, now)
	c.keep("h-old", rotated, c.gen, now)

	for _, hash := range []string{expiring.hash, "h-old"} {
		if _, err := c.CallerByKeyHash(t.Context(), hash); err != nil {
			t.Fatalf("%s before its end: %v", hash, err)
		}
	}
	now = now.Add(time.Minute)
	_, err := c.CallerByKeyHash(t.Context(), expiring.hash)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeKeyExpired {
		t.Errorf("expired key: error = %v, want code %s", err, domain.CodeKeyExpired)
	}
	if _, err := c.CallerByKeyHash(t.Context(), "h-old"); !errors.Is(err, domain.KindUnauthenticated) {
		t.Errorf("replaced secret after its grace: error = %v, want %v", err, domain.KindUnauthenticated)
	}
	if st := c.Stats(); st.Hits != 4 || st.Misses != 0 {
		t.Errorf("stats = %+v, want 4 hits and no miss", st)
	}
}

// TestKeyCacheRereadsAfterTTL: an entry older than the TTL is not used;
// the key is read again (here from a database that cannot be reached).
func TestKeyCacheRereadsAfterTTL(t *testing.T) {
	now := time.Now()
	c := cacheOn(t, &now, KeyCacheOptions{TTL: time.Second})
	k := stored("k1", "u", "t")
	c.keep(k.hash, k, c.gen, now)
	if _, err := c.CallerByKeyHash(t.Context(), k.hash); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := c.CallerByKeyHash(t.Context(), k.hash); err == nil {
		t.Error("the cache answered from memory after the TTL")
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 1 {
		t.Errorf("stats = %+v, want 1 hit and 1 miss", st)
	}
}

// unreachable is a database that hands out no connection.
type unreachable struct{}

func (unreachable) Acquire(context.Context) (*pgxpool.Conn, error) {
	return nil, errors.New("unreachable")
}
