package anthropic

import (
	"encoding/json"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

// params maps the request onto the Messages API's: the model and output
// cap; system and developer messages as the system prompt; the other
// messages as alternating turns of content blocks (a tool message is the
// user's side; consecutive messages of one side merge into one turn);
// sampling parameters only when set; tools and tool choice; thinking; a
// reasoning effort as output_config.effort (see llm.ClampEffort); and a
// JSON Schema response format as output_config.format.
func (p *Provider) params(req domain.ChatRequest) (anthropic.MessageNewParams, error) {
	params := anthropic.MessageNewParams{Model: req.Model, MaxTokens: int64(req.MaxTokens)}
	lastAssistant := false
	for i, m := range req.Messages {
		if m.Role == domain.RoleSystem || m.Role == domain.RoleDeveloper {
			for _, b := range m.Parts() {
				if b.Type != domain.BlockText {
					return params, p.classify.Invalid("messages[%d]: a system prompt holds only text, not %s", i, b.Type)
				}
				if b.Text != "" {
					params.System = append(params.System, anthropic.TextBlockParam{Text: b.Text})
				}
			}
			continue
		}
		blocks, err := p.blocks(i, m.Parts())
		if err != nil {
			return params, err
		}
		if len(blocks) == 0 {
			continue // the API refuses empty turns and empty text
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
	if err := p.tools(&params, req); err != nil {
		return params, err
	}
	if err := p.format(&params, req.ResponseFormat); err != nil {
		return params, err
	}
	if req.Thinking.Enabled {
		if req.Thinking.BudgetTokens > 0 {
			params.Thinking = anthropic.ThinkingConfigParamOfEnabled(int64(req.Thinking.BudgetTokens))
		} else {
			params.Thinking = anthropic.ThinkingConfigParamUnion{OfAdaptive: &anthropic.ThinkingConfigAdaptiveParam{}}
		}
	}
	if e := llm.ClampEffort(req.Thinking.Effort); e != "" {
		params.OutputConfig.Effort = anthropic.OutputConfigEffort(e)
	}
	if req.Temperature != nil {
		params.Temperature = anthropic.Float(*req.Temperature)
	}
	if req.TopP != nil {
		params.TopP = anthropic.Float(*req.TopP)
	}
	if req.TopK != nil {
		params.TopK = anthropic.Int(int64(*req.TopK))
	}
	params.StopSequences = req.Stop
	return params, nil
}

// blocks maps the content of message i. Empty text is left out, as the API
// refuses it. A reasoning block goes back as thinking with its signature,
// or as redacted thinking with its encrypted data; one with neither (another
// provider's reasoning summary) is left out, as Anthropic accepts only the
// thinking it signed and ignores earlier turns' thinking anyway.
func (p *Provider) blocks(i int, parts []domain.Block) ([]anthropic.ContentBlockParamUnion, error) {
	var out []anthropic.ContentBlockParamUnion
	for _, b := range parts {
		switch b.Type {
		case domain.BlockText:
			if b.Text != "" {
				out = append(out, anthropic.NewTextBlock(b.Text))
			}
		case domain.BlockImage:
			out = append(out, anthropic.ContentBlockParamUnion{OfImage: image(b.Image)})
		case domain.BlockToolCall:
			out = append(out, anthropic.NewToolUseBlock(b.ToolCall.ID, json.RawMessage(b.ToolCall.Arguments), b.ToolCall.Name))
		case domain.BlockToolResult:
			out = append(out, anthropic.ContentBlockParamUnion{OfToolResult: toolResult(b.ToolResult)})
		case domain.BlockReasoning:
			switch {
			case b.Reasoning.Signature != "":
				out = append(out, anthropic.NewThinkingBlock(b.Reasoning.Signature, b.Text))
			case b.Reasoning.Encrypted != "":
				out = append(out, anthropic.NewRedactedThinkingBlock(b.Reasoning.Encrypted))
			}
		default:
			return nil, p.classify.Invalid("messages[%d]: content block type %q cannot be sent to anthropic", i, b.Type)
		}
	}
	return out, nil
}

// image is an image block: inline base64 data with its media type, or a URL
// Anthropic fetches itself.
func image(im domain.Image) *anthropic.ImageBlockParam {
	if im.URL != "" {
		return &anthropic.ImageBlockParam{Source: anthropic.ImageBlockParamSourceUnion{OfURL: &anthropic.URLImageSourceParam{URL: im.URL}}}
	}
	return &anthropic.ImageBlockParam{Source: anthropic.ImageBlockParamSourceUnion{OfBase64: &anthropic.Base64ImageSourceParam{
		Data: im.Data, MediaType: anthropic.Base64ImageSourceMediaType(im.MediaType)}}}
}

// toolResult is a tool_result block of text and images; is_error only when set.
func toolResult(r domain.ToolResult) *anthropic.ToolResultBlockParam {
	out := &anthropic.ToolResultBlockParam{ToolUseID: r.CallID}
	if r.IsError {
		out.IsError = anthropic.Bool(true)
	}
	for _, c := range r.Content {
		switch c.Type {
		case domain.BlockText:
			if c.Text != "" {
				out.Content = append(out.Content, anthropic.ToolResultBlockParamContentUnion{OfText: &anthropic.TextBlockParam{Text: c.Text}})
			}
		case domain.BlockImage:
			out.Content = append(out.Content, anthropic.ToolResultBlockParamContentUnion{OfImage: image(c.Image)})
		}
	}
	return out
}

// tools sets the tools and the tool choice.
func (p *Provider) tools(params *anthropic.MessageNewParams, req domain.ChatRequest) error {
	for _, t := range req.Tools {
		schema, err := inputSchema(t.Parameters)
		if err != nil {
			return p.classify.Invalid("tool %q: its parameters are not a JSON Schema object", t.Name)
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
		if len(req.Tools) > 0 {
			params.ToolChoice = anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}
		}
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
	return nil
}

// format asks for a JSON Schema answer through structured outputs
// (output_config.format). Anthropic has no "any JSON object" format: a
// json_object response format is refused by name.
func (p *Provider) format(params *anthropic.MessageNewParams, f domain.ResponseFormat) error {
	switch f.Type {
	case domain.FormatJSONObject:
		return p.classify.Unsupported("response_format json_object", "anthropic has no such format: ask for a json_schema response format")
	case domain.FormatJSONSchema:
		var schema map[string]any
		if err := json.Unmarshal(f.Schema, &schema); err != nil || schema == nil {
			return p.classify.Invalid("the response format's schema is not a JSON object")
		}
		params.OutputConfig.Format = anthropic.JSONOutputFormatParam{Schema: schema}
	}
	return nil
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
