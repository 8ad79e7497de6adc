package anthropic_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
)

// FuzzAnthropicStream serves the fuzzed bytes as the body of a streamed
// Messages call: the adapter must not panic, and must return either an
// upstream failure or a consistent response. Seeds are in
// testdata/fuzz/FuzzAnthropicStream.
func FuzzAnthropicStream(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL)
	f.Fuzz(func(t *testing.T, body []byte) {
		llmtest.ServeStream(t, up, p, "text/event-stream", body, "claude-x")
	})
}

// FuzzAnthropicNativeStream serves the fuzzed bytes as the event stream of
// a passed-through Messages call: the adapter must not panic, and must
// return a classified failure or whole events with a consistent count.
func FuzzAnthropicNativeStream(f *testing.F) {
	f.Add([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n" +
		"event: ping\ndata: {\"type\":\"ping\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":-1}}}\n\n"))
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL)
	f.Fuzz(func(t *testing.T, body []byte) {
		llmtest.ServeNative(t, up, p, domain.DialectAnthropicMessages, `{"model":"claude","max_tokens":5,"stream":true}`, body)
	})
}
