package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	oaioption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	anthadapter "github.com/tidygate/tidygate/internal/adapters/llm/anthropic"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	oaiadapter "github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// Pass-through through the whole call path: tidygate's HTTP API and
// gateway in front of fake Anthropic and OpenAI upstreams, which record
// exactly what they were sent.

// hello is a prompt long enough for the fake upstreams' counts to stay
// within the call's worst case.
var hello = strings.Repeat("Hello ", 40)

const (
	anthKey = "sk-ant-upstream-key-0123456789"
	oaiKey  = "sk-openai-upstream-key-0123456789"
)

type passStack struct {
	url    string
	svc    *gateway.Service
	anth   *llmtest.Upstream
	oai    *llmtest.Upstream
	log    *memory.CallLog
	ledger *memory.Ledger
}

// newPassStack serves "claude" (provider anthropic, upstream claude-up,
// falling back to "gpt") and "gpt" (provider openai, upstream gpt-up),
// with no response store.
func newPassStack(t *testing.T, anth, oai http.HandlerFunc) *passStack {
	t.Helper()
	return newPassStackStoring(t, anth, oai, nil)
}

// newPassStackStoring is newPassStack keeping Responses in store (none
// when nil).
func newPassStackStoring(t *testing.T, anth, oai http.HandlerFunc, store ports.ResponseStore) *passStack {
	t.Helper()
	s := &passStack{anth: llmtest.NewUpstream(t, anth), oai: llmtest.NewUpstream(t, oai), log: memory.NewCallLog(), ledger: memory.NewLedger()}
	price := domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 15_000_000}
	cat, err := domain.NewCatalogue([]domain.Model{
		{Name: "claude", Type: domain.ModelChat, Provider: "anthropic", Upstream: "claude-up", Price: price, MaxOutputTokens: 8192,
			Aliases: []string{"claude-alias"}, Fallbacks: []string{"gpt"}},
		{Name: "gpt", Type: domain.ModelChat, Provider: "openai", Upstream: "gpt-up", Price: price, MaxOutputTokens: 8192},
	})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := anthadapter.New(anthadapter.Options{BaseURL: s.anth.URL, APIKey: anthKey})
	if err != nil {
		t.Fatal(err)
	}
	op, err := oaiadapter.New(oaiadapter.Options{BaseURL: s.oai.URL + "/v1", APIKey: oaiKey})
	if err != nil {
		t.Fatal(err)
	}
	keys := memory.NewKeyStore()
	keys.Add(agentKey, domain.Caller{User: "ada", Team: "eng", Budgets: []domain.Budget{
		{Scope: domain.ScopeUser, ScopeID: "ada", Period: domain.PeriodDay, Limit: 5 * domain.MicrosPerUSD}}})
	s.url, s.svc = serveGateway(t, gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat,
		Providers: map[string]ports.Provider{"anthropic": ap, "openai": op},
		Keys:      keys, Ledger: s.ledger, CallLog: s.log, Responses: store}, gateway.Options{MaxAttempts: 2, RetryBackoff: 1})
	return s
}

// post sends body to path with tidygate's key and an audit reason, plus
// header, and returns the answer and its body.
func (s *passStack) post(t *testing.T, path, body string, header map[string]string) (answer, []byte) {
	t.Helper()
	return s.send(t, http.MethodPost, path, body, header)
}

// get sends a GET as post sends a POST.
func (s *passStack) get(t *testing.T, path string) (answer, []byte) {
	t.Helper()
	return s.send(t, http.MethodGet, path, "", nil)
}

func (s *passStack) send(t *testing.T, method, path, body string, header map[string]string) (answer, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+agentKey)
	req.Header.Set("X-Audit-Reason", "pass-through test")
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return answer{StatusCode: resp.StatusCode, Header: resp.Header, Trailer: resp.Trailer}, b
}

// answer is what the tests read of a response besides its body.
type answer struct {
	StatusCode      int
	Header, Trailer http.Header
}

