package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

var _ ports.CallLog = (*CallLog)(nil)

// CallLog keeps every record it is given, in order, duplicates included, so
// that tests see exactly what was recorded, and counts the slots Admit hands
// out, so that tests see that every one is given back.
type CallLog struct {
	mu       sync.Mutex
	admitErr error
	held     int
	records  []domain.CallRecord
	intents  []domain.CallIntent
	owed     []ports.Settlement // recorded with RecordOwing and not acknowledged
}

// NewCallLog returns an empty call log that admits every call.
func NewCallLog() *CallLog {
	return &CallLog{}
}

// RefuseAdmission makes Admit return err from now on; nil admits again.
func (l *CallLog) RefuseAdmission(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.admitErr = err
}

// Admit returns the error set by RefuseAdmission, nil by default; on nil it
// hands out a slot that Held counts until it is released.
func (l *CallLog) Admit() (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.admitErr != nil {
		return nil, l.admitErr
	}
	l.held++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.held--
		})
	}, nil
}

// Held returns the number of slots handed out by Admit and not released.
func (l *CallLog) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Record keeps r. It never fails: memory is as safe as this log gets.
func (l *CallLog) Record(_ context.Context, r domain.CallRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	return nil
}

// RecordOwing keeps r, and owed until Acknowledge names its reservation.
// It never fails.
func (l *CallLog) RecordOwing(_ context.Context, r domain.CallRecord, owed ports.Settlement) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	l.owed = append(l.owed, owed)
	return nil
}

// Acknowledge forgets the owed settlements of the reservations ids.
func (l *CallLog) Acknowledge(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.owed = slices.DeleteFunc(l.owed, func(s ports.Settlement) bool { return slices.Contains(ids, s.ReservationID) })
}

// Owed returns the settlements recorded with RecordOwing and not
// acknowledged: a service started on this log after another stopped sees
// those the other left owed (and, in this fake, its own not yet
// acknowledged too).
func (l *CallLog) Owed(context.Context) ([]ports.Settlement, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.owed), nil
}

// Intend keeps i. It never fails.
func (l *CallLog) Intend(_ context.Context, i domain.CallIntent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.intents = append(l.intents, i)
	return nil
}

// Unfinished returns the intents kept without a record of the same request
// id: a service started on this log after another stopped sees the calls
// that one left unfinished.
func (l *CallLog) Unfinished(context.Context) ([]domain.CallIntent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	recorded := map[string]bool{}
	for _, r := range l.records {
		recorded[r.RequestID] = true
	}
	var out []domain.CallIntent
	for _, i := range l.intents {
		if !recorded[i.RequestID] {
			out = append(out, i)
		}
	}
	return out, nil
}

// Intents returns the intents kept so far, oldest first.
func (l *CallLog) Intents() []domain.CallIntent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.intents)
}

// Records returns the records kept so far, oldest first.
func (l *CallLog) Records() []domain.CallRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}
