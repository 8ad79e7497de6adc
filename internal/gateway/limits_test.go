package gateway_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// noon is a fixed instant, so that a test's calls all fall in one minute.
var noon = time.Date(2030, time.March, 15, 12, 0, 30, 0, time.UTC)

func fixedNow() time.Time { return noon }

// gatedProvider holds every chat call (streamed or not) until release is
// closed, announcing each on entered.
type gatedProvider struct {
	scriptedProvider
	entered chan struct{}
	release chan struct{}
}

func newGated(n int) *gatedProvider {
	return &gatedProvider{entered: make(chan struct{}, n), release: make(chan struct{})}
}

func (g *gatedProvider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.scriptedProvider.Chat(ctx, req)
}

func (g *gatedProvider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.scriptedProvider.ChatStream(ctx, req, emit)
}

// awaitAdmission waits until each of n concurrent calls has either reached g's
// provider or been refused (each refusal is checked), and counts both.
func awaitAdmission(g *gatedProvider, refused <-chan error, n int, check func(error)) (admitted, turnedAway int) {
	for admitted+turnedAway < n {
		select {
		case <-g.entered:
			admitted++
		case err := <-refused:
			turnedAway++
			check(err)
		}
	}
	return admitted, turnedAway
}

// tpmRig is a rig whose caller may use tpm tokens a minute, with a budget
// of limit, all in one minute.
func tpmRig(t *testing.T, tpm int, limit domain.Micros) *rig {
	t.Helper()
	limited := alice
	limited.TPM = tpm
	return newRig(t, gateway.Options{Now: fixedNow}, limited, limit)
}

// gatedRig is a rig whose model "main" is served by g.
func gatedRig(t *testing.T, g *gatedProvider, opts gateway.Options, caller domain.Caller) *rig {
	t.Helper()
	opts.Now = fixedNow
	r := newRig(t, opts, caller, 0)
	var err error
	r.svc, err = gateway.NewService(gateway.Deps{Limiter: r.limiter, Catalogue: mustCatalogue(t, r),
		Providers: map[string]ports.Provider{"primary": g, "backup": r.backup},
		Keys:      memory.NewKeyStore(), Ledger: r.ledger, CallLog: r.log}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestTokensPerMinuteNeverOvershoot sends 50 concurrent calls for a key
// limited to 100 tokens a minute: the calls admitted while the others are
// in flight hold at most 100 tokens between them, their worst case.
func TestTokensPerMinuteNeverOvershoot(t *testing.T) {
	limited := alice
	limited.TPM = 100
	g := newGated(50)
	r := gatedRig(t, g, gateway.Options{}, limited)
	req := chat("main")
	req.MaxTokens = 10

	refused := make(chan error, 50)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			c := gateway.Call{RequestID: "tpm-" + string(rune('A'+i)), Caller: limited, AuditReason: "load test"}
			if _, err := r.svc.Chat(context.Background(), c, req); err != nil {
				refused <- err
			}
		})
	}
	admitted, turnedAway := awaitAdmission(g, refused, 50, func(err error) {
		if domain.KindOf(err) != domain.KindRateLimited {
			t.Errorf("refusal %v, want rate limited", err)
		}
	})
	close(g.release)
	wg.Wait()
	held, used, worst := r.limiter.totals()
	if admitted*worst > 100 || admitted != 100/worst || turnedAway == 0 {
		t.Fatalf("%d calls of at most %d tokens each were admitted in one minute with tpm 100 (%d tokens), want %d",
			admitted, worst, admitted*worst, 100/worst)
	}
	if held != admitted*worst || used >= held {
		t.Fatalf("held %d tokens and settled %d, want %d held and the unused part refunded", held, used, admitted*worst)
	}
}

// TestTokensPerMinuteRefundOnSettle shows the unused part of a hold coming
// back: two calls that may each use most of the minute's tokens fit one
// after the other, because the first used little of what it held.
func TestTokensPerMinuteRefundOnSettle(t *testing.T) {
	r := tpmRig(t, 100, 0)
	req := chat("main")
	req.MaxTokens = 1
	if _, err := r.svc.Chat(context.Background(), r.call(), req); err != nil {
		t.Fatal(err)
	}
	_, _, worst := r.limiter.totals() // the call's prompt as admission counts it, plus 1
	// The fake provider reports 13 tokens used, so two calls of 87 fit only
	// if the first call's unused 74 come back.
	req.MaxTokens = 100 - (worst - 1) - 13
	r = tpmRig(t, 100, 0)
	for i := range 2 {
		if _, err := r.svc.Chat(context.Background(), r.call(), req); err != nil {
			t.Fatalf("call %d: %v (the first call's unused tokens were not given back)", i+1, err)
		}
	}
}

// TestTokensPerMinuteRefusesAnOutputCapNoMinuteTakes refuses, with a
// message naming max_tokens, a call whose prompt and output cap exceed the
// key's whole limit, without calling the provider.
func TestTokensPerMinuteRefusesAnOutputCapNoMinuteTakes(t *testing.T) {
	r := tpmRig(t, 50, 0)
	req := chat("main")
	req.MaxTokens = 51
	_, err := r.svc.Chat(context.Background(), r.call(), req)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Param != "max_tokens" || r.primary.callCount() != 0 {
		t.Fatalf("err = %v after %d provider calls, want an invalid max_tokens before any", err, r.primary.callCount())
	}
	req.MaxTokens = 10
	if _, err := r.svc.Chat(context.Background(), r.call(), req); err != nil {
		t.Fatalf("a call within the limit after the refusal: %v", err)
	}
}

