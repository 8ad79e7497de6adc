package gateway_test

import (
	"context"
	"errors"
	"slices"
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

var (
	errUpstream = &domain.Error{Kind: domain.KindUpstream, Message: "provider exploded"}
	errRefused  = &domain.Error{Kind: domain.KindInvalid, Message: "provider says the prompt is too long"}
)

// rig is a service over fakes: a primary chat model with a fallback, an
// embedding model, and a caller with the dev key.
type rig struct {
	svc      *gateway.Service
	primary  *scriptedProvider
	backup   *scriptedProvider
	ledger   *memory.Ledger
	limiter  *limiterSpy
	log      *memory.CallLog
	caller   domain.Caller
	requests int
}

// newRig returns a rig for caller; a positive limit adds a daily budget of
// that much to the caller's budgets.
func newRig(t *testing.T, opts gateway.Options, caller domain.Caller, limit domain.Micros) *rig {
	t.Helper()
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "main", Type: domain.ModelChat, Provider: "primary", Upstream: "main-v1", MaxOutputTokens: 100,
			Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}, Aliases: []string{"m"}, Fallbacks: []string{"spare"}},
		{Name: "spare", Type: domain.ModelChat, Provider: "backup", Upstream: "spare-v1", MaxOutputTokens: 50,
			Price: domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 4_000_000}},
		{Name: "vec", Type: domain.ModelEmbedding, Provider: "primary", Price: domain.Price{InputPerMillion: 1_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if limit > 0 {
		caller.Budgets = append(slices.Clone(caller.Budgets), domain.Budget{Scope: domain.ScopeUser, ScopeID: caller.User, Period: domain.PeriodDay, Limit: limit})
	}
	r := &rig{primary: &scriptedProvider{}, backup: &scriptedProvider{}, ledger: memory.NewLedger(), log: memory.NewCallLog(), caller: caller}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = time.Millisecond
	}
	keys := memory.NewKeyStore()
	keys.Add("tg-the-test-key-0123456789", caller)
	r.limiter = newLimiterSpy(t)
	r.svc, err = gateway.NewService(gateway.Deps{Limiter: r.limiter,
		Catalogue: cat,
		Providers: map[string]ports.Provider{"primary": r.primary, "backup": r.backup},
		Keys:      keys,
		Ledger:    r.ledger,
		CallLog:   r.log,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) call() gateway.Call {
	r.requests++
	return gateway.Call{RequestID: "req-" + string(rune('a'+r.requests)), Caller: r.caller, AuditReason: "quarterly review"}
}

func chat(model string) domain.ChatRequest {
	return domain.ChatRequest{Model: model, Messages: []domain.Message{{Role: domain.RoleUser, Content: "hello there"}}}
}

var alice = domain.Caller{KeyID: "key_1", User: "alice", Team: "risk"}

func TestChatSuccess(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	res, err := r.svc.Chat(context.Background(), r.call(), chat("m"))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.primary.calls[0]; got.Model != "main-v1" || got.MaxTokens != 100 {
		t.Fatalf("provider got model %q max_tokens %d, want the upstream name and the model's cap", got.Model, got.MaxTokens)
	}
	wantCost := domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}.Cost(res.Response.Usage)
	if res.Cost != wantCost || res.Cost == 0 || res.Attempts != 1 || res.FallbackUsed || res.Model.Name != "main" {
		t.Fatalf("result = %+v, want cost %v from one attempt at main", res.Result, wantCost)
	}
	recs := r.log.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	rec := recs[0]
	if rec.Outcome != domain.OutcomeOK || rec.RequestedModel != "m" || rec.Model != "main" || rec.UpstreamModel != "main-v1" ||
		rec.Cost() != res.Cost || rec.Usage != res.Response.Usage || rec.AuditReason != "quarterly review" ||
		rec.User != "alice" || rec.Team != "risk" || rec.Output != res.Response.Content || rec.End.Before(rec.Start) {
		t.Fatalf("record = %+v", rec)
	}
	led := seen(t, r.svc, r.ledger)
	if len(led.settled) != 1 || led.spent != res.Cost {
		t.Fatalf("ledger settled %v spent %v, want the call's cost", led.settled, led.spent)
	}
}

// A chat request's seed and penalties reach the provider and the record.
func TestChatSeedAndPenaltiesAreSentAndRecorded(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	req := chat("m")
	seed, presence, frequency := int64(0), 0.5, -1.0
	req.Seed, req.PresencePenalty, req.FrequencyPenalty = &seed, &presence, &frequency
	if _, err := r.svc.Chat(context.Background(), r.call(), req); err != nil {
		t.Fatal(err)
	}
	same := func(s *int64, p, f *float64) bool {
		return s != nil && *s == seed && p != nil && *p == presence && f != nil && *f == frequency
	}
	if got := r.primary.calls[0]; !same(got.Seed, got.PresencePenalty, got.FrequencyPenalty) {
		t.Errorf("provider got seed %v, penalties %v %v", got.Seed, got.PresencePenalty, got.FrequencyPenalty)
	}
	if rec := r.log.Records()[0]; !same(rec.Seed, rec.PresencePenalty, rec.FrequencyPenalty) {
		t.Errorf("record has seed %v, penalties %v %v", rec.Seed, rec.PresencePenalty, rec.FrequencyPenalty)
	}
}

func TestChatRejections(t *testing.T) {
	embedOnly := alice
	embedOnly.AllowedModels = []string{"vec"}
	tooLong := chat("main")
	tooLong.MaxTokens = 101
	noReason := func(c gateway.Call) gateway.Call { c.AuditReason = "  "; return c }
	same := func(c gateway.Call) gateway.Call { return c }
	cases := []struct {
		name   string
		caller domain.Caller
		limit  domain.Micros
		req    domain.ChatRequest
		call   func(gateway.Call) gateway.Call
		kind   domain.Kind
		param  string
		model  string // the catalogue model the refusal is recorded under
	}{
		{"audit reason missing", alice, 0, chat("main"), noReason, domain.KindInvalid, "audit_reason", "main"},
		{"audit reason missing, alias", alice, 0, chat("m"), noReason, domain.KindInvalid, "audit_reason", "main"},
		{"audit reason invisible", alice, 0, chat("main"), func(c gateway.Call) gateway.Call { c.AuditReason = "\u200B\u200B\u200B"; return c }, domain.KindInvalid, "audit_reason", "main"},
		{"audit reason one emoji", alice, 0, chat("main"), func(c gateway.Call) gateway.Call { c.AuditReason = "👍"; return c }, domain.KindInvalid, "audit_reason", "main"},
		{"audit reason too long", alice, 0, chat("main"), func(c gateway.Call) gateway.Call { c.AuditReason = strings.Repeat("x", 1001); return c }, domain.KindInvalid, "audit_reason", "main"},
		{"invalid request", alice, 0, domain.ChatRequest{Model: "main"}, same, domain.KindInvalid, "messages", "main"},
		{"unknown model", alice, 0, chat("gpt-17"), same, domain.KindNotFound, "model", ""},
		{"embedding model", alice, 0, chat("vec"), same, domain.KindInvalid, "model", "vec"},
		{"model not allowed", embedOnly, 0, chat("main"), same, domain.KindForbidden, "model", "main"},
		{"max_tokens above the model's cap", alice, 0, tooLong, same, domain.KindInvalid, "max_tokens", "main"},
		{"budget exceeded", alice, 1, chat("main"), same, domain.KindBudgetExceeded, "", "main"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, gateway.Options{}, tc.caller, tc.limit)
			_, err := r.svc.Chat(context.Background(), tc.call(r.call()), tc.req)
			var de *domain.Error
			if !errors.As(err, &de) || de.Kind != tc.kind || de.Param != tc.param {
				t.Fatalf("err = %v, want kind %v param %q", err, tc.kind, tc.param)
			}
			if r.primary.callCount() != 0 {
				t.Fatal("the provider was called for a rejected request")
			}
			recs := r.log.Records()
			if len(recs) != 1 || recs[0].Outcome != domain.OutcomeRejected || recs[0].ErrorKind != tc.kind {
				t.Fatalf("records = %+v, want one rejection of kind %v", recs, tc.kind)
			}
			if recs[0].Model != tc.model || len(recs[0].Attempts) != 0 {
				t.Errorf("the refusal is recorded under model %q with %d attempts, want %q and none", recs[0].Model, len(recs[0].Attempts), tc.model)
			}
			led := seen(t, r.svc, r.ledger)
			if len(led.held) != 0 {
				t.Fatalf("a rejected call holds %v", led.held)
			}
		})
	}
}

