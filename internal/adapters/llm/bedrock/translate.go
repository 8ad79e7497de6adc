package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydocument "github.com/aws/smithy-go/document"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
)

// converseInput maps the request onto Converse's: the model; system and
// developer messages as the system parameter; the other messages as
// alternating turns of content blocks (a tool message is the user's side;
// consecutive messages of one side merge into one turn); the inference
// configuration with the output cap, and temperature, top_p and stop
// sequences only when set; the tool configuration; a reasoning effort as
// outputConfig.effort (see llm.ClampEffort) and a JSON Schema response
// format as outputConfig.textFormat; and, for Anthropic models, thinking and
// top_k as additional model request fields. A seed or a penalty is refused
// by name: Converse has none.
func (p *Provider) converseInput(req domain.ChatRequest) (*bedrockruntime.ConverseInput, error) {
	if err := p.classify.NoSeedOrPenalties(req); err != nil {
		return nil, err
	}
	if req.MaxTokens > math.MaxInt32 {
		return nil, domain.InvalidParam("max_tokens", "bedrock takes max_tokens up to %d", math.MaxInt32)
	}
	in := &bedrockruntime.ConverseInput{
		ModelId:         aws.String(req.Model),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(req.MaxTokens))},
	}
	if err := p.conversation(in, req.Messages); err != nil {
		return nil, err
	}
	if err := p.toolConfig(in, req); err != nil {
		return nil, err
	}
	if e := llm.ClampEffort(req.Thinking.Effort); e != "" {
		in.OutputConfig = &types.OutputConfig{Effort: aws.String(e)}
	}
	if err := p.outputConfig(in, req.ResponseFormat); err != nil {
		return nil, err
	}
	if err := p.modelFields(in, req); err != nil {
		return nil, err
	}
	if req.Temperature != nil {
		in.InferenceConfig.Temperature = aws.Float32(float32(*req.Temperature))
	}
	if req.TopP != nil {
		in.InferenceConfig.TopP = aws.Float32(float32(*req.TopP))
	}
	in.InferenceConfig.StopSequences = req.Stop
	return in, nil
}

// streamInput is the ConverseStream request of the same call.
func streamInput(in *bedrockruntime.ConverseInput) *bedrockruntime.ConverseStreamInput {
	return &bedrockruntime.ConverseStreamInput{
		ModelId: in.ModelId, Messages: in.Messages, System: in.System, InferenceConfig: in.InferenceConfig,
		ToolConfig: in.ToolConfig, OutputConfig: in.OutputConfig, AdditionalModelRequestFields: in.AdditionalModelRequestFields,
	}
}

// conversation sets the system prompt and the turns.
func (p *Provider) conversation(in *bedrockruntime.ConverseInput, msgs []domain.Message) error {
	lastAssistant := false
	for i, m := range msgs {
		if m.Role == domain.RoleSystem || m.Role == domain.RoleDeveloper {
			for _, b := range m.Parts() {
				if b.Type != domain.BlockText {
					return p.classify.Invalid("messages[%d]: a system prompt holds only text, not %s", i, b.Type)
				}
				if b.Text != "" {
					in.System = append(in.System, &types.SystemContentBlockMemberText{Value: b.Text})
				}
			}
			continue
		}
		blocks, err := p.blocks(i, m.Parts())
		if err != nil {
			return err
		}
		if len(blocks) == 0 {
			continue // Converse refuses empty turns and blank text
		}
		assistant := m.Role == domain.RoleAssistant
		if n := len(in.Messages); n > 0 && lastAssistant == assistant {
			in.Messages[n-1].Content = append(in.Messages[n-1].Content, blocks...)
			continue
		}
		lastAssistant = assistant
		role := types.ConversationRoleUser
		if assistant {
			role = types.ConversationRoleAssistant
		}
		in.Messages = append(in.Messages, types.Message{Role: role, Content: blocks})
	}
	if len(in.Messages) == 0 {
		return p.classify.Invalid("the request has no user or assistant message with content")
	}
	return nil
}

