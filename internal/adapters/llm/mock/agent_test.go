package mock_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	"github.com/tidygate/tidygate/internal/domain"
)

// schemas the mock must satisfy: the shapes agents' tools use.
var toolSchemas = map[string]string{
	"Glob": `{"type":"object","properties":{"pattern":{"type":"string"},"path":{"type":"string"}},"required":["pattern"],"additionalProperties":false}`,
	"Edit": `{"type":"object","properties":{"file_path":{"type":"string","minLength":20},"old_string":{"type":"string","maxLength":3},` +
		`"replace_all":{"type":"boolean"},"count":{"type":"integer","minimum":2.5,"maximum":9},"ratio":{"type":"number","exclusiveMinimum":1}},` +
		`"required":["file_path","old_string","replace_all","count","ratio"]}`,
	"Todo": `{"type":"object","$defs":{"item":{"type":"object","properties":{"status":{"enum":["pending","done"]},"id":{"const":7},` +
		`"when":{"type":["null","string"],"format":"date-time"}},"required":["status","id","when"]}},` +
		`"properties":{"todos":{"type":"array","minItems":2,"items":{"$ref":"#/$defs/item"}},"mode":{"anyOf":[{"type":"null"},{"type":"integer","maximum":-3}]},` +
		`"meta":{"allOf":[{"type":"object","properties":{"a":{"type":"string","format":"uri"}},"required":["a"]},{"required":["b"],"properties":{"b":{"type":"string","format":"email"}}}]}},` +
		`"required":["todos","mode","meta"]}`,
}

func agentTools() []domain.Tool {
	var tools []domain.Tool
	for _, name := range []string{"Glob", "Edit", "Todo"} {
		tools = append(tools, domain.Tool{Name: name, Description: name, Parameters: json.RawMessage(toolSchemas[name])})
	}
	return tools
}

func validate(t *testing.T, schema, instance string) {
	t.Helper()
	var s jsonschema.Schema
	if err := json.Unmarshal([]byte(schema), &s); err != nil {
		t.Fatal(err)
	}
	resolved, err := s.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(instance), &v); err != nil {
		t.Fatalf("arguments %q are not JSON: %v", instance, err)
	}
	if err := resolved.Validate(v); err != nil {
		t.Errorf("arguments %s are not valid against the schema: %v", instance, err)
	}
}

func TestToolDirectiveCallsTheToolWithValidArguments(t *testing.T) {
	p := newMock(t, mock.Options{})
	for _, name := range []string{"Glob", "Edit", "Todo"} {
		t.Run(name, func(t *testing.T) {
			req := ask("mock-chat", "please [[tool:"+name+"]] now", 4096)
			req.Tools = agentTools()
			resp, err := p.Chat(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.FinishReason != domain.FinishToolCalls || len(resp.Blocks) != 1 || resp.Blocks[0].Type != domain.BlockToolCall {
				t.Fatalf("answer = %+v; want one tool call", resp)
			}
			call := resp.Blocks[0].ToolCall
			if call.Name != name || call.ID == "" {
				t.Errorf("call = %+v", call)
			}
			validate(t, toolSchemas[name], call.Arguments)
			again, _ := p.Chat(context.Background(), req)
			if again.Blocks[0].ToolCall != call {
				t.Errorf("a second call gave %+v, not %+v", again.Blocks[0].ToolCall, call)
			}
		})
	}
}

func TestToolDirectiveWithArgumentsPassesThem(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", `list [[tool:Glob {"pattern":"*.md"}]]`, 4096)
	req.Tools = agentTools()
	resp, err := p.Chat(context.Background(), req)
	if err != nil || resp.Blocks[0].ToolCall.Arguments != `{"pattern":"*.md"}` {
		t.Fatalf("answer = %+v, %v", resp, err)
	}
}

func TestToolChoiceForcesACall(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", "no directive here", 4096)
	req.Tools = agentTools()
	req.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: "Edit"}
	resp, err := p.Chat(context.Background(), req)
	if err != nil || len(resp.Blocks) != 1 || resp.Blocks[0].ToolCall.Name != "Edit" {
		t.Fatalf("answer = %+v, %v; want a call of Edit", resp, err)
	}
	req.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceRequired}
	if resp, _ := p.Chat(context.Background(), req); len(resp.Blocks) != 1 || resp.Blocks[0].ToolCall.Name != "Glob" {
		t.Fatalf("required: answer = %+v; want a call of the first tool", resp)
	}
	req = ask("mock-chat", "[[tool:Glob]]", 4096)
	req.Tools, req.ToolChoice = agentTools(), domain.ToolChoice{Mode: domain.ToolChoiceNone}
	if resp, _ := p.Chat(context.Background(), req); resp.FinishReason == domain.FinishToolCalls || resp.Content == "" {
		t.Fatalf("none: answer = %+v; want text", resp)
	}
}

