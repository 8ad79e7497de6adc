package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// budgetRig is a service with an expensive model of group premium whose
// budget fallback is a cheap model of group cheap, both on one provider.
// "hello there" may cost up to 2350 micro-dollars on big (35 prompt tokens
// at $10 and 100 output tokens at $20 per million) and 24 on small.
type budgetRig struct {
	svc      *gateway.Service
	provider *scriptedProvider
	ledger   *memory.Ledger
	log      *memory.CallLog
}

func newBudgetRig(t *testing.T, bigFallback string) *budgetRig {
	t.Helper()
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "big", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 100, Group: "premium", BudgetFallback: bigFallback,
			Price: domain.Price{InputPerMillion: 10_000_000, OutputPerMillion: 20_000_000}},
		{Name: "small", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 100, Group: "cheap",
			Price: domain.Price{InputPerMillion: 100_000, OutputPerMillion: 200_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &budgetRig{provider: &scriptedProvider{}, ledger: memory.NewLedger(), log: memory.NewCallLog()}
	r.svc, err = gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: cat,
		Providers: map[string]ports.Provider{"p": r.provider}, Keys: memory.NewKeyStore(), Ledger: r.ledger, CallLog: r.log,
	}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func budgetCaller(budgets ...domain.Budget) domain.Caller {
	return domain.Caller{KeyID: "key_b", User: "bea", Team: "ops", Budgets: budgets}
}

func (r *budgetRig) chat(t *testing.T, c domain.Caller, id, model string) (gateway.ChatResult, error) {
	t.Helper()
	return r.svc.Chat(context.Background(), gateway.Call{RequestID: id, Caller: c, AuditReason: "budget test"}, chat(model))
}

func TestBudgetFallbackAnswers(t *testing.T) {
	cases := map[string]domain.Caller{
		"the user's budget is too small for big": budgetCaller(domain.Budget{Scope: domain.ScopeUser, ScopeID: "bea", Period: domain.PeriodDay, Limit: 1000}),
		"the premium group's budget is spent": budgetCaller(
			domain.Budget{Scope: domain.ScopeKey, ScopeID: "key_b", Period: domain.PeriodMonth, Limit: 1_000_000},
			domain.Budget{Scope: domain.ScopeUser, ScopeID: "bea", Period: domain.RollingPeriod(24 * time.Hour), Limit: 2000, Model: "group:premium"}),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := newBudgetRig(t, "small")
			res, err := r.chat(t, c, "req-1", "big")
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if res.Model.Name != "small" || res.ModelName("big") != "small" || !res.FallbackUsed {
				t.Errorf("result = %+v, want small answering, named to the client", res.Result)
			}
			if got := r.provider.calls; len(got) != 1 || got[0].Model != "small" {
				t.Errorf("provider calls = %+v, want one to small", got)
			}
			recs := r.log.Records()
			if len(recs) != 1 || recs[0].Model != "small" || recs[0].BudgetFallbackFrom != "big" || !recs[0].FallbackUsed {
				t.Fatalf("records = %+v, want one answered by small in place of big", recs)
			}
			led := seen(t, r.svc, r.ledger)
			if len(led.settled) != 1 || len(led.held) != 0 || led.spent != res.Cost || res.Cost == 0 {
				t.Errorf("ledger = %+v, want one settlement of %v", led, res.Cost)
			}
		})
	}
}

