package httpapi_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

func TestChatCompletion(t *testing.T) {
	r := newRig(t, &fakeGateway{caller: domain.Caller{User: "alice", Team: "risk"}}, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions",
		`{"model":"mock","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"there"}]}],
		  "max_completion_tokens":50,"temperature":0.5,"top_p":1,"stop":["\n\n"],"user":"end-user-7","seed":null,"presence_penalty":0}`,
		"X-Audit-Reason", "ticket 1234")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body)
	}
	var got struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	id := rec.Header().Get("X-Request-Id")
	if got.ID != "chatcmpl-"+id || got.Object != "chat.completion" || got.Created != 1_700_000_000 || got.Model != "mock-chat" {
		t.Errorf("envelope = %+v (request id %q)", got, id)
	}
	if len(got.Choices) != 1 || got.Choices[0].Index != 0 || got.Choices[0].Message.Role != "assistant" ||
		got.Choices[0].Message.Content != "Hello there" || got.Choices[0].FinishReason != "stop" {
		t.Errorf("choices = %+v", got.Choices)
	}
	if got.Usage.PromptTokens != 7 || got.Usage.CompletionTokens != 3 || got.Usage.TotalTokens != 10 {
		t.Errorf("usage = %+v", got.Usage)
	}
	for h, want := range map[string]string{"X-Tidygate-Model": "mock-chat", "X-Tidygate-Provider": "mock", "X-Tidygate-Deployment": "mock/mock-1",
		"X-Tidygate-Attempts": "2", "X-Tidygate-Cost-Usd": "0.001250"} {
		if v := rec.Header().Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}

	call := r.gw.lastCall(t)
	if call.RequestID != id || call.AuditReason != "ticket 1234" || call.Caller.User != "alice" || call.Start.IsZero() {
		t.Errorf("call = %+v", call)
	}
	req := r.gw.chats[0]
	temp := 0.5
	want := domain.ChatRequest{Model: "mock", MaxTokens: 50, Temperature: &temp, Stop: []string{"\n\n"}, User: "end-user-7",
		Messages: []domain.Message{{Role: domain.RoleSystem, Content: "Be brief."}, {Role: domain.RoleUser, Content: "Hi\nthere"}}}
	if req.Model != want.Model || req.MaxTokens != want.MaxTokens || *req.Temperature != temp || req.TopP == nil || *req.TopP != 1 ||
		strings.Join(req.Stop, "|") != "\n\n" || req.User != want.User || req.Stream ||
		!reflect.DeepEqual(req.Messages, want.Messages) {
		t.Errorf("the gateway got %+v", req)
	}
}

// TestAuditReasonInLatin1: the JavaScript SDKs send a header through fetch,
// which puts each character from U+0080 to U+00FF in one byte (ISO-8859-1):
// the call's reason is the text the client wrote, not invalid UTF-8 that the
// audit trail would keep as U+FFFD.
func TestAuditReasonInLatin1(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	for raw, want := range map[string]string{"Pr\xfcfung f\xfcr \xc4rzte": "Prüfung für Ärzte", "Prüfung (UTF-8)": "Prüfung (UTF-8)"} {
		rec := r.do("POST", "/v1/chat/completions", `{"model":"mock","messages":[{"role":"user","content":"Hi"}]}`, "X-Audit-Reason", raw)
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if got := r.gw.lastCall(t).AuditReason; got != want {
			t.Errorf("X-Audit-Reason %q: the call's reason is %q, want %q", raw, got, want)
		}
	}
}

