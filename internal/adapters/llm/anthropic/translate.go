package anthropic

import (
	"encoding/json"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

// The Messages API's request as tidygate sends it: only the fields it
// sets, each optional one left out when unset. A turn's content blocks are
// of the types below, each with its type's fields only.
type (
	request struct {
		Model         string        `json:"model"`
		MaxTokens     int           `json:"max_tokens"`
		System        []textBlock   `json:"system,omitempty"`
		Messages      []turn        `json:"messages"`
		Temperature   *float64      `json:"temperature,omitempty"`
		TopP          *float64      `json:"top_p,omitempty"`
		TopK          *int          `json:"top_k,omitempty"`
		StopSequences []string      `json:"stop_sequences,omitempty"`
		Stream        bool          `json:"stream,omitempty"`
		Tools         []tool        `json:"tools,omitempty"`
		ToolChoice    *toolChoice   `json:"tool_choice,omitempty"`
		Thinking      *thinking     `json:"thinking,omitempty"`
		OutputConfig  *outputConfig `json:"output_config,omitempty"`
	}
	turn struct {
		Role    string `json:"role"`
		Content []any  `json:"content"` // the blocks below
	}
	textBlock struct {
		Type string `json:"type"` // text
		Text string `json:"text"`
	}
	imageBlock struct {
		Type   string      `json:"type"` // image
		Source imageSource `json:"source"`
	}
	// imageSource is inline data (type base64) or a URL (type url).
	imageSource struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type,omitempty"`
		Data      string `json:"data,omitempty"`
		URL       string `json:"url,omitempty"`
	}
	toolUseBlock struct {
		Type  string          `json:"type"` // tool_use
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	toolResultBlock struct {
		Type      string `json:"type"` // tool_result
		ToolUseID string `json:"tool_use_id"`
		IsError   bool   `json:"is_error,omitempty"`
		Content   []any  `json:"content,omitempty"` // text and image blocks
	}
	thinkingBlock struct {
		Type      string `json:"type"` // thinking
		Thinking  string `json:"thinking"`
		Signature string `json:"signature"`
	}
	redactedThinkingBlock struct {
		Type string `json:"type"` // redacted_thinking
		Data string `json:"data"`
	}
	tool struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		InputSchema json.RawMessage `json:"input_schema"`
		Strict      bool            `json:"strict,omitempty"` // strict tool use
	}
	toolChoice struct {
		Type                   string `json:"type"` // auto, any, tool or none
		Name                   string `json:"name,omitempty"`
		DisableParallelToolUse *bool  `json:"disable_parallel_tool_use,omitempty"`
	}
	thinking struct {
		Type         string `json:"type"` // enabled or adaptive
		BudgetTokens int    `json:"budget_tokens,omitempty"`
	}
	outputConfig struct {
		Effort string        `json:"effort,omitempty"`
		Format *outputFormat `json:"format,omitempty"`
	}
	outputFormat struct {
		Type   string          `json:"type"` // json_schema
		Schema json.RawMessage `json:"schema"`
	}
)

func text(s string) textBlock { return textBlock{Type: "text", Text: s} }

