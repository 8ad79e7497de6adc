package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.SpendLedger = (*Ledger)(nil)

// Ledger holds budgets exactly across replicas: a reservation raises the
// held amount of each budget's spend row with one conditional statement
// under that row's lock, all in one transaction, so no two calls can both
// take the last room of a budget.
//
// Every transaction locks spend rows in budgetOrder, and settle and release
// lock their reservation row first, so transactions never deadlock.
type Ledger struct {
	db   Conns
	opts LedgerOptions
}

// LedgerOptions tune a Ledger; the zero value is the default.
type LedgerOptions struct {
	// SynchronousCommit makes each ledger transaction wait, at commit, until
	// PostgreSQL has flushed it to disk. By default the ledger commits
	// asynchronously (synchronous_commit off, for its own transactions
	// only): a commit is as atomic, isolated and visible to every replica
	// as a synchronous one, so budgets stay exact under concurrency, but it
	// returns before the fsync. The ledger's transactions hold the hot spend
	// rows of a user's and a team's budgets, so a commit that waited for the
	// disk would serialize each team's calls at the disk's fsync rate.
	//
	// The price: a PostgreSQL crash (not a restart, not a tidygate crash)
	// loses the ledger changes of the last few hundred milliseconds
	// (PostgreSQL bounds it at three times wal_writer_delay): holds of
	// calls then in flight, whose settlements fail and are noted in their
	// call records, and settlements, whose spend then goes uncounted in the
	// budgets. The call log, which never commits asynchronously, still holds
	// every call's cost.
	SynchronousCommit bool

	// LockTimeout bounds how long a reservation waits for a spend row that
	// another transaction holds (PostgreSQL's lock_timeout, for the
	// reservation's transaction only); zero waits as long as the operation
	// may. When it passes, Reserve fails with a retryable
	// domain.KindUnavailable error (code database_busy) and holds nothing,
	// so that one budget's contention (an operator's long transaction on a
	// user's row, a stuck replica) costs the other users' calls no pool
	// connections: the blocked user's new calls give their connection back
	// within the bound. Settlements and releases still wait for the row
	// (within the operation's deadline): they end calls that already ran,
	// and money must not be lost to a short wait.
	LockTimeout time.Duration
}

// NewLedger returns a ledger on db's tables (see Migrate).
func NewLedger(db Conns, opts LedgerOptions) *Ledger {
	return &Ledger{db: db, opts: opts}
}

// asyncCommit, queued in a ledger transaction, makes its commit
// asynchronous (see LedgerOptions.SynchronousCommit).
const asyncCommit = "SET LOCAL synchronous_commit TO off"

// begin returns the first batch of a ledger transaction: BEGIN, and
// asyncCommit unless the ledger commits synchronously. The transaction's
// first statements join it, and its last batch ends with COMMIT, so that a
// reservation costs one or two round trips and a settlement two, instead
// of separate ones for BEGIN and COMMIT (see pgkit.InTx).
func (l *Ledger) begin() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if !l.opts.SynchronousCommit {
		b.Queue(asyncCommit)
	}
	return b
}

// The states of a reservation: held until settled or released, or expired
// by ExpireStale when its process died holding it.
const (
	stateHeld     = "held"
	stateSettled  = "settled"
	stateReleased = "released"
	stateExpired  = "expired"
)

// counter is the spend row of one budget in one period.
type counter struct {
	budget domain.Budget // Limit is set only when reserving
	start  time.Time     // the period's first day, UTC
}

func counterOrder(a, b counter) int { return budgetOrder(a.budget, b.budget) }

// checkReservation adds the table's limits on names to domain's rules.
func checkReservation(r domain.Reservation) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := checkName("reservation_id", r.ID, true); err != nil {
		return err
	}
	for _, b := range r.Budgets {
		if err := checkName("budget", b.ScopeID, false); err != nil {
			return err
		}
	}
	return nil
}