func TestAssistantMayHaveNullContent(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions",
		`{"model":"mock-chat","max_tokens":5,"stop":"END","messages":[{"role":"user","content":"a"},{"role":"assistant","content":null},{"role":"user","content":"b"}]}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d: %s", rec.Code, rec.Body)
	}
	if req := r.gw.chats[0]; req.MaxTokens != 5 || len(req.Stop) != 1 || req.Stop[0] != "END" || req.Messages[1].Content != "" {
		t.Errorf("the gateway got %+v", req)
	}
}

// TestBadRequests covers every way a request body can be refused before the
// gateway is called.
func TestBadRequests(t *testing.T) {
	msg := `"messages":[{"role":"user","content":"x"}]`
	cases := []struct {
		name, path, body string
		header           []string
		status           int
		param            string // "" means null
		inMessage        string
	}{
		{"empty body", "", ``, nil, 400, "", "empty"},
		{"whitespace body", "", " \n ", nil, 400, "", "empty"},
		{"not an object", "", `[1,2]`, nil, 400, "", "JSON object"},
		{"invalid json", "", "{\"model\":\"mock-chat\",\n \"messages\": [}", nil, 400, "", "byte offset 36 (line 2, column 15)"},
		{"truncated json", "", `{"model":"mock-chat","messages":[`, nil, 400, "", "ends at byte offset 33"},
		{"trailing data", "", `{"model":"mock-chat",` + msg + `} {}`, nil, 400, "", "after the JSON object at byte offset 65 (line 1, column 66)"},
		{"wrong type", "", `{"model":"mock-chat","messages":"hello"}`, nil, 400, "messages", "expected an array, got string"},
		{"wrong nested type", "", `{"model":"mock-chat","messages":[{"role":5,"content":"x"}]}`, nil, 400, "messages.role", "expected a string"},
		{"wrong number type", "", `{"model":"mock-chat",` + msg + `,"max_tokens":1.5}`, nil, 400, "max_tokens", "expected an integer"},
		{"temperature as string", "", `{"model":"mock-chat",` + msg + `,"temperature":"hot"}`, nil, 400, "temperature", "expected a number"},
		{"missing model", "", `{` + msg + `}`, nil, 400, "model", "model is required"},
		{"empty messages", "", `{"model":"mock-chat","messages":[]}`, nil, 400, "messages", "at least one"},
		{"no messages", "", `{"model":"mock-chat"}`, nil, 400, "messages", "at least one"},
		{"bad role", "", `{"model":"mock-chat","messages":[{"role":"wizard","content":"x"}]}`, nil, 400, "messages[0].role", "wizard"},
		{"null content for user", "", `{"model":"mock-chat","messages":[{"role":"user","content":null}]}`, nil, 400, "messages[0].content", "required"},
		{"numeric content", "", `{"model":"mock-chat","messages":[{"role":"user","content":5}]}`, nil, 400, "messages[0].content", "string or an array"},
		{"image not a URL", "", `{"model":"mock-chat","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, nil, 400, "messages[0].content[0]", "http or https"},
		{"image without URL", "", `{"model":"mock-chat","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, nil, 400, "messages[0].content[0].image_url.url", "required"},
		{"image data URL not base64", "", `{"model":"mock-chat","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, nil, 400, "messages[0].content[0].image_url.url", "base64"},
		{"image of unknown type", "", `{"model":"mock-chat","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}`, nil, 400, "messages[0].content[0]", "image/tiff"},
		{"image data URL without data", "", `{"model":"mock-chat","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,"}}]}]}`, nil, 400, "messages[0].content[0].image_url.url", "base64"},
		{"image data not base64", "", `{"model":"mock-chat","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR%%%"}}]}]}`, nil, 400, "messages[0].content[0]", "not base64"},
		{"audio part", "", `{"model":"mock-chat","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, nil, 400, "messages[0].content[0].type", "input_audio"},
		{"tool call type", "", `{"model":"mock-chat","messages":[{"role":"assistant","tool_calls":[{"id":"1"}]}]}`, nil, 400, "messages[0].tool_calls[0].type", "function"},
		{"tool call without name", "", `{"model":"mock-chat","messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function"}]}]}`, nil, 400, "messages[0].tool_calls[0]", "function.name"},
		{"tool call arguments", "", `{"model":"mock-chat","messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, nil, 400, "messages[0].tool_calls[0].function.arguments", "JSON object"},
		{"tool calls by user", "", `{"model":"mock-chat","messages":[{"role":"user","content":"x","tool_calls":[{"id":"1","type":"function","function":{"name":"f"}}]}]}`, nil, 400, "messages[0].tool_calls", "assistant"},
		{"tool result without id", "", `{"model":"mock-chat","messages":[{"role":"tool","content":"42"}]}`, nil, 400, "messages[0].tool_call_id", "required"},
		{"tool_call_id on user", "", `{"model":"mock-chat","messages":[{"role":"user","content":"x","tool_call_id":"1"}]}`, nil, 400, "messages[0].tool_call_id", "tool"},
		{"negative max_tokens", "", `{"model":"mock-chat",` + msg + `,"max_tokens":-1}`, nil, 400, "max_tokens", "between 1 and"},
		{"zero max_tokens", "", `{"model":"mock-chat",` + msg + `,"max_tokens":0}`, nil, 400, "max_tokens", "between 1 and"},
		{"absurd max_tokens", "", `{"model":"mock-chat",` + msg + `,"max_tokens":99999999999}`, nil, 400, "max_tokens", "between 1 and"},
		{"overflowing max_tokens", "", `{"model":"mock-chat",` + msg + `,"max_tokens":1e30}`, nil, 400, "max_tokens", "expected an integer"},
		{"absurd max_completion_tokens", "", `{"model":"mock-chat",` + msg + `,"max_completion_tokens":2000000}`, nil, 400, "max_completion_tokens", "between 1 and"},
		{"disagreeing max tokens", "", `{"model":"mock-chat",` + msg + `,"max_tokens":5,"max_completion_tokens":6}`, nil, 400, "max_completion_tokens", "differ"},
		{"temperature too high", "", `{"model":"mock-chat",` + msg + `,"temperature":7}`, nil, 400, "temperature", "between 0 and 2"},
		{"negative temperature", "", `{"model":"mock-chat",` + msg + `,"temperature":-0.1}`, nil, 400, "temperature", "between 0 and 2"},
		{"top_p too high", "", `{"model":"mock-chat",` + msg + `,"top_p":1.5}`, nil, 400, "top_p", "between 0 and 1"},
		{"stop of numbers", "", `{"model":"mock-chat",` + msg + `,"stop":[1]}`, nil, 400, "stop", "array of strings"},
		{"n=2", "", `{"model":"mock-chat",` + msg + `,"n":2}`, nil, 400, "n", "n=1"},
		{"tool type", "", `{"model":"mock-chat",` + msg + `,"tools":[{"type":"web_search","function":{"name":"f"}}]}`, nil, 400, "tools[0].type", "web_search"},
		{"tool without name", "", `{"model":"mock-chat",` + msg + `,"tools":[{"type":"function","function":{}}]}`, nil, 400, "tools[0].name", "1 to 128"},
		{"tool parameters", "", `{"model":"mock-chat",` + msg + `,"tools":[{"type":"function","function":{"name":"f","parameters":[1]}}]}`, nil, 400, "tools[0].parameters", "JSON Schema"},
		{"tools twice", "", `{"model":"mock-chat",` + msg + `,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]}`, nil, 400, "tools[1].name", "another tool"},
		{"tool_choice unknown tool", "", `{"model":"mock-chat",` + msg + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, nil, 400, "tool_choice", "\"g\""},
		{"tool_choice word", "", `{"model":"mock-chat",` + msg + `,"tool_choice":"always"}`, nil, 400, "tool_choice", "required"},
		{"functions", "", `{"model":"mock-chat",` + msg + `,"functions":[{"name":"f"}]}`, nil, 400, "functions", "not supported"},
		{"tool_choice required", "", `{"model":"mock-chat",` + msg + `,"tool_choice":"required"}`, nil, 400, "tool_choice", "no tools"},
		{"logprobs", "", `{"model":"mock-chat",` + msg + `,"logprobs":true}`, nil, 400, "logprobs", "not supported"},
		{"unknown reasoning effort", "", `{"model":"mock-chat",` + msg + `,"reasoning_effort":"huge"}`, nil, 400, "reasoning_effort", "huge"},
		{"unknown response format", "", `{"model":"mock-chat",` + msg + `,"response_format":{"type":"yaml"}}`, nil, 400, "response_format.type", "yaml"},
		{"json_schema without name", "", `{"model":"mock-chat",` + msg + `,"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, nil, 400, "response_format.json_schema.name", "name"},
		{"json_schema without schema", "", `{"model":"mock-chat",` + msg + `,"response_format":{"type":"json_schema","json_schema":{"name":"a"}}}`, nil, 400, "response_format", "JSON Schema object"},
		{"audio", "", `{"model":"mock-chat",` + msg + `,"audio":{"voice":"alloy","format":"wav"}}`, nil, 400, "audio", "not supported"},
		{"audio modality", "", `{"model":"mock-chat",` + msg + `,"modalities":["text","audio"]}`, nil, 400, "modalities", "audio"},
		{"form content type", "", `{"model":"mock-chat",` + msg + `}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "", "application/json"},
		{"too large", "", `{"model":"mock-chat","messages":[{"role":"user","content":"` + strings.Repeat("a", 2048) + `"}]}`, nil, 413, "", "1024 bytes"},
		{"embeddings mixed input", "/v1/embeddings", `{"model":"mock-embed","input":["a",{}]}`, nil, 400, "input", "array of strings"},
		{"embeddings text and tokens", "/v1/embeddings", `{"model":"mock-embed","input":["a",[1,2]]}`, nil, 400, "input", "mixes strings and token arrays"},
		{"embeddings text and a token", "/v1/embeddings", `{"model":"mock-embed","input":[1,"a"]}`, nil, 400, "input", "mixes strings and token arrays"},
		{"embeddings tokens bare and in arrays", "/v1/embeddings", `{"model":"mock-embed","input":[1,[2]]}`, nil, 400, "input", "mixes token ids and arrays of them"},
		{"embeddings empty token array", "/v1/embeddings", `{"model":"mock-embed","input":[[1],[]]}`, nil, 400, "input", "input[1] is empty"},
		{"embeddings negative token", "/v1/embeddings", `{"model":"mock-embed","input":[5,-1]}`, nil, 400, "input", "token 1 of input 0 is -1; a token id is an integer from 0 to 2147483647"},
		{"embeddings fractional token", "/v1/embeddings", `{"model":"mock-embed","input":[[1],[2,1.5]]}`, nil, 400, "input", "token 1 of input 1 is 1.5;"},
		{"embeddings overflowing token", "/v1/embeddings", `{"model":"mock-embed","input":[[1e400]]}`, nil, 400, "input", "token 0 of input 0 is 1e400;"},
		{"embeddings huge token", "/v1/embeddings", `{"model":"mock-embed","input":[[99999999999999999999999999999999999999]]}`, nil, 400, "input", "is 99999999999999999999999999999...;"},
		{"embeddings token beyond 2^31", "/v1/embeddings", `{"model":"mock-embed","input":[[2147483648]]}`, nil, 400, "input", "is 2147483648;"},
		{"embeddings string token", "/v1/embeddings", `{"model":"mock-embed","input":[[1,"2"]]}`, nil, 400, "input", "token 1 of input 0 is not a number"},
		{"embeddings null token", "/v1/embeddings", `{"model":"mock-embed","input":[[null]]}`, nil, 400, "input", "is not a number"},
		{"embeddings a bare token", "/v1/embeddings", `{"model":"mock-embed","input":7}`, nil, 400, "input", "an array of token ids"},
		{"embeddings empty input", "/v1/embeddings", `{"model":"mock-embed","input":[]}`, nil, 400, "input", "must not be empty"},
		{"embeddings empty string", "/v1/embeddings", `{"model":"mock-embed","input":["a",""]}`, nil, 400, "input", "input[1] is empty"},
		{"embeddings no input", "/v1/embeddings", `{"model":"mock-embed"}`, nil, 400, "input", "must not be empty"},
		{"embeddings bad format", "/v1/embeddings", `{"model":"mock-embed","input":"a","encoding_format":"int8"}`, nil, 400, "encoding_format", "float"},
		{"embeddings zero dimensions", "/v1/embeddings", `{"model":"mock-embed","input":"a","dimensions":0}`, nil, 400, "dimensions", "between 1 and"},
		{"embeddings wrong type", "/v1/embeddings", `{"model":"mock-embed","input":"a","dimensions":"big"}`, nil, 400, "dimensions", "expected an integer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, &fakeGateway{}, httpapi.Options{MaxBodyBytes: 1024})
			path := tc.path
			if path == "" {
				path = "/v1/chat/completions"
			}
			e := errorOf(t, r.do("POST", path, tc.body, tc.header...), tc.status)
			if want := cmp.Or(tc.param, "<null>"); str(e.Param) != want {
				t.Errorf("param = %s, want %s", str(e.Param), want)
			}
			if !strings.Contains(e.Message, tc.inMessage) {
				t.Errorf("message %q does not contain %q", e.Message, tc.inMessage)
			}
			if e.Type != "invalid_request_error" {
				t.Errorf("type = %q", e.Type)
			}
			// Every refusal reaches the gateway once, to be recorded: as a
			// refusal of an undecodable body, or as a call it refuses.
			if calls, refused := r.gw.callCount(), r.gw.refusedCount(); calls+refused != 1 {
				t.Errorf("the gateway saw %d calls and %d refusals, want one of either", calls, refused)
			}
			if !strings.Contains(r.logged(), "level=INFO msg=\"request failed\"") {
				t.Errorf("the refusal was not logged at info:\n%s", r.logged())
			}
		})
	}
}

// TestErrorTable checks the mapping from each domain error kind to status,
// OpenAI error type, code and headers.
func TestErrorTable(t *testing.T) {
	cases := []struct {
		name        string
		err         error
		status      int
		typ, code   string
		param       string
		retryAfter  string
		shouldRetry string
		level       string
	}{
		{"invalid", domain.InvalidParam("max_tokens", "max_tokens 9000 exceeds the limit of model"), 400, "invalid_request_error", "invalid_value", "max_tokens", "", "", "INFO"},
		{"unauthenticated", &domain.Error{Kind: domain.KindUnauthenticated, Message: "revoked"}, 401, "invalid_request_error", "invalid_api_key", "", "", "", "INFO"},
		{"forbidden", &domain.Error{Kind: domain.KindForbidden, Param: "model", Message: "this API key may not use model"}, 403, "permission_error", "model_not_allowed", "model", "", "", "INFO"},
		{"not found", &domain.Error{Kind: domain.KindNotFound, Param: "model", Code: "model_not_found", Message: "The model does not exist"}, 404, "invalid_request_error", "model_not_found", "model", "", "", "INFO"},
		{"not found, naming no code", domain.Errorf(domain.KindNotFound, "Response with id 'resp_x' not found."), 404, "invalid_request_error", "<null>", "", "", "", "INFO"},
		{"budget", &domain.Error{Kind: domain.KindBudgetExceeded, Message: "daily budget of user alice exhausted"}, 429, "insufficient_quota", "budget_exceeded", "", "", "false", "INFO"},
		{"rate", &domain.Error{Kind: domain.KindRateLimited, Code: "rate_limit_exceeded", Message: "rate limit", RetryAfter: 2500 * time.Millisecond}, 429, "rate_limit_error", "rate_limit_exceeded", "", "3", "", "INFO"},
		{"rate without a hint", &domain.Error{Kind: domain.KindRateLimited, Message: "rate limit"}, 429, "rate_limit_error", "rate_limit_exceeded", "", "1", "", "INFO"},
		{"unavailable", domain.Wrap(domain.KindUnavailable, errors.New("pool acquire: context deadline exceeded"), "the database is busy"), 503, "server_error", "service_unavailable", "", "1", "", "WARN"},
		{"unavailable with a hint", &domain.Error{Kind: domain.KindUnavailable, Code: "overloaded", Message: "at the limit", RetryAfter: 200 * time.Millisecond}, 503, "server_error", "overloaded", "", "1", "", "WARN"},
		{"upstream", &domain.Error{Kind: domain.KindUpstream, Message: "provider failed after 3 attempts", Err: errors.New("502 from upstream")}, 502, "server_error", "upstream_error", "", "", "", "WARN"},
		{"internal", domain.Wrap(domain.KindInternal, errors.New("secret-cause: nil map"), "ledger bug"), 500, "server_error", "internal_error", "", "", "", "ERROR"},
		{"unclassified", errors.New("secret-cause: boom"), 500, "server_error", "internal_error", "", "", "", "ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
				return gateway.ChatResult{Result: gateway.Result{ProviderTime: time.Millisecond}}, tc.err
			}}
			r := newRig(t, gw, httpapi.Options{})
			rec := r.do("POST", "/v1/chat/completions", helloBody)
			e := errorOf(t, rec, tc.status)
			if e.Type != tc.typ || str(e.Code) != tc.code {
				t.Errorf("type, code = %q, %s; want %q, %q", e.Type, str(e.Code), tc.typ, tc.code)
			}
			if want := cmp.Or(tc.param, "<null>"); str(e.Param) != want {
				t.Errorf("param = %s, want %s", str(e.Param), want)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if got := rec.Header().Get("X-Should-Retry"); got != tc.shouldRetry {
				t.Errorf("X-Should-Retry = %q, want %q", got, tc.shouldRetry)
			}
			if tc.status == 500 {
				if strings.Contains(rec.Body.String(), "secret-cause") || strings.Contains(rec.Body.String(), "ledger bug") ||
					!strings.Contains(e.Message, rec.Header().Get("X-Request-Id")) {
					t.Errorf("500 body reveals the cause or lacks the request id: %s", rec.Body)
				}
			}
			log := r.logged()
			if strings.Count(log, "request failed") != 1 || !strings.Contains(log, "level="+tc.level) ||
				!strings.Contains(log, "status="+strconv.Itoa(tc.status)) ||
				!strings.Contains(log, "request_id="+rec.Header().Get("X-Request-Id")) {
				t.Errorf("want one %s log line with status and request id, got:\n%s", tc.level, log)
			}
			if strings.Contains(log, goodKey) || strings.Contains(log, `"Hi"`) {
				t.Errorf("the log holds a key or prompt text:\n%s", log)
			}
		})
	}
}

