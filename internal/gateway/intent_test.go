package gateway_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// intentGate is a memory call log that tells when a call's intent is kept.
type intentGate struct {
	*memory.CallLog
	intended chan struct{}
}

func (l *intentGate) Intend(ctx context.Context, i domain.CallIntent) error {
	err := l.CallLog.Intend(ctx, i)
	close(l.intended)
	return err
}

// waitingProvider answers only once the call's intent has been kept: the
// intent is written while the provider works, not before it is called.
type waitingProvider struct {
	scriptedProvider
	intended chan struct{}
}

func (p *waitingProvider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	<-p.intended
	return p.scriptedProvider.Chat(ctx, req)
}

func TestTheIntentIsWrittenWhileTheProviderWorks(t *testing.T) {
	log := &intentGate{CallLog: memory.NewCallLog(), intended: make(chan struct{})}
	p := &waitingProvider{intended: log.intended}
	var reserved domain.Micros
	l := memory.NewLedger()
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": p, "backup": p},
		Keys:      memory.NewKeyStore(), Ledger: &reserveSpy{SpendLedger: l, amount: &reserved}, CallLog: log}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}, chat("main"))
	if err != nil {
		t.Fatal(err)
	}
	intents := log.Intents()
	if len(intents) != 1 {
		t.Fatalf("%d intents, want 1", len(intents))
	}
	i := intents[0]
	if i.RequestID != "r1" || i.User != "alice" || i.KeyID != "key_1" || i.AuditReason != "quarterly review" ||
		i.Model != "main" || i.Reserved != reserved || reserved < res.Cost || i.Worst.Total() == 0 {
		t.Fatalf("intent %+v; want who, why, which model and the reservation %v", i, reserved)
	}
	if left, _ := log.Unfinished(context.Background()); len(left) != 0 {
		t.Fatalf("unfinished %+v after the call's record; want none", left)
	}
}

func TestRecoverChargesAnUnfinishedCallItsReservation(t *testing.T) {
	ctx := context.Background()
	l, log := memory.NewLedger(), memory.NewCallLog()
	c := alice
	c.Budgets = []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 1000}}
	// What a process killed while its provider worked leaves: the
	// reservation held, the intent durable, no record.
	at := time.Now()
	if err := l.Reserve(ctx, domain.Reservation{ID: "r1", Budgets: c.Budgets, Amount: 300, At: at}); err != nil {
		t.Fatal(err)
	}
	intent := domain.CallIntent{RequestID: "r1", Endpoint: domain.EndpointChat, Start: at, KeyID: c.KeyID, User: "alice",
		Team: "risk", AuditReason: "review", Model: "main", Reserved: 300, Worst: domain.Usage{PromptTokens: 20, CompletionTokens: 100}}
	if err := log.Intend(ctx, intent); err != nil {
		t.Fatal(err)
	}
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": &scriptedProvider{}, "backup": &scriptedProvider{}},
		Keys:      memory.NewKeyStore(), Ledger: l, CallLog: log}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second Recover finds nothing left
		if _, err := svc.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if e := l.Endings()["r1"]; e.Held || e.Settles != 1 || e.Releases != 0 || e.Cost != 300 {
		t.Fatalf("r1 ended %+v; want settled once at its whole reservation, never released", e)
	}
	rep, err := l.Report(ctx, c, at, at)
	if err != nil {
		t.Fatal(err)
	}
	if b := rep.Budgets[0]; b.Spent != 300 || b.Reserved != 0 {
		t.Fatalf("budget %+v; want 300 spent, nothing held", b)
	}
	recs := log.Records()
	if len(recs) != 1 || recs[0].Interrupted != domain.InterruptedByCrash || recs[0].Cost() != 300 || recs[0].Outcome != domain.OutcomeError {
		t.Fatalf("records %+v; want one, interrupted by a crash, charged 300", recs)
	}
}

// orderLog is a memory call log that notes, in order, each intent and
// record it is given, by request id.
type orderLog struct {
	*memory.CallLog
	mu     sync.Mutex
	writes []string
}

func (l *orderLog) Intend(ctx context.Context, i domain.CallIntent) error {
	l.note("intent " + i.RequestID)
	return l.CallLog.Intend(ctx, i)
}

