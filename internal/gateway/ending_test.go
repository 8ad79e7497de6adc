package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// partialProvider streams its chunks, then ends the way it is told: with a
// failure (the upstream broke off), or by waiting until its context ends
// (the client, the stream timeout or a shutdown ends it). sent is closed
// once every chunk has been emitted. Its non-streamed Chat waits for
// release and answers with usage, unless its own context ended first.
type partialProvider struct {
	scriptedProvider
	chunks  []string
	usage   *domain.Usage // sent with the last chunk when set
	block   bool          // after the chunks, wait for ctx instead of failing
	sent    chan struct{}
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newPartial(chunks ...string) *partialProvider {
	return &partialProvider{chunks: chunks, sent: make(chan struct{}), entered: make(chan struct{}), release: make(chan struct{})}
}

func (p *partialProvider) ChatStream(ctx context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	for i, c := range p.chunks {
		chunk := domain.ChatChunk{Delta: c}
		if i == len(p.chunks)-1 {
			chunk.Usage = p.usage
		}
		if err := emit(chunk); err != nil {
			return domain.ChatResponse{}, err
		}
	}
	close(p.sent)
	if p.block {
		<-ctx.Done()
		return domain.ChatResponse{}, domain.Wrap(domain.KindUpstream, ctx.Err(), "the stream was cut")
	}
	return domain.ChatResponse{}, errUpstream
}

func (p *partialProvider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	p.once.Do(func() { close(p.entered) })
	select {
	case <-p.release:
	case <-ctx.Done():
		return domain.ChatResponse{}, domain.Wrap(domain.KindUpstream, ctx.Err(), "cancelled")
	}
	return reply(req), nil
}

// endingRig is a service whose model "main" is served by p.
func endingRig(t *testing.T, p ports.Provider, opts gateway.Options) (*gateway.Service, *memory.Ledger, *memory.CallLog) {
	t.Helper()
	l, log := memory.NewLedger(), memory.NewCallLog()
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": p, "backup": p},
		Keys:      memory.NewKeyStore(), Ledger: l, CallLog: log}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc, l, log
}

var mainPrice = domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}

// checkCharged checks that the call's reservation was settled exactly once,
// for the cost of want on main, and that one record says so.
func checkCharged(t *testing.T, svc *gateway.Service, l *memory.Ledger, log *memory.CallLog, want domain.Usage, why domain.Interruption, output string) domain.CallRecord {
	t.Helper()
	led := seen(t, svc, l)
	if len(led.settled) != 1 || len(led.released) != 0 || len(led.held) != 0 {
		t.Fatalf("ledger settled %v released %v holds %v; want exactly one settlement", led.settled, led.released, led.held)
	}
	cost := mainPrice.Cost(want)
	if led.spent != cost || cost == 0 {
		t.Fatalf("spent %v, want %v for %+v", led.spent, cost, want)
	}
	recs := log.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	rec := recs[0]
	if rec.Outcome != domain.OutcomeError || rec.Interrupted != why || rec.Usage != want || rec.Cost() != cost || rec.Output != output {
		t.Fatalf("record: outcome %s interrupted %q usage %+v cost %v output %q; want interrupted %q usage %+v cost %v output %q",
			rec.Outcome, rec.Interrupted, rec.Usage, rec.Cost(), rec.Output, why, want, cost, output)
	}
	return rec
}

// streamTo streams streamRequest to emit, as call r1.
func streamTo(ctx context.Context, svc *gateway.Service, emit func(domain.ChatChunk) error) error {
	_, err := svc.ChatStream(ctx, gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, streamRequest(), emit)
	return err
}

func streamRequest() domain.ChatRequest {
	req := chat("main")
	req.MaxTokens = 40
	return req
}

// estimate is what a stream cut after output bytes of text is charged when
// the provider's count never arrived: the reserved prompt and one token per
// byte received.
func estimate(output string) domain.Usage {
	req := streamRequest()
	return domain.ConsumedChat(req, req.MaxTokens, len(output))
}