func TestRetriesThenFallback(t *testing.T) {
	t.Run("retry succeeds", func(t *testing.T) {
		r := newRig(t, gateway.Options{MaxAttempts: 3}, alice, 0)
		r.primary.errs = []error{errUpstream, errUpstream}
		res, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
		if err != nil || res.Attempts != 3 || res.FallbackUsed {
			t.Fatalf("res = %+v err = %v, want success on the third attempt", res.Result, err)
		}
	})
	t.Run("fallback answers", func(t *testing.T) {
		r := newRig(t, gateway.Options{MaxAttempts: 2}, alice, 0)
		r.primary.errs = []error{errUpstream, errUpstream}
		res, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
		if err != nil || res.Attempts != 3 || !res.FallbackUsed || res.Model.Name != "spare" {
			t.Fatalf("res = %+v err = %v, want the fallback on attempt 3", res.Result, err)
		}
		if got := r.backup.calls[0]; got.Model != "spare-v1" || got.MaxTokens != 50 {
			t.Fatalf("fallback got %q/%d, want its own upstream name and cap", got.Model, got.MaxTokens)
		}
		rec := r.log.Records()[0]
		if !rec.FallbackUsed || len(rec.Attempts) != 3 || rec.Provider != "backup" || rec.Cost() != res.Cost {
			t.Fatalf("record = %+v", rec)
		}
		for i, want := range []struct {
			provider, model, upstream string
			failed                    bool
		}{{"primary", "main", "main-v1", true}, {"primary", "main", "main-v1", true}, {"backup", "spare", "spare-v1", false}} {
			a := rec.Attempts[i]
			if a.Provider != want.provider || a.Model != want.model || a.UpstreamModel != want.upstream || a.Failed != want.failed ||
				(a.Failed && (a.ErrorKind != domain.KindUpstream || a.ErrorMessage != errUpstream.Error())) {
				t.Errorf("attempt %d = %+v, want %+v", i, a, want)
			}
			if a.End.Before(a.Start) || (i > 0 && a.Start.Before(rec.Attempts[i-1].End)) {
				t.Errorf("attempt %d runs %v–%v, after the previous one's end %v", i, a.Start, a.End, rec.Attempts[max(i-1, 0)].End)
			}
		}
	})
	t.Run("everything fails", func(t *testing.T) {
		r := newRig(t, gateway.Options{MaxAttempts: 1}, alice, 0)
		r.primary.errs = []error{errUpstream}
		r.backup.errs = []error{errUpstream}
		_, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
		if domain.KindOf(err) != domain.KindUpstream {
			t.Fatalf("err = %v, want upstream", err)
		}
		led := seen(t, r.svc, r.ledger)
		if len(led.released) != 1 || len(led.settled) != 0 {
			t.Fatalf("ledger released %v settled %v, want one release", led.released, led.settled)
		}
		if rec := r.log.Records()[0]; rec.Outcome != domain.OutcomeError || len(rec.Attempts) != 2 {
			t.Fatalf("record = %+v", rec)
		}
	})
	t.Run("a refused request is not retried", func(t *testing.T) {
		r := newRig(t, gateway.Options{MaxAttempts: 3}, alice, 0)
		r.primary.errs = []error{errRefused}
		_, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
		if !errors.Is(err, domain.KindInvalid) || r.primary.callCount() != 1 || r.backup.callCount() != 0 {
			t.Fatalf("err = %v after %d+%d calls, want one invalid", err, r.primary.callCount(), r.backup.callCount())
		}
	})
}