func TestAuditReasonMessageNamesTheHeader(t *testing.T) {
	gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
		return gateway.ChatResult{}, &domain.Error{Kind: domain.KindInvalid, Code: "audit_reason_required", Param: "audit_reason",
			Message: "an audit reason of at least 3 characters is required"}
	}}
	r := newRig(t, gw, httpapi.Options{})
	e := errorOf(t, r.do("POST", "/v1/chat/completions", helloBody, "X-Audit-Reason", ""), 400)
	if !strings.Contains(e.Message, "X-Audit-Reason header") || str(e.Code) != "audit_reason_required" {
		t.Errorf("error = %+v", e)
	}
	if call := r.gw.lastCall(t); call.AuditReason != "" {
		t.Errorf("audit reason = %q", call.AuditReason)
	}
}

func TestAuthentication(t *testing.T) {
	cases := []struct {
		name, auth string
		authErr    error
		status     int
		code       string
	}{
		{"missing", "", nil, 401, "missing_api_key"},
		{"basic scheme", "Basic dXNlcjpwYXNz", nil, 401, "invalid_api_key"},
		{"no token", "Bearer", nil, 401, "invalid_api_key"},
		{"blank token", "Bearer   ", nil, 401, "invalid_api_key"},
		{"two tokens", "Bearer a b", nil, 401, "invalid_api_key"},
		{"unknown key", "Bearer tg-unknown-0000000000000000", nil, 401, "invalid_api_key"},
		{"key store down", "Bearer " + goodKey,
			domain.Wrap(domain.KindUnavailable, errors.New("acquire timeout"), "the key store is unavailable"), 503, "service_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, &fakeGateway{authErr: tc.authErr}, httpapi.Options{})
			for _, path := range []string{"/v1/chat/completions", "/v1/models"} {
				method := "POST"
				if path == "/v1/models" {
					method = "GET"
				}
				rec := r.do(method, path, helloBody, "Authorization", tc.auth)
				e := errorOf(t, rec, tc.status)
				if str(e.Code) != tc.code {
					t.Errorf("%s: code = %s, want %s", path, str(e.Code), tc.code)
				}
				if tc.status == 401 && (e.Type != "invalid_request_error" || rec.Header().Get("WWW-Authenticate") == "") {
					t.Errorf("%s: type %q, WWW-Authenticate %q", path, e.Type, rec.Header().Get("WWW-Authenticate"))
				}
				if tc.status == 503 && rec.Header().Get("Retry-After") != "1" {
					t.Errorf("%s: Retry-After = %q", path, rec.Header().Get("Retry-After"))
				}
			}
			if r.gw.callCount() != 0 {
				t.Error("an unauthenticated request reached the gateway")
			}
		})
	}
	t.Run("lower-case scheme", func(t *testing.T) {
		r := newRig(t, &fakeGateway{}, httpapi.Options{})
		if rec := r.do("GET", "/v1/models", "", "Authorization", "bearer "+goodKey); rec.Code != 200 {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body)
		}
	})
}

