package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.SpendLedger = (*Ledger)(nil)

// Ledger holds budgets exactly across replicas: a reservation raises the
// held amount of each calendar budget's spend row with one conditional
// statement under that row's lock, all in one transaction, so no two calls
// can both take the last room of a budget. A rolling budget has no row per
// period: under a transaction-level advisory lock of its own, one
// statement sums the holds and costs of the reservations in the window
// (an index range scan, so its cost grows with the calls in the window)
// and adds the reservation's hold only if it fits.
//
// Every transaction locks spend rows and rolling budgets in budgetOrder,
// and settle and release lock their reservation row first, so
// transactions never deadlock.
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

	// Location is the budget time zone the calendar periods follow
	// (BUDGET_TIME_ZONE); nil is UTC. Usage rows stay per UTC day.
	Location *time.Location

	// AlertThresholds are the percentages of a budget whose crossing, by
	// the spending a settlement adds, raises a budget alert (kept in
	// tidygate_budget_alerts until delivered; see ports.AlertOutbox).
	AlertThresholds []int
}

// NewLedger returns a ledger on db's tables (see Migrate).
func NewLedger(db Conns, opts LedgerOptions) *Ledger {
	if opts.Location == nil {
		opts.Location = time.UTC
	}
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

// counter is the spend of one budget: its row for one calendar period, or
// its rolling window.
type counter struct {
	budget domain.Budget // Limit is 0 when unknown (holds of earlier releases)
	start  time.Time     // a calendar period's first day (as UTC midnight); zero for a rolling window
	window time.Duration // a rolling window's length; zero for a calendar period
}

func counterOrder(a, b counter) int { return budgetOrder(a.budget, b.budget) }

// counterOf returns the counter of b at t.
func (l *Ledger) counterOf(b domain.Budget, t time.Time) counter {
	if d, ok := b.Period.Window(); ok {
		return counter{budget: b, window: d}
	}
	return counter{budget: b, start: b.Period.PeriodDate(t, l.opts.Location)}
}

// windowLock is the advisory lock a rolling budget's reservations and
// settlements take turns under: a 64-bit hash of its counter. Two budgets
// sharing a hash only take turns more often than they must.
func windowLock(c counter) int64 {
	h := fnv.New64a()
	for _, part := range []string{"tidygate window", string(c.budget.Scope), c.budget.ScopeID, counterName(c.budget)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

const takeWindowLock = `SELECT pg_advisory_xact_lock($1)`

// checkReservation adds the table's limits on names to domain's rules.
func checkReservation(r domain.Reservation) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if err := checkName("reservation_id", r.ID, true); err != nil {
		return err
	}
	f := r.For
	for _, v := range []struct{ param, value string }{
		{"holder", r.Holder.Log}, {"holder", r.Holder.Run}, {"key_id", f.KeyID}, {"user", f.User}, {"team", f.Team},
		{"endpoint", string(f.Endpoint)}, {"model", f.Model}, {"group", f.Group},
	} {
		if err := checkName(v.param, v.value, false); err != nil {
			return err
		}
	}
	for _, b := range r.Budgets {
		if err := checkName("budget", b.ScopeID, false); err != nil {
			return err
		}
		if err := checkName("budget", b.Model, false); err != nil {
			return err
		}
	}
	return nil
}

// insertReservation records a reservation with who took it and whose call
// it is for (empty values stored as NULL): reservationArgs' order.
const insertReservation = `INSERT INTO tidygate_reservations
	(id, amount_micros, reserved_at, holder_log, holder_run, key_id, user_id, team_id, endpoint, for_model, for_group)
VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), NULLIF($9, ''), NULLIF($10, ''), NULLIF($11, ''))`

// reservationArgs are insertReservation's arguments for r.
func reservationArgs(r domain.Reservation) []any {
	f := r.For
	return []any{r.ID, int64(r.Amount), r.At.UTC(), r.Holder.Log, r.Holder.Run, f.KeyID, f.User, f.Team, string(f.Endpoint), f.Model, f.Group}
}

// insertHold records that a reservation holds a calendar budget's period.
const insertHold = `INSERT INTO tidygate_reservation_holds (reservation_id, scope_kind, scope_id, period, period_start, limit_micros)
VALUES ($1, $2, $3, $4, $5, $6)`

// reserveSpend raises the held amount of one spend row ($5) only while spent
// plus held stays within the limit ($6), creating the row if needed. It
// returns no row when the budget has no room.
const reserveSpend = `INSERT INTO tidygate_spend AS s (scope_kind, scope_id, period, period_start, reserved_micros)
SELECT $1::text, $2::text, $3::text, $4::date, $5::bigint WHERE $5::bigint <= $6::bigint
ON CONFLICT (scope_kind, scope_id, period, period_start) DO UPDATE
	SET reserved_micros = s.reserved_micros + EXCLUDED.reserved_micros
	WHERE EXCLUDED.reserved_micros <= $6::bigint - s.spent_micros - s.reserved_micros
RETURNING s.reserved_micros`

const selectUsed = `SELECT spent_micros, reserved_micros FROM tidygate_spend
WHERE scope_kind = $1 AND scope_id = $2 AND period = $3 AND period_start = $4`

// windowUsed sums what a rolling budget ($1, $2, $3) holds and spent in
// the window after $4: one range scan of tidygate_window_spend_window_idx.
const windowUsed = `SELECT coalesce(sum(spent_micros), 0)::bigint, coalesce(sum(held_micros), 0)::bigint
FROM tidygate_window_spend WHERE scope_kind = $1 AND scope_id = $2 AND period = $3 AND at > $4`

// reserveWindow adds the reservation's hold ($6) to a rolling budget only
// while what the window after $8 holds and spent leaves room for it under
// the limit ($7). It returns no row when the budget has no room. The
// caller holds the budget's windowLock, taken by an earlier statement, so
// this statement's snapshot sees every earlier reservation.
const reserveWindow = `INSERT INTO tidygate_window_spend (reservation_id, scope_kind, scope_id, period, at, limit_micros, held_micros)
SELECT $1::text, $2::text, $3::text, $4::text, $5::timestamptz, $7::bigint, $6::bigint
WHERE $6::bigint <= $7::bigint - (SELECT coalesce(sum(w.held_micros + w.spent_micros), 0) FROM tidygate_window_spend w
	WHERE w.scope_kind = $2::text AND w.scope_id = $3::text AND w.period = $4::text AND w.at > $8::timestamptz)
RETURNING held_micros`

// Reserve holds r.Amount against every budget in r.Budgets for the periods
// containing r.At (the windows ending at r.At), in one transaction of two
// round trips (one without budgets), or returns a
// domain.KindBudgetExceeded error naming the first budget without room and
// holds nothing. A reservation without budgets is only recorded, so that
// its settlement can count usage once. Reusing an ID is a
// domain.KindInvalid error.
func (l *Ledger) Reserve(ctx context.Context, r domain.Reservation) error {
	return l.ReserveSending(ctx, r, func() {})
}

// ReserveSending is Reserve (ports.ReservationSender). A reservation
// without budgets is one batch, BEGIN to COMMIT, which pgx writes to the
// connection whole before SendBatch returns: sent is called then, unless
// the write closed the connection, and PostgreSQL executes the batch it
// has received, COMMIT included, whether or not this process is still
// there to read the answer.
func (l *Ledger) ReserveSending(ctx context.Context, r domain.Reservation, sent func()) error {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	if err := checkReservation(r); err != nil {
		return err
	}
	doing := fmt.Sprintf("hold reservation %q", r.ID)
	if len(r.Budgets) == 0 {
		return pgkit.InTx(ctx, l.db, doing, func(conn *pgx.Conn) error {
			batch := l.begin()
			batch.Queue(insertReservation, reservationArgs(r)...)
			batch.Queue("COMMIT")
			results := conn.SendBatch(ctx, batch)
			if !conn.IsClosed() {
				sent()
			}
			return results.Close()
		})
	}
	counters := make([]counter, len(r.Budgets))
	for i, b := range r.Budgets {
		counters[i] = l.counterOf(b, r.At)
	}
	slices.SortFunc(counters, counterOrder)
	var exhausted struct { // the budget that refused the call for what it has spent, if one did
		c         *counter
		threshold int
		spent     domain.Micros
	}
	err := pgkit.InTx(ctx, l.db, doing, func(conn *pgx.Conn) error {
		batch := l.begin()
		if ms := l.opts.LockTimeout.Milliseconds(); ms > 0 {
			batch.Queue(fmt.Sprintf("SET LOCAL lock_timeout TO %d", ms))
		}
		batch.Queue(insertReservation, reservationArgs(r)...)
		var full *counter // the first budget without room
		noRoom := func(c *counter) func(pgx.Row) error {
			return func(row pgx.Row) error {
				var held int64
				err := row.Scan(&held)
				if !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				if full == nil {
					full = c
				}
				return nil
			}
		}
		for i := range counters {
			c := &counters[i]
			kind, name := string(c.budget.Scope), counterName(c.budget)
			if c.window > 0 {
				batch.Queue(takeWindowLock, windowLock(*c))
				batch.Queue(reserveWindow, r.ID, kind, c.budget.ScopeID, name, r.At.UTC(), int64(r.Amount),
					int64(c.budget.Limit), r.At.Add(-c.window).UTC()).QueryRow(noRoom(c))
				continue
			}
			batch.Queue(insertHold, r.ID, kind, c.budget.ScopeID, name, c.start, int64(c.budget.Limit))
			batch.Queue(reserveSpend, kind, c.budget.ScopeID, name, c.start, int64(r.Amount), int64(c.budget.Limit)).
				QueryRow(noRoom(c))
		}
		if err := conn.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		if full == nil {
			_, err := conn.Exec(ctx, "COMMIT")
			return err
		}
		// Read what fills the budget; pgkit.InTx rolls the holds back.
		spent, held, err := l.used(ctx, conn, *full, r.At)
		if err != nil {
			return err
		}
		if t := domain.ExhaustedThreshold(l.opts.AlertThresholds, full.budget.Limit, spent, r.Amount); t > 0 {
			exhausted.c, exhausted.threshold, exhausted.spent = full, t, spent
		}
		return domain.BudgetExceeded(full.budget, spent+held, r.Amount)
	})
	if exhausted.c != nil {
		if aerr := l.raiseExhausted(ctx, *exhausted.c, r.At, exhausted.threshold, exhausted.spent); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	return err
}

// used returns what c's budget has spent and what it holds in the period
// (the window ending at t), for a refusal.
func (l *Ledger) used(ctx context.Context, conn *pgx.Conn, c counter, t time.Time) (spent, held domain.Micros, err error) {
	if c.window > 0 {
		err = conn.QueryRow(ctx, windowUsed, string(c.budget.Scope), c.budget.ScopeID, counterName(c.budget),
			t.Add(-c.window).UTC()).Scan(&spent, &held)
	} else {
		err = conn.QueryRow(ctx, selectUsed, string(c.budget.Scope), c.budget.ScopeID, counterName(c.budget), c.start).Scan(&spent, &held)
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, err
	}
	return domain.Micros(spent), domain.Micros(held), nil
}

// raiseAlert raises one budget alert unless it was raised already: the
// 100 % alert of a budget that refused a call (domain.ExhaustedThreshold).
const raiseAlert = `INSERT INTO tidygate_budget_alerts (scope_kind, scope_id, period, period_start, threshold, limit_micros, spent_micros)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`

// raiseExhausted raises the alert of a budget that refused a call for what
// it has spent (see domain.ExhaustedThreshold), outside the refused
// reservation's transaction, which is rolled back.
func (l *Ledger) raiseExhausted(ctx context.Context, c counter, at time.Time, threshold int, spent domain.Micros) error {
	return pgkit.WithConn(ctx, l.db, "raise a budget alert", func(conn *pgxpool.Conn) error {
		_, err := conn.Exec(ctx, raiseAlert, string(c.budget.Scope), c.budget.ScopeID, counterName(c.budget),
			domain.AlertPeriod(c.budget, at, l.opts.Location), threshold, int64(c.budget.Limit), int64(spent))
		return err
	})
}

// heldReservation is a reservation row, locked, with its counters in
// counterOrder.
type heldReservation struct {
	id       string
	state    string
	amount   domain.Micros
	at       time.Time
	counters []counter
}

const lockReservation = `SELECT r.state, r.amount_micros, r.reserved_at, h.scope_kind, h.scope_id, h.period, h.period_start, h.limit_micros
FROM tidygate_reservations r
LEFT JOIN tidygate_reservation_holds h ON h.reservation_id = r.id
WHERE r.id = $1
FOR UPDATE OF r`

// selectWindowHolds reads the rolling budgets a reservation holds. It runs
// after lockReservation, whose lock keeps them from changing.
const selectWindowHolds = `SELECT scope_kind, scope_id, period, limit_micros FROM tidygate_window_spend WHERE reservation_id = $1`

// lock begins a ledger transaction on conn that locks the reservation's row
// and reads it, in one round trip, or returns a domain.KindNotFound error.
// The caller ends the transaction.
func (l *Ledger) lock(ctx context.Context, conn *pgx.Conn, id string) (heldReservation, error) {
	res := heldReservation{id: id}
	batch := l.begin()
	found := queueLock(batch, &res)
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return heldReservation{}, err
	}
	if !*found {
		return heldReservation{}, &domain.Error{Kind: domain.KindNotFound, Code: "reservation_not_found",
			Message: fmt.Sprintf("there is no reservation %q", id)}
	}
	slices.SortFunc(res.counters, counterOrder)
	return res, nil
}

// queueLock queues the statements that lock res.id's row and read it into
// res, with its holds, and returns where the batch's results will say
// whether the row was found. Each statement names one reservation by an
// equality, so that PostgreSQL plans it once per connection (a list of ids
// in an array would be planned again at every execution).
func queueLock(batch *pgx.Batch, res *heldReservation) *bool {
	found := new(bool)
	batch.Queue(lockReservation, res.id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var amount int64
			var kind, scopeID, name *string
			var start *time.Time
			var limit *int64
			if err := rows.Scan(&res.state, &amount, &res.at, &kind, &scopeID, &name, &start, &limit); err != nil {
				return err
			}
			*found, res.amount = true, domain.Micros(amount)
			if kind != nil {
				c := counter{start: *start, budget: storedBudget(*kind, *scopeID, *name, limit)}
				res.counters = append(res.counters, c)
			}
		}
		return rows.Err()
	})
	batch.Queue(selectWindowHolds, res.id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var kind, scopeID, name string
			var limit int64
			if err := rows.Scan(&kind, &scopeID, &name, &limit); err != nil {
				return err
			}
			b := storedBudget(kind, scopeID, name, &limit)
			d, _ := b.Period.Window()
			res.counters = append(res.counters, counter{budget: b, window: d})
		}
		return rows.Err()
	})
	return found
}

