package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

const apiKey = "sk-test-0123456789abcdef"

func newProvider(t testing.TB, baseURL string, opts openai.Options) *openai.Provider {
	t.Helper()
	opts.BaseURL = baseURL + "/v1"
	p, err := openai.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const completion = `{
  "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there."}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}
}`

func TestNewValidates(t *testing.T) {
	for _, opts := range []openai.Options{
		{BaseURL: "localhost:11434/v1"}, {BaseURL: "ftp://host/v1"}, {BaseURL: "http://"}, {Timeout: -1},
	} {
		if _, err := openai.New(opts); err == nil {
			t.Errorf("New accepted %+v", opts)
		}
	}
	if _, err := openai.New(openai.Options{}); err != nil {
		t.Errorf("New rejected the defaults: %v", err)
	}
}

func TestChat(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", completion))
	p := newProvider(t, up.URL, openai.Options{APIKey: apiKey})
	req := llmtest.Chat("gpt-4o-mini")
	req.Messages = append(req.Messages,
		domain.Message{Role: domain.RoleAssistant, Content: "Hi."},
		domain.Message{Role: domain.RoleDeveloper, Content: "Be kind."},
		domain.Message{Role: domain.RoleTool, Content: "42"},
		domain.Message{Role: domain.RoleUser, Content: "And?", Name: "ann"},
	)
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.ChatResponse{ID: "chatcmpl-1", Model: "gpt-4o-mini-2024-07-18", Content: "Hello there.",
		FinishReason: "stop", Usage: domain.Usage{PromptTokens: 21, CompletionTokens: 3}, Created: resp.Created}
	if !reflect.DeepEqual(resp, want) || resp.Created.Unix() != 1700000000 {
		t.Errorf("Chat = %+v; want %+v", resp, want)
	}

	sent := up.Last(t)
	if sent.Method != http.MethodPost || sent.Path != "/v1/chat/completions" || sent.Header.Get("Authorization") != "Bearer "+apiKey {
		t.Errorf("sent %s %s with Authorization %q", sent.Method, sent.Path, sent.Header.Get("Authorization"))
	}
	if h := sent.Header; h.Get("Content-Type") != "application/json" || h.Get("Accept") != "application/json" || h.Get("User-Agent") != "tidygate" {
		t.Errorf("sent Content-Type %q, Accept %q, User-Agent %q", h.Get("Content-Type"), h.Get("Accept"), h.Get("User-Agent"))
	}
	body := sent.JSON(t)
	if body["model"] != "gpt-4o-mini" || body["max_tokens"] != float64(64) {
		t.Errorf("model %v, max_tokens %v; want gpt-4o-mini, 64", body["model"], body["max_tokens"])
	}
	for _, absent := range []string{"temperature", "top_p", "stop", "stream", "max_completion_tokens", "user"} {
		if v, ok := body[absent]; ok {
			t.Errorf("%s = %v was sent though the request does not set it", absent, v)
		}
	}
	wantMsgs := []any{
		map[string]any{"role": "system", "content": "You are terse."},
		map[string]any{"role": "user", "content": "Say hello."},
		map[string]any{"role": "assistant", "content": "Hi."},
		map[string]any{"role": "system", "content": "Be kind."},
		map[string]any{"role": "user", "content": "42"},
		map[string]any{"role": "user", "content": "And?", "name": "ann"},
	}
	if !reflect.DeepEqual(body["messages"], wantMsgs) {
		t.Errorf("messages = %v; want %v", body["messages"], wantMsgs)
	}
}

func TestChatSendsTheOptionalParametersThatAreSet(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", completion))
	p := newProvider(t, up.URL, openai.Options{UseMaxCompletionTokens: true})
	req := llmtest.Chat("o3")
	req.Temperature, req.TopP, req.Stop = llmtest.Float(0), llmtest.Float(0.5), []string{"END", "STOP"}
	req.Seed, req.PresencePenalty, req.FrequencyPenalty = new(int64), llmtest.Float(-2), llmtest.Float(1.5)
	if _, err := p.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	body := up.Last(t).JSON(t)
	if body["temperature"] != float64(0) || body["top_p"] != 0.5 || !reflect.DeepEqual(body["stop"], []any{"END", "STOP"}) {
		t.Errorf("temperature %v, top_p %v, stop %v; want 0, 0.5, [END STOP]", body["temperature"], body["top_p"], body["stop"])
	}
	if body["seed"] != float64(0) || body["presence_penalty"] != float64(-2) || body["frequency_penalty"] != 1.5 {
		t.Errorf("seed %v, presence_penalty %v, frequency_penalty %v; want 0, -2, 1.5", body["seed"], body["presence_penalty"], body["frequency_penalty"])
	}
	if _, ok := body["max_tokens"]; ok || body["max_completion_tokens"] != float64(64) {
		t.Errorf("max_tokens %v, max_completion_tokens %v; want only max_completion_tokens 64", body["max_tokens"], body["max_completion_tokens"])
	}
}

func TestNoKeyMeansNoAuthorization(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-from-the-environment")
	t.Setenv("OPENAI_BASE_URL", "http://elsewhere.invalid/v1")
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", completion))
	p := newProvider(t, up.URL, openai.Options{})
	if _, err := p.Chat(context.Background(), llmtest.Chat("llama3.2")); err != nil {
		t.Fatal(err)
	}
	if auth := up.Last(t).Header.Get("Authorization"); auth != "" {
		t.Errorf("Authorization %q was sent to a server configured without a key", auth)
	}
}

func TestChatWithoutUsageIsEstimated(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"twelve bytes"},"finish_reason":"stop"}]}`))
	p := newProvider(t, up.URL, openai.Options{})
	req := llmtest.Chat("llama3.2")
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.CompletionTokens != 3 || resp.Usage.PromptTokens <= 0 || resp.Model != "llama3.2" {
		t.Errorf("usage %+v, model %q; want an estimate (3 completion tokens) and the requested model", resp.Usage, resp.Model)
	}
}

func TestChatWithoutChoicesIsMalformed(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"id":"x","choices":[]}`))
	_, err := newProvider(t, up.URL, openai.Options{}).Chat(context.Background(), llmtest.Chat("m"))
	llmtest.RequireKind(t, err, domain.KindUpstream)
}