// request maps the request onto the Messages API's: the model and output
// cap; system and developer messages as the system prompt; the other
// messages as alternating turns of content blocks (a tool message is the
// user's side; consecutive messages of one side merge into one turn);
// sampling parameters only when set; tools and tool choice; thinking; a
// reasoning effort as output_config.effort (see llm.ClampEffort); and a
// JSON Schema response format as output_config.format. A seed or a
// penalty is refused by name: the API has none.
func (p *Provider) request(req domain.ChatRequest) (request, error) {
	if err := p.classify.NoSeedOrPenalties(req); err != nil {
		return request{}, err
	}
	out := request{Model: req.Model, MaxTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, TopK: req.TopK,
		StopSequences: req.Stop}
	lastAssistant := false
	for i, m := range req.Messages {
		if m.Role == domain.RoleSystem || m.Role == domain.RoleDeveloper {
			for _, b := range m.Parts() {
				if b.Type != domain.BlockText {
					return out, p.classify.Invalid("messages[%d]: a system prompt holds only text, not %s", i, b.Type)
				}
				if b.Text != "" {
					out.System = append(out.System, text(b.Text))
				}
			}
			continue
		}
		blocks, err := p.blocks(i, m.Parts())
		if err != nil {
			return out, err
		}
		if len(blocks) == 0 {
			continue // the API refuses empty turns and empty text
		}
		assistant := m.Role == domain.RoleAssistant
		if n := len(out.Messages); n > 0 && lastAssistant == assistant {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		lastAssistant = assistant
		role := "user"
		if assistant {
			role = "assistant"
		}
		out.Messages = append(out.Messages, turn{Role: role, Content: blocks})
	}
	if len(out.Messages) == 0 {
		return out, p.classify.Invalid("the request has no user or assistant message with content")
	}
	if err := p.tools(&out, req); err != nil {
		return out, err
	}
	if err := p.format(&out, req.ResponseFormat); err != nil {
		return out, err
	}
	switch {
	case !req.Thinking.Enabled:
	case req.Thinking.BudgetTokens > 0:
		out.Thinking = &thinking{Type: "enabled", BudgetTokens: req.Thinking.BudgetTokens}
	default:
		out.Thinking = &thinking{Type: "adaptive"}
	}
	if e := llm.ClampEffort(req.Thinking.Effort); e != "" {
		if out.OutputConfig == nil {
			out.OutputConfig = &outputConfig{}
		}
		out.OutputConfig.Effort = e
	}
	return out, nil
}

// blocks maps the content of message i. Empty text is left out, as the API
// refuses it. A reasoning block goes back as thinking with its signature,
// or as redacted thinking with its encrypted data; one with neither (another
// provider's reasoning summary) is left out, as Anthropic accepts only the
// thinking it signed and ignores earlier turns' thinking anyway.
func (p *Provider) blocks(i int, parts []domain.Block) ([]any, error) {
	var out []any
	for _, b := range parts {
		switch b.Type {
		case domain.BlockText:
			if b.Text != "" {
				out = append(out, text(b.Text))
			}
		case domain.BlockImage:
			out = append(out, image(b.Image))
		case domain.BlockToolCall:
			out = append(out, toolUseBlock{Type: "tool_use", ID: b.ToolCall.ID, Name: b.ToolCall.Name, Input: json.RawMessage(b.ToolCall.Arguments)})
		case domain.BlockToolResult:
			out = append(out, toolResult(b.ToolResult))
		case domain.BlockReasoning:
			switch {
			case b.Reasoning.Signature != "":
				out = append(out, thinkingBlock{Type: "thinking", Thinking: b.Text, Signature: b.Reasoning.Signature})
			case b.Reasoning.Encrypted != "":
				out = append(out, redactedThinkingBlock{Type: "redacted_thinking", Data: b.Reasoning.Encrypted})
			}
		default:
			return nil, p.classify.Invalid("messages[%d]: content block type %q cannot be sent to anthropic", i, b.Type)
		}
	}
	return out, nil
}

// image is an image block: inline base64 data with its media type, or a URL
// Anthropic fetches itself.
func image(im domain.Image) imageBlock {
	if im.URL != "" {
		return imageBlock{Type: "image", Source: imageSource{Type: "url", URL: im.URL}}
	}
	return imageBlock{Type: "image", Source: imageSource{Type: "base64", MediaType: im.MediaType, Data: im.Data}}
}

// toolResult is a tool_result block of text and images; is_error only when set.
func toolResult(r domain.ToolResult) toolResultBlock {
	out := toolResultBlock{Type: "tool_result", ToolUseID: r.CallID, IsError: r.IsError}
	for _, c := range r.Content {
		switch c.Type {
		case domain.BlockText:
			if c.Text != "" {
				out.Content = append(out.Content, text(c.Text))
			}
		case domain.BlockImage:
			out.Content = append(out.Content, image(c.Image))
		}
	}
	return out
}

// tools sets the tools, a strict one with strict (strict tool use, which
// needs no beta header), and the tool choice. A tool choice that is not
// auto says whether the model may call several tools at once; auto says so
// only when it may not.
func (p *Provider) tools(out *request, req domain.ChatRequest) error {
	for _, t := range req.Tools {
		schema, err := inputSchema(t.Parameters)
		if err != nil {
			return p.classify.Invalid("tool %q: its parameters are not a JSON Schema object", t.Name)
		}
		out.Tools = append(out.Tools, tool{Name: t.Name, Description: t.Description, InputSchema: schema, Strict: t.Strict})
	}
	noParallel := req.ToolChoice.NoParallel
	switch req.ToolChoice.Mode {
	case domain.ToolChoiceNone:
		if len(req.Tools) > 0 {
			out.ToolChoice = &toolChoice{Type: "none"}
		}
	case domain.ToolChoiceRequired:
		out.ToolChoice = &toolChoice{Type: "any", DisableParallelToolUse: &noParallel}
	case domain.ToolChoiceTool:
		out.ToolChoice = &toolChoice{Type: "tool", Name: req.ToolChoice.Name, DisableParallelToolUse: &noParallel}
	default:
		if noParallel && len(req.Tools) > 0 {
			out.ToolChoice = &toolChoice{Type: "auto", DisableParallelToolUse: &noParallel}
		}
	}
	return nil
}

// format asks for a JSON Schema answer through structured outputs
// (output_config.format). Anthropic has no "any JSON object" format: a
// json_object response format is refused by name.
func (p *Provider) format(out *request, f domain.ResponseFormat) error {
	switch f.Type {
	case domain.FormatJSONObject:
		return p.classify.Unsupported("response_format json_object", "anthropic has no such format: ask for a json_schema response format")
	case domain.FormatJSONSchema:
		var schema map[string]json.RawMessage
		if err := json.Unmarshal(f.Schema, &schema); err != nil || schema == nil {
			return p.classify.Invalid("the response format's schema is not a JSON object")
		}
		out.OutputConfig = &outputConfig{Format: &outputFormat{Type: "json_schema", Schema: f.Schema}}
	}
	return nil
}

// inputSchema returns a tool's JSON Schema as the API takes it: an object
// schema (type object, whatever type it named), every other keyword kept;
// no schema is the object schema of no properties. A schema that is not
// a JSON object, or whose required is not a list of names, is an error.
func inputSchema(raw json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, err
		}
	}
	if required, ok := fields["required"]; ok {
		var names []string
		if err := json.Unmarshal(required, &names); err != nil {
			return nil, err
		}
		if names == nil {
			delete(fields, "required") // null
		}
	}
	if fields == nil {
		fields = map[string]json.RawMessage{}
	}
	fields["type"] = json.RawMessage(`"object"`)
	return json.Marshal(fields)
}
