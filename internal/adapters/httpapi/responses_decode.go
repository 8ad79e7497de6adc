package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// The OpenAI Responses dialect's request: its wire structs, owned here, and
// their conversion into a domain chat request. A request may continue from
// a stored response (previous_response_id, resolved by the handler) and ask
// for its own response to be stored ("store"); conversation objects and
// background responses are refused by name. Fields tidygate does not know
// are ignored, as OpenAI's clients send new ones all the time.

// responsesRequestJSON is the body of POST /v1/responses.
type responsesRequestJSON struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"` // a string or an array of items
	Instructions       *string         `json:"instructions"`
	Tools              []respToolJSON  `json:"tools"`
	Metadata           json.RawMessage `json:"metadata"`
	ToolChoice         json.RawMessage `json:"tool_choice"` // a mode string or {"type":"function","name":…}
	ParallelToolCalls  *bool           `json:"parallel_tool_calls"`
	MaxOutputTokens    *int            `json:"max_output_tokens"`
	Stream             bool            `json:"stream"`
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"top_p"`
	User               string          `json:"user"`
	Text               *respTextJSON   `json:"text"`
	Reasoning          *respReasonJSON `json:"reasoning"`
	Store              *bool           `json:"store"`
	PreviousResponseID *string         `json:"previous_response_id"`
	Conversation       json.RawMessage `json:"conversation"`
	Background         *bool           `json:"background"`
	Prompt             json.RawMessage `json:"prompt"` // a stored prompt template: {"id":"pmpt_…","variables":…}
	TopLogprobs        *int            `json:"top_logprobs"`
	Include            []string        `json:"include"`
}

// respItemJSON is any input or output item; Type says which fields apply.
type respItemJSON struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	// message
	Role    string          `json:"role,omitempty"`
	Content json.RawMessage `json:"content,omitempty"` // a string or an array of content parts
	// function_call, function_call_output
	CallID    string          `json:"call_id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Arguments string          `json:"arguments,omitempty"`
	Output    json.RawMessage `json:"output,omitempty"` // a string or an array of content parts
	// reasoning
	Summary          []respPartJSON `json:"summary,omitempty"`
	EncryptedContent *string        `json:"encrypted_content,omitempty"`
}

// respPartJSON is a content part of a message, a tool output or a reasoning item.
type respPartJSON struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL string `json:"image_url"`
	FileID   string `json:"file_id"`
}

type respToolJSON struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
	raw         json.RawMessage // the tool as sent, which the Response repeats
}

// UnmarshalJSON decodes a tool, and keeps it as sent.
func (t *respToolJSON) UnmarshalJSON(b []byte) error {
	type plain respToolJSON
	if err := json.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	t.raw = slices.Clone(b)
	return nil
}

// respReasonJSON is a request's reasoning settings; its summary setting is
// not read, as reasoning comes back as the provider gives it.
type respReasonJSON struct {
	Effort *string `json:"effort"`
}

type respTextJSON struct {
	Format *respFormatJSON `json:"format"`
}

type respFormatJSON struct {
	Type   string          `json:"type"` // text, json_object, json_schema
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict *bool           `json:"strict"`
}

// responsesInput is a decoded Responses request.
type responsesInput struct {
	req domain.ChatRequest // instructions, then input
	// body is the request as the client sent it, for a provider that takes
	// it as it is.
	body []byte
	// instructions is the system message of the request's instructions, if
	// it has them; a response continuing from this one does not inherit it.
	instructions *domain.Message
	input        []domain.Message // the request's own input
	store        *bool            // nil when the request does not say
	previous     string           // previous_response_id, "" when none
	echo         respEcho         // what the Response repeats of the request
	at           respParams       // the request's names for the fields of req
	// untranslatable names a feature OpenAI serves itself (see
	// respDecoder), which req leaves out: then only a model that takes the
	// body as it is can serve the request.
	untranslatable error
}

// continueFrom puts the conversation of the stored response prev before the
// request's input, after its instructions. The history's messages come
// from previous_response_id, which is what an error about one names.
func (in *responsesInput) continueFrom(prev domain.StoredResponse) {
	history := prev.Conversation()
	lead := len(in.at.messages) - len(in.input) // the instructions' message, if any
	in.at.messages = slices.Concat(in.at.messages[:lead],
		slices.Repeat([]respOrigin{{item: "previous_response_id"}}, len(history)), in.at.messages[lead:])
	in.input = append(history, in.input...)
	in.req.Messages = in.req.Messages[:0:0]
	if in.instructions != nil {
		in.req.Messages = append(in.req.Messages, *in.instructions)
	}
	in.req.Messages = append(in.req.Messages, in.input...)
}