// storedBudget rebuilds a budget from a stored counter; limit is nil for
// holds made by earlier releases.
func storedBudget(kind, scopeID, name string, limit *int64) domain.Budget {
	p, m := parseCounterName(name)
	b := domain.Budget{Scope: domain.ScopeKind(kind), ScopeID: scopeID, Period: p, Model: m}
	if limit != nil {
		b.Limit = domain.Micros(*limit)
	}
	return b
}

const finishReservation = `UPDATE tidygate_reservations SET state = $2, finished_at = now() WHERE id = $1`

// settleReservation finishes a settled reservation with whom it was for and
// the model that answered, which the usage report's trace IDs are read by.
const settleReservation = `UPDATE tidygate_reservations SET state = $2, finished_at = now(),
	user_id = $3, team_id = $4, model = $5 WHERE id = $1`

// moveSpend adds $5 to the spent and takes $6 from the held amount of one
// calendar spend row, and raises an alert for each threshold ($8, percent
// of the limit $7) the spending crosses in the period ($9), unless it was
// raised already. It returns the rows it moved (1) and the alerts it raised.
// The thresholds are compared in numeric: a limit times a percentage
// overflows a bigint for a budget above about $92 billion, which would
// fail the settlement and leave its reservation held.
const moveSpend = `WITH moved AS (
	UPDATE tidygate_spend SET spent_micros = spent_micros + $5::bigint, reserved_micros = reserved_micros - $6::bigint
	WHERE scope_kind = $1::text AND scope_id = $2::text AND period = $3::text AND period_start = $4::date
	RETURNING spent_micros),
fired AS (
	INSERT INTO tidygate_budget_alerts (scope_kind, scope_id, period, period_start, threshold, limit_micros, spent_micros)
	SELECT $1::text, $2::text, $3::text, $9::timestamptz, t, $7::bigint, m.spent_micros
	FROM moved m, unnest($8::int[]) AS t
	WHERE (m.spent_micros - $5::bigint)::numeric * 100 < $7::numeric * t AND m.spent_micros::numeric * 100 >= $7::numeric * t
	ON CONFLICT DO NOTHING
	RETURNING 1)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM fired)`

