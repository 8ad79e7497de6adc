package httpapi

import (
	"encoding/json"
	"fmt"

	"github.com/tidygate/tidygate/internal/domain"
)

// The Anthropic Messages dialect's request: its wire structs, owned here,
// and their conversion into a domain chat request. Fields tidygate does not
// know are ignored, as Anthropic's clients send new ones all the time; known
// fields asking for what tidygate cannot do are refused by name.

// messagesRequestJSON is the body of POST /v1/messages and, without
// max_tokens and stream, of POST /v1/messages/count_tokens.
type messagesRequestJSON struct {
	Model         string                `json:"model"`
	MaxTokens     *int                  `json:"max_tokens"`
	Messages      []anthMessageJSON     `json:"messages"`
	System        json.RawMessage       `json:"system"` // a string or an array of text blocks
	Metadata      *anthMetadataJSON     `json:"metadata"`
	StopSequences []string              `json:"stop_sequences"`
	Stream        bool                  `json:"stream"`
	Temperature   *float64              `json:"temperature"`
	TopP          *float64              `json:"top_p"`
	TopK          *int                  `json:"top_k"`
	Tools         []anthToolJSON        `json:"tools"`
	ToolChoice    *anthToolChoiceJSON   `json:"tool_choice"`
	Thinking      *anthThinkingJSON     `json:"thinking"`
	OutputFormat  *anthOutputFormatJSON `json:"output_format"`
	OutputConfig  *anthOutputConfigJSON `json:"output_config"`

	// Features tidygate does not offer: refused when asked for.
	MCPServers json.RawMessage `json:"mcp_servers"`
	Container  json.RawMessage `json:"container"`
}

type anthMetadataJSON struct {
	UserID string `json:"user_id"`
}

type anthMessageJSON struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or an array of content blocks
}

// anthBlockJSON is any content block, in a request or a response; Type
// says which fields apply.
type anthBlockJSON struct {
	Type string `json:"type"`
	// text
	Text *string `json:"text,omitempty"`
	// image (an image source), document, search_result (a URL): decoded
	// by the block's type
	Source json.RawMessage `json:"source,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"` // a string or an array of text and image blocks
	IsError   bool            `json:"is_error,omitempty"`
	// thinking, redacted_thinking
	Thinking  *string `json:"thinking,omitempty"`
	Signature *string `json:"signature,omitempty"`
	Data      string  `json:"data,omitempty"`
}

type anthImageSourceJSON struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anthToolJSON struct {
	Type        string          `json:"type"` // "custom" or absent for a client tool
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      bool            `json:"strict"` // strict tool use
}

type anthToolChoiceJSON struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

type anthThinkingJSON struct {
	Type         string `json:"type"` // enabled, disabled, adaptive
	BudgetTokens int    `json:"budget_tokens"`
}

type anthOutputFormatJSON struct {
	Type   string          `json:"type"` // json_schema
	Schema json.RawMessage `json:"schema"`
}

type anthOutputConfigJSON struct {
	Effort *string               `json:"effort"` // low, medium, high, xhigh, max
	Format *anthOutputFormatJSON `json:"format"`
}

// messagesInput is a decoded Messages request, and the body it came from.
type messagesInput struct {
	req  domain.ChatRequest
	body []byte
	// untranslatable is why req does not carry the whole request (a
	// feature only Anthropic itself offers): then only a model of an
	// Anthropic provider, which takes the body as it is, can serve it.
	untranslatable error
}

// decodeMessages turns a Messages body into a valid domain request.
func decodeMessages(body []byte) (messagesInput, error) {
	req, only, err := decodeAnthropic(body, true)
	return messagesInput{req: req, body: body, untranslatable: only}, err
}

// decodeCountTokens turns a count_tokens body into a valid domain request,
// kept beside the body for a provider that counts it as it is. The
// estimate leaves its server tools, MCP servers and container out: they
// are Anthropic's own, and cost what Anthropic bills per use.
func decodeCountTokens(body []byte) (messagesInput, error) {
	req, _, err := decodeAnthropic(body, false)
	return messagesInput{req: req, body: body}, err
}

