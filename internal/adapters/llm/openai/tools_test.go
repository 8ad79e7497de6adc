package openai_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
)

// toolRequest is a conversation with everything but text: tools (one
// strict), a forced tool choice without parallel calls, a schema for the
// answer, an image, a tool call and its result.
func toolRequest() domain.ChatRequest {
	req := llmtest.Chat("gpt-4o")
	req.Tools = []domain.Tool{{Name: "get_weather", Description: "The weather.", Parameters: json.RawMessage(`{"type":"object"}`)},
		{Name: "get_time", Parameters: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`), Strict: true}}
	req.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: "get_weather", NoParallel: true}
	req.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: "w", Schema: json.RawMessage(`{"type":"object"}`), Strict: true}
	req.Messages = []domain.Message{
		{Role: domain.RoleUser, Content: "What is this?", Blocks: []domain.Block{domain.TextBlock("What is this?"),
			{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}}}},
		{Role: domain.RoleAssistant, Blocks: []domain.Block{{Type: domain.BlockToolCall,
			ToolCall: domain.ToolCall{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}},
		{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult,
			ToolResult: domain.ToolResult{CallID: "call_1", Content: []domain.Block{domain.TextBlock("sunny")}}}}},
	}
	return req
}

// wantToolRequest is what the upstream must receive for toolRequest.
const wantToolRequest = `{
  "tools": [{"type":"function","function":{"name":"get_weather","description":"The weather.","parameters":{"type":"object"}}},
    {"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{},"additionalProperties":false},"strict":true}}],
  "tool_choice": {"type":"function","function":{"name":"get_weather"}},
  "parallel_tool_calls": false,
  "response_format": {"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"},"strict":true}},
  "messages": [
    {"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
    {"role":"tool","content":"sunny","tool_call_id":"call_1"}
  ]
}`

func checkToolRequest(t *testing.T, body map[string]any) {
	t.Helper()
	var want map[string]any
	if err := json.Unmarshal([]byte(wantToolRequest), &want); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if !reflect.DeepEqual(body[k], v) {
			got, _ := json.Marshal(body[k])
			t.Errorf("%s = %s", k, got)
		}
	}
}

const toolCompletion = `{"id":"chatcmpl-3","object":"chat.completion","created":1700000000,"model":"gpt-4o",
  "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
    {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Bergen\"}"}}]},"finish_reason":"tool_calls"}],
  "usage":{"prompt_tokens":30,"completion_tokens":8,"total_tokens":38}}`

func TestChatTranslatesToolsImagesAndResponseFormat(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", toolCompletion))
	p := newProvider(t, up.URL, openai.Options{APIKey: apiKey})
	resp, err := p.Chat(context.Background(), toolRequest())
	if err != nil {
		t.Fatal(err)
	}
	checkToolRequest(t, up.Last(t).JSON(t))
	want := []domain.Block{{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_2", Name: "get_weather", Arguments: `{"city":"Bergen"}`}}}
	if resp.FinishReason != domain.FinishToolCalls || resp.Content != "" || !reflect.DeepEqual(resp.Blocks, want) {
		t.Errorf("response = %+v", resp)
	}
}

// TestANamedToolChoiceFinishesForToolCalls: OpenAI answers a tool_choice
// that names the function with finish_reason "stop"; the domain answer,
// whole or streamed, says tool_calls, as it does for every other provider.
func TestANamedToolChoiceFinishesForToolCalls(t *testing.T) {
	named := strings.Replace(toolCompletion, `"finish_reason":"tool_calls"`, `"finish_reason":"stop"`, 1)
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", named))
	resp, err := newProvider(t, up.URL, openai.Options{APIKey: apiKey}).Chat(context.Background(), toolRequest())
	if err != nil || resp.FinishReason != domain.FinishToolCalls {
		t.Errorf("whole answer: finish reason %q, err %v; want tool_calls", resp.FinishReason, err)
	}

	up = llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(
		`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
		`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		usageChunk)))
	var last string
	resp, err = newProvider(t, up.URL, openai.Options{}).ChatStream(context.Background(), toolRequest(), func(c domain.ChatChunk) error {
		if c.FinishReason != "" {
			last = c.FinishReason
		}
		return nil
	})
	if err != nil || resp.FinishReason != domain.FinishToolCalls || last != domain.FinishToolCalls {
		t.Errorf("stream: finish reason %q, in its last chunk %q, err %v; want tool_calls", resp.FinishReason, last, err)
	}
}

func TestChatStreamAssemblesToolCalls(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(
		`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Let me look."}}]}`,
		`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}`,
		`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}`,
		`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]}}]}`,
		`{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		usageChunk)))
	p := newProvider(t, up.URL, openai.Options{})
	var chunks []domain.ChatChunk
	resp, err := p.ChatStream(context.Background(), toolRequest(), func(c domain.ChatChunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkToolRequest(t, up.Last(t).JSON(t))
	var started *domain.Block
	var args string
	for _, c := range chunks {
		if c.Index == 1 && c.Start != nil {
			started = c.Start
		}
		if c.Index == 1 {
			args += c.ArgumentsDelta
		}
	}
	if started == nil || started.Type != domain.BlockToolCall || started.ToolCall.ID != "call_9" || started.ToolCall.Name != "get_weather" || args != `{"city":"Oslo"}` {
		t.Errorf("chunks = %+v", chunks)
	}
	want := []domain.Block{domain.TextBlock("Let me look."),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "call_9", Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}
	if resp.FinishReason != domain.FinishToolCalls || !reflect.DeepEqual(resp.Blocks, want) {
		t.Errorf("response = %+v", resp)
	}
}
