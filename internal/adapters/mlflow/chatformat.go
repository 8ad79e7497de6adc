package mlflow

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/usagewire"
)

// A chat call's conversation in the journal, and in the trace in the chat
// format MLflow reads for the API the call came through.
//
// The journal keeps messages as typed blocks (text, images by URL, tool
// calls, tool results, reasoning text), the tools offered and the answer's
// blocks. An image sent inline is kept as a line saying its media type and
// size, not as its data: a trace is for reading, and megabytes of base64
// would crowd out everything else in it. Reasoning signatures and encrypted
// reasoning are left out for the same reason.
//
// The trace's root span holds the request and the answer as the client's
// API shapes them (mlflow.spanInputs, mlflow.spanOutputs), with
// mlflow.message.format naming the shape ("openai" for chat completions and
// Responses, "anthropic" for Messages and its token counts, which have
// inputs only), by which MLflow's trace view parses
// them into its chat view: for chat completions, MLflow's own chat message
// format (tool calls in tool_calls, tool results as messages of role tool);
// for Messages, tool_use and tool_result blocks; for Responses,
// function_call and function_call_output items. mlflow.chat.tools holds
// the tools offered, in MLflow's tool format. The conversation is written
// once, in the inputs and the outputs, never a second time (a trace's size
// is bounded).

// wireMessage is the journal's encoding of a domain.Message. Records of
// earlier tidygates have role, content and name only.
type wireMessage struct {
	Role    string      `json:"role"`
	Content string      `json:"content"`
	Name    string      `json:"name,omitempty"`
	Blocks  []wireBlock `json:"blocks,omitempty"`
}

// wireBlock is the journal's encoding of a domain.Block.
type wireBlock struct {
	Type      string      `json:"type"`
	Text      string      `json:"text,omitempty"`
	URL       string      `json:"url,omitempty"`  // an image's
	ID        string      `json:"id,omitempty"`   // a tool call's id, or the call a tool result answers
	Name      string      `json:"name,omitempty"` // a tool call's tool
	Arguments string      `json:"arguments,omitempty"`
	Content   []wireBlock `json:"content,omitempty"` // a tool result's
	IsError   bool        `json:"is_error,omitempty"`
}

// wireTool is the journal's encoding of a domain.Tool: a function as
// OpenAI's tool format describes it.
type wireTool = oaiToolFunction

func toWireMessages(msgs []domain.Message) []wireMessage {
	out := make([]wireMessage, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, wireMessage{Role: string(m.Role), Content: m.Content, Name: m.Name, Blocks: toWireBlocks(m.Blocks)})
	}
	return out
}

func toWireBlocks(bs []domain.Block) []wireBlock {
	if len(bs) == 0 {
		return nil
	}
	out := make([]wireBlock, 0, len(bs))
	for _, b := range bs {
		w := wireBlock{Type: string(b.Type)}
		switch b.Type {
		case domain.BlockText, domain.BlockReasoning:
			w.Text = b.Text
		case domain.BlockImage:
			if b.Image.URL == "" {
				w = wireBlock{Type: string(domain.BlockText), Text: inlineImage(b.Image)}
			}
			w.URL = b.Image.URL
		case domain.BlockToolCall:
			w.ID, w.Name, w.Arguments = b.ToolCall.ID, b.ToolCall.Name, b.ToolCall.Arguments
		case domain.BlockToolResult:
			w.ID, w.Content, w.IsError = b.ToolResult.CallID, toWireBlocks(b.ToolResult.Content), b.ToolResult.IsError
		}
		out = append(out, w)
	}
	return out
}

// inlineImage is what the journal keeps of an image sent inline.
func inlineImage(img domain.Image) string {
	return fmt.Sprintf("[inline image, %s, %d bytes of base64, not recorded]", img.MediaType, len(img.Data))
}

func fromWireMessages(ws []wireMessage) []domain.Message {
	var out []domain.Message
	for _, w := range ws {
		out = append(out, domain.Message{Role: domain.Role(w.Role), Content: w.Content, Name: w.Name, Blocks: fromWireBlocks(w.Blocks)})
	}
	return out
}

