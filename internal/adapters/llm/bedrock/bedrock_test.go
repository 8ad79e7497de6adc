package bedrock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/tidygate/tidygate/internal/adapters/llm/bedrock"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

const (
	model      = "anthropic.claude-3-haiku-20240307-v1:0"
	accessKey  = "AKIDTESTTESTTEST"
	secretKey  = "fake-secret-access-key-0123456789"
	streamType = "application/vnd.amazon.eventstream"
)

// newProvider builds the adapter against baseURL with static fake
// credentials from the environment, isolated from the machine's AWS files.
func newProvider(t testing.TB, baseURL string) *bedrock.Provider {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey, "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	p, err := bedrock.New(context.Background(), bedrock.Options{Region: "us-east-1", BaseURL: baseURL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeError answers in the AWS JSON error format.
func writeError(w http.ResponseWriter, status int, message string) {
	errorType := map[int]string{
		http.StatusBadRequest: "ValidationException", http.StatusUnauthorized: "UnrecognizedClientException",
		http.StatusForbidden: "AccessDeniedException", http.StatusNotFound: "ResourceNotFoundException",
		http.StatusUnprocessableEntity: "ValidationException", http.StatusTooManyRequests: "ThrottlingException",
		http.StatusInternalServerError: "InternalServerException", http.StatusServiceUnavailable: "ServiceUnavailableException",
	}[status]
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", errorType)
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"message": message})
	_, _ = w.Write(body)
}

func TestNewValidates(t *testing.T) {
	for _, opts := range []bedrock.Options{{}, {Region: "us-east-1", BaseURL: "localhost:1234"}} {
		if _, err := bedrock.New(context.Background(), opts); err == nil {
			t.Errorf("New accepted %+v", opts)
		}
	}
}

const converse = `{"output":{"message":{"role":"assistant","content":[{"text":"Hello "},{"text":"there."}]}},
  "stopReason":"max_tokens","usage":{"inputTokens":21,"outputTokens":3,"totalTokens":24},"metrics":{"latencyMs":120}}`

func TestChat(t *testing.T) {
	up := llmtest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Amzn-RequestId", "req-1")
		llmtest.Reply(http.StatusOK, "application/json", converse)(w, nil)
	})
	req := llmtest.Chat(model)
	req.Messages = append(req.Messages,
		domain.Message{Role: domain.RoleUser, Content: "Twice."},
		domain.Message{Role: domain.RoleAssistant, Content: "Hi."},
		// A developer message in blocks, as the Responses API's is decoded.
		domain.Message{Role: domain.RoleDeveloper, Content: "Be kind.", Blocks: []domain.Block{domain.TextBlock("Be kind.")}},
		domain.Message{Role: domain.RoleTool, Content: "42"},
	)
	resp, err := newProvider(t, up.URL).Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.ChatResponse{ID: "req-1", Model: model, Content: "Hello there.", FinishReason: "length",
		Usage: domain.Usage{PromptTokens: 21, CompletionTokens: 3}, Created: resp.Created}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("Chat = %+v; want %+v", resp, want)
	}

	sent := up.Last(t)
	if sent.Path != "/model/"+model+"/converse" || !strings.Contains(sent.Header.Get("Authorization"), "Credential="+accessKey+"/") {
		t.Errorf("sent %s with Authorization %q; want a SigV4 signature by the fake key", sent.Path, sent.Header.Get("Authorization"))
	}
	body := sent.JSON(t)
	text := func(s string) map[string]any { return map[string]any{"text": s} }
	wantMsgs := []any{
		map[string]any{"role": "user", "content": []any{text("Say hello."), text("Twice.")}},
		map[string]any{"role": "assistant", "content": []any{text("Hi.")}},
		map[string]any{"role": "user", "content": []any{text("42")}},
	}
	if !reflect.DeepEqual(body["messages"], wantMsgs) || !reflect.DeepEqual(body["system"], []any{text("You are terse."), text("Be kind.")}) {
		t.Errorf("messages %v, system %v", body["messages"], body["system"])
	}
	if cfg := body["inferenceConfig"]; !reflect.DeepEqual(cfg, map[string]any{"maxTokens": float64(64)}) {
		t.Errorf("inferenceConfig = %v; want only maxTokens 64", cfg)
	}
}

func TestChatSendsTheOptionalParametersThatAreSet(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", converse))
	req := llmtest.Chat(model)
	req.Temperature, req.TopP, req.Stop = llmtest.Float(0), llmtest.Float(0.5), []string{"END"}
	if _, err := newProvider(t, up.URL).Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"maxTokens": float64(64), "temperature": float64(0), "topP": 0.5, "stopSequences": []any{"END"}}
	if cfg := up.Last(t).JSON(t)["inferenceConfig"]; !reflect.DeepEqual(cfg, want) {
		t.Errorf("inferenceConfig = %v; want %v", cfg, want)
	}
}