var overheadPattern = regexp.MustCompile(`^\d+(\.\d{1,3})?$`)

// TestEveryResponseCarriesTheHeaders sends requests that end in each kind of
// response and checks X-Request-Id and X-Tidygate-Overhead-Ms on all of them.
func TestEveryResponseCarriesTheHeaders(t *testing.T) {
	gw := &fakeGateway{chat: func(_ context.Context, req domain.ChatRequest) (gateway.ChatResult, error) {
		if req.Model == "boom" {
			return gateway.ChatResult{}, errors.New("boom")
		}
		return gateway.ChatResult{Result: okResult, Response: domain.ChatResponse{Content: "ok"}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{MaxBodyBytes: 200})
	cases := []struct {
		method, path, body string
		header             []string
		status             int
	}{
		{"POST", "/v1/chat/completions", helloBody, nil, 200},
		{"POST", "/v1/chat/completions", `{"model":"boom","messages":[{"role":"user","content":"x"}]}`, nil, 500},
		{"POST", "/v1/chat/completions", `{`, nil, 400},
		{"POST", "/v1/chat/completions", strings.Repeat(" ", 300), nil, 413},
		{"POST", "/v1/chat/completions", helloBody, []string{"Authorization", ""}, 401},
		{"GET", "/v1/chat/completions", "", nil, 405},
		{"GET", "/v2/nothing", "", nil, 404},
		{"GET", "/v1/models", "", nil, 200},
		{"GET", "/v1/usage", "", nil, 200},
		{"POST", "/v1/embeddings", `{"model":"mock-embed","input":"x"}`, nil, 200},
	}
	for _, tc := range cases {
		rec := r.do(tc.method, tc.path, tc.body, tc.header...)
		if rec.Code != tc.status {
			t.Errorf("%s %s: status = %d, want %d: %s", tc.method, tc.path, rec.Code, tc.status, rec.Body)
		}
		if id := rec.Header().Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
			t.Errorf("%s %s: X-Request-Id = %q", tc.method, tc.path, id)
		}
		if o := rec.Header().Get("X-Tidygate-Overhead-Ms"); !overheadPattern.MatchString(o) {
			t.Errorf("%s %s: X-Tidygate-Overhead-Ms = %q", tc.method, tc.path, o)
		}
	}
}

// stepClock returns start on its first call and start+step on every later one.
func stepClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	calls := 0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return start
		}
		return start.Add(step)
	}
}