// settled returns the ledger's endings once the gateway's settlements so
// far were applied.
func (s *passStack) settled(t *testing.T) map[string]memory.Ending {
	t.Helper()
	if err := s.svc.Settled(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s.ledger.Endings()
}

// onlyRecord returns the one call record and checks that its one
// reservation ended exactly once, settled for the recorded cost.
func (s *passStack) onlyRecord(t *testing.T) domain.CallRecord {
	t.Helper()
	recs := s.log.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.AuditReason != "pass-through test" || r.User != "ada" {
		t.Errorf("record = %+v", r)
	}
	endings := s.settled(t)
	if e, ok := endings[r.RequestID]; !ok || e.Settles+e.Releases != 1 || len(endings) != 1 {
		t.Errorf("endings = %+v; want one ending for %s", endings, r.RequestID)
	}
	return r
}

const anthMessage = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-up-20250929","content":[{"type":"text","text":"Hi!","citations":null},{"type":"server_tool_use","id":"srv_1","name":"web_search","input":{"query":"x"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":7,"server_tool_use":{"web_search_requests":1},"service_tier":"standard"},"container":null}`

// A Messages request to an Anthropic model reaches Anthropic as it was sent
// (unknown fields, beta headers), only the model renamed; the client gets
// Anthropic's bytes, only the model renamed, and the call is charged
// exactly from the usage.
func TestPassThroughMessages(t *testing.T) {
	s := newPassStack(t, llmtest.Reply(http.StatusOK, "application/json", anthMessage), nil)
	body := `{"model":"claude-alias",  "max_tokens":1024,"messages":[{"role":"user","content":[{"type":"text","text":"` + hello + `","cache_control":{"type":"ephemeral","ttl":"1h"}}]}],` +
		`"context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]},"a_future_field":{"nested":[1,2.50,"x"]},` +
		`"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":1}]}`
	resp, got := s.post(t, "/v1/messages?beta=true", body, map[string]string{
		"Anthropic-Version": "2023-06-01", "Anthropic-Beta": "context-management-2025-06-27,interleaved-thinking-2025-05-14",
		"Openai-Organization": "org-no"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	sent := s.anth.Last(t)
	if want := strings.Replace(body, `"claude-alias"`, `"claude-up"`, 1); string(sent.Body) != want {
		t.Errorf("upstream got\n%s\nwant\n%s", sent.Body, want)
	}
	if sent.Header.Get("Anthropic-Beta") != "context-management-2025-06-27,interleaved-thinking-2025-05-14" ||
		sent.Header.Get("Anthropic-Version") != "2023-06-01" || sent.Header.Get("X-Api-Key") != anthKey ||
		sent.Header.Get("Authorization") != "" || sent.Header.Get("X-Audit-Reason") != "" || sent.Header.Get("Openai-Organization") != "" {
		t.Errorf("upstream headers %v", sent.Header)
	}
	if want := strings.Replace(anthMessage, `"claude-up-20250929"`, `"claude"`, 1); string(got) != want {
		t.Errorf("client got\n%s\nwant\n%s", got, want)
	}
	if resp.Header.Get("X-Tidygate-Mode") != "pass-through" || resp.Header.Get("X-Tidygate-Provider") != "anthropic" ||
		resp.Header.Get("X-Tidygate-Model") != "claude" || resp.Header.Get("X-Tidygate-Deployment") != "anthropic/claude-up" {
		t.Errorf("headers %v", resp.Header)
	}
	r := s.onlyRecord(t)
	want := domain.Usage{PromptTokens: 150, CompletionTokens: 7, CacheReadTokens: 30, CacheWriteTokens: 20}
	if r.Usage != want || r.Outcome != domain.OutcomeOK || r.Output != "Hi!" {
		t.Errorf("record usage %+v, outcome %s, output %q; want %+v", r.Usage, r.Outcome, r.Output, want)
	}
	if price := (domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 15_000_000}); r.Cost() != price.Cost(r.Usage) {
		t.Errorf("cost %d for %+v", r.Cost(), r.Usage)
	}
}

// anthEvents is a Messages stream as Anthropic sends it.
var anthEvents = []string{
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-up-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":40,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n",
	"event: ping\ndata: {\"type\": \"ping\"}\n\n",
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello there, friend\"}}\n\n",
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5,\"server_tool_use\":null}}\n\n",
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
}

func serveEvents(events []string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			_, _ = io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
	}
}

