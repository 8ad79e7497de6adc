package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// capture is a gateway whose models all pass requests through: it keeps the
// native request and answers with a canned body.
func capture(seen *gateway.Native, reqs *domain.ChatRequest) *fakeGateway {
	return &fakeGateway{native: func(_ context.Context, req domain.ChatRequest, n gateway.Native) (gateway.ChatResult, error) {
		*seen, *reqs = n, req
		return gateway.ChatResult{Result: okResult, Native: &domain.NativeResponse{Body: []byte(`{"passed":true}`), ContentType: "application/json"}}, nil
	}}
}

// unsupportedParam returns the param of an unsupported_feature error.
func unsupportedParam(t *testing.T, err error) string {
	t.Helper()
	var e *domain.Error
	if !errors.As(err, &e) || e.Code != "unsupported_feature" || e.Kind != domain.KindInvalid {
		t.Fatalf("untranslatable = %v, want an unsupported_feature error", err)
	}
	return e.Param
}

// providerOnlyCase is a request holding a feature the provider serves
// itself, and the param that names the feature.
type providerOnlyCase struct{ name, body, param string }

// checkProviderOnly posts each case's body to path. A model that takes it
// as it is gets it whole, marked untranslatable by the feature's param, with
// a domain request that validates; a model that translates refuses it by
// name. It returns the passing rig and the native request it got last.
func checkProviderOnly(t *testing.T, path string, cases []providerOnlyCase) (*rig, *gateway.Native) {
	t.Helper()
	var n gateway.Native
	var req domain.ChatRequest
	passing := newRig(t, capture(&n, &req), httpapi.Options{})
	translating := newRig(t, &fakeGateway{}, httpapi.Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if rec := passing.do("POST", path, tc.body); rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if p := unsupportedParam(t, n.Untranslatable); p != tc.param || string(n.Request.Body) != tc.body {
				t.Errorf("untranslatable names %q, native body %s", p, n.Request.Body)
			}
			if err := req.Validate(); err != nil {
				t.Errorf("the domain request does not validate: %v", err)
			}
			e := errorOf(t, translating.do("POST", path, tc.body), http.StatusBadRequest)
			if str(e.Param) != tc.param || str(e.Code) != "unsupported_feature" {
				t.Errorf("translated: %+v", e)
			}
		})
	}
	return passing, &n
}

