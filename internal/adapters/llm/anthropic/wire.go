package anthropic

import "encoding/json"

// The Messages API's answers as tidygate reads them: a message, the events
// of a stream, their usage and their errors. The requests are in
// translate.go.
type (
	// message is an answer to a call without stream, and the message
	// that message_start begins a stream with (content empty, no stop
	// reason yet).
	message struct {
		ID           string         `json:"id"`
		Model        string         `json:"model"`
		Content      []contentBlock `json:"content"`
		StopReason   string         `json:"stop_reason"`
		StopSequence string         `json:"stop_sequence"`
		Usage        usage          `json:"usage"`
	}
	// contentBlock is a block of an answer, or the start of a streamed
	// one; Type says which of its fields are set.
	contentBlock struct {
		Type      string          `json:"type"`
		Text      string          `json:"text"`      // text
		ID        string          `json:"id"`        // tool_use
		Name      string          `json:"name"`      // tool_use
		Input     json.RawMessage `json:"input"`     // tool_use
		Thinking  string          `json:"thinking"`  // thinking
		Signature string          `json:"signature"` // thinking
		Data      string          `json:"data"`      // redacted_thinking
	}
	// usage is the count of a message and of the events of a stream.
	// InputTokens excludes the tokens read from and written to the
	// prompt cache; a message_delta that leaves it out changes nothing.
	usage struct {
		InputTokens              *int64 `json:"input_tokens"`
		OutputTokens             int64  `json:"output_tokens"`
		CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
	}
	// event is one event of a stream; Type says which of its fields are
	// set.
	event struct {
		Type         string       `json:"type"`
		Index        int          `json:"index"`         // content_block_start, content_block_delta
		Message      message      `json:"message"`       // message_start
		ContentBlock contentBlock `json:"content_block"` // content_block_start
		Delta        delta        `json:"delta"`         // content_block_delta, message_delta
		Usage        usage        `json:"usage"`         // message_delta
		Error        *apiError    `json:"error"`         // error
	}
	// delta is a content block's next piece (content_block_delta; Type
	// says which) or the message's stop (message_delta).
	delta struct {
		Type         string `json:"type"`
		Text         string `json:"text"`          // text_delta
		PartialJSON  string `json:"partial_json"`  // input_json_delta
		Thinking     string `json:"thinking"`      // thinking_delta
		Signature    string `json:"signature"`     // signature_delta
		StopReason   string `json:"stop_reason"`   // message_delta
		StopSequence string `json:"stop_sequence"` // message_delta
	}
	// apiError is the error of an error answer, and of an error event.
	apiError struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
)

// input is the count of input tokens, zero when it was left out.
func (u usage) input() int64 {
	if u.InputTokens == nil {
		return 0
	}
	return *u.InputTokens
}