// decodeAnthropic decodes a Messages body. only, when set, names a feature
// Anthropic serves itself (a server tool, the MCP connector, a container),
// which the domain request leaves out: then only a model that takes the body
// as it is can serve it.
func decodeAnthropic(body []byte, needMaxTokens bool) (req domain.ChatRequest, only error, err error) {
	var w messagesRequestJSON
	if err := decodeJSON(body, &w); err != nil {
		return domain.ChatRequest{}, nil, err
	}
	var d anthDecoder
	switch {
	case nonEmptyArray(w.MCPServers):
		d.providerOnly("mcp_servers", "mcp_servers (the MCP connector)")
	case given(w.Container):
		d.providerOnly("container", "container (code execution)")
	}
	req, err = d.request(w, needMaxTokens)
	return req, d.only, err
}

// anthDecoder decodes a Messages body, and notes the first feature in it
// that Anthropic serves itself: a server tool, the MCP connector, a
// container, and the content blocks that come with them or that only
// Anthropic reads (server tool results, documents, …). The domain request
// leaves those out.
type anthDecoder struct{ passOnly }

// isServerTool reports whether t is one of Anthropic's server tools (web
// search, code execution, …) rather than a tool the client runs.
func isServerTool(t anthToolJSON) bool { return t.Type != "" && t.Type != "custom" }

// request turns a decoded Messages body into a valid domain request.
func (d *anthDecoder) request(w messagesRequestJSON, needMaxTokens bool) (domain.ChatRequest, error) {
	req := domain.ChatRequest{Model: w.Model, Temperature: w.Temperature, TopP: w.TopP, TopK: w.TopK,
		Stop: w.StopSequences, Stream: w.Stream && needMaxTokens}
	if w.Metadata != nil {
		req.User = w.Metadata.UserID
	}
	if needMaxTokens {
		if w.MaxTokens == nil {
			return req, domain.InvalidParam("max_tokens", "max_tokens: Field required")
		}
		if *w.MaxTokens < 1 || *w.MaxTokens > domain.MaxTokensLimit {
			return req, domain.InvalidParam("max_tokens", "max_tokens must be between 1 and %d", domain.MaxTokensLimit)
		}
		req.MaxTokens = *w.MaxTokens
	}
	if t := w.Temperature; t != nil && (*t < 0 || *t > 1) {
		return req, domain.InvalidParam("temperature", "temperature must be between 0 and 1")
	}
	system, err := anthSystem(w.System)
	if err != nil {
		return req, err
	}
	req.Messages = system
	for i, m := range w.Messages {
		msg, err := d.message(i, m)
		if err != nil {
			return req, err
		}
		req.Messages = append(req.Messages, msg)
	}
	if len(w.Messages) == 0 {
		return req, domain.InvalidParam("messages", "messages must contain at least one message")
	}
	for i, t := range w.Tools {
		if isServerTool(t) {
			d.providerOnly(fmt.Sprintf("tools[%d].type", i), fmt.Sprintf("server tool %q", t.Type))
			continue
		}
		if !given(t.InputSchema) {
			return req, domain.InvalidParam(fmt.Sprintf("tools[%d].input_schema", i), "tools[%d].input_schema: Field required", i)
		}
		req.Tools = append(req.Tools, domain.Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema, Strict: t.Strict})
	}
	if req.ToolChoice, err = anthToolChoice(w.ToolChoice); err != nil {
		return req, err
	}
	if req.Thinking, err = anthThinking(w.Thinking); err != nil {
		return req, err
	}
	if w.OutputConfig != nil {
		if req.Thinking.Effort, err = reasoningEffort("output_config.effort", w.OutputConfig.Effort); err != nil {
			return req, err
		}
	}
	format := w.OutputFormat
	if w.OutputConfig != nil && w.OutputConfig.Format != nil {
		format = w.OutputConfig.Format
	}
	if format != nil {
		if format.Type != "json_schema" {
			return req, domain.InvalidParam("output_format", "output format %q is not supported; only json_schema is", format.Type)
		}
		req.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Schema: format.Schema, Strict: true}
	}
	return req, req.Validate()
}

