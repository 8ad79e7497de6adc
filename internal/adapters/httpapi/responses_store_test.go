package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// otherKey belongs to mallory, who must never see alice's responses.
const otherKey = "tg-test-key-fedcba9876543210"

// agentProvider answers with agentAnswer, as a whole or streamed, and keeps
// every request it was sent.
type agentProvider struct {
	mu   sync.Mutex
	seen []domain.ChatRequest
}

func (p *agentProvider) saw(req domain.ChatRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, req)
}

func (p *agentProvider) last(t *testing.T) domain.ChatRequest {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) == 0 {
		t.Fatal("the provider was not called")
	}
	return p.seen[len(p.seen)-1]
}

func (p *agentProvider) Chat(_ context.Context, req domain.ChatRequest) (domain.ChatResponse, error) {
	p.saw(req)
	return agentAnswer(req), nil
}

func (p *agentProvider) ChatStream(ctx context.Context, req domain.ChatRequest, emit func(domain.ChatChunk) error) (domain.ChatResponse, error) {
	p.saw(req)
	res, err := agentGateway().stream(ctx, req, emit)
	return res.Response, err
}

func (p *agentProvider) Embed(context.Context, domain.EmbedRequest) (domain.EmbedResponse, error) {
	return domain.EmbedResponse{}, errCalled
}

// storeRig is the API over the real gateway with an in-memory response
// store and call log, keys for alice (goodKey) and mallory (otherKey), and
// a clock the test moves.
type storeRig struct {
	srv      *httptest.Server
	svc      *gateway.Service
	provider *agentProvider
	store    *memory.ResponseStore
	ledger   *memory.Ledger
	log      *memory.CallLog
	mu       sync.Mutex
	now      time.Time
}

func (s *storeRig) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *storeRig) advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

func newStoreRig(t *testing.T, opts gateway.Options) *storeRig {
	t.Helper()
	cat, err := domain.NewCatalogue(domain.DefaultModels())
	if err != nil {
		t.Fatal(err)
	}
	s := &storeRig{provider: &agentProvider{}, store: memory.NewResponseStore(), ledger: memory.NewLedger(), log: memory.NewCallLog(),
		now: time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)}
	keys := memory.NewKeyStore()
	keys.Add(goodKey, domain.Caller{KeyID: "key-1", User: "alice", Team: "risk"})
	keys.Add(otherKey, domain.Caller{KeyID: "key-2", User: "mallory", Team: "risk"})
	opts.Now = s.clock
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: map[string]ports.Provider{"mock": s.provider},
		Keys: keys, Ledger: s.ledger, CallLog: s.log, Responses: s.store}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.svc = svc
	s.srv = httptest.NewServer(httpapi.NewHandler(svc, httpapi.Options{Now: s.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(s.srv.Close)
	return s
}

// client is an SDK client with key's credentials.
func (s *storeRig) client(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.srv.URL+"/v1/"), option.WithAPIKey(key),
		option.WithHeader("X-Audit-Reason", "stored responses test"), option.WithMaxRetries(0))
}

// do sends one request with alice's key (or the key given) and returns the
// status and the decoded body.
func (s *storeRig) do(t *testing.T, method, path, body string, key ...string) (int, map[string]any) {
	t.Helper()
	status, raw := s.raw(t, method, path, body, key...)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: undecodable body: %v", method, path, err)
	}
	return status, out
}