func TestPassThroughMessagesStream(t *testing.T) {
	s := newPassStack(t, serveEvents(anthEvents), nil)
	body := `{"model":"claude","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"` + hello + `"}],"unknown":true}`
	resp, got := s.post(t, "/v1/messages", body, map[string]string{"Anthropic-Beta": "fine-grained-tool-streaming-2025-05-14"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Tidygate-Mode") != "pass-through" {
		t.Fatalf("status %d, headers %v: %s", resp.StatusCode, resp.Header, got)
	}
	want := strings.Replace(strings.Join(anthEvents, ""), `"claude-up-20250929"`, `"claude"`, 1)
	if string(got) != want {
		t.Errorf("client got\n%s\nwant\n%s", got, want)
	}
	if sent := s.anth.Last(t); string(sent.Body) != strings.Replace(body, `"claude"`, `"claude-up"`, 1) ||
		sent.Header.Get("Anthropic-Beta") != "fine-grained-tool-streaming-2025-05-14" || sent.Header.Get("Accept") != "text/event-stream" {
		t.Errorf("upstream got %s with %v", sent.Body, sent.Header)
	}
	if resp.Trailer.Get("X-Tidygate-Cost-Usd") == "" {
		t.Errorf("trailers %v", resp.Trailer)
	}
	r := s.onlyRecord(t)
	if want := (domain.Usage{PromptTokens: 50, CompletionTokens: 5, CacheReadTokens: 10}); r.Usage != want || r.Outcome != domain.OutcomeOK ||
		r.Output != "Hello there, friend" || !r.Stream {
		t.Errorf("record usage %+v outcome %s output %q; want %+v", r.Usage, r.Outcome, r.Output, want)
	}
}

// A stream that breaks off after it began is charged for the input the
// provider counted and, for output, the larger of its count and the bytes
// received; the client gets an error event; the reservation ends once.
func TestPassThroughBrokenStream(t *testing.T) {
	s := newPassStack(t, serveEvents(anthEvents[:4]), nil)
	resp, got := s.post(t, "/v1/messages", `{"model":"claude","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"`+hello+`"}]}`, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte("Hello there, friend")) || !bytes.HasSuffix(got, []byte("\n\n")) ||
		!bytes.Contains(got, []byte("event: error\n")) || bytes.Contains(got, []byte("message_stop")) {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	r := s.onlyRecord(t)
	if want := (domain.Usage{PromptTokens: 50, CompletionTokens: len("Hello there, friend"), CacheReadTokens: 10}); r.Usage != want ||
		r.Outcome != domain.OutcomeError || r.Interrupted != domain.InterruptedByUpstream {
		t.Errorf("record usage %+v outcome %s interrupted %q; want %+v", r.Usage, r.Outcome, r.Interrupted, want)
	}
	if len(s.anth.Requests()) != 1 {
		t.Errorf("%d upstream calls; a stream that began is not retried", len(s.anth.Requests()))
	}
}

const oaiCompletion = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-up-2025","choices":[{"index":0,"message":{"role":"assistant","content":"From GPT"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}`

// A fallback to a model of another provider type is translated: Anthropic
// fails, OpenAI answers in chat completions, the client gets a Message.
func TestPassThroughFallsBackTranslated(t *testing.T) {
	s := newPassStack(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"api_error","message":"down"}}`)
	}, llmtest.Reply(http.StatusOK, "application/json", oaiCompletion))
	resp, got := s.post(t, "/v1/messages", `{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"`+hello+`"}],"unknown":1}`, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Tidygate-Mode") != "translated" || resp.Header.Get("X-Tidygate-Provider") != "openai" ||
		!bytes.Contains(got, []byte(`"type":"message"`)) || !bytes.Contains(got, []byte(`"text":"From GPT"`)) || !bytes.Contains(got, []byte(`"model":"gpt"`)) {
		t.Fatalf("status %d, headers %v: %s", resp.StatusCode, resp.Header, got)
	}
	if n := len(s.anth.Requests()); n != 2 {
		t.Errorf("%d calls to Anthropic, want 2", n)
	}
	if sent := s.oai.Last(t); sent.Path != "/v1/chat/completions" || sent.JSON(t)["model"] != "gpt-up" || sent.JSON(t)["unknown"] != nil {
		t.Errorf("OpenAI got %s %s", sent.Path, sent.Body)
	}
	if r := s.onlyRecord(t); !r.FallbackUsed || r.Usage.PromptTokens != 12 || r.Model != "gpt" {
		t.Errorf("record %+v", r)
	}
}

const oaiResponse = `{"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":"gpt-up-2025","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi from Responses","annotations":[]}]}],"usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":5},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":24},"tools":[{"type":"web_search"}],"unknown_field":{"a":1}}`

