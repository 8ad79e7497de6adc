package domain

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The conversation model every inbound dialect maps onto and every provider
// adapter translates from: messages made of typed content blocks, tools the
// model may call, how it may choose among them, the shape its answer must
// take, and why it stopped.
//
// A Message keeps its plain text in Content so that text-only code (the
// call log, providers that speak text only) reads one field; when a message
// holds anything but text, Blocks is its full content, in order, and
// Content is the concatenation of its text blocks.

// BlockType says what a content block holds.
type BlockType string

// The content block types.
const (
	BlockText       BlockType = "text"
	BlockImage      BlockType = "image"
	BlockToolCall   BlockType = "tool_call"
	BlockToolResult BlockType = "tool_result"
	BlockReasoning  BlockType = "reasoning"
)

// Block is one piece of a message's content. Type says which of its fields
// apply: Text for text and reasoning blocks, Image, ToolCall, ToolResult,
// and Reasoning for a reasoning block's proof of origin.
type Block struct {
	Type       BlockType
	Text       string
	Image      Image
	ToolCall   ToolCall
	ToolResult ToolResult
	Reasoning  Reasoning
}

// Image is an image given by URL, or inline as base64 Data of MediaType.
type Image struct {
	URL       string
	MediaType string // image/png, image/jpeg, image/gif or image/webp for inline data
	Data      string // base64
}

// AsURL returns the image as one URL: its URL, or a data URL
// (data:<media type>;base64,<data>) of its inline data.
func (i Image) AsURL() string {
	if i.URL != "" {
		return i.URL
	}
	return "data:" + i.MediaType + ";base64," + i.Data
}

// ImageOfURL is the image url stands for, as AsURL writes it: a data URL
// (data:<media type>;base64,<data>) is inline data, any other URL an image
// by URL (which validation takes only as http or https). A data URL of
// another form, or without data, is invalid; param names the field that
// holds url, in the request's own terms.
func ImageOfURL(param, url string) (Image, error) {
	rest, isData := strings.CutPrefix(url, "data:")
	if !isData {
		return Image{URL: url}, nil
	}
	mediaType, data, ok := strings.Cut(rest, ";base64,")
	if !ok || data == "" {
		return Image{}, InvalidParam(param, "%s: a data URL must be data:<media type>;base64,<data>", param)
	}
	return Image{MediaType: mediaType, Data: data}, nil
}

// ToolCall is the model's request to run a tool. Arguments is a JSON object.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// ToolArguments is a tool call's arguments args as a JSON object: args, or
// the empty object "{}" for a call that got none (a provider may stream a
// call without arguments as no piece at all, or as one empty piece).
func ToolArguments(args string) string {
	if args == "" {
		return "{}"
	}
	return args
}

// ToolResult is what running a tool produced, for the call with CallID. Its
// content is text and images.
type ToolResult struct {
	CallID  string
	Content []Block
	IsError bool
}

// Reasoning is what a reasoning block carries besides its text: the
// provider's Signature over the text (Anthropic's thinking blocks), or the
// provider's Encrypted reasoning, whose text is hidden (Anthropic's redacted
// thinking, OpenAI's encrypted content).
type Reasoning struct {
	Signature string
	Encrypted string
}

// TextBlock returns a text block.
func TextBlock(s string) Block { return Block{Type: BlockText, Text: s} }

// Parts returns the message's content as blocks: Blocks when set, else one
// text block of Content (none when Content is empty).
func (m Message) Parts() []Block {
	if m.Blocks != nil {
		return m.Blocks
	}
	if m.Content == "" {
		return nil
	}
	return []Block{TextBlock(m.Content)}
}

// JoinText concatenates the text of the text blocks, separated by newlines.
func JoinText(blocks []Block) string {
	var texts []string
	for _, b := range blocks {
		if b.Type == BlockText {
			texts = append(texts, b.Text)
		}
	}
	return strings.Join(texts, "\n")
}

// Tool is a function the model may call. Parameters is a JSON Schema of its
// arguments object. Strict, set only when the client asked for it, asks
// that the model's calls always match Parameters exactly (OpenAI's strict
// function calling, Anthropic's strict tool use); a provider that cannot
// promise it refuses the tool rather than call it without the promise.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
	Strict      bool
}

// ToolChoiceMode says whether and how the model must call tools.
type ToolChoiceMode string

// The tool choice modes; the zero value lets the model decide.
const (
	ToolChoiceAuto     ToolChoiceMode = ""
	ToolChoiceNone     ToolChoiceMode = "none"
	ToolChoiceRequired ToolChoiceMode = "required" // some tool
	ToolChoiceTool     ToolChoiceMode = "tool"     // the tool named in ToolChoice.Name
)