func TestToolResultsGetATextAnswer(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", "[[tool:Glob]]", 4096)
	req.Tools = agentTools()
	req.Messages = append(req.Messages,
		domain.Message{Role: domain.RoleAssistant, Blocks: []domain.Block{{Type: domain.BlockToolCall,
			ToolCall: domain.ToolCall{ID: "t1", Name: "Glob", Arguments: `{"pattern":"a"}`}}}},
		domain.Message{Role: domain.RoleUser, Blocks: []domain.Block{{Type: domain.BlockToolResult,
			ToolResult: domain.ToolResult{CallID: "t1", Content: []domain.Block{domain.TextBlock("[[tool:Glob]] a.go")}}}}})
	resp, err := p.Chat(context.Background(), req)
	if err != nil || resp.FinishReason != domain.FinishStop || resp.Content == "" || resp.Blocks != nil {
		t.Fatalf("answer = %+v, %v; want text", resp, err)
	}
}

func TestUnknownToolInDirectiveIsRefused(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", "[[tool:Nope]]", 4096)
	req.Tools = agentTools()
	if _, err := p.Chat(context.Background(), req); domain.KindOf(err) != domain.KindInvalid || !strings.Contains(err.Error(), "Nope") {
		t.Fatalf("err = %v; want an invalid error naming the tool", err)
	}
}

func TestThinkingStartsWithASignedReasoningBlock(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", "think first", 4096)
	req.Thinking = domain.Thinking{Enabled: true, BudgetTokens: 1024}
	resp, err := p.Chat(context.Background(), req)
	if err != nil || len(resp.Blocks) != 2 {
		t.Fatalf("answer = %+v, %v", resp, err)
	}
	r := resp.Blocks[0]
	if r.Type != domain.BlockReasoning || r.Text == "" || r.Reasoning.Signature == "" ||
		resp.Blocks[1].Type != domain.BlockText || resp.Blocks[1].Text != resp.Content {
		t.Errorf("blocks = %+v", resp.Blocks)
	}
	if resp.Usage.ReasoningTokens == 0 || resp.Usage.ReasoningTokens >= resp.Usage.CompletionTokens {
		t.Errorf("usage = %+v; reasoning tokens are part of the completion", resp.Usage)
	}
}

func TestResponseFormats(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", "structured please", 4096)
	req.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Schema: json.RawMessage(toolSchemas["Todo"])}
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, toolSchemas["Todo"], resp.Content)
	req.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONObject}
	resp, _ = p.Chat(context.Background(), req)
	var obj map[string]string
	if err := json.Unmarshal([]byte(resp.Content), &obj); err != nil || obj["answer"] == "" {
		t.Errorf("json_object answer = %q", resp.Content)
	}
}