func TestOverheadExcludesProviderTime(t *testing.T) {
	for _, tc := range []struct {
		provider time.Duration
		err      error
		want     string
	}{
		{30 * time.Millisecond, nil, "70"},
		{30*time.Millisecond + 500*time.Microsecond, nil, "69.5"},
		{12*time.Millisecond + 345678*time.Nanosecond, nil, "87.654"},
		{40 * time.Millisecond, &domain.Error{Kind: domain.KindUpstream, Message: "down"}, "60"},
		{200 * time.Millisecond, nil, "0"}, // never negative
	} {
		gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
			return gateway.ChatResult{Result: gateway.Result{ProviderTime: tc.provider}}, tc.err
		}}
		r := newRig(t, gw, httpapi.Options{Now: stepClock(time.Unix(1_700_000_000, 0), 100*time.Millisecond),
			NewRequestID: func() string { return "fixed" }})
		rec := r.do("POST", "/v1/chat/completions", helloBody)
		if got := rec.Header().Get("X-Tidygate-Overhead-Ms"); got != tc.want {
			t.Errorf("provider %v: overhead = %q, want %q", tc.provider, got, tc.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{NewRequestID: func() string { return "generated-1" }})
	for _, tc := range []struct{ sent, client string }{
		{"client-abc_123.4:5", "client-abc_123.4:5"},
		{"0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{strings.Repeat("a", 129), ""},
		{"has space", ""},
		{"new\nline", ""},
		{"", ""},
	} {
		rec := r.do("POST", "/v1/chat/completions", helloBody, "X-Request-Id", tc.sent)
		// tidygate's own id is always the key: a client cannot repeat it.
		if got := rec.Header().Get("X-Request-Id"); got != "generated-1" {
			t.Errorf("sent %q: X-Request-Id = %q, want tidygate's own", tc.sent, got)
		}
		if got := rec.Header().Get("X-Client-Request-Id"); got != tc.client {
			t.Errorf("sent %q: X-Client-Request-Id = %q, want %q", tc.sent, got, tc.client)
		}
		if call := r.gw.lastCall(t); call.RequestID != "generated-1" || call.ClientRequestID != tc.client {
			t.Errorf("sent %q: the gateway got request id %q, client id %q", tc.sent, call.RequestID, call.ClientRequestID)
		}
		var body struct{ ID string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if body.ID != "chatcmpl-generated-1" {
			t.Errorf("sent %q: completion id %q", tc.sent, body.ID)
		}
	}
	// Failures carry the id too.
	rec := r.do("GET", "/nowhere", "", "X-Request-Id", "trace-me")
	if rec.Header().Get("X-Request-Id") != "generated-1" || rec.Header().Get("X-Client-Request-Id") != "trace-me" ||
		!strings.Contains(r.logged(), "request_id=generated-1") {
		t.Errorf("404: X-Request-Id = %q; log:\n%s", rec.Header().Get("X-Request-Id"), r.logged())
	}
}

func TestUnknownRouteAndWrongMethod(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	e := errorOf(t, r.do("POST", "/v1/completions", helloBody), 404)
	if e.Message != "Invalid URL (POST /v1/completions)" || str(e.Code) != "unknown_url" {
		t.Errorf("404 = %+v", e)
	}
	rec := r.do("DELETE", "/v1/models", "")
	e = errorOf(t, rec, 405)
	if !strings.Contains(e.Message, "DELETE") || str(e.Code) != "method_not_allowed" || rec.Header().Get("Allow") != "GET" {
		t.Errorf("405 = %+v, Allow %q", e, rec.Header().Values("Allow"))
	}
	rec = r.do("GET", "/v1/embeddings", "")
	if errorOf(t, rec, 405); rec.Header().Get("Allow") != "POST" {
		t.Errorf("Allow = %q", rec.Header().Values("Allow"))
	}
}

func TestProbesNeedNoKeyAndNothingElseOperationalIsServed(t *testing.T) {
	probes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("probe " + r.URL.Path)) })
	r := newRig(t, &fakeGateway{}, httpapi.Options{Probes: probes})
	for _, path := range []string{"/healthz", "/readyz"} {
		rec := r.do("GET", path, "", "Authorization", "")
		if rec.Code != 200 || rec.Body.String() != "probe "+path || rec.Header().Get("X-Request-Id") == "" {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Body)
		}
	}
	for _, path := range []string{"/metrics", "/debug/startup", "/debug/pprof/heap"} {
		errorOf(t, r.do("GET", path, "", "Authorization", ""), 404)
	}
	r = newRig(t, &fakeGateway{}, httpapi.Options{})
	errorOf(t, r.do("GET", "/healthz", ""), 404)
}

