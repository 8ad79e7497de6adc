package contract

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// newYork is a zone with daylight saving time: in 2030 its clocks go from
// 02:00 to 03:00 on Sunday 10 March, so that day has 23 hours.
func newYork(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatalf("load the America/New_York zone: %v", err)
	}
	return loc
}

// testBudgetPeriods checks weeks, calendar periods in a zone other than
// UTC, rolling windows, and budgets per key, per model and per model group.
func testBudgetPeriods(t *testing.T, newLedgers NewLedgers) {
	t.Run("WeekStartsOnMonday", func(t *testing.T) {
		l, _ := newLedgers(t, LedgerSetup{})
		c := caller("olga", "risk", userBudget("olga", domain.PeriodWeek, 10))
		sunday := time.Date(2030, time.March, 17, 23, 59, 0, 0, time.UTC) // day0 is a Friday
		monday := sunday.Add(2 * time.Minute)
		mustReserve(t, l, "fri", c, 6, day0)
		mustReserve(t, l, "sun", c, 4, sunday) // the same week
		checkExceeded(t, reserve(l, "sun-more", c, 1, sunday), "olga")
		mustReserve(t, l, "mon", c, 10, monday) // a new week
		checkBudgets(t, l, c, sunday, status{0, 10})
		checkBudgets(t, l, c, monday, status{0, 10})
	})

	t.Run("MonthEndsAtLocalMidnight", func(t *testing.T) {
		ny := newYork(t)
		l, _ := newLedgers(t, LedgerSetup{Location: ny})
		c := caller("pablo", "risk", userBudget("pablo", domain.PeriodMonth, 10))
		lastOfMarch := time.Date(2030, time.March, 31, 23, 30, 0, 0, ny) // already April in UTC
		firstOfApril := time.Date(2030, time.April, 1, 0, 30, 0, 0, ny)
		mustReserve(t, l, "march", c, 10, lastOfMarch)
		checkExceeded(t, reserve(l, "march-more", c, 1, time.Date(2030, time.March, 31, 22, 0, 0, 0, ny)), "pablo")
		mustReserve(t, l, "april", c, 7, firstOfApril)
		checkBudgets(t, l, c, lastOfMarch, status{0, 10})
		checkBudgets(t, l, c, firstOfApril, status{0, 7})
		checkPeriod(t, l, c, firstOfApril, time.Date(2030, time.April, 1, 0, 0, 0, 0, ny), time.Date(2030, time.May, 1, 0, 0, 0, 0, ny))
	})

	t.Run("DayAndWeekAcrossADSTChange", func(t *testing.T) {
		ny := newYork(t)
		l, _ := newLedgers(t, LedgerSetup{Location: ny})
		c := caller("quinn", "risk", userBudget("quinn", domain.PeriodDay, 10), userBudget("quinn", domain.PeriodWeek, 100))
		dstDay := time.Date(2030, time.March, 10, 0, 30, 0, 0, ny) // a Sunday of 23 hours
		lateThatDay := time.Date(2030, time.March, 10, 23, 30, 0, 0, ny)
		nextMorning := time.Date(2030, time.March, 11, 0, 30, 0, 0, ny) // a Monday; in UTC the same day as lateThatDay
		mustReserve(t, l, "early", c, 6, dstDay)
		mustReserve(t, l, "late", c, 4, lateThatDay) // the same local day, 22 hours later
		checkExceeded(t, reserve(l, "late-more", c, 1, lateThatDay), "quinn")
		mustReserve(t, l, "monday", c, 10, nextMorning)
		checkBudgets(t, l, c, lateThatDay, status{0, 10}, status{0, 10})
		checkBudgets(t, l, c, nextMorning, status{0, 10}, status{0, 10}) // a new day and a new week
		checkPeriod(t, l, c, lateThatDay, time.Date(2030, time.March, 10, 0, 0, 0, 0, ny), time.Date(2030, time.March, 11, 0, 0, 0, 0, ny))
		if d := time.Date(2030, time.March, 11, 0, 0, 0, 0, ny).Sub(time.Date(2030, time.March, 10, 0, 0, 0, 0, ny)); d != 23*time.Hour {
			t.Fatalf("the test's DST day has %s, want 23h", d)
		}
	})

	t.Run("RollingWindow", func(t *testing.T) {
		l, _ := newLedgers(t, LedgerSetup{})
		day := domain.RollingPeriod(24 * time.Hour)
		c := caller("rita", "risk", userBudget("rita", day, 10))
		mustReserve(t, l, "first", c, 8, day0)
		mustSettle(t, l, "first", c, "gpt", 6, day0)
		later := day0.Add(23 * time.Hour)
		checkExceeded(t, reserve(l, "too-much", c, 5, later), "rita") // 6 spent within the window
		mustReserve(t, l, "held", c, 3, later)
		checkBudgets(t, l, c, later, status{6, 3})
		checkExceeded(t, reserve(l, "no-room", c, 2, later.Add(time.Minute)), "rita") // 6 spent + 3 held
		mustRelease(t, l, "held")
		mustReserve(t, l, "fits", c, 4, later)
		mustSettle(t, l, "fits", c, "gpt", 4, later)
		checkBudgets(t, l, c, later, status{10, 0})
		// 24 hours after the first call it leaves the window; the second stays.
		slid := day0.Add(24 * time.Hour)
		checkBudgets(t, l, c, slid, status{4, 0})
		mustReserve(t, l, "after", c, 6, slid)
		checkExceeded(t, reserve(l, "after-more", c, 1, slid), "rita")
		checkPeriod(t, l, c, slid, slid.Add(-24*time.Hour), slid)
	})

	t.Run("RollingWindowExactUnderConcurrency", func(t *testing.T) {
		l, other := newLedgers(t, LedgerSetup{})
		c := caller("sven", "risk", userBudget("sven", domain.RollingPeriod(30*24*time.Hour), 70))
		won := reserveConcurrently(t, []ports.SpendLedger{l, other}, c, 100, 7, day0)
		if len(won) != 10 {
			t.Fatalf("%d reservations of 7 fit a rolling budget of 70, want 10", len(won))
		}
		checkBudgets(t, l, c, day0, status{0, 70})
	})

	t.Run("ModelAndGroupBudgets", func(t *testing.T) {
		l, _ := newLedgers(t, LedgerSetup{})
		onGPT := domain.Budget{Scope: domain.ScopeUser, ScopeID: "tara", Period: domain.PeriodDay, Limit: 10, Model: "gpt"}
		onFast := domain.Budget{Scope: domain.ScopeUser, ScopeID: "tara", Period: domain.PeriodDay, Limit: 20, Model: "group:fast"}
		all := userBudget("tara", domain.PeriodDay, 100)
		c := caller("tara", "risk", all, onGPT, onFast)
		mustReserve(t, l, "gpt-1", c, 10, day0)
		checkExceeded(t, reserve(l, "gpt-2", c, 1, day0), "on model \"gpt\"")
		// gpt-1 was answered by mini, of group fast: gpt's budget gives its hold back.
		answered(t, l, "gpt-1", c, "mini", "fast", 7, day0)
		checkBudgets(t, l, c, day0, status{7, 0}, status{0, 0}, status{7, 0})
		onlyFast := caller("tara", "risk", all, onFast)
		mustReserve(t, l, "mini-1", onlyFast, 13, day0)
		checkExceeded(t, reserve(l, "mini-2", onlyFast, 1, day0), "on model group \"fast\"")
		checkBudgets(t, l, c, day0, status{7, 13}, status{0, 0}, status{7, 13})
	})

	t.Run("KeyBudgets", func(t *testing.T) {
		l, _ := newLedgers(t, LedgerSetup{})
		laptop := caller("uma", "risk", domain.Budget{Scope: domain.ScopeKey, ScopeID: "key-laptop", Period: domain.PeriodMonth, Limit: 5})
		server := caller("uma", "risk", domain.Budget{Scope: domain.ScopeKey, ScopeID: "key-server", Period: domain.PeriodMonth, Limit: 50})
		mustReserve(t, l, "laptop", laptop, 5, day0)
		checkExceeded(t, reserve(l, "laptop-more", laptop, 1, day0), "key-laptop")
		mustReserve(t, l, "server", server, 50, day0)
		checkBudgets(t, l, laptop, day0, status{0, 5})
		checkBudgets(t, l, server, day0, status{0, 50})
	})
}

