package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// gatedLedger is a memory ledger whose SettleAll waits at the gate, when
// one is set, until the test opens it, and fails while failing is set; it
// counts the lists it is given.
type gatedLedger struct {
	*memory.Ledger
	gate    chan struct{}
	entered chan struct{} // closed when the first SettleAll reaches the gate
	once    sync.Once
	failing bool
	refused chan struct{} // closed when the first reservation is refused
	refuse  sync.Once

	mu    sync.Mutex
	lists []int // the length of each list SettleAll was given
}

func (l *gatedLedger) SettleAll(ctx context.Context, ss []ports.Settlement) error {
	l.mu.Lock()
	l.lists = append(l.lists, len(ss))
	l.mu.Unlock()
	if l.gate != nil {
		l.once.Do(func() { close(l.entered) })
		<-l.gate
	}
	if l.failing {
		return domain.Errorf(domain.KindUnavailable, "the ledger is down")
	}
	return l.Ledger.SettleAll(ctx, ss)
}

func (l *gatedLedger) Reserve(ctx context.Context, r domain.Reservation) error {
	err := l.Ledger.Reserve(ctx, r)
	if domain.KindOf(err) == domain.KindBudgetExceeded {
		l.refuse.Do(func() { close(l.refused) })
	}
	return err
}

func (l *gatedLedger) listLengths() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.lists...)
}

func settleRig(t *testing.T, l *gatedLedger, c domain.Caller) (*gateway.Service, *memory.CallLog) {
	t.Helper()
	return settleRigWith(t, l, gateway.Options{})
}

func settleRigWith(t *testing.T, l *gatedLedger, opts gateway.Options) (*gateway.Service, *memory.CallLog) {
	t.Helper()
	log := memory.NewCallLog()
	keys := memory.NewKeyStore()
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": &scriptedProvider{}, "backup": &scriptedProvider{}},
		Keys:      keys, Ledger: l, CallLog: log}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc, log
}

func newGatedLedger() *gatedLedger {
	return &gatedLedger{Ledger: memory.NewLedger(), gate: make(chan struct{}), entered: make(chan struct{}), refused: make(chan struct{})}
}

func TestACallAnswersBeforeItsSettlementWhichHoldsTheWorstCaseUntilThen(t *testing.T) {
	l := newGatedLedger()
	svc, log := settleRig(t, l, alice)
	res, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, chat("main"))
	if err != nil {
		t.Fatal(err)
	}
	<-l.entered // the settler has the settlement, and waits at the gate
	e := l.Endings()["r1"]
	if !e.Held || e.Settles != 0 || e.Amount < res.Cost {
		t.Fatalf("before settlement: %+v; want the worst case (≥ %v) still held", e, res.Cost)
	}
	if recs := log.Records(); len(recs) != 1 || recs[0].Cost() != res.Cost || res.Cost == 0 {
		t.Fatalf("records %+v; want the call recorded with its cost %v before its settlement", recs, res.Cost)
	}
	close(l.gate)
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := l.Endings()["r1"]; e.Held || e.Settles != 1 || e.Cost != res.Cost {
		t.Fatalf("after Settled: %+v; want one settlement of %v", e, res.Cost)
	}
}

func TestSettlementsWaitingAreAppliedInOneBatch(t *testing.T) {
	l := newGatedLedger()
	svc, _ := settleRig(t, l, alice)
	const calls = 20
	call := func(i int) {
		c := gateway.Call{RequestID: fmt.Sprintf("r%02d", i), Caller: alice, AuditReason: "review"}
		if _, err := svc.Chat(context.Background(), c, chat("main")); err != nil {
			t.Error(err)
		}
	}
	// The first call's settlement reaches the gate alone; the others
	// answer and queue up behind it.
	call(0)
	<-l.entered
	var wg sync.WaitGroup
	for i := 1; i < calls; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call(i)
		}()
	}
	wg.Wait() // every call answered, the first settlement at the gate
	close(l.gate)
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lists := l.listLengths(); !slices.Equal(lists, []int{1, calls - 1}) {
		t.Fatalf("SettleAll got lists of %v; want [1 %d]: the first, then all that waited behind it in one", lists, calls-1)
	}
	for id, e := range l.Endings() {
		if e.Held || e.Settles != 1 || e.Releases != 0 {
			t.Errorf("%s: %+v; want settled exactly once", id, e)
		}
	}
	if l.Batches() != 2 {
		t.Errorf("%d lists applied, want 2", l.Batches())
	}
}

