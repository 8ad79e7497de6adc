package gateway_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/logtest"
	"github.com/tidygate/tidygate/internal/ports"
)

// heldLedger is a memory ledger whose reservations wait, while a gate is
// set, until it is opened, and fail while the ledger is down.
type heldLedger struct {
	*memory.Ledger
	mu       sync.Mutex
	gate     chan struct{} // closed to let the reservation waiting on it through
	entered  chan struct{} // closed when a reservation waits on the gate
	down     bool
	answered atomic.Bool // a reservation has been answered since the gate was set
}

// hold makes the next reservation wait until open is called.
func (l *heldLedger) hold() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gate, l.entered = make(chan struct{}), make(chan struct{})
	l.answered.Store(false)
}

// open lets the reservation waiting on the gate through.
func (l *heldLedger) open() {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.gate)
	l.gate = nil
}

func (l *heldLedger) setDown(down bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = down
}

func (l *heldLedger) Reserve(ctx context.Context, r domain.Reservation) error {
	l.mu.Lock()
	gate, entered, down := l.gate, l.entered, l.down
	l.mu.Unlock()
	if gate != nil {
		close(entered)
		<-gate
	}
	defer l.answered.Store(true)
	if down {
		return domain.Errorf(domain.KindUnavailable, "the ledger is down")
	}
	if err := l.Ledger.Reserve(ctx, r); err != nil {
		return err
	}
	return ctx.Err() // as PostgreSQL's: held all the same when the caller stopped waiting for the answer
}

// lostAnswerLedger is a heldLedger that sends each reservation whole and
// then loses the ledger's answer: the reservation is held, or with
// notTaken never was, and ReserveSending fails either way. With failEnd,
// settling or releasing it fails too.
type lostAnswerLedger struct {
	*heldLedger
	notTaken, failEnd bool
}

func (l *lostAnswerLedger) Settle(ctx context.Context, st ports.Settlement) error {
	if l.failEnd {
		return domain.Errorf(domain.KindUnavailable, "the ledger is gone again")
	}
	return l.heldLedger.Settle(ctx, st)
}

func (l *lostAnswerLedger) Release(ctx context.Context, id string) error {
	if l.failEnd {
		return domain.Errorf(domain.KindUnavailable, "the ledger is gone again")
	}
	return l.heldLedger.Release(ctx, id)
}

func (l *lostAnswerLedger) ReserveSending(ctx context.Context, r domain.Reservation, sent func()) error {
	sent()
	l.setDown(l.notTaken)
	_ = l.Reserve(ctx, r) // waits while the gate is set; held unless notTaken
	return domain.Errorf(domain.KindUnavailable, "the ledger's answer was lost")
}

// sendingLedger is a heldLedger that says when a reservation is sent
// (ports.ReservationSender): once send is closed.
type sendingLedger struct {
	*heldLedger
	send chan struct{}
}

func (l *sendingLedger) ReserveSending(ctx context.Context, r domain.Reservation, sent func()) error {
	<-l.send
	sent()
	return l.Reserve(ctx, r)
}

// signalledProvider is a scripted provider that tells when it is called.
type signalledProvider struct {
	*scriptedProvider
	called chan struct{} // receives a value as each call begins
}

func (p *signalledProvider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	p.called <- struct{}{}
	return p.scriptedProvider.Chat(ctx, req)
}

// ChatStream stops, as a provider reading its answer from the network
// would, once its context has ended.
func (p *signalledProvider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	p.called <- struct{}{}
	return p.scriptedProvider.ChatStream(ctx, req, func(c domain.ChatChunk) error {
		if err := emit(c); err != nil {
			return err
		}
		return ctx.Err()
	})
}

type alongsideRig struct {
	svc      *gateway.Service
	ledger   *heldLedger
	provider *signalledProvider
	log      *memory.CallLog
}

// newAlongsideRig returns a service over a heldLedger, which the service
// uses as it is or, when wrap is not nil, as wrap returns it.
func newAlongsideRig(t *testing.T, opts gateway.Options, wrap func(*heldLedger) ports.SpendLedger) *alongsideRig {
	t.Helper()
	r := &alongsideRig{ledger: &heldLedger{Ledger: memory.NewLedger()}, log: memory.NewCallLog(),
		provider: &signalledProvider{scriptedProvider: &scriptedProvider{}, called: make(chan struct{}, 16)}}
	var ledger ports.SpendLedger = r.ledger
	if wrap != nil {
		ledger = wrap(r.ledger)
	}
	var err error
	r.svc, err = gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": r.provider, "backup": r.provider},
		Keys:      memory.NewKeyStore(), Ledger: ledger, CallLog: r.log}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// calledWithin reports whether the provider is called within d.
