package azure_test

import (
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
)

// FuzzAzureStream serves the fuzzed bytes as the body of a streamed chat
// completion: the adapter must not panic, and must return either an
// upstream failure or a consistent response. Seeds are in
// testdata/fuzz/FuzzAzureStream.
func FuzzAzureStream(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL)
	f.Fuzz(func(t *testing.T, body []byte) {
		llmtest.ServeStream(t, up, p, "text/event-stream", body, "my-deployment")
	})
}
