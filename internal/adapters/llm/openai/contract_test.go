package openai_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/ports/contract"
)

// fakeOpenAI answers as the OpenAI API does: a completion, a stream of
// chunks with a usage chunk last, or embeddings; the model "slow" hangs
// until the client gives up.
func fakeOpenAI(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(raw, &body)
	switch {
	case body.Model == "slow":
		llmtest.Hang(w, r)
	case r.URL.Path == "/v1/embeddings":
		llmtest.Reply(http.StatusOK, "application/json", `{"object":"list","model":"text-embedding-3-small",
		  "data":[{"object":"embedding","index":0,"embedding":[1,0]},{"object":"embedding","index":1,"embedding":[0,1]}],
		  "usage":{"prompt_tokens":4,"total_tokens":4}}`)(w, r)
	case body.Stream:
		llmtest.Reply(http.StatusOK, "text/event-stream",
			sse(chunk("", ""), chunk("Hel", ""), chunk("lo", ""), chunk("", "stop"), usageChunk))(w, r)
	default:
		llmtest.Reply(http.StatusOK, "application/json", completion)(w, r)
	}
}

// TestProviderContract runs the provider port's contract suite against the
// adapter speaking to a fake of the OpenAI API.
func TestProviderContract(t *testing.T) {
	contract.TestProvider(t, func(t *testing.T) contract.ProviderSubject {
		up := httptest.NewServer(http.HandlerFunc(fakeOpenAI))
		t.Cleanup(up.Close)
		return contract.ProviderSubject{Provider: newProvider(t, up.URL, openai.Options{APIKey: apiKey}),
			ChatModel: "gpt-4o-mini", EmbedModel: "text-embedding-3-small", SlowModel: "slow"}
	})
}
