package anthropic_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/anthropic"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

const apiKey = "sk-ant-test-0123456789abcdef"

func newProvider(t testing.TB, baseURL string) *anthropic.Provider {
	t.Helper()
	p, err := anthropic.New(anthropic.Options{BaseURL: baseURL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeError answers in the Anthropic error format.
func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "message": message}})
	_, _ = w.Write(body)
}

const message = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
  "content":[{"type":"text","text":"Hello "},{"type":"text","text":"there."}],
  "stop_reason":"max_tokens","stop_sequence":null,
  "usage":{"input_tokens":21,"cache_creation_input_tokens":0,"cache_read_input_tokens":2,"output_tokens":3}}`

func TestNewValidates(t *testing.T) {
	for _, opts := range []anthropic.Options{{BaseURL: "api.anthropic.com"}, {BaseURL: "ftp://x"}, {Timeout: -1}} {
		if _, err := anthropic.New(opts); err == nil {
			t.Errorf("New accepted %+v", opts)
		}
	}
}

func TestChat(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-from-the-environment")
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", message))
	p := newProvider(t, up.URL)
	req := llmtest.Chat("claude-sonnet-4-5")
	req.Messages = append(req.Messages,
		domain.Message{Role: domain.RoleUser, Content: "Twice."},
		domain.Message{Role: domain.RoleAssistant, Content: "Hi."},
		domain.Message{Role: domain.RoleDeveloper, Content: "Be kind."},
		domain.Message{Role: domain.RoleTool, Content: "42"},
	)
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.ChatResponse{ID: "msg_01", Model: "claude-sonnet-4-5-20250929", Content: "Hello there.",
		FinishReason: "length", Usage: domain.Usage{PromptTokens: 23, CompletionTokens: 3, CacheReadTokens: 2}, Created: resp.Created}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("Chat = %+v; want %+v", resp, want)
	}

	sent := up.Last(t)
	if sent.Path != "/v1/messages" || sent.Header.Get("X-Api-Key") != apiKey || sent.Header.Get("Anthropic-Version") == "" {
		t.Errorf("sent %s with x-api-key %q, anthropic-version %q", sent.Path, sent.Header.Get("X-Api-Key"), sent.Header.Get("Anthropic-Version"))
	}
	body := sent.JSON(t)
	if body["model"] != "claude-sonnet-4-5" || body["max_tokens"] != float64(64) {
		t.Errorf("model %v, max_tokens %v; want claude-sonnet-4-5, 64", body["model"], body["max_tokens"])
	}
	for _, absent := range []string{"temperature", "top_p", "stop_sequences", "stream", "metadata"} {
		if v, ok := body[absent]; ok {
			t.Errorf("%s = %v was sent though the request does not set it", absent, v)
		}
	}
	text := func(s string) map[string]any { return map[string]any{"type": "text", "text": s} }
	wantSystem := []any{text("You are terse."), text("Be kind.")}
	wantMsgs := []any{
		map[string]any{"role": "user", "content": []any{text("Say hello."), text("Twice.")}},
		map[string]any{"role": "assistant", "content": []any{text("Hi.")}},
		map[string]any{"role": "user", "content": []any{text("42")}},
	}
	if !reflect.DeepEqual(body["system"], wantSystem) || !reflect.DeepEqual(body["messages"], wantMsgs) {
		t.Errorf("system %v, messages %v; want %v, %v", body["system"], body["messages"], wantSystem, wantMsgs)
	}
}

func TestChatSendsTheOptionalParametersThatAreSet(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", message))
	req := llmtest.Chat("claude-haiku-4-5")
	req.Temperature, req.TopP, req.Stop = llmtest.Float(0), llmtest.Float(0.9), []string{"END"}
	if _, err := newProvider(t, up.URL).Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	body := up.Last(t).JSON(t)
	if body["temperature"] != float64(0) || body["top_p"] != 0.9 || !reflect.DeepEqual(body["stop_sequences"], []any{"END"}) {
		t.Errorf("temperature %v, top_p %v, stop_sequences %v; want 0, 0.9, [END]", body["temperature"], body["top_p"], body["stop_sequences"])
	}
}

func TestChatNeedsATurn(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", message))
	req := domain.ChatRequest{Model: "claude", MaxTokens: 10, Messages: []domain.Message{{Role: domain.RoleSystem, Content: "only"}}}
	_, err := newProvider(t, up.URL).Chat(context.Background(), req)
	llmtest.RequireKind(t, err, domain.KindInvalid)
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests sent for a conversation Anthropic would refuse", n)
	}
}

func TestEmbedIsInvalid(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Hang)
	_, err := newProvider(t, up.URL).Embed(context.Background(), domain.EmbedRequest{Model: "x", Inputs: []string{"a"}})
	if de := llmtest.RequireError(t, err, domain.KindInvalid); !strings.Contains(de.Message, "no embeddings API") {
		t.Errorf("message %q", de.Message)
	}
}

// sse renders (event, data) pairs as a text/event-stream body.
func sse(pairs ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", pairs[i], pairs[i+1])
	}
	return b.String()
}

const (
	messageStart = `{"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}`
	blockStart   = `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	blockStop    = `{"type":"content_block_stop","index":0}`
	messageDelta = `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`
	messageStop  = `{"type":"message_stop"}`
)

func textDelta(s string) string {
	return fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, s)
}

func TestChatStream(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(
		"message_start", messageStart, "content_block_start", blockStart, "ping", `{"type":"ping"}`,
		"content_block_delta", textDelta("Hel"), "content_block_delta", textDelta("lo"),
		"content_block_stop", blockStop, "message_delta", messageDelta, "message_stop", messageStop)))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("claude-x"), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	c.Expect(t, resp, []string{"Hel", "lo"}, "stop", domain.Usage{PromptTokens: 25, CompletionTokens: 15})
	if resp.ID != "msg_2" || resp.Model != "claude-x" {
		t.Errorf("ID %q, model %q; want msg_2, claude-x", resp.ID, resp.Model)
	}
	if body := up.Last(t).JSON(t); body["stream"] != true {
		t.Errorf("stream = %v; want true", body["stream"])
	}
}

func TestChatStreamFailures(t *testing.T) {
	cases := map[string]struct {
		body string
		kind domain.Kind
	}{
		"no message_stop": {sse("message_start", messageStart, "content_block_delta", textDelta("a"), "message_delta", messageDelta), domain.KindUpstream},
		"no stop reason":  {sse("message_start", messageStart, "message_stop", messageStop), domain.KindUpstream},
		"not json":        {sse("message_start", "{nonsense"), domain.KindUpstream},
		"overloaded": {sse("message_start", messageStart, "error",
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), domain.KindUpstream},
		"rate limited": {sse("message_start", messageStart, "error",
			`{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}`), domain.KindRateLimited},
		"invalid":        {sse("error", `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}`), domain.KindInvalid},
		"error not json": {sse("error", `oops`), domain.KindUpstream},
		"negative usage": {sse("message_start", messageStart, "message_delta",
			strings.Replace(messageDelta, "15", "-15", 1), "message_stop", messageStop), domain.KindUpstream},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", tc.body))
			var c llmtest.Chunks
			_, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("m"), c.Emit)
			de := llmtest.RequireError(t, err, tc.kind)
			if !strings.Contains(de.Message, "anthropic") {
				t.Errorf("message %q does not name anthropic", de.Message)
			}
		})
	}
}

func TestChatStreamStopsAtTheFirstEmitError(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse("message_start", messageStart,
		"content_block_delta", textDelta("a"), "content_block_delta", textDelta("b"), "message_delta", messageDelta, "message_stop", messageStop)))
	stop := errors.New("client gone")
	calls := 0
	_, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("m"),
		func(domain.ChatChunk) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("got %v after %d emits; want the emit error after one", err, calls)
	}
}

func TestFailures(t *testing.T) {
	llmtest.RunFailureTests(t, llmtest.Wire{
		Provider: "anthropic",
		APIKey:   apiKey,
		New:      func(t *testing.T, baseURL string) ports.Provider { return newProvider(t, baseURL) },
		Error:    writeError,
		Model:    "claude-sonnet-4-5",
	})
}

// Anthropic's input_tokens excludes the tokens read from and written to the
// prompt cache: the usage's prompt is the sum of the three, each class kept.
func TestUsageByClass(t *testing.T) {
	want := domain.Usage{PromptTokens: 5 + 1800 + 300, CompletionTokens: 40, CacheReadTokens: 1800, CacheWriteTokens: 300}
	t.Run("json", func(t *testing.T) {
		body := strings.Replace(message, `"usage":{"input_tokens":21,"cache_creation_input_tokens":0,"cache_read_input_tokens":2,"output_tokens":3}`,
			`"usage":{"input_tokens":5,"cache_creation_input_tokens":300,"cache_read_input_tokens":1800,"output_tokens":40}`, 1)
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", body))
		resp, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat("claude-x"))
		if err != nil || resp.Usage != want {
			t.Fatalf("usage = %+v, %v; want %+v", resp.Usage, err, want)
		}
	})
	start := strings.Replace(messageStart, `"usage":{"input_tokens":25,"output_tokens":1}`,
		`"usage":{"input_tokens":5,"cache_creation_input_tokens":300,"cache_read_input_tokens":1800,"output_tokens":1}`, 1)
	for name, delta := range map[string]string{
		"stream":                      strings.Replace(messageDelta, `"output_tokens":15`, `"output_tokens":40`, 1),
		"stream whose delta restates": strings.Replace(messageDelta, `"output_tokens":15`, `"input_tokens":5,"cache_creation_input_tokens":300,"cache_read_input_tokens":1800,"output_tokens":40`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(
				"message_start", start, "content_block_start", blockStart, "content_block_delta", textDelta("Hi"),
				"content_block_stop", blockStop, "message_delta", delta, "message_stop", messageStop)))
			var c llmtest.Chunks
			resp, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("claude-x"), c.Emit)
			if err != nil {
				t.Fatal(err)
			}
			c.Expect(t, resp, []string{"Hi"}, "stop", want)
		})
	}
	t.Run("negative cache count", func(t *testing.T) {
		body := strings.Replace(message, `"cache_read_input_tokens":2`, `"cache_read_input_tokens":-2`, 1)
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", body))
		_, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat("claude-x"))
		llmtest.RequireKind(t, err, domain.KindUpstream)
	})
}