// Anthropic's own features (server tools, the MCP connector, server tool
// results, documents and search results in the history) leave the domain
// request and mark it pass-through only; the body goes to the gateway as the
// client sent it.
func TestMessagesProviderFeaturesPassThroughOnly(t *testing.T) {
	body := `{"model":"claude","max_tokens":50,
	  "tools":[{"name":"grep","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search","max_uses":2}],
	  "messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"memo"}},{"type":"text","text":"find it"}]},
	    {"role":"assistant","content":[{"type":"server_tool_use","id":"srv_1","name":"web_search","input":{"query":"q"}},
	      {"type":"web_search_tool_result","tool_use_id":"srv_1","content":[]},{"type":"text","text":"found"}]},
	    {"role":"user","content":"thanks"}]}`
	var n gateway.Native
	var req domain.ChatRequest
	r := newRig(t, capture(&n, &req), httpapi.Options{})
	rec := r.do("POST", "/v1/messages", body)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"passed":true}` {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if p := unsupportedParam(t, n.Untranslatable); p != "messages[0].content[0].type" {
		t.Errorf("untranslatable names %q, want the first such feature, the document", p)
	}
	if string(n.Request.Body) != body || n.Request.Dialect != domain.DialectAnthropicMessages {
		t.Errorf("native request %s %q", n.Request.Body, n.Request.Dialect)
	}
	if len(req.Tools) != 1 || req.Tools[0].Name != "grep" {
		t.Errorf("tools %+v: the server tool is not a client tool", req.Tools)
	}
	if got := req.Messages[0].Blocks; len(got) != 1 || got[0].Text != "find it" {
		t.Errorf("first message blocks %+v", got)
	}
	if got := req.Messages[1].Blocks; len(got) != 1 || got[0].Text != "found" {
		t.Errorf("assistant blocks %+v", got)
	}

	mcp := `{"model":"claude","max_tokens":5,"mcp_servers":[{"type":"url","url":"https://mcp.example","name":"x"}],"messages":[{"role":"user","content":"x"}]}`
	if rec := r.do("POST", "/v1/messages", mcp); rec.Code != http.StatusOK || unsupportedParam(t, n.Untranslatable) != "mcp_servers" {
		t.Errorf("mcp_servers: status %d, untranslatable %v", rec.Code, n.Untranslatable)
	}
	// A search result's source is a URL, not an image's source object.
	search := `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[
	  {"type":"search_result","source":"https://example.com/a","title":"A","content":[{"type":"text","text":"a"}]}]}]}]}`
	if rec := r.do("POST", "/v1/messages", search); rec.Code != http.StatusOK || unsupportedParam(t, n.Untranslatable) != "messages[0].content[0].content[0].type" {
		t.Errorf("search_result: status %d, untranslatable %v", rec.Code, n.Untranslatable)
	}
	// So is an image from Anthropic's Files API, as a document from it is.
	file := `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"what?"},
	  {"type":"image","source":{"type":"file","file_id":"file_1"}}]}]}`
	if rec := r.do("POST", "/v1/messages", file); rec.Code != http.StatusOK || unsupportedParam(t, n.Untranslatable) != "messages[0].content[1].source.type" {
		t.Errorf("image file: status %d, untranslatable %v", rec.Code, n.Untranslatable)
	}
	plain := `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`
	if rec := r.do("POST", "/v1/messages", plain); rec.Code != http.StatusOK || n.Untranslatable != nil {
		t.Errorf("a plain request: status %d, untranslatable %v", rec.Code, n.Untranslatable)
	}

	// A model that translates refuses it, naming the feature, in Anthropic's shape.
	msg := anthropicErrorOf(t, newRig(t, &fakeGateway{}, httpapi.Options{}).do("POST", "/v1/messages", body), 400, "invalid_request_error")
	if !strings.Contains(msg, `content block type "document"`) || !strings.Contains(msg, "pass-through") {
		t.Errorf("message %q", msg)
	}
	msg = anthropicErrorOf(t, newRig(t, &fakeGateway{}, httpapi.Options{}).do("POST", "/v1/messages", search), 400, "invalid_request_error")
	if !strings.Contains(msg, `content block type "search_result"`) {
		t.Errorf("search_result: message %q", msg)
	}
	msg = anthropicErrorOf(t, newRig(t, &fakeGateway{}, httpapi.Options{}).do("POST", "/v1/messages", file), 400, "invalid_request_error")
	if !strings.Contains(msg, `image source type "file"`) || !strings.Contains(msg, "pass-through") {
		t.Errorf("image file: message %q", msg)
	}
}

// OpenAI's hosted tools and their items pass through only, and a request
// tidygate stores is translated: its refusal says how to pass through.
func TestResponsesHostedToolsPassThroughOnly(t *testing.T) {
	body := `{"model":"gpt","store":false,"input":[{"role":"user","content":"look"},{"type":"web_search_call","id":"ws_1","status":"completed"}],
	  "tools":[{"type":"function","name":"grep","parameters":{"type":"object"}},{"type":"web_search"}]}`
	var n gateway.Native
	var req domain.ChatRequest
	r := newRig(t, capture(&n, &req), httpapi.Options{})
	if rec := r.do("POST", "/v1/responses", body); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if p := unsupportedParam(t, n.Untranslatable); p != "input[1].type" {
		t.Errorf("untranslatable names %q", p)
	}
	if n.Request.Dialect != domain.DialectOpenAIResponses || string(n.Request.Body) != body {
		t.Errorf("native request %q %s", n.Request.Dialect, n.Request.Body)
	}
	if len(req.Tools) != 1 || req.Tools[0].Name != "grep" || len(req.Messages) != 1 {
		t.Errorf("tools %+v, messages %+v", req.Tools, req.Messages)
	}
	toolOnly := `{"model":"gpt","store":false,"input":"x","tools":[{"type":"file_search","vector_store_ids":["vs_1"]}]}`
	if r.do("POST", "/v1/responses", toolOnly); unsupportedParam(t, n.Untranslatable) != "tools[0].type" {
		t.Errorf("untranslatable %v", n.Untranslatable)
	}

	prev := domain.StoredResponse{ID: "resp_1", WithContent: true, Input: []domain.Message{{Role: domain.RoleUser, Content: "before"}}}
	continued := newRig(t, &fakeGateway{stores: true, prev: &prev}, httpapi.Options{})
	e := errorOf(t, continued.do("POST", "/v1/responses", `{"model":"gpt","input":"x","previous_response_id":"resp_1","tools":[{"type":"web_search"}]}`), http.StatusBadRequest)
	if str(e.Param) != "tools[0].type" || str(e.Code) != "unsupported_feature" || !strings.Contains(e.Message, "previous_response_id") {
		t.Errorf("continued: %+v", e)
	}
	e = errorOf(t, continued.do("POST", "/v1/responses", `{"model":"gpt","input":"x","tools":[{"name":"t"}]}`), http.StatusBadRequest)
	if str(e.Param) != "tools[0].type" || str(e.Code) == "unsupported_feature" {
		t.Errorf("a tool without a type: %+v", e)
	}
}

// A tool choice of anything but a function, a file (an input_file, an
// input_image given by file_id), a stored prompt template and log
// probabilities are OpenAI's own too: they pass through, with a domain
// request that validates, and a model that translates refuses them by name.
func TestResponsesOpenAIsOwnFeaturesPassThroughOnly(t *testing.T) {
	grep := `"tools":[{"type":"function","name":"grep","parameters":{"type":"object"}}]`
	cases := []providerOnlyCase{
		{"hosted tool choice", `{"model":"gpt","input":"x",` + grep + `,"tool_choice":{"type":"web_search"}}`, "tool_choice"},
		{"file_search choice", `{"model":"gpt","input":"x",` + grep + `,"tool_choice":{"type":"file_search"}}`, "tool_choice"},
		{"allowed tools", `{"model":"gpt","input":"x",` + grep + `,"tool_choice":{"type":"allowed_tools","mode":"auto","tools":[{"type":"function","name":"grep"}]}}`, "tool_choice"},
		{"custom tool choice", `{"model":"gpt","input":"x","tool_choice":{"type":"custom","name":"patch"}}`, "tool_choice"},
		{"mcp tool choice", `{"model":"gpt","input":"x","tool_choice":{"type":"mcp","server_label":"docs"}}`, "tool_choice"},
		{"hosted tool required", `{"model":"gpt","input":"x","tools":[{"type":"web_search"}],"tool_choice":"required"}`, "tools[0].type"},
		{"input_file", `{"model":"gpt","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}`,
			"input[0].content[0].type"},
		{"image by file_id", `{"model":"gpt","input":[{"role":"user","content":[{"type":"input_text","text":"what?"},{"type":"input_image","file_id":"file-1"}]}]}`,
			"input[0].content[1].file_id"},
		{"prompt", `{"model":"gpt","input":"x","prompt":{"id":"pmpt_1","variables":{"city":"Oslo"}}}`, "prompt"},
		{"top_logprobs", `{"model":"gpt","input":"x","top_logprobs":3}`, "top_logprobs"},
		{"include logprobs", `{"model":"gpt","input":"x","include":["reasoning.encrypted_content","message.output_text.logprobs"]}`, "include"},
	}
	passing, n := checkProviderOnly(t, "/v1/responses", cases)
	codex := `{"model":"gpt","input":"x","include":["reasoning.encrypted_content"],"top_logprobs":0}`
	if rec := passing.do("POST", "/v1/responses", codex); rec.Code != http.StatusOK || n.Untranslatable != nil {
		t.Errorf("encrypted reasoning, no log probabilities: status %d, untranslatable %v", rec.Code, n.Untranslatable)
	}
}

