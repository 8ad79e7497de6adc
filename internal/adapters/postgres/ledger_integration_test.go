//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var noon = time.Date(2030, time.March, 15, 12, 0, 0, 0, time.UTC)

// TestTwoReplicasStayExact reserves from two pools at once, as two replicas
// would, against a team budget two users share: the team's limit holds
// exactly, each user's own limit holds, and the shared row's holds add up.
func TestTwoReplicasStayExact(t *testing.T) {
	const a, perUser = 7, 50
	_, dsn := migrated(t)
	replicas := []*postgres.Ledger{postgres.NewLedger(newPool(t, dsn, 10), postgres.LedgerOptions{}), postgres.NewLedger(newPool(t, dsn, 10), postgres.LedgerOptions{})}
	team := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "shared", Period: domain.PeriodDay, Limit: 10 * a}
	users := []domain.Caller{
		{KeyID: "k1", User: "u1", Team: "shared", Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "u1", Period: domain.PeriodDay, Limit: 6 * a}, team}},
		{KeyID: "k2", User: "u2", Team: "shared", Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "u2", Period: domain.PeriodDay, Limit: 6 * a}, team}},
	}

	won := make([][]string, len(users))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for u, c := range users {
		for i := range perUser {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("%s-%d", c.User, i)
				err := replicas[u].Reserve(context.Background(), domain.Reservation{ID: id, Budgets: c.Budgets, Amount: a, At: noon})
				switch {
				case err == nil:
					mu.Lock()
					won[u] = append(won[u], id)
					mu.Unlock()
				case !errors.Is(err, domain.KindBudgetExceeded):
					t.Errorf("Reserve %s: %v", id, err)
				}
			}()
		}
	}
	wg.Wait()
	if n := len(won[0]) + len(won[1]); n != 10 || len(won[0]) > 6 || len(won[1]) > 6 {
		t.Fatalf("reservations that fit: u1 %d, u2 %d; want 10 in all, at most 6 each", len(won[0]), len(won[1]))
	}
	for u, c := range users {
		rep, err := replicas[1-u].Report(context.Background(), c, noon, noon)
		if err != nil {
			t.Fatal(err)
		}
		own, shared := rep.Budgets[0], rep.Budgets[1]
		if own.Reserved != domain.Micros(len(won[u])*a) || shared.Reserved != 10*a || own.Spent != 0 || shared.Spent != 0 {
			t.Errorf("%s: budgets %+v, want %d held of its own and %d of the team's", c.User, rep.Budgets, len(won[u])*a, 10*a)
		}
	}

	var settled sync.WaitGroup
	for u, ids := range won {
		for _, id := range ids {
			settled.Add(1)
			go func() {
				defer settled.Done()
				err := replicas[u%2].Settle(context.Background(), ports.Settlement{ReservationID: id, Caller: users[u], Model: "m", Cost: a - 1, At: noon})
				if err != nil {
					t.Errorf("Settle %s: %v", id, err)
				}
			}()
		}
	}
	settled.Wait()
	rep, err := replicas[0].Report(context.Background(), users[0], noon, noon)
	if err != nil {
		t.Fatal(err)
	}
	if shared := rep.Budgets[1]; shared.Spent != 10*(a-1) || shared.Reserved != 0 {
		t.Errorf("team budget after settling = %+v, want %d spent and nothing held", shared, 10*(a-1))
	}
}

// TestOppositeBudgetOrdersDoNotDeadlock reserves and settles against the
// same two spend rows with the budgets listed in both orders: the ledger
// locks rows in one order, so PostgreSQL never has to break a deadlock.
func TestOppositeBudgetOrdersDoNotDeadlock(t *testing.T) {
	pool, _ := migrated(t)
	l := postgres.NewLedger(pool, postgres.LedgerOptions{})
	day := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "t", Period: domain.PeriodDay, Limit: 1_000_000}
	month := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "t", Period: domain.PeriodMonth, Limit: 1_000_000}
	orders := [][]domain.Budget{{day, month}, {month, day}}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			id := fmt.Sprintf("r%d", i)
			c := domain.Caller{KeyID: "k", User: "u", Team: "t", Budgets: orders[i%2]}
			if err := l.Reserve(ctx, domain.Reservation{ID: id, Budgets: c.Budgets, Amount: 10, At: noon}); err != nil {
				t.Errorf("Reserve %s: %v", id, err)
				return
			}
			if err := l.Settle(ctx, ports.Settlement{ReservationID: id, Caller: c, Model: "m", Cost: 3, At: noon}); err != nil {
				t.Errorf("Settle %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	rep, err := l.Report(context.Background(), domain.Caller{User: "u", Budgets: []domain.Budget{day, month}}, noon, noon)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Budgets {
		if s.Spent != 600 || s.Reserved != 0 {
			t.Errorf("budget %+v: spent %d, held %d; want 600 and 0", s.Budget, s.Spent, s.Reserved)
		}
	}
}

