package contract

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// day0 is noon of an ordinary day in the middle of a month.
var day0 = time.Date(2030, time.March, 15, 12, 0, 0, 0, time.UTC)

// Ledger is a spend ledger with the outbox of the alerts it raises.
type Ledger interface {
	ports.SpendLedger
	ports.AlertOutbox
}

// LedgerSetup is how a test wants its ledgers: the budget time zone (nil:
// UTC) and the alert thresholds.
type LedgerSetup struct {
	Location        *time.Location
	AlertThresholds []int
}

// NewLedgers returns two ledgers on one new, empty store, as two replicas
// would have; an in-process ledger returns the same one twice.
type NewLedgers func(t *testing.T, setup LedgerSetup) (Ledger, Ledger)

// TestSpendLedger checks that a spend ledger holds budgets exactly: under
// concurrency, per day, week and month (in a time zone, across a month's
// end and a DST change) and over rolling windows, per key, per user and
// per shared team, per model and per model group, with idempotent settle
// and release; that it raises each alert threshold once per budget and
// period, and that it reports usage by day and model.
func TestSpendLedger(t *testing.T, newLedgers NewLedgers) {
	newLedger := func(t *testing.T) ports.SpendLedger {
		l, _ := newLedgers(t, LedgerSetup{})
		return l
	}
	testBudgetPeriods(t, newLedgers)
	testBudgetAlerts(t, newLedgers)
	testSettleAll(t, newLedgers)
	t.Run("ReserveUpToTheLimit", func(t *testing.T) {
		l := newLedger(t)
		c := caller("alice", "risk", userBudget("alice", domain.PeriodDay, 100))
		mustReserve(t, l, "r1", c, 60, day0)
		err := reserve(l, "r2", c, 41, day0)
		checkExceeded(t, err, "alice")
		checkBudgets(t, l, c, day0, status{0, 60})
		mustReserve(t, l, "r3", c, 40, day0)
		checkBudgets(t, l, c, day0, status{0, 100})
		checkExceeded(t, reserve(l, "r4", c, 1, day0), "alice")
		mustReserve(t, l, "r5", c, 0, day0) // a free call fits a full budget
	})

	t.Run("ExactUnderConcurrency", func(t *testing.T) { exactUnderConcurrency(t, newLedger(t)) })

	t.Run("SettleIsIdempotent", func(t *testing.T) {
		l := newLedger(t)
		c := caller("bob", "risk", userBudget("bob", domain.PeriodDay, 100))
		mustReserve(t, l, "r1", c, 50, day0)
		for range 2 {
			mustSettle(t, l, "r1", c, "gpt", 30, day0)
		}
		mustRelease(t, l, "r1") // too late: changes nothing
		checkBudgets(t, l, c, day0, status{30, 0})
		checkRows(t, l, c, day0, day0, []domain.UsageRow{{Day: midnight(day0), Model: "gpt", Requests: 1,
			PromptTokens: 30, CompletionTokens: 60, Cost: 30}})
	})

	t.Run("ReleaseIsIdempotent", func(t *testing.T) {
		l := newLedger(t)
		c := caller("carol", "risk", userBudget("carol", domain.PeriodDay, 100))
		mustReserve(t, l, "r1", c, 50, day0)
		for range 2 {
			mustRelease(t, l, "r1")
		}
		mustSettle(t, l, "r1", c, "gpt", 30, day0) // too late: changes nothing
		checkBudgets(t, l, c, day0, status{0, 0})
		checkRows(t, l, c, day0, day0, nil)
	})

	t.Run("OrphansAreTheEarlierRunsHolds", func(t *testing.T) {
		l := newLedger(t)
		c := caller("olga", "risk", userBudget("olga", domain.PeriodDay, 1000))
		ctx := context.Background()
		held := func(id string, h domain.Holder) domain.Reservation {
			r := domain.Reservation{ID: id, Budgets: c.Budgets, Amount: 100, At: day0, Holder: h,
				For: domain.ReservedCall{KeyID: c.KeyID, User: c.User, Team: c.Team, Endpoint: domain.EndpointChat, Model: "gpt", Group: "premium"}}
			if err := l.Reserve(ctx, r); err != nil {
				t.Fatalf("Reserve(%q): %v", id, err)
			}
			return r
		}
		earlier, now, other := domain.Holder{Log: "j1", Run: "run1"}, domain.Holder{Log: "j1", Run: "run2"}, domain.Holder{Log: "j2", Run: "run1"}
		orphan := held("r1", earlier)
		held("r2", earlier)
		held("r3", earlier)
		held("r4", now)   // this run's own call in flight
		held("r5", other) // another replica's
		mustSettle(t, l, "r2", c, "gpt", 30, day0)
		mustRelease(t, l, "r3")
		got, err := l.Orphans(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		orphan.Budgets = nil
		if len(got) != 1 || !got[0].At.Equal(orphan.At) {
			t.Fatalf("Orphans = %+v, want only %+v", got, orphan)
		}
		got[0].At = orphan.At
		if !reflect.DeepEqual(got[0], orphan) {
			t.Errorf("Orphans = %+v, want %+v", got[0], orphan)
		}
		if got, err := l.Orphans(ctx, domain.Holder{}); err != nil || len(got) != 0 {
			t.Errorf("Orphans(no holder) = %v, %v; want none", got, err)
		}
	})

	// A ledger that says when a reservation is sent (the optional
	// ports.ReservationSender) says it once for a reservation without
	// budgets, which it then holds, and never for one with budgets.
	if _, ok := newLedger(t).(ports.ReservationSender); ok {
		t.Run("ReserveSending", func(t *testing.T) { reserveSending(t, newLedger(t)) })
	}

	t.Run("UnknownReservation", func(t *testing.T) {
		l := newLedger(t)
		c := caller("dave", "risk")
		if err := l.Settle(context.Background(), settlement("nope", c, "gpt", 1, day0)); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("Settle(unknown) error = %v, want %v", err, domain.KindNotFound)
		}
		if err := l.Release(context.Background(), "nope"); !errors.Is(err, domain.KindNotFound) {
			t.Errorf("Release(unknown) error = %v, want %v", err, domain.KindNotFound)
		}
	})

	t.Run("InvalidReservations", func(t *testing.T) {
		l := newLedger(t)
		b := userBudget("erin", domain.PeriodDay, 100)
		c := caller("erin", "risk", b)
		mustReserve(t, l, "taken", c, 10, day0)
		bad := map[string]domain.Reservation{
			"reused ID":       {ID: "taken", Budgets: c.Budgets, Amount: 10, At: day0},
			"empty ID":        {ID: "", Budgets: c.Budgets, Amount: 10, At: day0},
			"negative amount": {ID: "r1", Budgets: c.Budgets, Amount: -1, At: day0},
			"no time":         {ID: "r2", Budgets: c.Budgets, Amount: 10},
			"unknown period":  {ID: "r3", Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "erin", Period: "fortnight", Limit: 100}}, Amount: 10, At: day0},
			"short window":    {ID: "r7", Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "erin", Period: "rolling:1s", Limit: 100}}, Amount: 10, At: day0},
			"odd spelling":    {ID: "r8", Budgets: []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "erin", Period: "rolling:1440m", Limit: 100}}, Amount: 10, At: day0},
			"unknown scope":   {ID: "r4", Budgets: []domain.Budget{{Scope: "org", ScopeID: "erin", Period: domain.PeriodDay, Limit: 100}}, Amount: 10, At: day0},
			"negative limit":  {ID: "r5", Budgets: []domain.Budget{userBudget("erin", domain.PeriodMonth, -1)}, Amount: 10, At: day0},
			"budget twice":    {ID: "r6", Budgets: []domain.Budget{b, b}, Amount: 10, At: day0},
		}
		for name, r := range bad {
			if err := l.Reserve(context.Background(), r); !errors.Is(err, domain.KindInvalid) {
				t.Errorf("%s: Reserve error = %v, want %v", name, err, domain.KindInvalid)
			}
		}
		checkBudgets(t, l, c, day0, status{0, 10})
	})

	t.Run("DayAndMonthPeriods", func(t *testing.T) {
		l := newLedger(t)
		c := caller("frank", "risk", userBudget("frank", domain.PeriodDay, 10), userBudget("frank", domain.PeriodMonth, 25))
		day1, day2 := day0.AddDate(0, 0, 1), day0.AddDate(0, 0, 2)
		mustReserve(t, l, "d0", c, 10, day0)
		mustSettle(t, l, "d0", c, "gpt", 10, day0)
		checkExceeded(t, reserve(l, "d0-again", c, 1, day0), "frank") // the day is spent
		checkExceeded(t, reserve(l, "d0-both", c, 20, day0), "frank") // neither budget has room
		mustReserve(t, l, "d1", c, 10, day1)                          // a new day
		mustSettle(t, l, "d1", c, "gpt", 10, day1)
		checkBudgets(t, l, c, day1, status{10, 0}, status{20, 0})
		checkExceeded(t, reserve(l, "d2", c, 6, day2), "frank") // the month has 5 left
		checkBudgets(t, l, c, day2, status{0, 0}, status{20, 0})
		mustReserve(t, l, "d2-small", c, 5, day2)
		checkBudgets(t, l, c, day2, status{0, 5}, status{20, 5})
		mustReserve(t, l, "next-month", c, 10, time.Date(2030, time.April, 1, 0, 0, 0, 0, time.UTC))
		checkBudgets(t, l, c, day0, status{10, 0}, status{20, 5}) // day 0's state is kept
	})

	t.Run("SettleAfterMidnightChargesTheReservedDay", func(t *testing.T) {
		l := newLedger(t)
		c := caller("grace", "risk", userBudget("grace", domain.PeriodDay, 10))
		lastSecond := midnight(day0).Add(24*time.Hour - time.Second)
		nextDay := lastSecond.Add(2 * time.Second)
		mustReserve(t, l, "late", c, 10, lastSecond)
		mustSettle(t, l, "late", c, "gpt", 4, nextDay)
		checkBudgets(t, l, c, lastSecond, status{4, 0})
		checkBudgets(t, l, c, nextDay, status{0, 0})
		checkRows(t, l, c, day0, nextDay, []domain.UsageRow{{Day: midnight(day0), Model: "gpt", Requests: 1,
			PromptTokens: 4, CompletionTokens: 8, Cost: 4}})
	})

	t.Run("TeamBudgetIsShared", func(t *testing.T) {
		l := newLedger(t)
		team := teamBudget("platform", domain.PeriodDay, 100)
		u1 := caller("heidi", "platform", userBudget("heidi", domain.PeriodDay, 1000), team)
		u2 := caller("ivan", "platform", userBudget("ivan", domain.PeriodDay, 1000), team)
		mustReserve(t, l, "h1", u1, 60, day0)
		mustReserve(t, l, "i1", u2, 40, day0)
		checkExceeded(t, reserve(l, "i2", u2, 10, day0), "platform")
		checkBudgets(t, l, u2, day0, status{0, 40}, status{0, 100}) // ivan's own budget holds nothing for i2
		mustSettle(t, l, "h1", u1, "gpt", 20, day0)
		checkBudgets(t, l, u1, day0, status{20, 0}, status{20, 40})
		mustReserve(t, l, "i3", u2, 40, day0)
		checkExceeded(t, reserve(l, "h2", u1, 1, day0), "platform")
	})

	t.Run("SettlingBelowTheHoldFreesTheRest", func(t *testing.T) {
		l := newLedger(t)
		c := caller("judy", "risk", userBudget("judy", domain.PeriodDay, 100))
		mustReserve(t, l, "big", c, 100, day0)
		checkExceeded(t, reserve(l, "small", c, 10, day0), "judy")
		mustSettle(t, l, "big", c, "gpt", 30, day0)
		mustReserve(t, l, "rest", c, 70, day0)
		checkExceeded(t, reserve(l, "one-more", c, 1, day0), "judy")
		checkBudgets(t, l, c, day0, status{30, 70})
	})

	t.Run("CallsWithoutBudgetsRecordUsage", func(t *testing.T) {
		l := newLedger(t)
		c := caller("ken", "risk")
		mustReserve(t, l, "r1", c, 0, day0)
		mustReserve(t, l, "r2", c, 1_000_000_000, day0)
		mustSettle(t, l, "r1", c, "gpt", 0, day0)
		mustSettle(t, l, "r2", c, "gpt", 7, day0)
		mustSettle(t, l, "r2", c, "gpt", 7, day0)
		checkRows(t, l, c, day0, day0, []domain.UsageRow{{Day: midnight(day0), Model: "gpt", Requests: 2,
			PromptTokens: 7, CompletionTokens: 14, Cost: 7}})
	})

	t.Run("ReportByDayAndModel", func(t *testing.T) {
		l := newLedger(t)
		day1 := day0.AddDate(0, 0, 1)
		laptop, server := caller("lena", "risk"), caller("lena", "risk")
		laptop.KeyID, server.KeyID = "key-laptop", "key-server"
		other := caller("mike", "risk")
		calls := []struct {
			c     domain.Caller
			model string
			cost  domain.Micros
			at    time.Time
		}{
			{laptop, "gpt", 1, day0.AddDate(0, 0, -1)}, // before the report's range
			{laptop, "gpt", 2, day0}, {server, "gpt", 3, day0}, {laptop, "claude", 4, day0},
			{server, "gpt", 5, day1}, {other, "gpt", 6, day1},
		}
		for i, call := range calls {
			id := fmt.Sprintf("r%d", i)
			mustReserve(t, l, id, call.c, 10, call.at)
			mustSettle(t, l, id, call.c, call.model, call.cost, call.at)
		}
		checkRows(t, l, laptop, day0, day1, []domain.UsageRow{
			{Day: midnight(day0), Model: "claude", Requests: 1, PromptTokens: 4, CompletionTokens: 8, Cost: 4},
			{Day: midnight(day0), Model: "gpt", Requests: 2, PromptTokens: 5, CompletionTokens: 10, Cost: 5},
			{Day: midnight(day1), Model: "gpt", Requests: 1, PromptTokens: 5, CompletionTokens: 10, Cost: 5},
		})
		checkRows(t, l, laptop, day1, day1, []domain.UsageRow{
			{Day: midnight(day1), Model: "gpt", Requests: 1, PromptTokens: 5, CompletionTokens: 10, Cost: 5},
		})
		rep, err := l.Report(context.Background(), laptop, day0, day1)
		if err != nil {
			t.Fatal(err)
		}
		if rep.User != "lena" || rep.Team != "risk" || len(rep.Budgets) != 0 {
			t.Errorf("report = %+v, want lena of risk without budgets", rep)
		}
	})

	t.Run("HostileNamesAreKeptVerbatim", func(t *testing.T) {
		l := newLedger(t)
		for _, name := range HostileNames() {
			c := caller(name, name+"/team", userBudget(name, domain.PeriodDay, 100), teamBudget(name+"/team", domain.PeriodMonth, 100))
			c.KeyID = name + "/key"
			mustReserve(t, l, name, c, 10, day0)
			mustSettle(t, l, name, c, name+"/model", 3, day0)
			checkBudgets(t, l, c, day0, status{3, 0}, status{3, 0})
			checkRows(t, l, c, day0, day0, []domain.UsageRow{{Day: midnight(day0), Model: name + "/model", Requests: 1,
				PromptTokens: 3, CompletionTokens: 6, Cost: 3}})
		}
	})
}

