package httpapi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/tidygate/tidygate/internal/domain"
)

// The conversation parts of a chat completions request: message content
// (text and image parts), tool calls and tool results, tools, tool_choice
// and response_format, turned into the domain's conversation model.

// message turns messages[i] into a domain message. A message of text only
// keeps its text in Content; one with images, tool calls or a tool result
// carries them as Blocks.
func (d *chatDecoder) message(i int, m messageJSON) (domain.Message, error) {
	role := domain.Role(m.Role)
	text, parts, err := messageParts(i, role, m.Content)
	if err != nil {
		return domain.Message{}, err
	}
	if parts == nil && text != "" && (role == domain.RoleTool || len(m.ToolCalls) > 0) {
		parts = []domain.Block{domain.TextBlock(text)}
	}
	msg := domain.Message{Role: role, Name: m.Name, Content: text}
	if m.ToolCallID != "" && role != domain.RoleTool {
		return msg, domain.InvalidParam(fmt.Sprintf("messages[%d].tool_call_id", i), "messages[%d].tool_call_id is only for messages of role \"tool\"", i)
	}
	if len(m.ToolCalls) > 0 && role != domain.RoleAssistant {
		return msg, domain.InvalidParam(fmt.Sprintf("messages[%d].tool_calls", i), "messages[%d].tool_calls is only for messages of role \"assistant\"", i)
	}
	switch {
	case role == domain.RoleTool:
		if m.ToolCallID == "" {
			return msg, domain.InvalidParam(fmt.Sprintf("messages[%d].tool_call_id", i), "messages[%d].tool_call_id is required for role \"tool\"", i)
		}
		msg.Content = ""
		msg.Blocks = []domain.Block{{Type: domain.BlockToolResult, ToolResult: domain.ToolResult{CallID: m.ToolCallID, Content: parts}}}
		return msg, nil
	case len(m.ToolCalls) > 0:
		msg.Blocks = parts
		for k, c := range m.ToolCalls {
			call, err := d.toolCall(fmt.Sprintf("messages[%d].tool_calls[%d]", i, k), c)
			if err != nil {
				return msg, err
			}
			msg.Blocks = append(msg.Blocks, domain.Block{Type: domain.BlockToolCall, ToolCall: call})
		}
		return msg, nil
	}
	for _, p := range parts {
		if p.Type != domain.BlockText {
			msg.Blocks = parts
			break
		}
	}
	return msg, nil
}

// toolCall checks one tool call of an assistant message; param names it.
// Its arguments follow passOnly.toolArguments' rule.
func (d *chatDecoder) toolCall(param string, c toolCallJSON) (domain.ToolCall, error) {
	if c.Type != "function" {
		return domain.ToolCall{}, domain.InvalidParam(param+".type", "%s.type must be \"function\"", param)
	}
	if c.ID == "" || c.Function.Name == "" {
		return domain.ToolCall{}, domain.InvalidParam(param, "%s needs an id and a function.name", param)
	}
	args := d.toolArguments(param+".function.arguments", c.Function.Arguments)
	return domain.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: args}, nil
}

// messageParts returns a message's content: its text, and its blocks when
// it was sent as an array of parts (a string is its text alone, without
// blocks). Content is a string or an array of text and image_url parts; it
// may be null only for the assistant (whose turn may be tool calls only).
func messageParts(i int, role domain.Role, raw json.RawMessage) (string, []domain.Block, error) {
	param := func() string { return "messages[" + strconv.Itoa(i) + "].content" } // built only for an error
	notContent := func() error {
		return domain.InvalidParam(param(), "%s must be a string or an array of text and image_url parts", param())
	}
	switch firstByte(raw) {
	case 0, 'n':
		if role.Valid() && role != domain.RoleAssistant {
			return "", nil, domain.InvalidParam(param(), "%s is required for role %q", param(), role)
		}
		return "", nil, nil // an invalid role is reported by validation
	case '"':
		s, err := unquoteJSON(raw)
		if err != nil {
			return "", nil, domain.InvalidParam(param(), "%s is not a valid string", param())
		}
		return s, nil, nil
	case '[':
		var parts []contentPartJSON
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", nil, notContent()
		}
		blocks := make([]domain.Block, len(parts))
		for j, p := range parts {
			at := param() + "[" + strconv.Itoa(j) + "]"
			switch p.Type {
			case "text":
				blocks[j] = domain.TextBlock(p.Text)
			case "image_url":
				img, err := imagePart(at, p.ImageURL)
				if err != nil {
					return "", nil, err
				}
				blocks[j] = domain.Block{Type: domain.BlockImage, Image: img}
			default:
				return "", nil, domain.InvalidParam(at+".type",
					"content part type %q is not supported; only \"text\" and \"image_url\" parts are", p.Type)
			}
		}
		return domain.JoinText(blocks), blocks, nil
	}
	return "", nil, notContent()
}