// decodeResponses turns a Responses body into a domain request.
func decodeResponses(body []byte) (responsesInput, error) {
	var w responsesRequestJSON
	if err := decodeJSON(body, &w); err != nil {
		return responsesInput{}, err
	}
	switch {
	case given(w.Conversation):
		return responsesInput{}, domain.InvalidParam("conversation",
			"conversation is not supported: tidygate does not store conversations; send the whole conversation in input")
	case w.Background != nil && *w.Background:
		return responsesInput{}, domain.InvalidParam("background", "background responses are not supported")
	}
	var d respDecoder
	switch {
	case given(w.Prompt):
		d.providerOnly("prompt", "a stored prompt template")
	case w.TopLogprobs != nil && *w.TopLogprobs != 0:
		d.providerOnly("top_logprobs", "log probabilities")
	case slices.Contains(w.Include, "message.output_text.logprobs"):
		d.providerOnly("include", "log probabilities")
	}
	in := responsesInput{store: w.Store}
	if w.PreviousResponseID != nil {
		in.previous = *w.PreviousResponseID
	}
	req := domain.ChatRequest{Model: w.Model, Temperature: w.Temperature, TopP: w.TopP, User: w.User, Stream: w.Stream}
	if w.MaxOutputTokens != nil {
		if *w.MaxOutputTokens < 1 || *w.MaxOutputTokens > domain.MaxTokensLimit {
			return responsesInput{}, domain.InvalidParam("max_output_tokens", "max_output_tokens must be between 1 and %d", domain.MaxTokensLimit)
		}
		req.MaxTokens = *w.MaxOutputTokens
	}
	if w.Instructions != nil && *w.Instructions != "" {
		in.instructions = &domain.Message{Role: domain.RoleSystem, Content: *w.Instructions}
		req.Messages = append(req.Messages, *in.instructions)
	}
	msgs, err := d.input(w.Input)
	if err != nil {
		return responsesInput{}, err
	}
	in.input = msgs
	req.Messages = append(req.Messages, msgs...)
	var toolAt []int // the request's index of each function tool
	for i, t := range w.Tools {
		if t.Type == "" {
			return responsesInput{}, domain.InvalidParam(fmt.Sprintf("tools[%d].type", i), "tools[%d].type: Field required", i)
		}
		if t.Type != "function" {
			d.providerOnly(fmt.Sprintf("tools[%d].type", i), fmt.Sprintf("hosted tool %q", t.Type))
			continue
		}
		params := t.Parameters
		if !given(params) {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		req.Tools = append(req.Tools, domain.Tool{Name: t.Name, Description: t.Description, Parameters: params, Strict: explicitlyTrue(t.Strict)})
		toolAt = append(toolAt, i)
	}
	if req.ToolChoice, err = d.toolChoice(w.ToolChoice); err != nil {
		return responsesInput{}, err
	}
	if req.ToolChoice.Mode == domain.ToolChoiceRequired && len(req.Tools) == 0 && len(w.Tools) > 0 {
		// The tools are all hosted, and one must be called: the domain
		// request, which has none of them, requires nothing, as only
		// OpenAI serves the request (d.only).
		req.ToolChoice.Mode = domain.ToolChoiceAuto
	}
	if w.Reasoning != nil {
		if req.Thinking.Effort, err = reasoningEffort("reasoning.effort", w.Reasoning.Effort); err != nil {
			return responsesInput{}, err
		}
	}
	if w.ParallelToolCalls != nil && !*w.ParallelToolCalls {
		req.ToolChoice.NoParallel = true
	}
	if w.Text != nil && w.Text.Format != nil {
		f := w.Text.Format
		switch f.Type {
		case "text":
		case "json_object":
			req.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONObject}
		case "json_schema":
			req.ResponseFormat = domain.ResponseFormat{Type: domain.FormatJSONSchema, Name: f.Name, Schema: f.Schema,
				Strict: explicitlyTrue(f.Strict)}
		default:
			return responsesInput{}, domain.InvalidParam("text.format.type", "text.format.type %q is not one of text, json_object, json_schema", f.Type)
		}
	}
	// The gateway validates req; its errors are said in this request's
	// terms through at (exchange.restate).
	at := respParams{tools: toolAt, messages: d.at}
	if in.instructions != nil {
		at.messages = append([]respOrigin{{item: "instructions"}}, d.at...)
	}
	in.req, in.body, in.untranslatable, in.echo, in.at = req, body, d.only, echoOf(w), at
	return in, nil
}