func TestErrorBodyNotInOpenAIFormat(t *testing.T) {
	up := llmtest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "2")
		http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
	})
	_, err := newProvider(t, up.URL, openai.Options{}).Chat(context.Background(), llmtest.Chat("m"))
	if de := llmtest.RequireError(t, err, domain.KindRateLimited); de.RetryAfter.Seconds() != 2 {
		t.Errorf("RetryAfter = %s; want 2s", de.RetryAfter)
	}
}

// TestRefusalKeepsTheParamAndCode answers with OpenAI's errors: a refusal
// of the request keeps the provider's param and code for the client's SDK
// (the key scrubbed, should it appear); a code that is not a string
// (vLLM's HTTP status) is left out and the message still read; a
// rejection of tidygate's credentials keeps neither, as the client's
// request is not at fault.
func TestRefusalKeepsTheParamAndCode(t *testing.T) {
	for _, c := range []struct {
		status               int
		body                 string
		message, param, code string
	}{
		{http.StatusBadRequest, `{"error":{"message":"Unsupported parameter: 'max_tokens'","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}`,
			"Unsupported parameter", "max_tokens", "unsupported_parameter"},
		{http.StatusNotFound, `{"error":{"message":"no such model","type":"invalid_request_error","param":"` + apiKey + `","code":"model_not_found"}}`,
			"no such model", "[redacted]", "model_not_found"},
		{http.StatusBadRequest, `{"error":{"message":"too long","type":"BadRequestError","param":null,"code":400}}`, "too long", "", ""},
		{http.StatusUnauthorized, `{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, "credentials", "", ""},
	} {
		up := llmtest.NewUpstream(t, llmtest.Reply(c.status, "application/json", c.body))
		_, err := newProvider(t, up.URL, openai.Options{APIKey: apiKey}).Chat(context.Background(), llmtest.Chat("m"))
		var de *domain.Error
		if !errors.As(err, &de) || !strings.Contains(de.Message, c.message) || de.Param != c.param || de.Code != c.code {
			t.Errorf("HTTP %d %s: %#v; want the message to hold %q, param %q, code %q", c.status, c.body, de, c.message, c.param, c.code)
		}
	}
}

// sse renders events as a text/event-stream body ending in [DONE].
func sse(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "data: %s\n\n", e)
	}
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

func chunk(delta, finish string) string {
	f := "null"
	if finish != "" {
		f = `"` + finish + `"`
	}
	return `{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000001,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":` +
		fmt.Sprintf("%q", delta) + `},"finish_reason":` + f + `}],"usage":null}`
}

const usageChunk = `{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1700000001,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`

func TestChatStream(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream",
		sse(chunk("", ""), chunk("Hel", ""), chunk("lo", ""), chunk("", "length"), usageChunk)))
	p := newProvider(t, up.URL, openai.Options{})
	var c llmtest.Chunks
	resp, err := p.ChatStream(context.Background(), llmtest.Chat("gpt-4o-mini"), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	c.Expect(t, resp, []string{"Hel", "lo"}, "length", domain.Usage{PromptTokens: 9, CompletionTokens: 2})
	if resp.ID != "chatcmpl-2" {
		t.Errorf("ID = %q; want chatcmpl-2", resp.ID)
	}
	if accept := up.Last(t).Header.Get("Accept"); accept != "text/event-stream" {
		t.Errorf("a stream was asked for with Accept %q; want text/event-stream", accept)
	}
	body := up.Last(t).JSON(t)
	if body["stream"] != true || !reflect.DeepEqual(body["stream_options"], map[string]any{"include_usage": true}) {
		t.Errorf("stream %v, stream_options %v; want true and include_usage", body["stream"], body["stream_options"])
	}
}

func TestChatStreamWithoutUsageIsEstimated(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(chunk("Hello", ""), chunk("", "stop"))))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), llmtest.Chat("m"), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.CompletionTokens != 2 || resp.Usage.PromptTokens <= 0 || c.Final(t).Usage == nil {
		t.Errorf("usage %+v, final chunk %+v; want an estimate on the final chunk", resp.Usage, c.Final(t))
	}
}

