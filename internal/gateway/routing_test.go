package gateway_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// fakeClock is a clock the tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// deploymentFake is one deployment's upstream: it answers after moving the
// clock by its latency, or fails with err while err is set, or waits on
// hold while hold is set.
type deploymentFake struct {
	scriptedProvider
	clock   *fakeClock
	mu      sync.Mutex
	latency time.Duration
	err     error
	hold    chan struct{}
	entered chan struct{}
}

func (f *deploymentFake) set(latency time.Duration, err error) {
	f.mu.Lock()
	f.latency, f.err = latency, err
	f.mu.Unlock()
}

func (f *deploymentFake) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	f.mu.Lock()
	latency, err, hold, entered := f.latency, f.err, f.hold, f.entered
	f.mu.Unlock()
	if err == nil {
		err = f.next(req) // counts the call
	} else {
		_ = f.next(req)
	}
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return domain.ChatResponse{}, ctx.Err()
		}
	}
	f.clock.Advance(latency)
	if err != nil {
		return domain.ChatResponse{}, err
	}
	return reply(req), nil
}

// fleet is a service over one chat model with two deployments, a (on
// provider "pa") and b (on "pb"), and a fallback model on "pc".
type fleet struct {
	svc    *gateway.Service
	a, b   *deploymentFake
	c      *scriptedProvider
	clock  *fakeClock
	ledger *memory.Ledger
	log    *memory.CallLog
	n      int
	// replica builds another service on the same limiter, ledger and
	// providers: a second replica sharing the limiter's counts (as
	// replicas share Redis's).
	replica func() (*gateway.Service, error)
}

func newFleet(t *testing.T, routing domain.Routing, weights [2]int, caps map[string]domain.ProviderCaps, opts gateway.Options) *fleet {
	t.Helper()
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "m", Type: domain.ModelChat, Routing: routing, MaxOutputTokens: 10, Fallbacks: []string{"spare"},
			Price:       domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000},
			Deployments: []domain.Deployment{{Provider: "pa", Upstream: "m-a", Weight: weights[0]}, {Provider: "pb", Upstream: "m-b", Weight: weights[1]}}},
		{Name: "spare", Type: domain.ModelChat, Provider: "pc", MaxOutputTokens: 10, Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	f := &fleet{a: &deploymentFake{clock: clock}, b: &deploymentFake{clock: clock}, c: &scriptedProvider{},
		clock: clock, ledger: memory.NewLedger(), log: memory.NewCallLog()}
	keys := memory.NewKeyStore()
	opts.Now = clock.Now
	opts.RetryBackoff = time.Nanosecond
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(1, 2)).Float64
	}
	deps := gateway.Deps{Catalogue: cat, Limiter: newLimiterSpy(t), Keys: keys, Ledger: f.ledger, CallLog: f.log,
		Providers: map[string]ports.Provider{"pa": f.a, "pb": f.b, "pc": f.c}, Caps: caps,
		Breaker: domain.BreakerSettings{Failures: 3, Cooldown: 30 * time.Second}}
	f.replica = func() (*gateway.Service, error) { return gateway.NewService(deps, opts) }
	f.svc, err = f.replica()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// call makes one chat call on m and returns who answered it.
func (f *fleet) call(t *testing.T) (gateway.ChatResult, error) {
	t.Helper()
	f.n++
	res, err := f.svc.Chat(context.Background(), gateway.Call{RequestID: fmt.Sprintf("req-%d", f.n), Caller: alice, AuditReason: "routing test"}, chat("m"))
	return res, err
}

// calls makes n calls, failing the test on any client error, and returns
// how many each provider answered.
func (f *fleet) calls(t *testing.T, n int) map[string]int {
	t.Helper()
	answered := map[string]int{}
	for range n {
		res, err := f.call(t)
		if err != nil {
			t.Fatalf("call %d failed: %v", f.n, err)
		}
		answered[res.Model.Provider]++
	}
	return answered
}

// settledOnce checks that every call made so far was settled exactly once
// and nothing is still held.
func (f *fleet) settledOnce(t *testing.T) {
	t.Helper()
	v := seen(t, f.svc, f.ledger)
	if len(v.settled)+len(v.released) != f.n || len(v.held) != 0 {
		t.Errorf("%d calls: %d settled, %d released, %d held", f.n, len(v.settled), len(v.released), len(v.held))
	}
}

func TestWeightedRoutingSplitsByWeight(t *testing.T) {
	f := newFleet(t, domain.RoutingWeighted, [2]int{3, 1}, nil, gateway.Options{})
	const n = 2000
	got := f.calls(t, n)
	share := float64(got["pa"]) / n
	t.Logf("weights 3:1 over %d calls: %d and %d (%.1f %%)", n, got["pa"], got["pb"], 100*share)
	if share < 0.70 || share > 0.80 {
		t.Errorf("deployment a answered %d of %d calls (%.1f %%); want 75 %% ± 5", got["pa"], n, 100*share)
	}
	if got["pa"]+got["pb"] != n {
		t.Errorf("answers = %v", got)
	}
	f.settledOnce(t)
}

