package llm

import "github.com/tidygate/tidygate/internal/domain"

// Turn is one turn of a conversation as Anthropic and Bedrock take it: the
// texts of consecutive messages of one side, in order.
type Turn struct {
	Assistant bool     // true for the model's side, false for the user's
	Texts     []string // never empty; no text is empty
}

// Conversation splits messages into the system prompt (the system and
// developer messages, in order) and turns that alternate between the user
// and the assistant, as the Anthropic Messages and Bedrock Converse APIs
// require:
//   - consecutive messages of one side are merged into one turn, each
//     message staying a separate text;
//   - a tool message becomes text in a user turn (tidygate carries no tool
//     call ids, so it cannot be sent as a tool result);
//   - messages with empty content are dropped, since both APIs reject
//     empty text blocks;
//   - the Name of a message is not sent: neither API has a place for it.
func Conversation(msgs []domain.Message) (system []string, turns []Turn) {
	for _, m := range msgs {
		if m.Content == "" {
			continue
		}
		switch m.Role {
		case domain.RoleSystem, domain.RoleDeveloper:
			system = append(system, m.Content)
			continue
		}
		assistant := m.Role == domain.RoleAssistant
		if n := len(turns); n > 0 && turns[n-1].Assistant == assistant {
			turns[n-1].Texts = append(turns[n-1].Texts, m.Content)
			continue
		}
		turns = append(turns, Turn{Assistant: assistant, Texts: []string{m.Content}})
	}
	return system, turns
}

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

// EstimateUsage returns an estimate of what a chat call consumed, for
// providers that do not report usage: EstimateTokens of each message's
// content and name plus four tokens a message, and EstimateTokens of the
// reply. The prompt estimate never exceeds domain.WorstCaseChat's bound.
func EstimateUsage(req domain.ChatRequest, reply string) domain.Usage {
	return domain.Usage{PromptTokens: req.EstimatePromptTokens(), CompletionTokens: EstimateTokens(reply)}
}