// logit_bias and web_search_options change the answer, and only OpenAI's
// own API takes them: they pass through, and a model that translates
// refuses them by name. An empty logit_bias is no feature, nor are null
// web search options; empty ones ask for a search with OpenAI's defaults.
func TestChatProviderFeaturesPassThroughOnly(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"x"}]`
	passing, n := checkProviderOnly(t, "/v1/chat/completions", []providerOnlyCase{
		{"logit_bias", `{"model":"gpt",` + msgs + `,"logit_bias":{"50256":-100},"seed":7}`, "logit_bias"},
		{"web_search_options", `{"model":"gpt",` + msgs + `,"web_search_options":{"search_context_size":"low"}}`, "web_search_options"},
		{"web_search_options, empty", `{"model":"gpt",` + msgs + `,"web_search_options":{}}`, "web_search_options"},
	})
	for _, neutral := range []string{`{"model":"gpt",` + msgs + `,"logit_bias":{}}`, `{"model":"gpt",` + msgs + `,"web_search_options":null}`} {
		if rec := passing.do("POST", "/v1/chat/completions", neutral); rec.Code != http.StatusOK || n.Untranslatable != nil {
			t.Errorf("%s: status %d, untranslatable %v", neutral, rec.Code, n.Untranslatable)
		}
	}
}

// A seed and the presence and frequency penalties are the domain request's:
// they are no provider's own, so a request holding them is translatable,
// decoded alike whether the body is read by readChatRequest or by
// json.Unmarshal (a key written with an escape sends it there). A penalty
// of 0 changes nothing and is left unset; a seed of 0 is a seed.
func TestChatSeedAndPenaltiesAreTranslated(t *testing.T) {
	var n gateway.Native
	var req domain.ChatRequest
	r := newRig(t, capture(&n, &req), httpapi.Options{})
	for _, tc := range []struct {
		name, sampling      string
		seed                *int64
		presence, frequency *float64
	}{
		{"set", `"seed":-7,"presence_penalty":0.5,"frequency_penalty":-1`, ptr[int64](-7), ptr(0.5), ptr(-1.0)},
		{"seed 0, penalties 0", `"seed":0,"presence_penalty":0,"frequency_penalty":0`, ptr[int64](0), nil, nil},
		{"null", `"seed":null,"presence_penalty":null,"frequency_penalty":null`, nil, nil, nil},
	} {
		for _, model := range []string{`"model"`, `"mod\u0065l"`} {
			t.Run(tc.name+" "+model, func(t *testing.T) {
				body := `{` + model + `:"gemini","messages":[{"role":"user","content":"x"}],` + tc.sampling + `}`
				if rec := r.do("POST", "/v1/chat/completions", body); rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				if n.Untranslatable != nil {
					t.Errorf("untranslatable: %v", n.Untranslatable)
				}
				if !samePtr(req.Seed, tc.seed) || !samePtr(req.PresencePenalty, tc.presence) || !samePtr(req.FrequencyPenalty, tc.frequency) {
					t.Errorf("seed %v, presence_penalty %v, frequency_penalty %v; want %v, %v, %v",
						show(req.Seed), show(req.PresencePenalty), show(req.FrequencyPenalty), show(tc.seed), show(tc.presence), show(tc.frequency))
				}
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }

// samePtr reports whether a and b are both nil or point to equal values.
func samePtr[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// show is a pointer's value for a message: nil or what it points to.
func show[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// A thinking block's signature survives the Responses API, which has no
// field for it: it goes out in the reasoning item's encrypted_content and
// comes back from it.
func TestResponsesKeepThinkingSignatures(t *testing.T) {
	answer := domain.ChatResponse{FinishReason: domain.FinishStop, Blocks: []domain.Block{
		{Type: domain.BlockReasoning, Text: "let me think", Reasoning: domain.Reasoning{Signature: "sig-1"}},
		domain.TextBlock("42")}}
	gw := &fakeGateway{chat: func(context.Context, domain.ChatRequest) (gateway.ChatResult, error) {
		return gateway.ChatResult{Result: okResult, Response: answer}, nil
	}, stream: func(_ context.Context, _ domain.ChatRequest, emit func(domain.ChatChunk) error) (gateway.ChatResult, error) {
		start := domain.Block{Type: domain.BlockReasoning}
		for _, c := range []domain.ChatChunk{{Index: 0, Start: &start}, {Index: 0, ReasoningDelta: "let me think"},
			{Index: 0, Signature: "sig-2"}, {Index: 1, Delta: "42"}, {FinishReason: domain.FinishStop, Usage: &domain.Usage{}}} {
			if err := emit(c); err != nil {
				return gateway.ChatResult{}, err
			}
		}
		return gateway.ChatResult{Result: okResult, Response: answer}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	rec := r.do("POST", "/v1/responses", `{"model":"claude","input":"why?"}`)
	var got struct {
		Output []struct {
			Type             string `json:"type"`
			EncryptedContent string `json:"encrypted_content"`
			Summary          []struct {
				Text string `json:"text"`
			} `json:"summary"`
		} `json:"output"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.Output) != 2 {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	item := got.Output[0]
	if item.Type != "reasoning" || item.EncryptedContent != "tidygate-signature:sig-1" || item.Summary[0].Text != "let me think" {
		t.Errorf("reasoning item %+v", item)
	}

	stream := r.do("POST", "/v1/responses", `{"model":"claude","input":"why?","stream":true}`).Body.String()
	if !strings.Contains(stream, `"encrypted_content":"tidygate-signature:sig-2"`) {
		t.Errorf("the streamed reasoning item lost its signature:\n%s", stream)
	}

	// Sent back, as Codex sends its history, it is a signed thinking block again.
	back := `{"model":"claude","input":[{"role":"user","content":"why?"},
	  {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"let me think"}],"encrypted_content":"tidygate-signature:sig-1"},
	  {"type":"reasoning","id":"rs_2","summary":[],"encrypted_content":"gAAAA-openai"},
	  {"role":"assistant","content":[{"type":"output_text","text":"42"}]},{"role":"user","content":"sure?"}]}`
	if rec := r.do("POST", "/v1/responses", back); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	blocks := r.gw.chats[len(r.gw.chats)-1].Messages[1].Blocks
	if len(blocks) != 3 || blocks[0].Reasoning != (domain.Reasoning{Signature: "sig-1"}) || blocks[0].Text != "let me think" ||
		blocks[1].Reasoning != (domain.Reasoning{Encrypted: "gAAAA-openai"}) {
		t.Errorf("assistant blocks %+v", blocks)
	}
}