func TestStreamIsNotRetriedOnceStarted(t *testing.T) {
	r := newRig(t, gateway.Options{MaxAttempts: 3}, alice, 0)
	var got []string
	failed := false
	_, err := r.svc.ChatStream(context.Background(), r.call(), chat("main"), func(c domain.ChatChunk) error {
		got = append(got, c.Delta)
		if !failed {
			failed = true
			return errors.New("client hung up")
		}
		return nil
	})
	if err == nil || r.primary.callCount() != 1 || r.backup.callCount() != 0 {
		t.Fatalf("err = %v after %d calls, want one failed attempt", err, r.primary.callCount())
	}
	if rec := r.log.Records()[0]; rec.Outcome != domain.OutcomeError || !rec.Stream {
		t.Fatalf("record = %+v", rec)
	}
}

func TestStreamSuccess(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	var chunks []domain.ChatChunk
	res, err := r.svc.ChatStream(context.Background(), r.call(), chat("main"), func(c domain.ChatChunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil || len(chunks) < 2 || chunks[len(chunks)-1].Usage == nil {
		t.Fatalf("err = %v, chunks = %+v", err, chunks)
	}
	if rec := r.log.Records()[0]; !rec.Stream || rec.Outcome != domain.OutcomeOK || rec.Cost() != res.Cost || res.Cost == 0 {
		t.Fatalf("record = %+v", rec)
	}
}

func TestReservationCoversTheWorstCase(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	req := chat("main")
	req.MaxTokens = 10
	var reserved domain.Micros
	spy := &reserveSpy{SpendLedger: r.ledger, amount: &reserved}
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: mustCatalogue(t, r), Providers: map[string]ports.Provider{"primary": r.primary, "backup": r.backup},
		Keys: memory.NewKeyStore(), Ledger: spy, CallLog: r.log}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Chat(context.Background(), r.call(), req)
	if err != nil {
		t.Fatal(err)
	}
	// The fallback is pricier, so the reservation must cover a call answered by it.
	spare := domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 4_000_000}
	want := spare.Cost(domain.WorstCaseChat(req, 10))
	if reserved != want || reserved < res.Cost {
		t.Fatalf("reserved %v, want %v (≥ actual %v)", reserved, want, res.Cost)
	}
}