const insertReservation = `INSERT INTO tidygate_reservations (id, amount_micros, reserved_at) VALUES ($1, $2, $3)`

const insertHolds = `INSERT INTO tidygate_reservation_holds (reservation_id, scope_kind, scope_id, period, period_start)
SELECT $1, h.scope_kind, h.scope_id, h.period, h.period_start
FROM unnest($2::text[], $3::text[], $4::text[], $5::date[]) AS h(scope_kind, scope_id, period, period_start)`

// reserveSpend raises the held amount of one spend row ($5) only while spent
// plus held stays within the limit ($6), creating the row if needed. It
// returns no row when the budget has no room.
const reserveSpend = `INSERT INTO tidygate_spend AS s (scope_kind, scope_id, period, period_start, reserved_micros)
SELECT $1::text, $2::text, $3::text, $4::date, $5::bigint WHERE $5::bigint <= $6::bigint
ON CONFLICT (scope_kind, scope_id, period, period_start) DO UPDATE
	SET reserved_micros = s.reserved_micros + EXCLUDED.reserved_micros
	WHERE EXCLUDED.reserved_micros <= $6::bigint - s.spent_micros - s.reserved_micros
RETURNING s.reserved_micros`

const selectUsed = `SELECT spent_micros + reserved_micros FROM tidygate_spend
WHERE scope_kind = $1 AND scope_id = $2 AND period = $3 AND period_start = $4`

// Reserve holds r.Amount against every budget in r.Budgets for the periods
// containing r.At, in one transaction of two round trips (one without
// budgets), or returns a
// domain.KindBudgetExceeded error naming the first budget without room and
// holds nothing. A reservation without budgets is only recorded, so that
// its settlement can count usage once. Reusing an ID is a
// domain.KindInvalid error.
func (l *Ledger) Reserve(ctx context.Context, r domain.Reservation) error {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	if err := checkReservation(r); err != nil {
		return err
	}
	doing := fmt.Sprintf("hold reservation %q", r.ID)
	if len(r.Budgets) == 0 {
		return pgkit.InTx(ctx, l.db, doing, func(conn *pgx.Conn) error {
			batch := l.begin()
			batch.Queue(insertReservation, r.ID, int64(r.Amount), r.At.UTC())
			batch.Queue("COMMIT")
			return conn.SendBatch(ctx, batch).Close()
		})
	}
	counters := make([]counter, len(r.Budgets))
	for i, b := range r.Budgets {
		counters[i] = counter{budget: b, start: b.Period.Start(r.At)}
	}
	slices.SortFunc(counters, counterOrder)
	return pgkit.InTx(ctx, l.db, doing, func(conn *pgx.Conn) error {
		kinds, ids, periods, starts := counterColumns(counters)
		batch := l.begin()
		if ms := l.opts.LockTimeout.Milliseconds(); ms > 0 {
			batch.Queue(fmt.Sprintf("SET LOCAL lock_timeout TO %d", ms))
		}
		batch.Queue(insertReservation, r.ID, int64(r.Amount), r.At.UTC())
		batch.Queue(insertHolds, r.ID, kinds, ids, periods, starts)
		var full *counter // the first budget without room
		for i := range counters {
			c := &counters[i]
			batch.Queue(reserveSpend, kinds[i], ids[i], periods[i], starts[i], int64(r.Amount), int64(c.budget.Limit)).
				QueryRow(func(row pgx.Row) error {
					var held int64
					err := row.Scan(&held)
					if !errors.Is(err, pgx.ErrNoRows) {
						return err
					}
					if full == nil {
						full = c
					}
					return nil
				})
		}
		if err := conn.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		if full == nil {
			_, err := conn.Exec(ctx, "COMMIT")
			return err
		}
		// Read what fills the budget; pgkit.InTx rolls the holds back.
		var used int64
		err := conn.QueryRow(ctx, selectUsed, string(full.budget.Scope), full.budget.ScopeID,
			string(full.budget.Period), full.start).Scan(&used)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return domain.BudgetExceeded(full.budget, domain.Micros(used), r.Amount)
	})
}

