//go:build integration

package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgtest"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newPool returns a pool of at most maxConns connections on dsn, closed when
// the test ends.
func newPool(t testing.TB, dsn string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// migrated returns a pool on a fresh database with the gateway's tables.
func migrated(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := pgtest.New(t)
	pool := newPool(t, dsn, 20)
	if err := postgres.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pool, dsn
}

func TestKeyStoreContract(t *testing.T) {
	contract.TestKeyStore(t, func(t *testing.T) contract.KeyStoreUnderTest {
		pool, _ := migrated(t)
		s := postgres.NewKeyStore(pool)
		return contract.KeyStoreUnderTest{Store: s, Add: addKey(s), Revoke: s.Revoke,
			Rotate: func(ctx context.Context, id string, grace time.Duration) (string, error) {
				_, secret, err := s.RotateKey(ctx, id, grace, "", domain.AuditEntry{Actor: domain.Actor{Kind: domain.ActorCLI, ID: "contract"}, Reason: "contract test"})
				return secret, err
			}}
	})
}

func TestSpendLedgerContract(t *testing.T) {
	for _, sync := range []bool{false, true} {
		t.Run(fmt.Sprintf("synchronous_commit=%v", sync), func(t *testing.T) {
			contract.TestSpendLedger(t, func(t *testing.T, setup contract.LedgerSetup) (contract.Ledger, contract.Ledger) {
				pool, dsn := migrated(t)
				opts := postgres.LedgerOptions{SynchronousCommit: sync, Location: setup.Location, AlertThresholds: setup.AlertThresholds}
				return postgres.NewLedger(pool, opts), postgres.NewLedger(newPool(t, dsn, 10), opts)
			})
		})
	}
}

// addKey stores a key for a caller through EnsureKey, which takes the
// caller's budgets as the NewKey fields they correspond to.
func addKey(s *postgres.KeyStore) func(context.Context, string, domain.Caller) (string, error) {
	return func(ctx context.Context, secret string, c domain.Caller) (string, error) {
		nk := postgres.NewKey{User: c.User, Team: c.Team, AllowedModels: c.AllowedModels, RPM: c.RPM, TPM: c.TPM, MaxConcurrent: c.MaxConcurrent,
			ExpiresAt: c.KeyExpiresAt}
		for _, b := range c.Budgets {
			var field *domain.Micros
			switch {
			case b.Scope == domain.ScopeUser && b.ScopeID == c.User && b.Period == domain.PeriodDay:
				field = &nk.DailyBudget
			case b.Scope == domain.ScopeUser && b.ScopeID == c.User && b.Period == domain.PeriodMonth:
				field = &nk.MonthlyBudget
			case b.Scope == domain.ScopeTeam && b.ScopeID == c.Team && b.Period == domain.PeriodDay:
				field = &nk.TeamDailyBudget
			case b.Scope == domain.ScopeTeam && b.ScopeID == c.Team && b.Period == domain.PeriodMonth:
				field = &nk.TeamMonthlyBudget
			default:
				return "", fmt.Errorf("a key cannot carry the budget %+v", b)
			}
			*field = b.Limit
		}
		key, err := s.EnsureKey(ctx, secret, nk)
		return key.ID, err
	}
}
