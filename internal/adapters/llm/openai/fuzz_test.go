package openai_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
)

// FuzzOpenAIStream serves the fuzzed bytes as the body of a streamed chat
// completion: the adapter must not panic, and must return either an
// upstream failure or a consistent response. Seeds are in
// testdata/fuzz/FuzzOpenAIStream.
func FuzzOpenAIStream(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL, openai.Options{})
	f.Fuzz(func(t *testing.T, body []byte) {
		up.Handle(llmtest.Reply(http.StatusOK, "text/event-stream", string(body)))
		var c llmtest.Chunks
		resp, err := p.ChatStream(context.Background(), llmtest.Chat("gpt-4o-mini"), c.Emit)
		llmtest.CheckStream(t, resp, &c, err)
	})
}