func (r *alongsideRig) calledWithin(d time.Duration) bool {
	select {
	case <-r.provider.called:
		return true
	case <-time.After(d):
		return false
	}
}

type answer struct {
	res gateway.ChatResult
	err error
}

// chatAsync runs a call in the background; the channel receives its answer.
func (r *alongsideRig) chatAsync(c domain.Caller, id string) <-chan answer {
	done := make(chan answer, 1)
	go func() {
		res, err := r.svc.Chat(context.Background(), gateway.Call{RequestID: id, Caller: c, AuditReason: "quarterly review"}, chat("main"))
		done <- answer{res, err}
	}()
	return done
}

// TestReservingAlongsideTheProvider checks when a call reserves while its
// provider works: a caller without budgets does, and gets nothing of the
// answer before its reservation is held; a caller with budgets, and every
// caller under Options.ReserveFirst, reserves before the provider is
// called.
func TestReservingAlongsideTheProvider(t *testing.T) {
	budgeted := alice
	budgeted.Budgets = []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 1_000_000}}

	t.Run("a caller without budgets: the provider works while the ledger reserves", func(t *testing.T) {
		r := newAlongsideRig(t, gateway.Options{}, nil)
		r.ledger.hold()
		done := r.chatAsync(alice, "r1")
		if !r.calledWithin(5 * time.Second) {
			t.Fatal("the provider was not called while the reservation waited")
		}
		select {
		case a := <-done:
			t.Fatalf("the call ended (%v) before its reservation was held", a.err)
		case <-time.After(20 * time.Millisecond):
		}
		r.ledger.open()
		if a := <-done; a.err != nil {
			t.Fatal(a.err)
		}
		if v := seen(t, r.svc, r.ledger.Ledger); len(v.settled) != 1 || v.settled[0] != "r1" || len(v.held) != 0 {
			t.Fatalf("ledger %+v; want r1 settled and nothing held", v)
		}
	})

	t.Run("a caller without budgets: no chunk of a stream before the reservation is held", func(t *testing.T) {
		r := newAlongsideRig(t, gateway.Options{}, nil)
		r.ledger.hold()
		var chunks, early atomic.Int32
		done := make(chan error, 1)
		go func() {
			_, err := r.svc.ChatStream(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}, chat("main"),
				func(domain.ChatChunk) error {
					chunks.Add(1)
					if !r.ledger.answered.Load() {
						early.Add(1)
					}
					return nil
				})
			done <- err
		}()
		if !r.calledWithin(5 * time.Second) {
			t.Fatal("the provider was not called while the reservation waited")
		}
		time.Sleep(20 * time.Millisecond) // time for a chunk to slip through, if one could
		r.ledger.open()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if chunks.Load() == 0 || early.Load() != 0 {
			t.Fatalf("%d chunks, %d of them before the reservation was held; want some, none early", chunks.Load(), early.Load())
		}
	})

	t.Run("a stream whose reservation takes longer than PROVIDER_TIMEOUT: the provider was in time", func(t *testing.T) {
		r := newAlongsideRig(t, gateway.Options{ProviderTimeout: 50 * time.Millisecond, StreamTimeout: time.Minute}, nil)
		r.ledger.hold()
		done := make(chan error, 1)
		go func() {
			_, err := r.svc.ChatStream(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}, chat("main"),
				func(domain.ChatChunk) error { return nil })
			done <- err
		}()
		if !r.calledWithin(5 * time.Second) {
			t.Fatal("the provider was not called while the reservation waited")
		}
		time.Sleep(200 * time.Millisecond) // the ledger answers four PROVIDER_TIMEOUTs after the provider's first event
		r.ledger.open()
		if err := <-done; err != nil {
			t.Fatalf("err = %v; want the stream answered: its provider sent its first event at once", err)
		}
		if rec := r.log.Records()[0]; rec.Outcome != domain.OutcomeOK || len(rec.Attempts) != 1 {
			t.Fatalf("record = %+v; want one attempt, answered", rec)
		}
	})

	t.Run("a ledger that says when a reservation is sent: the provider is called once it is", func(t *testing.T) {
		var l *sendingLedger
		r := newAlongsideRig(t, gateway.Options{}, func(h *heldLedger) ports.SpendLedger {
			l = &sendingLedger{heldLedger: h, send: make(chan struct{})}
			return l
		})
		r.ledger.hold()
		done := r.chatAsync(alice, "r1")
		if r.calledWithin(100 * time.Millisecond) {
			t.Fatal("the provider was called before the reservation was sent")
		}
		close(l.send)
		if !r.calledWithin(5 * time.Second) {
			t.Fatal("the provider was not called once the reservation was sent, while the ledger had not answered")
		}
		r.ledger.open()
		if a := <-done; a.err != nil {
			t.Fatal(a.err)
		}
		if v := seen(t, r.svc, r.ledger.Ledger); len(v.settled) != 1 || len(v.held) != 0 {
			t.Fatalf("ledger %+v; want r1 settled, nothing held", v)
		}
	})

	for _, tc := range []struct {
		name   string
		caller domain.Caller
		opts   gateway.Options
	}{
		{"a caller with budgets reserves first", budgeted, gateway.Options{}},
		{"ReserveFirst: a caller without budgets reserves first", alice, gateway.Options{ReserveFirst: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newAlongsideRig(t, tc.opts, nil)
			r.ledger.hold()
			done := r.chatAsync(tc.caller, "r1")
			<-r.ledger.entered
			if r.calledWithin(100 * time.Millisecond) {
				t.Fatal("the provider was called before the reservation was held")
			}
			r.ledger.open()
			if a := <-done; a.err != nil {
				t.Fatal(a.err)
			}
			if !r.calledWithin(time.Second) {
				t.Fatal("the provider was not called once the reservation was held")
			}
		})
	}
}

