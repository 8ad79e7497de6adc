// Package llmtest holds what the provider adapters' tests share: a fake
// upstream that records what it was sent, request builders, assertions on
// error kinds, and one suite of failure tests that every HTTP provider must
// pass against its own documented error format.
package llmtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// maxRecorded bounds how many requests an Upstream keeps, so that a fuzz
// target serving thousands of calls does not grow without bound.
const maxRecorded = 64

// Upstream is a fake provider API on a local httptest server. It records
// the requests it receives (the last 64) and answers with its handler.
type Upstream struct {
	URL string

	mu       sync.Mutex
	requests []Recorded
	handler  http.HandlerFunc
}

// Recorded is one request the fake upstream received.
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// JSON decodes the recorded body as a JSON object, failing the test if it
// is not one.
func (r Recorded) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// NewUpstream starts a fake upstream answering with handler; it is closed
// when the test ends.
func NewUpstream(t testing.TB, handler http.HandlerFunc) *Upstream {
	t.Helper()
	u := &Upstream{handler: handler}
	srv := httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

// Handle replaces the handler for the requests that follow.
func (u *Upstream) Handle(handler http.HandlerFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.handler = handler
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	if len(u.requests) == maxRecorded {
		u.requests = append(u.requests[:0], u.requests[1:]...)
	}
	u.requests = append(u.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
	h := u.handler
	u.mu.Unlock()
	h(w, r)
}

// Requests returns the requests received so far.
func (u *Upstream) Requests() []Recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Recorded(nil), u.requests...)
}

// Last returns the last request received, failing the test if there is none.
func (u *Upstream) Last(t testing.TB) Recorded {
	t.Helper()
	reqs := u.Requests()
	if len(reqs) == 0 {
		t.Fatal("the upstream received no request")
	}
	return reqs[len(reqs)-1]
}

// WantFields fails the test unless the recorded request's JSON body holds
// each field of the JSON object want, exactly, and none of the fields
// named in absent.
func (r Recorded) WantFields(t testing.TB, want string, absent ...string) {
	t.Helper()
	body := r.JSON(t)
	var fields map[string]any
	if err := json.Unmarshal([]byte(want), &fields); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if !reflect.DeepEqual(body[k], v) {
			got, _ := json.Marshal(body[k])
			w, _ := json.Marshal(v)
			t.Errorf("%s = %s; want %s", k, got, w)
		}
	}
	for _, k := range absent {
		if v, ok := body[k]; ok {
			t.Errorf("%s = %v was sent", k, v)
		}
	}
}

// Reply returns a handler answering with status, content type and body.
func Reply(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// OpenAIError answers in OpenAI's error format, which Azure OpenAI and the
// OpenAI-compatible servers share: {"error": {"message": …, …}}.
func OpenAIError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": message, "type": "invalid_request_error", "param": nil, "code": nil}})
	_, _ = w.Write(body)
}

