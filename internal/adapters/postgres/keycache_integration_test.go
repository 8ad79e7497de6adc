//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

// propagationDeadline bounds how long a test waits for a change to reach
// another replica's cache. The guarantee is one second; the deadline is
// generous so that a loaded machine does not fail the test, and each test
// logs the delay it measured.
const propagationDeadline = 5 * time.Second

// replica is one "replica" of tidygate: its own pool, key store and
// cache, whose listener connects as application_name.
type replica struct {
	store *postgres.KeyStore
	cache *postgres.KeyCache
	// blocked makes the listener's connection attempts fail.
	blocked atomic.Bool
	app     string
}

// newReplica starts a replica on dsn and waits until its listener is
// connected; it stops when the test ends.
func newReplica(t testing.TB, dsn, app string, ttl time.Duration) *replica {
	t.Helper()
	r := &replica{store: postgres.NewKeyStore(newPool(t, dsn, 5)), app: app}
	var err error
	if r.cache, err = postgres.NewKeyCache(r.store, postgres.KeyCacheOptions{TTL: ttl}); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = app
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.cache.Listen(ctx, func(ctx context.Context) (*pgx.Conn, error) {
			if r.blocked.Load() {
				return nil, errors.New("blocked by the test")
			}
			return pgx.ConnectConfig(ctx, cfg)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	r.waitListening(t, 1)
	return r
}

// waitListening waits until the listener has opened its n-th connection
// and is listening on it.
func (r *replica) waitListening(t testing.TB, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for st := r.cache.Stats(); !st.Listening || st.Connections < n; st = r.cache.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: listener not connected (stats %+v)", r.app, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lookup asks the replica's cache for the caller behind secret.
func (r *replica) lookup(secret string) (domain.Caller, error) {
	return r.cache.CallerByKeyHash(context.Background(), domain.HashKey(secret))
}

// cached looks secret up twice and fails t unless the second answer came
// from memory.
func (r *replica) cached(t *testing.T, secret string) domain.Caller {
	t.Helper()
	if _, err := r.lookup(secret); err != nil {
		t.Fatalf("%s: %v", r.app, err)
	}
	hits := r.cache.Stats().Hits
	c, err := r.lookup(secret)
	if err != nil {
		t.Fatalf("%s: %v", r.app, err)
	}
	if got := r.cache.Stats().Hits; got != hits+1 {
		t.Fatalf("%s: the second lookup was not answered from memory (hits %d → %d)", r.app, hits, got)
	}
	return c
}

// until polls the replica's answer for secret until done accepts it, and
// returns how long that took from since; it fails t after
// propagationDeadline.
func (r *replica) until(t *testing.T, secret string, since time.Time, done func(domain.Caller, error) bool) time.Duration {
	t.Helper()
	for {
		c, err := r.lookup(secret)
		if done(c, err) {
			return time.Since(since)
		}
		if time.Since(since) > propagationDeadline {
			t.Fatalf("%s: no change seen within %s (caller %+v, error %v)", r.app, propagationDeadline, c, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func refused(_ domain.Caller, err error) bool { return errors.Is(err, domain.KindUnauthenticated) }

func create(t testing.TB, s *postgres.KeyStore, nk postgres.NewKey) (domain.APIKey, string) {
	t.Helper()
	key, secret, err := s.Create(context.Background(), nk)
	if err != nil {
		t.Fatal(err)
	}
	return key, secret
}

func audit() domain.AuditEntry {
	return domain.AuditEntry{Actor: domain.Actor{Kind: domain.ActorCLI, ID: "test"}, Reason: "key cache test"}
}

// TestKeyCacheContract runs the key store's contract against the cache,
// its listener connected: changes made through the store it caches are
// seen at once.
func TestKeyCacheContract(t *testing.T) {
	contract.TestKeyStore(t, func(t *testing.T) contract.KeyStoreUnderTest {
		_, dsn := migrated(t)
		r := newReplica(t, dsn, "keycache-contract", time.Minute)
		s := r.store
		return contract.KeyStoreUnderTest{Store: r.cache, Add: addKey(s), Revoke: s.Revoke,
			Rotate: func(ctx context.Context, id string, grace time.Duration) (string, error) {
				_, secret, err := s.RotateKey(ctx, id, grace, "", audit())
				return secret, err
			}}
	})
}

// TestRevocationReachesTheOtherReplica revokes keys on one replica while
// the other holds them in memory, and measures how long the other takes
// to refuse them: the bound is one second.
func TestRevocationReachesTheOtherReplica(t *testing.T) {
	_, dsn := migrated(t)
	a, b := newReplica(t, dsn, "replica-a", time.Minute), newReplica(t, dsn, "replica-b", time.Minute)
	var delays []time.Duration
	for range 20 {
		key, secret := create(t, a.store, postgres.NewKey{User: "ann", Team: "ops"})
		b.cached(t, secret)
		if err := a.store.Revoke(context.Background(), key.ID); err != nil {
			t.Fatal(err)
		}
		revoked := time.Now()
		if _, err := a.lookup(secret); !errors.Is(err, domain.KindUnauthenticated) {
			t.Fatalf("the replica that revoked the key still accepts it: %v", err)
		}
		delays = append(delays, b.until(t, secret, revoked, refused))
	}
	slices.Sort(delays)
	t.Logf("revocation seen by the other replica after: median %s, max %s (%d revocations; bound 1s)",
		delays[len(delays)/2], delays[len(delays)-1], len(delays))
	if st := b.cache.Stats(); st.Notifications < 20 {
		t.Errorf("replica b applied %d notifications, want at least the 20 revocations", st.Notifications)
	}
}

// TestRotationExpiryAndBudgetsReachTheOtherReplica: a rotation without
// grace, a new expiry and a changed team budget made on one replica reach
// the other's cache.
func TestRotationExpiryAndBudgetsReachTheOtherReplica(t *testing.T) {
	_, dsn := migrated(t)
	ctx := context.Background()
	a, b := newReplica(t, dsn, "replica-a", time.Minute), newReplica(t, dsn, "replica-b", time.Minute)

	t.Run("rotation", func(t *testing.T) {
		key, old := create(t, a.store, postgres.NewKey{User: "ann", Team: "ops"})
		b.cached(t, old)
		_, secret, err := a.store.RotateKey(ctx, key.ID, 0, "", audit())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rotation seen after %s", b.until(t, old, time.Now(), refused))
		if c := b.cached(t, secret); c.KeyID != key.ID {
			t.Errorf("new secret: caller %+v, want key %s", c, key.ID)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		key, secret := create(t, a.store, postgres.NewKey{User: "bob", Team: "ops"})
		b.cached(t, secret)
		if _, err := a.store.SetKeyExpiry(ctx, key.ID, time.Now().Add(-time.Second), "", audit()); err != nil {
			t.Fatal(err)
		}
		expired := func(_ domain.Caller, err error) bool {
			var de *domain.Error
			return errors.As(err, &de) && de.Code == domain.CodeKeyExpired
		}
		t.Logf("expiry seen after %s", b.until(t, secret, time.Now(), expired))
	})

	t.Run("team budget", func(t *testing.T) {
		before := b.cache.Stats().Notifications
		_, secret := create(t, a.store, postgres.NewKey{User: "cat", Team: "risk", TeamDailyBudget: 10})
		waitNotifications(t, b, before+1) // the budget's "team:risk", which would empty b's entry
		if c := b.cached(t, secret); len(c.Budgets) != 1 || c.Budgets[0].Limit != 10 {
			t.Fatalf("budgets = %+v, want the team's daily 10", c.Budgets)
		}
		create(t, a.store, postgres.NewKey{User: "dan", Team: "risk", TeamDailyBudget: 30}) // sets the team's budget
		raised := func(c domain.Caller, err error) bool {
			return err == nil && len(c.Budgets) == 1 && c.Budgets[0].Limit == 30
		}
		t.Logf("budget change seen after %s", b.until(t, secret, time.Now(), raised))
	})

	t.Run("limits and models", func(t *testing.T) {
		key, secret := create(t, a.store, postgres.NewKey{User: "eve", Team: "ops", RPM: 10})
		b.cached(t, secret)
		rpm, models := 20, []string{"gpt-4o"}
		if _, err := a.store.UpdateKey(ctx, key.ID, domain.KeyUpdate{RPM: &rpm, AllowedModels: &models}, "", audit()); err != nil {
			t.Fatal(err)
		}
		changed := func(c domain.Caller, err error) bool {
			return err == nil && c.RPM == 20 && slices.Equal(c.AllowedModels, models)
		}
		t.Logf("limits change seen after %s", b.until(t, secret, time.Now(), changed))
	})

	t.Run("user budget", func(t *testing.T) {
		_, secret := create(t, a.store, postgres.NewKey{User: "fay", Team: "ops"})
		b.cached(t, secret)
		day := domain.Budget{Scope: domain.ScopeUser, ScopeID: "fay", Period: domain.PeriodDay, Limit: 7}
		if _, err := a.store.ChangePrincipal(ctx, domain.ScopeUser, "fay", domain.PrincipalChange{Budgets: []domain.Budget{day}}, "", audit()); err != nil {
			t.Fatal(err)
		}
		set := func(c domain.Caller, err error) bool {
			return err == nil && slices.Equal(c.Budgets, []domain.Budget{day})
		}
		t.Logf("user budget seen after %s", b.until(t, secret, time.Now(), set))
	})

	t.Run("team limits", func(t *testing.T) {
		_, secret := create(t, a.store, postgres.NewKey{User: "gus", Team: "lab"})
		b.cached(t, secret)
		tpm := 5000
		if _, err := a.store.ChangePrincipal(ctx, domain.ScopeTeam, "lab", domain.PrincipalChange{Limits: domain.LimitsChange{TPM: &tpm}}, "", audit()); err != nil {
			t.Fatal(err)
		}
		set := func(c domain.Caller, err error) bool { return err == nil && c.TeamLimits == domain.Limits{TPM: 5000} }
		t.Logf("team limits seen after %s", b.until(t, secret, time.Now(), set))
		// The tidygate keys command sets limits through SetLimits.
		if _, err := a.store.SetLimits(ctx, domain.LimitScope(domain.ScopeTeam), "lab", domain.Limits{RPM: 7}, audit()); err != nil {
			t.Fatal(err)
		}
		reset := func(c domain.Caller, err error) bool { return err == nil && c.TeamLimits == domain.Limits{RPM: 7} }
		t.Logf("team limits set by the command seen after %s", b.until(t, secret, time.Now(), reset))
	})
}

// TestExpiryAndGraceEndWithoutAnyMessage: a key held in memory is refused
// at its expiry, and a replaced secret at the end of its grace, though
// nothing announces either.
func TestExpiryAndGraceEndWithoutAnyMessage(t *testing.T) {
	_, dsn := migrated(t)
	a, b := newReplica(t, dsn, "replica-a", time.Minute), newReplica(t, dsn, "replica-b", time.Minute)
	// Keys without budgets: creating them announces nothing.
	_, expiring := create(t, a.store, postgres.NewKey{User: "ann", Team: "ops", ExpiresAt: time.Now().Add(4 * time.Second)})
	key, old := create(t, a.store, postgres.NewKey{User: "bob", Team: "ops"})
	before := b.cache.Stats().Notifications
	if _, _, err := a.store.RotateKey(context.Background(), key.ID, 4*time.Second, "", audit()); err != nil {
		t.Fatal(err)
	}
	waitNotifications(t, b, before+1) // the rotation's, so that nothing more comes
	b.cached(t, expiring)
	b.cached(t, old)
	held := b.cache.Stats()
	b.until(t, expiring, time.Now(), func(_ domain.Caller, err error) bool {
		var de *domain.Error
		return errors.As(err, &de) && de.Code == domain.CodeKeyExpired
	})
	b.until(t, old, time.Now(), refused)
	if after := b.cache.Stats(); after.Misses != held.Misses || after.Notifications != held.Notifications {
		t.Errorf("the refusals came from the database or a message (stats %+v → %+v), want from memory", held, after)
	}
}

// TestTTLBoundsAChangeNobodyAnnounced: a change whose notification never
// comes (made with triggers off, as a replication or restore does) is seen
// once the entry is older than the TTL.
func TestTTLBoundsAChangeNobodyAnnounced(t *testing.T) {
	pool, dsn := migrated(t)
	const ttl = time.Second
	r := newReplica(t, dsn, "replica", ttl)
	key, secret := create(t, r.store, postgres.NewKey{User: "ann", Team: "ops"})
	r.cached(t, secret)
	before := r.cache.Stats()
	revokeSilently(t, pool, key.ID)
	t.Logf("unannounced revocation seen after %s (TTL %s)", r.until(t, secret, time.Now(), refused), ttl)
	if after := r.cache.Stats(); after.Notifications != before.Notifications {
		t.Errorf("a notification arrived (%d → %d); the test needs none", before.Notifications, after.Notifications)
	}
}

// revokeSilently revokes a key without firing triggers.
func revokeSilently(t *testing.T, pool *pgxpool.Pool, id string) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), "UPDATE tidygate_api_keys SET revoked_at = now() WHERE id = $1", id)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestListenerKilled: while the listener's connection is gone the replica
// answers nothing from memory, so a revocation is seen at once; once it
// reconnects, it starts empty and notifications work again.
func TestListenerKilled(t *testing.T) {
	pool, dsn := migrated(t)
	a, b := newReplica(t, dsn, "replica-a", time.Minute), newReplica(t, dsn, "replica-b", time.Minute)
	first, firstSecret := create(t, a.store, postgres.NewKey{User: "ann", Team: "ops"})
	second, secondSecret := create(t, a.store, postgres.NewKey{User: "bob", Team: "ops"})
	b.cached(t, firstSecret)
	b.cached(t, secondSecret)

	b.blocked.Store(true)
	var killed int
	if err := pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, b.app).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners (%v), want 1", killed, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for b.cache.Stats().Listening {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not notice that its listener was killed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	revokeSilently(t, pool, first.ID) // nothing could carry a message now anyway
	if _, err := b.lookup(firstSecret); !errors.Is(err, domain.KindUnauthenticated) {
		t.Fatalf("without its listener the replica accepted a revoked key: %v", err)
	}
	misses := b.cache.Stats().Misses
	if _, err := b.lookup(secondSecret); err != nil {
		t.Fatal(err)
	}
	if b.cache.Stats().Misses != misses+1 {
		t.Error("without its listener the replica answered from memory")
	}

	b.blocked.Store(false)
	b.waitListening(t, 2)
	if st := b.cache.Stats(); st.Entries != 0 {
		t.Errorf("%d entries after reconnecting, want an empty cache", st.Entries)
	}
	b.cached(t, secondSecret)
	if err := a.store.Revoke(context.Background(), second.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("after reconnecting, revocation seen after %s", b.until(t, secondSecret, time.Now(), refused))
}

// TestLastUseFlushesAnnounceNothing: writing the keys' last-used times,
// which every replica does in batches, does not empty the caches.
func TestLastUseFlushesAnnounceNothing(t *testing.T) {
	_, dsn := migrated(t)
	a, b := newReplica(t, dsn, "replica-a", time.Minute), newReplica(t, dsn, "replica-b", time.Minute)
	_, secret := create(t, a.store, postgres.NewKey{User: "ann", Team: "ops"})
	b.cached(t, secret)
	if _, err := a.lookup(secret); err != nil {
		t.Fatal(err)
	}
	before := b.cache.Stats().Notifications
	if err := a.store.FlushLastUsed(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: once the revocation's has, any
	// the flush sent would have too. Creating a key without budgets sends none.
	other, _ := create(t, a.store, postgres.NewKey{User: "bob", Team: "ops"})
	if err := a.store.Revoke(context.Background(), other.ID); err != nil {
		t.Fatal(err)
	}
	waitNotifications(t, b, before+1)
	if st := b.cache.Stats(); st.Notifications != before+1 {
		t.Errorf("notifications %d → %d, want only the revocation's", before, st.Notifications)
	}
	hits := b.cache.Stats().Hits
	if _, err := b.lookup(secret); err != nil || b.cache.Stats().Hits != hits+1 {
		t.Errorf("after a flush of last uses the key was not answered from memory (err %v)", err)
	}
}

// waitNotifications waits until r has applied n notifications.
func waitNotifications(t *testing.T, r *replica, n int64) {
	t.Helper()
	deadline := time.Now().Add(propagationDeadline)
	for r.cache.Stats().Notifications < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s applied %d notifications within %s, want %d", r.app, r.cache.Stats().Notifications, propagationDeadline, n)
		}
		time.Sleep(time.Millisecond)
	}
}
