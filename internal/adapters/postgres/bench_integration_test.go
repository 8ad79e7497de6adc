//go:build integration

package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// BenchmarkReserveSettle measures one call's ledger work, a reservation and
// its settlement, against PostgreSQL. "budgets" uses a user and a team
// budget per day and per month; "parallel" runs callers of one team at
// once, so they contend for the team's spend rows as real traffic does;
// "no-budgets" is a caller without budgets, whose calls only record usage.
// Each reservation names its holder and its call, as the gateway's do.
func BenchmarkReserveSettle(b *testing.B) {
	pool, _ := migrated(b)
	l := postgres.NewLedger(pool, postgres.LedgerOptions{})
	const huge = domain.Micros(1) << 60
	withBudgets := func(user string) domain.Caller {
		return domain.Caller{KeyID: "key-" + user, User: user, Team: "bench", Budgets: []domain.Budget{
			{Scope: domain.ScopeUser, ScopeID: user, Period: domain.PeriodDay, Limit: huge},
			{Scope: domain.ScopeUser, ScopeID: user, Period: domain.PeriodMonth, Limit: huge},
			{Scope: domain.ScopeTeam, ScopeID: "bench", Period: domain.PeriodDay, Limit: huge},
			{Scope: domain.ScopeTeam, ScopeID: "bench", Period: domain.PeriodMonth, Limit: huge},
		}}
	}
	var seq atomic.Int64
	call := func(b *testing.B, c domain.Caller) {
		ctx := context.Background()
		id := fmt.Sprintf("%s-%d", b.Name(), seq.Add(1))
		r := domain.Reservation{ID: id, Budgets: c.Budgets, Amount: 100, At: noon, Holder: domain.Holder{Log: "journal", Run: "run"},
			For: domain.ReservedCall{KeyID: c.KeyID, User: c.User, Team: c.Team, Endpoint: domain.EndpointChat, Model: "gpt"}}
		if err := l.Reserve(ctx, r); err != nil {
			b.Fatal(err)
		}
		err := l.Settle(ctx, ports.Settlement{ReservationID: id, Caller: c, Model: "gpt", Cost: 40, At: noon,
			Usage: domain.Usage{PromptTokens: 10, CompletionTokens: 30}})
		if err != nil {
			b.Fatal(err)
		}
	}

	b.Run("budgets", func(b *testing.B) {
		c := withBudgets("solo")
		for b.Loop() {
			call(b, c)
		}
	})
	b.Run("no-budgets", func(b *testing.B) {
		c := domain.Caller{KeyID: "key-free", User: "free", Team: "bench"}
		for b.Loop() {
			call(b, c)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var users atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			c := withBudgets(fmt.Sprintf("user-%d", users.Add(1)))
			for pb.Next() {
				call(b, c)
			}
		})
	})
}

// BenchmarkKeyLookup measures authenticating one call: "uncached" reads the
// key from PostgreSQL (one round trip), "cached" answers from a KeyCache
// whose listener is connected (expiry and grace still checked).
func BenchmarkKeyLookup(b *testing.B) {
	_, dsn := migrated(b)
	r := newReplica(b, dsn, "bench", time.Minute)
	_, secret := create(b, r.store, postgres.NewKey{User: "ann", Team: "ops", DailyBudget: 1_000_000, TeamMonthlyBudget: 50_000_000})
	hash := domain.HashKey(secret)
	ctx := context.Background()
	for _, s := range []struct {
		name  string
		store ports.KeyStore
	}{{"uncached", r.store}, {"cached", r.cache}} {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.store.CallerByKeyHash(ctx, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
