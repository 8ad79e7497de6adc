package anthropic_test

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

func must(b []byte, _ error) string { return string(b) }

func user(blocks ...domain.Block) domain.Message {
	return domain.Message{Role: domain.RoleUser, Blocks: blocks}
}

func assistant(blocks ...domain.Block) domain.Message {
	return domain.Message{Role: domain.RoleAssistant, Blocks: blocks}
}

var (
	png      = domain.Block{Type: domain.BlockImage, Image: domain.Image{MediaType: "image/png", Data: "iVBORw0KGgo="}}
	imageURL = domain.Block{Type: domain.BlockImage, Image: domain.Image{URL: "https://example.com/cat.jpg"}}
	thinking = domain.Block{Type: domain.BlockReasoning, Text: "Let me think.", Reasoning: domain.Reasoning{Signature: "sig-1"}}
	redacted = domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: "ZW5jcnlwdGVk"}}
	call     = domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_1", Name: "look", Arguments: `{"at":"cat"}`}}
)

// TestChatTranslatesTheConversation sends one feature at a time and
// asserts the exact fields Anthropic receives.
func TestChatTranslatesTheConversation(t *testing.T) {
	cases := map[string]struct {
		edit func(*domain.ChatRequest)
		want string
	}{
		"images by data and URL": {
			func(r *domain.ChatRequest) {
				r.Messages = append(r.Messages, user(domain.TextBlock("What is it?"), png, imageURL))
			},
			`{"messages":[{"role":"user","content":[{"type":"text","text":"Say hello."},{"type":"text","text":"What is it?"},
			  {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
			  {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]}]}`,
		},
		"thinking with a budget": {
			func(r *domain.ChatRequest) {
				r.MaxTokens, r.Thinking = 4096, domain.Thinking{Enabled: true, BudgetTokens: 2048}
			},
			`{"thinking":{"type":"enabled","budget_tokens":2048},"max_tokens":4096}`,
		},
		"adaptive thinking": {
			func(r *domain.ChatRequest) { r.Thinking = domain.Thinking{Enabled: true} },
			`{"thinking":{"type":"adaptive"}}`,
		},
		"thinking blocks go back signed, tool results with images": {
			func(r *domain.ChatRequest) {
				r.Messages = append(r.Messages, assistant(thinking, redacted, call), domain.Message{Role: domain.RoleTool, Blocks: []domain.Block{
					{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{CallID: "toolu_1", IsError: true, Content: []domain.Block{domain.TextBlock("blurry"), png}}}}})
			},
			`{"messages":[{"role":"user","content":[{"type":"text","text":"Say hello."}]},
			  {"role":"assistant","content":[{"type":"thinking","thinking":"Let me think.","signature":"sig-1"},{"type":"redacted_thinking","data":"ZW5jcnlwdGVk"},
			    {"type":"tool_use","id":"toolu_1","name":"look","input":{"at":"cat"}}]},
			  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","is_error":true,"content":[{"type":"text","text":"blurry"},
			    {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]}]}`,
		},
		"reasoning without a signature is not sent": {
			func(r *domain.ChatRequest) {
				r.Messages = append(r.Messages, assistant(domain.Block{Type: domain.BlockReasoning, Text: "a summary"}, domain.TextBlock("Hi.")))
			},
			`{"messages":[{"role":"user","content":[{"type":"text","text":"Say hello."}]},{"role":"assistant","content":[{"type":"text","text":"Hi."}]}]}`,
		},
		"json schema response format": {
			func(r *domain.ChatRequest) {
				r.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: "answer",
					Schema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}`)}
			},
			`{"output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}}}}`,
		},
		"reasoning effort": {
			func(r *domain.ChatRequest) { r.Thinking.Effort = domain.EffortMinimal },
			`{"output_config":{"effort":"low"}}`,
		},
		"top_k": {
			func(r *domain.ChatRequest) { k := 5; r.TopK = &k },
			`{"top_k":5}`,
		},
		"tool choice none": {
			func(r *domain.ChatRequest) {
				r.Tools = []domain.Tool{{Name: "look", Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}}
				r.ToolChoice = domain.ToolChoice{Mode: domain.ToolChoiceNone}
			},
			`{"tool_choice":{"type":"none"},"tools":[{"name":"look","input_schema":{"type":"object","properties":{}}}]}`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", message))
			req := llmtest.Chat("claude-x")
			tc.edit(&req)
			if err := req.Validate(); err != nil {
				t.Fatal(err)
			}
			if _, err := newProvider(t, up.URL).Chat(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			up.Last(t).WantFields(t, tc.want)
		})
	}
}

// TestChatRefusesWhatAnthropicCannotDo: a clear invalid error naming the
// feature, before any call.
func TestChatRefusesWhatAnthropicCannotDo(t *testing.T) {
	cases := map[string]struct {
		edit    func(*domain.ChatRequest)
		feature string
	}{
		"json_object": {func(r *domain.ChatRequest) { r.ResponseFormat.Type = domain.FormatJSONObject }, "response_format json_object"},
		"an image in the system prompt": {func(r *domain.ChatRequest) {
			r.Messages[0].Blocks = []domain.Block{png}
		}, "system prompt holds only text"},
		"a seed of 0":         {func(r *domain.ChatRequest) { r.Seed = new(int64) }, "send seed"},
		"a presence penalty":  {func(r *domain.ChatRequest) { r.PresencePenalty = llmtest.Float(0.5) }, "send presence_penalty"},
		"a frequency penalty": {func(r *domain.ChatRequest) { r.FrequencyPenalty = llmtest.Float(-1) }, "send frequency_penalty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, llmtest.Hang)
			req := llmtest.Chat("claude-x")
			tc.edit(&req)
			_, err := newProvider(t, up.URL).Chat(context.Background(), req)
			if de := llmtest.RequireError(t, err, domain.KindInvalid); !strings.Contains(de.Message, tc.feature) || !strings.Contains(de.Message, "anthropic") {
				t.Errorf("message %q does not name anthropic and %q", de.Message, tc.feature)
			}
			if n := len(up.Requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
}

func TestChatReadsThinkingAndStopSequences(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"id":"msg_4","type":"message","role":"assistant","model":"claude-x",
	  "content":[{"type":"thinking","thinking":"Hmm.","signature":"sig-9"},{"type":"redacted_thinking","data":"b3BhcXVl"},
	    {"type":"text","text":"Done"},{"type":"tool_use","id":"toolu_3","name":"look","input":{}}],
	  "stop_reason":"stop_sequence","stop_sequence":"END",
	  "usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":7}}`))
	resp, err := newProvider(t, up.URL).Chat(context.Background(), llmtest.Chat("claude-x"))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.ChatResponse{ID: "msg_4", Model: "claude-x", Content: "Done", FinishReason: domain.FinishStop, StopSequence: "END",
		Blocks: []domain.Block{
			{Type: domain.BlockReasoning, Text: "Hmm.", Reasoning: domain.Reasoning{Signature: "sig-9"}},
			{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: "b3BhcXVl"}},
			domain.TextBlock("Done"),
			{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_3", Name: "look", Arguments: "{}"}},
		},
		Usage:   domain.Usage{PromptTokens: 1110, CompletionTokens: 7, CacheReadTokens: 1000, CacheWriteTokens: 100},
		Created: resp.Created}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("Chat = %+v\nwant   %+v", resp, want)
	}
}

func TestChatStreamPassesThinkingOn(t *testing.T) {
	delta := func(index, typ, field, value string) string {
		return `{"type":"content_block_delta","index":` + index + `,"delta":{"type":"` + typ + `","` + field + `":` + must(json.Marshal(value)) + `}}`
	}
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(
		"message_start", messageStart,
		"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
		"content_block_delta", delta("0", "thinking_delta", "thinking", "Let me "),
		"content_block_delta", delta("0", "thinking_delta", "thinking", "see."),
		"content_block_delta", delta("0", "signature_delta", "signature", "sig-7"),
		"content_block_stop", `{"type":"content_block_stop","index":0}`,
		"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"c2VjcmV0"}}`,
		"content_block_stop", `{"type":"content_block_stop","index":1}`,
		"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}`,
		"content_block_delta", delta("2", "text_delta", "text", "Looking."),
		"content_block_stop", `{"type":"content_block_stop","index":2}`,
		"content_block_start", `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_5","name":"look","input":{}}}`,
		"content_block_delta", delta("3", "input_json_delta", "partial_json", `{"at":`),
		"content_block_delta", delta("3", "input_json_delta", "partial_json", `"cat"}`),
		"content_block_stop", `{"type":"content_block_stop","index":3}`,
		"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}`,
		"message_stop", messageStop)))
	var c llmtest.Chunks
	req := llmtest.Chat("claude-x")
	req.MaxTokens, req.Thinking = 4096, domain.Thinking{Enabled: true, BudgetTokens: 1024}
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), req, c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	usage := domain.Usage{PromptTokens: 25, CompletionTokens: 30}
	wantChunks := []domain.ChatChunk{
		{Index: 0, Start: &domain.Block{Type: domain.BlockReasoning}},
		{Index: 0, ReasoningDelta: "Let me "},
		{Index: 0, ReasoningDelta: "see."},
		{Index: 0, Signature: "sig-7"},
		{Index: 1, Start: &redactedBlock},
		{Index: 2, Delta: "Looking."},
		{Index: 3, Start: &domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_5", Name: "look"}}},
		{Index: 3, ArgumentsDelta: `{"at":`},
		{Index: 3, ArgumentsDelta: `"cat"}`},
		{FinishReason: domain.FinishToolCalls, Usage: &usage},
	}
	if !reflect.DeepEqual(c.All, wantChunks) {
		t.Errorf("chunks:\n%s\nwant:\n%s", must(json.Marshal(c.All)), must(json.Marshal(wantChunks)))
	}
	wantBlocks := []domain.Block{
		{Type: domain.BlockReasoning, Text: "Let me see.", Reasoning: domain.Reasoning{Signature: "sig-7"}},
		redactedBlock,
		domain.TextBlock("Looking."),
		{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: "toolu_5", Name: "look", Arguments: `{"at":"cat"}`}},
	}
	if !reflect.DeepEqual(resp.Blocks, wantBlocks) || resp.Content != "Looking." || resp.FinishReason != domain.FinishToolCalls {
		t.Errorf("assembled %+v", resp)
	}
	up.Last(t).WantFields(t, `{"thinking":{"type":"enabled","budget_tokens":1024},"stream":true}`)
}

var redactedBlock = domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: "c2VjcmV0"}}

func TestChatStreamRefusesAPieceThatDoesNotFitItsBlock(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", sse(
		"message_start", messageStart,
		"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_5","name":"look","input":{}}}`,
		"content_block_delta", textDelta("text in a tool call"),
		"message_delta", messageDelta, "message_stop", messageStop)))
	var c llmtest.Chunks
	_, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("claude-x"), c.Emit)
	llmtest.RequireKind(t, err, domain.KindUpstream)
}