func TestChatStreamFailures(t *testing.T) {
	for name, body := range map[string]string{
		"no finish reason": sse(chunk("Hel", "")),
		"cut short":        "data: " + chunk("Hel", "") + "\n\ndata: {\"id\":",
		"error event":      sse(chunk("Hel", ""), `{"error":{"message":"overloaded","type":"server_error"}}`),
		"not json":         sse("nonsense"),
		"negative usage":   sse(chunk("a", "stop"), strings.Replace(usageChunk, `"prompt_tokens":9`, `"prompt_tokens":-9`, 1)),
	} {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", body))
			var c llmtest.Chunks
			_, err := newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), llmtest.Chat("m"), c.Emit)
			llmtest.RequireKind(t, err, domain.KindUpstream)
		})
	}
}

func TestChatStreamStopsAtTheFirstEmitError(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(chunk("a", ""), chunk("b", ""), chunk("", "stop"))))
	stop := errors.New("client gone")
	calls := 0
	_, err := newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), llmtest.Chat("m"),
		func(domain.ChatChunk) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("got %v after %d emits; want the emit error after one", err, calls)
	}
}

func TestEmbed(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"object":"list","model":"text-embedding-3-small",
	  "data":[{"object":"embedding","index":1,"embedding":[0.5,-0.5]},{"object":"embedding","index":0,"embedding":[1,0]}],
	  "usage":{"prompt_tokens":4,"total_tokens":4}}`))
	p := newProvider(t, up.URL, openai.Options{APIKey: apiKey})
	resp, err := p.Embed(context.Background(), domain.EmbedRequest{Model: "text-embedding-3-small", Inputs: []string{"a", "b"}, Dimensions: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := domain.EmbedResponse{Model: "text-embedding-3-small", Vectors: [][]float32{{1, 0}, {0.5, -0.5}},
		Usage: domain.Usage{PromptTokens: 4}}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("Embed = %+v; want %+v", resp, want)
	}
	sent := up.Last(t)
	body := sent.JSON(t)
	if sent.Path != "/v1/embeddings" || body["model"] != "text-embedding-3-small" || body["encoding_format"] != "float" ||
		body["dimensions"] != float64(2) || !reflect.DeepEqual(body["input"], []any{"a", "b"}) {
		t.Errorf("sent %s %v", sent.Path, body)
	}
}

// TestEmbedTokenArrays: token inputs go upstream as the arrays of token ids
// they are, and without a reported usage they count their token ids.
func TestEmbedTokenArrays(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"object":"list","model":"text-embedding-3-small",
	  "data":[{"object":"embedding","index":0,"embedding":[1,0]},{"object":"embedding","index":1,"embedding":[0.5,-0.5]}]}`))
	p := newProvider(t, up.URL, openai.Options{APIKey: apiKey})
	resp, err := p.Embed(context.Background(), domain.EmbedRequest{Model: "text-embedding-3-small", Tokens: [][]int{{9906, 1917}, {15339}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Vectors) != 2 || resp.Usage != (domain.Usage{PromptTokens: 3}) {
		t.Errorf("Embed = %+v; want two vectors and the 3 token ids counted", resp)
	}
	up.Last(t).WantFields(t, `{"model":"text-embedding-3-small","input":[[9906,1917],[15339]],"encoding_format":"float"}`)
}

func TestEmbedMalformed(t *testing.T) {
	for name, body := range map[string]string{
		"too few":      `{"data":[{"index":0,"embedding":[1]}]}`,
		"repeated":     `{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[1]}]}`,
		"out of range": `{"data":[{"index":0,"embedding":[1]},{"index":7,"embedding":[1]}]}`,
		"empty":        `{"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[1]}]}`,
	} {
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", body))
		_, err := newProvider(t, up.URL, openai.Options{}).Embed(context.Background(), domain.EmbedRequest{Model: "m", Inputs: []string{"a", "b"}})
		if de := llmtest.RequireError(t, err, domain.KindUpstream); !strings.Contains(de.Message, "openai") {
			t.Errorf("%s: message %q", name, de.Message)
		}
	}
}

func TestFailures(t *testing.T) {
	llmtest.RunFailureTests(t, llmtest.Wire{
		Provider: "openai",
		APIKey:   apiKey,
		New: func(t *testing.T, baseURL string) ports.Provider {
			return newProvider(t, baseURL, openai.Options{APIKey: apiKey})
		},
		Error:      llmtest.OpenAIError,
		Embeds:     true,
		Model:      "gpt-4o-mini",
		EmbedModel: "text-embedding-3-small",
	})
}

// TestChatStreamReadsTheEventStreamFormat serves a stream with what the
// text/event-stream format allows besides data lines: CRLF line ends,
// comments (keep-alives), event and id fields, and a chunk longer than
// the reader's buffer.
func TestChatStreamReadsTheEventStreamFormat(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	body := ": keep-alive\r\n\r\n" +
		"event: message\r\nid: 1\r\ndata: " + chunk("Hel", "") + "\r\n\r\n" +
		"data: " + chunk(long, "") + "\n\n" +
		"data: " + chunk("", "stop") + "\n\n" +
		"data: [DONE]\n\n"
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", body))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), llmtest.Chat("m"), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Content != "Hel"+long || resp.FinishReason != "stop" {
		t.Errorf("content of %d bytes, finish %q; want %d bytes and stop", len(resp.Content), resp.FinishReason, 3+len(long))
	}
}

