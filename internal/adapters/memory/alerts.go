package memory

import (
	"context"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.AlertOutbox = (*Ledger)(nil)

// alertKey names one threshold of one budget in one period.
type alertKey struct {
	counter   counter
	start     time.Time
	threshold int
}

// alertBook keeps the alerts a Ledger raised: each threshold once per
// budget and period, in an outbox until delivered.
type alertBook struct {
	thresholds []int
	fired      map[alertKey]bool
	outbox     []*pendingAlert
	next       int64
}

type pendingAlert struct {
	alert     domain.BudgetAlert
	due       time.Time
	delivered bool
}

// alertPeriod returns the period an alert on b at t belongs to.
func (l *Ledger) alertPeriod(b domain.Budget, t time.Time) time.Time {
	return domain.AlertPeriod(b, t, l.loc)
}

// note raises an alert for each threshold spending on b from before to
// after crossed in the period starting at start, unless it fired already.
func (a *alertBook) note(b domain.Budget, start time.Time, before, after domain.Micros) {
	for _, t := range domain.CrossedThresholds(a.thresholds, b.Limit, before, after) {
		a.raise(b, start, t, after)
	}
}

// raise raises the alert of threshold t on b in the period starting at
// start, with spent, unless it fired already.
func (a *alertBook) raise(b domain.Budget, start time.Time, t int, spent domain.Micros) {
	k := alertKey{counter: counter{scope: b.Scope, id: b.ScopeID, period: b.Period, model: b.Model}, start: start, threshold: t}
	if a.fired[k] {
		return
	}
	a.fired[k] = true
	a.next++
	a.outbox = append(a.outbox, &pendingAlert{alert: domain.BudgetAlert{ID: a.next, Budget: b, PeriodStart: start,
		Threshold: t, Spent: spent, At: time.Now()}})
}

// ClaimAlerts returns up to n alerts not yet delivered whose next attempt
// is due at now, and puts their next attempt lease after now.
func (l *Ledger) ClaimAlerts(_ context.Context, now time.Time, n int, lease time.Duration) ([]domain.BudgetAlert, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []domain.BudgetAlert
	for _, p := range l.alerts.outbox {
		if len(out) == n {
			break
		}
		if p.delivered || p.due.After(now) {
			continue
		}
		out = append(out, p.alert)
		p.alert.Attempts++
		p.due = now.Add(lease)
	}
	return out, nil
}

// AlertDelivered marks the alert delivered.
func (l *Ledger) AlertDelivered(_ context.Context, id int64) error {
	l.withAlert(id, func(p *pendingAlert) { p.delivered = true })
	return nil
}

// AlertFailed puts the alert's next attempt at next.
func (l *Ledger) AlertFailed(_ context.Context, id int64, next time.Time, _ string) error {
	l.withAlert(id, func(p *pendingAlert) { p.due = next })
	return nil
}

// withAlert calls f on the pending alert id, if there is one, under l.mu.
func (l *Ledger) withAlert(id int64, f func(*pendingAlert)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.alerts.outbox {
		if p.alert.ID == id {
			f(p)
		}
	}
}
