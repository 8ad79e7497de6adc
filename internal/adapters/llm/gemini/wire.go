package gemini

import (
	"encoding/json"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// The wire format of generateContent, which the Gemini API and Vertex AI
// share: only the fields tidygate sends or reads, in the APIs' camelCase.
type (
	request struct {
		Contents          []content         `json:"contents"`
		SystemInstruction *content          `json:"systemInstruction,omitempty"`
		Tools             []tools           `json:"tools,omitempty"`
		ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
		GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
	}
	content struct {
		Role  string `json:"role,omitempty"`
		Parts []part `json:"parts"`
	}
	part struct {
		Text             string            `json:"text,omitempty"`
		Thought          bool              `json:"thought,omitempty"`
		ThoughtSignature string            `json:"thoughtSignature,omitempty"`
		InlineData       *blob             `json:"inlineData,omitempty"`
		FunctionCall     *functionCall     `json:"functionCall,omitempty"`
		FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
	}
	blob struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	}
	functionCall struct {
		ID   string          `json:"id,omitempty"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args,omitempty"`
	}
	functionResponse struct {
		ID       string         `json:"id,omitempty"`
		Name     string         `json:"name"`
		Response map[string]any `json:"response"`
	}
	tools struct {
		FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
	}
	functionDeclaration struct {
		Name                 string          `json:"name"`
		Description          string          `json:"description,omitempty"`
		ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
	}
	toolConfig struct {
		FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
	}
	functionCallingConfig struct {
		Mode                 string   `json:"mode"`
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	}
	generationConfig struct {
		MaxOutputTokens    int             `json:"maxOutputTokens,omitempty"`
		Temperature        *float64        `json:"temperature,omitempty"`
		TopP               *float64        `json:"topP,omitempty"`
		TopK               *int            `json:"topK,omitempty"`
		Seed               *int32          `json:"seed,omitempty"`
		PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
		FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
		StopSequences      []string        `json:"stopSequences,omitempty"`
		ResponseMimeType   string          `json:"responseMimeType,omitempty"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
		ThinkingConfig     *thinkingConfig `json:"thinkingConfig,omitempty"`
	}
	thinkingConfig struct {
		IncludeThoughts bool `json:"includeThoughts"`
		ThinkingBudget  *int `json:"thinkingBudget,omitempty"`
	}

	// response is a generateContent answer, or one event of a stream.
	response struct {
		Candidates []struct {
			Content      content `json:"content"`
			FinishReason string  `json:"finishReason"`
		} `json:"candidates"`
		PromptFeedback *struct {
			BlockReason string `json:"blockReason"`
		} `json:"promptFeedback"`
		UsageMetadata *usageMetadata `json:"usageMetadata"`
		ModelVersion  string         `json:"modelVersion"`
		ResponseID    string         `json:"responseId"`
		Error         *apiError      `json:"error"` // an error event in a stream
	}
	usageMetadata struct {
		PromptTokenCount        int `json:"promptTokenCount"`
		CandidatesTokenCount    int `json:"candidatesTokenCount"`
		CachedContentTokenCount int `json:"cachedContentTokenCount"`
		ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
		ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount"`
	}
	// apiError is Google's error format: {"error": {"code", "message", "status", "details"}}.
	apiError struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	}
)

// usage maps the API's counts onto the domain's classes: the prompt counts
// its cached tokens and the tool-use prompt; the output counts the thoughts,
// which are billed as output.
func (u usageMetadata) usage() domain.Usage {
	return domain.Usage{
		PromptTokens:     u.PromptTokenCount + u.ToolUsePromptTokenCount,
		CompletionTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount,
		CacheReadTokens:  u.CachedContentTokenCount,
		ReasoningTokens:  u.ThoughtsTokenCount,
	}
}

func (u usageMetadata) negative() bool {
	return u.PromptTokenCount < 0 || u.CandidatesTokenCount < 0 || u.CachedContentTokenCount < 0 ||
		u.ThoughtsTokenCount < 0 || u.ToolUsePromptTokenCount < 0
}

// finishReason maps the API's finish reason to the domain's: STOP is stop
// (tool_calls when the answer calls a function), MAX_TOKENS length, the
// reasons that say the answer was blocked content_filter; any other passes
// through in lower case.
func finishReason(reason string, calledTool bool) string {
	switch reason {
	case "STOP":
		if calledTool {
			return domain.FinishToolCalls
		}
		return domain.FinishStop
	case "MAX_TOKENS":
		return domain.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE":
		return domain.FinishContentFilter
	}
	return strings.ToLower(reason)
}
