package gemini_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
)

var weather = domain.Tool{Name: "get_weather", Description: "The weather in a city.",
	Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}`)}

// TestToolsRoundTrip: the tools and tool choice as function declarations
// and function calling config; a function call without an id gets one,
// which the next turn's function call and function response do not send
// back, the response named by its call's function; an id the API gave is
// sent back.
func TestToolsRoundTrip(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{
	  "candidates":[{"content":{"role":"model","parts":[{"text":"Let me look."},
	    {"functionCall":{"name":"get_weather","args":{"city":"Paris"}}},
	    {"functionCall":{"id":"fc-2","name":"get_weather","args":{"city":"Oslo"}}}]},"finishReason":"STOP"}],
	  "usageMetadata":{"promptTokenCount":50,"candidatesTokenCount":20}}`))
	p := newProvider(t, up.URL)
	req := llmtest.Chat("gemini-2.5-flash")
	req.Tools = []domain.Tool{weather, {Name: "no_params"}}
	req.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: "get_weather", NoParallel: true}
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, up.Last(t).Body, `{
	  "systemInstruction":{"parts":[{"text":"You are terse."}]},
	  "contents":[{"role":"user","parts":[{"text":"Say hello."}]}],
	  "tools":[{"functionDeclarations":[
	    {"name":"get_weather","description":"The weather in a city.",
	     "parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},
	    {"name":"no_params"}]}],
	  "toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}},
	  "generationConfig":{"maxOutputTokens":64}}`)
	if resp.FinishReason != "tool_calls" || resp.Content != "Let me look." || len(resp.Blocks) != 3 {
		t.Fatalf("Chat = %+v; want text and two tool calls, finish tool_calls", resp)
	}
	first, second := resp.Blocks[1].ToolCall, resp.Blocks[2].ToolCall
	if resp.Blocks[0].Text != "Let me look." || first.Name != "get_weather" || first.Arguments != `{"city":"Paris"}` ||
		!strings.HasPrefix(first.ID, "call_tg") || second.ID != "fc-2" {
		t.Fatalf("blocks %+v", resp.Blocks)
	}

	// The next turn sends the calls and their results back.
	for _, choice := range []struct {
		mode domain.ToolChoiceMode
		want string
	}{{domain.ToolChoiceNone, `{"functionCallingConfig":{"mode":"NONE"}}`}, {domain.ToolChoiceRequired, `{"functionCallingConfig":{"mode":"ANY"}}`}} {
		next := llmtest.Chat("gemini-2.5-flash")
		next.Tools, next.ToolChoice = []domain.Tool{weather}, domain.ToolChoice{Mode: choice.mode}
		next.Messages = append(next.Messages,
			domain.Message{Role: domain.RoleAssistant, Content: "Let me look.", Blocks: resp.Blocks},
			domain.Message{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult,
				ToolResult: domain.ToolResult{CallID: first.ID, Content: []domain.Block{domain.TextBlock("18°C")}}}}},
			domain.Message{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult,
				ToolResult: domain.ToolResult{CallID: "fc-2", IsError: true, Content: []domain.Block{domain.TextBlock("no station")}}}}})
		if _, err := p.Chat(context.Background(), next); err != nil {
			t.Fatal(err)
		}
		sent := up.Last(t).JSON(t)
		contents, _ := json.Marshal(sent["contents"])
		sameJSON(t, contents, `[
		  {"role":"user","parts":[{"text":"Say hello."}]},
		  {"role":"model","parts":[{"text":"Let me look."},
		    {"functionCall":{"name":"get_weather","args":{"city":"Paris"}}},
		    {"functionCall":{"id":"fc-2","name":"get_weather","args":{"city":"Oslo"}}}]},
		  {"role":"user","parts":[
		    {"functionResponse":{"name":"get_weather","response":{"output":"18°C"}}},
		    {"functionResponse":{"id":"fc-2","name":"get_weather","response":{"error":"no station"}}}]}]`)
		config, _ := json.Marshal(sent["toolConfig"])
		sameJSON(t, config, choice.want)
	}

	// A result for a call the conversation does not hold cannot be named.
	orphan := llmtest.Chat("m")
	orphan.Messages = append(orphan.Messages, domain.Message{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult,
		ToolResult: domain.ToolResult{CallID: "elsewhere", Content: []domain.Block{domain.TextBlock("x")}}}}})
	calls := len(up.Requests())
	_, err = p.Chat(context.Background(), orphan)
	llmtest.RequireKind(t, err, domain.KindInvalid)
	if len(up.Requests()) != calls {
		t.Error("a request tidygate cannot translate reached the upstream")
	}
}

