package openai_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
)

// TestChatTranslatesReasoningAndImages asserts the exact fields the Chat
// Completions API receives for reasoning settings, reasoning blocks in the
// history and images by URL.
func TestChatTranslatesReasoningAndImages(t *testing.T) {
	cases := map[string]struct {
		edit   func(*domain.ChatRequest)
		want   string
		absent []string
	}{
		"reasoning effort":    {func(r *domain.ChatRequest) { r.Thinking.Effort = domain.EffortHigh }, `{"reasoning_effort":"high"}`, nil},
		"max effort is xhigh": {func(r *domain.ChatRequest) { r.Thinking.Effort = domain.EffortMax }, `{"reasoning_effort":"xhigh"}`, nil},
		"a small thinking budget": {func(r *domain.ChatRequest) {
			r.MaxTokens, r.Thinking = 64000, domain.Thinking{Enabled: true, BudgetTokens: 2048}
		}, `{"reasoning_effort":"low"}`, nil},
		"a medium thinking budget": {func(r *domain.ChatRequest) {
			r.MaxTokens, r.Thinking = 64000, domain.Thinking{Enabled: true, BudgetTokens: 10000}
		}, `{"reasoning_effort":"medium"}`, nil},
		"a large thinking budget": {func(r *domain.ChatRequest) {
			r.MaxTokens, r.Thinking = 64000, domain.Thinking{Enabled: true, BudgetTokens: 32000}
		}, `{"reasoning_effort":"high"}`, nil},
		"no thinking": {func(*domain.ChatRequest) {}, `{}`, []string{"reasoning_effort"}},
		"reasoning blocks are not sent back": {func(r *domain.ChatRequest) {
			r.Messages = append(r.Messages, domain.Message{Role: domain.RoleAssistant, Content: "Hi.", Blocks: []domain.Block{
				{Type: domain.BlockReasoning, Text: "hmm", Reasoning: domain.Reasoning{Signature: "sig"}}, domain.TextBlock("Hi.")}})
		}, `{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."},{"role":"assistant","content":"Hi."}]}`, nil},
		"an image by URL": {func(r *domain.ChatRequest) {
			r.Messages = append(r.Messages, domain.Message{Role: domain.RoleUser, Blocks: []domain.Block{
				{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/cat.png"}}}})
		}, `{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."},
		  {"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", completion))
			req := llmtest.Chat("gpt-5")
			tc.edit(&req)
			if err := req.Validate(); err != nil {
				t.Fatal(err)
			}
			if _, err := newProvider(t, up.URL, openai.Options{}).Chat(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			up.Last(t).WantFields(t, tc.want, tc.absent...)
		})
	}
}

// TestChatRefusesWhatTheAPITakesNot: top_k, and more stop sequences than
// the Chat Completions API takes, are refused by name before any call.
func TestChatRefusesWhatTheAPITakesNot(t *testing.T) {
	k := 3
	for name, edit := range map[string]func(*domain.ChatRequest){
		"top_k":          func(r *domain.ChatRequest) { r.TopK = &k },
		"stop_sequences": func(r *domain.ChatRequest) { r.Stop = []string{"a", "b", "c", "d", "e"} },
	} {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Hang)
			req := llmtest.Chat("gpt-5")
			edit(&req)
			_, err := newProvider(t, up.URL, openai.Options{}).Chat(llmtest.Short(t), req)
			if de := llmtest.RequireError(t, err, domain.KindInvalid); !strings.Contains(de.Message, name) || de.Code != "unsupported_feature" {
				t.Errorf("error %q, code %q", de.Message, de.Code)
			}
			if n := len(up.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

// TestChatStreamPassesParallelToolCallsOn: two tool calls streamed side by
// side (their first pieces in one chunk, their arguments interleaved) come
// out as two blocks with their own indexes and whole arguments.
func TestChatStreamPassesParallelToolCallsOn(t *testing.T) {
	chunk := func(delta string) string {
		return `data: {"id":"c1","model":"gpt-5","created":1,"choices":[{"index":0,"delta":` + delta + `}]}` + "\n\n"
	}
	body := chunk(`{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"look","arguments":""}},{"index":1,"id":"call_b","type":"function","function":{"name":"look","arguments":""}}]}`) +
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":"{\"at\":\"dog\"}"}}]}`) +
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"at\":\"cat\"}"}}]}`) +
		`data: {"id":"c1","model":"gpt-5","created":1,"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\n" +
		`data: {"id":"c1","model":"gpt-5","created":1,"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4}}` + "\n\ndata: [DONE]\n\n"
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", body))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), llmtest.Chat("gpt-5"), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	usage := domain.Usage{PromptTokens: 9, CompletionTokens: 4}
	want := []domain.ChatChunk{
		{Index: 1, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_a", Name: "look"}}},
		{Index: 2, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_b", Name: "look"}}},
		{Index: 2, ArgumentsDelta: `{"at":"dog"}`},
		{Index: 1, ArgumentsDelta: `{"at":"cat"}`},
		{FinishReason: domain.FinishToolCalls, Usage: &usage},
	}
	if !reflect.DeepEqual(c.All, want) {
		got, _ := json.Marshal(c.All)
		t.Errorf("chunks %s", got)
	}
	blocks := []domain.Block{
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_a", Name: "look", Arguments: `{"at":"cat"}`}},
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_b", Name: "look", Arguments: `{"at":"dog"}`}},
	}
	if !reflect.DeepEqual(resp.Blocks, blocks) || resp.FinishReason != domain.FinishToolCalls {
		t.Errorf("assembled %+v", resp)
	}
}