func fromWireBlocks(ws []wireBlock) []domain.Block {
	if len(ws) == 0 {
		return nil
	}
	out := make([]domain.Block, 0, len(ws))
	for _, w := range ws {
		b := domain.Block{Type: domain.BlockType(w.Type), Text: w.Text}
		switch b.Type {
		case domain.BlockImage:
			b.Image.URL = w.URL
		case domain.BlockToolCall:
			b.ToolCall = domain.ToolCall{ID: w.ID, Name: w.Name, Arguments: w.Arguments}
		case domain.BlockToolResult:
			b.ToolResult = domain.ToolResult{CallID: w.ID, Content: fromWireBlocks(w.Content), IsError: w.IsError}
		}
		out = append(out, b)
	}
	return out
}

func toWireTools(tools []domain.Tool) []wireTool {
	var out []wireTool
	for _, t := range tools {
		w := wireTool{Name: t.Name, Description: t.Description, Strict: t.Strict}
		if json.Valid(t.Parameters) {
			w.Parameters = t.Parameters
		}
		out = append(out, w)
	}
	return out
}

func fromWireTools(ws []wireTool) []domain.Tool {
	var out []domain.Tool
	for _, w := range ws {
		out = append(out, domain.Tool{Name: w.Name, Description: w.Description, Parameters: w.Parameters, Strict: w.Strict})
	}
	return out
}

// answerOf returns a chat call's answer as blocks: its blocks when it had
// more than text, else its text (none when it had none).
func answerOf(r domain.CallRecord) []domain.Block {
	if len(r.OutputBlocks) > 0 {
		return r.OutputBlocks
	}
	if r.Output != "" {
		return []domain.Block{domain.TextBlock(r.Output)}
	}
	return nil
}

// messageFormat is the mlflow.message.format of a chat call's root span:
// the shape its inputs and outputs have.
func messageFormat(e domain.Endpoint) string {
	if requestShape(e) == domain.EndpointMessages {
		return "anthropic"
	}
	return "openai"
}

// requestShape is the endpoint whose requests have the shape of e's: a
// token count's request is a Messages request.
func requestShape(e domain.Endpoint) domain.Endpoint {
	if e == domain.EndpointCountTokens {
		return domain.EndpointMessages
	}
	return e
}

// argumentsJSON returns a tool call's arguments as JSON (none being the
// empty object, domain.ToolArguments), or as a JSON string when they are
// not JSON.
func argumentsJSON(args string) json.RawMessage {
	args = domain.ToolArguments(args)
	if json.Valid([]byte(args)) {
		return json.RawMessage(args)
	}
	b, _ := json.Marshal(args) // a string always marshals
	return b
}

// OpenAI's chat format, which is MLflow's own chat message format
// (mlflow.types.chat.ChatMessage) and tool format (ChatTool).

type oaiMessage struct {
	Role       string        `json:"role"`
	Content    any           `json:"content"` // a string, a list of oaiPart, or null beside tool calls
	Name       string        `json:"name,omitempty"`
	ToolCalls  []oaiToolCall `json:"tool_calls,omitempty"`
	ToolCallID string        `json:"tool_call_id,omitempty"`
}

type oaiPart struct {
	Type     string       `json:"type"`
	Text     string       `json:"text,omitempty"`
	ImageURL *oaiImageURL `json:"image_url,omitempty"`
}

type oaiImageURL struct {
	URL string `json:"url"`
}

type oaiToolCall struct {
	ID       string      `json:"id"`
	Type     string      `json:"type"`
	Function oaiFunction `json:"function"`
}

type oaiFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type oaiTool struct {
	Type     string          `json:"type"`
	Function oaiToolFunction `json:"function"`
}

type oaiToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

func oaiTools(tools []domain.Tool) []oaiTool {
	var out []oaiTool
	for _, t := range tools {
		out = append(out, oaiTool{Type: "function", Function: oaiToolFunction{Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict}})
	}
	return out
}

// oaiMessages writes messages in OpenAI's chat format: a message's tool
// calls in its tool_calls, each tool result as a message of role tool
// (before what else the message says), reasoning left out (the format has
// no place for it).
func oaiMessages(msgs []domain.Message) []oaiMessage {
	var out []oaiMessage
	for _, m := range msgs {
		out = append(out, oaiMessagesOf(m)...)
	}
	return out
}