// anthSystem turns the system prompt into system messages, one per block.
func anthSystem(raw json.RawMessage) ([]domain.Message, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return nil, nil
	case '"':
		s, err := jsonString(raw, "system")
		return []domain.Message{{Role: domain.RoleSystem, Content: s}}, err
	case '[':
		var blocks []anthBlockJSON
		if err := json.Unmarshal(raw, &blocks); err != nil {
			return nil, domain.InvalidParam("system", "system must be a string or an array of text blocks")
		}
		out := make([]domain.Message, 0, len(blocks))
		for j, b := range blocks {
			if b.Type != "text" {
				return nil, domain.InvalidParam(fmt.Sprintf("system[%d].type", j), "system blocks must be text blocks, not %q", b.Type)
			}
			out = append(out, domain.Message{Role: domain.RoleSystem, Content: deref(b.Text)})
		}
		return out, nil
	}
	return nil, domain.InvalidParam("system", "system must be a string or an array of text blocks")
}

// message turns one message into a domain message. Besides user and
// assistant turns, Claude Code sends system messages among them (text that
// updates the system prompt mid-conversation).
func (d *anthDecoder) message(i int, m anthMessageJSON) (domain.Message, error) {
	param := fmt.Sprintf("messages[%d]", i)
	role := domain.Role(m.Role)
	if role != domain.RoleUser && role != domain.RoleAssistant && role != domain.RoleSystem {
		return domain.Message{}, domain.InvalidParam(param+".role", "%s.role must be \"user\", \"assistant\" or \"system\", not %q", param, m.Role)
	}
	switch firstByte(m.Content) {
	case '"':
		s, err := jsonString(m.Content, param+".content")
		return domain.Message{Role: role, Content: s}, err
	case '[':
		var blocks []anthBlockJSON
		if err := json.Unmarshal(m.Content, &blocks); err != nil {
			return domain.Message{}, domain.InvalidParam(param+".content", "%s.content must be a string or an array of content blocks", param)
		}
		out := domain.Message{Role: role, Blocks: make([]domain.Block, 0, len(blocks))}
		for j, b := range blocks {
			block, ok, err := d.block(fmt.Sprintf("%s.content[%d]", param, j), b, true)
			if err != nil {
				return domain.Message{}, err
			}
			if ok {
				out.Blocks = append(out.Blocks, block)
			}
		}
		out.Content = domain.JoinText(out.Blocks)
		return out, nil
	}
	return domain.Message{}, domain.InvalidParam(param+".content", "%s.content must be a string or an array of content blocks", param)
}

// block turns one content block into a domain block; nested says whether
// tool results (which hold blocks themselves) are allowed. A block of a
// type tidygate does not know is Anthropic's own (a server tool's use or
// result, a document, …): it is noted and left out, and ok is false.
func (d *anthDecoder) block(param string, b anthBlockJSON, nested bool) (_ domain.Block, ok bool, _ error) {
	switch b.Type {
	case "text":
		return domain.TextBlock(deref(b.Text)), true, nil
	case "image":
		return d.image(param+".source", b.Source)
	case "tool_use":
		args := "{}"
		if given(b.Input) {
			args = string(b.Input)
		}
		return domain.Block{Type: domain.BlockToolCall, ToolCall: domain.ToolCall{ID: b.ID, Name: b.Name, Arguments: args}}, true, nil
	case "tool_result":
		if !nested {
			return domain.Block{}, false, domain.InvalidParam(param+".type", "a tool_result block cannot hold another")
		}
		content, err := d.toolResultContent(param+".content", b.Content)
		if err != nil {
			return domain.Block{}, false, err
		}
		return domain.Block{Type: domain.BlockToolResult,
			ToolResult: domain.ToolResult{CallID: b.ToolUseID, Content: content, IsError: b.IsError}}, true, nil
	case "thinking":
		block := domain.Block{Type: domain.BlockReasoning}
		if b.Thinking != nil {
			block.Text = *b.Thinking
		}
		if b.Signature != nil {
			block.Reasoning.Signature = *b.Signature
		}
		return block, true, nil
	case "redacted_thinking":
		return domain.Block{Type: domain.BlockReasoning, Reasoning: domain.Reasoning{Encrypted: b.Data}}, true, nil
	}
	return d.other(param, "content block type", b.Type)
}

