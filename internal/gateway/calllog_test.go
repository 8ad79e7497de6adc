package gateway_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestEveryPathGivesBackItsCallLogSlot takes calls down every way they end
// (answered, failed upstream, refused before admission, refused by the
// budget, refused at the edge) and checks that each gives back the call log
// slot it took. TestAdmissionLimits checks the refusal for want of a
// concurrency slot, and that a call holds its slot while the provider works.
func TestEveryPathGivesBackItsCallLogSlot(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		r := newRig(t, gateway.Options{}, alice, 0)
		if _, err := r.svc.Chat(context.Background(), r.call(), chat("main")); err != nil {
			t.Fatal(err)
		}
		checkSlotsBack(t, r.log, 1)
	})
	t.Run("failed upstream", func(t *testing.T) {
		r := newRig(t, gateway.Options{MaxAttempts: 1}, alice, 0)
		r.primary.errs, r.backup.errs = []error{errUpstream}, []error{errUpstream}
		if _, err := r.svc.Chat(context.Background(), r.call(), chat("main")); domain.KindOf(err) != domain.KindUpstream {
			t.Fatalf("err = %v, want upstream", err)
		}
		checkSlotsBack(t, r.log, 1)
	})
	t.Run("invalid request", func(t *testing.T) {
		r := newRig(t, gateway.Options{}, alice, 0)
		if _, err := r.svc.Chat(context.Background(), r.call(), domain.ChatRequest{Model: "main"}); domain.KindOf(err) != domain.KindInvalid {
			t.Fatalf("err = %v, want invalid", err)
		}
		checkSlotsBack(t, r.log, 1)
	})
	t.Run("budget exceeded", func(t *testing.T) {
		r := newRig(t, gateway.Options{}, alice, 1)
		if _, err := r.svc.Chat(context.Background(), r.call(), chat("main")); domain.KindOf(err) != domain.KindBudgetExceeded {
			t.Fatalf("err = %v, want budget exceeded", err)
		}
		checkSlotsBack(t, r.log, 1)
	})
	t.Run("refused at the edge", func(t *testing.T) {
		r := newRig(t, gateway.Options{}, alice, 0)
		why := domain.InvalidParam("body", "not JSON")
		if err := r.svc.Refuse(context.Background(), r.call(), domain.EndpointChat, "main", why); !errors.Is(err, why) {
			t.Fatalf("Refuse = %v", err)
		}
		checkSlotsBack(t, r.log, 1)
	})
}

func checkSlotsBack(t *testing.T, log *memory.CallLog, records int) {
	t.Helper()
	if got := log.Held(); got != 0 {
		t.Errorf("call log slots still held = %d, want 0", got)
	}
	if got := len(log.Records()); got != records {
		t.Errorf("%d records, want %d", got, records)
	}
}

// failingRecords is a call log whose journal cannot write: it admits calls
// but fails every record.
type failingRecords struct{ *memory.CallLog }

func (failingRecords) Record(context.Context, domain.CallRecord) error {
	return domain.Wrap(domain.KindUnavailable, errors.New("no space left on device"), "call log journal write failed")
}

func (l failingRecords) RecordOwing(ctx context.Context, r domain.CallRecord, _ ports.Settlement) error {
	return l.Record(ctx, r)
}

// TestACallWhoseRecordFailsIsSettledAndRefused makes the record fail after
// the provider answered (the journal's disk filled up during the call): the
// provider's work is settled, since it was consumed, and the client gets
// 503 instead of the answer, since an answer must not leave unrecorded.
func TestACallWhoseRecordFailsIsSettledAndRefused(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	log := failingRecords{r.log}
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: mustCatalogue(t, r),
		Providers: map[string]ports.Provider{"primary": r.primary, "backup": r.backup},
		Keys:      memory.NewKeyStore(), Ledger: r.ledger, CallLog: log}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	call := r.call()
	res, err := svc.Chat(context.Background(), call, chat("main"))
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if r.primary.callCount() != 1 || res.Cost == 0 {
		t.Fatalf("provider calls = %d, cost %v; want one answered call with a cost", r.primary.callCount(), res.Cost)
	}
	led := seen(t, svc, r.ledger)
	if len(led.settled) != 1 || led.settled[0] != call.RequestID || led.spent != res.Cost || len(led.held) != 0 {
		t.Errorf("ledger settled %v spent %v held %v; want the call settled at %v and nothing held", led.settled, led.spent, led.held, res.Cost)
	}
	if got := r.log.Held(); got != 0 {
		t.Errorf("call log slots still held = %d, want 0", got)
	}
}

// TestACallLogThatCannotWriteRefusesBeforeTheProvider refuses admission as
// a call log with a failing journal does: no provider call, no reservation,
// no charge.
func TestACallLogThatCannotWriteRefusesBeforeTheProvider(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	r.log.RefuseAdmission(&domain.Error{Kind: domain.KindUnavailable, Code: "call_log_unwritable", Message: "the call log journal cannot be written"})
	_, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
	if domain.KindOf(err) != domain.KindUnavailable || r.primary.callCount() != 0 {
		t.Fatalf("err = %v, provider calls = %d; want unavailable before any provider call", err, r.primary.callCount())
	}
	led := seen(t, r.svc, r.ledger)
	if led.spent != 0 || len(led.held) != 0 || len(led.settled) != 0 || len(led.released) != 0 {
		t.Errorf("ledger spent %v held %v settled %v released %v; want it untouched", led.spent, led.held, led.settled, led.released)
	}
}
