package gateway_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// nativeProvider takes requests of its dialect as they are: it answers
// from a script of outcomes like scriptedProvider and streams events.
type nativeProvider struct {
	scriptedProvider
	mu     sync.Mutex
	native []domain.NativeRequest
	events []domain.NativeEvent // a stream's events, before its outcome
	resp   domain.NativeResponse
}

var _ ports.PassThrough = (*nativeProvider)(nil)

func (p *nativeProvider) PassesThrough(d domain.Dialect) bool {
	return d == domain.DialectAnthropicMessages
}

func (p *nativeProvider) Native(_ context.Context, req domain.NativeRequest, emit func(domain.NativeEvent) error) (domain.NativeResponse, error) {
	p.mu.Lock()
	p.native = append(p.native, req)
	p.mu.Unlock()
	if req.Stream {
		for _, ev := range p.events {
			if err := emit(ev); err != nil {
				return domain.NativeResponse{}, err
			}
		}
	}
	if err := p.next(domain.ChatRequest{Model: req.Model}); err != nil {
		return domain.NativeResponse{}, err
	}
	return p.resp, nil
}

// nativeRig is a service whose model "main" is served by a provider that
// passes Messages requests through, falling back to "spare", served by one
// that translates.
type nativeRig struct {
	svc    *gateway.Service
	native *nativeProvider
	backup *scriptedProvider
	ledger *memory.Ledger
	log    *memory.CallLog
}