func TestPanicIsAGeneric500(t *testing.T) {
	gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
		panic("secret-cause: index out of range")
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/chat/completions", helloBody)
	e := errorOf(t, rec, 500)
	if strings.Contains(rec.Body.String(), "secret-cause") || str(e.Code) != "internal_error" {
		t.Errorf("500 = %s", rec.Body)
	}
	if log := r.logged(); strings.Count(log, "request failed") != 1 || !strings.Contains(log, "secret-cause") {
		t.Errorf("the panic is not logged once with its cause:\n%s", log)
	}
}

func TestEmbeddings(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	type item struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	}
	var got struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	for body, vectors := range map[string]int{
		`{"model":"mock-embed","input":["one","two"],"encoding_format":"float","user":"u"}`: 2,
		`{"model":"mock-embed","input":[[9906,1917],[15339]]}`:                              2, // token arrays, as LangChain sends them
		`{"model":"mock-embed","input":[9906,1917]}`:                                        1, // one token array: one input
		`{"model":"mock-embed","input":"one"}`:                                              1,
	} {
		rec := r.do("POST", "/v1/embeddings", body)
		if rec.Code != 200 {
			t.Fatalf("status = %d: %s", rec.Code, rec.Body)
		}
		got.Data = nil
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Object != "list" || got.Model != "mock-embed" || got.Usage.PromptTokens != 2*len(got.Data) ||
			got.Usage.TotalTokens != got.Usage.PromptTokens || rec.Header().Get("X-Tidygate-Model") != "mock-embed" {
			t.Errorf("%s: response = %+v", body, got)
		}
		if len(got.Data) != vectors {
			t.Errorf("%s: %d vectors; want %d", body, len(got.Data), vectors)
		}
		for i, it := range got.Data {
			var v []float32
			if err := json.Unmarshal(it.Embedding, &v); err != nil || it.Object != "embedding" || it.Index != i ||
				len(v) != 3 || v[0] != float32(i) || v[2] != -1.25 {
				t.Errorf("data[%d] = %+v (%v)", i, it, err)
			}
		}
	}

	rec := r.do("POST", "/v1/embeddings", `{"model":"mock-embed","input":["a","b"],"encoding_format":"base64","dimensions":3}`)
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Data) != 2 {
		t.Fatalf("base64: %v %s", err, rec.Body)
	}
	var s string
	if err := json.Unmarshal(got.Data[1].Embedding, &s); err != nil {
		t.Fatalf("base64 embedding is not a string: %s", got.Data[1].Embedding)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 12 {
		t.Fatalf("base64 embedding %q: %v", s, err)
	}
	for i, want := range []float32{1, 0.5, -1.25} {
		if f := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); f != want {
			t.Errorf("base64 value %d = %v, want %v", i, f, want)
		}
	}
}