// moveWindow replaces a reservation's hold on a rolling budget by its cost
// ($5) and raises an alert for each threshold ($7, percent of the limit
// $6) the spending of the window after $8 crosses, in the slot $9. The
// caller holds the budget's windowLock, so that spending is exact.
const moveWindow = `WITH before AS (
	SELECT coalesce(sum(spent_micros), 0) AS spent FROM tidygate_window_spend
	WHERE scope_kind = $2::text AND scope_id = $3::text AND period = $4::text AND at > $8::timestamptz),
moved AS (
	UPDATE tidygate_window_spend SET held_micros = 0, spent_micros = $5::bigint
	WHERE reservation_id = $1::text AND scope_kind = $2::text AND scope_id = $3::text AND period = $4::text
	RETURNING spent_micros),
fired AS (
	INSERT INTO tidygate_budget_alerts (scope_kind, scope_id, period, period_start, threshold, limit_micros, spent_micros)
	SELECT $2::text, $3::text, $4::text, $9::timestamptz, t, $6::bigint, b.spent + $5::bigint
	FROM before b, moved m, unnest($7::int[]) AS t
	WHERE b.spent::numeric * 100 < $6::numeric * t AND (b.spent + $5::bigint)::numeric * 100 >= $6::numeric * t
	ON CONFLICT DO NOTHING
	RETURNING 1)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM fired)`

