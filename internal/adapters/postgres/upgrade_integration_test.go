//go:build integration

package postgres_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// The statements of the previous release (commit 44ea535, before budget
// periods), verbatim from its internal/adapters/postgres/keys.go and
// ledger.go: what its replicas run against the database during a rolling
// upgrade. They must keep working against the new schema.
const (
	prevInsertKey = `INSERT INTO tidygate_api_keys (id, key_hash, user_id, team_id, allowed_models, rpm, tpm, max_concurrent)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (key_hash) DO NOTHING`
	prevUpsertBudget = `INSERT INTO tidygate_budgets (scope_kind, scope_id, period, limit_micros)
VALUES ($1, $2, $3, $4)
ON CONFLICT (scope_kind, scope_id, period) DO UPDATE SET limit_micros = EXCLUDED.limit_micros`
	prevSelectKeys = `SELECT k.id, k.key_hash, k.user_id, k.team_id, k.allowed_models, k.rpm, k.tpm, k.max_concurrent,
	k.created_at, k.revoked_at, b.scope_kind, b.scope_id, b.period, b.limit_micros
FROM tidygate_api_keys k
LEFT JOIN tidygate_budgets b
	ON (b.scope_kind = 'user' AND b.scope_id = k.user_id) OR (b.scope_kind = 'team' AND b.scope_id = k.team_id)`
	prevInsertReservation = `INSERT INTO tidygate_reservations (id, amount_micros, reserved_at) VALUES ($1, $2, $3)`
	prevInsertHolds       = `INSERT INTO tidygate_reservation_holds (reservation_id, scope_kind, scope_id, period, period_start)
SELECT $1, h.scope_kind, h.scope_id, h.period, h.period_start
FROM unnest($2::text[], $3::text[], $4::text[], $5::date[]) AS h(scope_kind, scope_id, period, period_start)`
	prevReserveSpend = `INSERT INTO tidygate_spend AS s (scope_kind, scope_id, period, period_start, reserved_micros)
SELECT $1::text, $2::text, $3::text, $4::date, $5::bigint WHERE $5::bigint <= $6::bigint
ON CONFLICT (scope_kind, scope_id, period, period_start) DO UPDATE
	SET reserved_micros = s.reserved_micros + EXCLUDED.reserved_micros
	WHERE EXCLUDED.reserved_micros <= $6::bigint - s.spent_micros - s.reserved_micros
RETURNING s.reserved_micros`
	prevLockReservation = `SELECT r.state, r.amount_micros, r.reserved_at, h.scope_kind, h.scope_id, h.period, h.period_start
FROM tidygate_reservations r
LEFT JOIN tidygate_reservation_holds h ON h.reservation_id = r.id
WHERE r.id = $1
FOR UPDATE OF r`
	prevFinishReservation = `UPDATE tidygate_reservations SET state = $2, finished_at = now() WHERE id = $1`
	prevMoveSpend         = `UPDATE tidygate_spend
SET spent_micros = spent_micros + $5, reserved_micros = reserved_micros - $6
WHERE scope_kind = $1 AND scope_id = $2 AND period = $3 AND period_start = $4`
	prevUpsertUsage = `INSERT INTO tidygate_usage AS u
	(user_id, day, team_id, key_id, model, requests, prompt_tokens, completion_tokens, cost_micros)
VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)
ON CONFLICT (user_id, day, team_id, key_id, model) DO UPDATE SET
	requests = u.requests + 1,
	prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
	completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
	cost_micros = u.cost_micros + EXCLUDED.cost_micros`
)