func TestEmbeddingsRefusesUnusableVectors(t *testing.T) {
	for name, vectors := range map[string][][]float32{
		"too few": {{1}},
		"NaN":     {{float32(math.NaN())}, {1}},
	} {
		gw := &fakeGateway{embed: func(context.Context, domain.EmbedRequest) (gateway.EmbedResult, error) {
			return gateway.EmbedResult{Response: domain.EmbedResponse{Vectors: vectors}}, nil
		}}
		r := newRig(t, gw, httpapi.Options{})
		if e := errorOf(t, r.do("POST", "/v1/embeddings", `{"model":"mock-embed","input":["a","b"]}`), 502); str(e.Code) != "upstream_error" {
			t.Errorf("%s: %+v", name, e)
		}
	}
}

func TestModels(t *testing.T) {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created *int64 `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := func(c domain.Caller) []model {
		r := newRig(t, &fakeGateway{caller: c}, httpapi.Options{})
		rec := r.do("GET", "/v1/models", "")
		var got struct {
			Object string  `json:"object"`
			Data   []model `json:"data"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || got.Object != "list" {
			t.Fatalf("models: %d %v %s", rec.Code, err, rec.Body)
		}
		for _, m := range got.Data {
			if m.Object != "model" || m.Created == nil {
				t.Errorf("model object %+v", m)
			}
		}
		return got.Data
	}
	ids := func(ms []model) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.ID+"/"+m.OwnedBy)
		}
		return strings.Join(s, " ")
	}
	if got := ids(list(domain.Caller{})); got != "mock-chat/mock mock/tidygate mock-embed/mock" {
		t.Errorf("everything: %s", got)
	}
	if got := ids(list(domain.Caller{AllowedModels: []string{"mock"}})); got != "mock/tidygate" {
		t.Errorf("alias only: %s", got)
	}
	if got := ids(list(domain.Caller{AllowedModels: []string{"mock-chat"}})); got != "mock-chat/mock mock/tidygate" {
		t.Errorf("model and so its alias: %s", got)
	}
}

// TestModel: GET /v1/models/{model} answers an entry of the caller's list,
// and a name the caller may not use is not found, as it is not listed.
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		allowed  []string
		status   int
		want     string
	}{
		{"a model", "mock-chat", nil, 200, `{"id":"mock-chat","object":"model","created":0,"owned_by":"mock"}`},
		{"an alias", "mock", nil, 200, `{"id":"mock","object":"model","created":0,"owned_by":"tidygate"}`},
		{"the alias only", "mock", []string{"mock"}, 200, `{"id":"mock","object":"model","created":0,"owned_by":"tidygate"}`},
		{"not allowed", "mock-embed", []string{"mock-chat"}, 404, ""},
		{"unknown", "gpt-nope", nil, 404, ""},
		{"with a slash", "org/mock-chat", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, &fakeGateway{caller: domain.Caller{AllowedModels: tc.allowed}}, httpapi.Options{})
			rec := r.do("GET", "/v1/models/"+tc.id, "")
			if tc.status == 200 {
				if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != tc.want {
					t.Fatalf("GET /v1/models/%s = %d %s; want %s", tc.id, rec.Code, rec.Body, tc.want)
				}
				return
			}
			e := errorOf(t, rec, 404)
			if str(e.Code) != "model_not_found" || str(e.Param) != "model" || !strings.Contains(e.Message, strconv.Quote(tc.id)) {
				t.Errorf("error = %+v", e)
			}
		})
	}
}