type reserveSpy struct {
	ports.SpendLedger
	amount *domain.Micros
}

func (s *reserveSpy) Reserve(ctx context.Context, r domain.Reservation) error {
	*s.amount = r.Amount
	return s.SpendLedger.Reserve(ctx, r)
}

func mustCatalogue(t *testing.T, _ *rig) *domain.Catalogue {
	t.Helper()
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "main", Type: domain.ModelChat, Provider: "primary", MaxOutputTokens: 100,
			Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}, Fallbacks: []string{"spare"}},
		{Name: "spare", Type: domain.ModelChat, Provider: "backup", MaxOutputTokens: 50,
			Price: domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 4_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func TestAdmissionLimits(t *testing.T) {
	t.Run("journal full", func(t *testing.T) {
		r := newRig(t, gateway.Options{}, alice, 0)
		r.log.RefuseAdmission(&domain.Error{Kind: domain.KindUnavailable, Message: "journal full"})
		_, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
		if domain.KindOf(err) != domain.KindUnavailable || r.primary.callCount() != 0 {
			t.Fatalf("err = %v, calls = %d; want unavailable before any provider call", err, r.primary.callCount())
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		limited := alice
		limited.RPM = 2
		r := newRig(t, gateway.Options{}, limited, 0)
		for i := 0; i < 2; i++ {
			if _, err := r.svc.Chat(context.Background(), r.call(), chat("main")); err != nil {
				t.Fatal(err)
			}
		}
		_, err := r.svc.Chat(context.Background(), r.call(), chat("main"))
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindRateLimited || de.RetryAfter <= 0 {
			t.Fatalf("err = %v, want rate limited with a Retry-After", err)
		}
	})
	t.Run("concurrency bound", func(t *testing.T) {
		r := newRig(t, gateway.Options{MaxConcurrentCalls: 1}, alice, 0)
		blocked := &blockingProvider{entered: make(chan struct{}), release: make(chan struct{})}
		svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: mustCatalogue(t, r),
			Providers: map[string]ports.Provider{"primary": blocked, "backup": r.backup},
			Keys:      memory.NewKeyStore(), Ledger: r.ledger, CallLog: r.log}, gateway.Options{MaxConcurrentCalls: 1})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = svc.Chat(context.Background(), r.call(), chat("main"))
		}()
		<-blocked.entered
		other := domain.Caller{KeyID: "key_2", User: "bob", Team: "ops"} // within its own shares
		_, err = svc.Chat(context.Background(), gateway.Call{RequestID: "second", Caller: other, AuditReason: "review"}, chat("main"))
		// The call in flight holds its call log slot until it is recorded;
		// the refusal gave back the one it took to record itself.
		heldDuringCall := r.log.Held()
		close(blocked.release)
		wg.Wait()
		if domain.KindOf(err) != domain.KindUnavailable {
			t.Fatalf("err = %v, want unavailable while the only slot is taken", err)
		}
		if heldDuringCall != 1 {
			t.Errorf("call log slots held during the provider call = %d, want 1", heldDuringCall)
		}
		checkSlotsBack(t, r.log, 2)
	})
}

