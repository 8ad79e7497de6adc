package gemini_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/gemini"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

const apiKey = "gemini-key-0123456789abcdef"

func newProvider(t testing.TB, baseURL string) *gemini.Provider {
	t.Helper()
	p, err := gemini.New(gemini.Options{BaseURL: baseURL + "/v1beta/", APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// googleError answers in Google's error format.
func googleError(w http.ResponseWriter, status int, message string) {
	names := map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
		429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"error": map[string]any{"code": status, "message": message, "status": names[status]}})
	_, _ = w.Write(body)
}

// sameJSON fails the test unless got and want are the same JSON value.
func sameJSON(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("the test's own %s is not JSON: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("sent\n%s\nwant\n%s", got, want)
	}
}

func sse(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("data: " + e + "\r\n\r\n")
	}
	return b.String()
}

func TestNewValidates(t *testing.T) {
	for _, opts := range []gemini.Options{
		{}, {APIKey: apiKey, BaseURL: "generativelanguage.googleapis.com"}, {APIKey: apiKey, Timeout: -1},
	} {
		if _, err := gemini.New(opts); err == nil {
			t.Errorf("New accepted %+v", opts)
		}
	}
}

// TestChat checks the exact request (path, credentials, body) of a plain
// conversation with every sampling parameter, and how the answer and its
// usage classes are read.
func TestChat(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{
	  "candidates":[{"content":{"role":"model","parts":[{"text":"Hel"},{"text":"lo."}]},"finishReason":"STOP","index":0}],
	  "usageMetadata":{"promptTokenCount":120,"candidatesTokenCount":2,"totalTokenCount":152,"cachedContentTokenCount":100,
	    "thoughtsTokenCount":30,"toolUsePromptTokenCount":5},
	  "modelVersion":"gemini-2.5-flash-001","responseId":"resp-1"}`))
	req := llmtest.Chat("gemini-2.5-flash")
	req.Messages = append(req.Messages,
		domain.Message{Role: domain.RoleAssistant, Content: "Hi?"},
		domain.Message{Role: domain.RoleDeveloper, Content: "Answer in English."},
		domain.Message{Role: domain.RoleUser, Content: "Again."},
		domain.Message{Role: domain.RoleUser, Content: "Please."})
	topK := 40
	req.Temperature, req.TopP, req.TopK, req.Stop = llmtest.Float(0.5), llmtest.Float(0.9), &topK, []string{"END"}
	seed := int64(math.MinInt32)
	req.Seed, req.PresencePenalty, req.FrequencyPenalty = &seed, llmtest.Float(0.5), llmtest.Float(-1.5)
	resp, err := newProvider(t, up.URL).Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Usage{PromptTokens: 125, CompletionTokens: 32, CacheReadTokens: 100, ReasoningTokens: 30}
	if resp.Content != "Hello." || resp.FinishReason != "stop" || resp.Usage != want || resp.ID != "resp-1" ||
		resp.Model != "gemini-2.5-flash-001" || resp.Blocks != nil {
		t.Errorf("Chat = %+v; want Hello., stop, usage %+v", resp, want)
	}
	sent := up.Last(t)
	if sent.Method != http.MethodPost || sent.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || len(sent.Query) != 0 {
		t.Errorf("sent %s %s?%s", sent.Method, sent.Path, sent.Query.Encode())
	}
	if sent.Header.Get("X-Goog-Api-Key") != apiKey || sent.Header.Get("Authorization") != "" || sent.Query.Get("key") != "" {
		t.Errorf("credentials: x-goog-api-key %q, Authorization %q; want the key in x-goog-api-key only",
			sent.Header.Get("X-Goog-Api-Key"), sent.Header.Get("Authorization"))
	}
	sameJSON(t, sent.Body, `{
	  "systemInstruction":{"parts":[{"text":"You are terse."},{"text":"Answer in English."}]},
	  "contents":[
	    {"role":"user","parts":[{"text":"Say hello."}]},
	    {"role":"model","parts":[{"text":"Hi?"}]},
	    {"role":"user","parts":[{"text":"Again."},{"text":"Please."}]}],
	  "generationConfig":{"maxOutputTokens":64,"temperature":0.5,"topP":0.9,"topK":40,"seed":-2147483648,
	    "presencePenalty":0.5,"frequencyPenalty":-1.5,"stopSequences":["END"]}}`)
}

// A seed of 0 is a seed, sent alone; one beyond the API's 32 bits is
// refused by name before any call.
func TestChatSeeds(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}`))
	req := llmtest.Chat("m")
	req.MaxTokens, req.Seed = 0, new(int64)
	if _, err := newProvider(t, up.URL).Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	config, _ := json.Marshal(up.Last(t).JSON(t)["generationConfig"])
	sameJSON(t, config, `{"seed":0}`)
	seed := int64(math.MaxInt32) + 1
	req.Seed = &seed
	for name, p := range map[string]*gemini.Provider{"gemini": newProvider(t, up.URL), "vertex": newVertex(t, up.URL, newTokenServer(t))} {
		_, err := p.Chat(context.Background(), req)
		if de := llmtest.RequireError(t, err, domain.KindInvalid); de.Param != "seed" || !strings.HasPrefix(de.Message, name+": ") {
			t.Errorf("%s: a seed beyond 32 bits: %+v; want it refused by %s, naming seed", name, de, name)
		}
	}
	if n := len(up.Requests()); n != 1 {
		t.Errorf("%d requests sent; want the first only", n)
	}
}