// blocks maps the content of message i. A reasoning block goes back with
// its signature, or as redacted content; one with neither (another
// provider's reasoning summary) is left out, as the models that check
// reasoning accept only their own.
func (p *Provider) blocks(i int, parts []domain.Block) ([]types.ContentBlock, error) {
	var out []types.ContentBlock
	for _, b := range parts {
		switch b.Type {
		case domain.BlockText:
			if b.Text != "" {
				out = append(out, &types.ContentBlockMemberText{Value: b.Text})
			}
		case domain.BlockImage:
			im, err := p.image(i, b.Image)
			if err != nil {
				return nil, err
			}
			out = append(out, &types.ContentBlockMemberImage{Value: im})
		case domain.BlockToolCall:
			input, err := toDocument(json.RawMessage(b.ToolCall.Arguments))
			if err != nil {
				return nil, p.classify.Invalid("messages[%d]: the arguments of tool call %q are not a JSON object", i, b.ToolCall.ID)
			}
			out = append(out, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
				ToolUseId: aws.String(b.ToolCall.ID), Name: aws.String(b.ToolCall.Name), Input: input}})
		case domain.BlockToolResult:
			result, err := p.toolResult(i, b.ToolResult)
			if err != nil {
				return nil, err
			}
			out = append(out, &types.ContentBlockMemberToolResult{Value: result})
		case domain.BlockReasoning:
			switch {
			case b.Reasoning.Signature != "":
				out = append(out, &types.ContentBlockMemberReasoningContent{Value: &types.ReasoningContentBlockMemberReasoningText{
					Value: types.ReasoningTextBlock{Text: aws.String(b.Text), Signature: aws.String(b.Reasoning.Signature)}}})
			case b.Reasoning.Encrypted != "":
				data, err := base64.StdEncoding.DecodeString(b.Reasoning.Encrypted)
				if err != nil {
					return nil, p.classify.Invalid("messages[%d]: redacted reasoning is not base64", i)
				}
				out = append(out, &types.ContentBlockMemberReasoningContent{Value: &types.ReasoningContentBlockMemberRedactedContent{Value: data}})
			}
		default:
			return nil, p.classify.Invalid("messages[%d]: content block type %q cannot be sent to bedrock", i, b.Type)
		}
	}
	return out, nil
}

// image is an inline image's bytes. Converse takes no image URLs: an image
// by URL is refused by name.
func (p *Provider) image(i int, im domain.Image) (types.ImageBlock, error) {
	if im.URL != "" {
		return types.ImageBlock{}, p.classify.Unsupported("images by URL",
			"Bedrock Converse takes image bytes only: send the image inline as base64 data")
	}
	data, err := base64.StdEncoding.DecodeString(im.Data)
	if err != nil {
		return types.ImageBlock{}, p.classify.Invalid("messages[%d]: an image's data is not base64", i)
	}
	format := types.ImageFormat(strings.TrimPrefix(im.MediaType, "image/"))
	return types.ImageBlock{Format: format, Source: &types.ImageSourceMemberBytes{Value: data}}, nil
}

// toolResult is a tool result of text and images, its status error when set.
func (p *Provider) toolResult(i int, r domain.ToolResult) (types.ToolResultBlock, error) {
	out := types.ToolResultBlock{ToolUseId: aws.String(r.CallID), Content: []types.ToolResultContentBlock{}}
	if r.IsError {
		out.Status = types.ToolResultStatusError
	}
	for _, c := range r.Content {
		switch c.Type {
		case domain.BlockText:
			if c.Text != "" {
				out.Content = append(out.Content, &types.ToolResultContentBlockMemberText{Value: c.Text})
			}
		case domain.BlockImage:
			im, err := p.image(i, c.Image)
			if err != nil {
				return out, err
			}
			out.Content = append(out.Content, &types.ToolResultContentBlockMemberImage{Value: im})
		}
	}
	return out, nil
}

