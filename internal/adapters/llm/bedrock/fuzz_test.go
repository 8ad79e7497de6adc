package bedrock_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
)

// FuzzBedrockStream puts the fuzzed JSON payload in a valid event-stream
// frame of the chosen kind, between a valid messageStart and a valid
// messageStop and metadata: the adapter must not panic, and must return
// either a classified failure or a consistent response. Seeds are in
// testdata/fuzz/FuzzBedrockStream.
func FuzzBedrockStream(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL)
	// The frame kinds the payload goes in: every ConverseStream event and exception.
	kinds := [][2]string{
		{"event", "messageStart"}, {"event", "contentBlockStart"}, {"event", "contentBlockDelta"},
		{"event", "contentBlockStop"}, {"event", "messageStop"}, {"event", "metadata"}, {"event", "somethingNew"},
		{"exception", "throttlingException"}, {"exception", "modelStreamErrorException"},
		{"exception", "validationException"}, {"exception", "internalServerException"},
	}
	f.Fuzz(func(t *testing.T, kind uint8, payload []byte) {
		k := kinds[int(kind)%len(kinds)]
		body := events(t, "messageStart", messageStart) + string(frame(t, k[0], k[1], string(payload))) +
			events(t, "messageStop", messageStop, "metadata", metadata)
		llmtest.ServeStream(t, up, p, streamType, []byte(body), model)
	})
}

// FuzzBedrockStreamFrames serves the fuzzed bytes as the raw event-stream
// body: the adapter must not panic, and must return either a classified
// failure or a consistent response. Seeds are in
// testdata/fuzz/FuzzBedrockStreamFrames.
func FuzzBedrockStreamFrames(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL)
	f.Fuzz(func(t *testing.T, body []byte) {
		llmtest.ServeStream(t, up, p, streamType, body, model)
	})
}
