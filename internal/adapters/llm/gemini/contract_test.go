package gemini_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

// fakeGemini answers as the Gemini API does: an answer, a stream of
// events with the usage last, or embeddings; the model "slow" hangs until
// the client gives up.
func fakeGemini(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.Contains(r.URL.Path, "/models/slow:"):
		llmtest.Hang(w, r)
	case strings.HasSuffix(r.URL.Path, ":batchEmbedContents"):
		llmtest.Reply(http.StatusOK, "application/json", `{"embeddings":[{"values":[1,0]},{"values":[0,1]}]}`)(w, r)
	case strings.HasSuffix(r.URL.Path, ":streamGenerateContent"):
		llmtest.Reply(http.StatusOK, "text/event-stream", sse(
			`{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]}}]}`,
			`{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":2}}`))(w, r)
	default:
		llmtest.Reply(http.StatusOK, "application/json",
			`{"candidates":[{"content":{"role":"model","parts":[{"text":"Hello"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":1}}`)(w, r)
	}
}

// TestProviderContract runs the provider port's contract suite against the
// adapter speaking to a fake of the Gemini API.
func TestProviderContract(t *testing.T) {
	contract.TestProvider(t, func(t *testing.T) contract.ProviderSubject {
		up := httptest.NewServer(http.HandlerFunc(fakeGemini))
		t.Cleanup(up.Close)
		return contract.ProviderSubject{Provider: newProvider(t, up.URL), ChatModel: "gemini-2.5-flash",
			EmbedModel: "gemini-embedding-001", SlowModel: "slow"}
	})
}
