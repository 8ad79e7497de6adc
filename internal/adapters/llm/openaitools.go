package llm

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/tidygate/tidygate/internal/domain"
)

// The conversation features of OpenAI's Chat Completions wire: content
// parts (text and images), tool calls and tool results, tools, tool choice
// and response format, and tool calls streamed in pieces.

type (
	oaiTool struct {
		Type     string      `json:"type"` // "function"
		Function oaiFunction `json:"function"`
	}
	oaiFunction struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
		Strict      bool            `json:"strict,omitempty"`
	}
	oaiToolCall struct {
		Index    *int            `json:"index,omitempty"` // in a stream's deltas
		ID       string          `json:"id,omitempty"`
		Type     string          `json:"type,omitempty"`
		Function oaiCallFunction `json:"function"`
	}
	oaiCallFunction struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	oaiNamedChoice struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	oaiFormat struct {
		Type       string         `json:"type"`
		JSONSchema *oaiJSONSchema `json:"json_schema,omitempty"`
	}
	oaiJSONSchema struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict bool            `json:"strict,omitempty"`
	}
	oaiPart struct {
		Type     string       `json:"type"`
		Text     string       `json:"text,omitempty"`
		ImageURL *oaiImageURL `json:"image_url,omitempty"`
	}
	oaiImageURL struct {
		URL string `json:"url"`
	}
)

// translatable refuses what the Chat Completions wire has no place for:
// top_k, and more stop sequences than oaiMaxStop. Reasoning blocks in the
// history are not sent: the API has no place for them, and OpenAI keeps no
// reasoning between chat turns itself.
func (p *OpenAIClient) translatable(req domain.ChatRequest) error {
	if req.TopK != nil {
		return p.classify.Unsupported("top_k", "the Chat Completions API has no top_k")
	}
	if len(req.Stop) > oaiMaxStop {
		return p.classify.Unsupported(fmt.Sprintf("%d stop sequences (stop, stop_sequences)", len(req.Stop)),
			fmt.Sprintf("the Chat Completions API takes at most %d", oaiMaxStop))
	}
	return nil
}

// oaiMaxStop is the most stop sequences the Chat Completions API takes.
const oaiMaxStop = 4

// oaiEffort is the reasoning_effort for the request's thinking: its effort
// when set (max, beyond OpenAI's levels, is sent as xhigh); else, when
// thinking is enabled with a budget, the effort of that budget (up to 4,096
// tokens low, up to 16,384 medium, more high); else none, the model's default.
func oaiEffort(t domain.Thinking) string {
	switch {
	case t.Effort == domain.EffortMax:
		return domain.EffortXHigh
	case t.Effort != "":
		return t.Effort
	case !t.Enabled || t.BudgetTokens <= 0:
		return ""
	case t.BudgetTokens <= 4096:
		return domain.EffortLow
	case t.BudgetTokens <= 16384:
		return domain.EffortMedium
	}
	return domain.EffortHigh
}

// addTools sets the request's tools (strict ones with function.strict),
// tool choice and response format.
func addTools(out *oaiChatRequest, req domain.ChatRequest) {
	for _, t := range req.Tools {
		out.Tools = append(out.Tools, oaiTool{Type: "function",
			Function: oaiFunction{Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict}})
	}
	switch req.ToolChoice.Mode {
	case domain.ToolChoiceNone:
		out.ToolChoice = "none"
	case domain.ToolChoiceRequired:
		out.ToolChoice = "required"
	case domain.ToolChoiceTool:
		c := oaiNamedChoice{Type: "function"}
		c.Function.Name = req.ToolChoice.Name
		out.ToolChoice = c
	}
	if req.ToolChoice.NoParallel && len(req.Tools) > 0 {
		no := false
		out.ParallelToolCalls = &no
	}
	switch req.ResponseFormat.Type {
	case domain.FormatJSONObject:
		out.ResponseFormat = &oaiFormat{Type: "json_object"}
	case domain.FormatJSONSchema:
		out.ResponseFormat = &oaiFormat{Type: "json_schema", JSONSchema: &oaiJSONSchema{
			Name: orDefault(req.ResponseFormat.Name, "response"), Schema: req.ResponseFormat.Schema, Strict: req.ResponseFormat.Strict}}
	}
}

