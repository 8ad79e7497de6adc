package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

const messagesBody = `{"model":"mock-chat","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`

// anthropicErrorOf decodes an Anthropic error response and checks its status and type.
func anthropicErrorOf(t *testing.T, rec *httptest.ResponseRecorder, status int, typ string) string {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d, want %d: %s", rec.Code, status, rec.Body)
	}
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Type != "error" || body.Error.Type != typ ||
		body.Error.Message == "" || body.RequestID != rec.Header().Get("X-Request-Id") {
		t.Fatalf("not an Anthropic %s error (%v): %s", typ, err, rec.Body)
	}
	return body.Error.Message
}

func TestMessagesAnswersInAnthropicsShape(t *testing.T) {
	gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{Content: "Let me look.",
			Blocks: []domain.Block{
				{Type: domain.BlockReasoning, Text: "hmm", Reasoning: domain.Reasoning{Signature: "sig"}},
				domain.TextBlock("Let me look."),
				{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_1", Name: "Glob", Arguments: `{"pattern":"*"}`}},
			},
			FinishReason: domain.FinishToolCalls,
			Usage:        domain.Usage{PromptTokens: 100, CompletionTokens: 20, CacheReadTokens: 60, CacheWriteTokens: 10}}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/messages?beta=true", messagesBody, "Authorization", "", "X-Api-Key", goodKey,
		"Anthropic-Version", "2023-06-01", "Anthropic-Beta", "interleaved-thinking-2025-05-14")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := `{"id":"msg_` + rec.Header().Get("X-Request-Id") + `","type":"message","role":"assistant","model":"mock-chat",` +
		`"content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"text","text":"Let me look."},` +
		`{"type":"tool_use","id":"toolu_1","name":"Glob","input":{"pattern":"*"}}],"stop_reason":"tool_use","stop_sequence":null,` +
		`"usage":{"input_tokens":30,"output_tokens":20,"cache_creation_input_tokens":10,"cache_read_input_tokens":60}}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body =\n%s\nwant\n%s", rec.Body, want)
	}
	if call := r.gw.lastCall(t); call.AuditReason != "unit test" {
		t.Errorf("call = %+v", call)
	}
}

func TestMessagesDecodesTheWholeConversation(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	body := `{"model":"mock","max_tokens":4096,"system":[{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}}],
	"metadata":{"user_id":"u-1"},"temperature":0.5,"top_k":5,"stop_sequences":["END"],"future_field":{"x":1},
	"tools":[{"name":"Glob","description":"find files","input_schema":{"type":"object","properties":{"pattern":{"type":"string"}}}}],
	"tool_choice":{"type":"any","disable_parallel_tool_use":true},
	"thinking":{"type":"enabled","budget_tokens":2048},
	"messages":[
	 {"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
	   {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
	 {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"redacted_thinking","data":"enc"},
	   {"type":"tool_use","id":"toolu_1","name":"Glob","input":{"pattern":"*"}}]},
	 {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"a.go"}],"is_error":true}]}]}`
	if rec := r.do("POST", "/v1/messages", body); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := r.gw.chats[0]
	five, half := 5, 0.5
	want := domain.ChatRequest{Model: "mock", MaxTokens: 4096, Temperature: &half, TopK: &five, Stop: []string{"END"}, User: "u-1",
		Messages: []domain.Message{
			{Role: domain.RoleSystem, Content: "Be brief."},
			{Role: domain.RoleUser, Content: "look", Blocks: []domain.Block{domain.TextBlock("look"),
				{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}},
				{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/a.png"}}}},
			{Role: domain.RoleAssistant, Blocks: []domain.Block{
				{Type: domain.BlockReasoning, Text: "t", Reasoning: domain.Reasoning{Signature: "s"}},
				{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: "enc"}},
				{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_1", Name: "Glob", Arguments: `{"pattern":"*"}`}}}},
			{Role: domain.RoleUser, Blocks: []domain.Block{{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{
				CallID: "toolu_1", Content: []domain.Block{domain.TextBlock("a.go")}, IsError: true}}}},
		},
		Tools: []domain.Tool{{Name: "Glob", Description: "find files",
			Parameters: json.RawMessage(`{"type":"object","properties":{"pattern":{"type":"string"}}}`)}},
		ToolChoice: domain.ToolChoice{Mode: domain.ToolChoiceRequired, NoParallel: true},
		Thinking:   domain.Thinking{Enabled: true, BudgetTokens: 2048},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the gateway got\n%+v\nwant\n%+v", got, want)
	}
}

// namedEvents parses a server-sent event stream into (event, data) pairs.
func namedEvents(t *testing.T, body string) (names []string, data []map[string]any) {
	t.Helper()
	for _, ev := range strings.Split(strings.TrimSpace(body), "\n\n") {
		name, rest, ok := strings.Cut(ev, "\n")
		if !ok || !strings.HasPrefix(name, "event: ") || !strings.HasPrefix(rest, "data: ") {
			t.Fatalf("malformed event %q", ev)
		}
		var d map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(rest, "data: ")), &d); err != nil {
			t.Fatalf("event data %q: %v", rest, err)
		}
		if d["type"] != strings.TrimPrefix(name, "event: ") {
			t.Errorf("event %q carries type %v", name, d["type"])
		}
		names, data = append(names, strings.TrimPrefix(name, "event: ")), append(data, d)
	}
	return names, data
}

func TestMessagesStreamsAnthropicsEvents(t *testing.T) {
	gw := &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		chunks := []domain.ChatChunk{
			{Index: 0, Start: &domain.Block{Type: domain.BlockReasoning}}, {Index: 0, ReasoningDelta: "hmm"}, {Index: 0, Signature: "sig"},
			{Index: 1, Delta: "Hello"}, {Index: 1, Delta: " there"},
			{Index: 2, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_1", Name: "Glob"}}},
			{Index: 2, ArgumentsDelta: `{"pat`}, {Index: 2, ArgumentsDelta: `tern":"*"}`},
		}
		for _, c := range chunks {
			if err := emit(c); err != nil {
				return gateway.ChatResult{}, err
			}
		}
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{FinishReason: domain.FinishToolCalls,
			Usage: domain.Usage{PromptTokens: 9, CompletionTokens: 4}}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/messages", strings.Replace(messagesBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, %v: %s", rec.Code, rec.Header(), rec.Body)
	}
	names, data := namedEvents(t, rec.Body.String())
	wantNames := []string{"message_start", "ping",
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Fatalf("events = %v\nwant %v", names, wantNames)
	}
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	checks := map[int]string{
		0:  `{"message":{"content":[],"id":"msg_` + rec.Header().Get("X-Request-Id") + `","model":"mock-chat","role":"assistant","stop_reason":null,"stop_sequence":null,"type":"message","usage":{"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"input_tokens":0,"output_tokens":0}},"type":"message_start"}`,
		2:  `{"content_block":{"signature":"","thinking":"","type":"thinking"},"index":0,"type":"content_block_start"}`,
		3:  `{"delta":{"thinking":"hmm","type":"thinking_delta"},"index":0,"type":"content_block_delta"}`,
		4:  `{"delta":{"signature":"sig","type":"signature_delta"},"index":0,"type":"content_block_delta"}`,
		6:  `{"content_block":{"text":"","type":"text"},"index":1,"type":"content_block_start"}`,
		7:  `{"delta":{"text":"Hello","type":"text_delta"},"index":1,"type":"content_block_delta"}`,
		10: `{"content_block":{"id":"toolu_1","input":{},"name":"Glob","type":"tool_use"},"index":2,"type":"content_block_start"}`,
		11: `{"delta":{"partial_json":"{\"pat","type":"input_json_delta"},"index":2,"type":"content_block_delta"}`,
		13: `{"index":2,"type":"content_block_stop"}`,
		14: `{"delta":{"stop_reason":"tool_use","stop_sequence":null},"type":"message_delta","usage":{"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"input_tokens":9,"output_tokens":4}}`,
	}
	for i, want := range checks {
		if got := js(data[i]); got != want {
			t.Errorf("event %d (%s) = %s\nwant %s", i, names[i], got, want)
		}
	}
}

// TestMessagesStreamOpensNoEmptyBlock: the final chunk, which carries the
// finish reason and usage with Index 0 as a translating provider sends it,
// opens no block after a tool call; Anthropic never sends an empty text block.
func TestMessagesStreamOpensNoEmptyBlock(t *testing.T) {
	gw := &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		u := domain.Usage{PromptTokens: 9, CompletionTokens: 4}
		chunks := []domain.ChatChunk{
			{Index: 0, Delta: "Let me look."},
			{Index: 1, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_1", Name: "Glob"}}},
			{Index: 1, ArgumentsDelta: `{}`},
			{FinishReason: domain.FinishToolCalls, Usage: &u},
		}
		for _, c := range chunks {
			if err := emit(c); err != nil {
				return gateway.ChatResult{}, err
			}
		}
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{FinishReason: domain.FinishToolCalls, Usage: u}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/messages", strings.Replace(messagesBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
	names, _ := namedEvents(t, rec.Body.String())
	want := []string{"message_start", "ping",
		"content_block_start", "content_block_delta", "content_block_stop",
		"content_block_start", "content_block_delta", "content_block_stop",
		"message_delta", "message_stop"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("events = %v\nwant %v", names, want)
	}
}

func TestMessagesStreamFailureAfterStartIsAnErrorEvent(t *testing.T) {
	gw := &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		_ = emit(domain.ChatChunk{Delta: "partial"})
		return gateway.ChatResult{}, &domain.Error{Kind: domain.KindUnavailable, Message: "provider went away"}
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/messages", strings.Replace(messagesBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1))
	names, data := namedEvents(t, rec.Body.String())
	last := data[len(data)-1]
	if names[len(names)-1] != "error" || last["error"].(map[string]any)["type"] != "overloaded_error" {
		t.Fatalf("events %v, last %v", names, last)
	}
	for _, n := range names {
		if n == "message_stop" {
			t.Error("a failed stream must not end with message_stop")
		}
	}
}

func TestMessagesErrorsInAnthropicsShape(t *testing.T) {
	failing := func(err error) *fakeGateway {
		return &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
			return gateway.ChatResult{}, err
		}}
	}
	cases := []struct {
		name   string
		gw     *fakeGateway
		body   string
		header []string
		status int
		typ    string
	}{
		{"no key", &fakeGateway{}, messagesBody, []string{"Authorization", ""}, 401, "authentication_error"},
		{"wrong x-api-key", &fakeGateway{}, messagesBody, []string{"Authorization", "", "X-Api-Key", "tg-nope"}, 401, "authentication_error"},
		{"two different keys", &fakeGateway{}, messagesBody, []string{"X-Api-Key", "tg-other-key-0123456789abcdef"}, 400, "invalid_request_error"},
		{"bad JSON", &fakeGateway{}, `{"model":`, nil, 400, "invalid_request_error"},
		{"no max_tokens", &fakeGateway{}, `{"model":"m","messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_request_error"},
		{"bad role", &fakeGateway{}, `{"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"x"}]}`, nil, 400, "invalid_request_error"},
		{"block without a type", &fakeGateway{}, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]}`, nil, 400, "invalid_request_error"},
		{"nested tool result", &fakeGateway{}, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"tool_result"}]}]}]}`, nil, 400, "invalid_request_error"},
		{"server tool, translated", &fakeGateway{}, `{"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_request_error"},
		{"thinking budget too small", &fakeGateway{}, `{"model":"m","max_tokens":5000,"thinking":{"type":"enabled","budget_tokens":10},"messages":[{"role":"user","content":"x"}]}`, nil, 400, "invalid_request_error"},
		{"forbidden", failing(&domain.Error{Kind: domain.KindForbidden, Message: "no"}), messagesBody, nil, 403, "permission_error"},
		{"unknown model", failing(&domain.Error{Kind: domain.KindNotFound, Message: "no such model"}), messagesBody, nil, 404, "not_found_error"},
		{"budget", failing(&domain.Error{Kind: domain.KindBudgetExceeded, Message: "over budget"}), messagesBody, nil, 429, "rate_limit_error"},
		{"rate limit", failing(&domain.Error{Kind: domain.KindRateLimited, Message: "slow down"}), messagesBody, nil, 429, "rate_limit_error"},
		{"unavailable", failing(&domain.Error{Kind: domain.KindUnavailable, Message: "db down"}), messagesBody, nil, 529, "overloaded_error"},
		{"upstream", failing(&domain.Error{Kind: domain.KindUpstream, Message: "provider failed"}), messagesBody, nil, 502, "api_error"},
		{"bug", failing(context.Canceled), messagesBody, nil, 500, "api_error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, c.gw, httpapi.Options{})
			anthropicErrorOf(t, r.do("POST", "/v1/messages", c.body, c.header...), c.status, c.typ)
		})
	}
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	anthropicErrorOf(t, r.do("POST", "/v1/messages/batches", messagesBody), 404, "not_found_error")
	anthropicErrorOf(t, r.do("GET", "/v1/messages", ""), 405, "invalid_request_error")
	if rec := r.do("POST", "/v1/messages", messagesBody, "X-Api-Key", goodKey); rec.Code != http.StatusOK {
		t.Errorf("the same key in both headers: status %d: %s", rec.Code, rec.Body)
	}
}

// TestMessagesTakesManyStopSequences: the Messages API sets no limit on
// stop_sequences, and neither does the dialect; a provider that takes fewer
// refuses them itself.
func TestMessagesTakesManyStopSequences(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	body := `{"model":"m","max_tokens":5,"stop_sequences":["a","b","c","d","e"],"messages":[{"role":"user","content":"x"}]}`
	if rec := r.do("POST", "/v1/messages", body); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := r.gw.chats[0].Stop; len(got) != 5 {
		t.Errorf("the gateway got stop sequences %q", got)
	}
}

// TestMessagesTakesAThinkingBudgetOverMaxTokens: with interleaved thinking
// Anthropic lets budget_tokens exceed max_tokens (the budget spans the
// turn), so the rule that it may not is the provider's to apply.
func TestMessagesTakesAThinkingBudgetOverMaxTokens(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	body := `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":4000},"messages":[{"role":"user","content":"x"}]}`
	if rec := r.do("POST", "/v1/messages", body, "Anthropic-Beta", "interleaved-thinking-2025-05-14"); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if got := r.gw.chats[0].Thinking; got.BudgetTokens != 4000 {
		t.Errorf("the gateway got thinking %+v", got)
	}
}

// TestMessagesAnswersCarryRequestID: every answer in the Messages dialect,
// success or error, carries Anthropic's request-id header, which its SDKs
// read, with the same id as X-Request-Id.
func TestMessagesAnswersCarryRequestID(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"message":      r.do("POST", "/v1/messages", messagesBody),
		"stream":       r.do("POST", "/v1/messages", strings.Replace(messagesBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)),
		"count_tokens": r.do("POST", "/v1/messages/count_tokens", `{"model":"mock-chat","messages":[{"role":"user","content":"x"}]}`),
		"error":        r.do("POST", "/v1/messages", messagesBody, "Authorization", ""),
	} {
		if id := rec.Header().Get("X-Request-Id"); id == "" || rec.Header().Get("Request-Id") != id {
			t.Errorf("%s: request-id %q, X-Request-Id %q", name, rec.Header().Get("Request-Id"), id)
		}
	}
}

func TestMessagesBodyLimitIsTheAgentsOwn(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{MaxBodyBytes: 100, MaxAgentBodyBytes: 1000})
	big := strings.Replace(messagesBody, `"Hi"`, `"`+strings.Repeat("x", 500)+`"`, 1)
	if rec := r.do("POST", "/v1/messages", big); rec.Code != http.StatusOK {
		t.Errorf("a body within the agents' limit: status %d: %s", rec.Code, rec.Body)
	}
	errorOf(t, r.do("POST", "/v1/chat/completions", big), http.StatusRequestEntityTooLarge)
	huge := strings.Replace(messagesBody, `"Hi"`, `"`+strings.Repeat("x", 1000)+`"`, 1)
	anthropicErrorOf(t, r.do("POST", "/v1/messages", huge), http.StatusRequestEntityTooLarge, "request_too_large")
}

func TestCountTokens(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	rec := r.do("POST", "/v1/messages/count_tokens", `{"model":"mock-chat","messages":[{"role":"user","content":"Hello, world"}]}`,
		"Authorization", "", "X-Api-Key", goodKey)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"input_tokens":7}`+"\n" || rec.Header().Get("X-Tidygate-Mode") != "estimated" {
		t.Fatalf("status %d, mode %q: %s", rec.Code, rec.Header().Get("X-Tidygate-Mode"), rec.Body)
	}
	anthropicErrorOf(t, r.do("POST", "/v1/messages/count_tokens", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`), 404, "not_found_error")
}
