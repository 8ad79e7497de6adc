package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// events splits a server-sent events body into its data payloads, checking
// that every event is a single "data: " line followed by a blank line.
func events(t *testing.T, body string) []string {
	t.Helper()
	if !strings.HasSuffix(body, "\n\n") {
		t.Fatalf("the stream does not end with a complete event: %q", body)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("malformed event %q", ev)
		}
		out = append(out, data)
	}
	return out
}

// chunk is a chat.completion.chunk as a client decodes it; Usage is raw so
// that absent and null can be told apart.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      *string `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int `json:"index"`
				Function struct {
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
	Error *apiError       `json:"error"`
}

func decodeChunk(t *testing.T, data string) (c chunk) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		t.Fatalf("event %q: %v", data, err)
	}
	return c
}

func TestStreamWithUsage(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{NewRequestID: func() string { return "stream-1" }})
	rec := r.do("POST", "/v1/chat/completions",
		`{"model":"mock","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]}`,
		"X-Request-Id", "client-1")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/event-stream" || rec.Header().Get("X-Request-Id") != "stream-1" || rec.Header().Get("X-Client-Request-Id") != "client-1" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}
	evs := events(t, rec.Body.String())
	if len(evs) != 6 || evs[5] != "[DONE]" {
		t.Fatalf("events = %q", evs)
	}
	var chunks []chunk
	for _, data := range evs[:5] {
		c := decodeChunk(t, data)
		if c.ID != "chatcmpl-stream-1" || c.Object != "chat.completion.chunk" || c.Model != "mock" || c.Created == 0 ||
			c.Created != decodeChunk(t, evs[0]).Created {
			t.Errorf("chunk envelope %s", data)
		}
		chunks = append(chunks, c)
	}
	first := chunks[0].Choices[0]
	if first.Delta.Role == nil || *first.Delta.Role != "assistant" || first.Delta.Content == nil || *first.Delta.Content != "" || first.FinishReason != nil {
		t.Errorf("first chunk %s", evs[0])
	}
	for i, want := range []string{"Hello", " there"} {
		c := chunks[1+i].Choices[0]
		if c.Delta.Role != nil || c.Delta.Content == nil || *c.Delta.Content != want || c.FinishReason != nil {
			t.Errorf("content chunk %s", evs[1+i])
		}
	}
	if fin := chunks[3].Choices[0]; fin.FinishReason == nil || *fin.FinishReason != "stop" || fin.Delta.Content != nil {
		t.Errorf("finish chunk %s", evs[3])
	}
	for i, c := range chunks[:4] {
		if string(c.Usage) != "null" {
			t.Errorf("chunk %d usage = %s, want null", i, c.Usage)
		}
	}
	if last := chunks[4]; len(last.Choices) != 0 || !strings.Contains(evs[4], `"choices":[]`) ||
		string(last.Usage) != `{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}` {
		t.Errorf("usage chunk %s", evs[4])
	}

	trailer := rec.Result().Trailer
	for h, want := range map[string]string{"X-Tidygate-Model": "mock-chat", "X-Tidygate-Provider": "mock", "X-Tidygate-Deployment": "mock/mock-1",
		"X-Tidygate-Attempts": "2", "X-Tidygate-Cost-Usd": "0.001250"} {
		if got := trailer.Get(h); got != want {
			t.Errorf("trailer %s = %q, want %q", h, got, want)
		}
	}
	if o := trailer.Get("X-Tidygate-Overhead-Ms"); !overheadPattern.MatchString(o) {
		t.Errorf("trailer X-Tidygate-Overhead-Ms = %q", o)
	}
	if req := r.gw.chats[0]; !req.Stream {
		t.Error("the gateway got a request without Stream set")
	}
}

func TestStreamWithoutUsage(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions", `{"model":"mock-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	evs := events(t, rec.Body.String())
	if len(evs) != 5 || evs[4] != "[DONE]" {
		t.Fatalf("events = %q", evs)
	}
	for _, data := range evs[:4] {
		if strings.Contains(data, `"usage"`) {
			t.Errorf("usage sent without include_usage: %s", data)
		}
	}
}