// blockingProvider holds its first chat call until release is closed.
type blockingProvider struct {
	scriptedProvider
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (b *blockingProvider) Chat(ctx context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.scriptedProvider.Chat(ctx, req)
}

func TestClientGoneStopsRetrying(t *testing.T) {
	r := newRig(t, gateway.Options{MaxAttempts: 5, RetryBackoff: time.Hour}, alice, 0)
	r.primary.errs = []error{errUpstream}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err := r.svc.Chat(ctx, r.call(), chat("main"))
	if err == nil || r.primary.callCount() != 1 {
		t.Fatalf("err = %v after %d calls, want to stop during the backoff", err, r.primary.callCount())
	}
	led := seen(t, r.svc, r.ledger)
	if len(r.log.Records()) != 1 || len(led.released) != 1 {
		t.Fatal("an abandoned call must still be recorded and its reservation released")
	}
}

func TestEmbed(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	res, err := r.svc.Embed(context.Background(), r.call(), domain.EmbedRequest{Model: "vec", Inputs: []string{"a", "b"}})
	if err != nil || len(res.Response.Vectors) != 2 || res.Cost == 0 {
		t.Fatalf("res = %+v err = %v", res, err)
	}
	if rec := r.log.Records()[0]; rec.Endpoint != domain.EndpointEmbeddings || rec.Dimensions != 2 || len(rec.EmbedInputs) != 2 {
		t.Fatalf("record = %+v", rec)
	}
	if _, err := r.svc.Embed(context.Background(), r.call(), domain.EmbedRequest{Model: "main", Inputs: []string{"a"}}); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("embedding with a chat model: err = %v", err)
	}
}

func TestAuthenticateAndModels(t *testing.T) {
	limited := alice
	limited.AllowedModels = []string{"m"} // an alias allows its model
	r := newRig(t, gateway.Options{}, limited, 0)
	if _, err := r.svc.Authenticate(context.Background(), "garbage", ""); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("garbage key: %v", err)
	}
	if _, err := r.svc.Authenticate(context.Background(), "tg-unknown-key-00000000000", ""); domain.KindOf(err) != domain.KindUnauthenticated {
		t.Fatalf("unknown key: %v", err)
	}
	c, err := r.svc.Authenticate(context.Background(), "tg-the-test-key-0123456789", "")
	if err != nil || c.User != "alice" {
		t.Fatalf("good key: %+v %v", c, err)
	}
	models := r.svc.Models(c)
	if len(models) != 1 || models[0].Name != "main" {
		t.Fatalf("models = %+v, want only main", models)
	}
}

func TestNewServiceRefusesMissingProvider(t *testing.T) {
	cat, _ := domain.NewCatalogue(domain.DefaultModels())
	_, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Keys: memory.NewKeyStore(), Ledger: memory.NewLedger(), CallLog: memory.NewCallLog()}, gateway.Options{})
	if err == nil {
		t.Fatal("a catalogue naming an unconfigured provider was accepted")
	}
}

func TestAFallbackTheCallerMayNotUseIsSkipped(t *testing.T) {
	onlyMain := alice
	onlyMain.AllowedModels = []string{"main"}
	r := newRig(t, gateway.Options{MaxAttempts: 1}, onlyMain, 0)
	r.primary.errs = []error{errUpstream}
	var reserved domain.Micros
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: mustCatalogue(t, r),
		Providers: map[string]ports.Provider{"primary": r.primary, "backup": r.backup},
		Keys:      memory.NewKeyStore(), Ledger: &reserveSpy{SpendLedger: r.ledger, amount: &reserved}, CallLog: r.log}, gateway.Options{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	req := chat("main")
	_, err = svc.Chat(context.Background(), gateway.Call{RequestID: "r1", Caller: onlyMain, AuditReason: "review"}, req)
	if domain.KindOf(err) != domain.KindUpstream || r.backup.callCount() != 0 {
		t.Fatalf("err = %v after %d calls of the fallback; want the primary's failure and no call of a model the key may not use", err, r.backup.callCount())
	}
	mainPrice := domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}
	if want := mainPrice.Cost(domain.WorstCaseChat(req, 100)); reserved != want {
		t.Fatalf("reserved %v, want %v: the skipped fallback's price must not count", reserved, want)
	}
}

