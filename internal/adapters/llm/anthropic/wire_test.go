package anthropic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm/anthropic"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
)

// richRequest is a conversation that uses every block and parameter the
// adapter translates.
func richRequest(t *testing.T) domain.ChatRequest {
	t.Helper()
	topK := 40
	req := domain.ChatRequest{
		Model:     "claude-opus-4-5",
		MaxTokens: 8192,
		Messages: []domain.Message{
			{Role: domain.RoleSystem, Content: "You are terse."},
			{Role: domain.RoleDeveloper, Content: "Answer in JSON."},
			user(domain.TextBlock("What is this?"), png, imageURL),
			assistant(thinking, redacted, domain.TextBlock("Let me look."), call),
			{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult,
				ToolResult: domain.ToolResult{CallID: "toolu_1", Content: []domain.Block{domain.TextBlock("a cat"), png}}}}},
		},
		Tools: []domain.Tool{{Name: "look", Description: "Looks at a thing.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"at":{"type":"string"}},"required":["at"]}`)}},
		ToolChoice: domain.ToolChoice{Mode: domain.ToolChoiceRequired},
		ResponseFormat: domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: "answer",
			Schema: json.RawMessage(`{"type":"object","properties":{"kind":{"type":"string"}},"required":["kind"],"additionalProperties":false}`)},
		Thinking:    domain.Thinking{Enabled: true, BudgetTokens: 4096, Effort: domain.EffortHigh},
		Temperature: llmtest.Float(1),
		TopK:        &topK,
		Stop:        []string{"END"},
	}
	if err := req.Validate(); err != nil {
		t.Fatal(err)
	}
	return req
}

// richBody is the body the Messages API must receive for richRequest.
const richBody = `{"model":"claude-opus-4-5","max_tokens":8192,
 "system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in JSON."}],
 "messages":[
  {"role":"user","content":[{"type":"text","text":"What is this?"},
   {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
   {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]},
  {"role":"assistant","content":[{"type":"thinking","thinking":"Let me think.","signature":"sig-1"},
   {"type":"redacted_thinking","data":"ZW5jcnlwdGVk"},{"type":"text","text":"Let me look."},
   {"type":"tool_use","id":"toolu_1","name":"look","input":{"at":"cat"}}]},
  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"a cat"},
   {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]}],
 "temperature":1,"top_k":40,"stop_sequences":["END"],
 "tools":[{"name":"look","description":"Looks at a thing.","input_schema":{"properties":{"at":{"type":"string"}},"required":["at"],"type":"object"}}],
 "tool_choice":{"type":"any","disable_parallel_tool_use":false},
 "thinking":{"type":"enabled","budget_tokens":4096},
 "output_config":{"effort":"high","format":{"type":"json_schema",
  "schema":{"type":"object","properties":{"kind":{"type":"string"}},"required":["kind"],"additionalProperties":false}}}}`

// TestChatSendsTheMessagesWireFormat asserts the exact bytes of a rich
// request, and the headers that go with it.
func TestChatSendsTheMessagesWireFormat(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", message))
	if _, err := newProvider(t, up.URL).Chat(context.Background(), richRequest(t)); err != nil {
		t.Fatal(err)
	}
	sent := up.Last(t)
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(richBody)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sent.Body, want.Bytes()) {
		t.Errorf("sent\n%s\nwant\n%s", sent.Body, want.Bytes())
	}
	wantHeader := map[string]string{"X-Api-Key": apiKey, "Anthropic-Version": "2023-06-01",
		"Content-Type": "application/json", "Accept": "application/json"}
	for name, value := range wantHeader {
		if got := sent.Header.Values(name); !reflect.DeepEqual(got, []string{value}) {
			t.Errorf("%s: %q; want %q", name, got, value)
		}
	}
	if sent.Method != http.MethodPost || sent.Path != "/v1/messages" {
		t.Errorf("sent %s %s; want POST /v1/messages", sent.Method, sent.Path)
	}
}

func TestNewWithoutAKeySendsNone(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", message))
	p, err := anthropic.New(anthropic.Options{BaseURL: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Chat(context.Background(), llmtest.Chat("claude-x")); err != nil {
		t.Fatal(err)
	}
	if h := up.Last(t).Header; len(h.Values("X-Api-Key")) != 0 || h.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("x-api-key %q, anthropic-version %q; want none, 2023-06-01", h.Values("X-Api-Key"), h.Get("Anthropic-Version"))
	}
}

// richStream is a stream of every kind of block, its events as the API
// sends them, up to where a failing stream breaks off.
var richStream = []string{
	"message_start", `{"type":"message_start","message":{"id":"msg_7","type":"message","role":"assistant","content":[],"model":"claude-opus-4-5-20251101","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":100,"output_tokens":1}}}`,
	"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
	"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"A cat?"}}`,
	"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig-A"}}`,
	"content_block_stop", `{"type":"content_block_stop","index":0}`,
	"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
	"ping", `{"type":"ping"}`,
	"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"It is "}}`,
	"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a cat."}}`,
	"content_block_stop", `{"type":"content_block_stop","index":1}`,
}

// richStreamEnd ends richStream with a tool call and the message's stop.
var richStreamEnd = []string{
	"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_7","name":"look","input":{}}}`,
	"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}`,
	"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"at\":"}}`,
	"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"cat\"}"}}`,
	"content_block_stop", `{"type":"content_block_stop","index":2}`,
	"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}`,
	"message_stop", `{"type":"message_stop"}`,
}