// explicitlyTrue reads a Responses request's strict, of a function tool or
// of a json_schema format: true only when the request says true. For a
// function tool that does not say, OpenAI's Responses API decides itself:
// strict when the tool's schema meets strict mode's rules (every property
// required, no additional properties), not otherwise. A translated call
// cannot make that choice, and strict sent for every such tool would have
// the Chat Completions API refuse the tools whose schemas do not meet them.
func explicitlyTrue(strict *bool) bool { return strict != nil && *strict }

// respParams maps the domain request back to the Responses request it was
// decoded from: the request's index of each tool, and where each message
// comes from.
type respParams struct {
	tools    []int
	messages []respOrigin
}

// restate says err, an error about the domain request, in the Responses
// request's own terms: its param, and the message that quotes it.
func (at respParams) restate(err error) error {
	var de *domain.Error
	if !errors.As(err, &de) || de.Param == "" {
		return err
	}
	param := at.param(de.Param)
	if param == de.Param {
		return err
	}
	out := *de
	out.Param, out.Message = param, strings.ReplaceAll(de.Message, de.Param, param)
	return &out
}

// param is the Responses request's name for param, a field of the domain
// request. An error within a message's block names the item or content
// part the block comes from.
func (at respParams) param(param string) string {
	if i, rest, ok := cutIndex(param, "tools"); ok && i < len(at.tools) {
		return fmt.Sprintf("tools[%d]%s", at.tools[i], rest)
	}
	if i, rest, ok := cutIndex(param, "messages"); ok && i < len(at.messages) {
		m := at.messages[i]
		if j, _, ok := cutIndex(rest, ".content"); ok && j < len(m.blocks) {
			return m.blocks[j]
		}
		return m.item
	}
	switch param {
	case "messages":
		return "input"
	case "response_format": // the one response format left to refuse: a json_schema without a schema
		return "text.format.schema"
	case "max_tokens":
		return "max_output_tokens"
	}
	return param
}

// cutIndex reads param as field[i] followed by rest.
func cutIndex(param, field string) (i int, rest string, ok bool) {
	after, ok := strings.CutPrefix(param, field+"[")
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(after, "]")
	if !ok {
		return 0, "", false
	}
	i, err := strconv.Atoi(num)
	return i, rest, err == nil
}

// echoOf is what the Response repeats of request w.
func echoOf(w responsesRequestJSON) respEcho {
	e := respEcho{Instructions: w.Instructions, Tools: make([]json.RawMessage, 0, len(w.Tools)), ToolChoice: w.ToolChoice,
		Metadata: w.Metadata, Temperature: w.Temperature, TopP: w.TopP, MaxOutputTokens: w.MaxOutputTokens,
		PreviousResponseID: w.PreviousResponseID}
	for _, t := range w.Tools {
		e.Tools = append(e.Tools, t.raw)
	}
	if !given(e.ToolChoice) {
		e.ToolChoice = json.RawMessage(`"auto"`)
	}
	if firstByte(e.Metadata) != '{' {
		e.Metadata = json.RawMessage(`{}`)
	}
	return e
}

// respDecoder decodes the parts of a Responses body, and notes the first
// feature in it that OpenAI serves itself: a stored prompt template, log
// probabilities, a hosted tool or a tool choice of one, an input item
// tidygate does not know (a hosted tool's call, an item reference, …), a
// file, a function call whose arguments are not a JSON object. The domain
// request leaves those out.
type respDecoder struct {
	passOnly
	// verbatim keeps each function call's arguments as they were sent,
	// where the domain request holds the empty object for arguments that
	// are not one: for the stored copy of a passed-through exchange, which
	// must say what was sent and answered.
	verbatim bool
	// at is where each message input returned comes from in the request.
	at []respOrigin
}