func TestBudgetFallbackMustFitToo(t *testing.T) {
	for name, fallback := range map[string]string{"no budget fallback": "", "the fallback does not fit": "small"} {
		t.Run(name, func(t *testing.T) {
			r := newBudgetRig(t, fallback)
			c := budgetCaller(domain.Budget{Scope: domain.ScopeUser, ScopeID: "bea", Period: domain.PeriodDay, Limit: 10})
			_, err := r.chat(t, c, "req-1", "big")
			if domain.KindOf(err) != domain.KindBudgetExceeded {
				t.Fatalf("Chat error = %v, want %v", err, domain.KindBudgetExceeded)
			}
			if n := r.provider.callCount(); n != 0 {
				t.Errorf("%d provider calls, want none", n)
			}
			recs := r.log.Records()
			if len(recs) != 1 || recs[0].Outcome != domain.OutcomeRejected || recs[0].Model != "big" || recs[0].BudgetFallbackFrom != "" {
				t.Errorf("records = %+v, want one refusal of big", recs)
			}
			if led := seen(t, r.svc, r.ledger); len(led.held)+len(led.settled)+len(led.released) != 0 {
				t.Errorf("ledger = %+v, want nothing held", led)
			}
		})
	}
}

func TestModelBudgetsApplyToTheirModelOnly(t *testing.T) {
	r := newBudgetRig(t, "")
	onSmall := domain.Budget{Scope: domain.ScopeUser, ScopeID: "bea", Period: domain.PeriodDay, Limit: 1, Model: "small"}
	onBig := domain.Budget{Scope: domain.ScopeUser, ScopeID: "bea", Period: domain.PeriodDay, Limit: 1_000_000, Model: "big"}
	c := budgetCaller(onSmall, onBig)
	res, err := r.chat(t, c, "req-1", "big") // small's budget of one micro-dollar does not count
	if err != nil {
		t.Fatalf("Chat(big): %v", err)
	}
	if _, err := r.chat(t, c, "req-2", "small"); domain.KindOf(err) != domain.KindBudgetExceeded {
		t.Fatalf("Chat(small) error = %v, want %v", err, domain.KindBudgetExceeded)
	}
	now := time.Now()
	rep, err := r.ledger.Report(context.Background(), c, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Budgets[0].Spent != 0 || rep.Budgets[1].Spent != res.Cost {
		t.Errorf("budgets = %+v, want big's cost on big's budget only", rep.Budgets)
	}
}

// TestBudgetFallbackFollowsAReloadedCatalogue reloads the catalogue so that
// big gains a budget fallback and small a new price: a call on big that its
// budget has no room for goes to small by the catalogue in use, and is
// charged small's price in it, not refused (nor priced) by the catalogue the
// service started with.
func TestBudgetFallbackFollowsAReloadedCatalogue(t *testing.T) {
	r := newBudgetRig(t, "")
	next, err := domain.NewCatalogue([]domain.Model{
		{Name: "big", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 100, Group: "premium", BudgetFallback: "small",
			Price: domain.Price{InputPerMillion: 10_000_000, OutputPerMillion: 20_000_000}},
		{Name: "small", Type: domain.ModelChat, Provider: "p", MaxOutputTokens: 100, Group: "cheap",
			Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Reload(gateway.Routing{Catalogue: next, Providers: map[string]ports.Provider{"p": r.provider}}); err != nil {
		t.Fatal(err)
	}
	c := budgetCaller(domain.Budget{Scope: domain.ScopeUser, ScopeID: "bea", Period: domain.PeriodDay, Limit: 1000})
	res, err := r.chat(t, c, "req-1", "big")
	if err != nil {
		t.Fatalf("Chat: %v; want small answering, the reloaded catalogue's budget fallback", err)
	}
	if res.Model.Name != "small" || !res.FallbackUsed {
		t.Errorf("result = %+v, want small answering", res.Result)
	}
	// small's usage in the reloaded catalogue's prices: 10 prompt tokens at
	// $1/M and 3 output tokens at $2/M.
	if want := domain.Micros(16); res.Cost != want {
		t.Errorf("cost = %v, want %v: small's price in the catalogue in use", res.Cost, want)
	}
	if led := seen(t, r.svc, r.ledger); len(led.settled) != 1 || len(led.held) != 0 || led.spent != res.Cost {
		t.Errorf("ledger = %+v, want one settlement of %v", led, res.Cost)
	}
}