func TestStreamBrokenByTheUpstreamIsCharged(t *testing.T) {
	p := newPartial("one ", "two ", "three ")
	svc, l, log := endingRig(t, p, gateway.Options{MaxAttempts: 3})
	var got []string
	err := streamTo(context.Background(), svc, func(c domain.ChatChunk) error { got = append(got, c.Delta); return nil })
	if domain.KindOf(err) != domain.KindUpstream || len(got) != 3 {
		t.Fatalf("err = %v after %d chunks, want an upstream failure after 3", err, len(got))
	}
	want := estimate("one two three ")
	if want.CompletionTokens != len("one two three ") || want.PromptTokens != domain.WorstCaseChat(streamRequest(), 40).PromptTokens {
		t.Fatalf("estimate %+v is not the reservation's rule", want)
	}
	checkCharged(t, svc, l, log, want, domain.InterruptedByUpstream, "one two three ")
}

// newAccountService is a service whose provider "primary" (p, also its
// fallback "backup") has an account with a tokens-per-minute limit, so that
// its calls hold tokens on that account through limiter.
func newAccountService(t *testing.T, p ports.Provider, limiter ports.RateLimiter, opts gateway.Options) *gateway.Service {
	t.Helper()
	svc, err := gateway.NewService(gateway.Deps{Limiter: limiter, Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": p, "backup": p}, Caps: map[string]domain.ProviderCaps{"primary": {TPM: 1_000_000}},
		Keys: memory.NewKeyStore(), Ledger: memory.NewLedger(), CallLog: memory.NewCallLog()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// A stream the upstream broke off counts what it consumed against its
// provider account's tokens per minute as well as its caller's.
func TestStreamBrokenByTheUpstreamCountsOnItsProviderAccount(t *testing.T) {
	p := newPartial("one ", "two ", "three ")
	spy := newLimiterSpy(t)
	svc := newAccountService(t, p, spy, gateway.Options{})
	if err := streamTo(context.Background(), svc, func(domain.ChatChunk) error { return nil }); domain.KindOf(err) != domain.KindUpstream {
		t.Fatalf("err = %v, want the upstream's failure", err)
	}
	// The caller has no tokens per minute: the provider account's hold is
	// the only one that holds tokens.
	if _, used, _ := spy.totals(); used != estimate("one two three ").Total() {
		t.Fatalf("%d tokens settled as used on the provider account; want the %d the stream consumed", used, estimate("one two three ").Total())
	}
}

func TestStreamWithReportedUsageIsChargedTheReport(t *testing.T) {
	p := newPartial("one ", "two ")
	p.usage = &domain.Usage{PromptTokens: 7, CompletionTokens: 2}
	svc, l, log := endingRig(t, p, gateway.Options{})
	err := streamTo(context.Background(), svc, func(domain.ChatChunk) error { return nil })
	if err == nil {
		t.Fatal("a broken stream succeeded")
	}
	checkCharged(t, svc, l, log, *p.usage, domain.InterruptedByUpstream, "one two ")
}

func TestStreamAbandonedByTheClientIsCharged(t *testing.T) {
	p := newPartial("one ", "two ", "three ", "four ")
	svc, l, log := endingRig(t, p, gateway.Options{})
	n := 0
	err := streamTo(context.Background(), svc, func(domain.ChatChunk) error {
		n++
		if n == 3 {
			return errors.New("write: broken pipe")
		}
		return nil
	})
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("err = %v, want the client's departure", err)
	}
	// The third chunk came from the provider, though the client never read it.
	checkCharged(t, svc, l, log, estimate("one two three "), domain.InterruptedByClient, "one two three ")
}

func TestStreamWhoseClientHangsUpIsCharged(t *testing.T) {
	p := newPartial("one ", "two ")
	p.block = true
	svc, l, log := endingRig(t, p, gateway.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-p.sent; cancel() }()
	err := streamTo(ctx, svc, func(domain.ChatChunk) error { return nil })
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("err = %v, want the client's departure", err)
	}
	checkCharged(t, svc, l, log, estimate("one two "), domain.InterruptedByClient, "one two ")
}

func TestStreamCutByTheStreamTimeoutIsCharged(t *testing.T) {
	p := newPartial("one ", "two ")
	p.block = true
	svc, l, log := endingRig(t, p, gateway.Options{ProviderTimeout: 20 * time.Millisecond, StreamTimeout: 40 * time.Millisecond})
	err := streamTo(context.Background(), svc, func(domain.ChatChunk) error { return nil })
	if de := asError(err); de.Code != "stream_timeout" || de.Kind == domain.KindUpstream {
		t.Fatalf("err = %v, want tidygate's stream timeout, not the provider's failure", err)
	}
	checkCharged(t, svc, l, log, estimate("one two "), domain.InterruptedByStreamTimeout, "one two ")
}

func TestStreamEndedByShutdownIsCharged(t *testing.T) {
	p := newPartial("one ", "two ")
	p.block = true
	svc, l, log := endingRig(t, p, gateway.Options{})
	go func() { <-p.sent; svc.EndCalls() }()
	err := streamTo(context.Background(), svc, func(domain.ChatChunk) error { return nil })
	if asError(err).Code != "shutting_down" {
		t.Fatalf("err = %v, want a shutdown", err)
	}
	checkCharged(t, svc, l, log, estimate("one two "), domain.InterruptedByShutdown, "one two ")
	_, err = svc.Chat(context.Background(), gateway.Call{RequestID: "r2", Caller: alice, AuditReason: "review"}, chat("main"))
	if asError(err).Code != "shutting_down" {
		t.Fatalf("a call after EndCalls: err = %v, want a refusal", err)
	}
}

func TestNonStreamClientGivingUpIsChargedWhatTheProviderDid(t *testing.T) {
	p := newPartial()
	svc, l, log := endingRig(t, p, gateway.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-p.entered; cancel(); close(p.release) }()
	req := chat("main")
	_, err := svc.Chat(ctx, gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, req)
	if domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("err = %v, want the client's departure", err)
	}
	up := req
	up.MaxTokens = 100
	answer := reply(up)
	checkCharged(t, svc, l, log, answer.Usage, domain.InterruptedByClient, answer.Content)
}