// TestTokensPerMinuteHoldIsGivenBackWhenTheBudgetRefuses checks a path that
// ends after the tokens were held: the ledger refuses the reservation.
func TestTokensPerMinuteHoldIsGivenBackWhenTheBudgetRefuses(t *testing.T) {
	r := tpmRig(t, 100, 1)
	req := chat("main")
	req.MaxTokens = 40 // the prompt as admission counts it and 40 fit the minute once
	for range 3 {
		if _, err := r.svc.Chat(context.Background(), r.call(), req); domain.KindOf(err) != domain.KindBudgetExceeded {
			t.Fatalf("err = %v, want the budget's refusal each time (not a rate limit from held tokens)", err)
		}
	}
}

// TestOneKeyCannotTakeEverySlot sends 30 slow streams from one key to a
// gateway of 30 slots: the key gets its share, the rest are refused 429
// with Retry-After, and another key's call still goes through.
func TestOneKeyCannotTakeEverySlot(t *testing.T) {
	g := newGated(30)
	r := gatedRig(t, g, gateway.Options{MaxConcurrentCalls: 30}, alice)
	refused := make(chan error, 30)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			c := gateway.Call{RequestID: "slow-" + string(rune('A'+i)), Caller: alice, AuditReason: "slow stream"}
			_, err := r.svc.ChatStream(context.Background(), c, chat("main"), func(domain.ChatChunk) error { return nil })
			if err != nil {
				refused <- err
			}
		})
	}
	admitted, _ := awaitAdmission(g, refused, 30, func(err error) {
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || de.Code != "key_concurrency_limit" || de.RetryAfter <= 0 {
			t.Errorf("refusal %v, want 429 key_concurrency_limit with Retry-After", err)
		}
	})
	bob := domain.Caller{KeyID: "key_2", User: "bob", Team: "ops"}
	_, err := r.svc.Chat(context.Background(), gateway.Call{RequestID: "bob", Caller: bob, AuditReason: "other work"}, chat("spare"))
	close(g.release)
	wg.Wait()
	if admitted != 30/4 {
		t.Errorf("one key got %d of 30 slots, want its default share of %d", admitted, 30/4)
	}
	if err != nil {
		t.Fatalf("another key's call while the first key is at its share: %v", err)
	}
}

// TestOneTeamCannotTakeEverySlot checks the team share across two keys,
// and that a slot given back can be taken again.
func TestOneTeamCannotTakeEverySlot(t *testing.T) {
	g := newGated(4)
	r := gatedRig(t, g, gateway.Options{MaxConcurrentCalls: 10, MaxConcurrentPerKey: 2, MaxConcurrentPerTeam: 3}, alice)
	carol := domain.Caller{KeyID: "key_3", User: "carol", Team: alice.Team}
	var wg sync.WaitGroup
	for i, c := range []domain.Caller{alice, alice, carol} {
		wg.Go(func() {
			_, _ = r.svc.Chat(context.Background(), gateway.Call{RequestID: "team-" + string(rune('A'+i)), Caller: c, AuditReason: "team work"}, chat("main"))
		})
		<-g.entered
	}
	_, err := r.svc.Chat(context.Background(), gateway.Call{RequestID: "team-D", Caller: carol, AuditReason: "team work"}, chat("spare"))
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || de.Code != "team_concurrency_limit" {
		t.Errorf("a fourth call of a team with a share of 3: %v, want team_concurrency_limit", err)
	}
	close(g.release)
	wg.Wait()
	if _, err := r.svc.Chat(context.Background(), gateway.Call{RequestID: "team-E", Caller: carol, AuditReason: "team work"}, chat("main")); err != nil {
		t.Fatalf("after the team's calls ended: %v", err)
	}
}

// TestAKeysOwnConcurrencyReplacesTheShare gives one key a bound of its own
// (max_concurrent) below the per-key share: it is held to it, while a key
// without one still gets the share.
func TestAKeysOwnConcurrencyReplacesTheShare(t *testing.T) {
	g := newGated(4)
	r := gatedRig(t, g, gateway.Options{MaxConcurrentCalls: 10, MaxConcurrentPerKey: 3, MaxConcurrentPerTeam: 10}, alice)
	own := domain.Caller{KeyID: "key_own", User: "dave", Team: "ops", MaxConcurrent: 1}
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = r.svc.Chat(context.Background(), gateway.Call{RequestID: "own-A", Caller: own, AuditReason: "own bound"}, chat("main"))
	})
	<-g.entered
	_, err := r.svc.Chat(context.Background(), gateway.Call{RequestID: "own-B", Caller: own, AuditReason: "own bound"}, chat("spare"))
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != "key_concurrency_limit" {
		t.Errorf("a second call of a key bounded to 1: %v, want key_concurrency_limit", err)
	}
	_, err = r.svc.Chat(context.Background(), gateway.Call{RequestID: "share-A", Caller: alice, AuditReason: "the share"}, chat("spare"))
	close(g.release)
	wg.Wait()
	if err != nil {
		t.Fatalf("a key without its own bound: %v", err)
	}
}