// TestModelWithEscapedSlash: the SDKs escape a model id's slash as %2F
// (OpenAI's Node and Go SDKs, Anthropic's), as vLLM's and Hugging Face's
// "org/model" names need; the id is the unescaped one, in both dialects.
func TestModelWithEscapedSlash(t *testing.T) {
	slashed := domain.Model{Name: "meta-llama/Llama-3.1-8B", Type: domain.ModelChat, Provider: "vllm", Aliases: []string{"llama3.1:8b"}}
	r := newRig(t, &fakeGateway{models: []domain.Model{chatModel, slashed}}, httpapi.Options{})
	for _, path := range []string{"meta-llama/Llama-3.1-8B", "meta-llama%2FLlama-3.1-8B", "meta-llama%2fLlama-3.1-8B"} {
		rec := r.do("GET", "/v1/models/"+path, "")
		want := `{"id":"meta-llama/Llama-3.1-8B","object":"model","created":0,"owned_by":"vllm"}`
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("GET /v1/models/%s = %d %s; want %s", path, rec.Code, rec.Body, want)
		}
		rec = r.do("GET", "/v1/models/"+path, "", "Anthropic-Version", "2023-06-01")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id":"meta-llama/Llama-3.1-8B"`) {
			t.Errorf("Anthropic GET /v1/models/%s = %d %s", path, rec.Code, rec.Body)
		}
	}
	if rec := r.do("GET", "/v1/models/llama3.1%3A8b", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"id":"llama3.1:8b"`) {
		t.Errorf("GET /v1/models/llama3.1%%3A8b = %d %s", rec.Code, rec.Body)
	}
	rec := r.do("GET", "/v1/models/org%2Fnope", "")
	if e := errorOf(t, rec, 404); !strings.Contains(e.Message, `"org/nope"`) {
		t.Errorf("unknown model: %+v, want the unescaped id named", e)
	}
}

func TestUsage(t *testing.T) {
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	gw := &fakeGateway{caller: domain.Caller{User: "alice", Team: "risk"},
		usage: func(_ context.Context, c domain.Caller) (domain.UsageReport, error) {
			return domain.UsageReport{User: c.User, Team: c.Team,
				Rows: []domain.UsageRow{{Day: day, Model: "mock-chat", Requests: 3, PromptTokens: 30, CompletionTokens: 12, Cost: 1_234_567}},
				Budgets: []domain.BudgetStatus{{
					Budget: domain.Budget{Scope: domain.ScopeUser, ScopeID: "alice", Period: domain.PeriodDay, Limit: 5_000_000},
					Spent:  1_234_567, Reserved: 50,
				}},
			}, nil
		}}
	r := newRig(t, gw, httpapi.Options{Now: func() time.Time { return day.Add(15 * time.Hour) }})
	rec := r.do("GET", "/v1/usage", "")
	want := `{"object":"usage_report","user":"alice","team":"risk",` +
		`"rows":[{"date":"2026-03-14","model":"mock-chat","requests":3,"prompt_tokens":30,"completion_tokens":12,"total_tokens":42,"cost_usd":"1.234567","cost_micros":1234567}],` +
		`"budgets":[{"scope":"user","scope_id":"alice","period":"day","period_start":"2026-03-14T00:00:00Z","resets_at":"2026-03-15T00:00:00Z",` +
		`"limit_usd":"5.000000","spent_usd":"1.234567","reserved_usd":"0.000050","remaining_usd":"3.765383",` +
		`"limit_micros":5000000,"spent_micros":1234567,"reserved_micros":50,"remaining_micros":3765383}]}`
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
		t.Errorf("usage = %d\n%s\nwant\n%s", rec.Code, rec.Body, want)
	}

	gw.usage = func(context.Context, domain.Caller) (domain.UsageReport, error) {
		return domain.UsageReport{}, domain.Wrap(domain.KindUnavailable, errors.New("pool"), "the ledger is unavailable")
	}
	rec = r.do("GET", "/v1/usage", "")
	if errorOf(t, rec, 503); rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestEmptyUsageListsAreArrays(t *testing.T) {
	r := newRig(t, &fakeGateway{}, httpapi.Options{})
	if body := r.do("GET", "/v1/usage", "").Body.String(); !strings.Contains(body, `"rows":[]`) || !strings.Contains(body, `"budgets":[]`) {
		t.Errorf("usage = %s", body)
	}
}

// A chat completion's usage carries the token classes in OpenAI's details,
// the totals including them; details that are zero are left out.
func TestChatCompletionUsageByClass(t *testing.T) {
	var usage domain.Usage
	gw := &fakeGateway{chat: func(_ context.Context, req domain.ChatRequest) (gateway.ChatResult, error) {
		return gateway.ChatResult{Response: domain.ChatResponse{Content: "ok", FinishReason: domain.FinishStop, Usage: usage}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	for _, tc := range []struct {
		usage domain.Usage
		want  string
	}{
		{domain.Usage{PromptTokens: 100, CompletionTokens: 30, CacheReadTokens: 64, CacheWriteTokens: 6, ReasoningTokens: 20},
			`{"prompt_tokens":100,"completion_tokens":30,"total_tokens":130,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":20}}`},
		{domain.Usage{PromptTokens: 100, CompletionTokens: 30}, `{"prompt_tokens":100,"completion_tokens":30,"total_tokens":130}`},
	} {
		usage = tc.usage
		rec := r.do("POST", "/v1/chat/completions", `{"model":"mock","messages":[{"role":"user","content":"Hi"}]}`, "X-Audit-Reason", "classes")
		var got struct {
			Usage json.RawMessage `json:"usage"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || string(got.Usage) != tc.want {
			t.Errorf("usage = %s (%v), want %s", got.Usage, err, tc.want)
		}
	}
}

// Each dialect's call names its own endpoint, so that its record (and its
// trace) says which API it came through; so does a refusal of its body.
func TestEachDialectNamesItsEndpoint(t *testing.T) {
	for _, tc := range []struct {
		path, body string
		want       domain.Endpoint
	}{
		{"/v1/chat/completions", `{"model":"mock","messages":[{"role":"user","content":"Hi"}]}`, domain.EndpointChat},
		{"/v1/messages", `{"model":"mock","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}`, domain.EndpointMessages},
		{"/v1/responses", `{"model":"mock","input":"Hi"}`, domain.EndpointResponses},
		{"/v1/embeddings", `{"model":"mock-embed","input":"Hi"}`, domain.EndpointEmbeddings},
	} {
		gw := &fakeGateway{}
		r := newRig(t, gw, httpapi.Options{})
		if rec := r.do("POST", tc.path, tc.body, "X-Audit-Reason", "endpoints"); rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.path, rec.Code, rec.Body)
		}
		if got := gw.lastCall(t).Endpoint; got != tc.want {
			t.Errorf("%s: the call names endpoint %q, want %q", tc.path, got, tc.want)
		}
		r.do("POST", tc.path, `{"model":"mock",`, "X-Audit-Reason", "endpoints")
		if got := gw.refusedEndpoint(t); got != tc.want {
			t.Errorf("%s: a refused body is recorded for endpoint %q, want %q", tc.path, got, tc.want)
		}
	}
}