func oaiMessagesOf(m domain.Message) []oaiMessage {
	if m.Blocks == nil {
		return []oaiMessage{{Role: string(m.Role), Content: m.Content, Name: m.Name}}
	}
	var out []oaiMessage
	rest := oaiMessage{Role: string(m.Role), Name: m.Name}
	var parts []oaiPart
	onlyText := true
	for _, b := range m.Blocks {
		switch b.Type {
		case domain.BlockText:
			parts = append(parts, oaiPart{Type: "text", Text: b.Text})
		case domain.BlockImage:
			parts = append(parts, oaiPart{Type: "image_url", ImageURL: &oaiImageURL{URL: b.Image.URL}})
			onlyText = false
		case domain.BlockToolCall:
			rest.ToolCalls = append(rest.ToolCalls, oaiToolCall{ID: b.ToolCall.ID, Type: "function",
				Function: oaiFunction{Name: b.ToolCall.Name, Arguments: b.ToolCall.Arguments}})
		case domain.BlockToolResult:
			out = append(out, oaiMessage{Role: string(domain.RoleTool), ToolCallID: b.ToolResult.CallID, Content: domain.JoinText(b.ToolResult.Content)})
		}
	}
	switch {
	case len(parts) > 0 && onlyText:
		rest.Content = joinParts(parts)
	case len(parts) > 0:
		rest.Content = parts
	}
	if rest.Content != nil || len(rest.ToolCalls) > 0 || len(out) == 0 {
		if rest.Content == nil && len(rest.ToolCalls) == 0 {
			rest.Content = ""
		}
		out = append(out, rest)
	}
	return out
}

func joinParts(parts []oaiPart) string {
	texts := make([]string, len(parts))
	for i, p := range parts {
		texts[i] = p.Text
	}
	return strings.Join(texts, "")
}

// oaiAnswer is the assistant's answer as an OpenAI chat message.
func oaiAnswer(r domain.CallRecord) oaiMessage {
	msgs := oaiMessagesOf(domain.Message{Role: domain.RoleAssistant, Content: r.Output, Blocks: answerOf(r)})
	return msgs[len(msgs)-1]
}

// Anthropic's Messages format.

type anthRequestBody struct {
	Model       string        `json:"model"`
	System      string        `json:"system,omitempty"`
	Messages    []anthMessage `json:"messages,omitempty"`
	Tools       []anthTool    `json:"tools,omitempty"`
	MaxTokens   int           `json:"max_tokens,omitempty"`
	Temperature *float64      `json:"temperature,omitempty"`
	Stream      bool          `json:"stream,omitempty"`
}

type anthMessage struct {
	Role    string      `json:"role"`
	Content []anthBlock `json:"content"`
}

type anthBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Thinking  string          `json:"thinking,omitempty"`
	Source    *anthSource     `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   []anthBlock     `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

type anthSource struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

type anthTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

type anthResponseBody struct {
	Type    string              `json:"type"`
	Role    string              `json:"role"`
	Model   string              `json:"model"`
	Content []anthBlock         `json:"content,omitempty"`
	Usage   usagewire.Anthropic `json:"usage"`
}

func anthBlocks(bs []domain.Block) []anthBlock {
	out := make([]anthBlock, 0, len(bs))
	for _, b := range bs {
		switch b.Type {
		case domain.BlockText:
			out = append(out, anthBlock{Type: "text", Text: b.Text})
		case domain.BlockReasoning:
			out = append(out, anthBlock{Type: "thinking", Thinking: b.Text})
		case domain.BlockImage:
			out = append(out, anthBlock{Type: "image", Source: &anthSource{Type: "url", URL: b.Image.URL}})
		case domain.BlockToolCall:
			out = append(out, anthBlock{Type: "tool_use", ID: b.ToolCall.ID, Name: b.ToolCall.Name, Input: argumentsJSON(b.ToolCall.Arguments)})
		case domain.BlockToolResult:
			out = append(out, anthBlock{Type: "tool_result", ToolUseID: b.ToolResult.CallID, Content: anthBlocks(b.ToolResult.Content), IsError: b.ToolResult.IsError})
		}
	}
	return out
}

func anthRequest(r domain.CallRecord, model string) anthRequestBody {
	body := anthRequestBody{Model: model, MaxTokens: r.MaxTokens, Temperature: r.Temperature, Stream: r.Stream}
	var system []string
	for _, m := range r.Messages {
		switch m.Role {
		case domain.RoleSystem, domain.RoleDeveloper:
			system = append(system, m.Content)
			continue
		}
		role := string(m.Role)
		if m.Role == domain.RoleTool {
			role = string(domain.RoleUser)
		}
		body.Messages = append(body.Messages, anthMessage{Role: role, Content: anthBlocks(m.Parts())})
	}
	body.System = strings.Join(system, "\n\n")
	for _, t := range r.Tools {
		body.Tools = append(body.Tools, anthTool{Name: t.Name, Description: t.Description, InputSchema: t.Parameters, Strict: t.Strict})
	}
	return body
}