// move is replacing one reservation's hold on one of its counters.
type move struct {
	res   heldReservation
	c     counter
	spent domain.Micros // what the counter is charged: the cost, or nothing
	held  domain.Micros // the hold given back
}

// moves returns, in counterOrder, replacing the hold of res on each of
// its counters by cost where the budget applies to the model that
// answered, and by nothing elsewhere.
func moves(res heldReservation, cost, held domain.Micros, answered domain.Model) []move {
	out := make([]move, 0, len(res.counters))
	for _, c := range res.counters {
		spent := domain.Micros(0)
		if c.budget.Applies(answered) {
			spent = cost
		}
		out = append(out, move{res: res, c: c, spent: spent, held: held})
	}
	return out
}

// queueMoves queues the moves in their order, each raising the alerts its
// spending crosses.
func (l *Ledger) queueMoves(batch *pgx.Batch, ms []move) {
	thresholds := l.opts.AlertThresholds
	if thresholds == nil {
		thresholds = []int{}
	}
	for _, m := range ms {
		c, res := m.c, m.res
		kind, name := string(c.budget.Scope), counterName(c.budget)
		var limit *int64 // NULL: no alerts for holds made without a limit
		if c.budget.Limit > 0 {
			v := int64(c.budget.Limit)
			limit = &v
		}
		slot := domain.AlertPeriod(c.budget, res.at, l.opts.Location)
		check := func(row pgx.Row) error {
			var moved, fired int64
			if err := row.Scan(&moved, &fired); err != nil {
				return err
			}
			if moved != 1 {
				return fmt.Errorf("the spend of %s for %s is missing", c.budget, res.at.Format(time.DateTime))
			}
			return nil
		}
		if c.window > 0 {
			batch.Queue(takeWindowLock, windowLock(c))
			batch.Queue(moveWindow, res.id, kind, c.budget.ScopeID, name, int64(m.spent), limit, thresholds,
				res.at.Add(-c.window).UTC(), slot).QueryRow(check)
			continue
		}
		batch.Queue(moveSpend, kind, c.budget.ScopeID, name, c.start, int64(m.spent), int64(m.held), limit, thresholds, slot).
			QueryRow(check)
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

// Settle replaces the reservation's hold by the actual cost on the
// counters it was reserved against (the periods of the reservation, even
// when settled after midnight) whose budgets apply to the model that
// answered (the others give their hold back), raises the alerts whose
// thresholds that spending crosses, and adds one request to the caller's
// usage on the reservation's UTC day, so that a day's usage adds up to
// that day's spend.
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
		res.id = s.ReservationID
		batch := &pgx.Batch{}
		batch.Queue(settleReservation, s.ReservationID, stateSettled, s.Caller.User, s.Caller.Team, s.Model)
		batch.Queue(upsertUsage, s.Caller.User, domain.PeriodDay.Start(res.at), s.Caller.Team, s.Caller.KeyID, s.Model,
			int64(s.Usage.PromptTokens), int64(s.Usage.CompletionTokens), int64(s.Cost))
		l.queueMoves(batch, moves(res, s.Cost, held, domain.Model{Name: s.Model, Group: s.Group}))
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
		res.id = id
		batch := &pgx.Batch{}
		batch.Queue(finishReservation, id, to)
		l.queueMoves(batch, moves(res, 0, res.amount, domain.Model{}))
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
// processes killed during a call. It returns the ids of those it expired,
// also with an error. A later Settle of an expired reservation still
// counts its cost. olderThan must be positive and should exceed the
// longest call.
func (l *Ledger) ExpireStale(ctx context.Context, olderThan time.Duration) ([]string, error) {
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	if olderThan <= 0 {
		return nil, domain.InvalidParam("older_than", "the age of stale reservations must be positive")
	}
	var expired []string
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
				expired = append(expired, id)
			}
		}
		if len(ids) < staleBatch {
			return expired, nil
		}
	}
}

