package llm

import "github.com/tidygate/tidygate/internal/domain"

// FinishReason maps an Anthropic or Bedrock stop reason to the OpenAI
// finish reason tidygate reports; a reason it does not know passes through.
func FinishReason(stopReason string) string {
	switch stopReason {
	case "end_turn", "stop_sequence", "pause_turn":
		return "stop"
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal", "content_filtered", "guardrail_intervened":
		return "content_filter"
	}
	return stopReason
}

// EstimateTokens returns a rough token count for text: one token per four
// bytes, rounded up, which is close for English and never more than
// domain.WorstCaseChat assumes (one token per byte).
func EstimateTokens(text string) int { return (len(text) + 3) / 4 }

// EstimateEmbedTokens returns an estimate of an embeddings request's
// prompt tokens, for providers that do not report them: EstimateTokens of
// each text, and the token inputs' token ids exactly.
func EstimateEmbedTokens(req domain.EmbedRequest) int {
	n := req.InputTokens()
	for _, in := range req.Inputs {
		n += EstimateTokens(in)
	}
	return n
}

// EstimateUsage returns an estimate of what a chat call consumed, for
// providers that do not report usage: EstimateTokens of each message's
// content and name plus four tokens a message, and EstimateTokens of the
// reply. The prompt estimate never exceeds domain.WorstCaseChat's bound.
func EstimateUsage(req domain.ChatRequest, reply string) domain.Usage {
	return domain.Usage{PromptTokens: req.EstimatePromptTokens(), CompletionTokens: EstimateTokens(reply)}
}
