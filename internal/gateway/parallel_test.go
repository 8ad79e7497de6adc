package gateway_test

import (
	"context"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// parallelCaller answers every request with two tool calls, as a provider
// that cannot forbid parallel calls may.
type parallelCaller struct{}

func (parallelCaller) answer() []domain.Block {
	return []domain.Block{domain.TextBlock("calling"),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "c1", Name: "grep", Arguments: `{"q":"a"}`}},
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "c2", Name: "grep", Arguments: `{"q":"bb"}`}}}
}

func (p parallelCaller) Chat(context.Context, domain.ChatRequest) (domain.ChatResponse, error) {
	return domain.ChatResponse{Content: "calling", Blocks: p.answer(), FinishReason: domain.FinishToolCalls,
		Usage: domain.Usage{PromptTokens: 10, CompletionTokens: 20}}, nil
}

func (p parallelCaller) ChatStream(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	blocks := p.answer()
	chunks := []domain.ChatChunk{{Index: 0, Delta: "calling"},
		{Index: 1, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "c1", Name: "grep"}}},
		{Index: 1, ArgumentsDelta: `{"q":"a"}`},
		{Index: 2, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "c2", Name: "grep"}}},
		{Index: 2, ArgumentsDelta: `{"q":"bb"}`},
		{Index: 2, FinishReason: domain.FinishToolCalls}}
	for _, c := range chunks {
		if err := emit(c); err != nil {
			return domain.ChatResponse{}, err
		}
	}
	return domain.ChatResponse{Content: "calling", Blocks: blocks, FinishReason: domain.FinishToolCalls}, nil
}

func (parallelCaller) Embed(context.Context, domain.EmbedRequest) (domain.EmbedResponse, error) {
	return domain.EmbedResponse{}, nil
}

// A request that forbids parallel tool calls gets at most one, whatever
// the provider answers, streamed or not; without the ban it gets both.
func TestNoParallelToolCallsIsHeld(t *testing.T) {
	cat, err := domain.NewCatalogue([]domain.Model{{Name: "m", Type: domain.ModelChat, Provider: "p", Upstream: "m-1",
		MaxOutputTokens: 100, Price: domain.Price{InputPerMillion: 1_000_000, OutputPerMillion: 1_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	keys := memory.NewKeyStore()
	svc, err := gateway.NewService(gateway.Deps{Limiter: newLimiterSpy(t), Catalogue: cat,
		Providers: map[string]ports.Provider{"p": parallelCaller{}}, Keys: keys, Ledger: memory.NewLedger(), CallLog: memory.NewCallLog()}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	req := domain.ChatRequest{Model: "m", Messages: []domain.Message{{Role: domain.RoleUser, Content: "find"}},
		Tools: []domain.Tool{{Name: "grep", Parameters: []byte(`{"type":"object"}`)}}}
	calls := func(blocks []domain.Block) (ids []string) {
		for _, b := range blocks {
			if b.Type == domain.BlockToolCall {
				ids = append(ids, b.ToolCall.ID)
			}
		}
		return ids
	}
	n := 0
	call := func() gateway.Call {
		n++
		return gateway.Call{RequestID: "r" + string(rune('0'+n)), Caller: alice, AuditReason: "parallel test"}
	}

	res, err := svc.Chat(context.Background(), call(), req)
	if err != nil || len(calls(res.Response.Blocks)) != 2 {
		t.Fatalf("allowed: %v, calls %v", err, calls(res.Response.Blocks))
	}
	req.ToolChoice.NoParallel = true
	res, err = svc.Chat(context.Background(), call(), req)
	if got := calls(res.Response.Blocks); err != nil || len(got) != 1 || got[0] != "c1" || res.Response.Blocks[0].Text != "calling" {
		t.Fatalf("forbidden: %v, blocks %+v", err, res.Response.Blocks)
	}

	req.Stream = true
	var seen []domain.ChatChunk
	res, err = svc.ChatStream(context.Background(), call(), req, func(c domain.ChatChunk) error { seen = append(seen, c); return nil })
	if got := calls(res.Response.Blocks); err != nil || len(got) != 1 {
		t.Fatalf("stream: %v, blocks %+v", err, res.Response.Blocks)
	}
	args := ""
	for _, c := range seen {
		if c.Start != nil && c.Start.ToolCall.ID == "c2" {
			t.Errorf("the second call was sent: %+v", c)
		}
		args += c.ArgumentsDelta
	}
	if last := seen[len(seen)-1]; args != `{"q":"a"}` || last.FinishReason != domain.FinishToolCalls {
		t.Errorf("arguments sent %q, last chunk %+v", args, last)
	}
}
