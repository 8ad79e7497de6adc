package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.SpendLedger = (*Ledger)(nil)

// Ledger holds budgets exactly, under one mutex, with the semantics of the
// PostgreSQL ledger: settle and release are idempotent, settling charges the
// periods that were reserved, and usage counts on the reservation's day. It
// has no expiry sweep: its reservations cannot outlive their process.
// Calendar periods are counted per period; a rolling window sums the holds
// and costs of the reservations made within it.
type Ledger struct {
	mu           sync.Mutex
	loc          *time.Location
	spend        map[counter]*amounts
	windows      map[counter][]*windowEntry // rolling budgets; counter.start is zero
	reservations map[string]*reservation
	usage        map[usageKey]*domain.UsageRow
	alerts       alertBook
	batches      int // SettleAll calls that applied their settlements
}

// counter names the spend of one budget in one period.
type counter struct {
	scope  domain.ScopeKind
	id     string
	period domain.Period
	model  string
	start  time.Time
}

type amounts struct{ spent, reserved domain.Micros }

// windowEntry is one reservation's part of a rolling budget: held until
// the reservation ends, then its cost (or nothing).
type windowEntry struct {
	at          time.Time
	held, spent domain.Micros
}

// hold is one budget a reservation holds its amount against.
type hold struct {
	budget  domain.Budget
	counter counter
	entry   *windowEntry // rolling budgets only
}

type reservation struct {
	r      domain.Reservation // as reserved, for Orphans
	amount domain.Micros
	at     time.Time
	day    time.Time
	holds  []hold
	held   bool // false once settled or released
	ending Ending
}

// Ending is what happened to one reservation, for tests that must prove a
// call ended its reservation exactly once. Repeated settlements and
// releases are counted although only the first one changes the budgets.
type Ending struct {
	Amount   domain.Micros // what was reserved
	Settles  int           // Settle calls, repeats included
	Releases int           // Release calls, repeats included
	Cost     domain.Micros // what the first settlement charged
	Held     bool          // neither settled nor released yet
}

type usageKey struct {
	user, team, keyID, model string
	day                      time.Time
}

// LedgerOptions tune a Ledger; the zero value is the default.
type LedgerOptions struct {
	// Location is the budget time zone the calendar periods follow; nil
	// is UTC.
	Location *time.Location
	// AlertThresholds are the percentages of a budget whose crossing
	// raises a budget alert (see Alerts); none, no alerts.
	AlertThresholds []int
}

// NewLedger returns a ledger with nothing spent, in UTC, without alerts.
func NewLedger() *Ledger { return NewLedgerWith(LedgerOptions{}) }

// NewLedgerWith returns a ledger with nothing spent.
func NewLedgerWith(opts LedgerOptions) *Ledger {
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	return &Ledger{loc: loc, spend: map[counter]*amounts{}, windows: map[counter][]*windowEntry{},
		reservations: map[string]*reservation{}, usage: map[usageKey]*domain.UsageRow{},
		alerts: alertBook{thresholds: opts.AlertThresholds, fired: map[alertKey]bool{}}}
}

// counterOf returns the counter of b's period containing at; a rolling
// budget has one counter for all time.
func (l *Ledger) counterOf(b domain.Budget, at time.Time) counter {
	c := counter{scope: b.Scope, id: b.ScopeID, period: b.Period, model: b.Model}
	if _, rolling := b.Period.Window(); !rolling {
		c.start = b.Period.PeriodDate(at, l.loc)
	}
	return c
}

// used returns what b's period containing at has spent and holds.
func (l *Ledger) used(b domain.Budget, at time.Time) (spent, held domain.Micros) {
	c := l.counterOf(b, at)
	d, rolling := b.Period.Window()
	if !rolling {
		if a, ok := l.spend[c]; ok {
			return a.spent, a.reserved
		}
		return 0, 0
	}
	from := at.Add(-d)
	for _, e := range l.windows[c] {
		if e.at.After(from) {
			spent, held = spent+e.spent, held+e.held
		}
	}
	return spent, held
}