// TestChatStreamRefusesAnOversizedEvent ends a stream whose event exceeds
// the adapter's bound instead of buffering it.
func TestChatStreamRefusesAnOversizedEvent(t *testing.T) {
	body := "data: " + chunk(strings.Repeat("x", 2<<20), "stop") + "\n\ndata: [DONE]\n\n"
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", body))
	var c llmtest.Chunks
	_, err := newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), llmtest.Chat("m"), c.Emit)
	if de := llmtest.RequireError(t, err, domain.KindUpstream); !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("error %q does not say the event is too large", de.Error())
	}
}

// TestCallsReuseTheirConnection makes calls of every kind one after the
// other and counts the connections the server saw opened: one, so every
// answer was read to its end and its connection kept alive.
func TestCallsReuseTheirConnection(t *testing.T) {
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/v1/embeddings":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":[{"index":0,"embedding":[1]}]}`+"\n")
		case strings.Contains(string(body), `"stream":true`):
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, sse(chunk("a", "stop"), usageChunk))
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, completion+strings.Repeat("\n", 3000)) // more than a JSON decoder reads ahead
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := newProvider(t, srv.URL, openai.Options{})
	ctx := context.Background()
	for range 3 {
		if _, err := p.Chat(ctx, llmtest.Chat("m")); err != nil {
			t.Fatal(err)
		}
		var c llmtest.Chunks
		if _, err := p.ChatStream(ctx, llmtest.Chat("m"), c.Emit); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Embed(ctx, domain.EmbedRequest{Model: "e", Inputs: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("9 sequential calls opened %d connections; want 1", n)
	}
}

// OpenAI's prompt_tokens includes the cached tokens and completion_tokens
// the reasoning tokens: the usage keeps both totals and reads the classes
// out of the details, never adding them on top.
const classedUsage = `"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,` +
	`"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":256,"audio_tokens":0}}`