// respOrigin is where a message of the domain request comes from in the
// Responses request: the item that starts it, and the item or content part
// of each of its blocks.
type respOrigin struct {
	item   string
	blocks []string
}

// input turns input, a string or an array of items, into messages. An
// item of a type tidygate does not know is OpenAI's own (a hosted tool's
// call, an item reference, …): it is left out, and noted.
// Consecutive function calls (and the assistant text and reasoning before
// them) become one assistant message, and consecutive function call outputs
// one user message, as the domain model holds a turn's blocks together.
func (d *respDecoder) input(raw json.RawMessage) ([]domain.Message, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return nil, domain.InvalidParam("input", "input: Field required")
	case '"':
		s, err := jsonString(raw, "input")
		d.at = []respOrigin{{item: "input"}}
		return []domain.Message{{Role: domain.RoleUser, Content: s}}, err
	case '[':
	default:
		return nil, domain.InvalidParam("input", "input must be a string or an array of input items")
	}
	var items []respItemJSON
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, domain.InvalidParam("input", "input must be a string or an array of input items")
	}
	if len(items) == 0 {
		return nil, domain.InvalidParam("input", "input must contain at least one item")
	}
	var out []domain.Message
	// add appends blocks, which come from item and from its parts, to the
	// last message when merge is set and that message has role and holds
	// blocks, else starts a new message.
	add := func(role domain.Role, merge bool, item string, from []string, blocks ...domain.Block) {
		if n := len(out); merge && n > 0 && out[n-1].Role == role && out[n-1].Blocks != nil {
			out[n-1].Blocks = append(out[n-1].Blocks, blocks...)
			out[n-1].Content = domain.JoinText(out[n-1].Blocks)
			d.at[n-1].blocks = append(d.at[n-1].blocks, from...)
			return
		}
		out = append(out, domain.Message{Role: role, Blocks: blocks, Content: domain.JoinText(blocks)})
		d.at = append(d.at, respOrigin{item: item, blocks: from})
	}
	for i, it := range items {
		param := fmt.Sprintf("input[%d]", i)
		switch it.Type {
		case "message", "":
			msg, from, err := d.message(param, it)
			if err != nil {
				return nil, err
			}
			// An assistant's text merges with the calls and reasoning around it.
			add(msg.Role, msg.Role == domain.RoleAssistant, param, from, msg.Blocks...)
		case "function_call":
			args := domain.ToolArguments(it.Arguments)
			if !d.verbatim {
				args = d.toolArguments(param+".arguments", it.Arguments)
			}
			add(domain.RoleAssistant, true, param, []string{param}, domain.Block{Type: domain.BlockToolCall,
				ToolCall: domain.ToolCall{ID: it.CallID, Name: it.Name, Arguments: args}})
		case "function_call_output":
			content, _, err := d.parts(param+".output", it.Output, domain.RoleUser)
			if err != nil {
				return nil, err
			}
			add(domain.RoleUser, true, param, []string{param}, domain.Block{Type: domain.BlockToolResult,
				ToolResult: domain.ToolResult{CallID: it.CallID, Content: content}})
		case "reasoning":
			b := domain.Block{Type: domain.BlockReasoning}
			texts := make([]string, 0, len(it.Summary))
			for _, s := range it.Summary {
				texts = append(texts, s.Text)
			}
			b.Text = strings.Join(texts, "\n")
			if it.EncryptedContent != nil {
				b.Reasoning = reasoningOf(*it.EncryptedContent)
			}
			add(domain.RoleAssistant, true, param, []string{param}, b)
		default:
			d.providerOnly(param+".type", fmt.Sprintf("input item type %q", it.Type))
		}
	}
	if len(out) > domain.MaxMessages { // the domain's limit, said in this dialect's words
		return nil, domain.InvalidParam("input", "input makes %d messages; at most %d are allowed", len(out), domain.MaxMessages)
	}
	return out, nil
}

// message turns a message item into a message of the item's role (a
// developer message stays one, as in chat completions) whose content is
// blocks, and says where each block comes from.
func (d *respDecoder) message(param string, it respItemJSON) (_ domain.Message, from []string, _ error) {
	role := domain.Role(it.Role)
	switch role {
	case domain.RoleUser, domain.RoleAssistant, domain.RoleSystem, domain.RoleDeveloper:
	default:
		return domain.Message{}, nil, domain.InvalidParam(param+".role", "%s.role must be one of user, assistant, system, developer, not %q", param, it.Role)
	}
	blocks, from, err := d.parts(param+".content", it.Content, role)
	if err != nil {
		return domain.Message{}, nil, err
	}
	if blocks == nil {
		blocks = []domain.Block{}
	}
	return domain.Message{Role: role, Blocks: blocks, Content: domain.JoinText(blocks)}, from, nil
}