// openLedger is a gatedLedger without a gate.
func openLedger() *gatedLedger {
	return &gatedLedger{Ledger: memory.NewLedger(), refused: make(chan struct{})}
}

// With a settle delay far longer than the test, the settlements of calls
// in quick succession wait together, and Settled applies them at once in
// one batch instead of waiting the delay out.
func TestSettlementsOfCallsInQuickSuccessionShareABatch(t *testing.T) {
	l := openLedger()
	svc, _ := settleRigWith(t, l, gateway.Options{SettleDelay: time.Hour})
	const calls = 5
	for i := range calls {
		c := gateway.Call{RequestID: fmt.Sprintf("r%d", i), Caller: alice, AuditReason: "review"}
		if _, err := svc.Chat(context.Background(), c, chat("main")); err != nil {
			t.Fatal(err)
		}
	}
	if lists := l.listLengths(); len(lists) != 0 {
		t.Fatalf("SettleAll got lists of %v before the delay ended or anyone waited; want none yet", lists)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Settled(ctx); err != nil {
		t.Fatalf("Settled = %v; want the waiting settlements applied at once, not after the delay", err)
	}
	if lists := l.listLengths(); !slices.Equal(lists, []int{calls}) {
		t.Fatalf("SettleAll got lists of %v; want [%d]: every call's settlement in one", lists, calls)
	}
}

// A reservation a budget refuses while settlements wait out the delay
// hurries them, and is admitted once they are applied.
func TestABudgetRefusalHurriesTheSettlementsWaitingForTheirBatch(t *testing.T) {
	l := openLedger()
	worst := worstCaseOf(t)
	c := alice
	c.Budgets = []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: worst + worst/2}}
	svc, _ := settleRigWith(t, l, gateway.Options{SettleDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, id := range []string{"r1", "r2"} {
		if _, err := svc.Chat(ctx, gateway.Call{RequestID: id, Caller: c, AuditReason: "review"}, chat("main")); err != nil {
			t.Fatalf("%s: %v; want it admitted once the settlement before it was applied", id, err)
		}
	}
	select {
	case <-l.refused:
	default:
		t.Fatal("the second call's first reservation was not refused: the test did not exercise the wait")
	}
	if err := svc.Settled(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestARefusedBatchIsSettledOneByOne(t *testing.T) {
	l := newGatedLedger()
	l.failing = true
	svc, _ := settleRig(t, l, alice)
	for i := range 3 {
		c := gateway.Call{RequestID: fmt.Sprintf("r%d", i), Caller: alice, AuditReason: "review"}
		if _, err := svc.Chat(context.Background(), c, chat("main")); err != nil {
			t.Fatal(err)
		}
	}
	close(l.gate)
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	ends := l.Endings()
	for i := range 3 {
		if e := ends[fmt.Sprintf("r%d", i)]; e.Held || e.Settles != 1 || e.Cost == 0 {
			t.Errorf("r%d: %+v; want settled once, alone", i, e)
		}
	}
	if l.Batches() != 0 {
		t.Errorf("%d lists applied, want none (the ledger refused them)", l.Batches())
	}
}

// worstCaseOf returns the worst case chat("main") reserves on main or
// spare.
func worstCaseOf(t *testing.T) domain.Micros {
	t.Helper()
	var worst domain.Micros
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": &scriptedProvider{}, "backup": &scriptedProvider{}},
		Keys:      memory.NewKeyStore(), Ledger: &reserveSpy{SpendLedger: memory.NewLedger(), amount: &worst}, CallLog: memory.NewCallLog()}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Chat(context.Background(), gateway.Call{RequestID: "probe", Caller: alice, AuditReason: "review"}, chat("main")); err != nil {
		t.Fatal(err)
	}
	return worst
}

func TestABudgetRefusalWaitsForTheSettlementsOfCallsAnswered(t *testing.T) {
	l := newGatedLedger()
	// The worst case of chat("main") on main or spare, and a little more:
	// a second call fits only once the first is settled at its cost.
	worst := worstCaseOf(t)
	c := alice
	c.Budgets = []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: worst + worst/2}}
	svc, _ := settleRig(t, l, c)
	if _, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: c, AuditReason: "review"}, chat("main")); err != nil {
		t.Fatal(err)
	}
	<-l.entered
	second := make(chan error, 1)
	go func() {
		_, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r2", Caller: c, AuditReason: "review"}, chat("main"))
		second <- err
	}()
	<-l.refused   // the second call did not fit while r1 held its worst case
	close(l.gate) // r1's settlement is applied; the second call tries again
	if err := <-second; err != nil {
		t.Fatalf("second call: %v; want it admitted once the first call's settlement was applied", err)
	}
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"r1", "r2"} {
		if e := l.Endings()[id]; e.Held || e.Settles != 1 {
			t.Errorf("%s: %+v; want settled once", id, e)
		}
	}
}