// raw sends one request like do and returns the status and the body as sent.
func (s *storeRig) raw(t *testing.T, method, path, body string, key ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	k := goodKey
	if len(key) > 0 {
		k = key[0]
	}
	req.Header.Set("Authorization", "Bearer "+k)
	req.Header.Set("X-Audit-Reason", "stored responses test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// wantError checks an OpenAI error object with this status, param and code.
func wantError(t *testing.T, status int, body map[string]any, wantStatus int, param, code string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	if status != wantStatus || e == nil || e["type"] != "invalid_request_error" || (param != "" && e["param"] != param) ||
		(code != "" && e["code"] != code) {
		t.Errorf("status %d, body %v; want %d, param %q, code %q", status, body, wantStatus, param, code)
	}
}

func newResp(t *testing.T, client openai.Client, params responses.ResponseNewParams) *responses.Response {
	t.Helper()
	resp, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func hi(text string) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfString: openai.String(text)}
}

// TestStoredResponsesWithTheOfficialSDK creates a stored response, retrieves
// it, continues from it and deletes it with openai-go's Responses client.
func TestStoredResponsesWithTheOfficialSDK(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	client := s.client(goodKey)
	ctx := context.Background()

	for _, streamed := range []bool{false, true} {
		name := map[bool]string{false: "json", true: "stream"}[streamed]
		t.Run(name, func(t *testing.T) {
			first := respond(t, client, responses.ResponseNewParams{Model: "mock-chat", Instructions: openai.String("Be brief."),
				Input: hi("Hi"), Store: openai.Bool(true)}, streamed)
			if !storedFlag(t, first) || first.OutputText() != "Hello there" {
				t.Fatalf("first response = %s", first.RawJSON())
			}
			got, err := client.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != first.ID || !sameJSON(t, got.RawJSON(), first.RawJSON()) {
				t.Errorf("GET = %s\nwant the response as answered: %s", got.RawJSON(), first.RawJSON())
			}
			if !strings.Contains(got.RawJSON(), `"annotations":[]`) || !strings.Contains(first.RawJSON(), `"annotations":[]`) {
				t.Errorf("an output_text part has no annotations: %s", first.RawJSON())
			}

			second := respond(t, client, responses.ResponseNewParams{Model: "mock-chat", Instructions: openai.String("Be terse."),
				Input: hi("And again?"), PreviousResponseID: openai.String(first.ID), Store: openai.Bool(true)}, streamed)
			if second.OutputText() != "Hello there" || second.ID == first.ID {
				t.Errorf("second response = %s", second.RawJSON())
			}
			sent := s.provider.last(t).Messages
			if len(sent) != 4 || sent[0].Role != domain.RoleSystem || sent[0].Content != "Be terse." ||
				sent[1].Role != domain.RoleUser || sent[1].Content != "Hi" ||
				sent[2].Role != domain.RoleAssistant || sent[2].Content != "Hello there" ||
				sent[3].Role != domain.RoleUser || sent[3].Content != "And again?" {
				t.Errorf("the continued call sent %+v; want the new instructions only, then Hi, the answer and the new input", sent)
			}
			// Its input items are that conversation, without the instructions.
			items, err := client.Responses.InputItems.List(ctx, second.ID, responses.InputItemListParams{Order: responses.InputItemListParamsOrderAsc})
			if err != nil {
				t.Fatal(err)
			}
			if d := items.Data; len(d) != 3 || items.HasMore ||
				d[0].Role != "user" || d[0].AsMessage().Content[0].Text != "Hi" ||
				d[1].Role != "assistant" || d[1].AsOutputMessage().Content[0].Text != "Hello there" ||
				d[2].Role != "user" || d[2].AsMessage().Content[0].Text != "And again?" {
				t.Errorf("input items = %s", items.RawJSON())
			}

			// A third request continues from the second: the whole chain.
			respond(t, client, responses.ResponseNewParams{Model: "mock-chat", Input: hi("Once more"),
				PreviousResponseID: openai.String(second.ID)}, streamed)
			if sent := s.provider.last(t).Messages; len(sent) != 5 || sent[0].Content != "Hi" || sent[4].Content != "Once more" {
				t.Errorf("the third call sent %+v", sent)
			}

			if err := client.Responses.Delete(ctx, first.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			var e *openai.Error
			if _, err := client.Responses.Get(ctx, first.ID, responses.ResponseGetParams{}); !errors.As(err, &e) || e.StatusCode != 404 {
				t.Errorf("GET after delete: %v; want 404", err)
			}
			if err := client.Responses.Delete(ctx, first.ID); !errors.As(err, &e) || e.StatusCode != 404 {
				t.Errorf("second delete: %v; want 404", err)
			}
			_, err = client.Responses.New(ctx, responses.ResponseNewParams{Model: "mock-chat", Input: hi("x"), PreviousResponseID: openai.String(first.ID)})
			if !errors.As(err, &e) || e.StatusCode != 400 || e.Param != "previous_response_id" || e.Code != "previous_response_not_found" {
				t.Errorf("continuing from a deleted response: %v", err)
			}
		})
	}
}

// storedFlag is the response's "store", which the SDK's type leaves out.
func storedFlag(t *testing.T, r responses.Response) bool {
	t.Helper()
	var v struct {
		Store bool `json:"store"`
	}
	if err := json.Unmarshal([]byte(r.RawJSON()), &v); err != nil {
		t.Fatal(err)
	}
	return v.Store
}

// sameJSON reports whether two JSON documents are equal as values.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestStoredResponseToolLoop continues a function call through
// previous_response_id, sending only the call's output, as agents do.
func TestStoredResponseToolLoop(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	client := s.client(goodKey)
	first := newResp(t, client, responses.ResponseNewParams{Model: "mock-chat", Input: hi("Weather in Oslo?"),
		Tools: []responses.ToolUnionParam{weatherTool}})
	call := first.Output[0].AsFunctionCall()
	if call.CallID != "call_1" || !storedFlag(t, *first) {
		t.Fatalf("first response = %s", first.RawJSON())
	}
	output := responses.ResponseInputItemParamOfFunctionCallOutput("sunny")
	output.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	second := newResp(t, client, responses.ResponseNewParams{Model: "mock-chat", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{output}}})
	if second.OutputText() != "result: sunny" {
		t.Errorf("second response = %s", second.RawJSON())
	}
	sent := s.provider.last(t).Messages
	if len(sent) != 3 || sent[1].Blocks[0].ToolCall.ID != "call_1" || sent[2].Blocks[0].ToolResult.CallID != "call_1" {
		t.Errorf("the continued call sent %+v", sent)
	}
}

// TestStoredResponsesBelongToTheirOwner: another user's response id is not
// found, for reading, deleting, listing its input items and continuing,
// exactly as an unknown id is.
func TestStoredResponsesBelongToTheirOwner(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	status, body := s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","input":"Hi","store":true}`)
	id, _ := body["id"].(string)
	if status != 200 || body["store"] != true {
		t.Fatalf("POST = %d %v", status, body)
	}
	_, unknown := s.do(t, "GET", "/v1/responses/resp_unknown", "", otherKey)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/responses/" + id, ""},
		{"DELETE", "/v1/responses/" + id, ""},
		{"GET", "/v1/responses/" + id + "/input_items", ""},
	} {
		status, body := s.do(t, tc.method, tc.path, tc.body, otherKey)
		wantError(t, status, body, 404, "", "")
		msg := body["error"].(map[string]any)["message"].(string)
		if want := strings.ReplaceAll(unknown["error"].(map[string]any)["message"].(string), "resp_unknown", id); msg != want {
			t.Errorf("%s by another user says %q; an unknown id says %q", tc.method, msg, want)
		}
	}
	status, body = s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","input":"x","previous_response_id":"`+id+`"}`, otherKey)
	wantError(t, status, body, 400, "previous_response_id", "previous_response_not_found")
	if status, body = s.do(t, "GET", "/v1/responses/"+id, ""); status != 200 || body["id"] != id {
		t.Errorf("the owner's GET after another user's attempts = %d %v", status, body)
	}
}