func TestStreamThatNeverStartsIsReleased(t *testing.T) {
	svc, l, log := endingRig(t, &silentProvider{}, gateway.Options{MaxAttempts: 1, ProviderTimeout: 10 * time.Millisecond})
	err := streamTo(context.Background(), svc, func(domain.ChatChunk) error { return nil })
	if domain.KindOf(err) != domain.KindUpstream || !strings.Contains(err.Error(), "sent nothing within") {
		t.Fatalf("err = %v, want the provider blamed for sending nothing", err)
	}
	led := seen(t, svc, l)
	if len(led.released) != 1 || len(led.settled) != 0 || led.spent != 0 {
		t.Fatalf("released %v settled %v spent %v; want one release", led.released, led.settled, led.spent)
	}
	if rec := log.Records()[0]; rec.Interrupted != "" || rec.Cost() != 0 {
		t.Fatalf("record %+v", rec)
	}
}

// A client that hangs up on a stream before its first event gives the
// provider account's tokens-per-minute hold back in a live context (the
// limiter spy checks), as a shared limiter needs.
func TestStreamWhoseClientLeavesBeforeItsFirstEventGivesTheAccountHoldBack(t *testing.T) {
	svc := newAccountService(t, &silentProvider{}, newLimiterSpy(t), gateway.Options{MaxAttempts: 1})
	ctx, leave := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer leave()
	if err := streamTo(ctx, svc, func(domain.ChatChunk) error { return nil }); err == nil {
		t.Fatal("a stream whose client left before its first event was answered")
	}
}

// silentProvider's streams send nothing until their context ends.
type silentProvider struct{ scriptedProvider }

func (*silentProvider) ChatStream(ctx context.Context, _ domain.ChatRequest, _ func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	<-ctx.Done()
	return domain.ChatResponse{}, domain.Wrap(domain.KindUpstream, ctx.Err(), "cancelled")
}

func TestUsageClaimsAreChargedAtMostTheReservation(t *testing.T) {
	claim := domain.Usage{PromptTokens: 1_000_000, CompletionTokens: 20}
	l, log, claims := memory.NewLedger(), memory.NewCallLog(), &claimCounter{}
	req := chat("main")
	req.MaxTokens = 10
	var reserved domain.Micros
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": &lyingProvider{usage: claim}, "backup": &scriptedProvider{}},
		Keys:      memory.NewKeyStore(), Ledger: &reserveSpy{SpendLedger: l, amount: &reserved}, CallLog: log},
		gateway.Options{Logger: slog.New(slog.DiscardHandler), ExcessClaims: claims})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, req)
	if err != nil {
		t.Fatal(err)
	}
	bound := domain.WorstCaseChat(req, 10)
	want := mainPrice.Cost(bound)
	led := seen(t, svc, l)
	if res.Cost != want || led.spent != want || led.spent > reserved {
		t.Fatalf("charged %v (spent %v), want the bound %v, at most the reservation %v", res.Cost, led.spent, want, reserved)
	}
	rec := log.Records()[0]
	if rec.Usage != claim || !rec.UsageExceedsReservation || rec.Cost() != want {
		t.Fatalf("record usage %+v flagged %v cost %v; want the claim in full, flagged, charged the bound", rec.Usage, rec.UsageExceedsReservation, rec.Cost())
	}
	if want := map[string]int{"primary/main": 1}; !maps.Equal(claims.counts(), want) {
		t.Fatalf("excess claims counted %v, want %v", claims.counts(), want)
	}
}

