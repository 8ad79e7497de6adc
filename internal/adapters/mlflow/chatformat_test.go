package mlflow

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

// agentCall is a call in an agent's tool loop: the model was offered a
// tool, called it, got its result (with an image by URL and one inline),
// and answers with a thought, some text and another tool call; its usage
// has every token class.
func agentCall(id string, ep domain.Endpoint) domain.CallRecord {
	r := sample(id, okChat, 1)
	r.Endpoint = ep
	r.Tools = []domain.Tool{{Name: "read_file", Description: "Read a file", Parameters: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`),
		Strict: true}}
	r.Messages = []domain.Message{
		{Role: domain.RoleSystem, Content: "You are a coding agent."},
		{Role: domain.RoleUser, Content: "Look at main.go and this diagram", Blocks: []domain.Block{
			domain.TextBlock("Look at main.go and this diagram"),
			{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/diagram.png"}},
			{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: strings.Repeat("QUFB", 1000)}},
		}},
		{Role: domain.RoleAssistant, Content: "Reading it.", Blocks: []domain.Block{
			domain.TextBlock("Reading it."),
			{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_1", Name: "read_file", Arguments: `{"path":"main.go"}`}},
		}},
		{Role: domain.RoleUser, Blocks: []domain.Block{
			{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{CallID: "call_1", Content: []domain.Block{domain.TextBlock("package main")}}},
		}},
	}
	r.Output = "It is a main package."
	r.OutputBlocks = []domain.Block{
		{Type: domain.BlockReasoning, Text: "The file declares package main.", Reasoning: domain.Reasoning{Signature: "sig-secret"}},
		domain.TextBlock("It is a main package."),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_2", Name: "read_file", Arguments: `{"path":"go.mod"}`}},
	}
	r.Usage = domain.Usage{PromptTokens: 1300, CompletionTokens: 90, CacheReadTokens: 1000, CacheWriteTokens: 200, ReasoningTokens: 40}
	price := domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 15_000_000, CacheReadPerMillion: 300_000, CacheWritePerMillion: 3_750_000}
	r.InputCost, r.OutputCost = price.InputCost(r.Usage), price.OutputCost(r.Usage)
	return r
}

// rootAttributes returns the root span's attributes, each parsed as JSON.
func rootAttributes(t *testing.T, b rows) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range parseSpan(t, b.spans[0]).Attributes {
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			t.Fatalf("attribute %s = %q is not JSON", k, v)
		}
		out[k] = x
	}
	return out
}

// at walks parsed JSON: a string steps into an object, an int into a list.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %v is not an object", path, v)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: %v has no item %d", path, v, k)
			}
			v = l[k]
		}
	}
	return v
}

func TestTokenUsageCarriesTheClassesUnderMLflowsKeys(t *testing.T) {
	r := agentCall("req-classes", domain.EndpointMessages)
	b := traceRows(t, r, ContentNone)
	want := map[string]float64{"input_tokens": 1300, "output_tokens": 90, "total_tokens": 1390,
		"cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200}
	var traceUsage map[string]float64
	if err := json.Unmarshal([]byte(metadata(b)["mlflow.trace.tokenUsage"]), &traceUsage); err != nil || !reflect.DeepEqual(traceUsage, want) {
		t.Errorf("mlflow.trace.tokenUsage = %v (%v), want %v", traceUsage, err, want)
	}
	var spanUsage map[string]float64
	if err := json.Unmarshal([]byte(parseSpan(t, b.spans[1]).Attributes["mlflow.chat.tokenUsage"]), &spanUsage); err != nil || !reflect.DeepEqual(spanUsage, want) {
		t.Errorf("mlflow.chat.tokenUsage = %v (%v), want %v", spanUsage, err, want)
	}
	metrics := map[string]float64{}
	for _, m := range b.traceMetrics {
		metrics[m.Key] = m.Value
	}
	if !reflect.DeepEqual(metrics, want) {
		t.Errorf("trace metrics = %v, want %v", metrics, want)
	}
	var cost map[string]float64
	_ = json.Unmarshal([]byte(metadata(b)["mlflow.trace.cost"]), &cost)
	// 100 uncached at $3, 1000 read at $0.30, 200 written at $3.75 per million: $0.00135.
	if cost["input_cost"] != 0.00135 {
		t.Errorf("input cost = %v, want the sum over the classes, 0.00135", cost["input_cost"])
	}

	plain := sample("req-plain", okChat, 1)
	b = traceRows(t, plain, ContentNone)
	if u := metadata(b)["mlflow.trace.tokenUsage"]; strings.Contains(u, "cache") {
		t.Errorf("a call without cache tokens has usage %s; MLflow writes no cache keys then", u)
	}
	if len(b.traceMetrics) != 3 {
		t.Errorf("trace metrics of a call without cache tokens = %+v, want the three totals", b.traceMetrics)
	}
}

func TestTheJournalKeepsTheConversation(t *testing.T) {
	r := agentCall("req-journal", domain.EndpointResponses)
	c := journaled(t, r)
	if c.rec.Usage != r.Usage || c.rec.Endpoint != domain.EndpointResponses {
		t.Errorf("usage %+v endpoint %q, want %+v %q", c.rec.Usage, c.rec.Endpoint, r.Usage, domain.EndpointResponses)
	}
	if !reflect.DeepEqual(c.rec.Tools, r.Tools) {
		t.Errorf("tools = %+v, want %+v", c.rec.Tools, r.Tools)
	}
	if got := c.rec.Messages[3].Blocks[0].ToolResult; got.CallID != "call_1" || domain.JoinText(got.Content) != "package main" {
		t.Errorf("tool result = %+v", got)
	}
	if got := c.rec.OutputBlocks[2].ToolCall; got != r.OutputBlocks[2].ToolCall {
		t.Errorf("answer's tool call = %+v, want %+v", got, r.OutputBlocks[2].ToolCall)
	}
	inline := c.rec.Messages[1].Blocks[2]
	if inline.Type != domain.BlockText || inline.Text != "[inline image, image/png, 4000 bytes of base64, not recorded]" {
		t.Errorf("an inline image was journaled as %+v, want a line saying what it was", inline)
	}
	if c.rec.OutputBlocks[0].Reasoning.Signature != "" {
		t.Error("a reasoning signature was journaled")
	}
	none, err := encodeRecord(r, ContentNone)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"main.go", "read_file", "package main"} {
		if strings.Contains(string(none), secret) {
			t.Errorf("the journal without content holds %q: %s", secret, none)
		}
	}
}

// Every dialect's call is recorded in the shape its API has, with the
// format MLflow's trace view parses it by, the conversation, tool calls
// and tool results included.
func TestEachDialectIsRecordedInItsOwnChatFormat(t *testing.T) {
	for _, tc := range []struct {
		ep     domain.Endpoint
		format string
		check  func(t *testing.T, in, out any)
	}{
		{domain.EndpointChat, "openai", func(t *testing.T, in, out any) {
			if at(t, in, "messages", 0, "role") != "system" || at(t, in, "messages", 1, "content", 1, "image_url", "url") != "https://example.com/diagram.png" {
				t.Errorf("inputs = %v", in)
			}
			if at(t, in, "messages", 2, "tool_calls", 0, "function", "name") != "read_file" || at(t, in, "messages", 3, "role") != "tool" ||
				at(t, in, "messages", 3, "tool_call_id") != "call_1" || at(t, in, "messages", 3, "content") != "package main" {
				t.Errorf("the tool call and its result are not OpenAI's: %v", at(t, in, "messages"))
			}
			if at(t, in, "tools", 0, "function", "name") != "read_file" || at(t, in, "tools", 0, "function", "strict") != true {
				t.Errorf("tools = %v", at(t, in, "tools"))
			}
			if at(t, out, "object") != "chat.completion" || at(t, out, "choices", 0, "message", "content") != "It is a main package." ||
				at(t, out, "choices", 0, "message", "tool_calls", 0, "function", "arguments") != `{"path":"go.mod"}` {
				t.Errorf("outputs = %v", out)
			}
			if at(t, out, "usage", "prompt_tokens") != 1300.0 || at(t, out, "usage", "prompt_tokens_details", "cached_tokens") != 1000.0 ||
				at(t, out, "usage", "completion_tokens_details", "reasoning_tokens") != 40.0 {
				t.Errorf("usage = %v", at(t, out, "usage"))
			}
		}},
		{domain.EndpointMessages, "anthropic", func(t *testing.T, in, out any) {
			if at(t, in, "system") != "You are a coding agent." || at(t, in, "messages", 0, "content", 1, "source", "url") != "https://example.com/diagram.png" {
				t.Errorf("inputs = %v", in)
			}
			if at(t, in, "messages", 1, "content", 1, "type") != "tool_use" || at(t, in, "messages", 1, "content", 1, "input", "path") != "main.go" ||
				at(t, in, "messages", 2, "content", 0, "type") != "tool_result" || at(t, in, "messages", 2, "content", 0, "tool_use_id") != "call_1" {
				t.Errorf("the tool call and its result are not Anthropic's: %v", at(t, in, "messages"))
			}
			if at(t, in, "tools", 0, "input_schema", "type") != "object" || at(t, in, "tools", 0, "strict") != true {
				t.Errorf("tools = %v", at(t, in, "tools"))
			}
			if at(t, out, "type") != "message" || at(t, out, "content", 0, "type") != "thinking" || at(t, out, "content", 1, "text") != "It is a main package." ||
				at(t, out, "content", 2, "name") != "read_file" {
				t.Errorf("outputs = %v", out)
			}
			// Anthropic's input_tokens leaves out what was read from or written to the cache.
			if at(t, out, "usage", "input_tokens") != 100.0 || at(t, out, "usage", "cache_read_input_tokens") != 1000.0 || at(t, out, "usage", "cache_creation_input_tokens") != 200.0 {
				t.Errorf("usage = %v", at(t, out, "usage"))
			}
		}},
		{domain.EndpointResponses, "openai", func(t *testing.T, in, out any) {
			if at(t, in, "instructions") != "You are a coding agent." || at(t, in, "input", 0, "content", 1, "type") != "input_image" {
				t.Errorf("inputs = %v", in)
			}
			if at(t, in, "input", 2, "type") != "function_call" || at(t, in, "input", 2, "call_id") != "call_1" ||
				at(t, in, "input", 3, "type") != "function_call_output" || at(t, in, "input", 3, "output") != "package main" {
				t.Errorf("the tool call and its result are not Responses items: %v", at(t, in, "input"))
			}
			if at(t, in, "tools", 0, "type") != "function" || at(t, in, "tools", 0, "name") != "read_file" || at(t, in, "tools", 0, "strict") != true {
				t.Errorf("tools = %v", at(t, in, "tools"))
			}
			if at(t, out, "object") != "response" || at(t, out, "output", 0, "type") != "reasoning" || at(t, out, "output", 1, "content", 0, "type") != "output_text" ||
				at(t, out, "output", 2, "type") != "function_call" {
				t.Errorf("outputs = %v", out)
			}
			if at(t, out, "usage", "input_tokens") != 1300.0 || at(t, out, "usage", "input_tokens_details", "cached_tokens") != 1000.0 {
				t.Errorf("usage = %v", at(t, out, "usage"))
			}
		}},
	} {
		t.Run(string(tc.ep), func(t *testing.T) {
			b := traceRows(t, agentCall("req-"+string(tc.ep), tc.ep), ContentFull)
			attrs := rootAttributes(t, b)
			if attrs["mlflow.message.format"] != tc.format {
				t.Errorf("mlflow.message.format = %v, want %s", attrs["mlflow.message.format"], tc.format)
			}
			if got := metadata(b)["tidygate.endpoint"]; got != string(tc.ep) {
				t.Errorf("tidygate.endpoint = %q, want %q", got, tc.ep)
			}
			tc.check(t, attrs["mlflow.spanInputs"], attrs["mlflow.spanOutputs"])
			if _, ok := attrs["mlflow.chat.messages"]; ok {
				t.Error("the conversation is written twice: in the inputs and in mlflow.chat.messages")
			}
			if at(t, attrs["mlflow.chat.tools"], 0, "type") != "function" || at(t, attrs["mlflow.chat.tools"], 0, "function", "parameters", "required", 0) != "path" {
				t.Errorf("mlflow.chat.tools = %v", attrs["mlflow.chat.tools"])
			}
			all, _ := json.Marshal(attrs)
			if strings.Contains(string(all), "QUFBQUFB") || strings.Contains(string(all), "sig-secret") {
				t.Error("the trace holds an inline image's data or a reasoning signature")
			}
		})
	}
}

func TestWithoutContentATraceHoldsNoConversation(t *testing.T) {
	for _, ep := range []domain.Endpoint{domain.EndpointChat, domain.EndpointMessages, domain.EndpointResponses, domain.EndpointCountTokens} {
		b := traceRows(t, agentCall("req-none-"+string(ep), ep), ContentNone)
		attrs := rootAttributes(t, b)
		all, _ := json.Marshal(attrs)
		for _, secret := range []string{"main.go", "read_file", "main package"} {
			if strings.Contains(string(all), secret) {
				t.Errorf("%s: the trace without content holds %q", ep, secret)
			}
		}
	}
}

// countCall is a token count that Anthropic made of agentCall's request:
// a Messages request, no answer, its count as the prompt's tokens at no
// cost.
func countCall(id string) domain.CallRecord {
	r := agentCall(id, domain.EndpointCountTokens)
	r.Output, r.OutputBlocks, r.Temperature, r.MaxTokens = "", nil, nil, 0
	r.Usage, r.InputCost, r.OutputCost = domain.Usage{PromptTokens: 2095}, 0, 0
	return r
}

// TestATokenCountIsTracedAsItsRequestAndItsCount: a count's trace holds
// its request in Anthropic's shape and its count as the token usage of
// the trace and of the provider span that counted (method count_tokens),
// at no cost, with no outputs or response preview and no MLflow gateway
// request type (none serves a count).
func TestATokenCountIsTracedAsItsRequestAndItsCount(t *testing.T) {
	b := traceRows(t, countCall("req-count"), ContentFull)
	attrs := rootAttributes(t, b)
	if attrs["mlflow.message.format"] != "anthropic" || at(t, attrs["mlflow.spanInputs"], "system") != "You are a coding agent." ||
		at(t, attrs["mlflow.spanInputs"], "messages", 1, "content", 1, "type") != "tool_use" {
		t.Errorf("format %v, inputs %v; want the Messages request", attrs["mlflow.message.format"], attrs["mlflow.spanInputs"])
	}
	if out, ok := attrs["mlflow.spanOutputs"]; ok || b.traceInfo[0].ResponsePreview != "" {
		t.Errorf("outputs %v, response preview %q; want none", out, b.traceInfo[0].ResponsePreview)
	}
	if !strings.Contains(b.traceInfo[0].RequestPreview, `"system":"You are a coding agent."`) || b.traceInfo[0].Status != "OK" {
		t.Errorf("trace_info %+v; want OK with the request as its request preview", b.traceInfo[0])
	}
	meta := metadata(b)
	if _, ok := meta["mlflow.gateway.requestType"]; ok || meta["tidygate.endpoint"] != "messages.count_tokens" || meta["mlflow.traceOutputs"] != "" {
		t.Errorf("metadata %v; want the endpoint, no request type, no outputs", meta)
	}
	if meta["mlflow.trace.tokenUsage"] != `{"input_tokens":2095,"output_tokens":0,"total_tokens":2095}` ||
		*b.traceInfo[0].InputTokens != 2095 || *b.traceInfo[0].TotalCost != 0 {
		t.Errorf("token usage %s, trace_info %+v; want the count as input tokens at no cost", meta["mlflow.trace.tokenUsage"], b.traceInfo[0])
	}
	if len(b.spans) != 2 {
		t.Fatalf("%d spans; want the root and the count's", len(b.spans))
	}
	provider := parseSpan(t, b.spans[1])
	if provider.Attributes["method"] != `"count_tokens"` || !strings.Contains(provider.Attributes["mlflow.chat.tokenUsage"], `"input_tokens":2095`) {
		t.Errorf("provider span attributes %v; want method count_tokens with the count as its usage", provider.Attributes)
	}
}
