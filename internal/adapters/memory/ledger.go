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
type Ledger struct {
	mu           sync.Mutex
	spend        map[counter]*amounts
	reservations map[string]*reservation
	usage        map[usageKey]*domain.UsageRow
}

// counter names the spend of one budget in one period.
type counter struct {
	scope  domain.ScopeKind
	id     string
	period domain.Period
	start  time.Time
}

type amounts struct{ spent, reserved domain.Micros }

type reservation struct {
	amount   domain.Micros
	day      time.Time
	counters []counter
	held     bool // false once settled or released
	ending   Ending
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

// NewLedger returns a ledger with nothing spent.
func NewLedger() *Ledger {
	return &Ledger{spend: map[counter]*amounts{}, reservations: map[string]*reservation{}, usage: map[usageKey]*domain.UsageRow{}}
}

func counterOf(b domain.Budget, at time.Time) counter {
	return counter{scope: b.Scope, id: b.ScopeID, period: b.Period, start: b.Period.Start(at)}
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
	res := &reservation{amount: r.Amount, day: domain.PeriodDay.Start(r.At), held: true}
	for _, b := range r.Budgets {
		c := counterOf(b, r.At)
		var used domain.Micros
		if a, ok := l.spend[c]; ok {
			used = a.spent + a.reserved
		}
		if r.Amount > b.Limit-used {
			return domain.BudgetExceeded(b, used, r.Amount)
		}
		res.counters = append(res.counters, c)
	}
	for _, c := range res.counters {
		if l.spend[c] == nil {
			l.spend[c] = &amounts{}
		}
		l.spend[c].reserved += r.Amount
	}
	l.reservations[r.ID] = res
	return nil
}

// Settle replaces the reservation's hold by the actual cost on the periods
// it was reserved for and counts one request on the reservation's day.
// Settling a settled or released reservation changes nothing; an unknown
// one is a domain.KindNotFound error.
func (l *Ledger) Settle(_ context.Context, s ports.Settlement) error {
	if s.Cost < 0 || s.Usage.PromptTokens < 0 || s.Usage.CompletionTokens < 0 {
		return domain.InvalidParam("settlement", "a settlement's cost and token counts must not be negative")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res, err := l.held(s.ReservationID)
	if err != nil {
		return err
	}
	l.reservations[s.ReservationID].ending.Settles++
	if res == nil {
		return nil
	}
	res.ending.Cost = s.Cost
	l.move(res, s.Cost)
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
	return nil
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
	l.move(res, 0)
	return nil
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

// move ends res, replacing its hold by spent on each of its counters.
// l.mu must be held.
func (l *Ledger) move(res *reservation, spent domain.Micros) {
	for _, c := range res.counters {
		l.spend[c].spent += spent
		l.spend[c].reserved -= res.amount
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
		st := domain.BudgetStatus{Budget: b}
		if a, ok := l.spend[counterOf(b, now)]; ok {
			st.Spent, st.Reserved = a.spent, a.reserved
		}
		rep.Budgets = append(rep.Budgets, st)
	}
	return rep, nil
}