// oaiMessages maps the messages onto the API's. A developer message is sent
// as a system message; a message's tool results become tool messages, one a
// result; its tool calls go in tool_calls; text and images become content
// parts. A tool message without a result block (text only) is sent as a
// user message, since it names no tool call. A text message's content is
// a pointer to the message's own string, which encodes as the string: the
// string itself in an interface would cost an allocation a message.
func oaiMessages(msgs []domain.Message) []oaiMessage {
	out := make([]oaiMessage, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		role := "user"
		switch m.Role {
		case domain.RoleSystem, domain.RoleDeveloper:
			role = "system"
		case domain.RoleAssistant:
			role = "assistant"
		}
		if m.Blocks == nil {
			out = append(out, oaiMessage{Role: role, Content: &m.Content, Name: m.Name})
			continue
		}
		msg := oaiMessage{Role: role, Name: m.Name}
		var parts []oaiPart
		for _, b := range m.Blocks {
			switch b.Type {
			case domain.BlockToolResult:
				out = append(out, oaiMessage{Role: "tool", ToolCallID: b.ToolResult.CallID, Content: domain.JoinText(b.ToolResult.Content)})
			case domain.BlockToolCall:
				msg.ToolCalls = append(msg.ToolCalls, oaiToolCall{ID: b.ToolCall.ID, Type: "function",
					Function: oaiCallFunction{Name: b.ToolCall.Name, Arguments: b.ToolCall.Arguments}})
			case domain.BlockText:
				parts = append(parts, oaiPart{Type: "text", Text: b.Text})
			case domain.BlockImage:
				parts = append(parts, oaiPart{Type: "image_url", ImageURL: &oaiImageURL{URL: b.Image.AsURL()}})
			}
		}
		switch {
		case len(parts) > 0 && role == "assistant":
			msg.Content = domain.JoinText(m.Blocks) // the assistant's content is text
		case len(parts) > 0:
			msg.Content = parts
		case len(msg.ToolCalls) == 0:
			continue // only tool results, sent above
		}
		out = append(out, msg)
	}
	return out
}

// oaiBlocks returns an answer's text and tool calls as blocks.
func oaiBlocks(m oaiDelta) []domain.Block {
	var blocks []domain.Block
	if m.Content != "" {
		blocks = append(blocks, domain.TextBlock(m.Content))
	}
	for _, c := range m.ToolCalls {
		blocks = append(blocks, domain.Block{Type: domain.BlockToolCall,
			ToolCall: domain.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments}})
	}
	return blocks
}

// oaiToolStream assembles tool calls streamed in pieces: the first piece of
// call i names it, the next ones carry fragments of its arguments. Call i is
// emitted as content block i+1 (block 0 is the text).
type oaiToolStream struct {
	emit  func(domain.ChatChunk) error
	calls map[int]*domain.ToolCall
}

func (s *oaiToolStream) add(deltas []oaiToolCall) error {
	for _, d := range deltas {
		i := 0
		if d.Index != nil {
			i = *d.Index
		}
		call, seen := s.calls[i]
		if !seen {
			if s.calls == nil {
				s.calls = map[int]*domain.ToolCall{}
			}
			call = &domain.ToolCall{ID: d.ID, Name: d.Function.Name}
			s.calls[i] = call
			start := domain.Block{Type: domain.BlockToolCall, ToolCall: *call}
			if err := s.emit(domain.ChatChunk{Index: i + 1, Start: &start}); err != nil {
				return err
			}
		}
		if d.Function.Arguments != "" {
			call.Arguments += d.Function.Arguments
			if err := s.emit(domain.ChatChunk{Index: i + 1, ArgumentsDelta: d.Function.Arguments}); err != nil {
				return err
			}
		}
	}
	return nil
}

// blocks returns the text and the assembled tool calls, in order.
func (s *oaiToolStream) blocks(text string) []domain.Block {
	var out []domain.Block
	if text != "" {
		out = append(out, domain.TextBlock(text))
	}
	order := make([]int, 0, len(s.calls))
	for i := range s.calls {
		order = append(order, i)
	}
	sort.Ints(order)
	for _, i := range order {
		out = append(out, domain.Block{Type: domain.BlockToolCall, ToolCall: *s.calls[i]})
	}
	return out
}
