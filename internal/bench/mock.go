package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultReply is the mock's answer when MockOptions.Reply is empty: about
// 1 KB of text, so that a non-streaming response is about 1.2 KB, the size
// used for the loopback floor in the gateway comparisons.
var DefaultReply = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 22)

// MockOptions configure the mock upstream.
type MockOptions struct {
	// Latency is how long the mock waits before it answers: before the
	// response of a plain call, before the first event of a stream.
	Latency time.Duration
	// ChunkDelay is the pause between the events of a stream.
	ChunkDelay time.Duration
	// Reply is the assistant's answer; DefaultReply when empty.
	Reply string
	// Chunks is how many content events a stream splits the reply into;
	// 8 when zero or negative.
	Chunks int
}

// Mock is a fast OpenAI-compatible upstream for benchmarks. It answers
// POST /v1/chat/completions (JSON, or server-sent events when the request
// says "stream": true, with a usage chunk when stream_options.include_usage
// is set), POST /v1/responses (a Response object, or its event stream) and
// POST /v1/embeddings, echoing the requested model; anything else gets an
// OpenAI-shaped 404. It keeps no state but a request counter.
type Mock struct {
	opts   MockOptions
	chunks []string
	served atomic.Int64
}

// NewMock returns a mock upstream with opts' latency and reply.
func NewMock(opts MockOptions) *Mock {
	if opts.Reply == "" {
		opts.Reply = DefaultReply
	}
	if opts.Chunks <= 0 {
		opts.Chunks = 8
	}
	return &Mock{opts: opts, chunks: split(opts.Reply, opts.Chunks)}
}

// Served returns how many requests the mock has answered with 200.
func (m *Mock) Served() int64 { return m.served.Load() }

// ServeHTTP answers one OpenAI API request.
func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		m.chat(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/embeddings":
		m.embeddings(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/responses":
		m.responses(w, r)
	default:
		mockError(w, http.StatusNotFound, "not_found", fmt.Sprintf("the mock serves no %s %s", r.Method, r.URL.Path))
	}
}

// mockChatRequest is the part of a chat request the mock reads.
type mockChatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type mockUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func newMockUsage(prompt, completion int) *mockUsage {
	return &mockUsage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

type mockMessage struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type mockChoice struct {
	Index        int          `json:"index"`
	Message      *mockMessage `json:"message,omitempty"`
	Delta        *mockMessage `json:"delta,omitempty"`
	FinishReason *string      `json:"finish_reason"`
}

type mockCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []mockChoice `json:"choices"`
	Usage   *mockUsage   `json:"usage,omitempty"`
}

// accept reads a chat or Responses request (what names it in the error),
// waits the mock's latency, and counts it; ok is false when it has
// answered the request with an error, or the client went away.
func (m *Mock) accept(w http.ResponseWriter, r *http.Request, what string) (req mockChatRequest, bodySize int, n int64, ok bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		mockError(w, http.StatusBadRequest, "invalid_request_error", "cannot read the body: "+err.Error())
		return req, 0, 0, false
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		mockError(w, http.StatusBadRequest, "invalid_request_error", "the body is not "+what+" with a model")
		return req, 0, 0, false
	}
	if !m.wait(r, m.opts.Latency) {
		return req, 0, 0, false
	}
	return req, len(body), m.served.Add(1), true
}

func (m *Mock) chat(w http.ResponseWriter, r *http.Request) {
	req, size, n, ok := m.accept(w, r, "a chat request")
	if !ok {
		return
	}
	usage := newMockUsage(size/4, len(m.opts.Reply)/4)
	c := mockCompletion{ID: fmt.Sprintf("chatcmpl-mock-%d", n), Created: time.Now().Unix(), Model: req.Model}
	if !req.Stream {
		stop := "stop"
		c.Object = "chat.completion"
		c.Choices = []mockChoice{{Message: &mockMessage{Role: "assistant", Content: m.opts.Reply}, FinishReason: &stop}}
		c.Usage = usage
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c)
		return
	}
	m.stream(w, r, c, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, usage)
}

// stream writes a chat completion as OpenAI's server-sent events: the role,
// the content in pieces, the finish reason, the usage when asked, [DONE].
func (m *Mock) stream(w http.ResponseWriter, r *http.Request, c mockCompletion, withUsage bool, usage *mockUsage) {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	c.Object = "chat.completion.chunk"
	send := func(choices []mockChoice, u *mockUsage) bool {
		c.Choices, c.Usage = choices, u
		b, err := json.Marshal(c)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	if !send([]mockChoice{{Delta: &mockMessage{Role: "assistant"}}}, nil) {
		return
	}
	for _, piece := range m.chunks {
		if !m.wait(r, m.opts.ChunkDelay) || !send([]mockChoice{{Delta: &mockMessage{Content: piece}}}, nil) {
			return
		}
	}
	stop := "stop"
	if !send([]mockChoice{{Delta: &mockMessage{}, FinishReason: &stop}}, nil) {
		return
	}
	if withUsage && !send([]mockChoice{}, usage) {
		return
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}

type mockEmbeddingRequest struct {
	Model      string          `json:"model"`
	Input      json.RawMessage `json:"input"`
	Dimensions int             `json:"dimensions"`
}

type mockEmbedding struct {
	Object    string    `json:"object"`
	Index     int       `json:"index"`
	Embedding []float64 `json:"embedding"`
}

func (m *Mock) embeddings(w http.ResponseWriter, r *http.Request) {
	var req mockEmbeddingRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model == "" || len(req.Input) == 0 {
		mockError(w, http.StatusBadRequest, "invalid_request_error", "the body is not an embeddings request with a model and an input")
		return
	}
	inputs := 1
	var list []json.RawMessage
	if json.Unmarshal(req.Input, &list) == nil {
		inputs = len(list)
	}
	dims := req.Dimensions
	if dims <= 0 {
		dims = 8
	}
	if !m.wait(r, m.opts.Latency) {
		return
	}
	m.served.Add(1)
	data := make([]mockEmbedding, inputs)
	for i := range data {
		vec := make([]float64, dims)
		for d := range vec {
			vec[d] = float64(i+d+1) / float64(dims+inputs)
		}
		data[i] = mockEmbedding{Object: "embedding", Index: i, Embedding: vec}
	}
	tokens := len(req.Input) / 4
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Object string          `json:"object"`
		Data   []mockEmbedding `json:"data"`
		Model  string          `json:"model"`
		Usage  mockUsage       `json:"usage"`
	}{"list", data, req.Model, mockUsage{PromptTokens: tokens, TotalTokens: tokens}})
}

// wait pauses for d, or until the client goes away; it reports whether the
// client is still there.
func (m *Mock) wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func mockError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": nil}})
}

// split cuts s into n pieces of about equal length in runes (fewer when s
// is short).
func split(s string, n int) []string {
	runes := []rune(s)
	size := max(1, (len(runes)+n-1)/n)
	var out []string
	for len(runes) > size {
		out = append(out, string(runes[:size]))
		runes = runes[size:]
	}
	return append(out, string(runes))
}
