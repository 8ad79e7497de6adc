package gemini

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// callIDPrefix marks the tool call ids tidygate makes up for function
// calls the API returned without one: they are never sent back to it.
const callIDPrefix = "call_tg"

// translate maps a chat request onto generateContent's: system and
// developer messages become the system instruction; the others become
// contents of role user (user and tool messages) or model (assistant
// messages), consecutive messages of one side merged; the sampling
// parameters, tools, tool choice, response format and thinking go where
// the API takes them.
func (p *Provider) translate(req domain.ChatRequest) (request, error) {
	var out request
	names := map[string]string{} // tool call id → function name, for the results
	for _, m := range req.Messages {
		if m.Role == domain.RoleSystem || m.Role == domain.RoleDeveloper {
			for _, b := range m.Parts() {
				if b.Type == domain.BlockText && b.Text != "" {
					if out.SystemInstruction == nil {
						out.SystemInstruction = &content{}
					}
					out.SystemInstruction.Parts = append(out.SystemInstruction.Parts, part{Text: b.Text})
				}
			}
			continue
		}
		parts, err := p.parts(m, names)
		if err != nil {
			return request{}, err
		}
		if len(parts) == 0 {
			continue
		}
		role := "user"
		if m.Role == domain.RoleAssistant {
			role = "model"
		}
		if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
			out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, parts...)
			continue
		}
		out.Contents = append(out.Contents, content{Role: role, Parts: parts})
	}
	if len(out.Contents) == 0 {
		return request{}, p.classify.Invalid("the request has no user or assistant message with content")
	}
	if err := p.addTools(&out, req); err != nil {
		return request{}, err
	}
	seed, err := p.seed32(req.Seed)
	if err != nil {
		return request{}, err
	}
	out.GenerationConfig = generation(req, seed)
	return out, nil
}

// parts maps one message's content onto parts. A reasoning block with text
// is a thought part; one with only a signature gives its signature to the
// part that follows it (the API signs function calls that way). A tool
// result names its function, found by its call's id among the earlier
// tool calls (names); what it holds is sent as the response's output, or
// error when the tool failed, and its images follow it inline.
func (p *Provider) parts(m domain.Message, names map[string]string) ([]part, error) {
	var out []part
	signature := ""
	add := func(pt part) {
		if pt.ThoughtSignature == "" {
			pt.ThoughtSignature, signature = signature, ""
		}
		out = append(out, pt)
	}
	for _, b := range m.Parts() {
		switch b.Type {
		case domain.BlockText:
			if b.Text != "" {
				add(part{Text: b.Text})
			}
		case domain.BlockImage:
			pt, err := p.image(b.Image)
			if err != nil {
				return nil, err
			}
			add(pt)
		case domain.BlockReasoning:
			switch {
			case b.Text != "":
				add(part{Text: b.Text, Thought: true, ThoughtSignature: b.Reasoning.Signature})
			case b.Reasoning.Signature != "":
				signature = b.Reasoning.Signature
			}
		case domain.BlockToolCall:
			names[b.ToolCall.ID] = b.ToolCall.Name
			args := json.RawMessage(b.ToolCall.Arguments)
			if !json.Valid(args) {
				return nil, p.classify.Invalid("the arguments of tool call %q are not JSON", b.ToolCall.ID)
			}
			add(part{FunctionCall: &functionCall{ID: sentID(b.ToolCall.ID), Name: b.ToolCall.Name, Args: args}})
		case domain.BlockToolResult:
			r := b.ToolResult
			name, ok := names[r.CallID]
			if !ok {
				return nil, p.classify.Invalid("the tool result for call %q answers no earlier tool call; Gemini needs the function's name", r.CallID)
			}
			key := "output"
			if r.IsError {
				key = "error"
			}
			add(part{FunctionResponse: &functionResponse{ID: sentID(r.CallID), Name: name,
				Response: map[string]any{key: domain.JoinText(r.Content)}}})
			for _, c := range r.Content {
				if c.Type == domain.BlockImage {
					pt, err := p.image(c.Image)
					if err != nil {
						return nil, err
					}
					add(pt)
				}
			}
		}
	}
	return out, nil
}