func TestOrderedRoutingTakesTheFirstHealthy(t *testing.T) {
	f := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, nil, gateway.Options{})
	if got := f.calls(t, 20); got["pa"] != 20 {
		t.Errorf("answers = %v; want all from a", got)
	}
	f.a.set(0, errUpstream)
	if got := f.calls(t, 20); got["pb"] != 20 {
		t.Errorf("with a failing, answers = %v; want all from b", got)
	}
	f.settledOnce(t)
}

func TestLeastBusyRoutingAvoidsABusyDeployment(t *testing.T) {
	f := newFleet(t, domain.RoutingLeastBusy, [2]int{1, 1}, nil, gateway.Options{Rand: func() float64 { return 0 }})
	// Rand 0 breaks ties towards a: the first call goes to a and stays there.
	f.a.hold, f.a.entered = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Chat(context.Background(), gateway.Call{RequestID: "slow", Caller: alice, AuditReason: "routing test"}, chat("m"))
		done <- err
	}()
	<-f.a.entered
	got := f.calls(t, 50)
	close(f.a.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got["pb"] != 50 {
		t.Errorf("while a is busy, answers = %v; want all from b", got)
	}
	f.n++ // the slow call
	f.settledOnce(t)
}

func TestLatencyRoutingAvoidsASlowDeployment(t *testing.T) {
	f := newFleet(t, domain.RoutingLatency, [2]int{1, 1}, nil, gateway.Options{Explore: -1})
	f.a.set(2*time.Second, nil)
	f.b.set(100*time.Millisecond, nil)
	got := f.calls(t, 100)
	// Each deployment is tried once to learn its latency; then b only.
	if got["pa"] != 1 || got["pb"] != 99 {
		t.Errorf("answers = %v; want a once, then b", got)
	}
	// b slows down: its average rises above a's, and traffic moves back.
	f.b.set(5*time.Second, nil)
	got = f.calls(t, 20)
	if got["pa"] < 15 {
		t.Errorf("after b slowed, answers = %v; want most from a", got)
	}
	f.settledOnce(t)
}

func TestLatencyRoutingExploresNowAndThen(t *testing.T) {
	f := newFleet(t, domain.RoutingLatency, [2]int{1, 1}, nil, gateway.Options{Explore: 0.1})
	f.a.set(2*time.Second, nil)
	f.b.set(100*time.Millisecond, nil)
	got := f.calls(t, 1000)
	if got["pa"] < 10 || got["pa"] > 150 {
		t.Errorf("answers = %v; want a explored now and then (about 5 %%), b the rest", got)
	}
}

func TestAFailingDeploymentIsCooledDownAndReturns(t *testing.T) {
	f := newFleet(t, domain.RoutingWeighted, [2]int{1, 1}, nil, gateway.Options{})
	f.a.set(0, errUpstream)
	got := f.calls(t, 100) // no client sees an error: each failure on a is retried on b
	if got["pb"] != 100 {
		t.Errorf("answers = %v", got)
	}
	if n := f.a.callCount(); n != 3 {
		t.Errorf("a was called %d times while failing; want 3 (the breaker's threshold), then none", n)
	}
	// Within the cool-down a gets nothing, even recovered.
	f.a.set(0, nil)
	f.clock.Advance(29 * time.Second)
	if got := f.calls(t, 20); got["pa"] != 0 {
		t.Errorf("during the cool-down, answers = %v", got)
	}
	// After it, a half-open probe succeeds and a takes its share again.
	f.clock.Advance(2 * time.Second)
	if got := f.calls(t, 100); got["pa"] < 30 {
		t.Errorf("after recovery, answers = %v; want a back at about half", got)
	}
	f.settledOnce(t)

	// The record of a call that failed on a and was answered by b shows both.
	var rec domain.CallRecord
	for _, r := range f.log.Records() {
		if len(r.Attempts) == 2 {
			rec = r
			break
		}
	}
	if len(rec.Attempts) != 2 || rec.Attempts[0].Deployment != "pa/m-a" || !rec.Attempts[0].Failed ||
		rec.Attempts[1].Deployment != "pb/m-b" || rec.Attempts[1].Failed || rec.Provider != "pb" || rec.UpstreamModel != "m-b" {
		t.Errorf("record = %+v", rec.Attempts)
	}
}

func TestAFailedProbeOpensTheBreakerAgain(t *testing.T) {
	f := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, nil, gateway.Options{})
	f.a.set(0, errUpstream)
	f.calls(t, 10)
	f.clock.Advance(31 * time.Second)
	f.calls(t, 10) // the probe fails; b answers
	if n := f.a.callCount(); n != 4 {
		t.Errorf("a was called %d times; want 3, then one probe", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, nil, gateway.Options{})
	f.a.set(0, &domain.Error{Kind: domain.KindRateLimited, RetryAfter: 10 * time.Second, Message: "slow down"})
	f.calls(t, 1)
	f.a.set(0, nil)
	if got := f.calls(t, 10); got["pb"] != 10 {
		t.Errorf("while a asked to wait, answers = %v", got)
	}
	f.clock.Advance(11 * time.Second)
	if got := f.calls(t, 10); got["pa"] != 10 {
		t.Errorf("after the wait, answers = %v", got)
	}
}