// exactUnderConcurrency makes 100 concurrent reservations of a against a
// budget of exactly 10·a while a reader checks that spent plus held never
// exceeds the limit, then settles the 10 that fit.
func exactUnderConcurrency(t *testing.T, l ports.SpendLedger) {
	const a, calls, fit = 7, 100, 10
	c := caller("nina", "risk", userBudget("nina", domain.PeriodDay, fit*a))
	ctx := context.Background()

	stop := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() { // not a timing assertion: it checks the invariant as often as it can
		defer watcher.Done()
		for {
			rep, err := l.Report(ctx, c, day0, day0)
			if err != nil {
				t.Errorf("Report: %v", err)
				return
			}
			if len(rep.Budgets) != 1 {
				t.Errorf("report has %d budgets, want 1", len(rep.Budgets))
				return
			}
			if s := rep.Budgets[0]; s.Spent+s.Reserved > s.Budget.Limit || s.Reserved < 0 {
				t.Errorf("spent %d + reserved %d exceeds the limit %d", s.Spent, s.Reserved, s.Budget.Limit)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()

	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = reserve(l, fmt.Sprintf("call-%03d", i), c, a, day0)
		}()
	}
	wg.Wait()
	close(stop)
	watcher.Wait()

	var won []string
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, fmt.Sprintf("call-%03d", i))
		case !errors.Is(err, domain.KindBudgetExceeded):
			t.Errorf("call %d: error = %v, want %v", i, err, domain.KindBudgetExceeded)
		}
	}
	if len(won) != fit {
		t.Fatalf("%d of %d reservations of %d fit a budget of %d, want exactly %d", len(won), calls, a, fit*a, fit)
	}
	checkBudgets(t, l, c, day0, status{0, fit * a})
	var total domain.Micros
	for i, id := range won {
		cost := domain.Micros(i%a + 1)
		total += cost
		mustSettle(t, l, id, c, "gpt", cost, day0)
	}
	checkBudgets(t, l, c, day0, status{total, 0})
}