// counterColumns returns the key columns of counters as parallel arrays.
func counterColumns(counters []counter) (kinds, ids, periods []string, starts []time.Time) {
	for _, c := range counters {
		kinds = append(kinds, string(c.budget.Scope))
		ids = append(ids, c.budget.ScopeID)
		periods = append(periods, string(c.budget.Period))
		starts = append(starts, c.start)
	}
	return kinds, ids, periods, starts
}

// heldReservation is a reservation row, locked, with its spend rows in
// counterOrder.
type heldReservation struct {
	state    string
	amount   domain.Micros
	at       time.Time
	counters []counter
}

const lockReservation = `SELECT r.state, r.amount_micros, r.reserved_at, h.scope_kind, h.scope_id, h.period, h.period_start
FROM tidygate_reservations r
LEFT JOIN tidygate_reservation_holds h ON h.reservation_id = r.id
WHERE r.id = $1
FOR UPDATE OF r`

// lock begins a ledger transaction on conn that locks the reservation's row
// and reads it, in one round trip, or returns a domain.KindNotFound error.
// The caller ends the transaction.
func (l *Ledger) lock(ctx context.Context, conn *pgx.Conn, id string) (heldReservation, error) {
	var res heldReservation
	found := false
	batch := l.begin()
	batch.Queue(lockReservation, id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var amount int64
			var kind, scopeID, period *string
			var start *time.Time
			if err := rows.Scan(&res.state, &amount, &res.at, &kind, &scopeID, &period, &start); err != nil {
				return err
			}
			found, res.amount = true, domain.Micros(amount)
			if kind != nil {
				res.counters = append(res.counters, counter{start: *start,
					budget: domain.Budget{Scope: domain.ScopeKind(*kind), ScopeID: *scopeID, Period: domain.Period(*period)}})
			}
		}
		return rows.Err()
	})
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return heldReservation{}, err
	}
	if !found {
		return heldReservation{}, &domain.Error{Kind: domain.KindNotFound, Code: "reservation_not_found",
			Message: fmt.Sprintf("there is no reservation %q", id)}
	}
	slices.SortFunc(res.counters, counterOrder)
	return res, nil
}

const finishReservation = `UPDATE tidygate_reservations SET state = $2, finished_at = now() WHERE id = $1`

const moveSpend = `UPDATE tidygate_spend
SET spent_micros = spent_micros + $5, reserved_micros = reserved_micros - $6
WHERE scope_kind = $1 AND scope_id = $2 AND period = $3 AND period_start = $4`

// queueMoves queues, in counterOrder, adding spent to and taking held from
// each spend row of res.
func queueMoves(batch *pgx.Batch, res heldReservation, spent, held domain.Micros) {
	for _, c := range res.counters {
		batch.Queue(moveSpend, string(c.budget.Scope), c.budget.ScopeID, string(c.budget.Period), c.start,
			int64(spent), int64(held)).
			Exec(func(tag pgconn.CommandTag) error {
				if tag.RowsAffected() != 1 {
					return fmt.Errorf("the spend row of %s for %s is missing", c.budget, c.start.Format(time.DateOnly))
				}
				return nil
			})
	}
}

const upsertUsage = `INSERT INTO tidygate_usage AS u
	(user_id, day, team_id, key_id, model, requests, prompt_tokens, completion_tokens, cost_micros)
VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)
ON CONFLICT (user_id, day, team_id, key_id, model) DO UPDATE SET
	requests = u.requests + 1,
	prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
	completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
	cost_micros = u.cost_micros + EXCLUDED.cost_micros`