// Hang is a handler that never answers: it returns only when the client
// gives up, so that the caller's deadline is what ends the call. It reads
// the request body first: net/http notices that a client went away (and
// cancels the request's context) only once the body has been read, so a
// handler that leaves it unread would hang for ever, and the test server's
// Close with it.
func Hang(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// Chat returns a chat request for model with a system prompt and one user
// message, and the output cap the gateway always sets.
func Chat(model string) domain.ChatRequest {
	return domain.ChatRequest{
		Model: model,
		Messages: []domain.Message{
			{Role: domain.RoleSystem, Content: "You are terse."},
			{Role: domain.RoleUser, Content: "Say hello."},
		},
		MaxTokens: 64,
	}
}

// Float returns a pointer to v, for the request's optional parameters.
func Float(v float64) *float64 { return &v }

// Chunks collects the chunks a stream emits.
type Chunks struct {
	All []domain.ChatChunk
}

// Emit records c; pass it as a ChatStream emit function.
func (c *Chunks) Emit(chunk domain.ChatChunk) error {
	c.All = append(c.All, chunk)
	return nil
}

// Text returns the concatenated deltas.
func (c *Chunks) Text() string {
	var b strings.Builder
	for _, ch := range c.All {
		b.WriteString(ch.Delta)
	}
	return b.String()
}

// Final returns the last chunk, failing the test if there is none.
func (c *Chunks) Final(t testing.TB) domain.ChatChunk {
	t.Helper()
	if len(c.All) == 0 {
		t.Fatal("the stream emitted no chunk")
	}
	return c.All[len(c.All)-1]
}

// Expect fails the test unless the stream emitted exactly deltas, then a
// final chunk with finish and usage, and resp agrees with them.
func (c *Chunks) Expect(t testing.TB, resp domain.ChatResponse, deltas []string, finish string, usage domain.Usage) {
	t.Helper()
	var got []string
	for _, ch := range c.All[:max(len(c.All)-1, 0)] {
		got = append(got, ch.Delta)
	}
	if !slices.Equal(got, deltas) {
		t.Fatalf("deltas %q; want %q and a final chunk", got, deltas)
	}
	if final := c.Final(t); final.Delta != "" || final.FinishReason != finish || final.Usage == nil || *final.Usage != usage {
		t.Errorf("final chunk %+v; want finish %q and usage %+v", final, finish, usage)
	}
	if resp.Content != strings.Join(deltas, "") || resp.FinishReason != finish || resp.Usage != usage {
		t.Errorf("assembled %+v; want content %q, finish %q, usage %+v", resp, strings.Join(deltas, ""), finish, usage)
	}
}

// ServeStream has the upstream answer with body as a stream of
// contentType, streams a chat completion of model through p, and checks
// the result with CheckStream: the body of every stream fuzz target.
func ServeStream(t testing.TB, up *Upstream, p ports.Provider, contentType string, body []byte, model string) {
	t.Helper()
	up.Handle(Reply(http.StatusOK, contentType, string(body)))
	var c Chunks
	resp, err := p.ChatStream(context.Background(), Chat(model), c.Emit)
	CheckStream(t, resp, &c, err)
}

// RequireKind fails the test unless err is a *domain.Error of kind.
func RequireKind(t testing.TB, err error, kind domain.Kind) {
	t.Helper()
	_ = RequireError(t, err, kind)
}

// RequireError fails the test unless err is a *domain.Error of kind, and
// returns it.
func RequireError(t testing.TB, err error, kind domain.Kind) *domain.Error {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *domain.Error; want kind %s", err, err, kind)
	}
	if de.Kind != kind || !errors.Is(err, kind) {
		t.Fatalf("error %q has kind %s; want %s", de.Error(), de.Kind, kind)
	}
	return de
}

// RequireTextInputs fails the test unless p refuses an embeddings request
// of token ids on model, a provider whose models take text only, as a
// domain.KindInvalid error of code unsupported_feature naming input and
// provider, without sending anything to up.
func RequireTextInputs(t testing.TB, p ports.Provider, provider, model string, up *Upstream) {
	t.Helper()
	before := len(up.Requests())
	_, err := p.Embed(context.Background(), domain.EmbedRequest{Model: model, Tokens: [][]int{{9906, 1917}}})
	de := RequireError(t, err, domain.KindInvalid)
	if de.Code != "unsupported_feature" || de.Param != "input" || !strings.Contains(de.Message, provider) ||
		!strings.Contains(de.Message, "token-array input") {
		t.Errorf("error %+v; want unsupported_feature naming input, %s and the token-array input", de, provider)
	}
	if n := len(up.Requests()) - before; n != 0 {
		t.Errorf("%d requests sent for a refused token input", n)
	}
}