// status is the expected spent and reserved amounts of one budget.
type status struct{ spent, reserved domain.Micros }

func caller(user, team string, budgets ...domain.Budget) domain.Caller {
	return domain.Caller{KeyID: "key-" + user, User: user, Team: team, Budgets: budgets}
}

func midnight(t time.Time) time.Time { return domain.PeriodDay.Start(t) }

func reserve(l ports.SpendLedger, id string, c domain.Caller, amount domain.Micros, at time.Time) error {
	return l.Reserve(context.Background(), domain.Reservation{ID: id, Budgets: c.Budgets, Amount: amount, At: at})
}

func mustReserve(t *testing.T, l ports.SpendLedger, id string, c domain.Caller, amount domain.Micros, at time.Time) {
	t.Helper()
	if err := reserve(l, id, c, amount, at); err != nil {
		t.Fatalf("Reserve(%q, %d): %v", id, amount, err)
	}
}

// settlement is a call that cost cost micro-dollars for cost prompt tokens
// and twice as many completion tokens.
func settlement(id string, c domain.Caller, model string, cost domain.Micros, at time.Time) ports.Settlement {
	return ports.Settlement{ReservationID: id, Caller: c, Model: model, Cost: cost, At: at,
		Usage: domain.Usage{PromptTokens: int(cost), CompletionTokens: 2 * int(cost)}}
}