func TestChatFinishReasons(t *testing.T) {
	for reason, want := range map[string]string{"MAX_TOKENS": "length", "SAFETY": "content_filter",
		"RECITATION": "content_filter", "PROHIBITED_CONTENT": "content_filter", "OTHER": "other"} {
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
			`{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"`+reason+`"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}`))
		resp, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat("m"))
		if err != nil || resp.FinishReason != want {
			t.Errorf("%s: finish %q, error %v; want %q", reason, resp.FinishReason, err, want)
		}
	}
	// A blocked prompt has no candidate: the answer is empty, filtered.
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":7}}`))
	resp, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat("m"))
	if err != nil || resp.FinishReason != "content_filter" || resp.Content != "" || resp.Usage.PromptTokens != 7 {
		t.Errorf("blocked prompt: %+v, %v", resp, err)
	}
	// No candidate and no block reason is no answer at all.
	up = llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"usageMetadata":{"promptTokenCount":7}}`))
	_, err = newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat("m"))
	llmtest.RequireKind(t, err, domain.KindUpstream)
}

// TestChatStream checks the streamed call: its URL (alt=sse), the text as
// it arrives, and the usage of the last event.
func TestChatStream(t *testing.T) {
	body := sse(
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]}}],"usageMetadata":{"promptTokenCount":9},"modelVersion":"gemini-2.5-flash"}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]}}],"usageMetadata":{"promptTokenCount":9}}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"."}]},"finishReason":"STOP"}],`+
			`"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":3,"thoughtsTokenCount":4}}`)
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", body))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("gemini-2.5-flash"), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	c.Expect(t, resp, []string{"Hel", "lo", "."}, "stop", domain.Usage{PromptTokens: 9, CompletionTokens: 7, ReasoningTokens: 4})
	sent := up.Last(t)
	if sent.Path != "/v1beta/models/gemini-2.5-flash:streamGenerateContent" || sent.Query.Encode() != "alt=sse" ||
		sent.Header.Get("Accept") != "text/event-stream" || sent.Header.Get("X-Goog-Api-Key") != apiKey {
		t.Errorf("sent %s?%s with headers %v", sent.Path, sent.Query.Encode(), sent.Header)
	}
	if _, ok := sent.JSON(t)["stream"]; ok {
		t.Error("the body says stream; the method does")
	}
}