// TestStoredResponsesRefuseBadIDs: ids that name nothing are not found, in
// OpenAI's error shape, without a 500.
func TestStoredResponsesRefuseBadIDs(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	for _, id := range []string{"nope", "resp_", "resp_%00x", "resp_" + strings.Repeat("a", 400), "resp_%E2%80%AE", "resp_a%20b", "resp_unknown"} {
		for _, route := range []struct{ method, under string }{{"GET", ""}, {"DELETE", ""}, {"GET", "/input_items"}} {
			method := route.method + " " + route.under
			status, body := s.do(t, route.method, "/v1/responses/"+id+route.under, "")
			wantError(t, status, body, 404, "", "")
			// One answer whether the id is malformed or merely unknown, and
			// no code: not model_not_found, nor anything that tells them apart.
			e, _ := body["error"].(map[string]any)
			if msg, _ := e["message"].(string); e["code"] != nil || !strings.HasPrefix(msg, "Response with id '") || !strings.HasSuffix(msg, "' not found.") {
				t.Errorf("%s %s: error %v; want OpenAI's \"Response with id '…' not found.\" with a null code", method, id, e)
			}
		}
	}
	for _, id := range []string{"nope", "resp_unknown", "resp_" + strings.Repeat("a", 400), "resp_\u0000"} {
		b, _ := json.Marshal(map[string]any{"model": "mock-chat", "input": "x", "previous_response_id": id})
		status, body := s.do(t, "POST", "/v1/responses", string(b))
		wantError(t, status, body, 400, "previous_response_id", "previous_response_not_found")
	}
	status, body := s.do(t, "GET", "/v1/responses/resp_x?stream=true", "")
	wantError(t, status, body, 400, "stream", "")
	if n := len(s.provider.seen); n != 0 {
		t.Errorf("the provider was called %d times", n)
	}
}