var classedWant = domain.Usage{PromptTokens: 2006, CompletionTokens: 300, CacheReadTokens: 1920, ReasoningTokens: 256}

func TestUsageByClass(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		body := strings.Replace(completion, `"usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}`, classedUsage, 1)
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", body))
		resp, err := newProvider(t, up.URL, openai.Options{}).Chat(context.Background(), llmtest.Chat("m"))
		if err != nil || resp.Usage != classedWant {
			t.Fatalf("usage = %+v, %v; want %+v", resp.Usage, err, classedWant)
		}
	})
	t.Run("stream", func(t *testing.T) {
		last := strings.Replace(usageChunk, `"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}`, classedUsage, 1)
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(chunk("Hi", ""), chunk("", "stop"), last)))
		var c llmtest.Chunks
		resp, err := newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), llmtest.Chat("m"), c.Emit)
		if err != nil {
			t.Fatal(err)
		}
		c.Expect(t, resp, []string{"Hi"}, "stop", classedWant)
	})
	for name, bad := range map[string]string{
		"more cached than prompt":        strings.Replace(classedUsage, `"cached_tokens":1920`, `"cached_tokens":3000`, 1),
		"more reasoning than completion": strings.Replace(classedUsage, `"reasoning_tokens":256`, `"reasoning_tokens":301`, 1),
		"negative cached":                strings.Replace(classedUsage, `"cached_tokens":1920`, `"cached_tokens":-1`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			body := strings.Replace(completion, `"usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}`, bad, 1)
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", body))
			_, err := newProvider(t, up.URL, openai.Options{}).Chat(context.Background(), llmtest.Chat("m"))
			llmtest.RequireKind(t, err, domain.KindUpstream)
		})
	}
}