// TestPreviousReleaseWorksOnTheNewSchema runs the previous release's
// statements against a database the new code migrated and uses: it
// creates a key, reads keys back (seeing only the budgets it knows), and
// reserves and settles a call against a user's daily budget that the new
// ledger enforces too, on the same row, so that a budget stays exact while
// old and new replicas serve side by side.
func TestPreviousReleaseWorksOnTheNewSchema(t *testing.T) {
	pool, dsn := migrated(t)
	ctx := context.Background()
	old, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close(ctx)
	store := postgres.NewKeyStore(pool)
	ledger := postgres.NewLedger(pool, postgres.LedgerOptions{AlertThresholds: []int{50}})

	// The new release makes a key with budgets of every shape.
	newKey, newSecret, err := store.Create(ctx, postgres.NewKey{User: "ada", Team: "lab", DailyBudget: 100,
		More: []domain.Budget{
			{Scope: domain.ScopeKey, Period: domain.PeriodWeek, Limit: 1000},
			{Scope: domain.ScopeTeam, Period: domain.RollingPeriod(24 * time.Hour), Limit: 1000},
			{Scope: domain.ScopeUser, Period: domain.PeriodMonth, Limit: 500, Model: "gpt"},
		}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}

	// The previous release creates a key of its own, with a budget.
	if _, err := old.Exec(ctx, prevInsertKey, "key_old", domain.HashKey("tg-old-release-key-000000000"), "ada", "lab", []string{}, 0, 0, 0); err != nil {
		t.Fatalf("previous release: insert key: %v", err)
	}
	if _, err := old.Exec(ctx, prevUpsertBudget, "team", "lab", "month", int64(5000)); err != nil {
		t.Fatalf("previous release: upsert budget: %v", err)
	}

	// It reads keys with the budgets it understands, and nothing else.
	rows, err := old.Query(ctx, prevSelectKeys+" WHERE k.user_id = $1 ORDER BY k.id, b.scope_kind, b.period", "ada")
	if err != nil {
		t.Fatalf("previous release: select keys: %v", err)
	}
	var seen []string
	for rows.Next() {
		var id, hash, user, team string
		var models []string
		var rpm, tpm, conc int32
		var created time.Time
		var revoked *time.Time
		var kind, scopeID, period *string
		var limit *int64
		if err := rows.Scan(&id, &hash, &user, &team, &models, &rpm, &tpm, &conc, &created, &revoked, &kind, &scopeID, &period, &limit); err != nil {
			t.Fatalf("previous release: scan keys: %v", err)
		}
		if kind != nil {
			b := domain.Budget{Scope: domain.ScopeKind(*kind), ScopeID: *scopeID, Period: domain.Period(*period), Limit: domain.Micros(*limit)}
			if err := b.Validate(); err != nil || !b.Legacy() {
				t.Errorf("the previous release would read a budget it cannot enforce: %+v", b)
			}
			seen = append(seen, string(b.Scope)+"/"+string(b.Period))
		}
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	slices.Sort(seen)
	if want := []string{"team/month", "team/month", "user/day", "user/day"}; !slices.Equal(seen, want) { // two keys, two budgets each
		t.Errorf("the previous release saw budgets %v, want %v", seen, want)
	}

	// The new release sees the old key's budgets and its own.
	c, err := store.CallerByKeyHash(ctx, domain.HashKey(newSecret))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Budgets) != 5 || !slices.ContainsFunc(c.Budgets, func(b domain.Budget) bool {
		return b.Scope == domain.ScopeKey && b.ScopeID == newKey.ID && b.Period == domain.PeriodWeek
	}) {
		t.Fatalf("the new release read budgets %v, want 5 with the key's own per week", c.Budgets)
	}

	// Old and new replicas hold the same user's daily budget of 100.
	day := time.Date(2030, time.March, 15, 0, 0, 0, 0, time.UTC)
	at := day.Add(12 * time.Hour)
	oldReserve := func(id string, amount int64) bool {
		tx, err := old.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, prevInsertReservation, id, amount, at); err != nil {
			t.Fatalf("previous release: insert reservation: %v", err)
		}
		if _, err := tx.Exec(ctx, prevInsertHolds, id, []string{"user"}, []string{"ada"}, []string{"day"}, []time.Time{day}); err != nil {
			t.Fatalf("previous release: insert holds: %v", err)
		}
		var held int64
		err = tx.QueryRow(ctx, prevReserveSpend, "user", "ada", "day", day, amount, int64(100)).Scan(&held)
		if errors.Is(err, pgx.ErrNoRows) {
			return false
		}
		if err != nil {
			t.Fatalf("previous release: reserve: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return true
	}
	if !oldReserve("old-1", 60) {
		t.Fatal("the previous release could not reserve 60 of an empty budget of 100")
	}
	daily := domain.Budget{Scope: domain.ScopeUser, ScopeID: "ada", Period: domain.PeriodDay, Limit: 100}
	err = ledger.Reserve(ctx, domain.Reservation{ID: "new-1", Budgets: []domain.Budget{daily}, Amount: 50, At: at})
	if domain.KindOf(err) != domain.KindBudgetExceeded {
		t.Fatalf("new release: Reserve(50) with 60 of 100 held by the previous release: %v, want budget_exceeded", err)
	}
	if err := ledger.Reserve(ctx, domain.Reservation{ID: "new-2", Budgets: []domain.Budget{daily}, Amount: 40, At: at}); err != nil {
		t.Fatalf("new release: Reserve(40): %v", err)
	}
	if oldReserve("old-2", 1) {
		t.Fatal("the previous release reserved past the limit the new release filled")
	}

	// The previous release settles its call the way it does.
	tx, err := old.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var state string
	var amount int64
	var reservedAt time.Time
	var kind, scopeID, period *string
	var start *time.Time
	if err := tx.QueryRow(ctx, prevLockReservation, "old-1").Scan(&state, &amount, &reservedAt, &kind, &scopeID, &period, &start); err != nil {
		t.Fatalf("previous release: lock reservation: %v", err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{prevFinishReservation, []any{"old-1", "settled"}},
		{prevUpsertUsage, []any{"ada", day, "lab", "key_old", "gpt", int64(10), int64(20), int64(30)}},
		{prevMoveSpend, []any{*kind, *scopeID, *period, *start, int64(30), amount}},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("previous release: settle: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// The new release settles its own, and sees both in the budget.
	err = ledger.Settle(ctx, ports.Settlement{ReservationID: "new-2", Caller: c, Model: "gpt", Cost: 25, At: at})
	if err != nil {
		t.Fatalf("new release: Settle: %v", err)
	}
	rep, err := ledger.Report(ctx, domain.Caller{User: "ada", Team: "lab", Budgets: []domain.Budget{daily}}, at, at)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Budgets[0]; s.Spent != 55 || s.Reserved != 0 {
		t.Errorf("the daily budget after both settled: %+v, want 55 spent, nothing held", s)
	}
}
