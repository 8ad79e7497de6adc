package anthropic_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
)

// countBody is a count_tokens request with what only Anthropic counts: a
// document and a tool.
const countBody = `{"model":"claude","system":"Be terse.","messages":[{"role":"user","content":[` +
	`{"type":"document","source":{"type":"text","media_type":"text/plain","data":"A long report."}},` +
	`{"type":"text","text":"Summarize it."}]}],"tools":[{"name":"look","input_schema":{"type":"object"}}]}`

func countRequest() domain.NativeRequest {
	return domain.NativeRequest{Dialect: domain.DialectAnthropicMessages, Model: "claude-x", Body: []byte(countBody),
		Header: map[string][]string{"Anthropic-Version": {"2023-06-01"}, "Anthropic-Beta": {"token-efficient-tools-2025-02-19"},
			"X-Api-Key": {"the client's"}}}
}

// TestCountTokens: a count_tokens request goes to Anthropic's token
// counting endpoint as the client wrote it, under the upstream model name,
// with the client's version and beta headers and the adapter's key; the
// count is Anthropic's input_tokens.
func TestCountTokens(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"input_tokens":2095}`))
	n, err := newProvider(t, up.URL).CountTokens(context.Background(), countRequest())
	if err != nil || n != 2095 {
		t.Fatalf("CountTokens = %d, %v; want 2095", n, err)
	}
	sent := up.Last(t)
	want := `{"model":"claude-x"` + countBody[len(`{"model":"claude"`):]
	if sent.Method != http.MethodPost || sent.Path != "/v1/messages/count_tokens" || string(sent.Body) != want {
		t.Errorf("sent %s %s %s; want POST /v1/messages/count_tokens %s", sent.Method, sent.Path, sent.Body, want)
	}
	h := sent.Header
	if !reflect.DeepEqual(h.Values("Anthropic-Version"), []string{"2023-06-01"}) ||
		!reflect.DeepEqual(h.Values("Anthropic-Beta"), []string{"token-efficient-tools-2025-02-19"}) ||
		!reflect.DeepEqual(h.Values("X-Api-Key"), []string{apiKey}) {
		t.Errorf("anthropic-version %q, anthropic-beta %q, x-api-key %q; want the client's version and beta, the adapter's key",
			h.Values("Anthropic-Version"), h.Values("Anthropic-Beta"), h.Values("X-Api-Key"))
	}
}

// TestCountTokensFailures: Anthropic's error answers are classified as
// Chat's are (a request it refuses is the client's), an answer without a
// count is the provider's failure, and a request of another dialect is
// refused without a call.
func TestCountTokensFailures(t *testing.T) {
	cases := map[string]struct {
		handler http.HandlerFunc
		kind    domain.Kind
	}{
		"invalid request": {func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusBadRequest, "messages: at least one message is required")
		}, domain.KindInvalid},
		"overloaded": {func(w http.ResponseWriter, _ *http.Request) { writeError(w, 529, "Overloaded") }, domain.KindUpstream},
		"rate limited": {func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusTooManyRequests, "slow down")
		}, domain.KindRateLimited},
		"no count":       {llmtest.Reply(http.StatusOK, "application/json", `{}`), domain.KindUpstream},
		"negative count": {llmtest.Reply(http.StatusOK, "application/json", `{"input_tokens":-1}`), domain.KindUpstream},
		"not JSON":       {llmtest.Reply(http.StatusOK, "application/json", `{"input_tokens":`), domain.KindUpstream},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			up := llmtest.NewUpstream(t, tc.handler)
			_, err := newProvider(t, up.URL).CountTokens(context.Background(), countRequest())
			llmtest.RequireKind(t, err, tc.kind)
		})
	}
	t.Run("another dialect", func(t *testing.T) {
		up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"input_tokens":1}`))
		req := countRequest()
		req.Dialect = domain.DialectOpenAIChat
		_, err := newProvider(t, up.URL).CountTokens(context.Background(), req)
		llmtest.RequireKind(t, err, domain.KindInvalid)
		if n := len(up.Requests()); n != 0 {
			t.Errorf("the upstream received %d requests", n)
		}
	})
}
