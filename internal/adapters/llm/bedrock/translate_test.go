package bedrock_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
)

var (
	png       = domain.Block{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}}
	imageURL  = domain.Block{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/cat.jpg"}}
	lookTool  = domain.Tool{Name: "look", Description: "Look at a thing.", Parameters: json.RawMessage(`{"type":"object","properties":{"at":{"type":"string","maxLength":12345678901234567890}},"required":["at"]}`)}
	lookCall  = domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "tooluse_1", Name: "look", Arguments: `{"at":"cat","times":2}`}}
	lookSpec  = `{"toolSpec":{"name":"look","description":"Look at a thing.","inputSchema":{"json":{"type":"object","properties":{"at":{"type":"string","maxLength":12345678901234567890}},"required":["at"]}}}}`
	signed    = domain.Block{Type: domain.BlockReasoning, Text: "Let me think.", Reasoning: domain.Reasoning{Signature: "sig-1"}}
	redacted  = domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: "ZW5jcnlwdGVk"}}
	userSaid  = `{"role":"user","content":[{"text":"Say hello."}]}`
	toolTurns = []domain.Message{
		{Role: domain.RoleAssistant, Blocks: []domain.Block{signed, redacted, lookCall}},
		{Role: domain.RoleTool, Blocks: []domain.Block{{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{
			CallID: "tooluse_1", IsError: true, Content: []domain.Block{domain.TextBlock("too dark"), png}}}}},
	}
)