// selectOrphans reads the reservations that the other runs of a call log
// ($1; this run is $2) took and neither settled nor released: one range of
// tidygate_reservations_orphans_idx.
const selectOrphans = `SELECT id, amount_micros, reserved_at, holder_run, coalesce(key_id, ''), coalesce(user_id, ''),
	coalesce(team_id, ''), coalesce(endpoint, ''), coalesce(for_model, ''), coalesce(for_group, '')
FROM tidygate_reservations
WHERE holder_log = $1 AND holder_run <> $2 AND state IN ('held', 'expired') AND holder_log IS NOT NULL
ORDER BY created_at, id`

// Orphans returns the reservations that an earlier run of h.Log took and
// neither settled nor released, those ExpireStale expired included (a
// later Settle still counts their cost); nil for a Holder without a Log.
func (l *Ledger) Orphans(ctx context.Context, h domain.Holder) ([]domain.Reservation, error) {
	if h.Log == "" {
		return nil, nil
	}
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	var out []domain.Reservation
	err := pgkit.WithConn(ctx, l.db, "find the reservations of a call log's earlier runs", func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, selectOrphans, h.Log, h.Run)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (domain.Reservation, error) {
			r := domain.Reservation{Holder: domain.Holder{Log: h.Log}}
			var amount int64
			var endpoint string
			f := &r.For
			err := row.Scan(&r.ID, &amount, &r.At, &r.Holder.Run, &f.KeyID, &f.User, &f.Team, &endpoint, &f.Model, &f.Group)
			r.Amount, r.At, f.Endpoint = domain.Micros(amount), r.At.UTC(), domain.Endpoint(endpoint)
			return r, err
		})
		return err
	})
	return out, err
}