// other answers a block or source of type typ that tidygate does not
// translate (param names it, what says what typ is): without a type it is
// a client error; any other is Anthropic's own, noted and left out (ok
// false).
func (d *anthDecoder) other(param, what, typ string) (_ domain.Block, ok bool, _ error) {
	if typ == "" {
		return domain.Block{}, false, domain.InvalidParam(param+".type", "%s.type: Field required", param)
	}
	d.providerOnly(param+".type", fmt.Sprintf("%s %q", what, typ))
	return domain.Block{}, false, nil
}

// image turns an image block's source into a domain image block. A source
// of another type (a file of Anthropic's Files API, …) is Anthropic's own,
// as a document's is: it is noted and left out, and ok is false.
func (d *anthDecoder) image(param string, raw json.RawMessage) (_ domain.Block, ok bool, _ error) {
	if !given(raw) {
		return domain.Block{}, false, domain.InvalidParam(param, "%s: Field required", param)
	}
	var src anthImageSourceJSON
	if err := json.Unmarshal(raw, &src); err != nil {
		return domain.Block{}, false, domain.InvalidParam(param, "%s: Input should be an object", param)
	}
	switch src.Type {
	case "base64":
		return domain.Block{Type: domain.BlockImage, Image: domain.Image{MediaType: src.MediaType, Data: src.Data}}, true, nil
	case "url":
		return domain.Block{Type: domain.BlockImage, Image: domain.Image{URL: src.URL}}, true, nil
	}
	return d.other(param, "image source type", src.Type)
}

// anthToolResultContent accepts a tool result's content as a string or an
// array of text and image blocks.
func (d *anthDecoder) toolResultContent(param string, raw json.RawMessage) ([]domain.Block, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return nil, nil
	case '"':
		s, err := jsonString(raw, param)
		return []domain.Block{domain.TextBlock(s)}, err
	case '[':
		var blocks []anthBlockJSON
		if err := json.Unmarshal(raw, &blocks); err != nil {
			return nil, domain.InvalidParam(param, "%s must be a string or an array of text and image blocks", param)
		}
		out := make([]domain.Block, 0, len(blocks))
		for j, b := range blocks {
			block, ok, err := d.block(fmt.Sprintf("%s[%d]", param, j), b, false)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, block)
			}
		}
		return out, nil
	}
	return nil, domain.InvalidParam(param, "%s must be a string or an array of text and image blocks", param)
}

func anthToolChoice(c *anthToolChoiceJSON) (domain.ToolChoice, error) {
	if c == nil {
		return domain.ToolChoice{}, nil
	}
	out := domain.ToolChoice{NoParallel: c.DisableParallelToolUse}
	switch c.Type {
	case "auto":
	case "any":
		out.Mode = domain.ToolChoiceRequired
	case "tool":
		out.Mode, out.Name = domain.ToolChoiceTool, c.Name
	case "none":
		out.Mode = domain.ToolChoiceNone
	default:
		return out, domain.InvalidParam("tool_choice.type", "tool_choice.type %q is not one of auto, any, tool, none", c.Type)
	}
	return out, nil
}

func anthThinking(t *anthThinkingJSON) (domain.Thinking, error) {
	if t == nil {
		return domain.Thinking{}, nil
	}
	switch t.Type {
	case "disabled":
		return domain.Thinking{}, nil
	case "enabled":
		if t.BudgetTokens < 1024 {
			return domain.Thinking{}, domain.InvalidParam("thinking.budget_tokens", "thinking.budget_tokens must be at least 1024")
		}
		return domain.Thinking{Enabled: true, BudgetTokens: t.BudgetTokens}, nil
	case "adaptive":
		return domain.Thinking{Enabled: true}, nil
	}
	return domain.Thinking{}, domain.InvalidParam("thinking.type", "thinking.type %q is not one of enabled, disabled, adaptive", t.Type)
}

// deref returns *p, or "" when p is nil.
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// jsonString decodes raw, which starts with a quote, as a string.
func jsonString(raw json.RawMessage, param string) (string, error) {
	s, err := unquoteJSON(raw)
	if err != nil {
		return "", domain.InvalidParam(param, "%s is not a valid string", param)
	}
	return s, nil
}