// image maps an inline image onto inline data. An image by URL is refused:
// the API reads files it stores itself, not arbitrary URLs.
func (p *Provider) image(im domain.Image) (part, error) {
	if im.Data == "" {
		e := p.classify.Invalid("images by URL are not supported; send the image inline (base64 data)")
		e.Code = "unsupported_feature"
		return part{}, e
	}
	return part{InlineData: &blob{MimeType: im.MediaType, Data: im.Data}}, nil
}

// sentID is the id sent back with a function call or its response: the
// API's own, or none for an id tidygate made up.
func sentID(id string) string {
	if strings.HasPrefix(id, callIDPrefix) {
		return ""
	}
	return id
}

// addTools sets the function declarations and the function calling mode:
// none is NONE, required ANY, a named tool ANY restricted to it. The API
// has no switch for parallel calls, so NoParallel is not sent; the gateway
// holds the answer to it (domain.FirstToolCallOnly). A function
// declaration has no strict flag either (the API's constrained function
// calling is a mode of the whole request, VALIDATED, in preview), and a
// strict tool asks for calls that always match its schema: it is refused
// by name rather than sent without that promise.
func (p *Provider) addTools(out *request, req domain.ChatRequest) error {
	if len(req.Tools) == 0 {
		return nil
	}
	decls := make([]functionDeclaration, len(req.Tools))
	for i, t := range req.Tools {
		if t.Strict {
			return p.classify.Unsupported(fmt.Sprintf("strict tool %q", t.Name),
				"a function declaration has no strict flag, so its calls are not held to its schema: send the tool without strict, or use a model of another provider")
		}
		decls[i] = functionDeclaration{Name: t.Name, Description: t.Description, ParametersJSONSchema: t.Parameters}
	}
	out.Tools = []tools{{FunctionDeclarations: decls}}
	switch req.ToolChoice.Mode {
	case domain.ToolChoiceNone:
		out.ToolConfig = &toolConfig{functionCallingConfig{Mode: "NONE"}}
	case domain.ToolChoiceRequired:
		out.ToolConfig = &toolConfig{functionCallingConfig{Mode: "ANY"}}
	case domain.ToolChoiceTool:
		out.ToolConfig = &toolConfig{functionCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{req.ToolChoice.Name}}}
	}
	return nil
}

// seed32 is the request's seed as the API takes it, a 32-bit integer: nil
// when there is none, and a seed beyond 32 bits is refused, naming seed
// and the provider (gemini or vertex).
func (p *Provider) seed32(seed *int64) (*int32, error) {
	if seed == nil {
		return nil, nil
	}
	if *seed < math.MinInt32 || *seed > math.MaxInt32 {
		e := p.classify.Invalid("the API takes a seed from %d to %d", math.MinInt32, math.MaxInt32)
		e.Param = "seed"
		return nil, e
	}
	s := int32(*seed)
	return &s, nil
}

// generation returns the generation config: the output cap, sampling
// parameters (seed, see seed32, and the presence and frequency penalties
// among them) and stop sequences when set, a JSON response (against the
// JSON Schema when one is given), and thinking with its budget, its
// thoughts included in the answer.
func generation(req domain.ChatRequest, seed *int32) *generationConfig {
	g := generationConfig{MaxOutputTokens: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, TopK: req.TopK,
		Seed: seed, PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty, StopSequences: req.Stop}
	switch req.ResponseFormat.Type {
	case domain.FormatJSONObject:
		g.ResponseMimeType = "application/json"
	case domain.FormatJSONSchema:
		g.ResponseMimeType, g.ResponseJSONSchema = "application/json", req.ResponseFormat.Schema
	}
	if req.Thinking.Enabled {
		g.ThinkingConfig = &thinkingConfig{IncludeThoughts: true}
		if req.Thinking.BudgetTokens > 0 {
			budget := req.Thinking.BudgetTokens
			g.ThinkingConfig.ThinkingBudget = &budget
		}
	}
	if g.MaxOutputTokens == 0 && g.Temperature == nil && g.TopP == nil && g.TopK == nil && g.Seed == nil &&
		g.PresencePenalty == nil && g.FrequencyPenalty == nil && len(g.StopSequences) == 0 &&
		g.ResponseMimeType == "" && g.ThinkingConfig == nil {
		return nil
	}
	return &g
}