func TestStreamOfNothing(t *testing.T) {
	gw := &fakeGateway{stream: func(context.Context, domain.ChatRequest, func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{FinishReason: "length"}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions", `{"model":"mock-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	evs := events(t, rec.Body.String())
	if len(evs) != 3 || evs[2] != "[DONE]" {
		t.Fatalf("events = %q", evs)
	}
	if fin := decodeChunk(t, evs[1]).Choices[0].FinishReason; fin == nil || *fin != "length" {
		t.Errorf("finish chunk %s", evs[1])
	}
}

// A tool call streamed without arguments (Anthropic sends one empty
// input_json_delta) gets "{}" before the finish chunk, as OpenAI always sends
// a JSON object; a call that got arguments keeps them as they were.
func TestStreamToolCallWithoutArguments(t *testing.T) {
	now := domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: "now"}}
	grep := domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_2", Name: "grep"}}
	gw := &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		for _, c := range []domain.ChatChunk{{Index: 0, Start: &now}, {Index: 0, ArgumentsDelta: ""},
			{Index: 1, Start: &grep}, {Index: 1, ArgumentsDelta: `{"a":`}, {Index: 1, ArgumentsDelta: `1}`}} {
			if err := emit(c); err != nil {
				return gateway.ChatResult{}, err
			}
		}
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{FinishReason: domain.FinishToolCalls}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions", `{"model":"mock-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	evs := events(t, rec.Body.String())
	args := map[int]string{}
	for _, data := range evs[:len(evs)-2] { // before the finish chunk and [DONE]
		for _, tc := range decodeChunk(t, data).Choices[0].Delta.ToolCalls {
			args[tc.Index] += tc.Function.Arguments
		}
	}
	if args[0] != "{}" || args[1] != `{"a":1}` {
		t.Errorf("arguments = %v, want {} and {\"a\":1}: %s", args, rec.Body)
	}
	if fin := decodeChunk(t, evs[len(evs)-2]).Choices[0].FinishReason; fin == nil || *fin != domain.FinishToolCalls {
		t.Errorf("finish chunk %s", evs[len(evs)-2])
	}
}