// TestAFailedReservationAlongsideWithholdsTheAnswer checks a call whose
// reservation, made while its provider worked, fails: the client gets the
// ledger's error and nothing of the answer, the call is recorded with what
// it consumed and as interrupted by the ledger, the ledger holds nothing of
// it, and its tokens per minute are given back (the limiter spy checks).
// The next calls reserve first until a reservation succeeds again, so that
// a failing ledger does not send calls to providers.
func TestAFailedReservationAlongsideWithholdsTheAnswer(t *testing.T) {
	t.Run("whole answer, then the calls after it", func(t *testing.T) {
		r := newAlongsideRig(t, gateway.Options{}, nil)
		r.ledger.setDown(true)
		r.ledger.hold() // the ledger refuses once the provider is at work
		done := r.chatAsync(alice, "r1")
		if !r.calledWithin(5 * time.Second) {
			t.Fatal("the provider was not called while the reservation waited")
		}
		r.ledger.open()
		a := <-done
		if domain.KindOf(a.err) != domain.KindUnavailable || !strings.Contains(a.err.Error(), "the ledger is down") {
			t.Fatalf("err = %v; want the ledger's", a.err)
		}
		if got := r.provider.callCount(); got != 1 {
			t.Fatalf("%d provider calls; want 1 (called alongside, not retried)", got)
		}
		rec := r.log.Records()[0]
		if rec.Outcome != domain.OutcomeError || rec.Interrupted != domain.InterruptedByLedger || rec.ErrorKind != domain.KindUnavailable ||
			rec.Usage.Total() == 0 || rec.Cost() == 0 || !strings.Contains(rec.ErrorMessage, "its answer was withheld") {
			t.Fatalf("record = %+v; want an error interrupted by the ledger, with the usage the provider reported", rec)
		}
		if e := r.ledger.Endings(); len(e) != 0 {
			t.Fatalf("ledger endings %+v; want none: nothing was held", e)
		}

		// The ledger still fails: the next call reserves first and is refused
		// before any provider is called.
		if a := <-r.chatAsync(alice, "r2"); domain.KindOf(a.err) != domain.KindUnavailable {
			t.Fatalf("err = %v; want the ledger's", a.err)
		}
		if got := r.provider.callCount(); got != 1 {
			t.Fatalf("%d provider calls; want 1: the second call reserves first", got)
		}
		if rec := r.log.Records()[1]; rec.Outcome != domain.OutcomeRejected {
			t.Fatalf("second record = %+v; want a refusal", rec)
		}

		// Back up: one call reserves first and succeeds; the one after it
		// reserves alongside again.
		r.ledger.setDown(false)
		if a := <-r.chatAsync(alice, "r3"); a.err != nil {
			t.Fatal(a.err)
		}
		<-r.provider.called
		r.ledger.hold()
		done = r.chatAsync(alice, "r4")
		if !r.calledWithin(5 * time.Second) {
			t.Fatal("after a reservation succeeded, the provider was not called while the next reservation waited")
		}
		r.ledger.open()
		if a := <-done; a.err != nil {
			t.Fatal(a.err)
		}
		if v := seen(t, r.svc, r.ledger.Ledger); len(v.settled) != 2 || len(v.held) != 0 {
			t.Fatalf("ledger %+v; want r3 and r4 settled, nothing held", v)
		}
	})

	t.Run("stream", func(t *testing.T) {
		r := newAlongsideRig(t, gateway.Options{}, nil)
		r.ledger.setDown(true)
		r.ledger.hold() // the ledger refuses once the provider is at work
		var chunks atomic.Int32
		done := make(chan error, 1)
		go func() {
			_, err := r.svc.ChatStream(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}, chat("main"),
				func(domain.ChatChunk) error { chunks.Add(1); return nil })
			done <- err
		}()
		if !r.calledWithin(5 * time.Second) {
			t.Fatal("the provider was not called while the reservation waited")
		}
		r.ledger.open()
		err := <-done
		if domain.KindOf(err) != domain.KindUnavailable || !strings.Contains(err.Error(), "the ledger is down") || chunks.Load() != 0 {
			t.Fatalf("err = %v after %d chunks; want the ledger's error and no chunk", err, chunks.Load())
		}
		if got := r.provider.callCount(); got != 1 {
			t.Fatalf("%d provider calls; want 1", got)
		}
		if rec := r.log.Records()[0]; rec.Outcome != domain.OutcomeError || rec.ErrorKind != domain.KindUnavailable || !rec.Stream ||
			rec.Interrupted != domain.InterruptedByLedger {
			t.Fatalf("record = %+v; want the stream's error, interrupted by the ledger", rec)
		}
		if e := r.ledger.Endings(); len(e) != 0 {
			t.Fatalf("ledger endings %+v; want none", e)
		}
	})
}