func TestChatMalformedAnswers(t *testing.T) {
	for name, body := range map[string]string{
		"no usage":       `{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":"end_turn"}`,
		"no stop reason": `{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"usage":{"inputTokens":1,"outputTokens":1}}`,
		"negative usage": `{"output":{"message":{"role":"assistant","content":[]}},"stopReason":"end_turn","usage":{"inputTokens":-1,"outputTokens":1}}`,
		"not json":       `<html>`,
	} {
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", body))
		_, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat(model))
		if de := llmtest.RequireError(t, err, domain.KindUpstream); !strings.Contains(de.Message, "bedrock") {
			t.Errorf("%s: message %q", name, de.Message)
		}
	}
}

func TestQuotaExceededIsARateLimit(t *testing.T) {
	up := llmtest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Amzn-ErrorType", "ServiceQuotaExceededException")
		http.Error(w, `{"message":"Too many tokens per day"}`, http.StatusBadRequest)
	})
	_, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat(model))
	llmtest.RequireKind(t, err, domain.KindRateLimited)
}

// frame encodes one event-stream message.
func frame(t testing.TB, messageType, kind, payload string) []byte {
	t.Helper()
	var h eventstream.Headers
	h.Set(":message-type", eventstream.StringValue(messageType))
	if messageType == "exception" {
		h.Set(":exception-type", eventstream.StringValue(kind))
	} else {
		h.Set(":event-type", eventstream.StringValue(kind))
	}
	h.Set(":content-type", eventstream.StringValue("application/json"))
	var b bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&b, eventstream.Message{Headers: h, Payload: []byte(payload)}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// events encodes (event type, payload) pairs as event-stream frames.
func events(t testing.TB, pairs ...string) string {
	t.Helper()
	var b bytes.Buffer
	for i := 0; i+1 < len(pairs); i += 2 {
		b.Write(frame(t, "event", pairs[i], pairs[i+1]))
	}
	return b.String()
}

func textDelta(s string) string {
	return fmt.Sprintf(`{"contentBlockIndex":0,"delta":{"text":%q}}`, s)
}

const (
	messageStart = `{"role":"assistant"}`
	messageStop  = `{"stopReason":"end_turn"}`
	metadata     = `{"usage":{"inputTokens":25,"outputTokens":15,"totalTokens":40},"metrics":{"latencyMs":300}}`
)

// streamHello streams "Hel", "lo" and then meta, the stream's metadata event.
func streamHello(t *testing.T, meta string) (*llmtest.Upstream, domain.ChatResponse, *llmtest.Chunks) {
	t.Helper()
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, streamType, events(t,
		"messageStart", messageStart, "contentBlockDelta", textDelta("Hel"), "contentBlockDelta", textDelta("lo"),
		"contentBlockStop", `{"contentBlockIndex":0}`, "messageStop", messageStop, "metadata", meta)))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat(model), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	return up, resp, &c
}

func TestChatStream(t *testing.T) {
	up, resp, c := streamHello(t, metadata)
	c.Expect(t, resp, []string{"Hel", "lo"}, "stop", domain.Usage{PromptTokens: 25, CompletionTokens: 15})
	if sent := up.Last(t); sent.Path != "/model/"+model+"/converse-stream" {
		t.Errorf("sent to %s", sent.Path)
	}
}

func TestChatStreamFailures(t *testing.T) {
	cases := map[string]struct {
		body string
		kind domain.Kind
	}{
		"no metadata":     {events(t, "messageStart", messageStart, "contentBlockDelta", textDelta("a"), "messageStop", messageStop), domain.KindUpstream},
		"no message stop": {events(t, "messageStart", messageStart, "metadata", metadata), domain.KindUpstream},
		"bad payload":     {events(t, "messageStart", messageStart, "contentBlockDelta", `{"delta":`), domain.KindUpstream},
		"cut frame":       {events(t, "messageStart", messageStart)[:20], domain.KindUpstream},
		"stream error": {events(t, "messageStart", messageStart) +
			string(frame(t, "exception", "modelStreamErrorException", `{"message":"the model broke"}`)), domain.KindUpstream},
		"throttled": {events(t, "messageStart", messageStart) +
			string(frame(t, "exception", "throttlingException", `{"message":"slow down"}`)), domain.KindRateLimited},
		"invalid": {string(frame(t, "exception", "validationException", `{"message":"prompt too long"}`)), domain.KindInvalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, streamType, tc.body))
			var c llmtest.Chunks
			_, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat(model), c.Emit)
			if de := llmtest.RequireError(t, err, tc.kind); !strings.Contains(de.Message, "bedrock") {
				t.Errorf("message %q does not name bedrock", de.Message)
			}
		})
	}
}

func TestChatStreamStopsAtTheFirstEmitError(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, streamType, events(t, "messageStart", messageStart,
		"contentBlockDelta", textDelta("a"), "contentBlockDelta", textDelta("b"), "messageStop", messageStop, "metadata", metadata)))
	stop := errors.New("client gone")
	calls := 0
	_, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat(model),
		func(domain.ChatChunk) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("got %v after %d emits; want the emit error after one", err, calls)
	}
}

