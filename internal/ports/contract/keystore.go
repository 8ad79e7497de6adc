// Package contract holds the test suites that every implementation of a
// port must pass. Each adapter's tests run the suite of the ports it
// implements, and so does the in-memory fake, so that the fake other
// packages test against behaves like the real thing.
package contract

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// KeyStoreUnderTest is a key store with the administration the suite needs
// and the port does not offer.
type KeyStoreUnderTest struct {
	Store ports.KeyStore
	// Add stores an active key with this secret for c, ignoring c.KeyID,
	// and returns the key's ID. The suite gives c at most one budget per
	// scope and period, for c's own user and team, each with a positive
	// limit, listed user before team and day before month.
	Add func(ctx context.Context, secret string, c domain.Caller) (string, error)
	// Revoke revokes the key with this ID; revoking twice is not an error,
	// and an unknown ID is a domain.KindNotFound error.
	Revoke func(ctx context.Context, keyID string) error
	// Rotate gives the key with this ID a new secret and returns it; the
	// replaced secret must keep working for grace.
	Rotate func(ctx context.Context, keyID string, grace time.Duration) (string, error)
}

// TestKeyStore checks that a key store finds the caller behind an active
// key, with its policy and budgets, and refuses unknown and revoked keys with
// domain.KindUnauthenticated. newStore returns an empty store.
func TestKeyStore(t *testing.T, newStore func(t *testing.T) KeyStoreUnderTest) {
	ctx := context.Background()

	t.Run("ActiveKeyHasItsPolicy", func(t *testing.T) {
		s := newStore(t)
		secret := newSecret(t)
		want := domain.Caller{User: "alice", Team: "risk", AllowedModels: []string{"gpt-4o", "claude"}, RPM: 60, TPM: 10_000, MaxConcurrent: 5,
			Budgets: []domain.Budget{
				userBudget("alice", domain.PeriodDay, 5_000_000), userBudget("alice", domain.PeriodMonth, 50_000_000),
				teamBudget("risk", domain.PeriodDay, 20_000_000), teamBudget("risk", domain.PeriodMonth, 200_000_000),
			}}
		want.KeyID = addKey(t, s, secret, want)
		checkCaller(t, s, secret, want)
	})

	t.Run("KeyWithoutLimits", func(t *testing.T) {
		s := newStore(t)
		secret := newSecret(t)
		want := domain.Caller{User: "bob", Team: "ops"}
		want.KeyID = addKey(t, s, secret, want)
		checkCaller(t, s, secret, want)
	})

	t.Run("UnknownKeyIsRefused", func(t *testing.T) {
		s := newStore(t)
		addKey(t, s, newSecret(t), domain.Caller{User: "carol", Team: "ops"})
		for _, hash := range []string{domain.HashKey(newSecret(t)), "", "not a hash", strings.Repeat("0", 64)} {
			if _, err := s.Store.CallerByKeyHash(ctx, hash); !errors.Is(err, domain.KindUnauthenticated) {
				t.Errorf("CallerByKeyHash(%q) error = %v, want %v", hash, err, domain.KindUnauthenticated)
			}
		}
	})

	t.Run("RevokedKeyIsRefusedAtOnce", func(t *testing.T) {
		s := newStore(t)
		revoked, kept := newSecret(t), newSecret(t)
		id := addKey(t, s, revoked, domain.Caller{User: "dave", Team: "ops"})
		keep := domain.Caller{User: "erin", Team: "ops"}
		keep.KeyID = addKey(t, s, kept, keep)
		checkCaller(t, s, revoked, domain.Caller{KeyID: id, User: "dave", Team: "ops"})
		for range 2 { // revoking twice is not an error
			if err := s.Revoke(ctx, id); err != nil {
				t.Fatalf("Revoke(%q): %v", id, err)
			}
		}
		if _, err := s.Store.CallerByKeyHash(ctx, domain.HashKey(revoked)); !errors.Is(err, domain.KindUnauthenticated) {
			t.Errorf("revoked key: error = %v, want %v", err, domain.KindUnauthenticated)
		}
		checkCaller(t, s, kept, keep)
		if err := s.Revoke(ctx, "key_unknown"); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("Revoke(unknown) error = %v, want %v", err, domain.KindNotFound)
		}
	})

	t.Run("ExpiredKeyIsRefused", func(t *testing.T) {
		s := newStore(t)
		expired, live := newSecret(t), newSecret(t)
		addKey(t, s, expired, domain.Caller{User: "fay", Team: "ops", KeyExpiresAt: time.Now().Add(-time.Second)})
		want := domain.Caller{User: "gus", Team: "ops", KeyExpiresAt: time.Now().Add(time.Hour).Truncate(time.Microsecond)}
		want.KeyID = addKey(t, s, live, want)
		_, err := s.Store.CallerByKeyHash(ctx, domain.HashKey(expired))
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindUnauthenticated || de.Code != domain.CodeKeyExpired {
			t.Errorf("expired key: error = %v, want %v with code %s", err, domain.KindUnauthenticated, domain.CodeKeyExpired)
		}
		got := checkCaller(t, s, live, want)
		if !got.KeyExpiresAt.Equal(want.KeyExpiresAt) {
			t.Errorf("KeyExpiresAt = %v, want %v", got.KeyExpiresAt, want.KeyExpiresAt)
		}
	})

	t.Run("RotationKeepsTheOldSecretForItsGrace", func(t *testing.T) {
		s := newStore(t)
		first := newSecret(t)
		want := domain.Caller{User: "hal", Team: "ops", RPM: 7}
		want.KeyID = addKey(t, s, first, want)
		second, err := s.Rotate(ctx, want.KeyID, time.Hour)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		checkCaller(t, s, first, want) // in its grace
		checkCaller(t, s, second, want)
		third, err := s.Rotate(ctx, want.KeyID, 0)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		for name, old := range map[string]string{"first": first, "second": second} {
			if _, err := s.Store.CallerByKeyHash(ctx, domain.HashKey(old)); !errors.Is(err, domain.KindUnauthenticated) {
				t.Errorf("%s secret after a rotation without grace: error = %v, want %v", name, err, domain.KindUnauthenticated)
			}
		}
		checkCaller(t, s, third, want)
		if err := s.Revoke(ctx, want.KeyID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Store.CallerByKeyHash(ctx, domain.HashKey(third)); !errors.Is(err, domain.KindUnauthenticated) {
			t.Errorf("revoked rotated key: error = %v, want %v", err, domain.KindUnauthenticated)
		}
	})

	t.Run("HostileNamesAreKeptVerbatim", func(t *testing.T) {
		s := newStore(t)
		for _, name := range HostileNames() {
			secret := newSecret(t)
			want := domain.Caller{User: name, Team: name + "/team", AllowedModels: []string{name, "plain"},
				Budgets: []domain.Budget{userBudget(name, domain.PeriodDay, 1), teamBudget(name+"/team", domain.PeriodMonth, 2)}}
			want.KeyID = addKey(t, s, secret, want)
			checkCaller(t, s, secret, want)
		}
	})
}