// TestAReservationSentWholeButUnconfirmedIsEnded checks a reservation made
// alongside whose ledger took it whole but whose answer was lost: the
// answer is withheld all the same, and the reservation, in case the
// ledger holds it, is settled at what the call consumed (a whole answer)
// or released (a stream, none of which reached the client) in the
// background; one the ledger never took leaves nothing, and one whose ending
// fails stays held. The log says which.
func TestAReservationSentWholeButUnconfirmedIsEnded(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		ledger                  lostAnswerLedger
		stream                  bool
		message, logged         string
		settled, released, held int
	}{
		{"taken: settled at what the call consumed", lostAnswerLedger{}, false,
			"it is settled at what the call consumed in the background", "was held after all", 1, 0, 0},
		{"taken, a stream: released", lostAnswerLedger{}, true,
			"it is released in the background", "was held after all", 0, 1, 0},
		{"never taken: nothing to end", lostAnswerLedger{notTaken: true}, false,
			"it is settled at what the call consumed in the background", "", 0, 0, 0},
		{"taken, and ending it fails: held, and said so", lostAnswerLedger{failEnd: true}, false,
			"it is settled at what the call consumed in the background", "could not be ended", 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logged logtest.Buffer
			r := newAlongsideRig(t, gateway.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}, func(h *heldLedger) ports.SpendLedger {
				l := tc.ledger
				l.heldLedger = h
				return &l
			})
			r.ledger.hold()
			done := make(chan error, 1)
			go func() {
				c := gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}
				var err error
				if tc.stream {
					_, err = r.svc.ChatStream(context.Background(), c, chat("main"), func(domain.ChatChunk) error { return nil })
				} else {
					_, err = r.svc.Chat(context.Background(), c, chat("main"))
				}
				done <- err
			}()
			if !r.calledWithin(5 * time.Second) {
				t.Fatal("the provider was not called once the reservation was sent")
			}
			r.ledger.open()
			if err := <-done; domain.KindOf(err) != domain.KindUnavailable || !strings.Contains(err.Error(), "answer was lost") {
				t.Fatalf("err = %v; want the ledger's", err)
			}
			rec := r.log.Records()[0]
			if rec.Interrupted != domain.InterruptedByLedger || !strings.Contains(rec.ErrorMessage, tc.message) {
				t.Fatalf("record = %+v; want interrupted by the ledger, saying %q", rec, tc.message)
			}
			v := seen(t, r.svc, r.ledger.Ledger) // Settled waits for the ending
			if len(v.settled) != tc.settled || len(v.released) != tc.released || len(v.held) != tc.held {
				t.Fatalf("ledger %+v; want %d settled, %d released, %d held", v, tc.settled, tc.released, tc.held)
			}
			if tc.settled == 1 && (v.spent != rec.Cost() || rec.Cost() == 0) {
				t.Fatalf("ledger spent %d; want the recorded cost %d", v.spent, rec.Cost())
			}
			if out := logged.String(); tc.logged != "" && !strings.Contains(out, tc.logged) || tc.logged == "" && strings.Contains(out, "reservation whose ledger's answer was lost") {
				t.Fatalf("log:\n%s\nwant %q", out, tc.logged)
			}
		})
	}
}