// ToolChoice constrains the model's use of tools.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string
	// NoParallel forbids more than one tool call in an answer.
	NoParallel bool
}

// ResponseFormatType is the shape an answer's text must take.
type ResponseFormatType string

// The response formats; the zero value is free text.
const (
	FormatText       ResponseFormatType = ""
	FormatJSONObject ResponseFormatType = "json_object"
	FormatJSONSchema ResponseFormatType = "json_schema"
)

// ResponseFormat asks for free text, any JSON object, or JSON valid against
// Schema.
type ResponseFormat struct {
	Type   ResponseFormatType
	Name   string
	Schema json.RawMessage
	Strict bool
}

// Thinking asks the model to reason before it answers, spending at most
// BudgetTokens of its output cap on it. Effort, when set, says how hard it
// should work at its answer (OpenAI's reasoning effort, Anthropic's
// output effort), with or without Enabled: one of the Effort constants.
type Thinking struct {
	Enabled      bool
	BudgetTokens int
	Effort       string
}

// The reasoning efforts, least to most; each provider takes a subset.
const (
	EffortNone    = "none"
	EffortMinimal = "minimal"
	EffortLow     = "low"
	EffortMedium  = "medium"
	EffortHigh    = "high"
	EffortXHigh   = "xhigh"
	EffortMax     = "max"
)

// ValidEffort reports whether e is one of the reasoning efforts.
func ValidEffort(e string) bool {
	switch e {
	case EffortNone, EffortMinimal, EffortLow, EffortMedium, EffortHigh, EffortXHigh, EffortMax:
		return true
	}
	return false
}

// Finish reasons: why the model stopped. Dialects translate them to their
// own words (Anthropic's end_turn is FinishStop).
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// ImageURLTokens is the worst-case prompt tokens of an image sent by URL,
// whose size tidygate does not know. Inline images count their bytes like text.
const ImageURLTokens = 4096

// Limits on tools.
const (
	MaxTools        = 512
	MaxToolNameLen  = 128
	MaxBlocksPerMsg = 10_000
)

// validateConversation checks the typed parts of a request: tools, tool
// choice, response format, thinking and every message's blocks.
func (r ChatRequest) validateConversation() error {
	if len(r.Tools) > MaxTools {
		return InvalidParam("tools", "tools may contain at most %d tools", MaxTools)
	}
	names := make(map[string]bool, len(r.Tools))
	for i, t := range r.Tools {
		param := paramIndex("tools", i, "name")
		if t.Name == "" || len(t.Name) > MaxToolNameLen || !utf8.ValidString(t.Name) {
			return InvalidParam(param, "tools[%d].name must be 1 to %d characters", i, MaxToolNameLen)
		}
		if names[t.Name] {
			return InvalidParam(param, "tools[%d].name %q is used by another tool", i, t.Name)
		}
		names[t.Name] = true
		if len(t.Parameters) > 0 && !isJSONObject(t.Parameters) {
			return InvalidParam(paramIndex("tools", i, "parameters"), "tools[%d] needs a JSON Schema object for its parameters", i)
		}
	}
	switch r.ToolChoice.Mode {
	case ToolChoiceAuto, ToolChoiceNone:
	case ToolChoiceRequired:
		if len(r.Tools) == 0 {
			return InvalidParam("tool_choice", "tool_choice requires a tool call, but no tools are given")
		}
	case ToolChoiceTool:
		if !names[r.ToolChoice.Name] {
			return InvalidParam("tool_choice", "tool_choice names tool %q, which is not among the tools", r.ToolChoice.Name)
		}
	default:
		return InvalidParam("tool_choice", "tool_choice %q is not one of auto, none, required or a tool", r.ToolChoice.Mode)
	}
	switch r.ResponseFormat.Type {
	case FormatText, FormatJSONObject:
	case FormatJSONSchema:
		if !isJSONObject(r.ResponseFormat.Schema) {
			return InvalidParam("response_format", "a json_schema response format needs a JSON Schema object")
		}
	default:
		return InvalidParam("response_format", "response format %q is not one of text, json_object, json_schema", r.ResponseFormat.Type)
	}
	if r.Thinking.Enabled && r.Thinking.BudgetTokens < 0 {
		return InvalidParam("thinking.budget_tokens", "thinking.budget_tokens must not be negative")
	}
	if r.Thinking.Effort != "" && !ValidEffort(r.Thinking.Effort) {
		return InvalidParam("reasoning_effort", "reasoning effort %q is not one of none, minimal, low, medium, high, xhigh, max", r.Thinking.Effort)
	}
	for i, m := range r.Messages {
		if len(m.Blocks) > MaxBlocksPerMsg {
			return InvalidParam(paramIndex("messages", i, "content"), "messages[%d] has more than %d content blocks", i, MaxBlocksPerMsg)
		}
		for j, b := range m.Blocks {
			if err := b.validate(paramIndex("messages", i, "content")+"["+itoa(j)+"]", m.Role); err != nil {
				return err
			}
		}
	}
	return nil
}