// The Responses API and chat completions pass through to an OpenAI model,
// with the OpenAI-Beta header; a body that sets no output cap gets the one
// the reservation assumed.
func TestPassThroughOpenAI(t *testing.T) {
	s := newPassStack(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/responses") {
			llmtest.Reply(http.StatusOK, "application/json", oaiResponse)(w, r)
			return
		}
		llmtest.Reply(http.StatusOK, "application/json", oaiCompletion)(w, r)
	})
	body := `{"model":"gpt","input":"` + hello + `","reasoning":{"effort":"low"},"store":false,"include":["reasoning.encrypted_content"],"prompt_cache_key":"k"}`
	resp, got := s.post(t, "/v1/responses", body, map[string]string{"OpenAI-Beta": "responses=v1", "Anthropic-Beta": "no"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Tidygate-Mode") != "pass-through" {
		t.Fatalf("status %d %v: %s", resp.StatusCode, resp.Header, got)
	}
	if want := strings.Replace(oaiResponse, `"gpt-up-2025"`, `"gpt"`, 1); string(got) != want {
		t.Errorf("client got\n%s\nwant\n%s", got, want)
	}
	sent := s.oai.Last(t)
	if want := `{"max_output_tokens":8192,` + strings.Replace(body[1:], `"gpt"`, `"gpt-up"`, 1); sent.Path != "/v1/responses" || string(sent.Body) != want ||
		sent.Header.Get("Openai-Beta") != "responses=v1" || sent.Header.Get("Authorization") != "Bearer "+oaiKey || sent.Header.Get("Anthropic-Beta") != "" {
		t.Errorf("upstream got %s %s with %v", sent.Path, sent.Body, sent.Header)
	}
	r := s.onlyRecord(t)
	if want := (domain.Usage{PromptTokens: 20, CompletionTokens: 4, CacheReadTokens: 5, ReasoningTokens: 2}); r.Usage != want || r.Output != "Hi from Responses" {
		t.Errorf("record usage %+v output %q", r.Usage, r.Output)
	}

	chat := `{"model":"gpt","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":50,"service_tier":"flex","store":true}`
	resp, got = s.post(t, "/v1/chat/completions", chat, nil)
	if want := strings.Replace(oaiCompletion, `"gpt-up-2025"`, `"gpt"`, 1); resp.StatusCode != http.StatusOK || string(got) != want {
		t.Errorf("chat: status %d, client got %s", resp.StatusCode, got)
	}
	if sent := s.oai.Last(t); string(sent.Body) != strings.Replace(chat, `"gpt"`, `"gpt-up"`, 1) {
		t.Errorf("chat: upstream got %s", sent.Body)
	}
}

