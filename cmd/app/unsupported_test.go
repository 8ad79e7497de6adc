package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/adapters/llm/bedrock"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/adapters/memory"
	"github.com/tidygate/tidygate/internal/adapters/ratelimit"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/ports"
)

// TestUnsupportedFeatureIsA400InEachDialect serves the whole call path with
// the Bedrock adapter in front of a fake upstream, and asks, in each
// dialect, streamed and not, for what Converse cannot do (an image by URL):
// the answer is a 400 in that dialect's error shape naming the feature and
// the provider, and nothing reaches the upstream.
func TestUnsupportedFeatureIsA400InEachDialect(t *testing.T) {
	up := llmtest.NewUpstream(t, llmtest.Hang)
	p := newBedrock(t, up.URL)
	cat, err := domain.NewCatalogue([]domain.Model{{Name: "claude-bedrock", Type: domain.ModelChat, Provider: "bedrock",
		Upstream: "anthropic.claude-3-haiku-20240307-v1:0", Price: domain.Price{InputPerMillion: 1, OutputPerMillion: 1}, MaxOutputTokens: 1024}})
	if err != nil {
		t.Fatal(err)
	}
	keys := memory.NewKeyStore()
	keys.Add(agentKey, domain.Caller{User: "ada", Team: "eng"})
	svc, err := gateway.NewService(gateway.Deps{Limiter: ratelimit.New(), Catalogue: cat, Providers: map[string]ports.Provider{"bedrock": p},
		Keys: keys, Ledger: memory.NewLedger(), CallLog: memory.NewCallLog()}, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewHandler(svc, httpapi.Options{}))
	t.Cleanup(srv.Close)

	const image = `"https://example.com/cat.png"`
	dialects := map[string]struct {
		path, body string
		message    func(map[string]any) (typ, message string)
	}{
		"chat completions": {"/v1/chat/completions",
			`{"model":"claude-bedrock","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},{"type":"image_url","image_url":{"url":` + image + `}}]}]`,
			openAIError},
		"messages": {"/v1/messages",
			`{"model":"claude-bedrock","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"What is it?"},{"type":"image","source":{"type":"url","url":` + image + `}}]}]`,
			func(body map[string]any) (string, string) {
				if body["type"] != "error" {
					return "", ""
				}
				return openAIError(body)
			}},
		"responses": {"/v1/responses",
			`{"model":"claude-bedrock","max_output_tokens":100,"input":[{"role":"user","content":[{"type":"input_text","text":"What is it?"},{"type":"input_image","image_url":` + image + `}]}]`,
			openAIError},
	}
	for name, d := range dialects {
		for _, stream := range []bool{false, true} {
			t.Run(name+map[bool]string{true: " stream"}[stream], func(t *testing.T) {
				body := d.body + map[bool]string{true: `,"stream":true}`, false: `}`}[stream]
				req, err := http.NewRequest(http.MethodPost, srv.URL+d.path, bytes.NewReader([]byte(body)))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+agentKey)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Audit-Reason", "unsupported feature test")
				req.Header.Set("Anthropic-Version", "2023-06-01")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var got map[string]any
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					t.Fatalf("status %d, body not JSON: %v", resp.StatusCode, err)
				}
				typ, msg := d.message(got)
				if resp.StatusCode != http.StatusBadRequest || typ != "invalid_request_error" ||
					!strings.Contains(msg, "images by URL") || !strings.Contains(msg, "bedrock") {
					t.Errorf("status %d, body %v; want 400 invalid_request_error naming bedrock and images by URL", resp.StatusCode, got)
				}
			})
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

// newBedrock returns the Bedrock adapter calling baseURL with static fake
// credentials, none read from the machine's AWS configuration.
func newBedrock(t *testing.T, baseURL string) *bedrock.Provider {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "fake-secret", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	p, err := bedrock.New(context.Background(), bedrock.Options{Region: "us-east-1", BaseURL: baseURL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openAIError reads the type and message of an error body shaped
// {"error":{"type":…,"message":…}} (Anthropic's adds "type":"error" around it).
func openAIError(body map[string]any) (typ, message string) {
	e, _ := body["error"].(map[string]any)
	typ, _ = e["type"].(string)
	message, _ = e["message"].(string)
	return typ, message
}
