// Package usagewire writes a call's usage as the usage object of each
// client dialect: OpenAI's chat completions, OpenAI's Responses API and
// Anthropic's Messages API. The HTTP edge answers with these objects and
// the MLflow call log records them in its traces, so that a trace shows
// exactly the usage the client was told.
//
// Each counts every token once, by domain.Usage.Classes: the cached and
// reasoning details never exceed the prompt and completion they belong to,
// even when a provider's counts disagree.
package usagewire

import "github.com/tidygate/tidygate/internal/domain"

// Chat is OpenAI's usage object of a chat completion: the prompt includes
// its cached tokens and the completion its reasoning tokens; the details
// are sent only when there are some.
type Chat struct {
	PromptTokens            int                `json:"prompt_tokens"`
	CompletionTokens        int                `json:"completion_tokens"`
	TotalTokens             int                `json:"total_tokens"`
	PromptTokensDetails     *PromptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionDetails `json:"completion_tokens_details,omitempty"`
}

// PromptDetails are the prompt's tokens read from the provider's cache.
type PromptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// CompletionDetails are the completion's reasoning tokens.
type CompletionDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// ChatOf returns u as a chat completion's usage.
func ChatOf(u domain.Usage) Chat {
	out := Chat{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.Total()}
	if read := u.Classes().CacheRead; read > 0 {
		out.PromptTokensDetails = &PromptDetails{CachedTokens: read}
	}
	if r := reasoning(u); r > 0 {
		out.CompletionTokensDetails = &CompletionDetails{ReasoningTokens: r}
	}
	return out
}

// Responses is the usage object of the Responses API, whose details are
// always sent.
type Responses struct {
	InputTokens         int               `json:"input_tokens"`
	InputTokensDetails  PromptDetails     `json:"input_tokens_details"`
	OutputTokens        int               `json:"output_tokens"`
	OutputTokensDetails CompletionDetails `json:"output_tokens_details"`
	TotalTokens         int               `json:"total_tokens"`
}

// ResponsesOf returns u as a Response's usage.
func ResponsesOf(u domain.Usage) Responses {
	return Responses{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.Total(),
		InputTokensDetails:  PromptDetails{CachedTokens: u.Classes().CacheRead},
		OutputTokensDetails: CompletionDetails{ReasoningTokens: reasoning(u)}}
}

// Anthropic is the usage object of the Messages API: input_tokens excludes
// the tokens read from and written to the prompt cache, which are counted
// apart.
type Anthropic struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// AnthropicOf returns u as a message's usage.
func AnthropicOf(u domain.Usage) Anthropic {
	c := u.Classes()
	return Anthropic{InputTokens: c.Uncached, OutputTokens: u.CompletionTokens,
		CacheCreationInputTokens: c.CacheWrite, CacheReadInputTokens: c.CacheRead}
}

// reasoning returns the completion's reasoning tokens, never more than the
// completion.
func reasoning(u domain.Usage) int {
	return min(max(u.ReasoningTokens, 0), max(u.CompletionTokens, 0))
}