// Reserve holds r.Amount against every budget in r.Budgets for the periods
// containing r.At, or returns a domain.KindBudgetExceeded error naming the
// first budget without room and holds nothing.
func (l *Ledger) Reserve(_ context.Context, r domain.Reservation) error {
	if err := r.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.reservations[r.ID]; ok {
		return domain.InvalidParam("reservation_id", "reservation %q already exists", r.ID)
	}
	res := &reservation{r: r, amount: r.Amount, at: r.At, day: domain.PeriodDay.Start(r.At), held: true}
	for _, b := range r.Budgets {
		spent, held := l.used(b, r.At)
		if r.Amount > b.Limit-spent-held {
			if t := domain.ExhaustedThreshold(l.alerts.thresholds, b.Limit, spent, r.Amount); t > 0 {
				l.alerts.raise(b, l.alertPeriod(b, r.At), t, spent)
			}
			return domain.BudgetExceeded(b, spent+held, r.Amount)
		}
		res.holds = append(res.holds, hold{budget: b, counter: l.counterOf(b, r.At)})
	}
	for i := range res.holds {
		h := &res.holds[i]
		if _, rolling := h.budget.Period.Window(); rolling {
			h.entry = &windowEntry{at: r.At, held: r.Amount}
			l.windows[h.counter] = append(l.windows[h.counter], h.entry)
			continue
		}
		if l.spend[h.counter] == nil {
			l.spend[h.counter] = &amounts{}
		}
		l.spend[h.counter].reserved += r.Amount
	}
	l.reservations[r.ID] = res
	return nil
}

// Settle replaces the reservation's hold by the actual cost on the periods
// it was reserved for and counts one request on the reservation's day.
// Settling a settled or released reservation changes nothing; an unknown
// one is a domain.KindNotFound error.
func (l *Ledger) Settle(_ context.Context, s ports.Settlement) error {
	if err := checkSettlement(s); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.held(s.ReservationID); err != nil {
		return err
	}
	l.settle(s)
	return nil
}

// SettleAll applies the settlements in order, as Settle would, or, when one
// is invalid or its reservation unknown, returns the error and applies none.
func (l *Ledger) SettleAll(_ context.Context, ss []ports.Settlement) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range ss {
		if err := checkSettlement(s); err != nil {
			return err
		}
		if _, err := l.held(s.ReservationID); err != nil {
			return err
		}
	}
	l.batches++
	for _, s := range ss {
		l.settle(s)
	}
	return nil
}

// Batches returns how many SettleAll calls applied their settlements.
func (l *Ledger) Batches() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.batches
}

func checkSettlement(s ports.Settlement) error {
	if s.Cost < 0 || s.Usage.PromptTokens < 0 || s.Usage.CompletionTokens < 0 {
		return domain.InvalidParam("settlement", "a settlement's cost and token counts must not be negative")
	}
	return nil
}

// settle applies s to its known reservation. l.mu must be held.
func (l *Ledger) settle(s ports.Settlement) {
	res, _ := l.held(s.ReservationID)
	l.reservations[s.ReservationID].ending.Settles++
	if res == nil {
		return
	}
	res.ending.Cost = s.Cost
	l.move(res, s.Cost, domain.Model{Name: s.Model, Group: s.Group})
	k := usageKey{user: s.Caller.User, team: s.Caller.Team, keyID: s.Caller.KeyID, model: s.Model, day: res.day}
	u := l.usage[k]
	if u == nil {
		u = &domain.UsageRow{Day: res.day, Model: s.Model}
		l.usage[k] = u
	}
	u.Requests++
	u.PromptTokens += int64(s.Usage.PromptTokens)
	u.CompletionTokens += int64(s.Usage.CompletionTokens)
	u.Cost += s.Cost
}