func newNativeRig(t *testing.T) *nativeRig {
	t.Helper()
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "main", Type: domain.ModelChat, Provider: "native", Upstream: "main-v1", MaxOutputTokens: 100,
			Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}, Fallbacks: []string{"spare"}},
		{Name: "spare", Type: domain.ModelChat, Provider: "backup", Upstream: "spare-v1", MaxOutputTokens: 50,
			Price: domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 4_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &nativeRig{native: &nativeProvider{}, backup: &scriptedProvider{}, ledger: memory.NewLedger(), log: memory.NewCallLog()}
	r.svc, err = gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: cat,
		Providers: map[string]ports.Provider{"native": r.native, "backup": r.backup},
		Keys:      memory.NewKeyStore(), Ledger: r.ledger, CallLog: r.log}, gateway.Options{MaxAttempts: 2, RetryBackoff: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func nativeCall(id string) gateway.Call {
	return gateway.Call{RequestID: id, Caller: alice, AuditReason: "quarterly review"}
}

func messages(body string) gateway.Native {
	return gateway.Native{Request: domain.NativeRequest{Dialect: domain.DialectAnthropicMessages, Body: []byte(body)}}
}

// The model's provider gets the body as it is, under the upstream name and
// with the output cap of the reservation, naming the answer after the
// catalogue model; the call settles on the provider's count.
func TestChatNativePassesThrough(t *testing.T) {
	r := newNativeRig(t)
	r.native.resp = domain.NativeResponse{Body: []byte(`{"x":1}`), Text: "hi", Usage: domain.Usage{PromptTokens: 5, CompletionTokens: 2}, Counted: true}
	res, err := r.svc.ChatNative(context.Background(), nativeCall("a"), chat("main"), messages(`{"model":"main"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := r.native.native[0]
	if res.Native == nil || string(res.Native.Body) != `{"x":1}` || got.Model != "main-v1" || got.Answer != "main" || got.MaxTokens != 100 ||
		string(got.Body) != `{"model":"main"}` || r.native.callCount() != 1 {
		t.Fatalf("result %+v; provider got %+v", res, got)
	}
	rec := r.log.Records()[0]
	if rec.Usage != r.native.resp.Usage || rec.Output != "hi" || rec.Outcome != domain.OutcomeOK {
		t.Errorf("record %+v", rec)
	}
	if led := seen(t, r.svc, r.ledger); !slices.Equal(led.settled, []string{"a"}) || led.spent != rec.Cost() {
		t.Errorf("ledger %+v", led)
	}
}

// A fallback whose provider does not take the dialect gets the request
// translated.
func TestChatNativeFallsBackTranslated(t *testing.T) {
	r := newNativeRig(t)
	r.native.errs = []error{errUpstream, errUpstream}
	res, err := r.svc.ChatNative(context.Background(), nativeCall("a"), chat("main"), messages(`{"model":"main"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Native != nil || !res.FallbackUsed || res.Response.Content == "" || r.backup.callCount() != 1 || r.backup.calls[0].Model != "spare-v1" {
		t.Fatalf("result %+v", res)
	}
}

// A request only the passing provider can serve leaves other models out:
// as the model asked for it is refused, as a fallback it is skipped.
func TestChatNativeUntranslatable(t *testing.T) {
	r := newNativeRig(t)
	why := domain.InvalidParam("tools[0].type", "server tool %q is not supported", "web_search")
	n := messages(`{"model":"spare"}`)
	n.Untranslatable = why
	_, err := r.svc.ChatNative(context.Background(), nativeCall("a"), chat("spare"), n, nil)
	if !errors.Is(err, why) || r.backup.callCount() != 0 || r.log.Records()[0].Outcome != domain.OutcomeRejected {
		t.Fatalf("err %v, backup calls %d", err, r.backup.callCount())
	}
	r.native.errs = []error{errUpstream, errUpstream}
	_, err = r.svc.ChatNative(context.Background(), nativeCall("b"), chat("main"), n, nil)
	if domain.KindOf(err) != domain.KindUpstream || r.backup.callCount() != 0 {
		t.Fatalf("err %v, backup calls %d: the fallback cannot take the request", err, r.backup.callCount())
	}
	if led := seen(t, r.svc, r.ledger); !slices.Equal(led.released, []string{"b"}) || len(led.settled) != 0 {
		t.Errorf("ledger %+v", led)
	}
}

// A passed-through stream cut short is charged the provider's count so far
// with, as output, the larger of its count and the bytes received; an
// answer the provider did not count is charged the prompt's worst case and
// its bytes.
func TestChatNativeEndings(t *testing.T) {
	r := newNativeRig(t)
	partial := domain.Usage{PromptTokens: 9, CompletionTokens: 1, CacheReadTokens: 4}
	r.native.events = []domain.NativeEvent{{Raw: []byte("data: start\n\n"), Usage: &partial}, {Raw: []byte("data: x\n\n"), Text: "seven b", Output: 7}}
	r.native.errs = []error{errUpstream}
	req := chat("main")
	req.Stream = true
	n := messages(`{"model":"main","stream":true}`)
	var raw []string
	n.Emit = func(ev domain.NativeEvent) error { raw = append(raw, string(ev.Raw)); return nil }
	_, err := r.svc.ChatNative(context.Background(), nativeCall("a"), req, n, func(domain.ChatChunk) error {
		t.Error("a passed-through stream sent translated chunks")
		return nil
	})
	if domain.KindOf(err) != domain.KindUpstream || len(raw) != 2 || r.native.callCount() != 1 {
		t.Fatalf("err %v, events %q, calls %d: a stream that began is not retried", err, raw, r.native.callCount())
	}
	rec := r.log.Records()[0]
	if want := (domain.Usage{PromptTokens: 9, CompletionTokens: 7, CacheReadTokens: 4}); rec.Usage != want ||
		rec.Interrupted != domain.InterruptedByUpstream || rec.Output != "seven b" {
		t.Errorf("record usage %+v interrupted %q output %q; want %+v", rec.Usage, rec.Interrupted, rec.Output, want)
	}

	r.native.errs, r.native.events = nil, nil
	r.native.resp = domain.NativeResponse{Body: []byte(`{}`), Text: "four"}
	if _, err := r.svc.ChatNative(context.Background(), nativeCall("b"), chat("main"), messages(`{"model":"main"}`), nil); err != nil {
		t.Fatal(err)
	}
	rec = r.log.Records()[1]
	if want := domain.ConsumedChat(chat("main"), 100, 4); rec.Usage != want {
		t.Errorf("an uncounted answer: usage %+v, want %+v", rec.Usage, want)
	}
	if led := seen(t, r.svc, r.ledger); !slices.Equal(led.settled, []string{"a", "b"}) {
		t.Errorf("ledger %+v", led)
	}
}

// countingProvider counts the input tokens of Messages requests: each count
// is tokens, or fails with err. Its calls answer from a script, as
// scriptedProvider's do.
type countingProvider struct {
	scriptedProvider
	tokens int
	err    error

	countMu sync.Mutex
	counted []domain.NativeRequest
}

var _ ports.TokenCounter = (*countingProvider)(nil)

func (p *countingProvider) CountsTokens(d domain.Dialect) bool {
	return d == domain.DialectAnthropicMessages
}

func (p *countingProvider) CountTokens(_ context.Context, req domain.NativeRequest) (int, error) {
	p.countMu.Lock()
	defer p.countMu.Unlock()
	p.counted = append(p.counted, req)
	return p.tokens, p.err
}

func (p *countingProvider) requests() []domain.NativeRequest {
	p.countMu.Lock()
	defer p.countMu.Unlock()
	return append([]domain.NativeRequest(nil), p.counted...)
}

// countRig is a service whose model "claude" is served first by a provider
// that counts tokens ("anth", as claude-v1) and then by one that does not
// ("plain", as claude-plain), in that order; "gpt" only by the latter. A
// deployment's breaker opens at its first failure.
type countRig struct {
	svc     *gateway.Service
	anth    *countingProvider
	plain   *scriptedProvider
	ledger  *memory.Ledger
	limiter *limiterSpy
	log     *memory.CallLog
}

func newCountRig(t *testing.T) *countRig {
	t.Helper()
	return newCountRigLogging(t, func(l *memory.CallLog) ports.CallLog { return l })
}

// newCountRigLogging is newCountRig with the call log that logTo makes of
// the rig's.
func newCountRigLogging(t *testing.T, logTo func(*memory.CallLog) ports.CallLog) *countRig {
	t.Helper()
	price := domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 2_000_000}
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "claude", Type: domain.ModelChat, Routing: domain.RoutingOrdered, MaxOutputTokens: 100, Price: price,
			Deployments: []domain.Deployment{{Provider: "anth", Upstream: "claude-v1"}, {Provider: "plain", Upstream: "claude-plain"}}},
		{Name: "gpt", Type: domain.ModelChat, Provider: "plain", Upstream: "gpt-v1", MaxOutputTokens: 100, Price: price},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &countRig{anth: &countingProvider{tokens: 4242}, plain: &scriptedProvider{}, ledger: memory.NewLedger(),
		limiter: newLimiterSpy(t), log: memory.NewCallLog()}
	r.svc, err = gateway.NewService(gateway.Deps{Limiter: r.limiter, Catalogue: cat,
		Providers: map[string]ports.Provider{"anth": r.anth, "plain": r.plain},
		Keys:      memory.NewKeyStore(), Ledger: r.ledger, CallLog: logTo(r.log),
		Breaker: domain.BreakerSettings{Failures: 1, Cooldown: time.Hour}}, gateway.Options{RetryBackoff: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// countRequest is a count_tokens request as its client sent it.
func countRequest() domain.NativeRequest {
	return domain.NativeRequest{Dialect: domain.DialectAnthropicMessages,
		Body:   []byte(`{"model":"claude","messages":[{"role":"user","content":"Hi"}]}`),
		Header: map[string][]string{"Anthropic-Beta": {"files-api-2025-04-14"}}}
}

// countCall is the count_tokens request's call: alice, with her reason.
var countCall = gateway.Call{RequestID: "count-1", ClientRequestID: "client-7", Caller: alice, AuditReason: "sizing the context"}

// count asks r's service to count chat(model), sent as n.
func (r *countRig) count(model string, n domain.NativeRequest) (gateway.TokenCount, error) {
	return r.svc.CountTokens(context.Background(), countCall, chat(model), n)
}

// untouched fails t unless counting left no trace but records: no call,
// no reservation, no rate-limit hold, and records more.
func (r *countRig) untouched(t *testing.T, records int) {
	t.Helper()
	r.limiter.mu.Lock()
	admits := r.limiter.admits
	r.limiter.mu.Unlock()
	if r.anth.callCount() != 0 || r.plain.callCount() != 0 || len(r.ledger.Endings()) != 0 || admits != 0 || len(r.log.Records()) != records {
		t.Errorf("counting made %d and %d calls, %d reservations, %d rate-limit holds, %d records; want none, and %d records",
			r.anth.callCount(), r.plain.callCount(), len(r.ledger.Endings()), admits, len(r.log.Records()), records)
	}
	if r.log.Held() != 0 {
		t.Errorf("%d call log slots still held; want none", r.log.Held())
	}
}

// countRecord returns r's one record of a count, failing t unless there
// is exactly one and it says what every record of a count says: the
// endpoint, who asked and why, the model and the deployment asked, the
// request, one attempt, no answer and no cost.
func (r *countRig) countRecord(t *testing.T) domain.CallRecord {
	t.Helper()
	recs := r.log.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records; want the count's one", len(recs))
	}
	rec := recs[0]
	if rec.Endpoint != domain.EndpointCountTokens || rec.RequestID != "count-1" || rec.ClientRequestID != "client-7" ||
		rec.KeyID != alice.KeyID || rec.User != "alice" || rec.Team != "risk" || rec.AuditReason != "sizing the context" ||
		rec.RequestedModel != "claude" || rec.Model != "claude" || rec.Provider != "anth" || rec.UpstreamModel != "claude-v1" {
		t.Errorf("record %+v; want the count's endpoint, caller, reason, model and deployment", rec)
	}
	if !reflect.DeepEqual(rec.Messages, chat("claude").Messages) {
		t.Errorf("record's messages %+v; want the request's", rec.Messages)
	}
	if len(rec.Attempts) != 1 || rec.Attempts[0].Deployment != "anth/claude-v1" || rec.End.Before(rec.Start) {
		t.Errorf("record's attempts %+v, from %v to %v; want the one count on anth/claude-v1", rec.Attempts, rec.Start, rec.End)
	}
	if rec.Output != "" || len(rec.OutputBlocks) != 0 || rec.Cost() != 0 {
		t.Errorf("record's output %q %+v at %v; want no answer at no cost", rec.Output, rec.OutputBlocks, rec.Cost())
	}
	return rec
}

// The provider of the model's first deployment counts, when it counts the
// request's dialect: the request as its client sent it, under the
// deployment's upstream name. Counting is not a call.
func TestCountTokensAsksTheProviderThatCounts(t *testing.T) {
	r := newCountRig(t)
	got, err := r.count("claude", countRequest())
	if err != nil || got != (gateway.TokenCount{Tokens: 4242, ByProvider: true}) {
		t.Fatalf("count = %+v, %v; want the provider's 4242", got, err)
	}
	want := countRequest()
	want.Model = "claude-v1"
	if asked := r.anth.requests(); len(asked) != 1 || !reflect.DeepEqual(asked[0], want) {
		t.Errorf("the provider was asked to count %+v; want %+v", asked, want)
	}
	r.untouched(t, 1)
	if rec := r.countRecord(t); rec.Outcome != domain.OutcomeOK || rec.Usage != (domain.Usage{PromptTokens: 4242}) || rec.Attempts[0].Failed {
		t.Errorf("record's outcome %q, usage %+v; want ok, the count as the prompt's tokens", rec.Outcome, rec.Usage)
	}
}

// A count the provider makes is not answered unless it is recorded: a call
// log that cannot take its record refuses it before the provider is
// asked, and one that fails to write it withholds the count.
func TestCountTokensIsAnsweredOnlyOnceRecorded(t *testing.T) {
	t.Run("a call log that takes no record", func(t *testing.T) {
		r := newCountRig(t)
		r.log.RefuseAdmission(&domain.Error{Kind: domain.KindUnavailable, Code: "call_log_full", Message: "the call log is full"})
		if _, err := r.count("claude", countRequest()); domain.KindOf(err) != domain.KindUnavailable || len(r.anth.requests()) != 0 {
			t.Errorf("count: %v after %d counts; want unavailable before the provider is asked", err, len(r.anth.requests()))
		}
	})
	t.Run("a record that fails", func(t *testing.T) {
		r := newCountRigLogging(t, func(l *memory.CallLog) ports.CallLog { return failingRecords{l} })
		got, err := r.count("claude", countRequest())
		if domain.KindOf(err) != domain.KindUnavailable || got != (gateway.TokenCount{}) || len(r.anth.requests()) != 1 || r.log.Held() != 0 {
			t.Errorf("count = %+v, %v after %d counts, %d slots held; want unavailable after the one count, no slot held",
				got, err, len(r.anth.requests()), r.log.Held())
		}
	})
}

// A count needs an audit reason, as a call does, whoever would count it:
// refused with the call's error, recorded as a refused call is, and no
// provider asked.
func TestCountTokensNeedsAnAuditReason(t *testing.T) {
	for _, model := range []string{"claude", "gpt"} {
		r := newCountRig(t)
		noReason := countCall
		noReason.AuditReason = ""
		_, err := r.svc.CountTokens(context.Background(), noReason, chat(model), countRequest())
		_, callErr := r.svc.Chat(context.Background(), gateway.Call{RequestID: "call-1", Caller: alice}, chat(model))
		if de, ok := errors.AsType[*domain.Error](err); !ok || de.Code != "audit_reason_required" || err.Error() != callErr.Error() {
			t.Errorf("%s: count: %v; want the call's refusal %v", model, err, callErr)
		}
		if len(r.anth.requests()) != 0 || r.anth.callCount() != 0 || r.plain.callCount() != 0 {
			t.Errorf("%s: the providers were asked %d counts, %d and %d calls; want none", model, len(r.anth.requests()), r.anth.callCount(), r.plain.callCount())
		}
		if recs := r.log.Records(); len(recs) != 2 || recs[0].Endpoint != domain.EndpointCountTokens || recs[0].Outcome != domain.OutcomeRejected {
			t.Errorf("%s: records %+v; want the count's refusal, then the call's", model, recs)
		}
	}
}

// Where the deployment a call would try first has a provider that does not
// count the request's dialect, the count is tidygate's estimate.
func TestCountTokensEstimatesWhereTheProviderDoesNotCount(t *testing.T) {
	estimate := gateway.TokenCount{Tokens: chat("x").EstimatePromptTokens()}
	t.Run("a provider that does not count", func(t *testing.T) {
		r := newCountRig(t)
		gpt := countRequest()
		gpt.Body = []byte(`{"model":"gpt","messages":[{"role":"user","content":"Hi"}]}`)
		if got, err := r.count("gpt", gpt); err != nil || got != estimate {
			t.Errorf("count = %+v, %v; want the estimate %+v", got, err, estimate)
		}
		r.untouched(t, 0)
	})
	t.Run("a dialect the provider does not count", func(t *testing.T) {
		r := newCountRig(t)
		chatCompletion := countRequest()
		chatCompletion.Dialect = domain.DialectOpenAIChat
		if got, err := r.count("claude", chatCompletion); err != nil || got != estimate || len(r.anth.requests()) != 0 {
			t.Errorf("count = %+v, %v after %d counts; want the estimate %+v", got, err, len(r.anth.requests()), estimate)
		}
	})
	t.Run("a first deployment cooling down", func(t *testing.T) {
		r := newCountRig(t)
		r.anth.errs = []error{errUpstream} // opens its breaker; the call is answered by plain
		if _, err := r.svc.Chat(context.Background(), gateway.Call{RequestID: "a", Caller: alice, AuditReason: "count test"}, chat("claude")); err != nil {
			t.Fatal(err)
		}
		if got, err := r.count("claude", countRequest()); err != nil || got != estimate || len(r.anth.requests()) != 0 {
			t.Errorf("count = %+v, %v after %d counts; want the estimate %+v of the deployment a call would try", got, err, len(r.anth.requests()), estimate)
		}
	})
}

// The provider's failure is the answer, not an estimate: its refusal of the
// request is the client's error, any other an upstream error; a model none
// of whose deployments can take a call is unavailable, as its call is.
func TestCountTokensAnswersTheProvidersFailure(t *testing.T) {
	refused := &domain.Error{Kind: domain.KindInvalid, Message: "anthropic refused the request: messages: at least one message is required"}
	for name, tc := range map[string]struct {
		err  error
		kind domain.Kind
		says string
	}{
		"refused": {refused, domain.KindInvalid, refused.Message},
		"failed":  {errUpstream, domain.KindUpstream, `provider "anth" failed for model "claude"`},
	} {
		t.Run(name, func(t *testing.T) {
			r := newCountRig(t)
			r.anth.err = tc.err
			got, err := r.count("claude", countRequest())
			de, ok := errors.AsType[*domain.Error](err)
			if !ok || de.Kind != tc.kind || !strings.Contains(de.Message, tc.says) || !errors.Is(err, tc.err) || got != (gateway.TokenCount{}) {
				t.Errorf("count = %+v, %v; want a %v error saying %q", got, err, tc.kind, tc.says)
			}
			r.untouched(t, 1)
			if rec := r.countRecord(t); rec.Outcome != domain.OutcomeError || rec.ErrorKind != tc.kind || rec.ErrorMessage != err.Error() ||
				!rec.Attempts[0].Failed || rec.Usage != (domain.Usage{}) {
				t.Errorf("record's outcome %q, error %v %q, attempts %+v, usage %+v; want the count's error, nothing counted",
					rec.Outcome, rec.ErrorKind, rec.ErrorMessage, rec.Attempts, rec.Usage)
			}
		})
	}
	t.Run("no deployment", func(t *testing.T) {
		r := newCountRig(t)
		r.anth.errs, r.plain.errs = []error{errUpstream}, []error{errUpstream}
		if _, err := r.svc.Chat(context.Background(), gateway.Call{RequestID: "a", Caller: alice, AuditReason: "count test"}, chat("claude")); err == nil {
			t.Fatal("the call succeeded; want both deployments to fail")
		}
		_, err := r.count("claude", countRequest())
		if de, ok := errors.AsType[*domain.Error](err); !ok || de.Kind != domain.KindUnavailable || de.Code != "no_healthy_deployment" {
			t.Errorf("count: %v; want no_healthy_deployment", err)
		}
	})
}