// TestStoredResponsesExpire: past RESPONSES_RETENTION a response is neither
// served nor continued from, and the sweep deletes it.
func TestStoredResponsesExpire(t *testing.T) {
	s := newStoreRig(t, gateway.Options{ResponseRetention: time.Hour})
	_, body := s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","input":"Hi"}`)
	id := body["id"].(string)
	s.advance(time.Hour - time.Second)
	if status, _ := s.do(t, "GET", "/v1/responses/"+id, ""); status != 200 {
		t.Fatalf("GET before expiry = %d", status)
	}
	s.advance(time.Second)
	status, body := s.do(t, "GET", "/v1/responses/"+id, "")
	wantError(t, status, body, 404, "", "")
	// Its input items are the same not found.
	if status, items := s.do(t, "GET", "/v1/responses/"+id+"/input_items", ""); status != 404 || !sameJSON(t, mustJSON(t, items), mustJSON(t, body)) {
		t.Errorf("input items after expiry = %d %v; want GET's %v", status, items, body)
	}
	status, body = s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","input":"x","previous_response_id":"`+id+`"}`)
	wantError(t, status, body, 400, "previous_response_id", "previous_response_not_found")
}

// TestStoreFalseAndTheDefault: store false keeps nothing; a request that
// omits store follows StoreByDefault (true when unset).
func TestStoreFalseAndTheDefault(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name      string
		byDefault *bool
		body      string
		stored    bool
	}{
		{"store false", nil, `{"model":"mock-chat","input":"Hi","store":false}`, false},
		{"omitted, default unset", nil, `{"model":"mock-chat","input":"Hi"}`, true},
		{"omitted, default false", &no, `{"model":"mock-chat","input":"Hi"}`, false},
		{"store true, default false", &no, `{"model":"mock-chat","input":"Hi","store":true}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStoreRig(t, gateway.Options{StoreByDefault: tc.byDefault})
			for _, stream := range []bool{false, true} {
				body := tc.body
				if stream {
					body = strings.Replace(body, "{", `{"stream":true,`, 1)
				}
				status, raw := s.raw(t, "POST", "/v1/responses", body)
				want := `"store":` + map[bool]string{true: "true", false: "false"}[tc.stored]
				if status != 200 || !strings.Contains(string(raw), want) {
					t.Errorf("stream %v: %d %s; want %s", stream, status, raw, want)
				}
			}
			if want := map[bool]int{true: 2, false: 0}[tc.stored]; s.store.Len() != want {
				t.Errorf("%d responses stored; want %d", s.store.Len(), want)
			}
		})
	}
}

// TestStoredResponsesFollowTheContentPolicy: when the content policy keeps
// no text, a stored response keeps none (GET serves it without output), and
// continuing from one and listing its input items are 400s that name
// MLFLOW_LOG_CONTENT.
func TestStoredResponsesFollowTheContentPolicy(t *testing.T) {
	for _, policy := range []domain.ContentPolicy{domain.ContentPreview, domain.ContentNone} {
		t.Run(string(policy), func(t *testing.T) {
			s := newStoreRig(t, gateway.Options{Content: policy})
			status, body := s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","input":"Hi","store":true}`)
			id, _ := body["id"].(string)
			if status != 200 || body["store"] != true || !strings.Contains(mustJSON(t, body), "Hello there") {
				t.Fatalf("POST = %d %v; want the answer, stored", status, body)
			}
			status, body = s.do(t, "GET", "/v1/responses/"+id, "")
			if out, _ := body["output"].([]any); status != 200 || len(out) != 0 || body["usage"] == nil || strings.Contains(mustJSON(t, body), "Hello") {
				t.Errorf("GET = %d %v; want the response without its text", status, body)
			}
			status, body = s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","input":"x","previous_response_id":"`+id+`"}`)
			wantError(t, status, body, 400, "previous_response_id", "stored_content_not_kept")
			if msg := mustJSON(t, body); !strings.Contains(msg, "MLFLOW_LOG_CONTENT") {
				t.Errorf("the refusal does not name the setting: %s", msg)
			}
			// Its input items are not an empty list, which would say it had
			// none, but the same refusal.
			status, body = s.do(t, "GET", "/v1/responses/"+id+"/input_items", "")
			wantError(t, status, body, 400, "response_id", "stored_content_not_kept")
			if msg := mustJSON(t, body); !strings.Contains(msg, "MLFLOW_LOG_CONTENT") || !strings.Contains(msg, id) {
				t.Errorf("the refusal does not name the setting and the response: %s", msg)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestContinuedCallReservesItsHistory: the reservation of a call that
// continues a stored response is that of the same call sent with its whole
// conversation, so that history is governed like any input.
func TestContinuedCallReservesItsHistory(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	reserved := func(body string) domain.Micros {
		t.Helper()
		before := s.ledger.Endings()
		status, resp := s.do(t, "POST", "/v1/responses", body)
		if status != 200 {
			t.Fatalf("POST %s = %d %v", body, status, resp)
		}
		if err := s.svc.Settled(context.Background()); err != nil {
			t.Fatal(err)
		}
		for id, e := range s.ledger.Endings() {
			if _, old := before[id]; !old {
				if e.Settles != 1 || e.Releases != 0 {
					t.Errorf("reservation %s ended %+v; want settled once", id, e)
				}
				return e.Amount
			}
		}
		t.Fatal("no new reservation")
		return 0
	}
	firstBody := `{"model":"mock-chat","input":[{"role":"user","content":[{"type":"input_text","text":"Hi"}]}]}`
	alone := reserved(firstBody)
	_, first := s.do(t, "POST", "/v1/responses", firstBody)
	chained := reserved(`{"model":"mock-chat","input":"And again?","previous_response_id":"` + first["id"].(string) + `"}`)
	whole := reserved(`{"model":"mock-chat","input":[{"role":"user","content":[{"type":"input_text","text":"Hi"}]},` +
		`{"role":"assistant","content":[{"type":"output_text","text":"Hello there"}]},{"role":"user","content":"And again?"}]}`)
	if chained != whole || chained <= alone {
		t.Errorf("reserved %d continuing, %d for the whole conversation sent, %d for the first turn alone", chained, whole, alone)
	}
}

// TestResponsesRepeatTheirSettings: a Response repeats its request's
// settings, as OpenAI's does (the SDK's model requires tools, tool_choice
// and the rest), answered, streamed and read back alike.
func TestResponsesRepeatTheirSettings(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	client := s.client(goodKey)
	for _, streamed := range []bool{false, true} {
		resp := respond(t, client, responses.ResponseNewParams{Model: "mock-chat", Input: hi("Weather?"), Instructions: openai.String("Be brief."),
			Tools: []responses.ToolUnionParam{weatherTool}, Metadata: map[string]string{"team": "blue"},
			Temperature: openai.Float(0.5), TopP: openai.Float(0.9), MaxOutputTokens: openai.Int(50)}, streamed)
		if resp.Instructions.OfString != "Be brief." || len(resp.Tools) != 1 || resp.Tools[0].Name != "get_weather" ||
			resp.ToolChoice.OfToolChoiceMode != "auto" || resp.Metadata["team"] != "blue" || resp.Temperature != 0.5 ||
			resp.TopP != 0.9 || resp.MaxOutputTokens != 50 || resp.JSON.PreviousResponseID.Raw() != "null" {
			t.Errorf("streamed %v: response = %s", streamed, resp.RawJSON())
		}
		got, err := client.Responses.Get(context.Background(), resp.ID, responses.ResponseGetParams{})
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(t, got.RawJSON(), resp.RawJSON()) {
			t.Errorf("GET = %s\nwant the response as answered: %s", got.RawJSON(), resp.RawJSON())
		}
	}
}

// TestResponsesErrorsNameTheRequestsOwnFields: an error the gateway finds
// in the decoded request names the Responses request's own field, not the
// chat request's it became: a hosted tool before a function tool, and the
// instructions before the input, shift nothing.
func TestResponsesErrorsNameTheRequestsOwnFields(t *testing.T) {
	s := newStoreRig(t, gateway.Options{})
	image := `{"type":"input_image","image_url":"data:image/tiff;base64,AAAA"}`
	status, stored := s.do(t, "POST", "/v1/responses", `{"model":"mock-chat","input":"Hi","store":true}`)
	previous, _ := stored["id"].(string)
	if status != 200 || previous == "" {
		t.Fatalf("storing a response: %d %v", status, stored)
	}
	cases := []struct{ name, body, param string }{
		{"json_schema without a schema", `{"model":"mock-chat","input":"x","text":{"format":{"type":"json_schema","name":"s"}}}`, "text.format.schema"},
		{"tool after a hosted tool", `{"model":"mock-chat","input":"x","tools":[{"type":"web_search"},{"type":"function","name":""}]}`, "tools[1].name"},
		{"image after instructions", `{"model":"mock-chat","instructions":"Be brief.","input":[{"role":"user","content":"a"},
		  {"role":"user","content":[{"type":"input_text","text":"see"},{"type":"input_file","file_id":"f"},` + image + `]}]}`, "input[1].content[2]"},
		{"image data not base64", `{"model":"mock-chat","instructions":"Be brief.","input":[{"role":"user","content":[
		  {"type":"input_image","image_url":"data:image/png;base64,iVBOR%%%"}]}]}`, "input[0].content[0]"},
		{"call merged with text", `{"model":"mock-chat","input":[{"role":"user","content":"x"},{"role":"assistant","content":"let me see"},
		  {"type":"function_call","call_id":"","name":"f","arguments":"{}"}]}`, "input[2]"},
		// Refused by the gateway once routed, not by the decoder.
		{"max_output_tokens over the model's cap", `{"model":"mock-chat","input":"x","max_output_tokens":999999}`, "max_output_tokens"},
		// The stored history comes before the input: the input's items keep their names.
		{"image after a stored response", `{"model":"mock-chat","instructions":"Be brief.","previous_response_id":"` + previous + `",
		  "input":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"input_text","text":"see"},` + image + `]}]}`, "input[1].content[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.do(t, "POST", "/v1/responses", tc.body)
			wantError(t, status, body, http.StatusBadRequest, tc.param, "")
			msg, _ := body["error"].(map[string]any)["message"].(string)
			if strings.Contains(msg, "messages[") || strings.Contains(msg, "response_format") || strings.Contains(msg, "max_tokens") {
				t.Errorf("message %q names the chat request's fields", msg)
			}
		})
	}
}