// Release drops the reservation's hold. Releasing a reservation that is no
// longer held changes nothing; an unknown one is a domain.KindNotFound error.
func (l *Ledger) Release(_ context.Context, reservationID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	res, err := l.held(reservationID)
	if err != nil {
		return err
	}
	l.reservations[reservationID].ending.Releases++
	if res == nil {
		return nil
	}
	l.move(res, 0, domain.Model{})
	return nil
}

// Orphans returns the reservations still held that an earlier run of
// h.Log took (nil for a Holder without a Log), oldest first; this ledger
// never expires a reservation.
func (l *Ledger) Orphans(_ context.Context, h domain.Holder) ([]domain.Reservation, error) {
	if h.Log == "" {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []domain.Reservation
	for _, res := range l.reservations {
		if res.held && res.r.Holder.Log == h.Log && res.r.Holder.Run != h.Run {
			r := res.r
			r.Budgets = nil
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b domain.Reservation) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// held returns the reservation if it is still held, nil if it was settled
// or released, or a domain.KindNotFound error. l.mu must be held.
func (l *Ledger) held(id string) (*reservation, error) {
	res, ok := l.reservations[id]
	if !ok {
		return nil, &domain.Error{Kind: domain.KindNotFound, Code: "reservation_not_found",
			Message: fmt.Sprintf("there is no reservation %q", id)}
	}
	if !res.held {
		return nil, nil
	}
	return res, nil
}

// move ends res, replacing its hold by spent on each of its budgets that
// applies to the model that answered, and by nothing on the others; it
// notes the alerts whose thresholds the spending crossed. l.mu must be held.
func (l *Ledger) move(res *reservation, spent domain.Micros, answered domain.Model) {
	for _, h := range res.holds {
		cost := domain.Micros(0)
		if h.budget.Applies(answered) {
			cost = spent
		}
		before, _ := l.used(h.budget, res.at)
		if h.entry != nil {
			h.entry.held, h.entry.spent = 0, cost
		} else {
			l.spend[h.counter].spent += cost
			l.spend[h.counter].reserved -= res.amount
		}
		l.alerts.note(h.budget, l.alertPeriod(h.budget, res.at), before, before+cost)
	}
	res.held = false
}

// Endings returns what happened to each reservation, by reservation ID.
func (l *Ledger) Endings() map[string]Ending {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]Ending, len(l.reservations))
	for id, res := range l.reservations {
		e := res.ending
		e.Amount, e.Held = res.amount, res.held
		out[id] = e
	}
	return out
}

// Report returns the usage of the caller's user from the UTC day of from to
// that of now, by day and model, and the state of each of the caller's
// budgets in the period containing now.
func (l *Ledger) Report(_ context.Context, c domain.Caller, from, now time.Time) (domain.UsageReport, error) {
	first, last := domain.PeriodDay.Start(from), domain.PeriodDay.Start(now)
	rep := domain.UsageReport{User: c.User, Team: c.Team}
	l.mu.Lock()
	defer l.mu.Unlock()
	rows := map[usageKey]*domain.UsageRow{} // keyed by day and model only
	for k, u := range l.usage {
		if k.user != c.User || k.day.Before(first) || k.day.After(last) {
			continue
		}
		byDay := usageKey{day: k.day, model: k.model}
		if rows[byDay] == nil {
			rows[byDay] = &domain.UsageRow{Day: k.day, Model: k.model}
		}
		r := rows[byDay]
		r.Requests += u.Requests
		r.PromptTokens += u.PromptTokens
		r.CompletionTokens += u.CompletionTokens
		r.Cost += u.Cost
	}
	for _, r := range rows {
		rep.Rows = append(rep.Rows, *r)
	}
	slices.SortFunc(rep.Rows, func(a, b domain.UsageRow) int {
		return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.Model, b.Model))
	})
	for _, b := range c.Budgets {
		st := domain.BudgetStatus{Budget: b, Start: b.Period.StartIn(now, l.loc), End: b.Period.EndIn(now, l.loc)}
		st.Spent, st.Reserved = l.used(b, now)
		rep.Budgets = append(rep.Budgets, st)
	}
	return rep, nil
}