// TestChatStreamEndsEarly: a stream that ends before a finish reason, or
// reports an error, is a failure, never a short answer.
func TestChatStreamEndsEarly(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		kind domain.Kind
	}{
		"no finish reason": {sse(`{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}`), domain.KindUpstream},
		"cut in an event":  {"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel", domain.KindUpstream},
		"empty":            {"", domain.KindUpstream},
		"error event":      {sse(`{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}`, `{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}`), domain.KindUpstream},
		"quota event":      {sse(`{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}`), domain.KindRateLimited},
	} {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", tc.body))
			var c llmtest.Chunks
			_, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("m"), c.Emit)
			de := llmtest.RequireError(t, err, tc.kind)
			if !strings.Contains(de.Message, "gemini") {
				t.Errorf("message %q does not name gemini", de.Message)
			}
			for _, ch := range c.All {
				if ch.FinishReason != "" {
					t.Errorf("a failed stream emitted a final chunk %+v", ch)
				}
			}
		})
	}
}

// TestRetryInfo: Google says how long to wait in a RetryInfo detail.
func TestRetryInfo(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusTooManyRequests, "application/json",
		`{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED",
		  "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}`))
	_, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat("m"))
	if de := llmtest.RequireError(t, err, domain.KindRateLimited); de.RetryAfter.Seconds() != 12 {
		t.Errorf("RetryAfter = %s; want 12s", de.RetryAfter)
	}
}

func TestEmbed(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"embeddings":[{"values":[0.5,1]},{"values":[1,0.5]}]}`))
	resp, err := newProvider(t, up.URL).Embed(context.Background(),
		domain.EmbedRequest{Model: "gemini-embedding-001", Inputs: []string{"hello", "world!!!"}, Dimensions: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.Vectors, [][]float32{{0.5, 1}, {1, 0.5}}) || resp.Usage.PromptTokens != 4 {
		t.Errorf("Embed = %+v; want the two vectors and an estimate of 4 tokens", resp)
	}
	sent := up.Last(t)
	if sent.Path != "/v1beta/models/gemini-embedding-001:batchEmbedContents" || sent.Header.Get("X-Goog-Api-Key") != apiKey {
		t.Errorf("sent %s", sent.Path)
	}
	sameJSON(t, sent.Body, `{"requests":[
	  {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"hello"}]},"outputDimensionality":2},
	  {"model":"models/gemini-embedding-001","content":{"parts":[{"text":"world!!!"}]},"outputDimensionality":2}]}`)

	up.Handle(llmtest.Reply(http.StatusOK, "application/json", `{"embeddings":[{"values":[0.5,1]}]}`))
	_, err = newProvider(t, up.URL).Embed(context.Background(), domain.EmbedRequest{Model: "e", Inputs: []string{"a", "b"}})
	llmtest.RequireKind(t, err, domain.KindUpstream)
}

// TestEmbedRefusesTokenInputs: the Gemini API and Vertex AI embed text
// only; a request of token ids is refused, naming input, before any call.
// The upstream refuses everything, so that a request sent fails the test
// at once.
func TestEmbedRefusesTokenInputs(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusBadRequest, "application/json", `{}`))
	llmtest.RequireTextInputs(t, newProvider(t, up.URL), "gemini", "gemini-embedding-001", up)
	llmtest.RequireTextInputs(t, newVertex(t, up.URL, newTokenServer(t)), "vertex", "text-embedding-005", up)
}

func TestFailures(t *testing.T) {
	llmtest.RunFailureTests(t, llmtest.Wire{
		Provider:   "gemini",
		APIKey:     apiKey,
		New:        func(t *testing.T, baseURL string) ports.Provider { return newProvider(t, baseURL) },
		Error:      googleError,
		Embeds:     true,
		Model:      "gemini-2.5-flash",
		EmbedModel: "gemini-embedding-001",
	})
}