// The answer names the model that answered by its catalogue name: a
// fallback, or the model behind an alias.
func TestTheModelAnsweringIsNamedOnEveryChunk(t *testing.T) {
	r := newRig(t, gateway.Options{MaxAttempts: 1}, alice, 0)
	r.primary.errs = []error{errUpstream}
	var models []string
	res, err := r.svc.ChatStream(context.Background(), r.call(), chat("m"), func(c domain.ChatChunk) error {
		models = append(models, c.Model)
		return nil
	})
	if err != nil || !res.FallbackUsed || res.ModelName("m") != "spare" || len(models) == 0 {
		t.Fatalf("err = %v, result %+v, chunk models %q", err, res.Result, models)
	}
	for _, m := range models {
		if m != "spare" {
			t.Fatalf("chunk models %q, want every chunk to name the fallback", models)
		}
	}
	// Asked for by its alias, the model that answers is named by its
	// catalogue name, on every chunk and in the result, as a passed-through
	// answer names it.
	models = nil
	ok, err := newRig(t, gateway.Options{}, alice, 0).svc.ChatStream(context.Background(), r.call(), chat("m"), func(c domain.ChatChunk) error {
		models = append(models, c.Model)
		return nil
	})
	if err != nil || ok.ModelName("m") != "main" || len(models) == 0 {
		t.Fatalf("asked for by its alias: named %q, chunk models %q, %v", ok.ModelName("m"), models, err)
	}
	for _, m := range models {
		if m != "main" {
			t.Fatalf("chunk models %q, want every chunk to name the model behind the alias", models)
		}
	}
}

// A chat call that came through another API than chat completions is
// recorded under that API's endpoint, with the tools it offered and the
// answer's blocks.
func TestTheRecordNamesTheEndpointTheCallCameThrough(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	call := r.call()
	call.Endpoint = domain.EndpointMessages
	req := chat("main")
	req.Tools = []domain.Tool{{Name: "read_file", Parameters: []byte(`{"type":"object"}`)}}
	if _, err := r.svc.Chat(context.Background(), call, req); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Chat(context.Background(), r.call(), chat("main")); err != nil {
		t.Fatal(err)
	}
	recs := r.log.Records()
	if recs[0].Endpoint != domain.EndpointMessages || recs[1].Endpoint != domain.EndpointChat {
		t.Fatalf("endpoints %q and %q, want messages and chat.completions", recs[0].Endpoint, recs[1].Endpoint)
	}
	if len(recs[0].Tools) != 1 || recs[0].Tools[0].Name != "read_file" {
		t.Fatalf("record tools = %+v", recs[0].Tools)
	}
}

func TestCountTokens(t *testing.T) {
	r := newRig(t, gateway.Options{}, alice, 0)
	n, err := r.svc.CountTokens(context.Background(), r.call(), chat("m"), domain.NativeRequest{})
	if want := chat("m").EstimatePromptTokens(); err != nil || n.Tokens != want || n.Tokens == 0 || n.ByProvider {
		t.Fatalf("count = %+v, %v; want the estimate %d", n, err, want)
	}
	if r.primary.callCount() != 0 || len(r.log.Records()) != 0 {
		t.Fatal("counting tokens called the provider or recorded a call")
	}
	vecOnly := alice
	vecOnly.AllowedModels = []string{"vec"}
	for name, c := range map[string]struct {
		caller domain.Caller
		model  string
		kind   domain.Kind
		says   string
	}{
		"an embedding model":  {alice, "vec", domain.KindInvalid, `model "vec" is of type embedding and cannot serve messages.count_tokens`},
		"an unknown model":    {alice, "nope", domain.KindNotFound, "nope"},
		"a model not allowed": {vecOnly, "main", domain.KindForbidden, `may not use model "main"`},
	} {
		_, err := r.svc.CountTokens(context.Background(), gateway.Call{RequestID: name, Caller: c.caller, AuditReason: "sizing"}, chat(c.model), domain.NativeRequest{})
		if de, ok := errors.AsType[*domain.Error](err); !ok || de.Kind != c.kind || !strings.Contains(de.Message, c.says) {
			t.Errorf("%s: %v, want a %v error saying %q", name, err, c.kind, c.says)
		}
	}
}