// validate checks one block of a message written by role.
func (b Block) validate(param string, role Role) error {
	switch b.Type {
	case BlockText:
		if !utf8.ValidString(b.Text) {
			return InvalidParam(param, "%s is not valid UTF-8", param)
		}
	case BlockImage:
		if role == RoleAssistant {
			return InvalidParam(param, "%s: an assistant message cannot hold an image", param)
		}
		return b.Image.validate(param)
	case BlockToolCall:
		if role != RoleAssistant {
			return InvalidParam(param, "%s: only assistant messages hold tool calls", param)
		}
		if b.ToolCall.ID == "" || b.ToolCall.Name == "" {
			return InvalidParam(param, "%s: a tool call needs an id and a name", param)
		}
		if !isJSONObject(json.RawMessage(b.ToolCall.Arguments)) {
			return InvalidParam(param, "%s: a tool call's arguments must be a JSON object", param)
		}
	case BlockToolResult:
		if role == RoleAssistant {
			return InvalidParam(param, "%s: a tool result cannot be part of an assistant message", param)
		}
		if b.ToolResult.CallID == "" {
			return InvalidParam(param, "%s: a tool result needs the id of its tool call", param)
		}
		for k, c := range b.ToolResult.Content {
			if c.Type != BlockText && c.Type != BlockImage {
				return InvalidParam(param, "%s: a tool result holds only text and images", param)
			}
			if err := c.validate(param+".content["+itoa(k)+"]", RoleUser); err != nil {
				return err
			}
		}
	case BlockReasoning:
		if role != RoleAssistant {
			return InvalidParam(param, "%s: only assistant messages hold reasoning", param)
		}
		if !utf8.ValidString(b.Text) {
			return InvalidParam(param, "%s is not valid UTF-8", param)
		}
	default:
		return InvalidParam(param, "%s: content block type %q is not supported", param, b.Type)
	}
	return nil
}

// validate checks that an image is given by URL or by inline data of a
// supported media type.
func (im Image) validate(param string) error {
	switch {
	case im.URL != "" && im.Data != "":
		return InvalidParam(param, "%s: an image has a URL or inline data, not both", param)
	case im.URL != "":
		if !strings.HasPrefix(im.URL, "https://") && !strings.HasPrefix(im.URL, "http://") {
			return InvalidParam(param, "%s: an image URL must be http or https", param)
		}
	case im.Data != "":
		switch im.MediaType {
		case "image/png", "image/jpeg", "image/gif", "image/webp":
		default:
			return InvalidParam(param, "%s: image media type %q is not one of image/png, image/jpeg, image/gif, image/webp", param, im.MediaType)
		}
		// Checked here, where it costs a pass over the data, rather than
		// by the provider after the call is reserved and sent.
		if _, err := io.Copy(io.Discard, base64.NewDecoder(base64.StdEncoding, strings.NewReader(im.Data))); err != nil {
			return InvalidParam(param, "%s: the image's data is not base64 (the standard alphabet, padded to whole groups of 4)", param)
		}
	default:
		return InvalidParam(param, "%s: an image needs a URL or inline data", param)
	}
	return nil
}

// Feature names what a request asks of a provider beyond plain text, for
// providers to refuse by name what they cannot do. It returns "" for a
// text-only request.
func (r ChatRequest) Feature() string {
	switch {
	case len(r.Tools) > 0:
		return "tools"
	case r.ResponseFormat.Type != FormatText:
		return "response_format " + string(r.ResponseFormat.Type)
	case r.Thinking.Enabled:
		return "thinking"
	case r.Thinking.Effort != "":
		return "reasoning effort"
	case r.TopK != nil:
		return "top_k"
	}
	for _, m := range r.Messages {
		for _, b := range m.Blocks {
			switch b.Type {
			case BlockImage:
				return "images"
			case BlockToolCall:
				return "tool calls"
			case BlockToolResult:
				return "tool results"
			case BlockReasoning:
				return "reasoning blocks"
			}
		}
	}
	return ""
}