// testBudgetAlerts checks that each threshold fires once per budget and
// period, also when two ledgers on one store settle at once, and that the
// outbox hands each alert out until it is delivered.
func testBudgetAlerts(t *testing.T, newLedgers NewLedgers) {
	t.Run("AlertsFireOncePerThreshold", func(t *testing.T) {
		a, b := newLedgers(t, LedgerSetup{AlertThresholds: []int{50, 80, 100}})
		c := caller("vera", "risk", userBudget("vera", domain.PeriodDay, 100), userBudget("vera", domain.RollingPeriod(24*time.Hour), 100))
		// 25 calls of 4 settle at once through two ledgers: exactly 100.
		won := reserveConcurrently(t, []ports.SpendLedger{a, b}, c, 25, 4, day0)
		if len(won) != 25 {
			t.Fatalf("%d of 25 reservations fit, want all", len(won))
		}
		var wg sync.WaitGroup
		for i, id := range won {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := []ports.SpendLedger{a, b}[i%2]
				if err := l.Settle(context.Background(), settlement(id, c, "gpt", 4, day0)); err != nil {
					t.Errorf("Settle(%s): %v", id, err)
				}
			}()
		}
		wg.Wait()
		got := claimAll(t, a)
		want := []string{"day/50", "day/80", "day/100", "rolling:24h/50", "rolling:24h/80", "rolling:24h/100"}
		if !slices.Equal(alertNames(got), want) {
			t.Fatalf("alerts = %v, want %v", alertNames(got), want)
		}
		for _, al := range got {
			if al.Budget.Limit != 100 || al.Spent < domain.Micros(al.Threshold) || al.Budget.ScopeID != "vera" {
				t.Errorf("alert %+v: want vera's budget of 100 and spending at or past the threshold", al)
			}
		}
		// A new day fires the day's thresholds again, and so does the next
		// day-long slot of the rolling window, whose window no longer holds
		// the first day's calls.
		next := day0.AddDate(0, 0, 1)
		mustReserve(t, a, "next-day", c, 60, next)
		mustSettle(t, a, "next-day", c, "gpt", 0, next) // costs nothing: crosses nothing
		mustReserve(t, b, "next-day-2", c, 60, next)
		mustSettle(t, b, "next-day-2", c, "gpt", 55, next)
		if names := alertNames(claimAll(t, b)); !slices.Equal(names, []string{"day/50", "rolling:24h/50"}) {
			t.Errorf("alerts of the next day = %v, want [day/50 rolling:24h/50]", names)
		}
	})

	t.Run("TheLargestBudgetSettlesAndAlerts", func(t *testing.T) {
		// The largest amount a budget can be given (ParseUSD's), whose
		// limit times a percentage is far beyond an int64: settling
		// against it must neither fail nor misjudge a threshold.
		limit, err := domain.ParseUSD("9223372036853.999999")
		if err != nil {
			t.Fatal(err)
		}
		a, _ := newLedgers(t, LedgerSetup{AlertThresholds: []int{50, 100, 1000}})
		c := caller("max", "risk", userBudget("max", domain.PeriodDay, limit), userBudget("max", domain.RollingPeriod(24*time.Hour), limit))
		mustReserve(t, a, "small", c, 10, day0)
		mustSettle(t, a, "small", c, "gpt", 10, day0)
		if names := alertNames(claimAll(t, a)); len(names) != 0 {
			t.Fatalf("alerts after spending 10 of %s = %v, want none", limit, names)
		}
		half := limit / 2
		mustReserve(t, a, "half", c, half, day0)
		mustSettle(t, a, "half", c, "gpt", half, day0)
		got := claimAll(t, a)
		if names := alertNames(got); !slices.Equal(names, []string{"day/50", "rolling:24h/50"}) {
			t.Fatalf("alerts after spending half of %s = %v, want the 50 %% ones", limit, names)
		}
		for _, al := range got {
			if al.Spent != half+10 || al.Budget.Limit != limit || al.Refused() {
				t.Errorf("alert %+v: want spending %d of %d, raised by spending", al, half+10, limit)
			}
		}
		checkBudgets(t, a, c, day0, status{half + 10, 0}, status{half + 10, 0})
	})

	t.Run("RefusalForWhatWasSpentRaisesTheFullAlert", func(t *testing.T) {
		a, b := newLedgers(t, LedgerSetup{AlertThresholds: []int{50, 100}})
		c := caller("yara", "risk", userBudget("yara", domain.PeriodDay, 100), userBudget("yara", domain.RollingPeriod(24*time.Hour), 100))
		mustReserve(t, a, "big", c, 97, day0)
		mustSettle(t, a, "big", c, "gpt", 97, day0) // crosses 50 % only
		if names := alertNames(claimAll(t, a)); !slices.Equal(names, []string{"day/50", "rolling:24h/50"}) {
			t.Fatalf("alerts after spending 97 = %v, want the 50 %% ones", names)
		}
		// The next call's worst case (5) does not fit in what is left (3):
		// the budget refuses calls short of its limit, which the 100 %
		// alert says, once, with what it has spent.
		checkExceeded(t, reserve(b, "next", c, 5, day0), "yara")
		checkExceeded(t, reserve(a, "next-again", c, 5, day0), "yara")
		got := claimAll(t, b)
		if names := alertNames(got); len(names) != 1 || names[0] != "day/100" && names[0] != "rolling:24h/100" {
			t.Fatalf("alerts after the refusals = %v, want the 100 %% alert of the budget that refused", names)
		}
		if al := got[0]; al.Spent != 97 || al.Budget.Limit != 100 || !al.Refused() {
			t.Errorf("alert %+v: want spending 97 of 100, raised by a refusal", al)
		}
	})

	t.Run("RefusalForCallsInFlightRaisesNothing", func(t *testing.T) {
		a, _ := newLedgers(t, LedgerSetup{AlertThresholds: []int{50, 100}})
		c := caller("zeno", "risk", userBudget("zeno", domain.PeriodDay, 100))
		mustReserve(t, a, "in-flight", c, 60, day0)
		checkExceeded(t, reserve(a, "second", c, 50, day0), "zeno")
		if got := claimAll(t, a); len(got) != 0 {
			t.Fatalf("a refusal made only by a hold in flight raised %v, want nothing", alertNames(got))
		}
		mustRelease(t, a, "in-flight")
	})

	t.Run("OutboxLeasesAndRetries", func(t *testing.T) {
		a, b := newLedgers(t, LedgerSetup{AlertThresholds: []int{50}})
		c := caller("wim", "risk", userBudget("wim", domain.PeriodDay, 10))
		mustReserve(t, a, "r1", c, 10, day0)
		mustSettle(t, a, "r1", c, "gpt", 5, day0)
		ctx := context.Background()
		now := time.Now()
		first, err := a.ClaimAlerts(ctx, now, 10, time.Minute)
		if err != nil || len(first) != 1 || first[0].Attempts != 0 {
			t.Fatalf("ClaimAlerts = %+v, %v; want one alert, never tried", first, err)
		}
		if again, err := b.ClaimAlerts(ctx, now, 10, time.Minute); err != nil || len(again) != 0 {
			t.Fatalf("a leased alert was claimed again: %+v, %v", again, err)
		}
		if err := a.AlertFailed(ctx, first[0].ID, now.Add(-time.Second), "receiver down"); err != nil {
			t.Fatal(err)
		}
		retry, err := b.ClaimAlerts(ctx, now, 10, time.Minute)
		if err != nil || len(retry) != 1 || retry[0].ID != first[0].ID || retry[0].Attempts != 1 {
			t.Fatalf("after a failure, ClaimAlerts = %+v, %v; want the alert again, tried once", retry, err)
		}
		if err := b.AlertDelivered(ctx, retry[0].ID); err != nil {
			t.Fatal(err)
		}
		if left, err := a.ClaimAlerts(ctx, now.Add(time.Hour), 10, time.Minute); err != nil || len(left) != 0 {
			t.Fatalf("a delivered alert was claimed again: %+v, %v", left, err)
		}
	})
}