func TestSettledGivesUpWhenItsContextEnds(t *testing.T) {
	l := newGatedLedger()
	svc, _ := settleRig(t, l, alice)
	if _, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, chat("main")); err != nil {
		t.Fatal(err)
	}
	<-l.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := svc.Settled(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Settled = %v, want the context's error while a settlement is pending", err)
	}
	close(l.gate)
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestACallsSettlementStaysOwedInTheCallLogUntilTheLedgerTakesIt(t *testing.T) {
	l := newGatedLedger()
	svc, log := settleRig(t, l, alice)
	res, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, chat("main"))
	if err != nil {
		t.Fatal(err)
	}
	<-l.entered // answered; the settlement waits at the gate
	owed, _ := log.Owed(context.Background())
	if len(owed) != 1 || owed[0].ReservationID != "r1" || owed[0].Cost != res.Cost || owed[0].Model != "main" {
		t.Fatalf("owed %+v while the settlement waits; want r1's at its cost %v", owed, res.Cost)
	}
	close(l.gate)
	if err := svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	if owed, _ := log.Owed(context.Background()); len(owed) != 0 {
		t.Fatalf("owed %+v once the ledger took it; want none", owed)
	}
}

// downLedger is a memory ledger that cannot settle: the database is down.
type downLedger struct{ *memory.Ledger }

func (downLedger) SettleAll(context.Context, []ports.Settlement) error {
	return domain.Errorf(domain.KindUnavailable, "the ledger is down")
}

func (downLedger) Settle(context.Context, ports.Settlement) error {
	return domain.Errorf(domain.KindUnavailable, "the ledger is down")
}

// TestRecoverSettlesAnAnsweredCallAtItsRecordedCost answers a call whose
// settlement the ledger cannot take (as if the process then died), and
// starts another service on the same call log and ledger: its Recover
// settles the call at the cost its record holds, once, however often it
// runs, and the budget is exact.
func TestRecoverSettlesAnAnsweredCallAtItsRecordedCost(t *testing.T) {
	ctx := context.Background()
	c := alice
	c.Budgets = []domain.Budget{{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 1_000_000}}
	l, log := memory.NewLedger(), memory.NewCallLog()
	service := func(ledger ports.SpendLedger) *gateway.Service {
		svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
			Providers: map[string]ports.Provider{"primary": &scriptedProvider{}, "backup": &scriptedProvider{}},
			Keys:      memory.NewKeyStore(), Ledger: ledger, CallLog: log}, gateway.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	first := service(downLedger{l})
	res, err := first.Chat(ctx, gateway.Call{RequestID: "r1", Caller: c, AuditReason: "review"}, chat("main"))
	if err != nil || res.Cost == 0 {
		t.Fatalf("cost %v, %v; want an answered call with a cost", res.Cost, err)
	}
	if err := first.Settled(ctx); err != nil {
		t.Fatal(err)
	}
	if e := l.Endings()["r1"]; !e.Held || e.Settles != 0 {
		t.Fatalf("r1 %+v after the failed settlement; want it still held", e)
	}
	if owed, _ := log.Owed(ctx); len(owed) != 1 {
		t.Fatalf("owed %+v after the failed settlement; want r1 kept", owed)
	}

	again := service(l)
	for range 2 {
		if _, err := again.Recover(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if e := l.Endings()["r1"]; e.Held || e.Settles != 1 || e.Releases != 0 || e.Cost != res.Cost {
		t.Fatalf("r1 ended %+v; want settled once at its recorded cost %v", e, res.Cost)
	}
	rep, err := l.Report(ctx, c, time.Now(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if b := rep.Budgets[0]; b.Spent != res.Cost || b.Reserved != 0 {
		t.Fatalf("budget %+v; want %v spent, nothing held", b, res.Cost)
	}
	if owed, _ := log.Owed(ctx); len(owed) != 0 {
		t.Fatalf("owed %+v after Recover; want none", owed)
	}
	if recs := log.Records(); len(recs) != 1 {
		t.Fatalf("%d records; want the call's one record, no other", len(recs))
	}
}
