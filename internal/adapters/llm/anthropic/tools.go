package anthropic

import (
	"encoding/json"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/tidygate/tidygate/internal/domain"
)

// Tools, tool calls and tool results in the Messages API. Images, thinking,
// reasoning blocks and response formats are still refused by name.

// usesTools reports whether the request carries tools, tool calls or tool
// results, and nothing else beyond text.
func usesTools(req domain.ChatRequest) bool {
	if req.Thinking.Enabled || req.TopK != nil || req.ResponseFormat.Type != domain.FormatText {
		return false
	}
	tools := len(req.Tools) > 0
	for _, m := range req.Messages {
		for _, b := range m.Blocks {
			switch b.Type {
			case domain.BlockToolCall:
				tools = true
			case domain.BlockToolResult:
				tools = true
				for _, c := range b.ToolResult.Content {
					if c.Type != domain.BlockText {
						return false
					}
				}
			case domain.BlockText:
			default:
				return false
			}
		}
	}
	return tools
}

// toolParams maps a request with tools onto the API's: system messages
// become the system prompt, the other messages turns of blocks (a tool
// message is the user's side), consecutive messages of one side merged.
func (p *Provider) toolParams(req domain.ChatRequest) (anthropic.MessageNewParams, error) {
	params := anthropic.MessageNewParams{Model: req.Model, MaxTokens: int64(req.MaxTokens)}
	lastAssistant := false
	for _, m := range req.Messages {
		if m.Role == domain.RoleSystem || m.Role == domain.RoleDeveloper {
			if m.Content != "" {
				params.System = append(params.System, anthropic.TextBlockParam{Text: m.Content})
			}
			continue
		}
		var blocks []anthropic.ContentBlockParamUnion
		for _, b := range m.Parts() {
			switch b.Type {
			case domain.BlockText:
				if b.Text != "" {
					blocks = append(blocks, anthropic.NewTextBlock(b.Text))
				}
			case domain.BlockToolCall:
				blocks = append(blocks, anthropic.NewToolUseBlock(b.ToolCall.ID, json.RawMessage(b.ToolCall.Arguments), b.ToolCall.Name))
			case domain.BlockToolResult:
				blocks = append(blocks, anthropic.NewToolResultBlock(b.ToolResult.CallID, domain.JoinText(b.ToolResult.Content), b.ToolResult.IsError))
			}
		}
		if len(blocks) == 0 {
			continue
		}
		assistant := m.Role == domain.RoleAssistant
		if n := len(params.Messages); n > 0 && lastAssistant == assistant {
			params.Messages[n-1].Content = append(params.Messages[n-1].Content, blocks...)
			continue
		}
		lastAssistant = assistant
		if assistant {
			params.Messages = append(params.Messages, anthropic.NewAssistantMessage(blocks...))
		} else {
			params.Messages = append(params.Messages, anthropic.NewUserMessage(blocks...))
		}
	}
	if len(params.Messages) == 0 {
		return params, p.classify.Invalid("the request has no user or assistant message with content")
	}
	for _, t := range req.Tools {
		schema, err := inputSchema(t.Parameters)
		if err != nil {
			return params, p.classify.Invalid("tool %q: its parameters are not a JSON Schema object", t.Name)
		}
		tool := anthropic.ToolUnionParamOfTool(schema, t.Name)
		if t.Description != "" {
			tool.OfTool.Description = anthropic.String(t.Description)
		}
		params.Tools = append(params.Tools, tool)
	}
	noParallel := req.ToolChoice.NoParallel
	switch req.ToolChoice.Mode {
	case domain.ToolChoiceNone:
		params.ToolChoice = anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}
	case domain.ToolChoiceRequired:
		params.ToolChoice = anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{DisableParallelToolUse: anthropic.Bool(noParallel)}}
	case domain.ToolChoiceTool:
		params.ToolChoice = anthropic.ToolChoiceParamOfTool(req.ToolChoice.Name)
		params.ToolChoice.OfTool.DisableParallelToolUse = anthropic.Bool(noParallel)
	default:
		if noParallel && len(req.Tools) > 0 {
			params.ToolChoice = anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{DisableParallelToolUse: anthropic.Bool(true)}}
		}
	}
	return params, nil
}

// inputSchema turns a tool's JSON Schema into the SDK's input schema:
// properties and required in their fields, every other keyword kept.
func inputSchema(raw json.RawMessage) (anthropic.ToolInputSchemaParam, error) {
	var out anthropic.ToolInputSchemaParam
	if len(raw) == 0 {
		return out, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return out, err
	}
	for k, v := range fields {
		switch k {
		case "type":
		case "properties":
			out.Properties = v
		case "required":
			if err := json.Unmarshal(v, &out.Required); err != nil {
				return out, err
			}
		default:
			if out.ExtraFields == nil {
				out.ExtraFields = map[string]any{}
			}
			out.ExtraFields[k] = v
		}
	}
	return out, nil
}
