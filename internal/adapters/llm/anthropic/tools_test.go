package anthropic_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
)

// toolRequest is a tool loop's second call: tools (one strict), the call
// the model made and its result in a tool message.
func toolRequest() domain.ChatRequest {
	req := llmtest.Chat("claude-x")
	req.Tools = []domain.Tool{{Name: "get_weather", Description: "The weather.",
		Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}`)},
		{Name: "get_time", Parameters: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`), Strict: true}}
	req.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: "get_weather", NoParallel: true}
	req.Messages = append(req.Messages,
		domain.Message{Role: domain.RoleAssistant, Blocks: []domain.Block{{Type: domain.BlockToolCall,
			ToolCall: domain.ToolCall{ID: "toolu_1", Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}},
		domain.Message{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult,
			ToolResult: domain.ToolResult{CallID: "toolu_1", Content: []domain.Block{domain.TextBlock("sunny")}}}}})
	return req
}

// checkToolRequest checks the request the upstream got for toolRequest.
// Strict tool use is part of the Messages API (anthropic-version
// 2023-06-01): it needs no anthropic-beta header.
func checkToolRequest(t *testing.T, got llmtest.Recorded) {
	t.Helper()
	if beta := got.Header.Values("Anthropic-Beta"); len(beta) > 0 {
		t.Errorf("anthropic-beta %q", beta)
	}
	body := got.JSON(t)
	var want map[string]any
	_ = json.Unmarshal([]byte(`{
	  "tools":[{"name":"get_weather","description":"The weather.","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}},
	    {"name":"get_time","input_schema":{"type":"object","properties":{},"additionalProperties":false},"strict":true}],
	  "tool_choice":{"type":"tool","name":"get_weather","disable_parallel_tool_use":true}}`), &want)
	for k, v := range want {
		if !reflect.DeepEqual(body[k], v) {
			got, _ := json.Marshal(body[k])
			t.Errorf("%s = %s", k, got)
		}
	}
	msgs, _ := json.Marshal(body["messages"])
	var turns []struct {
		Role    string
		Content []map[string]any
	}
	_ = json.Unmarshal(msgs, &turns)
	n := len(turns)
	if n < 3 || turns[n-2].Role != "assistant" || turns[n-1].Role != "user" ||
		turns[n-2].Content[0]["type"] != "tool_use" || turns[n-2].Content[0]["id"] != "toolu_1" ||
		!reflect.DeepEqual(turns[n-2].Content[0]["input"], map[string]any{"city": "Oslo"}) ||
		turns[n-1].Content[0]["type"] != "tool_result" || turns[n-1].Content[0]["tool_use_id"] != "toolu_1" {
		t.Errorf("messages = %s", msgs)
	}
}

func TestChatTranslatesTools(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"id":"msg_3","type":"message","role":"assistant","model":"claude-x",
	  "content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_2","name":"get_weather","input":{"city":"Bergen"}}],
	  "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":40,"output_tokens":12}}`))
	resp, err := newProvider(t, up.URL).Chat(context.Background(), toolRequest())
	if err != nil {
		t.Fatal(err)
	}
	checkToolRequest(t, up.Last(t))
	want := []domain.Block{domain.TextBlock("Checking."),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_2", Name: "get_weather", Arguments: `{"city":"Bergen"}`}}}
	if resp.FinishReason != domain.FinishToolCalls || !reflect.DeepEqual(resp.Blocks, want) {
		t.Errorf("response = %+v", resp)
	}
}

func TestChatStreamTranslatesToolCalls(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(
		"message_start", messageStart,
		"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_9","name":"get_weather","input":{}}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}`,
		"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Oslo\"}"}}`,
		"content_block_stop", blockStop,
		"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":15}}`,
		"message_stop", messageStop)))
	var chunks []domain.ChatChunk
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), toolRequest(), func(c domain.ChatChunk) error {
		chunks = append(chunks, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkToolRequest(t, up.Last(t))
	args := ""
	for _, c := range chunks {
		args += c.ArgumentsDelta
	}
	if len(chunks) == 0 || chunks[0].Start == nil || chunks[0].Start.ToolCall.ID != "toolu_9" || args != `{"city":"Oslo"}` {
		t.Errorf("chunks = %+v", chunks)
	}
	want := []domain.Block{{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_9", Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}
	if resp.FinishReason != domain.FinishToolCalls || !reflect.DeepEqual(resp.Blocks, want) {
		t.Errorf("response = %+v", resp)
	}
}