// richChunks are the chunks richStream is passed on as, up to its end.
var richChunks = []domain.ChatChunk{
	{Index: 0, Start: &domain.Block{Type: domain.BlockReasoning}},
	{Index: 0, ReasoningDelta: "A cat?"},
	{Index: 0, Signature: "sig-A"},
	{Index: 1, Delta: "It is "},
	{Index: 1, Delta: "a cat."},
}

func TestChatStreamReadsEveryEvent(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(append(richStream, richStreamEnd...)...)))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), richRequest(t), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	usage := domain.Usage{PromptTokens: 130, CompletionTokens: 42, CacheReadTokens: 100, CacheWriteTokens: 20}
	wantChunks := append(append([]domain.ChatChunk(nil), richChunks...),
		domain.ChatChunk{Index: 2, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_7", Name: "look"}}},
		domain.ChatChunk{Index: 2, ArgumentsDelta: `{"at":`},
		domain.ChatChunk{Index: 2, ArgumentsDelta: `"cat"}`},
		domain.ChatChunk{FinishReason: domain.FinishToolCalls, Usage: &usage})
	if !reflect.DeepEqual(c.All, wantChunks) {
		t.Errorf("chunks:\n%s\nwant:\n%s", must(json.Marshal(c.All)), must(json.Marshal(wantChunks)))
	}
	want := domain.ChatResponse{ID: "msg_7", Model: "claude-opus-4-5-20251101", Content: "It is a cat.", FinishReason: domain.FinishToolCalls,
		Blocks: []domain.Block{
			{Type: domain.BlockReasoning, Text: "A cat?", Reasoning: domain.Reasoning{Signature: "sig-A"}},
			domain.TextBlock("It is a cat."),
			{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_7", Name: "look", Arguments: `{"at":"cat"}`}},
		},
		Usage: usage, Created: resp.Created}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("ChatStream = %+v\nwant         %+v", resp, want)
	}
	sent := up.Last(t)
	var body bytes.Buffer
	_ = json.Compact(&body, []byte(strings.Replace(richBody, `"tools":`, `"stream":true,"tools":`, 1)))
	if !bytes.Equal(sent.Body, body.Bytes()) || sent.Header.Get("Accept") != "text/event-stream" {
		t.Errorf("sent %s accepting %q; want %s accepting text/event-stream", sent.Body, sent.Header.Get("Accept"), body.Bytes())
	}
}

// TestChatStreamEndsAtAnErrorEvent: what came before an error event was
// passed on; the error is the provider's, classified by its type.
func TestChatStreamEndsAtAnErrorEvent(t *testing.T) {
	cases := map[string]struct {
		event      string
		kind       domain.Kind
		message    string
		retryAfter time.Duration
	}{
		"overloaded": {`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			domain.KindUpstream, "anthropic reported a failure: Overloaded", 0},
		"rate limited": {`{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}`,
			domain.KindRateLimited, "anthropic is rate-limiting tidygate: Slow down", 3 * time.Second},
		"without an error": {`{"type":"error"}`, domain.KindUpstream, "anthropic reported a failure: an error event without an error", 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			body := sse(append(append([]string(nil), richStream...), "error", tc.event)...) + sse(richStreamEnd...)
			up := llmtest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "3")
				llmtest.Reply(http.StatusOK, "text/event-stream", body)(w, nil)
			})
			var c llmtest.Chunks
			_, err := newProvider(t, up.URL).ChatStream(context.Background(), richRequest(t), c.Emit)
			de := llmtest.RequireError(t, err, tc.kind)
			if de.Message != tc.message || de.RetryAfter != tc.retryAfter {
				t.Errorf("error %q, retry after %s; want %q, %s", de.Message, de.RetryAfter, tc.message, tc.retryAfter)
			}
			if !reflect.DeepEqual(c.All, richChunks) {
				t.Errorf("chunks:\n%s\nwant:\n%s", must(json.Marshal(c.All)), must(json.Marshal(richChunks)))
			}
		})
	}
}

// TestNativeSendsTheClientsVersionOrTheAdapters: a passed-through request
// carries the client's anthropic-version alone when it sent one, and the
// adapter's otherwise; the key is always the adapter's.
func TestNativeSendsTheClientsVersionOrTheAdapters(t *testing.T) {
	for client, want := range map[string]string{"": "2023-06-01", "2099-01-01": "2099-01-01"} {
		t.Run(want, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", message))
			req := domain.NativeRequest{Dialect: domain.DialectAnthropicMessages, Model: "claude-x", Answer: "answer",
				Body:   []byte(`{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"Hi."}]}`),
				Header: map[string][]string{"X-Api-Key": {"the client's"}}}
			if client != "" {
				req.Header["Anthropic-Version"] = []string{client}
			}
			if _, err := newProvider(t, up.URL).Native(context.Background(), req, nil); err != nil {
				t.Fatal(err)
			}
			h := up.Last(t).Header
			if !reflect.DeepEqual(h.Values("Anthropic-Version"), []string{want}) || !reflect.DeepEqual(h.Values("X-Api-Key"), []string{apiKey}) {
				t.Errorf("anthropic-version %q, x-api-key %q; want %q, the adapter's key", h.Values("Anthropic-Version"), h.Values("X-Api-Key"), want)
			}
		})
	}
}