// blockBytes is the worst-case token count of a block's content: every byte
// of text, arguments and inline data a token, and an allowance per image by URL.
func blockBytes(b Block) int {
	switch b.Type {
	case BlockImage:
		if b.Image.URL != "" {
			return ImageURLTokens
		}
		return len(b.Image.Data)
	case BlockToolCall:
		return len(b.ToolCall.ID) + len(b.ToolCall.Name) + len(b.ToolCall.Arguments)
	case BlockToolResult:
		n := len(b.ToolResult.CallID)
		for _, c := range b.ToolResult.Content {
			n += blockBytes(c)
		}
		return n
	case BlockReasoning:
		return len(b.Text) + len(b.Reasoning.Encrypted)
	}
	return len(b.Text)
}

func isJSONObject(raw json.RawMessage) bool {
	var v map[string]json.RawMessage
	return json.Unmarshal(raw, &v) == nil && v != nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// estimateTokensPerMessage is the estimate's allowance for a message's role
// and framing.
const estimateTokensPerMessage = 4

// imageTokensEstimate is the estimate's figure for an image sent inline:
// about what the providers charge for an image of a megapixel or so
// (Anthropic: width × height / 750, about 1,600 tokens for the largest
// image it takes unscaled), whatever the size of its encoding.
const imageTokensEstimate = 1600

// EstimatePromptTokens returns a rough count of the prompt's tokens, for
// providers that do not count them and for count_tokens: a token per four
// bytes of each message (PromptBytes's reading of it) plus four per
// message, and the same for tool definitions and a response schema; an
// inline image counts imageTokensEstimate (or its bytes, when fewer) in
// place of its bytes. It never exceeds WorstCaseChat's bound.
func (r ChatRequest) EstimatePromptTokens() int {
	n := 0
	for _, m := range r.Messages {
		one := ChatRequest{Messages: []Message{m}}
		imageBytes, imageTokens := 0, 0
		for _, b := range m.Blocks {
			forInlineImages(b, func(data string) {
				imageBytes += len(data)
				imageTokens += min(len(data), imageTokensEstimate)
			})
		}
		n += (one.PromptBytes()-imageBytes+3)/4 + imageTokens + estimateTokensPerMessage
	}
	rest := ChatRequest{Tools: r.Tools, ResponseFormat: r.ResponseFormat}
	return n + (rest.PromptBytes()+3)/4
}

// forInlineImages calls f with the data of each inline image in b: b
// itself, or the images among a tool result's content.
func forInlineImages(b Block, f func(data string)) {
	switch b.Type {
	case BlockImage:
		if b.Image.URL == "" {
			f(b.Image.Data)
		}
	case BlockToolResult:
		for _, c := range b.ToolResult.Content {
			forInlineImages(c, f)
		}
	}
}

// A request may forbid parallel tool calls (ToolChoice.NoParallel). Some
// providers have no way to forbid them (Bedrock's Converse API, Gemini), so
// the gateway holds every answer to the rule: the first tool call is kept
// and any later one dropped, as a model that obeyed would have made only the
// first. The dropped calls' tokens were generated and are charged.

// FirstToolCallOnly returns blocks without the tool calls after the first.
func FirstToolCallOnly(blocks []Block) []Block {
	out, calls := blocks[:0:0], 0
	for _, b := range blocks {
		if b.Type == BlockToolCall {
			if calls++; calls > 1 {
				continue
			}
		}
		out = append(out, b)
	}
	if calls <= 1 {
		return blocks
	}
	return out
}

// OneToolCall drops, from a stream, the chunks of tool calls after the
// first. Its zero value is ready to use.
type OneToolCall struct {
	first   bool         // a tool call has started
	dropped map[int]bool // the indexes of the blocks of later tool calls
}

// Keep returns c without what belongs to a later tool call, and whether
// anything of it is left to send.
func (f *OneToolCall) Keep(c ChatChunk) (ChatChunk, bool) {
	if c.Start != nil && c.Start.Type == BlockToolCall {
		if f.first {
			if f.dropped == nil {
				f.dropped = map[int]bool{}
			}
			f.dropped[c.Index] = true
		}
		f.first = true
	}
	if !f.dropped[c.Index] {
		return c, true
	}
	c.Start, c.Delta, c.ArgumentsDelta, c.ReasoningDelta, c.Signature = nil, "", "", "", ""
	return c, c.FinishReason != "" || c.Usage != nil
}