func TestHonestUsageIsNotCountedAsExcessive(t *testing.T) {
	claims := &claimCounter{}
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: mustCatalogue(t, nil),
		Providers: map[string]ports.Provider{"primary": &scriptedProvider{}, "backup": &scriptedProvider{}},
		Keys:      memory.NewKeyStore(), Ledger: memory.NewLedger(), CallLog: memory.NewCallLog()},
		gateway.Options{ExcessClaims: claims})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, chat("main")); err != nil {
		t.Fatal(err)
	}
	if got := claims.counts(); len(got) != 0 {
		t.Fatalf("excess claims counted %v for an honest provider, want none", got)
	}
}

// claimCounter counts excessive usage claims by "provider/model".
type claimCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *claimCounter) CountExcessClaim(provider, model string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[provider+"/"+model]++
}

// counts returns a copy of the counts so far.
func (c *claimCounter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// lyingProvider answers with whatever usage it is told to claim.
type lyingProvider struct {
	scriptedProvider
	usage domain.Usage
}

func (p *lyingProvider) Chat(_ context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	r := reply(req)
	r.Usage = p.usage
	return r, nil
}

// asError returns err's *domain.Error, or an empty one.
func asError(err error) *domain.Error {
	var de *domain.Error
	if errors.As(err, &de) {
		return de
	}
	return &domain.Error{}
}

// A prompt that is all cache writes, which cost more than plain input, fits
// in the reservation, and is charged exactly its classes' prices.
func TestCacheWritesDearerThanInputFitTheReservation(t *testing.T) {
	price := domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 15_000_000, CacheReadPerMillion: 300_000, CacheWritePerMillion: 6_000_000}
	cat, err := domain.NewCatalogue([]domain.Model{{Name: "main", Type: domain.ModelChat, Provider: "primary", MaxOutputTokens: 100, Price: price}})
	if err != nil {
		t.Fatal(err)
	}
	req := chat("main")
	req.MaxTokens = 10
	bound := domain.WorstCaseChat(req, 10)
	claim := domain.Usage{PromptTokens: bound.PromptTokens, CompletionTokens: 10, CacheWriteTokens: bound.PromptTokens}
	l, log := memory.NewLedger(), memory.NewCallLog()
	var reserved domain.Micros
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat,
		Providers: map[string]ports.Provider{"primary": &lyingProvider{usage: claim}},
		Keys:      memory.NewKeyStore(), Ledger: &reserveSpy{SpendLedger: l, amount: &reserved}, CallLog: log},
		gateway.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: alice, AuditReason: "review"}, req)
	if err != nil {
		t.Fatal(err)
	}
	// Every prompt token at $6 and ten output tokens at $15 per million, each part rounded up.
	want := domain.Micros((bound.PromptTokens*6_000_000+999_999)/1_000_000) + 150
	if res.Cost != want || reserved != want || seen(t, svc, l).spent != want {
		t.Fatalf("charged %v, reserved %v, spent %v; want all three %v (all input written to the cache)", res.Cost, reserved, seen(t, svc, l).spent, want)
	}
	if plain := price.Cost(bound); reserved <= plain {
		t.Fatalf("reserved %v, no more than plain input's %v", reserved, plain)
	}
	rec := log.Records()[0]
	if rec.Usage != claim || rec.UsageExceedsReservation || rec.InputCost != price.InputCost(claim) {
		t.Fatalf("record usage %+v flagged %v input cost %v", rec.Usage, rec.UsageExceedsReservation, rec.InputCost)
	}
}