// TestChatTranslatesTheConversation sends one feature at a time and
// asserts the exact fields Converse receives.
func TestChatTranslatesTheConversation(t *testing.T) {
	cases := map[string]struct {
		model  string
		edit   func(*domain.ChatRequest)
		want   string
		absent []string
	}{
		"tools, any tool": {model, func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice = []domain.Tool{lookTool}, domain.ToolChoice{Mode: domain.ToolChoiceRequired}
		}, `{"toolConfig":{"tools":[` + lookSpec + `],"toolChoice":{"any":{}}}}`, nil},
		"tools, a named tool": {model, func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice = []domain.Tool{lookTool}, domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: "look"}
		}, `{"toolConfig":{"tools":[` + lookSpec + `],"toolChoice":{"tool":{"name":"look"}}}}`, nil},
		"tools, auto": {model, func(r *domain.ChatRequest) {
			r.Tools = []domain.Tool{lookTool}
		}, `{"toolConfig":{"tools":[` + lookSpec + `]}}`, nil},
		"a strict tool": {model, func(r *domain.ChatRequest) {
			clock := domain.Tool{Name: "clock", Parameters: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`), Strict: true}
			r.Tools = []domain.Tool{lookTool, clock}
		}, `{"toolConfig":{"tools":[` + lookSpec + `,
		  {"toolSpec":{"name":"clock","inputSchema":{"json":{"type":"object","properties":{},"additionalProperties":false}},"strict":true}}]}}`, nil},
		"tool choice none sends no tools": {model, func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice = []domain.Tool{lookTool}, domain.ToolChoice{Mode: domain.ToolChoiceNone}
		}, `{}`, []string{"toolConfig"}},
		"tool calls, tool results and reasoning": {model, func(r *domain.ChatRequest) {
			r.Tools = []domain.Tool{lookTool}
			r.Messages = append(r.Messages, toolTurns...)
		}, `{"messages":[` + userSaid + `,
		  {"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"Let me think.","signature":"sig-1"}}},
		    {"reasoningContent":{"redactedContent":"ZW5jcnlwdGVk"}},{"toolUse":{"toolUseId":"tooluse_1","name":"look","input":{"at":"cat","times":2}}}]},
		  {"role":"user","content":[{"toolResult":{"toolUseId":"tooluse_1","status":"error","content":[{"text":"too dark"},
		    {"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}}]}}]}]}`, nil},
		"an inline image": {model, func(r *domain.ChatRequest) {
			r.Messages = append(r.Messages, domain.Message{Role: domain.RoleUser, Blocks: []domain.Block{domain.TextBlock("What is it?"), png}})
		}, `{"messages":[{"role":"user","content":[{"text":"Say hello."},{"text":"What is it?"},{"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}}]}]}`, nil},
		"json schema response format": {model, func(r *domain.ChatRequest) {
			r.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: "answer", Schema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`)}
		}, `{"outputConfig":{"textFormat":{"type":"json_schema","structure":{"jsonSchema":{"schema":"{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}","name":"answer"}}}}}`, nil},
		"reasoning effort and a response format": {model, func(r *domain.ChatRequest) {
			r.Thinking.Effort = domain.EffortXHigh
			r.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Schema: json.RawMessage(`{"type":"object"}`)}
		}, `{"outputConfig":{"effort":"xhigh","textFormat":{"type":"json_schema","structure":{"jsonSchema":{"schema":"{\"type\":\"object\"}"}}}}}`, nil},
		"no effort for none": {model, func(r *domain.ChatRequest) { r.Thinking.Effort = domain.EffortNone }, `{}`, []string{"outputConfig"}},
		"thinking and top_k for an Anthropic model": {"us.anthropic.claude-sonnet-4-5-20250929-v1:0", func(r *domain.ChatRequest) {
			k := 7
			r.MaxTokens, r.Thinking, r.TopK = 4096, domain.Thinking{Enabled: true, BudgetTokens: 2048}, &k
		}, `{"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":2048},"top_k":7},"inferenceConfig":{"maxTokens":4096}}`, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", converse))
			req := llmtest.Chat(tc.model)
			tc.edit(&req)
			if err := req.Validate(); err != nil {
				t.Fatal(err)
			}
			if _, err := newProvider(t, up.URL).Chat(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			sent := up.Last(t)
			sent.WantFields(t, tc.want, tc.absent...)
			if strings.Contains(tc.want, "toolSpec") && !strings.Contains(string(sent.Body), "12345678901234567890") {
				t.Errorf("the tool's schema lost its number's digits: %s", sent.Body)
			}
		})
	}
}

// TestChatRefusesWhatConverseCannotDo: a clear invalid error naming the
// feature, before any call.
func TestChatRefusesWhatConverseCannotDo(t *testing.T) {
	cases := map[string]struct {
		model   string
		edit    func(*domain.ChatRequest)
		feature string
	}{
		"an image by URL": {model, func(r *domain.ChatRequest) {
			r.Messages = append(r.Messages, domain.Message{Role: domain.RoleUser, Blocks: []domain.Block{imageURL}})
		}, "images by URL"},
		"json_object": {model, func(r *domain.ChatRequest) { r.ResponseFormat.Type = domain.FormatJSONObject }, "response_format json_object"},
		"tool choice none after tool calls": {model, func(r *domain.ChatRequest) {
			r.Tools, r.ToolChoice = []domain.Tool{lookTool}, domain.ToolChoice{Mode: domain.ToolChoiceNone}
			r.Messages = append(r.Messages, toolTurns...)
		}, "tool_choice none"},
		"thinking for another model": {"amazon.nova-pro-v1:0", func(r *domain.ChatRequest) {
			r.Thinking = domain.Thinking{Enabled: true, BudgetTokens: 10}
		}, "thinking"},
		"top_k for another model": {"amazon.nova-pro-v1:0", func(r *domain.ChatRequest) { k := 3; r.TopK = &k }, "top_k"},
		"a seed of 0":             {model, func(r *domain.ChatRequest) { r.Seed = new(int64) }, "send seed"},
		"a presence penalty":      {model, func(r *domain.ChatRequest) { r.PresencePenalty = llmtest.Float(0.5) }, "send presence_penalty"},
		"a frequency penalty":     {"amazon.nova-pro-v1:0", func(r *domain.ChatRequest) { r.FrequencyPenalty = llmtest.Float(-1) }, "send frequency_penalty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Hang)
			req := llmtest.Chat(tc.model)
			tc.edit(&req)
			_, err := newProvider(t, up.URL).Chat(context.Background(), req)
			de := llmtest.RequireError(t, err, domain.KindInvalid)
			if !strings.Contains(de.Message, tc.feature) || !strings.Contains(de.Message, "bedrock") || de.Code != "unsupported_feature" {
				t.Errorf("error %q (code %q) does not name bedrock and %q", de.Message, de.Code, tc.feature)
			}
			if n := len(up.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestChatReadsToolCallsAndReasoning(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"output":{"message":{"role":"assistant","content":[
	    {"reasoningContent":{"reasoningText":{"text":"Hmm.","signature":"sig-9"}}},{"reasoningContent":{"redactedContent":"b3BhcXVl"}},
	    {"text":"Looking."},{"toolUse":{"toolUseId":"tooluse_2","name":"look","input":{"at":"dog","n":12345678901234567890,"f":1.5}}}]}},
	  "stopReason":"tool_use","usage":{"inputTokens":10,"outputTokens":7,"totalTokens":1117,"cacheReadInputTokens":1000,"cacheWriteInputTokens":100}}`))
	resp, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat(model))
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Block{
		{Type: domain.BlockReasoning, Text: "Hmm.", Reasoning: domain.Reasoning{Signature: "sig-9"}},
		{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: "b3BhcXVl"}},
		domain.TextBlock("Looking."),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "tooluse_2", Name: "look"}},
	}
	var args map[string]json.RawMessage
	if len(resp.Blocks) == 4 {
		_ = json.Unmarshal([]byte(resp.Blocks[3].ToolCall.Arguments), &args)
		resp.Blocks[3].ToolCall.Arguments = ""
	}
	if !reflect.DeepEqual(resp.Blocks, want) || resp.Content != "Looking." || resp.FinishReason != domain.FinishToolCalls {
		t.Errorf("response %+v", resp)
	}
	if string(args["at"]) != `"dog"` || string(args["n"]) != "12345678901234567890" || string(args["f"]) != "1.5" {
		t.Errorf("arguments %v; want the tool's input exactly", args)
	}
	if u := (domain.Usage{PromptTokens: 1110, CompletionTokens: 7, CacheReadTokens: 1000, CacheWriteTokens: 100}); resp.Usage != u {
		t.Errorf("usage %+v; want %+v", resp.Usage, u)
	}
}

func TestChatStreamPassesToolCallsAndReasoningOn(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, streamType, events(t,
		"messageStart", messageStart,
		"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"Let me "}}}`,
		"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"see."}}}`,
		"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"sig-7"}}}`,
		"contentBlockStop", `{"contentBlockIndex":0}`,
		"contentBlockDelta", `{"contentBlockIndex":1,"delta":{"text":"Looking."}}`,
		"contentBlockStop", `{"contentBlockIndex":1}`,
		"contentBlockStart", `{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"tooluse_5","name":"look"}}}`,
		"contentBlockDelta", `{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"at\":"}}}`,
		"contentBlockDelta", `{"contentBlockIndex":2,"delta":{"toolUse":{"input":"\"cat\"}"}}}`,
		"contentBlockStop", `{"contentBlockIndex":2}`,
		"messageStop", `{"stopReason":"tool_use"}`,
		"metadata", `{"usage":{"inputTokens":25,"outputTokens":15,"totalTokens":60,"cacheReadInputTokens":20},"metrics":{"latencyMs":300}}`)))
	var c llmtest.Chunks
	req := llmtest.Chat(model)
	req.Tools = []domain.Tool{lookTool}
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), req, c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	usage := domain.Usage{PromptTokens: 45, CompletionTokens: 15, CacheReadTokens: 20}
	wantChunks := []domain.ChatChunk{
		{Index: 0, Start: &domain.Block{Type: domain.BlockReasoning}},
		{Index: 0, ReasoningDelta: "Let me "},
		{Index: 0, ReasoningDelta: "see."},
		{Index: 0, Signature: "sig-7"},
		{Index: 1, Delta: "Looking."},
		{Index: 2, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "tooluse_5", Name: "look"}}},
		{Index: 2, ArgumentsDelta: `{"at":`},
		{Index: 2, ArgumentsDelta: `"cat"}`},
		{FinishReason: domain.FinishToolCalls, Usage: &usage},
	}
	if !reflect.DeepEqual(c.All, wantChunks) {
		got, _ := json.Marshal(c.All)
		t.Errorf("chunks %s", got)
	}
	wantBlocks := []domain.Block{
		{Type: domain.BlockReasoning, Text: "Let me see.", Reasoning: domain.Reasoning{Signature: "sig-7"}},
		domain.TextBlock("Looking."),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "tooluse_5", Name: "look", Arguments: `{"at":"cat"}`}},
	}
	if !reflect.DeepEqual(resp.Blocks, wantBlocks) || resp.Content != "Looking." || resp.Usage != usage {
		t.Errorf("assembled %+v", resp)
	}
	sent := up.Last(t)
	if sent.Path != "/model/"+model+"/converse-stream" {
		t.Errorf("sent to %s", sent.Path)
	}
	sent.WantFields(t, `{"toolConfig":{"tools":[`+lookSpec+`]}}`)
}

func TestChatStreamRefusesAPieceThatDoesNotFitItsBlock(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, streamType, events(t,
		"messageStart", messageStart,
		"contentBlockDelta", `{"contentBlockIndex":0,"delta":{"toolUse":{"input":"{}"}}}`,
		"messageStop", messageStop, "metadata", metadata)))
	var c llmtest.Chunks
	_, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat(model), c.Emit)
	llmtest.RequireKind(t, err, domain.KindUpstream)
}
