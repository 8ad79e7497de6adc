package gateway_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// scopedRig is a rig whose model "main" has the limits given and is served
// by p, with "spare" as its fallback (no limits).
func scopedRig(t *testing.T, p ports.Provider, model domain.Limits, opts gateway.Options) *rig {
	t.Helper()
	opts.Now = fixedNow
	r := newRig(t, opts, alice, 0)
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "main", Type: domain.ModelChat, Provider: "primary", MaxOutputTokens: 100, Limits: model,
			Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}, Aliases: []string{"m"}, Fallbacks: []string{"spare"}},
		{Name: "spare", Type: domain.ModelChat, Provider: "backup", MaxOutputTokens: 50,
			Price: domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 4_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.svc, err = gateway.NewService(gateway.Deps{Limiter: r.limiter, Catalogue: cat,
		Providers: map[string]ports.Provider{"primary": p, "backup": r.backup},
		Keys:      memory.NewKeyStore(), Ledger: r.ledger, CallLog: r.log}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// callAs makes one chat call of c on model, and returns the rate limits
// reported for the answer's headers with the call's error.
func callAs(r *rig, id string, c domain.Caller, model string) (domain.RateLimits, error) {
	var seen domain.RateLimits
	call := gateway.Call{RequestID: id, Caller: c, AuditReason: "limits test", RateLimits: func(l domain.RateLimits) { seen = l }}
	_, err := r.svc.Chat(context.Background(), call, chat(model))
	return seen, err
}

// checkRefusedBy checks that err is a 429 naming who, with Retry-After.
func checkRefusedBy(t *testing.T, err error, code, who string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || de.Code != code || de.RetryAfter <= 0 || !strings.Contains(de.Message, who) {
		t.Fatalf("refusal %v, want 429 %s naming %s with Retry-After", err, code, who)
	}
}

// TestAUsersAndATeamsRateLimitsHoldOverTheirKeys gives alice's user 3
// requests per minute and her team 5: two of her keys share the user's 3,
// a teammate's key takes the team's last 2, and each refusal names the
// limit that was hit; the headers report the tightest limit.
func TestAUsersAndATeamsRateLimitsHoldOverTheirKeys(t *testing.T) {
	r := scopedRig(t, &scriptedProvider{}, domain.Limits{}, gateway.Options{})
	a1 := domain.Caller{KeyID: "key_a1", User: "alice", Team: "risk", RPM: 10,
		UserLimits: domain.Limits{RPM: 3}, TeamLimits: domain.Limits{RPM: 5}}
	a2 := a1
	a2.KeyID = "key_a2"
	carol := domain.Caller{KeyID: "key_c", User: "carol", Team: "risk", TeamLimits: a1.TeamLimits}

	seen, err := callAs(r, "u1", a1, "main")
	if err != nil {
		t.Fatal(err)
	}
	if seen.Requests.Limit != 3 || seen.Requests.Remaining != 2 {
		t.Fatalf("headers after the user's first call: %+v, want the user's limit (3, 2 left), the tightest", seen.Requests)
	}
	for i, c := range []domain.Caller{a2, a1} {
		if _, err := callAs(r, "u"+string(rune('2'+i)), c, "main"); err != nil {
			t.Fatalf("the user's call %d: %v", i+2, err)
		}
	}
	seen, err = callAs(r, "u4", a2, "main")
	checkRefusedBy(t, err, "rate_limit_exceeded", `user "alice"`)
	if seen.Requests.Remaining != 0 || seen.Requests.Limit != 3 {
		t.Fatalf("headers of the refusal: %+v, want the user's limit with 0 left", seen.Requests)
	}
	for i := range 2 {
		if _, err := callAs(r, "c"+string(rune('1'+i)), carol, "main"); err != nil {
			t.Fatalf("the teammate's call %d: %v", i+1, err)
		}
	}
	_, err = callAs(r, "c3", carol, "main")
	checkRefusedBy(t, err, "rate_limit_exceeded", `team "risk"`)
}

// TestAModelsLimitsHoldOverEveryCaller gives model "main" 2 requests per
// minute and one call in flight: two callers share them, and the
// refusals name the model.
func TestAModelsLimitsHoldOverEveryCaller(t *testing.T) {
	t.Run("rpm", func(t *testing.T) {
		r := scopedRig(t, &scriptedProvider{}, domain.Limits{RPM: 2}, gateway.Options{})
		bob := domain.Caller{KeyID: "key_b", User: "bob", Team: "ops"}
		for i, c := range []domain.Caller{alice, bob} {
			if _, err := callAs(r, "m"+string(rune('1'+i)), c, "main"); err != nil {
				t.Fatal(err)
			}
		}
		_, err := callAs(r, "m3", bob, "m") // by its alias
		checkRefusedBy(t, err, "rate_limit_exceeded", `model "main"`)
		if _, err := callAs(r, "s1", bob, "spare"); err != nil {
			t.Fatalf("another model while main is at its limit: %v", err)
		}
	})
	t.Run("concurrency", func(t *testing.T) {
		g := newGated(2)
		r := scopedRig(t, g, domain.Limits{MaxConcurrent: 1}, gateway.Options{})
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = callAs(r, "held", alice, "main") })
		<-g.entered
		_, err := callAs(r, "over", domain.Caller{KeyID: "key_b", User: "bob", Team: "ops"}, "main")
		checkRefusedBy(t, err, "model_concurrency_limit", `model "main"`)
		close(g.release)
		wg.Wait()
		if _, err := callAs(r, "after", alice, "main"); err != nil {
			t.Fatalf("after the model's call ended: %v", err)
		}
	})
}

// TestAUsersAndATeamsOwnConcurrency checks a user's max_concurrent across
// two of their keys, and a team's own max_concurrent replacing the
// per-team share.
func TestAUsersAndATeamsOwnConcurrency(t *testing.T) {
	g := newGated(4)
	r := scopedRig(t, g, domain.Limits{}, gateway.Options{MaxConcurrentCalls: 10, MaxConcurrentPerKey: 5, MaxConcurrentPerTeam: 10})
	a1 := domain.Caller{KeyID: "key_a1", User: "alice", Team: "risk", UserLimits: domain.Limits{MaxConcurrent: 1}, TeamLimits: domain.Limits{MaxConcurrent: 2}}
	a2 := a1
	a2.KeyID = "key_a2"
	carol := domain.Caller{KeyID: "key_c", User: "carol", Team: "risk", TeamLimits: a1.TeamLimits}
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = callAs(r, "a1", a1, "main") })
	<-g.entered
	_, err := callAs(r, "a2", a2, "main")
	checkRefusedBy(t, err, "user_concurrency_limit", `user "alice"`)
	wg.Go(func() { _, _ = callAs(r, "c1", carol, "main") })
	<-g.entered
	_, err = callAs(r, "c2", carol, "main")
	checkRefusedBy(t, err, "team_concurrency_limit", `team "risk"`)
	close(g.release)
	wg.Wait()
}