// parts turns content, a string or an array of content parts, into blocks,
// and says which part each block comes from. A file, given as an
// input_file part or as an input_image's file_id, is one OpenAI keeps: it
// is left out, and noted.
func (d *respDecoder) parts(param string, raw json.RawMessage, role domain.Role) (out []domain.Block, from []string, _ error) {
	switch firstByte(raw) {
	case '"':
		s, err := jsonString(raw, param)
		return []domain.Block{domain.TextBlock(s)}, []string{param}, err
	case '[':
		var parts []respPartJSON
		if err := json.Unmarshal(raw, &parts); err != nil {
			return nil, nil, domain.InvalidParam(param, "%s must be a string or an array of content parts", param)
		}
		out = make([]domain.Block, 0, len(parts))
		from = make([]string, 0, len(parts))
		for j, p := range parts {
			switch p.Type {
			case "input_text", "output_text":
				out = append(out, domain.TextBlock(p.Text))
			case "refusal":
				out = append(out, domain.TextBlock(p.Refusal))
			case "input_image":
				switch {
				case p.ImageURL != "":
					img, err := domain.ImageOfURL(fmt.Sprintf("%s[%d].image_url", param, j), p.ImageURL)
					if err != nil {
						return nil, nil, err
					}
					out = append(out, domain.Block{Type: domain.BlockImage, Image: img})
				case p.FileID != "":
					d.providerOnly(fmt.Sprintf("%s[%d].file_id", param, j), "an input_image given by file_id")
				default:
					return nil, nil, domain.InvalidParam(fmt.Sprintf("%s[%d].image_url", param, j), "an input_image needs an image_url or a file_id")
				}
			case "input_file":
				d.providerOnly(fmt.Sprintf("%s[%d].type", param, j), `content part type "input_file"`)
			default:
				return nil, nil, domain.InvalidParam(fmt.Sprintf("%s[%d].type", param, j),
					"content part type %q is not supported; use input_text, output_text, refusal, input_image or input_file", p.Type)
			}
			if len(from) < len(out) { // the part made a block
				from = append(from, fmt.Sprintf("%s[%d]", param, j))
			}
		}
		return out, from, nil
	}
	return nil, nil, domain.InvalidParam(param, "%s must be a string or an array of content parts", param)
}

// toolChoice decodes tool_choice. A choice of anything but a function (a
// hosted tool, allowed_tools, a custom or MCP tool) is OpenAI's own: it is
// noted, and the domain request lets the model choose.
func (d *respDecoder) toolChoice(raw json.RawMessage) (domain.ToolChoice, error) {
	switch firstByte(raw) {
	case 0, 'n':
		return domain.ToolChoice{}, nil
	case '"':
		s, err := jsonString(raw, "tool_choice")
		if err != nil {
			return domain.ToolChoice{}, err
		}
		switch s {
		case "auto":
			return domain.ToolChoice{}, nil
		case "none":
			return domain.ToolChoice{Mode: domain.ToolChoiceNone}, nil
		case "required":
			return domain.ToolChoice{Mode: domain.ToolChoiceRequired}, nil
		}
		return domain.ToolChoice{}, domain.InvalidParam("tool_choice", "tool_choice %q is not one of auto, none, required", s)
	case '{':
		var c struct {
			Type string `json:"type"`
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &c) != nil || c.Type == "" {
			return domain.ToolChoice{}, domain.InvalidParam("tool_choice", `tool_choice must be auto, none, required or {"type":"function","name":…}`)
		}
		if c.Type != "function" {
			d.providerOnly("tool_choice", fmt.Sprintf("tool_choice type %q", c.Type))
			return domain.ToolChoice{}, nil
		}
		return domain.ToolChoice{Mode: domain.ToolChoiceTool, Name: c.Name}, nil
	}
	return domain.ToolChoice{}, domain.InvalidParam("tool_choice", `tool_choice must be auto, none, required or {"type":"function","name":…}`)
}