// reserveConcurrently makes n concurrent reservations of amount for c,
// spread over the ledgers, and returns the IDs of those that fit; any
// error but budget_exceeded fails t.
func reserveConcurrently(t *testing.T, ls []ports.SpendLedger, c domain.Caller, n int, amount domain.Micros, at time.Time) []string {
	t.Helper()
	var mu sync.Mutex
	var won []string
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("%s-%03d", c.User, i)
			err := reserve(ls[i%len(ls)], id, c, amount, at)
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, id)
				mu.Unlock()
			case !isExceeded(err):
				t.Errorf("Reserve(%s): %v", id, err)
			}
		}()
	}
	wg.Wait()
	slices.Sort(won)
	return won
}

func isExceeded(err error) bool {
	var de *domain.Error
	return errors.As(err, &de) && de.Kind == domain.KindBudgetExceeded
}

// answered settles a reservation answered by model of group.
func answered(t *testing.T, l ports.SpendLedger, id string, c domain.Caller, model, group string, cost domain.Micros, at time.Time) {
	t.Helper()
	s := settlement(id, c, model, cost, at)
	s.Group = group
	if err := l.Settle(context.Background(), s); err != nil {
		t.Fatalf("Settle(%q): %v", id, err)
	}
}

// checkPeriod fails t unless every budget of c reports the period from
// start to end at now.
func checkPeriod(t *testing.T, l ports.SpendLedger, c domain.Caller, now, start, end time.Time) {
	t.Helper()
	rep, err := l.Report(context.Background(), c, now, now)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	st := rep.Budgets[0]
	if !st.Start.Equal(start) || !st.End.Equal(end) {
		t.Errorf("%s at %s: period %s – %s, want %s – %s", st.Budget, now, st.Start, st.End, start, end)
	}
}

// claimAll claims every alert due, marks them delivered, and returns them
// ordered by period and threshold.
func claimAll(t *testing.T, l Ledger) []domain.BudgetAlert {
	t.Helper()
	ctx := context.Background()
	got, err := l.ClaimAlerts(ctx, time.Now(), 100, time.Minute)
	if err != nil {
		t.Fatalf("ClaimAlerts: %v", err)
	}
	for _, a := range got {
		if err := l.AlertDelivered(ctx, a.ID); err != nil {
			t.Fatalf("AlertDelivered: %v", err)
		}
	}
	slices.SortFunc(got, func(a, b domain.BudgetAlert) int {
		if a.Budget.Period != b.Budget.Period {
			if a.Budget.Period < b.Budget.Period {
				return -1
			}
			return 1
		}
		return a.Threshold - b.Threshold
	})
	return got
}

func alertNames(as []domain.BudgetAlert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s/%d", a.Budget.Period, a.Threshold)
	}
	return out
}