// passedResponseBody is a provider's Response object: reasoning, text, a
// function call and a hosted tool's call.
const passedResponseBody = `{"id":"resp_up_1","object":"response","status":"completed","model":"gpt","store":true,"output":[
  {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"hm"}],"encrypted_content":"gAAA"},
  {"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"q"}},
  {"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Here","annotations":[]}]},
  {"type":"function_call","id":"fc_1","call_id":"call_1","name":"grep","arguments":"{}","status":"completed"}],
  "usage":{"input_tokens":9,"output_tokens":4}}`

// A response tidygate stores passes through too, and tidygate keeps its
// copy under the provider's id, read from the provider's answer, streamed
// or not.
func TestResponsesStoredPassThrough(t *testing.T) {
	usage := domain.Usage{PromptTokens: 9, CompletionTokens: 4}
	var n gateway.Native
	gw := &fakeGateway{stores: true, native: func(_ context.Context, _ domain.ChatRequest, got gateway.Native) (gateway.ChatResult, error) {
		n = got
		if got.Request.Stream {
			for _, raw := range []string{"event: response.created\ndata: {\"type\":\"response.created\"}\n\n",
				"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":" + strings.ReplaceAll(passedResponseBody, "\n", "") + "}\n\n"} {
				if err := got.Emit(domain.NativeEvent{Raw: []byte(raw)}); err != nil {
					return gateway.ChatResult{}, err
				}
			}
			return gateway.ChatResult{Result: okResult, Native: &domain.NativeResponse{Usage: usage, Counted: true}}, nil
		}
		return gateway.ChatResult{Result: okResult, Native: &domain.NativeResponse{Body: []byte(passedResponseBody), ContentType: "application/json", Usage: usage, Counted: true}}, nil
	}}
	r := newRig(t, gw, httpapi.Options{})
	for i, body := range []string{`{"model":"gpt","input":"look","tools":[{"type":"web_search"}]}`,
		`{"model":"gpt","input":"look","stream":true,"store":true}`} {
		rec := r.do("POST", "/v1/responses", body)
		if rec.Code != http.StatusOK || string(n.Request.Body) != body {
			t.Fatalf("request %d: status %d, native body %s: %s", i, rec.Code, n.Request.Body, rec.Body)
		}
		if len(gw.saved) != i+1 {
			t.Fatalf("request %d: %d responses stored", i, len(gw.saved))
		}
		sr := gw.saved[i]
		out := sr.Output
		if sr.ID != "resp_up_1" || sr.Usage != usage || sr.FinishReason != domain.FinishToolCalls || sr.Model != "mock-chat" ||
			len(sr.Input) != 1 || sr.Input[0].Content != "look" || len(out) != 3 ||
			out[0].Reasoning.Encrypted != "gAAA" || out[1].Text != "Here" || out[2].ToolCall.ID != "call_1" {
			t.Errorf("request %d: stored %+v", i, sr)
		}
	}
	if rec := r.do("POST", "/v1/responses", `{"model":"gpt","input":"look","store":false}`); rec.Code != http.StatusOK || len(gw.saved) != 2 {
		t.Errorf("store false: status %d, %d stored", rec.Code, len(gw.saved))
	}
}