func mustSettle(t *testing.T, l ports.SpendLedger, id string, c domain.Caller, model string, cost domain.Micros, at time.Time) {
	t.Helper()
	if err := l.Settle(context.Background(), settlement(id, c, model, cost, at)); err != nil {
		t.Fatalf("Settle(%q, %d): %v", id, cost, err)
	}
}

func mustRelease(t *testing.T, l ports.SpendLedger, id string) {
	t.Helper()
	if err := l.Release(context.Background(), id); err != nil {
		t.Fatalf("Release(%q): %v", id, err)
	}
}

// checkExceeded fails t unless err is a budget_exceeded error whose message
// names the scope.
func checkExceeded(t *testing.T, err error, scopeID string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindBudgetExceeded || de.Code != "budget_exceeded" {
		t.Fatalf("error = %v, want a %v error with code budget_exceeded", err, domain.KindBudgetExceeded)
	}
	if !strings.Contains(de.Message, scopeID) {
		t.Errorf("message %q does not name %q", de.Message, scopeID)
	}
}

// checkBudgets fails t unless c's budgets at now are as wanted, in order.
func checkBudgets(t *testing.T, l ports.SpendLedger, c domain.Caller, now time.Time, want ...status) {
	t.Helper()
	rep, err := l.Report(context.Background(), c, now, now)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if len(rep.Budgets) != len(want) {
		t.Fatalf("report has %d budgets, want %d", len(rep.Budgets), len(want))
	}
	for i, got := range rep.Budgets {
		if got.Budget != c.Budgets[i] || got.Spent != want[i].spent || got.Reserved != want[i].reserved {
			t.Errorf("budget %d at %s = %+v, want %+v with spent %d, reserved %d",
				i, now.Format(time.DateTime), got, c.Budgets[i], want[i].spent, want[i].reserved)
		}
	}
}