func anthResponse(c call) anthResponseBody {
	r := c.rec
	body := anthResponseBody{Type: "message", Role: string(domain.RoleAssistant), Model: r.UpstreamModel,
		Usage: usagewire.AnthropicOf(r.Usage)}
	if c.content.KeepsText() {
		body.Content = anthBlocks(answerOf(r))
	}
	return body
}

// OpenAI's Responses format.

type respRequestBody struct {
	Model           string     `json:"model"`
	Instructions    string     `json:"instructions,omitempty"`
	Input           []respItem `json:"input,omitempty"`
	Tools           []respTool `json:"tools,omitempty"`
	MaxOutputTokens int        `json:"max_output_tokens,omitempty"`
	Temperature     *float64   `json:"temperature,omitempty"`
	Stream          bool       `json:"stream,omitempty"`
	User            string     `json:"user,omitempty"`
}

type respItem struct {
	Type      string     `json:"type"`
	Role      string     `json:"role,omitempty"`
	Content   []respPart `json:"content,omitempty"`
	Summary   []respPart `json:"summary,omitempty"` // a reasoning item's
	CallID    string     `json:"call_id,omitempty"`
	Name      string     `json:"name,omitempty"`
	Arguments string     `json:"arguments,omitempty"`
	Output    *string    `json:"output,omitempty"` // a function call output's
}

type respPart struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	ImageURL string `json:"image_url,omitempty"`
}

type respTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

type respResponseBody struct {
	Object string              `json:"object"`
	Status string              `json:"status"`
	Model  string              `json:"model"`
	Output []respItem          `json:"output,omitempty"`
	Usage  usagewire.Responses `json:"usage"`
}

// respItems writes one message's blocks as Responses items: its text and
// images as a message item, each tool call, tool result and reasoning block
// as an item of its own, in order.
func respItems(role domain.Role, bs []domain.Block) []respItem {
	var out []respItem
	var parts []respPart
	textType := "input_text"
	if role == domain.RoleAssistant {
		textType = "output_text"
	}
	flush := func() {
		if len(parts) > 0 {
			out = append(out, respItem{Type: "message", Role: string(role), Content: parts})
			parts = nil
		}
	}
	for _, b := range bs {
		switch b.Type {
		case domain.BlockText:
			parts = append(parts, respPart{Type: textType, Text: b.Text})
		case domain.BlockImage:
			parts = append(parts, respPart{Type: "input_image", ImageURL: b.Image.URL})
		case domain.BlockToolCall:
			flush()
			out = append(out, respItem{Type: "function_call", CallID: b.ToolCall.ID, Name: b.ToolCall.Name, Arguments: b.ToolCall.Arguments})
		case domain.BlockToolResult:
			flush()
			text := domain.JoinText(b.ToolResult.Content)
			out = append(out, respItem{Type: "function_call_output", CallID: b.ToolResult.CallID, Output: &text})
		case domain.BlockReasoning:
			flush()
			out = append(out, respItem{Type: "reasoning", Summary: []respPart{{Type: "summary_text", Text: b.Text}}})
		}
	}
	flush()
	return out
}

func respRequest(r domain.CallRecord, model string) respRequestBody {
	body := respRequestBody{Model: model, MaxOutputTokens: r.MaxTokens, Temperature: r.Temperature, Stream: r.Stream, User: r.ClientUser}
	var instructions []string
	for i, m := range r.Messages {
		if (m.Role == domain.RoleSystem || m.Role == domain.RoleDeveloper) && i == len(instructions) {
			instructions = append(instructions, m.Content) // the leading system messages are the instructions
			continue
		}
		body.Input = append(body.Input, respItems(m.Role, m.Parts())...)
	}
	body.Instructions = strings.Join(instructions, "\n\n")
	for _, t := range r.Tools {
		body.Tools = append(body.Tools, respTool{Type: "function", Name: t.Name, Description: t.Description, Parameters: t.Parameters, Strict: t.Strict})
	}
	return body
}

func respResponse(c call) respResponseBody {
	r := c.rec
	body := respResponseBody{Object: "response", Status: "completed", Model: r.UpstreamModel}
	body.Usage = usagewire.ResponsesOf(r.Usage)
	if c.content.KeepsText() {
		body.Output = respItems(domain.RoleAssistant, answerOf(r))
	}
	return body
}
