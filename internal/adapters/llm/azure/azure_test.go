package azure_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/azure"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

const apiKey = "azure-key-0123456789abcdef"

func newProvider(t testing.TB, baseURL string) *azure.Provider {
	t.Helper()
	p, err := azure.New(azure.Options{BaseURL: baseURL + "/", APIKey: apiKey, APIVersion: "2024-10-21"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewValidates(t *testing.T) {
	for _, opts := range []azure.Options{
		{APIKey: apiKey}, {BaseURL: "https://r.openai.azure.com"},
		{BaseURL: "r.openai.azure.com", APIKey: apiKey}, {BaseURL: "https://r.openai.azure.com", APIKey: apiKey, Timeout: -1},
	} {
		if _, err := azure.New(opts); err == nil {
			t.Errorf("New accepted %+v", opts)
		}
	}
}

// TestDeploymentURLsAndKey checks every operation's URL, query and
// credentials: the deployment in the path, api-version in the query, the
// key in api-key and never as a bearer token.
func TestDeploymentURLsAndKey(t *testing.T) {
	up := llmtest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/openai/deployments/my 4o-mini/chat/completions":
			_, _ = w.Write([]byte(`{"id":"chatcmpl-1","created":1700000000,"model":"gpt-4o-mini",
			  "choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}],
			  "usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":8}}}`))
		case "/openai/deployments/embedder/embeddings":
			_, _ = w.Write([]byte(`{"data":[{"index":0,"embedding":[0.5,1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2}}`))
		default:
			llmtest.OpenAIError(w, http.StatusNotFound, "The API deployment for this resource does not exist.")
		}
	})
	p := newProvider(t, up.URL)
	resp, err := p.Chat(context.Background(), llmtest.Chat("my 4o-mini"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Content != "Hello." || resp.Usage != (domain.Usage{PromptTokens: 11, CompletionTokens: 2, CacheReadTokens: 8}) {
		t.Errorf("Chat = %+v", resp)
	}
	emb, err := p.Embed(context.Background(), domain.EmbedRequest{Model: "embedder", Inputs: []string{"hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(emb.Vectors, [][]float32{{0.5, 1}}) || emb.Usage.PromptTokens != 2 {
		t.Errorf("Embed = %+v", emb)
	}
	for _, sent := range up.Requests() {
		if sent.Method != http.MethodPost || sent.Query.Get("api-version") != "2024-10-21" || len(sent.Query) != 1 {
			t.Errorf("%s %s with query %v; want POST with api-version=2024-10-21 only", sent.Method, sent.Path, sent.Query)
		}
		if sent.Header.Get("Api-Key") != apiKey || sent.Header.Get("Authorization") != "" {
			t.Errorf("%s sent api-key %q and Authorization %q; want the key in api-key only",
				sent.Path, sent.Header.Get("Api-Key"), sent.Header.Get("Authorization"))
		}
	}
}

// TestTheOutputCapFollowsTheAPIVersion sends a request that sets no output
// cap, translated and passed through: the API versions that take
// max_completion_tokens (the default among them), which the o-series
// models require, get the reserved cap so; earlier versions, which know
// only max_tokens, get it as max_tokens.
func TestTheOutputCapFollowsTheAPIVersion(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json",
		`{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`))
	for _, c := range []struct{ version, field, not string }{
		{"", "max_completion_tokens", "max_tokens"},
		{"2024-12-01-preview", "max_completion_tokens", "max_tokens"},
		{"2024-06-01", "max_tokens", "max_completion_tokens"},
	} {
		p, err := azure.New(azure.Options{BaseURL: up.URL, APIKey: apiKey, APIVersion: c.version})
		if err != nil {
			t.Fatal(err)
		}
		llmtest.ExpectOutputCap(t, up, p, c.field, c.not)
	}
}

func TestChatStream(t *testing.T) {
	body := "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n" +
		"data: [DONE]\n\n"
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "text/event-stream", body))
	var c llmtest.Chunks
	resp, err := newProvider(t, up.URL).ChatStream(context.Background(), llmtest.Chat("dep"), c.Emit)
	if err != nil {
		t.Fatal(err)
	}
	c.Expect(t, resp, []string{"Hi"}, "stop", domain.Usage{PromptTokens: 5, CompletionTokens: 1, CacheReadTokens: 4, ReasoningTokens: 1})
	if sent := up.Last(t); sent.Path != "/openai/deployments/dep/chat/completions" || sent.JSON(t)["stream"] != true {
		t.Errorf("sent %s %v", sent.Path, sent.JSON(t))
	}
}

func TestFailures(t *testing.T) {
	llmtest.RunFailureTests(t, llmtest.Wire{
		Provider:   "azure",
		APIKey:     apiKey,
		New:        func(t *testing.T, baseURL string) ports.Provider { return newProvider(t, baseURL) },
		Error:      llmtest.OpenAIError,
		Embeds:     true,
		Model:      "my-4o-mini",
		EmbedModel: "embedder",
	})
}
