package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/pgkit"
	"github.com/tidygate/tidygate/internal/ports"
)

// SettleAll applies the settlements as Settle would one by one, in one
// transaction of two round trips whatever their number: the first locks
// every reservation row (in id order) and reads their holds, the second
// moves every hold (all the counters in counterOrder, so that it never
// deadlocks with a reservation or another settlement), counts the usage
// and commits. An invalid settlement or an unknown reservation fails the
// whole list, which then changes nothing.
func (l *Ledger) SettleAll(ctx context.Context, ss []ports.Settlement) error {
	if len(ss) == 0 {
		return nil
	}
	ctx, cancel := bound(ctx, l.db)
	defer cancel()
	ids := make([]string, 0, len(ss))
	for _, s := range ss {
		if err := checkSettlement(s); err != nil {
			return err
		}
		ids = append(ids, s.ReservationID)
	}
	doing := fmt.Sprintf("settle %d reservations", len(ss))
	return pgkit.InTx(ctx, l.db, doing, func(conn *pgx.Conn) error {
		held, err := l.lockAll(ctx, conn, ids)
		if err != nil {
			return err
		}
		batch := &pgx.Batch{}
		var all []move
		for _, s := range ss {
			res, ok := held[s.ReservationID]
			if !ok {
				return &domain.Error{Kind: domain.KindNotFound, Code: "reservation_not_found",
					Message: fmt.Sprintf("there is no reservation %q", s.ReservationID)}
			}
			amount := res.amount
			switch res.state {
			case stateSettled, stateReleased:
				continue
			case stateExpired:
				amount = 0
			}
			// A later settlement of the same reservation in ss changes nothing.
			res.state = stateSettled
			held[s.ReservationID] = res
			batch.Queue(settleReservation, s.ReservationID, stateSettled, s.Caller.User, s.Caller.Team, s.Model)
			batch.Queue(upsertUsage, s.Caller.User, domain.PeriodDay.Start(res.at), s.Caller.Team, s.Caller.KeyID, s.Model,
				int64(s.Usage.PromptTokens), int64(s.Usage.CompletionTokens), int64(s.Cost))
			all = append(all, moves(res, s.Cost, amount, domain.Model{Name: s.Model, Group: s.Group})...)
		}
		slices.SortStableFunc(all, func(a, b move) int { return cmp.Or(counterOrder(a.c, b.c), cmp.Compare(a.res.id, b.res.id)) })
		l.queueMoves(batch, all)
		batch.Queue("COMMIT")
		return conn.SendBatch(ctx, batch).Close()
	})
}

// lockAll begins a ledger transaction on conn that locks the rows of the
// reservations ids and reads them, in one round trip: one lock statement
// per reservation, queued in the order of their ids, so that two
// transactions locking overlapping sets take their rows in the same order.
// Ids it does not find are missing from the map. The caller ends the
// transaction.
func (l *Ledger) lockAll(ctx context.Context, conn *pgx.Conn, ids []string) (map[string]heldReservation, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	batch := l.begin()
	held := make([]heldReservation, len(ids))
	found := make([]*bool, len(ids))
	for i, id := range ids {
		held[i].id = id
		found[i] = queueLock(batch, &held[i])
	}
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	out := make(map[string]heldReservation, len(ids))
	for i, res := range held {
		if *found[i] {
			slices.SortFunc(res.counters, counterOrder)
			out[res.id] = res
		}
	}
	return out, nil
}