// Short returns a context that expires soon, for tests in which the
// upstream hangs. Only the error kind is asserted, never a duration.
func Short(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

// Wire describes one HTTP provider for the shared failure tests.
type Wire struct {
	// Provider is the name the adapter puts in its messages.
	Provider string
	// APIKey is the secret the adapter was built with; no message may contain it.
	APIKey string
	// New builds the adapter against the fake upstream at baseURL.
	New func(t *testing.T, baseURL string) ports.Provider
	// Error answers with the provider's documented error format.
	Error func(w http.ResponseWriter, status int, message string)
	// Embeds is true when the provider has an embeddings API.
	Embeds bool
	// Model is the upstream model the requests name.
	Model string
	// EmbedModel is the upstream model the embedding requests name.
	EmbedModel string
}

// Call is one way to call a provider, named for subtests.
type Call struct {
	Name string
	Do   func(ctx context.Context, p ports.Provider) error
}

func (w Wire) calls() []Call {
	calls := []Call{
		{"chat", func(ctx context.Context, p ports.Provider) error {
			_, err := p.Chat(ctx, Chat(w.Model))
			return err
		}},
		{"stream", func(ctx context.Context, p ports.Provider) error {
			var c Chunks
			_, err := p.ChatStream(ctx, Chat(w.Model), c.Emit)
			return err
		}},
	}
	if w.Embeds {
		calls = append(calls, Call{"embed", func(ctx context.Context, p ports.Provider) error {
			_, err := p.Embed(ctx, domain.EmbedRequest{Model: w.EmbedModel, Inputs: []string{"hello"}})
			return err
		}})
	}
	return calls
}

// statusCase is one error answer of the shared failure tests: the status,
// the provider's message, the kind it must become and what the message
// must then contain.
type statusCase struct {
	status  int
	message string
	kind    domain.Kind
	want    string
}

func (w Wire) statusCases() []statusCase {
	return []statusCase{
		{http.StatusTooManyRequests, "slow down", domain.KindRateLimited, "slow down"},
		{http.StatusInternalServerError, "boom", domain.KindUpstream, "500"},
		{http.StatusServiceUnavailable, "boom", domain.KindUpstream, "503"},
		{http.StatusBadRequest, "no such thing as model zz, key " + w.APIKey, domain.KindInvalid, "no such thing as model zz"},
		{http.StatusNotFound, "no such thing as model zz", domain.KindInvalid, "no such thing as model zz"},
		{http.StatusUnprocessableEntity, "no such thing as model zz", domain.KindInvalid, "no such thing as model zz"},
		{http.StatusUnauthorized, "invalid key " + w.APIKey, domain.KindUpstream, "credentials"},
		{http.StatusForbidden, "invalid key " + w.APIKey, domain.KindUpstream, "credentials"},
	}
}

// RunFailureTests checks how the adapter classifies failures, for chat,
// streamed chat and (when the provider has them) embeddings: 429 is
// rate-limited with Retry-After parsed, 500 and 503 are upstream failures,
// 400, 404 and 422 are invalid requests quoting the provider's message, 401
// and 403 are upstream failures blaming tidygate's credentials, a hanging
// upstream ends in an upstream failure at the caller's deadline, cancelling
// the caller's context cancels the upstream request, a malformed body and a
// refused connection are upstream failures. Every message names the
// provider and none contains the API key.
func RunFailureTests(t *testing.T, w Wire) {
	up := NewUpstream(t, Hang)
	p := w.New(t, up.URL)
	for _, call := range w.calls() {
		t.Run(call.Name, func(t *testing.T) {
			for _, tc := range w.statusCases() {
				t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
					up.Handle(func(rw http.ResponseWriter, _ *http.Request) {
						rw.Header().Set("Retry-After", "7")
						w.Error(rw, tc.status, tc.message)
					})
					de := w.expect(t, call.Do(context.Background(), p), tc.kind)
					if !strings.Contains(de.Message, tc.want) {
						t.Errorf("message %q does not contain %q", de.Message, tc.want)
					}
					if tc.kind == domain.KindRateLimited && de.RetryAfter != 7*time.Second {
						t.Errorf("RetryAfter = %s; want 7s", de.RetryAfter)
					}
				})
			}
			t.Run("timeout", func(t *testing.T) {
				up.Handle(Hang)
				de := w.expect(t, call.Do(Short(t), p), domain.KindUpstream)
				if !errors.Is(de, context.DeadlineExceeded) {
					t.Errorf("error %q does not wrap context.DeadlineExceeded", de.Error())
				}
			})
			t.Run("cancelled", func(t *testing.T) {
				arrived, released := make(chan struct{}), make(chan struct{})
				up.Handle(func(_ http.ResponseWriter, r *http.Request) {
					close(arrived)
					<-r.Context().Done() // the upstream call itself is cancelled
					close(released)
				})
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					<-arrived
					cancel()
				}()
				de := w.expect(t, call.Do(ctx, p), domain.KindUpstream)
				if !errors.Is(de, context.Canceled) {
					t.Errorf("error %q does not wrap context.Canceled", de.Error())
				}
				<-released
			})
			t.Run("malformed", func(t *testing.T) {
				up.Handle(Reply(http.StatusOK, "application/json", `{"choices": [{"message": `))
				_ = w.expect(t, call.Do(context.Background(), p), domain.KindUpstream)
			})
			t.Run("refused", func(t *testing.T) {
				closed := httptest.NewServer(http.NotFoundHandler())
				closed.Close()
				_ = w.expect(t, call.Do(context.Background(), w.New(t, closed.URL)), domain.KindUpstream)
			})
		})
	}
}