// checkRows fails t unless c's usage from from to now is want.
func checkRows(t *testing.T, l ports.SpendLedger, c domain.Caller, from, now time.Time, want []domain.UsageRow) {
	t.Helper()
	rep, err := l.Report(context.Background(), c, from, now)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	same := len(rep.Rows) == len(want)
	for i := 0; same && i < len(want); i++ {
		g, w := rep.Rows[i], want[i]
		same = g.Day.Equal(w.Day) && g.Model == w.Model && g.Requests == w.Requests &&
			g.PromptTokens == w.PromptTokens && g.CompletionTokens == w.CompletionTokens && g.Cost == w.Cost
	}
	if !same {
		t.Errorf("usage rows =\n\t%+v\nwant\n\t%+v", rep.Rows, want)
	}
}

func reserveSending(t *testing.T, l ports.SpendLedger) {
	s := l.(ports.ReservationSender)
	ctx := context.Background()
	free, budgeted := caller("erin", "risk"), caller("erin", "risk", userBudget("erin", domain.PeriodDay, 100))
	var sends int
	if err := s.ReserveSending(ctx, domain.Reservation{ID: "r1", Budgets: free.Budgets, Amount: 40, At: day0}, func() { sends++ }); err != nil {
		t.Fatal(err)
	}
	if sends != 1 {
		t.Fatalf("a reservation without budgets called sent %d times; want once, before ReserveSending returned", sends)
	}
	mustSettle(t, l, "r1", free, "gpt", 30, day0) // held: its settlement counts
	checkRows(t, l, free, day0, day0, []domain.UsageRow{{Day: midnight(day0), Model: "gpt", Requests: 1,
		PromptTokens: 30, CompletionTokens: 60, Cost: 30}})
	sends = 0
	if err := s.ReserveSending(ctx, domain.Reservation{ID: "r2", Budgets: budgeted.Budgets, Amount: 40, At: day0}, func() { sends++ }); err != nil {
		t.Fatal(err)
	}
	if sends != 0 {
		t.Fatalf("a reservation with budgets called sent %d times; want never", sends)
	}
	checkBudgets(t, l, budgeted, day0, status{0, 40})
}
