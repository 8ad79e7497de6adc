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
// that tests see exactly what was recorded.
type CallLog struct {
	mu       sync.Mutex
	admitErr error
	records  []domain.CallRecord
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

// Admit returns the error set by RefuseAdmission, nil by default.
func (l *CallLog) Admit() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.admitErr
}

// Record keeps r. It never fails: memory is as safe as this log gets.
func (l *CallLog) Record(_ context.Context, r domain.CallRecord) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r)
	return nil
}

// Records returns the records kept so far, oldest first.
func (l *CallLog) Records() []domain.CallRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}