// TestAClientGoneDuringItsReservationCostsNothing checks a caller that
// reserves first and leaves while the ledger works: the reservation is
// not cut off half-way (the ledger would hold it with nobody to give it
// back), no provider is called, and the reservation is released.
func TestAClientGoneDuringItsReservationCostsNothing(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole answer", true: "stream"}[stream], func(t *testing.T) {
			r := newAlongsideRig(t, gateway.Options{ReserveFirst: true}, nil)
			r.ledger.hold()
			ctx, leave := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				c := gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}
				var err error
				if stream {
					_, err = r.svc.ChatStream(ctx, c, chat("main"), func(domain.ChatChunk) error { return nil })
				} else {
					_, err = r.svc.Chat(ctx, c, chat("main"))
				}
				done <- err
			}()
			<-r.ledger.entered
			leave()
			r.ledger.open()
			if err := <-done; err == nil {
				t.Fatal("the call of a client gone was answered")
			}
			if got := r.provider.callCount(); got != 0 {
				t.Fatalf("%d provider calls; want none: the client left before its provider was called", got)
			}
			if v := seen(t, r.svc, r.ledger.Ledger); len(v.released) != 1 || len(v.held) != 0 || len(v.settled) != 0 {
				t.Fatalf("ledger %+v; want r1 released, nothing held", v)
			}
		})
	}
}

// TestAClientGoneWhileItsReservationIsRefusedSettlesItsRateHold checks a
// call refused for its budget after its client left: its rate-limit hold
// is settled in a live context (the limiter spy checks), as a shared
// limiter needs, not in the client's ended one.
func TestAClientGoneWhileItsReservationIsRefusedSettlesItsRateHold(t *testing.T) {
	broke := alice
	broke.Budgets = []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 1}}
	r := newAlongsideRig(t, gateway.Options{}, nil)
	r.ledger.hold()
	ctx, leave := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.svc.Chat(ctx, gateway.Call{RequestID: "r1", Caller: broke, AuditReason: "quarterly review"}, chat("main"))
		done <- err
	}()
	<-r.ledger.entered
	leave()
	r.ledger.open()
	if err := <-done; domain.KindOf(err) != domain.KindBudgetExceeded {
		t.Fatalf("err = %v; want the budget's refusal", err)
	}
}

// deadlineLog is a memory call log that notes how much time the context
// of each record it is handed has left.
type deadlineLog struct {
	*memory.CallLog
	left chan time.Duration
}

func (l *deadlineLog) RecordOwing(ctx context.Context, r domain.CallRecord, owed ports.Settlement) error {
	if d, ok := ctx.Deadline(); ok {
		l.left <- time.Until(d)
	}
	return l.CallLog.RecordOwing(ctx, r, owed)
}

// TestTheRecordGetsItsWholeTimeAfterAReservationAlongside checks that a
// reservation the ledger is slow to answer does not eat into the time
// Options.RecordTimeout gives the call's record.
func TestTheRecordGetsItsWholeTimeAfterAReservationAlongside(t *testing.T) {
	ledger := &heldLedger{Ledger: memory.NewLedger()}
	log := &deadlineLog{CallLog: memory.NewCallLog(), left: make(chan time.Duration, 1)}
	provider := &signalledProvider{scriptedProvider: &scriptedProvider{}, called: make(chan struct{}, 1)}
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": provider, "backup": provider},
		Keys:      memory.NewKeyStore(), Ledger: ledger, CallLog: log}, gateway.Options{RecordTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ledger.hold()
	done := make(chan error, 1)
	go func() {
		_, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}, chat("main"))
		done <- err
	}()
	<-provider.called
	time.Sleep(2 * time.Second) // half the record's time, spent waiting for the ledger
	ledger.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left := <-log.left; left < 3*time.Second {
		t.Fatalf("the record had %v of its 4s left; want its whole time, counted from the ledger's answer", left)
	}
}