// expect asserts err's kind, that its message names the provider, and that
// neither its message nor its cause contains the API key.
func (w Wire) expect(t *testing.T, err error, kind domain.Kind) *domain.Error {
	t.Helper()
	de := RequireError(t, err, kind)
	if !strings.Contains(de.Message, w.Provider) {
		t.Errorf("message %q does not name the provider %q", de.Message, w.Provider)
	}
	if w.APIKey != "" && strings.Contains(de.Error(), w.APIKey) {
		t.Errorf("error %q contains the API key", de.Error())
	}
	return de
}

// CheckStream asserts what any ChatStream result must satisfy, whatever
// the upstream sent: either a classified provider failure (upstream, rate
// limited, or invalid when the provider says so inside the stream), or a
// response with a finish reason whose content is the concatenation of the
// emitted deltas, the last chunk carrying the finish reason and the
// (non-negative) usage.
func CheckStream(t testing.TB, resp domain.ChatResponse, c *Chunks, err error) {
	t.Helper()
	if err != nil {
		var de *domain.Error
		if !errors.As(err, &de) {
			t.Fatalf("error %v (%T) is not a *domain.Error", err, err)
		}
		switch de.Kind {
		case domain.KindUpstream, domain.KindRateLimited, domain.KindInvalid:
		default:
			t.Fatalf("error %q has kind %s; want upstream, rate_limited or invalid", de.Error(), de.Kind)
		}
		return
	}
	final := c.Final(t)
	if resp.FinishReason == "" || final.FinishReason != resp.FinishReason || final.Usage == nil || *final.Usage != resp.Usage {
		t.Fatalf("response %+v ends with chunk %+v; want the finish reason and usage on the last chunk", resp, final)
	}
	if resp.Usage.PromptTokens < 0 || resp.Usage.CompletionTokens < 0 {
		t.Fatalf("negative usage %+v", resp.Usage)
	}
	if c.Text() != resp.Content {
		t.Fatalf("emitted %q but assembled %q", c.Text(), resp.Content)
	}
}

// ServeNative serves body as the event stream answering a passed-through
// request of dialect d (request is its body) and checks what the adapter
// made of it: a classified failure, or events that are whole server-sent
// events carrying no negative count and a final count of its own.
func ServeNative(t testing.TB, up *Upstream, p ports.PassThrough, d domain.Dialect, request string, body []byte) {
	t.Helper()
	up.Handle(Reply(http.StatusOK, "text/event-stream", string(body)))
	var events []domain.NativeEvent
	resp, err := p.Native(context.Background(), domain.NativeRequest{Dialect: d, Body: []byte(request), Stream: true,
		Model: "up", Answer: "answer", MaxTokens: 64}, func(ev domain.NativeEvent) error {
		events = append(events, ev)
		return nil
	})
	if err != nil {
		var de *domain.Error
		if !errors.As(err, &de) {
			t.Fatalf("Native failed with %v, not a *domain.Error", err)
		}
		return
	}
	for _, ev := range events {
		if !strings.HasSuffix(string(ev.Raw), "\n\n") && !strings.HasSuffix(string(ev.Raw), "\r\n\r\n") {
			t.Fatalf("event %q is not a whole server-sent event", ev.Raw)
		}
		if u := ev.Usage; u != nil && (u.PromptTokens < 0 || u.CompletionTokens < 0) {
			t.Fatalf("event %q carries a negative count %+v", ev.Raw, *u)
		}
	}
	if u := resp.Usage; u.PromptTokens < 0 || u.CompletionTokens < 0 || u.CacheReadTokens < 0 || u.CacheWriteTokens < 0 {
		t.Fatalf("final count %+v is negative", u)
	}
}

// ExpectOutputCap sends p a chat request and a passed-through chat
// completion that set no output cap, with 64 tokens reserved, and fails the
// test unless up, which answers with a completion, received the cap as
// field both times and not the field not.
func ExpectOutputCap(t testing.TB, up *Upstream, p interface {
	ports.Provider
	ports.PassThrough
}, field, not string) {
	t.Helper()
	req := Chat("m")
	req.MaxTokens = 64
	if _, err := p.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	up.Last(t).WantFields(t, `{"`+field+`":64}`, not)
	_, err := p.Native(context.Background(), domain.NativeRequest{Dialect: domain.DialectOpenAIChat, Body: []byte(`{"model":"m","messages":[]}`),
		Model: "m", Answer: "m", MaxTokens: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	up.Last(t).WantFields(t, `{"`+field+`":64}`, not)
}