const selectUsage = `SELECT day, model, sum(requests)::bigint, sum(prompt_tokens)::bigint,
	sum(completion_tokens)::bigint, sum(cost_micros)::bigint
FROM tidygate_usage
WHERE user_id = $1 AND day BETWEEN $2 AND $3
GROUP BY day, model
ORDER BY day, model COLLATE "C"`

// Report returns the usage of the caller's user (across their keys) from
// the UTC day of from to that of now, by day and model, and the state of
// each of the caller's budgets in the period containing now (the rolling
// window ending at now).
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
		batch := &pgx.Batch{}
		batch.Queue(selectUsage, c.User, domain.PeriodDay.Start(from), domain.PeriodDay.Start(now)).Query(func(rows pgx.Rows) error {
			var err error
			rep.Rows, err = pgx.CollectRows(rows, scanUsage)
			return err
		})
		rep.Budgets = make([]domain.BudgetStatus, len(c.Budgets))
		for i, b := range c.Budgets {
			st := &rep.Budgets[i]
			*st = domain.BudgetStatus{Budget: b, Start: b.Period.StartIn(now, l.opts.Location), End: b.Period.EndIn(now, l.opts.Location)}
			scan := func(row pgx.Row) error {
				var spent, held int64
				if err := row.Scan(&spent, &held); err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				st.Spent, st.Reserved = domain.Micros(spent), domain.Micros(held)
				return nil
			}
			if d, ok := b.Period.Window(); ok {
				batch.Queue(windowUsed, string(b.Scope), b.ScopeID, counterName(b), now.Add(-d).UTC()).QueryRow(scan)
				continue
			}
			batch.Queue(selectStatus, string(b.Scope), b.ScopeID, counterName(b), b.Period.PeriodDate(now, l.opts.Location)).QueryRow(scan)
		}
		return conn.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return domain.UsageReport{}, err
	}
	if len(rep.Budgets) == 0 {
		rep.Budgets = nil
	}
	return rep, nil
}

const selectStatus = `SELECT spent_micros, reserved_micros FROM tidygate_spend
WHERE scope_kind = $1 AND scope_id = $2 AND period = $3 AND period_start = $4`

// scanUsage converts one row of selectUsage.
func scanUsage(row pgx.CollectableRow) (domain.UsageRow, error) {
	var r domain.UsageRow
	var cost int64
	err := row.Scan(&r.Day, &r.Model, &r.Requests, &r.PromptTokens, &r.CompletionTokens, &cost)
	r.Day, r.Cost = r.Day.UTC(), domain.Micros(cost)
	return r, err
}