// TestConcurrentCallsKeepTheirOwnBytes runs Chat and Native calls (whole
// and streamed) of different sizes at once: each answer is the upstream's
// echo of its own request, so a buffer shared between calls (answers and
// streams are read through pooled ones) that leaked one call's bytes into another would show as a wrong
// answer, or as a race under -race.
func TestConcurrentCallsKeepTheirOwnBytes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []struct {
				Content string `json:"content"`
			} `json:"messages"`
			Stream bool `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		echo, _ := json.Marshal(req.Messages[0].Content)
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: {\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s}}]}\n\n", echo)
			fmt.Fprint(w, "data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if len(req.Messages[0].Content)%2 == 0 {
			w.(http.Flusher).Flush() // sent chunked, without a Content-Length
		}
		fmt.Fprintf(w, `{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":%s},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":1,"completion_tokens":1}}`, echo)
	}))
	t.Cleanup(up.Close)
	p := newProvider(t, up.URL, openai.Options{})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				text := fmt.Sprintf("%d/%d %s", g, i, strings.Repeat(string(rune('a'+g)), (g*37+i*101)%3000))
				req := llmtest.Chat("m")
				req.Messages = []domain.Message{{Role: domain.RoleUser, Content: text}}
				resp, err := p.Chat(context.Background(), req)
				if err != nil || resp.Content != text {
					t.Errorf("Chat %d/%d answered %.40q, %v", g, i, resp.Content, err)
					return
				}
				body, _ := json.Marshal(map[string]any{"model": "m", "messages": []map[string]string{{"role": "user", "content": text}}})
				n, err := p.Native(context.Background(), domain.NativeRequest{Dialect: domain.DialectOpenAIChat, Body: body, Model: "m", Answer: "alias"}, nil)
				want, _ := json.Marshal(text)
				if err != nil || n.Text != text || !strings.Contains(string(n.Body), string(want)) || !strings.Contains(string(n.Body), `"model":"alias"`) {
					t.Errorf("Native %d/%d answered %.60q, %v", g, i, n.Body, err)
					return
				}
				var streamed strings.Builder
				body, _ = json.Marshal(map[string]any{"model": "m", "stream": true, "messages": []map[string]string{{"role": "user", "content": text}}})
				n, err = p.Native(context.Background(), domain.NativeRequest{Dialect: domain.DialectOpenAIChat, Body: body, Model: "m", Answer: "alias", Stream: true},
					func(ev domain.NativeEvent) error { streamed.Write(ev.Raw); return nil })
				if err != nil || n.Text != text || !strings.Contains(streamed.String(), string(want)) || strings.Count(streamed.String(), `"model":"alias"`) != 1 {
					t.Errorf("Native stream %d/%d passed on %.60q, %v", g, i, streamed.String(), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestChatForgetsTheAnswerBefore decodes a completion with tool calls and
// usage, then one with neither: the second must show none of the first's
// (completions are decoded into reused structs).
func TestChatForgetsTheAnswerBefore(t *testing.T) {
	full := `{"id":"c1","model":"m1","choices":[{"index":0,"message":{"role":"assistant","content":"a",` +
		`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],` +
		`"usage":{"prompt_tokens":50,"completion_tokens":7}}`
	bare := `{"choices":[{"index":0,"message":{"role":"assistant","content":"b"}}]}`
	answers := []string{full, bare}
	var n atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answers[int(n.Add(1)-1)%2])
	}))
	t.Cleanup(up.Close)
	p := newProvider(t, up.URL, openai.Options{})
	for range 3 {
		first, err := p.Chat(context.Background(), llmtest.Chat("m"))
		if err != nil || len(first.Blocks) != 2 || first.Usage.PromptTokens != 50 || first.ID != "c1" {
			t.Fatalf("the full answer: %+v, %v", first, err)
		}
		second, err := p.Chat(context.Background(), llmtest.Chat("m"))
		if err != nil || second.Blocks != nil || second.ID != "" || second.Model != "m" || second.FinishReason != "" ||
			second.Content != "b" || second.Usage.PromptTokens == 50 {
			t.Fatalf("the bare answer after the full one: %+v, %v", second, err)
		}
	}
}