// TestImages: inline images are inline data, in messages and in tool
// results; an image by URL is refused before any call, by name.
func TestImages(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"candidates":[{"content":{"parts":[{"text":"A cat."}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":300,"candidatesTokenCount":3}}`))
	p := newProvider(t, up.URL)
	png := domain.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}
	req := llmtest.Chat("gemini-2.5-flash")
	req.Messages = []domain.Message{
		{Role: domain.RoleUser, Content: "What is this?", Blocks: []domain.Block{domain.TextBlock("What is this?"), {Type: domain.BlockImage, Image: png}}},
		{Role: domain.RoleAssistant, Blocks: []domain.Block{{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "c1", Name: "camera", Arguments: "{}"}}}},
		{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{CallID: "c1",
			Content: []domain.Block{domain.TextBlock("a photo"), {Type: domain.BlockImage, Image: domain.Image{MediaType: "image/jpeg", Data: "/9j/"}}}}}}},
	}
	if _, err := p.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	contents, _ := json.Marshal(up.Last(t).JSON(t)["contents"])
	sameJSON(t, contents, `[
	  {"role":"user","parts":[{"text":"What is this?"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]},
	  {"role":"model","parts":[{"functionCall":{"id":"c1","name":"camera","args":{}}}]},
	  {"role":"user","parts":[{"functionResponse":{"id":"c1","name":"camera","response":{"output":"a photo"}}},
	    {"inlineData":{"mimeType":"image/jpeg","data":"/9j/"}}]}]`)

	calls := len(up.Requests())
	byURL := llmtest.Chat("m")
	byURL.Messages[1].Blocks = []domain.Block{{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/cat.png"}}}
	_, err := p.Chat(context.Background(), byURL)
	if de := llmtest.RequireError(t, err, domain.KindInvalid); de.Code != "unsupported_feature" || !strings.Contains(de.Message, "URL") {
		t.Errorf("error %+v; want unsupported_feature naming URLs", de)
	}
	if len(up.Requests()) != calls {
		t.Error("a refused request reached the upstream")
	}
}

// TestStrictToolRefused: the API's function declarations have no strict
// flag, so a strict tool, whose calls must match its schema, is refused
// before any call, by name, rather than sent without the promise.
func TestStrictToolRefused(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"candidates":[{"content":{"parts":[{"text":"Sunny."}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":2}}`))
	strict := weather
	strict.Strict = true
	req := llmtest.Chat("gemini-2.5-flash")
	req.Tools = []domain.Tool{{Name: "no_params"}, strict}
	_, err := newProvider(t, up.URL).Chat(context.Background(), req)
	if de := llmtest.RequireError(t, err, domain.KindInvalid); de.Code != "unsupported_feature" || !strings.Contains(de.Message, `strict tool "get_weather"`) {
		t.Errorf("error %+v; want unsupported_feature naming the strict tool", de)
	}
	if len(up.Requests()) != 0 {
		t.Error("a refused request reached the upstream")
	}
}

// TestStructuredOutputAndThinking: a JSON Schema response format and
// thinking in the generation config; thoughts come back as reasoning
// blocks, a signature on a function call as a reasoning block of its own,
// and both go back to the API as they came.
func TestStructuredOutputAndThinking(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{
	  "candidates":[{"content":{"role":"model","parts":[
	    {"text":"The user wants JSON.","thought":true},
	    {"text":"{\"city\":\"Paris\"}","thoughtSignature":"c2lnLTE="}]},"finishReason":"STOP"}],
	  "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":6,"thoughtsTokenCount":40}}`))
	p := newProvider(t, up.URL)
	req := llmtest.Chat("gemini-2.5-pro")
	req.MaxTokens = 1000
	req.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: "city",
		Schema: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}
	req.Thinking = domain.Thinking{Enabled: true, BudgetTokens: 512}
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	config, _ := json.Marshal(up.Last(t).JSON(t)["generationConfig"])
	sameJSON(t, config, `{"maxOutputTokens":1000,"responseMimeType":"application/json",
	  "responseJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},
	  "thinkingConfig":{"includeThoughts":true,"thinkingBudget":512}}`)
	want := []domain.Block{
		{Type: domain.BlockReasoning, Text: "The user wants JSON."},
		{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Signature: "c2lnLTE="}},
		domain.TextBlock(`{"city":"Paris"}`),
	}
	if resp.Content != `{"city":"Paris"}` || !sameBlocks(resp.Blocks, want) ||
		resp.Usage != (domain.Usage{PromptTokens: 10, CompletionTokens: 46, ReasoningTokens: 40}) {
		t.Fatalf("Chat = %+v", resp)
	}

	next := llmtest.Chat("gemini-2.5-pro")
	next.Messages = append(next.Messages, domain.Message{Role: domain.RoleAssistant, Content: resp.Content, Blocks: resp.Blocks},
		domain.Message{Role: domain.RoleUser, Content: "And Oslo?"})
	if _, err := p.Chat(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	contents, _ := json.Marshal(up.Last(t).JSON(t)["contents"])
	sameJSON(t, contents, `[
	  {"role":"user","parts":[{"text":"Say hello."}]},
	  {"role":"model","parts":[{"text":"The user wants JSON.","thought":true},{"text":"{\"city\":\"Paris\"}","thoughtSignature":"c2lnLTE="}]},
	  {"role":"user","parts":[{"text":"And Oslo?"}]}]`)

	object := llmtest.Chat("m")
	object.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONObject}
	if _, err := p.Chat(context.Background(), object); err != nil {
		t.Fatal(err)
	}
	config, _ = json.Marshal(up.Last(t).JSON(t)["generationConfig"])
	sameJSON(t, config, `{"maxOutputTokens":64,"responseMimeType":"application/json"}`)
}

// TestStreamBlocks: a streamed answer's thoughts, text and function calls
// arrive as content blocks, each started, in order.
func TestStreamBlocks(t *testing.T) {
	body := sse(
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"Think","thought":true}]}}]}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"ing.","thought":true}]}}]}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"text":"Checking."}]}}]}`,
		`{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2ln"}]},"finishReason":"STOP"}],`+
			`"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":10,"thoughtsTokenCount":5}}`)
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", body))
	var c llmtest.Chunks
	req := llmtest.Chat("gemini-2.5-flash")
	req.Tools = []domain.Tool{weather}
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), req, c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	llmtest.CheckStream(t, resp, &c, err)
	var got []string
	for _, ch := range c.All {
		switch {
		case ch.Start != nil:
			got = append(got, "start:"+string(ch.Start.Type)+":"+ch.Start.ToolCall.Name)
		case ch.ReasoningDelta != "":
			got = append(got, "reasoning:"+ch.ReasoningDelta)
		case ch.Signature != "":
			got = append(got, "signature:"+ch.Signature)
		case ch.Delta != "":
			got = append(got, "text:"+ch.Delta)
		case ch.ArgumentsDelta != "":
			got = append(got, "arguments:"+ch.ArgumentsDelta)
		case ch.FinishReason != "":
			got = append(got, "finish:"+ch.FinishReason)
		}
	}
	want := []string{"start:reasoning:", "reasoning:Think", "reasoning:ing.", "text:Checking.",
		"start:reasoning:", "signature:c2ln", "start:tool_call:get_weather", `arguments:{"city":"Paris"}`, "finish:tool_calls"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("chunks\n%q\nwant\n%q", got, want)
	}
	if len(resp.Blocks) != 4 || resp.Blocks[0].Text != "Thinking." || resp.Blocks[3].ToolCall.Arguments != `{"city":"Paris"}` ||
		resp.Usage != (domain.Usage{PromptTokens: 20, CompletionTokens: 15, ReasoningTokens: 5}) {
		t.Errorf("assembled %+v", resp)
	}
}

func sameBlocks(got, want []domain.Block) bool {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	return string(g) == string(w)
}