func TestEmbedTitan(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"embedding":[0.6,0.8],"inputTextTokenCount":2}`))
	const titan = "amazon.titan-embed-text-v2:0"
	resp, err := newProvider(t, up.URL).Embed(context.Background(), domain.EmbedRequest{Model: titan, Inputs: []string{"a", "b"}, Dimensions: 256})
	if err != nil {
		t.Fatal(err)
	}
	want := domain.EmbedResponse{Model: titan, Vectors: [][]float32{{0.6, 0.8}, {0.6, 0.8}}, Usage: domain.Usage{PromptTokens: 4}}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("Embed = %+v; want %+v", resp, want)
	}
	reqs := up.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/model/"+titan+"/invoke" {
		t.Fatalf("%d requests, first to %s; want one a text to /model/%s/invoke", len(reqs), reqs[0].Path, titan)
	}
	for i, text := range []string{"a", "b"} {
		if got := reqs[i].JSON(t); !reflect.DeepEqual(got, map[string]any{"inputText": text, "dimensions": float64(256)}) {
			t.Errorf("request %d = %v", i, got)
		}
	}
}

func TestEmbedCohere(t *testing.T) {
	up := llmtest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "7")
		llmtest.Reply(http.StatusOK, "application/json", `{"id":"e1","embeddings":[[1,0],[0,1]],"texts":["a","b"]}`)(w, r)
	})
	const cohere = "cohere.embed-english-v3"
	resp, err := newProvider(t, up.URL).Embed(context.Background(), domain.EmbedRequest{Model: cohere, Inputs: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	want := domain.EmbedResponse{Model: cohere, Vectors: [][]float32{{1, 0}, {0, 1}}, Usage: domain.Usage{PromptTokens: 7}}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("Embed = %+v; want %+v", resp, want)
	}
	if got := up.Last(t).JSON(t); !reflect.DeepEqual(got, map[string]any{"texts": []any{"a", "b"}, "input_type": "search_document"}) {
		t.Errorf("sent %v", got)
	}
}

func TestEmbedCohereBatchesAndChecksCounts(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"embeddings":[[1]]}`))
	inputs := make([]string, 97)
	for i := range inputs {
		inputs[i] = "x"
	}
	_, err := newProvider(t, up.URL).Embed(context.Background(), domain.EmbedRequest{Model: "cohere.embed-multilingual-v3", Inputs: inputs})
	llmtest.RequireKind(t, err, domain.KindUpstream)
	if got := len(up.Last(t).JSON(t)["texts"].([]any)); got != 96 {
		t.Errorf("first batch has %d texts; want 96", got)
	}
}

func TestEmbedRefusals(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Hang)
	p := newProvider(t, up.URL)
	for _, req := range []domain.EmbedRequest{
		{Model: "amazon.titan-embed-text-v1", Inputs: []string{"a"}},
		{Model: model, Inputs: []string{"a"}},
		{Model: "cohere.embed-english-v3", Inputs: []string{"a"}, Dimensions: 256},
	} {
		_, err := p.Embed(context.Background(), req)
		llmtest.RequireKind(t, err, domain.KindInvalid)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests sent for refused embeddings", n)
	}
}

// TestEmbedRefusesTokenInputs: Titan and Cohere embed text only; a
// request of token ids is refused, naming input, before any call. The
// upstream refuses everything, so that a request sent fails the test at
// once.
func TestEmbedRefusesTokenInputs(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusBadRequest, "application/json", `{}`))
	p := newProvider(t, up.URL)
	for _, model := range []string{"amazon.titan-embed-text-v2:0", "cohere.embed-english-v3"} {
		llmtest.RequireTextInputs(t, p, "bedrock", model, up)
	}
}

func TestFailures(t *testing.T) {
	llmtest.RunFailureTests(t, llmtest.Wire{
		Provider:   "bedrock",
		New:        func(t *testing.T, baseURL string) ports.Provider { return newProvider(t, baseURL) },
		Error:      writeError,
		Embeds:     true,
		Model:      model,
		EmbedModel: "amazon.titan-embed-text-v2:0",
	})
}

// Bedrock counts cache reads and writes apart from inputTokens: the usage's
// prompt is the sum, each class kept.
func TestUsageByClass(t *testing.T) {
	want := domain.Usage{PromptTokens: 7 + 900 + 100, CompletionTokens: 15, CacheReadTokens: 900, CacheWriteTokens: 100}
	classed := `"usage":{"inputTokens":7,"outputTokens":15,"totalTokens":1022,"cacheReadInputTokens":900,"cacheWriteInputTokens":100}`
	t.Run("json", func(t *testing.T) {
		body := strings.Replace(converse, `"usage":{"inputTokens":21,"outputTokens":3,"totalTokens":24}`, classed, 1)
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", body))
		resp, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat(model))
		if err != nil || resp.Usage != want {
			t.Fatalf("usage = %+v, %v; want %+v", resp.Usage, err, want)
		}
	})
	t.Run("stream", func(t *testing.T) {
		meta := strings.Replace(metadata, `"usage":{"inputTokens":25,"outputTokens":15,"totalTokens":40}`, classed, 1)
		_, resp, c := streamHello(t, meta)
		c.Expect(t, resp, []string{"Hel", "lo"}, "stop", want)
	})
}