// checkSettlement returns a domain.KindInvalid error when s cannot be recorded.
func checkSettlement(s ports.Settlement) error {
	if s.Cost < 0 || s.Usage.PromptTokens < 0 || s.Usage.CompletionTokens < 0 {
		return domain.InvalidParam("settlement", "a settlement's cost and token counts must not be negative")
	}
	for _, f := range []struct{ param, value string }{
		{"user", s.Caller.User}, {"team", s.Caller.Team}, {"key_id", s.Caller.KeyID}, {"model", s.Model},
	} {
		if err := checkName(f.param, f.value, false); err != nil {
			return err
		}
	}
	return nil
}

// Settle replaces the reservation's hold by the actual cost on the spend
// rows it was reserved against (the periods of the reservation, even when
// settled after midnight), and adds one request to the caller's usage on the
// reservation's day, so that a day's usage adds up to that day's spend.
//
// Settling a settled or released reservation changes nothing. A reservation
// that ExpireStale expired no longer holds anything, but its cost is still
// counted: spend is never lost. An unknown reservation is a
// domain.KindNotFound error.
func (l *Ledger) Settle(ctx context.Context, s ports.Settlement) error {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	if err := checkSettlement(s); err != nil {
		return err
	}
	return pgkit.InTx(ctx, l.db, fmt.Sprintf("settle reservation %q", s.ReservationID), func(conn *pgx.Conn) error {
		res, err := l.lock(ctx, conn, s.ReservationID)
		if err != nil {
			return err
		}
		held := res.amount
		switch res.state {
		case stateSettled, stateReleased:
			return nil // nothing to change; pgkit.InTx ends the transaction
		case stateExpired:
			held = 0
		}
		batch := &pgx.Batch{}
		batch.Queue(finishReservation, s.ReservationID, stateSettled)
		batch.Queue(upsertUsage, s.Caller.User, domain.PeriodDay.Start(res.at), s.Caller.Team, s.Caller.KeyID, s.Model,
			int64(s.Usage.PromptTokens), int64(s.Usage.CompletionTokens), int64(s.Cost))
		queueMoves(batch, res, s.Cost, held)
		batch.Queue("COMMIT")
		return conn.SendBatch(ctx, batch).Close()
	})
}

// Release drops the reservation's hold. Releasing a reservation that is no
// longer held changes nothing; an unknown reservation is a
// domain.KindNotFound error.
func (l *Ledger) Release(ctx context.Context, reservationID string) error {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	_, err := l.drop(ctx, reservationID, stateReleased, fmt.Sprintf("release reservation %q", reservationID))
	return err
}

// drop ends a held reservation in state to, giving its hold back, and
// reports whether it was held.
func (l *Ledger) drop(ctx context.Context, id, to, doing string) (bool, error) {
	dropped := false
	err := pgkit.InTx(ctx, l.db, doing, func(conn *pgx.Conn) error {
		res, err := l.lock(ctx, conn, id)
		if err != nil {
			return err
		}
		if res.state != stateHeld {
			return nil // nothing to give back; pgkit.InTx ends the transaction
		}
		batch := &pgx.Batch{}
		batch.Queue(finishReservation, id, to)
		queueMoves(batch, res, 0, res.amount)
		batch.Queue("COMMIT")
		if err := conn.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		dropped = true
		return nil
	})
	return dropped && err == nil, err
}

// staleBatch is how many stale reservations ExpireStale reads at a time.
const staleBatch = 500

const selectStale = `SELECT id FROM tidygate_reservations
WHERE state = 'held' AND created_at < now() - $1::bigint * interval '1 microsecond'
ORDER BY created_at
LIMIT $2`

