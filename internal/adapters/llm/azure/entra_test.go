package azure_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tidygate/tidygate/internal/adapters/llm/azure"
	"github.com/tidygate/tidygate/internal/adapters/llm/llmtest"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

const (
	tenant       = "11111111-2222-3333-4444-555555555555"
	clientID     = "app-client-id"
	clientSecret = "entra-secret-0123456789abcdef"
)

// entraServer is a fake Entra ID token endpoint: it hands out numbered
// tokens for the client credentials grant of one application and tenant,
// for Azure OpenAI's scope, and refuses anything else with an OAuth error.
type entraServer struct {
	URL string

	mu       sync.Mutex
	issued   int
	refuse   bool
	problems []string
}

func newEntraServer(t testing.TB) *entraServer {
	t.Helper()
	es := &entraServer{}
	srv := httptest.NewServer(http.HandlerFunc(es.serve))
	t.Cleanup(srv.Close)
	es.URL = srv.URL
	return es
}

func (es *entraServer) serve(w http.ResponseWriter, r *http.Request) {
	es.mu.Lock()
	defer es.mu.Unlock()
	_ = r.ParseForm()
	f := r.PostForm
	if r.Method != http.MethodPost || r.URL.Path != "/"+tenant+"/oauth2/v2.0/token" || f.Get("grant_type") != "client_credentials" ||
		f.Get("client_id") != clientID || f.Get("client_secret") != clientSecret || f.Get("scope") != "https://cognitiveservices.azure.com/.default" {
		es.problems = append(es.problems, fmt.Sprintf("%s %s %v", r.Method, r.URL.Path, f))
	}
	w.Header().Set("Content-Type", "application/json")
	if es.refuse {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = fmt.Fprintf(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided for %s."}`, clientID)
		return
	}
	es.issued++
	_, _ = fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.entra-%d"}`, es.issued)
}

func (es *entraServer) check(t testing.TB) int {
	t.Helper()
	es.mu.Lock()
	defer es.mu.Unlock()
	for _, p := range es.problems {
		t.Errorf("token endpoint got %s", p)
	}
	return es.issued
}

func newEntraProvider(t testing.TB, baseURL string, es *entraServer) *azure.Provider {
	t.Helper()
	p, err := azure.New(azure.Options{BaseURL: baseURL, APIVersion: "2024-10-21",
		Entra: &azure.EntraOptions{TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, AuthorityHost: es.URL}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewValidatesEntra(t *testing.T) {
	entra := &azure.EntraOptions{TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret}
	for _, opts := range []azure.Options{
		{BaseURL: "https://r.openai.azure.com", APIKey: apiKey, Entra: entra}, // both
		{BaseURL: "https://r.openai.azure.com", Entra: &azure.EntraOptions{TenantID: tenant, ClientID: clientID}},
		{BaseURL: "https://r.openai.azure.com", Entra: &azure.EntraOptions{TenantID: tenant, ClientID: clientID, ClientSecret: clientSecret, AuthorityHost: "login"}},
	} {
		if _, err := azure.New(opts); err == nil {
			t.Errorf("New accepted %+v", opts)
		}
	}
}

// TestEntraToken: with Entra ID, every call carries the bearer token got
// with the client credentials, never an api-key header, and the token is
// fetched once for several calls.
func TestEntraToken(t *testing.T) {
	es := newEntraServer(t)
	up := llmtest.NewUpstream(t, llmtest.Reply(http.StatusOK, "application/json", `{"id":"c","choices":[{"index":0,"message":{"content":"Hi."},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`))
	p := newEntraProvider(t, up.URL, es)
	for range 3 {
		if _, err := p.Chat(context.Background(), llmtest.Chat("dep")); err != nil {
			t.Fatal(err)
		}
	}
	for _, sent := range up.Requests() {
		if sent.Header.Get("Authorization") != "Bearer eyJ0eXAi.entra-1" || sent.Header.Get("Api-Key") != "" ||
			sent.Path != "/openai/deployments/dep/chat/completions" || sent.Query.Get("api-version") != "2024-10-21" {
			t.Errorf("sent %s with Authorization %q and api-key %q", sent.Path, sent.Header.Get("Authorization"), sent.Header.Get("Api-Key"))
		}
	}
	if n := es.check(t); n != 1 {
		t.Errorf("%d tokens for three calls; want one, cached", n)
	}
}

// TestEntraRefused: refused client credentials are an upstream failure
// blaming tidygate's credentials, quoting none of them; the deployment is
// not called.
func TestEntraRefused(t *testing.T) {
	es := newEntraServer(t)
	es.refuse = true
	up := llmtest.NewUpstream(t, llmtest.Hang)
	_, err := newEntraProvider(t, up.URL, es).Chat(context.Background(), llmtest.Chat("dep"))
	de := llmtest.RequireError(t, err, domain.KindUpstream)
	if !strings.Contains(de.Message, "azure") || !strings.Contains(de.Message, "credentials") ||
		strings.Contains(de.Error(), clientSecret) || strings.Contains(de.Error(), clientID) {
		t.Errorf("message %q", de.Error())
	}
	if len(up.Requests()) != 0 {
		t.Error("the deployment was called without a token")
	}
}

func TestEntraFailures(t *testing.T) {
	es := newEntraServer(t)
	llmtest.RunFailureTests(t, llmtest.Wire{
		Provider:   "azure",
		APIKey:     clientSecret,
		New:        func(t *testing.T, baseURL string) ports.Provider { return newEntraProvider(t, baseURL, es) },
		Error:      llmtest.OpenAIError,
		Embeds:     true,
		Model:      "my-4o-mini",
		EmbedModel: "embedder",
	})
	es.check(t)
}