// unquoteJSON decodes raw, a JSON string, as json.Unmarshal does: one
// without escapes, control characters or invalid UTF-8 is its bytes between
// the quotes, copied once; any other goes through json.Unmarshal.
func unquoteJSON(raw []byte) (string, error) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		inner := raw[1 : n-1]
		plain := utf8.Valid(inner)
		for _, c := range inner {
			if c < 0x20 || c == '\\' || c == '"' {
				plain = false
				break
			}
		}
		if plain {
			return string(inner), nil
		}
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// imagePart reads an image_url part: its detail, and its URL, an http(s)
// URL or a data URL of base64 image data (domain.ImageOfURL).
func imagePart(param string, u *imageURLJSON) (domain.Image, error) {
	if u == nil || u.URL == "" {
		return domain.Image{}, domain.InvalidParam(param+".image_url.url", "%s.image_url.url is required", param)
	}
	switch u.Detail {
	case "", "auto", "low", "high":
	default:
		return domain.Image{}, domain.InvalidParam(param+".image_url.detail", "%s.image_url.detail must be auto, low or high", param)
	}
	return domain.ImageOfURL(param+".image_url.url", u.URL)
}

// chatTools turns the function tools into domain tools.
func chatTools(tools []toolJSON) ([]domain.Tool, error) {
	if len(tools) == 0 {
		return nil, nil
	}
	out := make([]domain.Tool, len(tools))
	for i, t := range tools {
		if t.Type != "function" {
			return nil, domain.InvalidParam(fmt.Sprintf("tools[%d].type", i), "tools[%d].type %q is not supported; only \"function\" tools are", i, t.Type)
		}
		out[i] = domain.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters,
			Strict: t.Function.Strict}
		if !given(t.Function.Parameters) {
			out[i].Parameters = nil // a function without parameters
		}
	}
	return out, nil
}

// chatToolChoice reads tool_choice: "none", "auto", "required", or
// {"type":"function","function":{"name":…}}.
func chatToolChoice(raw json.RawMessage) (domain.ToolChoice, error) {
	bad := func() error {
		return domain.InvalidParam("tool_choice", `tool_choice must be "none", "auto", "required" or {"type":"function","function":{"name":…}}`)
	}
	switch firstByte(raw) {
	case 0, 'n':
		return domain.ToolChoice{}, nil
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		switch s {
		case "auto":
			return domain.ToolChoice{Mode: domain.ToolChoiceAuto}, nil
		case "none":
			return domain.ToolChoice{Mode: domain.ToolChoiceNone}, nil
		case "required":
			return domain.ToolChoice{Mode: domain.ToolChoiceRequired}, nil
		}
		return domain.ToolChoice{}, bad()
	case '{':
		var c struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(raw, &c) != nil || c.Type != "function" || c.Function.Name == "" {
			return domain.ToolChoice{}, bad()
		}
		return domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: c.Function.Name}, nil
	}
	return domain.ToolChoice{}, bad()
}

// chatResponseFormat reads response_format: text, json_object, or
// json_schema with its schema.
func chatResponseFormat(f *responseFormatJSON) (domain.ResponseFormat, error) {
	if f == nil {
		return domain.ResponseFormat{}, nil
	}
	switch f.Type {
	case "", "text":
		return domain.ResponseFormat{}, nil
	case "json_object":
		return domain.ResponseFormat{Type: domain.FormatJSONObject}, nil
	case "json_schema":
		if f.JSONSchema == nil || f.JSONSchema.Name == "" {
			return domain.ResponseFormat{}, domain.InvalidParam("response_format.json_schema.name", "a json_schema response format needs json_schema.name")
		}
		return domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: f.JSONSchema.Name,
			Schema: f.JSONSchema.Schema, Strict: f.JSONSchema.Strict}, nil
	}
	return domain.ResponseFormat{}, domain.InvalidParam("response_format.type", "response_format.type %q is not one of text, json_object, json_schema", f.Type)
}
