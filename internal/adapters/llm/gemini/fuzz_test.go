package gemini_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
)

// FuzzGeminiStream serves the fuzzed bytes as the body of a
// streamGenerateContent answer: the adapter must not panic, and must
// return either an upstream failure or a consistent response. Seeds are
// in testdata/fuzz/FuzzGeminiStream.
func FuzzGeminiStream(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL)
	f.Fuzz(func(t *testing.T, body []byte) {
		llmtest.ServeStream(t, up, p, "text/event-stream", body, "gemini-2.5-flash")
	})
}

// FuzzGeminiAnswer serves the fuzzed bytes as a generateContent answer:
// the adapter must not panic, and must return either an upstream failure
// or an answer with a finish reason and no negative usage. Seeds are in
// testdata/fuzz/FuzzGeminiAnswer.
func FuzzGeminiAnswer(f *testing.F) {
	up := llmtest.NewUpstream(f, llmtest.Hang)
	p := newProvider(f, up.URL)
	f.Fuzz(func(t *testing.T, body []byte) {
		up.Handle(llmtest.Reply(http.StatusOK, "application/json", string(body)))
		resp, err := p.Chat(context.Background(), llmtest.Chat("gemini-2.5-flash"))
		if err != nil {
			llmtest.RequireKind(t, err, domain.KindUpstream) // a 200 answer tidygate cannot use
			return
		}
		if resp.FinishReason == "" || resp.Usage.PromptTokens < 0 || resp.Usage.CompletionTokens < 0 {
			t.Fatalf("answer %+v", resp)
		}
	})
}
