package gateway_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

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
