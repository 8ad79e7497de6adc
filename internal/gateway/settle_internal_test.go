package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/ports"
)

// listLedger records the lists SettleAll is given and settles nothing.
type listLedger struct {
	ports.SpendLedger // nil: only SettleAll is called
	mu                sync.Mutex
	lists             []int
}

func (l *listLedger) SettleAll(_ context.Context, ss []ports.Settlement) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lists = append(l.lists, len(ss))
	return nil
}

func (l *listLedger) lengths() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.lists...)
}

// delayedSettler returns a settler whose batches wait an hour to fill.
func delayedSettler(l ports.SpendLedger) *settler {
	return newSettler(l, func([]string) {}, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute, time.Hour, noStages{})
}

// waitingToFill waits until t's worker waits for its batch to fill.
func waitingToFill(tb testing.TB, t *settler) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		t.mu.Lock()
		waiting := t.hurry != nil
		t.mu.Unlock()
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("the settler's worker never began waiting for its batch to fill")
		}
	}
}

func settlement(i int) ports.Settlement {
	return ports.Settlement{ReservationID: fmt.Sprintf("r%03d", i)}
}

// A waiter ends the wait of a worker already waiting for its batch to
// fill: the settlements are applied at once, not after the delay.
func TestAWaiterHurriesTheSettlerWaitingForItsBatchToFill(t *testing.T) {
	l := &listLedger{}
	st := delayedSettler(l)
	st.add(settlement(1))
	waitingToFill(t, st)
	st.add(settlement(2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.wait(ctx); err != nil {
		t.Fatalf("wait = %v; want the waiting settlements applied at once", err)
	}
	if got := l.lengths(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("SettleAll got lists of %v; want [2]", got)
	}
}

// A batch that fills ends the worker's wait without anyone waiting.
func TestAFullBatchEndsTheSettlersWaitToFill(t *testing.T) {
	l := &listLedger{}
	st := delayedSettler(l)
	st.add(settlement(0))
	waitingToFill(t, st)
	for i := 1; i < settleBatch; i++ {
		st.add(settlement(i))
	}
	for deadline := time.Now().Add(30 * time.Second); st.applied() < settleBatch; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of a full batch of %d applied after 30 s; want it applied without waiting for the delay", st.applied(), settleBatch)
		}
	}
	if got := l.lengths(); len(got) != 1 || got[0] != settleBatch {
		t.Fatalf("SettleAll got lists of %v; want [%d]", got, settleBatch)
	}
}

// slowListLedger's SettleAll runs out of time; settling one at a time works.
type slowListLedger struct {
	ports.SpendLedger // nil: only SettleAll and Settle are called
	mu                sync.Mutex
	settled           []string
}

func (l *slowListLedger) SettleAll(ctx context.Context, _ []ports.Settlement) error {
	<-ctx.Done()
	return ctx.Err()
}

func (l *slowListLedger) Settle(ctx context.Context, s ports.Settlement) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.settled = append(l.settled, s.ReservationID)
	return nil
}

// A list that ran out of the settler's time is settled one by one all the
// same: the second pass has a timeout of its own.
func TestSettlementsOneByOneAfterAListThatRanOutOfTime(t *testing.T) {
	l := &slowListLedger{}
	var acked []string
	st := newSettler(l, func(ids []string) { acked = append(acked, ids...) }, slog.New(slog.NewTextHandler(io.Discard, nil)),
		50*time.Millisecond, 0, noStages{})
	st.apply([]ports.Settlement{settlement(1), settlement(2)})
	if len(l.settled) != 2 || len(acked) != 2 {
		t.Fatalf("after a SettleAll that timed out: settled %v, acknowledged %v; want both settled one by one and acknowledged", l.settled, acked)
	}
}