func TestStreamErrorBeforeFirstChunk(t *testing.T) {
	gw := &fakeGateway{stream: func(context.Context, domain.ChatRequest, func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		return gateway.ChatResult{}, &domain.Error{Kind: domain.KindBudgetExceeded, Message: "monthly team budget exhausted"}
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions", `{"model":"mock-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	if e := errorOf(t, rec, 429); str(e.Code) != "budget_exceeded" {
		t.Errorf("error = %+v", e)
	}
	if o := rec.Header().Get("X-Tidygate-Overhead-Ms"); !overheadPattern.MatchString(o) {
		t.Errorf("X-Tidygate-Overhead-Ms = %q", o)
	}
}

func TestStreamErrorMidStream(t *testing.T) {
	gw := &fakeGateway{stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		if err := emit(domain.ChatChunk{Delta: "Hel"}); err != nil {
			return gateway.ChatResult{}, err
		}
		return gateway.ChatResult{Result: okResult}, &domain.Error{Kind: domain.KindUpstream, Message: "provider \"mock\" failed",
			Err: errors.New("connection reset")}
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions", `{"model":"mock-chat","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	if rec.Code != 200 {
		t.Fatalf("status = %d", rec.Code)
	}
	evs := events(t, rec.Body.String())
	if len(evs) != 3 {
		t.Fatalf("events = %q", evs)
	}
	last := decodeChunk(t, evs[2])
	if last.Error == nil || last.Error.Type != "server_error" || str(last.Error.Code) != "upstream_error" ||
		strings.Contains(evs[2], "connection reset") || !strings.Contains(evs[2], `"param":null`) {
		t.Errorf("error event %s", evs[2])
	}
	if strings.Contains(rec.Body.String(), "[DONE]") {
		t.Error("a failed stream ended with [DONE]")
	}
	if log := r.logged(); strings.Count(log, "request failed") != 1 || !strings.Contains(log, "after_stream_start=true") ||
		!strings.Contains(log, "connection reset") {
		t.Errorf("log:\n%s", log)
	}
	if o := rec.Result().Trailer.Get("X-Tidygate-Overhead-Ms"); !overheadPattern.MatchString(o) {
		t.Errorf("trailer X-Tidygate-Overhead-Ms = %q", o)
	}
}

// TestClientDisconnectCancelsTheCall cancels a client's request while the
// gateway is working on it and checks that the gateway's context ends.
func TestClientDisconnectCancelsTheCall(t *testing.T) {
	for _, stream := range []bool{false, true} {
		started := make(chan struct{})
		ended := make(chan error, 1)
		wait := func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			ended <- ctx.Err()
			return domain.Wrap(domain.KindUnavailable, ctx.Err(), "the client went away")
		}
		gw := &fakeGateway{
			chat: func(ctx context.Context, _ domain.ChatRequest) (gateway.ChatResult, error) {
				return gateway.ChatResult{}, wait(ctx)
			},
			stream: func(ctx context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
				if err := emit(domain.ChatChunk{Delta: "first"}); err != nil {
					return gateway.ChatResult{}, err
				}
				return gateway.ChatResult{}, wait(ctx)
			},
		}
		r := newRig(t, gw, httpapi.Options{})
		srv := httptest.NewServer(r.h)
		ctx, cancel := context.WithCancel(context.Background())
		body := `{"model":"mock-chat","stream":` + map[bool]string{false: "false", true: "true"}[stream] + `,"messages":[{"role":"user","content":"Hi"}]}`
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+goodKey)
		req.Header.Set("X-Audit-Reason", "unit test")
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := srv.Client().Do(req); err == nil {
				// A stream's headers arrive before the cancel.
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		<-started
		cancel()
		if err := <-ended; !errors.Is(err, context.Canceled) {
			t.Errorf("stream=%v: the gateway's context ended with %v, want context.Canceled", stream, err)
		}
		<-done
		srv.Close()
	}
}

func TestTheModelThatAnsweredIsNamed(t *testing.T) {
	spare := domain.Model{Name: "spare-chat", Type: domain.ModelChat, Provider: "mock"}
	fallback := gateway.Result{Model: spare, FallbackUsed: true, Attempts: 2}
	gw := &fakeGateway{
		chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
			return gateway.ChatResult{Result: fallback, Response: domain.ChatResponse{Content: "hi", FinishReason: "stop"}}, nil
		},
		stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
			for _, c := range []domain.ChatChunk{{Delta: "hi", Model: spare.Name}, {FinishReason: "stop", Model: spare.Name}} {
				if err := emit(c); err != nil {
					return gateway.ChatResult{Result: fallback}, err
				}
			}
			return gateway.ChatResult{Result: fallback, Response: domain.ChatResponse{Content: "hi", FinishReason: "stop"}}, nil
		},
	}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions", `{"model":"mock","messages":[{"role":"user","content":"Hi"}]}`)
	var body struct{ Model string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 || body.Model != spare.Name {
		t.Fatalf("status %d, model %q (%v); want the fallback that answered", rec.Code, body.Model, err)
	}
	rec = r.do("POST", "/v1/chat/completions", `{"model":"mock","stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
	evs := events(t, rec.Body.String())
	for _, data := range evs[:len(evs)-1] {
		if c := decodeChunk(t, data); c.Model != spare.Name {
			t.Fatalf("chunk %s names %q, want the fallback that answered", data, c.Model)
		}
	}

	// Messages: the answer names the fallback, streamed (message_start,
	// sent once the fallback's first chunk is there) as not.
	rec = r.do("POST", "/v1/messages", `{"model":"mock","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`)
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 || body.Model != spare.Name {
		t.Fatalf("messages: status %d, model %q (%v); want the fallback that answered", rec.Code, body.Model, err)
	}
	rec = r.do("POST", "/v1/messages", `{"model":"mock","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`)
	names, data := namedEvents(t, rec.Body.String())
	if len(names) == 0 || names[0] != "message_start" {
		t.Fatalf("messages stream: events %v", names)
	}
	if msg, _ := data[0]["message"].(map[string]any); msg["model"] != spare.Name {
		t.Fatalf("message_start names %v, want the fallback that answered, %q", msg["model"], spare.Name)
	}
}

// TestAnAliasAskedForIsAnsweredByItsModelsName: every dialect, streamed
// or not, names the catalogue model that answered (its chunks name it, as
// the gateway's do), as a passed-through answer names it: an alias asked
// for is resolved, where the chat completions answers and the streams of
// the others named the alias and the unstreamed Messages and Responses
// answers the model.
func TestAnAliasAskedForIsAnsweredByItsModelsName(t *testing.T) {
	answered := gateway.Result{Model: domain.Model{Name: "mock-chat", Aliases: []string{"mini"}, Type: domain.ModelChat, Provider: "mock"}, Attempts: 1}
	gw := &fakeGateway{
		chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
			return gateway.ChatResult{Result: answered, Response: domain.ChatResponse{Content: "hi", FinishReason: "stop"}}, nil
		},
		stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
			for _, c := range []domain.ChatChunk{{Delta: "hi", Model: "mock-chat"}, {FinishReason: "stop", Model: "mock-chat"}} {
				if err := emit(c); err != nil {
					return gateway.ChatResult{Result: answered}, err
				}
			}
			return gateway.ChatResult{Result: answered, Response: domain.ChatResponse{Content: "hi", FinishReason: "stop"}}, nil
		},
		embed: func(_ context.Context, req domain.EmbedRequest) (gateway.EmbedResult, error) {
			return gateway.EmbedResult{Result: answered, Response: domain.EmbedResponse{Vectors: [][]float32{{1}}}}, nil
		},
	}
	r := newRig(t, gw, httpapi.Options{})
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"mini","messages":[{"role":"user","content":"Hi"}]}`},
		{"/v1/messages", `{"model":"mini","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`},
		{"/v1/responses", `{"model":"mini","input":"Hi","store":false}`},
		{"/v1/embeddings", `{"model":"mini","input":"Hi"}`},
	} {
		rec := r.do("POST", tc.path, tc.body)
		var body struct{ Model string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != 200 || body.Model != "mock-chat" {
			t.Errorf("%s: status %d, model %q (%v); want the model behind the alias", tc.path, rec.Code, body.Model, err)
		}
		if tc.path == "/v1/embeddings" {
			continue
		}
		rec = r.do("POST", tc.path, strings.Replace(tc.body, "{", `{"stream":true,`, 1))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"model":"mock-chat"`) || strings.Contains(rec.Body.String(), `"model":"mini"`) {
			t.Errorf("%s streamed: status %d, want the model behind the alias in every event that names a model: %s", tc.path, rec.Code, rec.Body)
		}
	}
}

// TestAStreamWithoutChunksNamesTheModelThatAnswered: a stream whose call
// ended without a chunk (an answer with nothing in it) names the model
// that answered, as the unstreamed answer does, not the alias asked for.
func TestAStreamWithoutChunksNamesTheModelThatAnswered(t *testing.T) {
	answered := gateway.Result{Model: domain.Model{Name: "mock-chat", Aliases: []string{"mini"}, Type: domain.ModelChat, Provider: "mock"}, Attempts: 1}
	gw := &fakeGateway{stream: func(context.Context, domain.ChatRequest, func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		return gateway.ChatResult{Result: answered, Response: domain.ChatResponse{FinishReason: "stop"}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}`},
		{"/v1/messages", `{"model":"mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`},
		{"/v1/responses", `{"model":"mini","stream":true,"input":"Hi","store":false}`},
	} {
		rec := r.do("POST", tc.path, tc.body)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"model":"mock-chat"`) || strings.Contains(rec.Body.String(), `"model":"mini"`) {
			t.Errorf("%s: status %d, want the model that answered in every event that names one: %s", tc.path, rec.Code, rec.Body)
		}
	}
}
