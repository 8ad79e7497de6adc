package mock_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	"github.com/tidygate/tidygate/internal/domain"
)

func newMock(t testing.TB, opts mock.Options) *mock.Provider {
	t.Helper()
	p, err := mock.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ask(model, prompt string, maxTokens int) domain.ChatRequest {
	return domain.ChatRequest{Model: model, MaxTokens: maxTokens, Messages: []domain.Message{
		{Role: domain.RoleSystem, Content: "Be brief."},
		{Role: domain.RoleUser, Content: prompt},
	}}
}

func TestNewValidates(t *testing.T) {
	for name, opts := range map[string]mock.Options{
		"negative latency": {Latency: -time.Second},
		"rate below 0":     {FailureRate: -0.1},
		"rate above 1":     {FailureRate: 1.5},
		"rate NaN":         {FailureRate: math.NaN()},
	} {
		if _, err := mock.New(opts); err == nil {
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
}

func TestChatIsDeterministic(t *testing.T) {
	p := newMock(t, mock.Options{})
	ctx := context.Background()
	first, err := p.Chat(ctx, ask("mock-chat", "What is a gateway?", 4096))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.Chat(ctx, ask("mock-chat", "What is a gateway?", 4096))
	other, _ := p.Chat(ctx, ask("mock-chat", "What is a budget?", 4096))
	if first.Content != again.Content {
		t.Errorf("one prompt gave two replies: %q and %q", first.Content, again.Content)
	}
	if first.Content == other.Content {
		t.Errorf("two prompts gave one reply %q", first.Content)
	}
	words := strings.Fields(first.Content)
	if len(words) < 12 || len(words) > 60 {
		t.Errorf("reply has %d words; want 12 to 60", len(words))
	}
	if first.Usage.CompletionTokens != len(words) || first.FinishReason != "stop" || first.Model != "mock-chat" {
		t.Errorf("got %d completion tokens, finish %q, model %q for %d words; want one token a word, stop, mock-chat",
			first.Usage.CompletionTokens, first.FinishReason, first.Model, len(words))
	}
}

func TestChatStopsAtMaxTokens(t *testing.T) {
	p := newMock(t, mock.Options{})
	resp, err := p.Chat(context.Background(), ask("mock-chat", "Tell me everything.", 5))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(resp.Content)); n != 5 || resp.Usage.CompletionTokens != 5 || resp.FinishReason != "length" {
		t.Errorf("got %d words, %d tokens, finish %q; want 5, 5, length", n, resp.Usage.CompletionTokens, resp.FinishReason)
	}
}

func TestPromptTokensStayWithinTheReservation(t *testing.T) {
	p := newMock(t, mock.Options{})
	for _, msgs := range [][]domain.Message{
		{{Role: domain.RoleUser, Content: ""}},
		{{Role: domain.RoleUser, Content: "x"}},
		{{Role: domain.RoleUser, Content: strings.Repeat("ü", 1000), Name: "bob"}},
		{{Role: domain.RoleSystem, Content: "a"}, {Role: domain.RoleAssistant, Content: ""}, {Role: domain.RoleUser, Content: "bc"}},
	} {
		req := domain.ChatRequest{Model: "mock-chat", Messages: msgs, MaxTokens: 100}
		resp, err := p.Chat(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		bound := domain.WorstCaseChat(req, req.MaxTokens)
		if resp.Usage.PromptTokens <= 0 || resp.Usage.PromptTokens > bound.PromptTokens ||
			resp.Usage.CompletionTokens > bound.CompletionTokens {
			t.Errorf("usage %+v for %d messages is outside (0, %+v]", resp.Usage, len(msgs), bound)
		}
	}
}

func TestChatStreamEmitsTheReplyWordByWord(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", "Stream it.", 4096)
	want, _ := p.Chat(context.Background(), req)
	var c llmtest.Chunks
	got, err := p.ChatStream(context.Background(), req, c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	if got.Content != want.Content || c.Text() != want.Content {
		t.Errorf("stream assembled %q and emitted %q; want %q", got.Content, c.Text(), want.Content)
	}
	words := strings.Fields(want.Content)
	if len(c.All) != len(words)+1 {
		t.Fatalf("%d chunks for %d words; want one a word and a final one", len(c.All), len(words))
	}
	for i, w := range words {
		if strings.TrimSpace(c.All[i].Delta) != w || c.All[i].FinishReason != "" || c.All[i].Usage != nil {
			t.Errorf("chunk %d = %+v; want the word %q alone", i, c.All[i], w)
		}
	}
	final := c.Final(t)
	if final.Delta != "" || final.FinishReason != "stop" || final.Usage == nil || *final.Usage != want.Usage {
		t.Errorf("final chunk %+v; want finish stop and usage %+v", final, want.Usage)
	}
}

func TestChatStreamStopsAtTheFirstEmitError(t *testing.T) {
	p := newMock(t, mock.Options{})
	stop := errors.New("client gone")
	calls := 0
	_, err := p.ChatStream(context.Background(), ask("mock-chat", "hi", 4096), func(domain.ChatChunk) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("got %v after %d emits; want the emit error after one", err, calls)
	}
}

func TestEmbed(t *testing.T) {
	p := newMock(t, mock.Options{})
	ctx := context.Background()
	resp, err := p.Embed(ctx, domain.EmbedRequest{Model: "mock-embed", Inputs: []string{"alpha", "beta", "alpha"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 3 || resp.Model != "mock-embed" || resp.Usage.PromptTokens != 2+1+2 { // a token per four bytes, rounded up
		t.Fatalf("got %d vectors, model %q, usage %+v; want 3, mock-embed, 5 prompt tokens",
			len(resp.Vectors), resp.Model, resp.Usage)
	}
	for i, v := range resp.Vectors {
		var norm float64
		for _, x := range v {
			norm += float64(x) * float64(x)
		}
		if len(v) != mock.DefaultDimensions || math.Abs(norm-1) > 1e-4 {
			t.Errorf("vector %d has %d dimensions and norm² %v; want %d and 1", i, len(v), norm, mock.DefaultDimensions)
		}
	}
	if !equal(resp.Vectors[0], resp.Vectors[2]) || equal(resp.Vectors[0], resp.Vectors[1]) {
		t.Error("vectors are not a function of their input")
	}
	short, err := p.Embed(ctx, domain.EmbedRequest{Model: "mock-embed", Inputs: []string{"alpha"}, Dimensions: 8})
	if err != nil || len(short.Vectors[0]) != 8 {
		t.Errorf("Dimensions 8 gave %v, %v; want one vector of 8", short.Vectors, err)
	}
	_, err = p.Embed(ctx, domain.EmbedRequest{Model: "mock-embed", Inputs: []string{"alpha"}, Dimensions: -1})
	llmtest.RequireKind(t, err, domain.KindInvalid)
}

// TestEmbedTokenInputs: token inputs get deterministic unit vectors, one
// per array and a function of its token ids, and count their token ids as
// prompt tokens; the mock's own bound counts them as inputs.
func TestEmbedTokenInputs(t *testing.T) {
	p := newMock(t, mock.Options{})
	ctx := context.Background()
	resp, err := p.Embed(ctx, domain.EmbedRequest{Model: "mock-embed", Tokens: [][]int{{9906, 1917}, {15339}, {9906, 1917}}, Dimensions: 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 3 || resp.Usage != (domain.Usage{PromptTokens: 5}) {
		t.Fatalf("got %d vectors, usage %+v; want 3 vectors, 5 prompt tokens", len(resp.Vectors), resp.Usage)
	}
	if len(resp.Vectors[0]) != 8 || !equal(resp.Vectors[0], resp.Vectors[2]) || equal(resp.Vectors[0], resp.Vectors[1]) {
		t.Error("vectors are not a function of their token ids")
	}
	again, err := p.Embed(ctx, domain.EmbedRequest{Model: "mock-embed", Tokens: [][]int{{15339}}, Dimensions: 8})
	if err != nil || !equal(again.Vectors[0], resp.Vectors[1]) {
		t.Errorf("the same tokens gave another vector (%v)", err)
	}
	_, err = p.Embed(ctx, domain.EmbedRequest{Model: "mock-embed", Tokens: make([][]int, domain.MaxEmbedInputs+1)})
	llmtest.RequireKind(t, err, domain.KindInvalid)
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestErrorHooks(t *testing.T) {
	p := newMock(t, mock.Options{})
	ctx := context.Background()
	for model, kind := range map[string]domain.Kind{
		mock.ModelError500: domain.KindUpstream,
		mock.ModelError429: domain.KindRateLimited,
		mock.ModelError400: domain.KindInvalid,
		"mock-flaky-x":     domain.KindInvalid,
	} {
		_, err := p.Chat(ctx, ask(model, "hi", 10))
		de := llmtest.RequireError(t, err, kind)
		if kind == domain.KindRateLimited && de.RetryAfter != time.Second {
			t.Errorf("%s: RetryAfter = %s; want 1s", model, de.RetryAfter)
		}
		var c llmtest.Chunks
		_, err = p.ChatStream(ctx, ask(model, "hi", 10), c.Emit)
		llmtest.RequireKind(t, err, kind)
		_, err = p.Embed(ctx, domain.EmbedRequest{Model: model, Inputs: []string{"hi"}})
		llmtest.RequireKind(t, err, kind)
		if len(c.All) != 0 {
			t.Errorf("%s: a failing stream emitted %d chunks", model, len(c.All))
		}
	}
}

func TestFlakyFailsTheFirstCallsOfEachPrompt(t *testing.T) {
	p := newMock(t, mock.Options{})
	ctx := context.Background()
	for _, prompt := range []string{"one", "two"} {
		for call := 1; call <= 3; call++ {
			_, err := p.Chat(ctx, ask("mock-flaky-2", prompt, 10))
			if call <= 2 {
				llmtest.RequireKind(t, err, domain.KindUpstream)
			} else if err != nil {
				t.Errorf("prompt %q, call %d: %v; want success after two failures", prompt, call, err)
			}
		}
	}
	if _, err := p.Chat(ctx, ask("mock-flaky-0", "three", 10)); err != nil {
		t.Errorf("mock-flaky-0 failed: %v", err)
	}
}

func TestSlowHonoursTheDeadline(t *testing.T) {
	p := newMock(t, mock.Options{})
	_, err := p.Chat(llmtest.Short(t), ask(mock.ModelSlow, "hi", 10))
	de := llmtest.RequireError(t, err, domain.KindUpstream)
	if !errors.Is(de, context.DeadlineExceeded) {
		t.Errorf("error %q does not wrap context.DeadlineExceeded", de.Error())
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	p := newMock(t, mock.Options{Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Chat(ctx, ask("mock-chat", "hi", 10))
	if de := llmtest.RequireError(t, err, domain.KindUpstream); !errors.Is(de, context.Canceled) {
		t.Errorf("error %q does not wrap context.Canceled", de.Error())
	}
}

func TestFailureRate(t *testing.T) {
	ctx := context.Background()
	failures := func(seed int64) []bool {
		p := newMock(t, mock.Options{FailureRate: 0.5, Seed: seed})
		var out []bool
		for range 64 {
			_, err := p.Chat(ctx, ask("mock-chat", "hi", 10))
			if err != nil {
				llmtest.RequireKind(t, err, domain.KindUpstream)
			}
			out = append(out, err != nil)
		}
		return out
	}
	a, b := failures(42), failures(42)
	failed := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 42 gave two sequences of failures")
		}
		if a[i] {
			failed++
		}
	}
	if failed == 0 || failed == len(a) {
		t.Errorf("%d of %d calls failed at rate 0.5", failed, len(a))
	}
	always := newMock(t, mock.Options{FailureRate: 1})
	_, err := always.Chat(ctx, ask("mock-chat", "hi", 10))
	llmtest.RequireKind(t, err, domain.KindUpstream)
}

func TestConcurrentUse(t *testing.T) {
	p := newMock(t, mock.Options{FailureRate: 0.3, Seed: 1})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				prompt := strings.Repeat("x", i*50+j)
				_, _ = p.Chat(context.Background(), ask("mock-flaky-1", prompt, 10))
				var c llmtest.Chunks
				_, _ = p.ChatStream(context.Background(), ask("mock-chat", prompt, 10), c.Emit)
				_, _ = p.Embed(context.Background(), domain.EmbedRequest{Model: "mock-embed", Inputs: []string{prompt + "!"}})
			}
		})
	}
	wg.Wait()
}

func BenchmarkChat(b *testing.B) {
	p := newMock(b, mock.Options{})
	req := ask("mock-chat", "How much does a call cost?", 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Chat(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChatStream(b *testing.B) {
	p := newMock(b, mock.Options{})
	req := ask("mock-chat", "How much does a call cost?", 4096)
	discard := func(domain.ChatChunk) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ChatStream(context.Background(), req, discard); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEmbed(b *testing.B) {
	p := newMock(b, mock.Options{})
	req := domain.EmbedRequest{Model: "mock-embed", Inputs: []string{"How much does a call cost?"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Embed(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEmbedIsBoundedByItself: even asked directly, the mock refuses a
// response larger than domain.DefaultEmbedLimits allows (65536 dimensions ×
// 256 inputs once made a 223 MB response) without building it.
func TestEmbedIsBoundedByItself(t *testing.T) {
	p := newMock(t, mock.Options{})
	in := make([]string, 256)
	for i := range in {
		in[i] = "x"
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := p.Embed(context.Background(), domain.EmbedRequest{Model: "mock-embed", Inputs: in, Dimensions: 65536})
	runtime.ReadMemStats(&after)
	if domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("err = %v, want invalid", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("refusing allocated %d bytes", grew)
	}
}

// A seed and the penalties are accepted and change nothing: the answer is
// the one the request without them gets.
func TestSeedAndPenaltiesChangeNothing(t *testing.T) {
	p := newMock(t, mock.Options{})
	plain := llmtest.Chat("mock")
	want, err := p.Chat(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	seeded := llmtest.Chat("mock")
	seeded.Seed, seeded.PresencePenalty, seeded.FrequencyPenalty = new(int64), llmtest.Float(2), llmtest.Float(-2)
	got, err := p.Chat(context.Background(), seeded)
	if err != nil || got.Content != want.Content || got.Usage != want.Usage {
		t.Errorf("with a seed and penalties: %q %+v, %v; want %q %+v", got.Content, got.Usage, err, want.Content, want.Usage)
	}
}