// TestAsyncCommitStaysInItsTransaction runs every kind of ledger
// transaction, failed ones too, on a pool of one connection, and then finds
// that connection idle, still the same backend (no transaction was left
// open for the pool to throw the connection away) and still committing
// synchronously: the ledger's asynchronous commits must not leak to the
// other users of the shared pool (the MLflow writer deletes journaled
// records once PostgreSQL has committed them, so its commits must be
// durable).
func TestAsyncCommitStaysInItsTransaction(t *testing.T) {
	pool, dsn := migrated(t)
	one := newPool(t, dsn, 1)
	l := postgres.NewLedger(one, postgres.LedgerOptions{})
	ctx := context.Background()
	budget := domain.Budget{Scope: domain.ScopeTeam, ScopeID: "t", Period: domain.PeriodDay, Limit: 100}
	c := domain.Caller{KeyID: "k", User: "u", Team: "t", Budgets: []domain.Budget{budget}}
	steps := []struct {
		name string
		run  func() error
	}{
		{"reserve without budgets", func() error {
			return l.Reserve(ctx, domain.Reservation{ID: "free", Amount: 10, At: noon})
		}},
		{"reserve", func() error {
			return l.Reserve(ctx, domain.Reservation{ID: "a", Budgets: c.Budgets, Amount: 60, At: noon})
		}},
		{"reserve over budget", func() error {
			err := l.Reserve(ctx, domain.Reservation{ID: "b", Budgets: c.Budgets, Amount: 60, At: noon})
			if domain.KindOf(err) != domain.KindBudgetExceeded {
				return fmt.Errorf("want budget_exceeded, got %w", err)
			}
			return nil
		}},
		{"reserve with a used id", func() error {
			err := l.Reserve(ctx, domain.Reservation{ID: "a", Budgets: c.Budgets, Amount: 1, At: noon})
			if domain.KindOf(err) != domain.KindInvalid {
				return fmt.Errorf("want invalid, got %w", err)
			}
			return nil
		}},
		{"settle", func() error {
			return l.Settle(ctx, ports.Settlement{ReservationID: "a", Caller: c, Model: "m", Cost: 5, At: noon})
		}},
		{"settle again", func() error {
			return l.Settle(ctx, ports.Settlement{ReservationID: "a", Caller: c, Model: "m", Cost: 5, At: noon})
		}},
		{"settle an unknown reservation", func() error {
			err := l.Settle(ctx, ports.Settlement{ReservationID: "nope", Caller: c, Model: "m", Cost: 5, At: noon})
			if domain.KindOf(err) != domain.KindNotFound {
				return fmt.Errorf("want not found, got %w", err)
			}
			return nil
		}},
		{"release", func() error { return l.Release(ctx, "free") }},
		{"release a settled reservation", func() error { return l.Release(ctx, "a") }},
	}
	backend := func() (pid int32, setting string) {
		t.Helper()
		if err := one.QueryRow(ctx, "SELECT pg_backend_pid(), current_setting('synchronous_commit')").Scan(&pid, &setting); err != nil {
			t.Fatal(err)
		}
		return pid, setting
	}
	first, _ := backend()
	for _, step := range steps {
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if pid, setting := backend(); pid != first || setting != "on" {
			t.Fatalf("after %s, the pool's connection is backend %d (was %d) with synchronous_commit=%s; want the same backend, on",
				step.name, pid, first, setting)
		}
	}
	var spent int64
	if err := pool.QueryRow(ctx, "SELECT spent_micros FROM tidygate_spend").Scan(&spent); err != nil || spent != 5 {
		t.Fatalf("spent %d (%v); want 5, committed and visible to another connection", spent, err)
	}
}

// oneBudgetLedger returns a ledger on a migrated database, its pool, and a
// caller with one daily budget of 100 µ$ on user u.
func oneBudgetLedger(t *testing.T) (*pgxpool.Pool, *postgres.Ledger, domain.Caller) {
	t.Helper()
	pool, _ := migrated(t)
	c := domain.Caller{KeyID: "k", User: "u", Team: "t",
		Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "u", Period: domain.PeriodDay, Limit: 100}}}
	return pool, postgres.NewLedger(pool, postgres.LedgerOptions{}), c
}