func TestStreamSendsEachBlockInPieces(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", `[[tool:Glob {"pattern":"ünïcode/**"}]]`, 4096)
	req.Tools = agentTools()
	req.Thinking = domain.Thinking{Enabled: true, BudgetTokens: 1024}
	var starts []domain.BlockType
	var args, reasoning, sig strings.Builder
	var final domain.ChatChunk
	resp, err := p.ChatStream(context.Background(), req, func(c domain.ChatChunk) error {
		if c.Start != nil {
			starts = append(starts, c.Start.Type)
			if c.Start.Type == domain.BlockToolCall && (c.Start.ToolCall.ID == "" || c.Start.ToolCall.Name != "Glob" || c.Index != 1) {
				t.Errorf("tool call start = %+v at %d", c.Start, c.Index)
			}
		}
		args.WriteString(c.ArgumentsDelta)
		reasoning.WriteString(c.ReasoningDelta)
		sig.WriteString(c.Signature)
		if c.FinishReason != "" {
			final = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(starts) != 2 || starts[0] != domain.BlockReasoning || starts[1] != domain.BlockToolCall {
		t.Errorf("block starts = %v", starts)
	}
	if args.String() != resp.Blocks[1].ToolCall.Arguments || reasoning.String() != resp.Blocks[0].Text || sig.String() != resp.Blocks[0].Reasoning.Signature {
		t.Errorf("streamed %q / %q / %q; answer %+v", args.String(), reasoning.String(), sig.String(), resp.Blocks)
	}
	if final.FinishReason != domain.FinishToolCalls || final.Usage == nil || *final.Usage != resp.Usage {
		t.Errorf("final chunk = %+v", final)
	}
}

func TestScriptedAnswers(t *testing.T) {
	p := newMock(t, mock.Options{})
	req := ask("mock-chat", "reply with [[say:hello from tidygate]] please", 4096)
	req.Messages = append(req.Messages, domain.Message{Role: domain.RoleSystem, Content: "a system message among the turns"})
	resp, err := p.Chat(context.Background(), req)
	if err != nil || resp.Content != "hello from tidygate" || resp.FinishReason != domain.FinishStop {
		t.Fatalf("answer = %+v, %v", resp, err)
	}
	req = ask("mock-chat", "[[tool:Glob]]", 4096)
	req.Tools = agentTools()
	req.Messages = append(req.Messages,
		domain.Message{Role: domain.RoleAssistant, Blocks: []domain.Block{{Type: domain.BlockToolCall,
			ToolCall: domain.ToolCall{ID: "t1", Name: "Glob", Arguments: `{"pattern":"a"}`}}}},
		domain.Message{Role: domain.RoleUser, Blocks: []domain.Block{{Type: domain.BlockToolResult,
			ToolResult: domain.ToolResult{CallID: "t1", Content: []domain.Block{domain.TextBlock(strings.Repeat("é", 400))}}}}},
		domain.Message{Role: domain.RoleSystem, Content: "reminder"})
	resp, err = p.Chat(context.Background(), req)
	if err != nil || !strings.HasPrefix(resp.Content, "Tool result: éé") || !strings.HasSuffix(resp.Content, "…") || len(resp.Content) > 520 {
		t.Fatalf("answer = %q, %v", resp.Content, err)
	}
}

func TestCacheDirectiveReportsCacheClasses(t *testing.T) {
	p := newMock(t, mock.Options{})
	text := strings.Repeat("context ", 200) + "[[cache:300,20]]"
	resp, err := p.Chat(context.Background(), ask("mock-chat", text, 4096))
	if err != nil {
		t.Fatal(err)
	}
	u := resp.Usage
	if u.CacheReadTokens != 300 || u.CacheWriteTokens != 20 || u.PromptTokens < 320 {
		t.Fatalf("usage = %+v; want 300 read and 20 written of the prompt", u)
	}
	var c llmtest.Chunks
	streamed, err := p.ChatStream(context.Background(), ask("mock-chat", text, 4096), c.Emit)
	if err != nil || streamed.Usage != u || c.Final(t).Usage == nil || *c.Final(t).Usage != u {
		t.Fatalf("streamed usage %+v (final chunk %+v), %v; want %+v", streamed.Usage, c.Final(t).Usage, err, u)
	}
	// Counts beyond the prompt are capped: reads first, then writes.
	resp, err = p.Chat(context.Background(), ask("mock-chat", "hi [[cache:100000,5]]", 4096))
	if err != nil || resp.Usage.CacheReadTokens != resp.Usage.PromptTokens || resp.Usage.CacheWriteTokens != 0 {
		t.Fatalf("usage = %+v, %v; want every prompt token read from the cache, none written", resp.Usage, err)
	}
	resp, err = p.Chat(context.Background(), ask("mock-chat", "hi [[cache:lots,5]]", 4096))
	if err != nil || resp.Usage.CacheReadTokens != 0 || resp.Usage.CacheWriteTokens != 0 {
		t.Fatalf("a malformed directive gave usage %+v, %v", resp.Usage, err)
	}
}