func TestAccountCapsAreRespected(t *testing.T) {
	caps := map[string]domain.ProviderCaps{"pa": {RPM: 5}}
	f := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, caps, gateway.Options{})
	if got := f.calls(t, 20); got["pa"] != 5 || got["pb"] != 15 {
		t.Errorf("with a's account at 5 requests per minute, answers = %v", got)
	}
	f.clock.Advance(time.Minute)
	if got := f.calls(t, 1); got["pa"] != 1 {
		t.Errorf("in the next minute, answers = %v", got)
	}
	f.settledOnce(t)

	g := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, map[string]domain.ProviderCaps{"pa": {MaxConcurrency: 1}}, gateway.Options{})
	g.a.hold, g.a.entered = make(chan struct{}), make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := g.svc.Chat(context.Background(), gateway.Call{RequestID: "busy", Caller: alice, AuditReason: "routing test"}, chat("m"))
		done <- err
	}()
	<-g.a.entered
	if got := g.calls(t, 5); got["pb"] != 5 {
		t.Errorf("with a at its max_concurrency, answers = %v", got)
	}
	// Another replica counts the account's calls in flight in the same
	// limiter: it sees a at its cap too, though it has no call of its own.
	other, err := g.replica()
	if err != nil {
		t.Fatal(err)
	}
	res, err := other.Chat(context.Background(), gateway.Call{RequestID: "other-replica", Caller: alice, AuditReason: "routing test"}, chat("m"))
	if err != nil || res.Model.Provider != "pb" {
		t.Errorf("another replica while a is at its max_concurrency: answered by %q, %v; want pb", res.Model.Provider, err)
	}
	close(g.a.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestEveryDeploymentDownFallsBack(t *testing.T) {
	f := newFleet(t, domain.RoutingWeighted, [2]int{1, 1}, nil, gateway.Options{MaxAttempts: 2})
	f.a.set(0, errUpstream)
	f.b.set(0, errUpstream)
	got := f.calls(t, 10)
	if got["pc"] != 10 {
		t.Errorf("answers = %v; want the fallback's", got)
	}
	// Both breakers are open now: the fallback answers without a try.
	if a, b := f.a.callCount(), f.b.callCount(); a+b > 8 {
		t.Errorf("a and b were called %d and %d times", a, b)
	}
	f.settledOnce(t)
}

// breakerLog records the gateway's reports on its deployments.
type breakerLog struct {
	mu       sync.Mutex
	changes  []string // deployment=state
	inFlight map[string]int
	ended    map[string]int // deployment/outcome
}

func (l *breakerLog) AttemptStarted(d domain.Deployment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight[d.Name()]++
}

func (l *breakerLog) AttemptEnded(d domain.Deployment, outcome string, _ time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight[d.Name()]--
	l.ended[d.Name()+" "+outcome]++
}

func (l *breakerLog) BreakerChanged(d domain.Deployment, state string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, d.Name()+"="+state)
}

func TestDeploymentsAreReported(t *testing.T) {
	log := &breakerLog{inFlight: map[string]int{}, ended: map[string]int{}}
	f := newFleet(t, domain.RoutingOrdered, [2]int{1, 1}, nil, gateway.Options{Deployments: log})
	f.a.set(0, errUpstream)
	f.calls(t, 5)
	f.a.set(0, nil)
	f.clock.Advance(time.Minute)
	f.calls(t, 5)
	want := []string{"pa/m-a=open", "pa/m-a=half-open", "pa/m-a=closed"}
	if fmt.Sprint(log.changes) != fmt.Sprint(want) {
		t.Errorf("breaker changes = %v, want %v", log.changes, want)
	}
	if log.inFlight["pa/m-a"] != 0 || log.inFlight["pb/m-b"] != 0 {
		t.Errorf("in flight after the calls = %v", log.inFlight)
	}
	if log.ended["pa/m-a upstream"] != 3 || log.ended["pa/m-a ok"] != 5 || log.ended["pb/m-b ok"] != 5 {
		t.Errorf("attempts = %v", log.ended)
	}
}

func TestAModelWithOneDeploymentIsNeverCooledDown(t *testing.T) {
	f := newFleet(t, domain.RoutingWeighted, [2]int{1, 1}, nil, gateway.Options{MaxAttempts: 3})
	f.c.errs = []error{errUpstream, errUpstream, errUpstream, errUpstream, errUpstream, errUpstream}
	for i := range 3 {
		f.n++
		_, err := f.svc.Chat(context.Background(), gateway.Call{RequestID: fmt.Sprintf("spare-%d", i), Caller: alice, AuditReason: "routing test"}, chat("spare"))
		if (err == nil) != (i == 2) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if n := f.c.callCount(); n != 7 {
		t.Errorf("the only deployment was called %d times; want 3 + 3 + 1: never kept out", n)
	}
	f.settledOnce(t)
}