// TestExpireStale expires only holds older than the cutoff, and a late
// settlement of an expired reservation still counts its cost.
func TestExpireStale(t *testing.T) {
	pool, l, c := oneBudgetLedger(t)
	ctx := context.Background()
	for _, id := range []string{"crashed", "settled", "fresh"} {
		if err := l.Reserve(ctx, domain.Reservation{ID: id, Budgets: c.Budgets, Amount: 30, At: noon}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Settle(ctx, ports.Settlement{ReservationID: "settled", Caller: c, Model: "m", Cost: 10, At: noon}); err != nil {
		t.Fatal(err)
	}
	// Age two reservations as if their process had died an hour ago.
	if _, err := pool.Exec(ctx, `UPDATE tidygate_reservations SET created_at = now() - interval '1 hour'
		WHERE id IN ('crashed', 'settled')`); err != nil {
		t.Fatal(err)
	}

	ids, err := l.ExpireStale(ctx, 30*time.Minute)
	if err != nil || !slices.Equal(ids, []string{"crashed"}) {
		t.Fatalf("ExpireStale = %q, %v; want only the crashed call's hold", ids, err)
	}
	checkStatus(t, l, c, 10, 30)
	if ids, err := l.ExpireStale(ctx, 30*time.Minute); err != nil || len(ids) != 0 {
		t.Errorf("second ExpireStale = %q, %v; want none", ids, err)
	}

	// The crashed call did finish after all: its cost is not lost.
	if err := l.Settle(ctx, ports.Settlement{ReservationID: "crashed", Caller: c, Model: "m", Cost: 20, At: noon}); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(ctx, "crashed"); err != nil {
		t.Fatal(err)
	}
	checkStatus(t, l, c, 30, 30)

	if _, err := l.ExpireStale(ctx, 0); !errors.Is(err, domain.KindInvalid) {
		t.Errorf("ExpireStale(0) error = %v, want %v", err, domain.KindInvalid)
	}
}

// TestAnExpiredHoldStaysAnOrphanUntilSettled gives back a hold an earlier
// run of a call log left (the expiry sweep of another replica), and finds
// it among that log's orphans all the same: its cost is still owed, and
// settling it at its reservation counts it, after which it is no orphan.
func TestAnExpiredHoldStaysAnOrphanUntilSettled(t *testing.T) {
	pool, l, c := oneBudgetLedger(t)
	ctx := context.Background()
	earlier := domain.Holder{Log: "journal", Run: "earlier"}
	r := domain.Reservation{ID: "crashed", Budgets: c.Budgets, Amount: 30, At: noon, Holder: earlier,
		For: domain.ReservedCall{KeyID: "k", User: "u", Team: "t", Model: "m"}}
	if err := l.Reserve(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE tidygate_reservations SET created_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	if ids, err := l.ExpireStale(ctx, 30*time.Minute); err != nil || len(ids) != 1 {
		t.Fatalf("ExpireStale = %q, %v; want the hold expired", ids, err)
	}
	checkStatus(t, l, c, 0, 0)
	now := domain.Holder{Log: "journal", Run: "now"}
	got, err := l.Orphans(ctx, now)
	if err != nil || len(got) != 1 || got[0].ID != "crashed" || got[0].Amount != 30 || got[0].For != r.For {
		t.Fatalf("Orphans = %+v, %v; want the expired hold with whose call it was", got, err)
	}
	if err := l.Settle(ctx, ports.Settlement{ReservationID: "crashed", Caller: c, Model: "m", Cost: 30, At: noon}); err != nil {
		t.Fatal(err)
	}
	checkStatus(t, l, c, 30, 0)
	if got, err := l.Orphans(ctx, now); err != nil || len(got) != 0 {
		t.Errorf("Orphans after the settlement = %+v, %v; want none", got, err)
	}
}

// TestUnstorableNamesAreInvalid checks that names PostgreSQL cannot hold in
// a key are domain.KindInvalid errors, not database failures.
func TestUnstorableNamesAreInvalid(t *testing.T) {
	pool, _ := migrated(t)
	l := postgres.NewLedger(pool, postgres.LedgerOptions{})
	ctx := context.Background()
	long := strings.Repeat("é", postgres.MaxNameBytes/2) + "x"
	budget := func(id string) []domain.Budget {
		return []domain.Budget{{Scope: domain.ScopeUser, ScopeID: id, Period: domain.PeriodDay, Limit: 10}}
	}
	for name, r := range map[string]domain.Reservation{
		"long scope":   {ID: "r1", Budgets: budget(long), Amount: 1, At: noon},
		"NUL in scope": {ID: "r2", Budgets: budget("a\x00b"), Amount: 1, At: noon},
		"long ID":      {ID: long, Amount: 1, At: noon},
		"bad UTF-8 ID": {ID: "\xc3\x28", Amount: 1, At: noon},
	} {
		if err := l.Reserve(ctx, r); !errors.Is(err, domain.KindInvalid) {
			t.Errorf("%s: Reserve error = %v, want %v", name, err, domain.KindInvalid)
		}
	}
	if err := l.Reserve(ctx, domain.Reservation{ID: "ok", Amount: 1, At: noon}); err != nil {
		t.Fatal(err)
	}
	c := domain.Caller{KeyID: "k", User: "u", Team: "t"}
	for name, s := range map[string]ports.Settlement{
		"long model":    {ReservationID: "ok", Caller: c, Model: long, At: noon},
		"NUL in user":   {ReservationID: "ok", Caller: domain.Caller{User: "\x00"}, Model: "m", At: noon},
		"negative cost": {ReservationID: "ok", Caller: c, Model: "m", Cost: -1, At: noon},
	} {
		if err := l.Settle(ctx, s); !errors.Is(err, domain.KindInvalid) {
			t.Errorf("%s: Settle error = %v, want %v", name, err, domain.KindInvalid)
		}
	}
}

func checkStatus(t *testing.T, l *postgres.Ledger, c domain.Caller, spent, reserved domain.Micros) {
	t.Helper()
	rep, err := l.Report(context.Background(), c, noon, noon)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Budgets[0]; s.Spent != spent || s.Reserved != reserved {
		t.Errorf("budget = %+v, want %d spent and %d held", s, spent, reserved)
	}
}