// ExpireStale gives back the holds of reservations made more than olderThan
// ago (by the database's clock) and neither settled nor released: those of
// processes killed during a call. It returns how many it expired. A later
// Settle of an expired reservation still counts its cost. olderThan must be
// positive and should exceed the longest call.
func (l *Ledger) ExpireStale(ctx context.Context, olderThan time.Duration) (int, error) {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	if olderThan <= 0 {
		return 0, domain.InvalidParam("older_than", "the age of stale reservations must be positive")
	}
	expired := 0
	for {
		var ids []string
		err := pgkit.WithConn(ctx, l.db, "find stale reservations", func(conn *pgxpool.Conn) error {
			rows, err := conn.Query(ctx, selectStale, olderThan.Microseconds(), staleBatch)
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			return expired, err
		}
		for _, id := range ids {
			dropped, err := l.drop(ctx, id, stateExpired, fmt.Sprintf("expire reservation %q", id))
			if err != nil {
				return expired, err
			}
			if dropped {
				expired++
			}
		}
		if len(ids) < staleBatch {
			return expired, nil
		}
	}
}

const selectUsage = `SELECT day, model, sum(requests)::bigint, sum(prompt_tokens)::bigint,
	sum(completion_tokens)::bigint, sum(cost_micros)::bigint
FROM tidygate_usage
WHERE user_id = $1 AND day BETWEEN $2 AND $3
GROUP BY day, model
ORDER BY day, model COLLATE "C"`

const selectStatus = `SELECT coalesce(s.spent_micros, 0), coalesce(s.reserved_micros, 0)
FROM unnest($1::text[], $2::text[], $3::text[], $4::date[]) WITH ORDINALITY
	AS b(scope_kind, scope_id, period, period_start, n)
LEFT JOIN tidygate_spend s USING (scope_kind, scope_id, period, period_start)
ORDER BY b.n`

// Report returns the usage of the caller's user (across their keys) from
// the UTC day of from to that of now, by day and model, and the state of
// each of the caller's budgets in the period containing now.
func (l *Ledger) Report(ctx context.Context, c domain.Caller, from, now time.Time) (domain.UsageReport, error) {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	for _, b := range c.Budgets {
		if err := checkBudget(b); err != nil {
			return domain.UsageReport{}, err
		}
	}
	rep := domain.UsageReport{User: c.User, Team: c.Team}
	err := pgkit.WithConn(ctx, l.db, "read the usage report", func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, selectUsage, c.User, domain.PeriodDay.Start(from), domain.PeriodDay.Start(now))
		if err != nil {
			return err
		}
		if rep.Rows, err = pgx.CollectRows(rows, scanUsage); err != nil || len(c.Budgets) == 0 {
			return err
		}
		counters := make([]counter, len(c.Budgets))
		for i, b := range c.Budgets {
			counters[i] = counter{budget: b, start: b.Period.Start(now)}
		}
		kinds, ids, periods, starts := counterColumns(counters)
		rows, err = conn.Query(ctx, selectStatus, kinds, ids, periods, starts)
		if err != nil {
			return err
		}
		amounts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[spendRow])
		if err != nil {
			return err
		}
		if len(amounts) != len(c.Budgets) {
			return fmt.Errorf("read %d budget states for %d budgets", len(amounts), len(c.Budgets))
		}
		rep.Budgets = make([]domain.BudgetStatus, len(amounts))
		for i, a := range amounts {
			rep.Budgets[i] = domain.BudgetStatus{Budget: c.Budgets[i], Spent: domain.Micros(a.Spent), Reserved: domain.Micros(a.Reserved)}
		}
		return nil
	})
	if err != nil {
		return domain.UsageReport{}, err
	}
	return rep, nil
}

// spendRow is one row of selectStatus.
type spendRow struct{ Spent, Reserved int64 }

// scanUsage converts one row of selectUsage.
func scanUsage(row pgx.CollectableRow) (domain.UsageRow, error) {
	var r domain.UsageRow
	var cost int64
	err := row.Scan(&r.Day, &r.Model, &r.Requests, &r.PromptTokens, &r.CompletionTokens, &cost)
	r.Day, r.Cost = r.Day.UTC(), domain.Micros(cost)
	return r, err
}
