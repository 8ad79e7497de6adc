package contract

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// testSettleAll checks that SettleAll settles each reservation of a list
// once, as Settle would, that it is all or nothing, and that lists settled
// at once through two ledgers, beside new reservations, keep every budget
// exact.
func testSettleAll(t *testing.T, newLedgers NewLedgers) {
	ctx := context.Background()
	t.Run("SettleAllSettlesEachOnce", func(t *testing.T) {
		l, _ := newLedgers(t, LedgerSetup{})
		c := caller("quinn", "desk", userBudget("quinn", domain.PeriodDay, 100), teamBudget("desk", domain.PeriodDay, 1000),
			userBudget("quinn", domain.RollingPeriod(time.Hour), 100))
		for _, id := range []string{"r1", "r2", "r3", "r4"} {
			mustReserve(t, l, id, c, 20, day0)
		}
		mustRelease(t, l, "r4")
		err := l.SettleAll(ctx, []ports.Settlement{
			settlement("r2", c, "gpt", 5, day0), settlement("r1", c, "gpt", 10, day0),
			settlement("r1", c, "gpt", 19, day0), // a repeat changes nothing
			settlement("r4", c, "gpt", 7, day0),  // released already: changes nothing
		})
		if err != nil {
			t.Fatalf("SettleAll: %v", err)
		}
		checkBudgets(t, l, c, day0, status{15, 20}, status{15, 20}, status{15, 20})
		checkRows(t, l, c, day0, day0, []domain.UsageRow{{Day: midnight(day0), Model: "gpt", Requests: 2,
			PromptTokens: 15, CompletionTokens: 30, Cost: 15}})
		if err := l.SettleAll(ctx, []ports.Settlement{settlement("r3", c, "gpt", 1, day0)}); err != nil {
			t.Fatalf("SettleAll: %v", err)
		}
		mustSettle(t, l, "r3", c, "gpt", 9, day0) // settled by the list: changes nothing
		checkBudgets(t, l, c, day0, status{16, 0}, status{16, 0}, status{16, 0})
		if err := l.SettleAll(ctx, nil); err != nil {
			t.Errorf("SettleAll(nil) = %v, want nil", err)
		}
	})

	t.Run("SettleAllIsAllOrNothing", func(t *testing.T) {
		l, _ := newLedgers(t, LedgerSetup{})
		c := caller("ruth", "desk", userBudget("ruth", domain.PeriodDay, 100))
		mustReserve(t, l, "r1", c, 30, day0)
		err := l.SettleAll(ctx, []ports.Settlement{settlement("r1", c, "gpt", 10, day0), settlement("missing", c, "gpt", 1, day0)})
		if !errors.Is(err, domain.KindNotFound) {
			t.Fatalf("SettleAll with an unknown reservation = %v, want %v", err, domain.KindNotFound)
		}
		bad := settlement("r1", c, "gpt", 10, day0)
		bad.Cost = -1
		if err := l.SettleAll(ctx, []ports.Settlement{bad}); !errors.Is(err, domain.KindInvalid) {
			t.Fatalf("SettleAll with a negative cost = %v, want %v", err, domain.KindInvalid)
		}
		checkBudgets(t, l, c, day0, status{0, 30})
		mustSettle(t, l, "r1", c, "gpt", 10, day0)
		checkBudgets(t, l, c, day0, status{10, 0})
	})

	t.Run("SettleAllExactUnderConcurrency", func(t *testing.T) {
		a, b := newLedgers(t, LedgerSetup{AlertThresholds: []int{50}})
		c := caller("sami", "desk", userBudget("sami", domain.PeriodDay, 400), teamBudget("desk", domain.PeriodDay, 400),
			userBudget("sami", domain.RollingPeriod(24*time.Hour), 400))
		const workers, each = 8, 5
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := []ports.SpendLedger{a, b}[w%2]
				var ss []ports.Settlement
				for i := range each {
					id := fmt.Sprintf("w%d-%d", w, i)
					if err := reserve(l, id, c, 10, day0); err != nil {
						t.Errorf("Reserve(%s): %v", id, err)
						return
					}
					ss = append([]ports.Settlement{settlement(id, c, "gpt", 3, day0)}, ss...)
				}
				if err := l.SettleAll(ctx, ss); err != nil {
					t.Errorf("SettleAll of worker %d: %v", w, err)
				}
			}()
		}
		wg.Wait()
		const spent = workers * each * 3
		checkBudgets(t, a, c, day0, status{spent, 0}, status{spent, 0}, status{spent, 0})
	})
}