// HostileNames returns names that break code which builds SQL, logs or
// paths from strings: quotes, backslashes, an SQL injection, format verbs,
// control characters, scripts, emoji, bidirectional overrides, and a name of
// 500 bytes (suites append short suffixes to it). None contains NUL, which
// PostgreSQL's text cannot hold.
func HostileNames() []string {
	return []string{
		`'; DROP TABLE x; --`,
		`Robert'); DROP TABLE tidygate_api_keys;--`,
		`O'Brien "quoted" \backslash\ \\ \' \"`,
		`$1 $$ %s %v %!d(MISSING) {{.}} ${HOME}`,
		"tab\tnewline\ncarriage return\r end",
		"  leading and trailing spaces  ",
		"Ünïcödé 日本語 Ελληνικά עברית 🚀 👩‍👩‍👧",
		"\u202eright-to-left override\u202c",
		strings.Repeat("é", 250),
	}
}

func newSecret(t *testing.T) string {
	t.Helper()
	s, err := domain.NewKeySecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addKey(t *testing.T, s KeyStoreUnderTest, secret string, c domain.Caller) string {
	t.Helper()
	id, err := s.Add(context.Background(), secret, c)
	if err != nil {
		t.Fatalf("Add(%+v): %v", c, err)
	}
	if id == "" {
		t.Fatalf("Add(%+v) returned an empty key ID", c)
	}
	return id
}

// checkCaller fails t unless the key with this secret belongs to want.
func checkCaller(t *testing.T, s KeyStoreUnderTest, secret string, want domain.Caller) domain.Caller {
	t.Helper()
	got, err := s.Store.CallerByKeyHash(context.Background(), domain.HashKey(secret))
	if err != nil {
		t.Fatalf("CallerByKeyHash: %v", err)
		return got
	}
	if got.KeyID != want.KeyID || got.User != want.User || got.Team != want.Team || got.RPM != want.RPM ||
		got.TPM != want.TPM || got.MaxConcurrent != want.MaxConcurrent || !slices.Equal(got.AllowedModels, want.AllowedModels) || !slices.Equal(got.Budgets, want.Budgets) {
		t.Errorf("caller =\n\t%+v\nwant\n\t%+v", got, want)
	}
	return got
}

func userBudget(user string, p domain.Period, limit domain.Micros) domain.Budget {
	return domain.Budget{Scope: domain.ScopeUser, ScopeID: user, Period: p, Limit: limit}
}

func teamBudget(team string, p domain.Period, limit domain.Micros) domain.Budget {
	return domain.Budget{Scope: domain.ScopeTeam, ScopeID: team, Period: p, Limit: limit}
}