// toolConfig sets the tools (a strict one with toolSpec.strict, Converse's
// structured output for tool use) and the tool choice (auto, any or a named
// tool). Converse has no "none": with tool choice none the tools are not
// sent, which forbids calls as surely; a conversation that already holds
// tool calls needs its tools sent, so there tool choice none is refused by
// name. Converse cannot forbid parallel tool calls either; the gateway holds
// an answer to parallel_tool_calls false (domain.FirstToolCallOnly).
func (p *Provider) toolConfig(in *bedrockruntime.ConverseInput, req domain.ChatRequest) error {
	if len(req.Tools) == 0 {
		return nil
	}
	if req.ToolChoice.Mode == domain.ToolChoiceNone {
		if holdsToolBlocks(req.Messages) {
			return p.classify.Unsupported("tool_choice none",
				"Bedrock Converse has no tool choice none, and a conversation with tool calls must send its tools: use tool_choice auto")
		}
		return nil
	}
	cfg := &types.ToolConfiguration{}
	for _, t := range req.Tools {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		schema, err := toDocument(params)
		if err != nil {
			return p.classify.Invalid("tool %q: its parameters are not a JSON Schema object", t.Name)
		}
		spec := types.ToolSpecification{Name: aws.String(t.Name), InputSchema: &types.ToolInputSchemaMemberJson{Value: schema}}
		if t.Description != "" {
			spec.Description = aws.String(t.Description)
		}
		if t.Strict {
			spec.Strict = aws.Bool(true)
		}
		cfg.Tools = append(cfg.Tools, &types.ToolMemberToolSpec{Value: spec})
	}
	switch req.ToolChoice.Mode {
	case domain.ToolChoiceRequired:
		cfg.ToolChoice = &types.ToolChoiceMemberAny{}
	case domain.ToolChoiceTool:
		cfg.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(req.ToolChoice.Name)}}
	}
	in.ToolConfig = cfg
	return nil
}

func holdsToolBlocks(msgs []domain.Message) bool {
	for _, m := range msgs {
		for _, b := range m.Blocks {
			if b.Type == domain.BlockToolCall || b.Type == domain.BlockToolResult {
				return true
			}
		}
	}
	return false
}

// outputConfig asks for a JSON Schema answer through Converse's structured
// output (outputConfig.textFormat). Converse has no "any JSON object"
// format: a json_object response format is refused by name.
func (p *Provider) outputConfig(in *bedrockruntime.ConverseInput, f domain.ResponseFormat) error {
	switch f.Type {
	case domain.FormatJSONObject:
		return p.classify.Unsupported("response_format json_object",
			"Bedrock Converse has no such format: ask for a json_schema response format")
	case domain.FormatJSONSchema:
		if in.OutputConfig == nil {
			in.OutputConfig = &types.OutputConfig{}
		}
		schema := &types.JsonSchemaDefinition{Schema: aws.String(string(f.Schema))}
		if f.Name != "" {
			schema.Name = aws.String(f.Name)
		}
		in.OutputConfig.TextFormat = &types.OutputFormat{
			Type: types.OutputFormatTypeJsonSchema, Structure: &types.OutputFormatStructureMemberJsonSchema{Value: *schema}}
	}
	return nil
}

// modelFields sets what Converse has no field for but the model's own API
// has: thinking and top_k, for Anthropic models, in Anthropic's words.
// Other models' settings differ by family, so for them both are refused by
// name.
func (p *Provider) modelFields(in *bedrockruntime.ConverseInput, req domain.ChatRequest) error {
	fields := map[string]any{}
	anthropicModel := strings.Contains(req.Model, "anthropic.")
	if req.Thinking.Enabled {
		if !anthropicModel {
			return p.classify.Unsupported("thinking", "tidygate sends thinking settings to Anthropic models on Bedrock only")
		}
		if req.Thinking.BudgetTokens > 0 {
			fields["thinking"] = map[string]any{"type": "enabled", "budget_tokens": req.Thinking.BudgetTokens}
		} else {
			fields["thinking"] = map[string]any{"type": "adaptive"}
		}
	}
	if req.TopK != nil {
		if !anthropicModel {
			return p.classify.Unsupported("top_k", "tidygate sends top_k to Anthropic models on Bedrock only")
		}
		fields["top_k"] = *req.TopK
	}
	if len(fields) > 0 {
		in.AdditionalModelRequestFields = document.NewLazyDocument(fields)
	}
	return nil
}

// toDocument turns a JSON object into a document, its numbers kept exactly.
func toDocument(raw json.RawMessage) (document.Interface, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	return document.NewLazyDocument(exactNumbers(v)), nil
}

// exactNumbers replaces every json.Number in v by the document number of
// the same digits.
func exactNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return smithydocument.Number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = exactNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = exactNumbers(e)
		}
	}
	return v
}

// fromDocument renders a document (a tool call's input) as JSON.
func fromDocument(d document.Interface) (string, error) {
	if d == nil {
		return "{}", nil
	}
	raw, err := d.MarshalSmithyDocument()
	if err != nil {
		return "", err
	}
	if s := strings.TrimSpace(string(raw)); s != "" && s != "null" {
		return s, nil
	}
	return "{}", nil
}