// A Responses request tidygate stores passes through, and tidygate keeps
// its copy under the provider's id; one continuing it is translated from
// that copy (the provider need not know the stored conversation).
func TestPassThroughResponsesStored(t *testing.T) {
	s := newPassStackStoring(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/responses") {
			llmtest.Reply(http.StatusOK, "application/json", oaiResponse)(w, r)
			return
		}
		llmtest.Reply(http.StatusOK, "application/json", oaiCompletion)(w, r)
	}, memory.NewResponseStore())
	resp, got := s.post(t, "/v1/responses", `{"model":"gpt","input":"`+hello+`"}`, nil)
	var first struct {
		ID    string `json:"id"`
		Store bool   `json:"store"`
	}
	if err := json.Unmarshal(got, &first); err != nil || resp.StatusCode != http.StatusOK ||
		resp.Header.Get("X-Tidygate-Mode") != "pass-through" || first.ID != "resp_1" {
		t.Fatalf("stored: status %d, mode %q, err %v: %s", resp.StatusCode, resp.Header.Get("X-Tidygate-Mode"), err, got)
	}
	if sent := s.oai.Last(t); sent.Path != "/v1/responses" {
		t.Errorf("stored: upstream got %s %s", sent.Path, sent.Body)
	}
	resp, got = s.get(t, "/v1/responses/resp_1")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"text":"Hi from Responses"`)) || !bytes.Contains(got, []byte(`"input_tokens":20`)) {
		t.Fatalf("the stored copy: status %d: %s", resp.StatusCode, got)
	}

	next := `{"model":"gpt","input":"More","store":false,"previous_response_id":"` + first.ID + `"}`
	resp, got = s.post(t, "/v1/responses", next, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Tidygate-Mode") != "translated" {
		t.Fatalf("continued: status %d, mode %q: %s", resp.StatusCode, resp.Header.Get("X-Tidygate-Mode"), got)
	}
	if sent := s.oai.Last(t); sent.Path != "/v1/chat/completions" || !bytes.Contains(sent.Body, []byte("Hi from Responses")) || bytes.Contains(sent.Body, []byte(first.ID)) {
		t.Errorf("continued: upstream got %s; want the stored conversation, not its id", sent.Body)
	}

	own := `{"model":"gpt","input":"` + hello + `","store":false}`
	resp, got = s.post(t, "/v1/responses", own, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Tidygate-Mode") != "pass-through" {
		t.Fatalf("not stored: status %d, mode %q: %s", resp.StatusCode, resp.Header.Get("X-Tidygate-Mode"), got)
	}
	if sent := s.oai.Last(t); sent.Path != "/v1/responses" || string(sent.Body) != `{"max_output_tokens":8192,`+strings.Replace(own[1:], `"gpt"`, `"gpt-up"`, 1) {
		t.Errorf("not stored: upstream got %s", sent.Body)
	}
	endings := s.settled(t)
	for id, e := range endings {
		if e.Settles+e.Releases != 1 {
			t.Errorf("reservation %s ended %+v", id, e)
		}
	}
	if len(endings) != 3 || len(s.log.Records()) != 3 {
		t.Errorf("%d endings, %d records; want 3 of each", len(endings), len(s.log.Records()))
	}
}

// tidygate's copy of a passed-through Responses exchange keeps a function
// call's arguments as they were sent and answered, also when they are not
// a JSON object (a call cut short by max_output_tokens), which the domain
// request cannot hold; a request continuing from it is refused by name
// rather than sent a history the model never wrote.
func TestPassThroughResponsesStoredAsSent(t *testing.T) {
	cut := `{"id":"resp_cut","object":"response","created_at":1700000000,"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"gpt-up-2025",` +
		`"output":[{"type":"function_call","id":"fc_1","call_id":"call_2","name":"grep","arguments":"{\"q\": \"ab","status":"incomplete"}],` +
		`"usage":{"input_tokens":20,"output_tokens":4,"total_tokens":24}}`
	s := newPassStackStoring(t, nil, llmtest.Reply(http.StatusOK, "application/json", cut), memory.NewResponseStore())
	sent := `{"model":"gpt","input":[{"type":"message","role":"user","content":"` + hello + `"},` +
		`{"type":"function_call","call_id":"call_1","name":"grep","arguments":"{\"a\": 1"},` +
		`{"type":"function_call_output","call_id":"call_1","output":"none"}]}`
	resp, got := s.post(t, "/v1/responses", sent, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Tidygate-Mode") != "pass-through" {
		t.Fatalf("status %d, mode %q: %s", resp.StatusCode, resp.Header.Get("X-Tidygate-Mode"), got)
	}
	if resp, got = s.get(t, "/v1/responses/resp_cut"); resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"arguments":"{\"q\": \"ab"`)) {
		t.Errorf("the stored answer: status %d: %s; want the arguments as OpenAI sent them", resp.StatusCode, got)
	}
	if resp, got = s.get(t, "/v1/responses/resp_cut/input_items?order=asc"); resp.StatusCode != http.StatusOK || !bytes.Contains(got, []byte(`"arguments":"{\"a\": 1"`)) {
		t.Errorf("the stored input: status %d: %s; want the arguments as the client sent them", resp.StatusCode, got)
	}
	calls := len(s.oai.Requests())
	next := `{"model":"gpt","input":[{"type":"function_call_output","call_id":"call_2","output":"x"}],"previous_response_id":"resp_cut"}`
	if resp, got = s.post(t, "/v1/responses", next, nil); resp.StatusCode != http.StatusBadRequest || !bytes.Contains(got, []byte(`"param":"previous_response_id"`)) {
		t.Errorf("continued: status %d: %s; want a 400 naming previous_response_id", resp.StatusCode, got)
	}
	if n := len(s.oai.Requests()); n != calls {
		t.Errorf("continued: the upstream got %d more requests; want none", n-calls)
	}
}

// The official SDKs work through pass-through routes, streams included.
func TestPassThroughSDKs(t *testing.T) {
	oaiStream := []string{
		"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"in_progress\",\"model\":\"gpt-up-2025\",\"output\":[]}}\n\n",
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Streamed\"}\n\n",
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1,\"status\":\"completed\",\"model\":\"gpt-up-2025\",\"output\":[{\"type\":\"message\",\"id\":\"msg_1\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Streamed\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":9,\"output_tokens\":2,\"total_tokens\":11}}}\n\n",
	}
	s := newPassStack(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "text/event-stream" {
			serveEvents(anthEvents)(w, r)
			return
		}
		llmtest.Reply(http.StatusOK, "application/json", anthMessage)(w, r)
	}, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") == "text/event-stream" {
			serveEvents(oaiStream)(w, r)
			return
		}
		llmtest.Reply(http.StatusOK, "application/json", oaiResponse)(w, r)
	})
	ctx := context.Background()
	ac := anthropic.NewClient(anthoption.WithBaseURL(s.url), anthoption.WithAPIKey(agentKey), anthoption.WithMaxRetries(0),
		anthoption.WithHeader("X-Audit-Reason", "sdk pass-through"), anthoption.WithHeader("anthropic-beta", "sdk-beta-1"))
	params := anthropic.MessageNewParams{Model: "claude", MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(hello))}}
	msg, err := ac.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Model != "claude" || msg.Usage.InputTokens != 100 || msg.Content[0].Text != "Hi!" {
		t.Errorf("message %+v", msg)
	}
	if s.anth.Last(t).Header.Get("Anthropic-Beta") != "sdk-beta-1" {
		t.Errorf("beta header %q", s.anth.Last(t).Header.Get("Anthropic-Beta"))
	}
	acc := accumulate(t, ac.Messages.NewStreaming(ctx, params))
	if acc.Model != "claude" || acc.Content[0].Text != "Hello there, friend" || acc.Usage.OutputTokens != 5 {
		t.Errorf("streamed message %+v", acc)
	}

	oc := openai.NewClient(oaioption.WithBaseURL(s.url+"/v1"), oaioption.WithAPIKey(agentKey), oaioption.WithMaxRetries(0),
		oaioption.WithHeader("X-Audit-Reason", "sdk pass-through"))
	rp := responses.ResponseNewParams{Model: "gpt", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(hello)}}
	r, err := oc.Responses.New(ctx, rp)
	if err != nil {
		t.Fatal(err)
	}
	if r.Model != "gpt" || r.OutputText() != "Hi from Responses" || r.Usage.InputTokens != 20 {
		t.Errorf("response %+v", r)
	}
	stream := oc.Responses.NewStreaming(ctx, rp)
	var text string
	var done responses.Response
	for stream.Next() {
		ev := stream.Current()
		text += ev.Delta
		if ev.Type == "response.completed" {
			done = ev.Response
		}
	}
	if err := stream.Err(); err != nil || text != "Streamed" || done.Model != "gpt" || done.Usage.OutputTokens != 2 {
		t.Errorf("stream: err %v, text %q, final %+v", err, text, done)
	}
	recs := s.log.Records()
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	for _, rec := range recs {
		if rec.Outcome != domain.OutcomeOK || rec.Usage.PromptTokens == 0 || rec.Cost() == 0 {
			t.Errorf("record %+v", rec)
		}
	}
}

// A request with a feature Anthropic serves itself (a server tool) passes
// through only: the fallback that would translate it is left out, and the
// call fails as Anthropic did; a model that translates refuses it by name.
func TestPassThroughOnlyFeatures(t *testing.T) {
	s := newPassStack(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"type":"error","error":{"type":"api_error","message":"down"}}`)
	}, llmtest.Reply(http.StatusOK, "application/json", oaiCompletion))
	tools := `"tools":[{"type":"web_search_20250305","name":"web_search"}]`
	resp, got := s.post(t, "/v1/messages", `{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"`+hello+`"}],`+tools+`}`, nil)
	if resp.StatusCode != http.StatusBadGateway || len(s.oai.Requests()) != 0 || len(s.anth.Requests()) == 0 {
		t.Errorf("status %d, calls to OpenAI %d, to Anthropic %d: %s", resp.StatusCode, len(s.oai.Requests()), len(s.anth.Requests()), got)
	}
	resp, got = s.post(t, "/v1/messages", `{"model":"gpt","max_tokens":100,"messages":[{"role":"user","content":"`+hello+`"}],`+tools+`}`, nil)
	if resp.StatusCode != http.StatusBadRequest || len(s.oai.Requests()) != 0 ||
		!bytes.Contains(got, []byte(`server tool \"web_search_20250305\" (tools[0].type) is served by the provider itself`)) {
		t.Errorf("to OpenAI: status %d: %s", resp.StatusCode, got)
	}
	for _, e := range s.ledger.Endings() {
		if e.Settles+e.Releases != 1 {
			t.Errorf("endings %+v", s.ledger.Endings())
		}
	}
}