func (l *orderLog) Record(ctx context.Context, r domain.CallRecord) error {
	l.note("record " + r.RequestID)
	return l.CallLog.Record(ctx, r)
}

func (l *orderLog) RecordOwing(ctx context.Context, r domain.CallRecord, owed ports.Settlement) error {
	l.note("record " + r.RequestID)
	return l.CallLog.RecordOwing(ctx, r, owed)
}

func (l *orderLog) note(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, s)
}

func (l *orderLog) written() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes)
}

// slowProvider answers after a pause.
type slowProvider struct {
	scriptedProvider
	pause time.Duration
}

func (p *slowProvider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	time.Sleep(p.pause)
	return p.scriptedProvider.Chat(ctx, req)
}

// TestTheIntentWaitsForIntentDelay checks when a call writes its intent:
// a call answered within IntentDelay writes only its record (one durable
// write on the answer's path), a longer one its intent while the provider
// works and then its record, and a negative delay the intent at once.
func TestTheIntentWaitsForIntentDelay(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		pause time.Duration
		want  []string
	}{
		{"answered within the delay", time.Hour, 0, []string{"record r1"}},
		{"still working after the delay", time.Millisecond, 50 * time.Millisecond, []string{"intent r1", "record r1"}},
		{"negative delay", -1, 0, []string{"intent r1", "record r1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &orderLog{CallLog: memory.NewCallLog()}
			p := &slowProvider{pause: tc.pause}
			svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
				Providers: map[string]ports.Provider{"primary": p, "backup": p},
				Keys:      memory.NewKeyStore(), Ledger: memory.NewLedger(), CallLog: log}, gateway.Options{IntentDelay: tc.delay})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "quarterly review"}, chat("main")); err != nil {
				t.Fatal(err)
			}
			if got := log.written(); !slices.Equal(got, tc.want) {
				t.Fatalf("the call log was given %q; want %q", got, tc.want)
			}
			if left, _ := log.Unfinished(context.Background()); len(left) != 0 {
				t.Fatalf("unfinished %+v after the call's record; want none", left)
			}
		})
	}
}

// TestRecoverChargesTheHoldsAnEarlierRunLeftWithoutAnIntent starts a
// service on a call log whose earlier run left a hold and nothing else (it
// stopped before the call's intent was written): Recover charges that hold
// its whole reservation, once, and records it as interrupted by a crash,
// while the holds of this run and of another call log stay held.
func TestRecoverChargesTheHoldsAnEarlierRunLeftWithoutAnIntent(t *testing.T) {
	ctx := context.Background()
	l, log := memory.NewLedger(), memory.NewCallLog()
	at := time.Now()
	call := domain.ReservedCall{KeyID: alice.KeyID, User: alice.User, Team: alice.Team, Endpoint: domain.EndpointChat, Model: "main"}
	now := domain.Holder{Log: "journal", Run: "now"}
	for id, h := range map[string]domain.Holder{"r1": {Log: "journal", Run: "earlier"}, "r2": now, "r3": {Log: "other", Run: "earlier"}} {
		if err := l.Reserve(ctx, domain.Reservation{ID: id, Amount: 300, At: at, Holder: h, For: call}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": &scriptedProvider{}, "backup": &scriptedProvider{}},
		Keys:      memory.NewKeyStore(), Ledger: l, CallLog: log}, gateway.Options{Holder: now})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second Recover finds nothing left
		if _, err := svc.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ends := l.Endings()
	if e := ends["r1"]; e.Held || e.Settles != 1 || e.Releases != 0 || e.Cost != 300 {
		t.Fatalf("r1 ended %+v; want settled once at its whole reservation, never released", e)
	}
	if !ends["r2"].Held || !ends["r3"].Held {
		t.Fatalf("r2 %+v, r3 %+v; want this run's and the other call log's holds left held", ends["r2"], ends["r3"])
	}
	recs := log.Records()
	if len(recs) != 1 || recs[0].RequestID != "r1" || recs[0].Interrupted != domain.InterruptedByCrash || recs[0].Cost() != 300 ||
		recs[0].KeyID != alice.KeyID || recs[0].Model != "main" {
		t.Fatalf("records %+v; want r1's, interrupted by a crash, charged 300, naming its key and model", recs)
	}
}