// A token count for an Anthropic model is Anthropic's, asked at its
// count_tokens endpoint with the body as the client sent it (the alias
// renamed to the upstream name) and the client's beta header, and
// recorded; for a model of another provider it is tidygate's estimate, not
// recorded. Neither is a call: nothing is reserved or settled.
func TestPassThroughCountTokens(t *testing.T) {
	s := newPassStack(t, llmtest.Reply(http.StatusOK, "application/json", `{"input_tokens":2095}`), nil)
	body := `{"model":"claude-alias","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"` + hello + `"}},` +
		`{"type":"text","text":"Summarize it."}]}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`
	resp, got := s.post(t, "/v1/messages/count_tokens?beta=true", body, map[string]string{"Anthropic-Version": "2023-06-01", "Anthropic-Beta": "files-api-2025-04-14"})
	if resp.StatusCode != http.StatusOK || string(got) != `{"input_tokens":2095}`+"\n" || resp.Header.Get("X-Tidygate-Mode") != "pass-through" {
		t.Fatalf("status %d, mode %q: %s", resp.StatusCode, resp.Header.Get("X-Tidygate-Mode"), got)
	}
	sent := s.anth.Last(t)
	if want := strings.Replace(body, `"claude-alias"`, `"claude-up"`, 1); sent.Path != "/v1/messages/count_tokens" || string(sent.Body) != want ||
		sent.Header.Get("Anthropic-Beta") != "files-api-2025-04-14" || sent.Header.Get("X-Api-Key") != anthKey {
		t.Errorf("Anthropic got %s %s with beta %q; want %s", sent.Path, sent.Body, sent.Header.Get("Anthropic-Beta"), want)
	}
	resp, got = s.post(t, "/v1/messages/count_tokens", `{"model":"gpt","messages":[{"role":"user","content":"Hello, world"}]}`, nil)
	if resp.StatusCode != http.StatusOK || string(got) != `{"input_tokens":7}`+"\n" || resp.Header.Get("X-Tidygate-Mode") != "estimated" || len(s.oai.Requests()) != 0 {
		t.Errorf("status %d, mode %q, %d calls to OpenAI: %s", resp.StatusCode, resp.Header.Get("X-Tidygate-Mode"), len(s.oai.Requests()), got)
	}
	recs := s.log.Records()
	if len(recs) != 1 || recs[0].Endpoint != domain.EndpointCountTokens || recs[0].AuditReason != "pass-through test" ||
		recs[0].UpstreamModel != "claude-up" || recs[0].Usage.PromptTokens != 2095 || len(s.settled(t)) != 0 {
		t.Errorf("records %+v, endings %+v; want Anthropic's count's only, nothing settled", recs, s.settled(t))
	}
}
