package main

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
)

// testProviderSettings are every provider type's settings as an empty
// environment gives them.
func testProviderSettings(t testing.TB) providerSettings {
	t.Helper()
	ps, problems := loadProviderSettings(map[string]string{})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return ps
}

// testConfiguration is cfg and ps with the catalogue cfg names, checked
// against ps's environment, as loadConfiguration hands them to appOptions.
func testConfiguration(t testing.TB, cfg infra.Config, ps providerSettings) configuration {
	t.Helper()
	cat, err := loadCatalogue(cfg.CatalogueFile, ps)
	if err != nil {
		t.Fatal(err)
	}
	return configuration{cfg: cfg, ps: ps, cat: cat}
}

// TestEveryProviderHasAWireTestAndAFuzzTarget walks the registry: each type
// that speaks to an upstream must have, in its adapter's package, a fuzz
// target and a wire test that runs the shared failure suite
// (llmtest.RunFailureTests); and every adapter package must be in the
// registry.
func TestEveryProviderHasAWireTestAndAFuzzTarget(t *testing.T) {
	const adapters = "../../internal/adapters/llm"
	known := map[string]bool{"llmtest": true} // the shared test helpers, no provider
	for _, pt := range registry {
		known[pt.name] = true
		if pt.adapter == "" {
			continue // no upstream: no wire format to test or fuzz
		}
		fuzz, suite := scanTests(t, filepath.Join(adapters, pt.adapter))
		if !fuzz {
			t.Errorf("provider %q: internal/adapters/llm/%s has no fuzz target (func Fuzz…(*testing.F))", pt.name, pt.adapter)
		}
		if !suite {
			t.Errorf("provider %q: internal/adapters/llm/%s has no wire test running llmtest.RunFailureTests", pt.name, pt.adapter)
		}
	}
	entries, err := os.ReadDir(adapters)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !known[e.Name()] {
			t.Errorf("internal/adapters/llm/%s is not in the provider registry (cmd/app/providers.go)", e.Name())
		}
	}
}

// scanTests reports whether the test files in dir declare a fuzz target and
// call llmtest.RunFailureTests.
func scanTests(t *testing.T, dir string) (fuzz, suite bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no test files (%v)", dir, err)
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if strings.HasPrefix(n.Name.Name, "Fuzz") && n.Recv == nil && len(n.Type.Params.List) == 1 {
					if star, ok := n.Type.Params.List[0].Type.(*ast.StarExpr); ok {
						if sel, ok := star.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "F" {
							fuzz = true
						}
					}
				}
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "llmtest" && n.Sel.Name == "RunFailureTests" {
					suite = true
				}
			}
			return true
		})
	}
	return fuzz, suite
}

// TestCatalogueAcceptsTheRegistry loads a catalogue that names every type
// in the registry, and one that names a type it lacks.
func TestCatalogueAcceptsTheRegistry(t *testing.T) {
	var b strings.Builder
	b.WriteString("models:\n")
	for _, pt := range registry {
		b.WriteString("  - {name: m-" + pt.name + ", type: chat, provider: " + pt.name + ", max_output_tokens: 10, free: true}\n")
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(good, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("models:\n  - {name: m, type: chat, provider: cumulus}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newCatalogue(infra.Config{CatalogueFile: good}); err != nil {
		t.Errorf("a catalogue naming every registered type: %v", err)
	}
	_, err := newCatalogue(infra.Config{CatalogueFile: bad})
	if err == nil || !strings.Contains(err.Error(), `"cumulus" must be mock, openai, azure, anthropic, bedrock, gemini or vertex`) {
		t.Errorf("an unknown type: %v", err)
	}
}

// TestProviderSettingProblemsAreReportedWhole gives bad values to several
// types' settings: each is its own line, and no secret is printed.
func TestProviderSettingProblemsAreReportedWhole(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"config"}, []string{
		"MOCK_LATENCY=-1s", "MOCK_FAILURE_RATE=lots", "OPENAI_BASE_URL=localhost:11434",
		"AZURE_OPENAI_ENDPOINT=ftp://user:pw@host", "AZURE_OPENAI_API_KEY=az-secret", "REPLICAS=0",
	}, io.Discard, &stderr)
	if err == nil {
		t.Fatal("bad provider settings were accepted")
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	for _, want := range []string{"REPLICAS", "MOCK_LATENCY=-1s: must not be negative", "MOCK_FAILURE_RATE", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no line names %s:\n%s", want, stderr.String())
		}
	}
	if len(lines) != 5 || strings.Contains(stderr.String(), "az-secret") || strings.Contains(stderr.String(), "pw@") {
		t.Errorf("want 5 lines and no secret:\n%s", stderr.String())
	}
}

func TestConfigCommandShowsProviderSettingsRedacted(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config"}, []string{"AZURE_OPENAI_API_KEY=az-secret", "AZURE_OPENAI_ENDPOINT=https://r.openai.azure.com"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"AZURE_OPENAI_API_KEY=***\n", "AZURE_OPENAI_ENDPOINT=https://r.openai.azure.com\n", "AZURE_OPENAI_API_VERSION=2024-10-21\n", "MOCK_LATENCY=0s\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestNewProvidersBuildsThroughTheRegistry builds the catalogue's providers
// from the environment: an Azure deployment answers through a local fake
// that asserts the credential, and a type whose settings are missing is
// reported, one line per type.
func TestNewProvidersBuildsThroughTheRegistry(t *testing.T) {
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Api-Key") != "az-secret" || r.URL.Path != "/openai/deployments/dep/chat/completions" || r.URL.Query().Get("api-version") != "2025-01-01" {
			http.Error(w, `{"error":{"message":"wrong credential or URL"}}`, http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"id":"x","choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
	}))
	t.Cleanup(fake.Close)
	models, err := domain.NewCatalogue([]domain.Model{{Name: "m", Type: domain.ModelChat, Provider: "azure", Upstream: "dep", MaxOutputTokens: 10}})
	if err != nil {
		t.Fatal(err)
	}
	ps, problems := loadProviderSettings(map[string]string{"AZURE_OPENAI_ENDPOINT": fake.URL, "AZURE_OPENAI_API_KEY": "az-secret", "AZURE_OPENAI_API_VERSION": "2025-01-01"})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	providers, err := newProviders(bootContext{context.Background()}, infra.Config{}, ps, infra.Catalogue{Models: models})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := providers["azure"].Chat(context.Background(), domain.ChatRequest{Model: "dep", Messages: []domain.Message{{Role: domain.RoleUser, Content: "hi"}}, MaxTokens: 10})
	if err != nil || resp.Content != "hi" {
		t.Fatalf("Chat = %+v, %v", resp, err)
	}

	models, err = domain.NewCatalogue([]domain.Model{
		{Name: "a", Type: domain.ModelChat, Provider: "azure", MaxOutputTokens: 10},
		{Name: "b", Type: domain.ModelChat, Provider: "anthropic", MaxOutputTokens: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newProviders(bootContext{context.Background()}, infra.Config{}, testProviderSettings(t), infra.Catalogue{Models: models})
	if err == nil || strings.Count(err.Error(), "\n") != 1 || !strings.Contains(err.Error(), "AZURE_OPENAI_API_KEY") || !strings.Contains(err.Error(), "ANTHROPIC_API_KEY") {
		t.Errorf("missing settings gave %v; want one line for azure and one for anthropic", err)
	}
}

// TestProviderSettingChecks checks each provider type's settings on its own.
func TestProviderSettingChecks(t *testing.T) {
	for _, tc := range []struct {
		environ map[string]string
		want    string // the one problem; empty for none
	}{
		{map[string]string{"OPENAI_BASE_URL": "localhost:11434/v1"}, `OPENAI_BASE_URL="***": must be an http:// or https:// URL`},
		{map[string]string{"ANTHROPIC_BASE_URL": "ftp://proxy"}, `ANTHROPIC_BASE_URL="ftp://proxy": must be an http:// or https:// URL`},
		{map[string]string{"AZURE_OPENAI_ENDPOINT": "r.openai.azure.com"}, `AZURE_OPENAI_ENDPOINT="***": must be an http:// or https:// URL`},
		{map[string]string{"MOCK_LATENCY": "-1s"}, `MOCK_LATENCY=-1s: must not be negative`},
		{map[string]string{"MOCK_LATENCY": "soon"}, `MOCK_LATENCY="soon": must be a duration such as 500ms, 5s or 10m`},
		{map[string]string{"MOCK_FAILURE_RATE": "2"}, `MOCK_FAILURE_RATE=2: must be between 0 and 1`},
		{map[string]string{"MOCK_FAILURE_RATE": "-0.5"}, `MOCK_FAILURE_RATE=-0.5: must be between 0 and 1`},
		{map[string]string{"MOCK_FAILURE_RATE": "NaN"}, `MOCK_FAILURE_RATE=NaN: must be between 0 and 1`},
		{map[string]string{"MOCK_FAILURE_RATE": "often"}, `MOCK_FAILURE_RATE="often": must be a number`},
		{map[string]string{"MOCK_FAILURE_RATE": "1", "OPENAI_BASE_URL": "http://ollama:11434/v1", "AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com"}, ""},
	} {
		_, got := loadProviderSettings(tc.environ)
		if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
			t.Errorf("%v: problems %q; want %q", tc.environ, got, tc.want)
		}
	}
}

// TestTwoInstancesOfOneTypeKeepTheirOwnKeys builds two named OpenAI
// instances with different keys and headers from one catalogue: each fake
// upstream asserts the credential and the header it receives, so a key
// sent to the wrong account fails the call.
func TestTwoInstancesOfOneTypeKeepTheirOwnKeys(t *testing.T) {
	var wrong atomic.Int32
	upstream := func(key, org string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+key || r.Header.Get("OpenAI-Organization") != org {
				wrong.Add(1)
				http.Error(w, `{"error":{"message":"wrong credential"}}`, http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"id":"x","choices":[{"index":0,"message":{"content":"`+org+`"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
		}))
		t.Cleanup(s.Close)
		return s
	}
	a, b := upstream("sk-account-a", "org-a"), upstream("sk-account-b", "org-b")
	keyFile := filepath.Join(t.TempDir(), "b.key")
	if err := os.WriteFile(keyFile, []byte("sk-account-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	if err := os.WriteFile(path, []byte(`
providers:
  - {name: acct-a, type: openai, base_url: `+a.URL+`, api_key_env: ACCOUNT_A_KEY, headers: {OpenAI-Organization: org-a}}
  - {name: acct-b, type: openai, base_url: `+b.URL+`, api_key_file: `+keyFile+`, headers: {OpenAI-Organization: org-b}}
models:
  - name: m
    type: chat
    deployments: [{provider: acct-a, upstream: up}, {provider: acct-b, upstream: up}]
    max_output_tokens: 10
    free: true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := newCatalogue(infra.Config{CatalogueFile: path})
	if err != nil {
		t.Fatal(err)
	}
	ps, problems := loadProviderSettings(map[string]string{"ACCOUNT_A_KEY": "sk-account-a", "OPENAI_API_KEY": "sk-implicit"})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	providers, err := newProviders(bootContext{context.Background()}, infra.Config{}, ps, cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"acct-a", "acct-b", "acct-a", "acct-b"} {
		resp, err := providers[name].Chat(context.Background(), domain.ChatRequest{Model: "up", Messages: []domain.Message{{Role: domain.RoleUser, Content: "hi"}}, MaxTokens: 10})
		if err != nil || resp.Content != "org-"+name[len(name)-1:] {
			t.Errorf("%s: Chat = %+v, %v", name, resp, err)
		}
	}
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d calls reached an upstream with another account's key", n)
	}

	// A key variable that is not set is named, one line per instance.
	ps, _ = loadProviderSettings(map[string]string{})
	_, err = newProviders(bootContext{context.Background()}, infra.Config{}, ps, cat)
	if err == nil || err.Error() != `provider "acct-a": api_key_env: the variable ACCOUNT_A_KEY is not set` {
		t.Errorf("an unset key variable gave %v", err)
	}
}

// TestExampleCatalogueIsValid loads deploy/catalogue.example.yaml through
// the registry, each named instance checked for its type, and builds its
// providers from an environment that sets the keys it names.
func TestExampleCatalogueIsValid(t *testing.T) {
	cat, err := newCatalogue(infra.Config{CatalogueFile: "../../deploy/catalogue.example.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Providers) != 4 {
		t.Errorf("named providers = %+v", cat.Providers)
	}
	ps, problems := loadProviderSettings(map[string]string{"OPENAI_MAIN_KEY": "k1", "AZURE_WEST_KEY": "k2", "ANTHROPIC_API_KEY": "k3"})
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	providers, err := newProviders(bootContext{context.Background()}, infra.Config{}, ps, cat)
	if err != nil {
		t.Fatal(err)
	}
	if len(providers) != len(cat.Models.Providers()) {
		t.Errorf("built %d providers for %v", len(providers), cat.Models.Providers())
	}
}

// TestGoogleInstances builds a named gemini instance, whose fake upstream
// asserts its key, and checks what a named vertex instance requires, one
// line per missing or bad key.
func TestGoogleInstances(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Goog-Api-Key") != "g-key-a" || r.URL.Path != "/v1beta/models/gemini-2.5-flash:generateContent" {
			http.Error(w, `{"error":{"code":401,"message":"wrong credential","status":"UNAUTHENTICATED"}}`, http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":1}}`)
	}))
	t.Cleanup(up.Close)
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	if err := os.WriteFile(path, []byte(`
providers:
  - {name: google-a, type: gemini, base_url: `+up.URL+`/v1beta, api_key_env: GEMINI_A_KEY}
models:
  - {name: m, type: chat, provider: google-a, upstream: gemini-2.5-flash, max_output_tokens: 10, free: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := newCatalogue(infra.Config{CatalogueFile: path})
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := loadProviderSettings(map[string]string{"GEMINI_A_KEY": "g-key-a", "GEMINI_API_KEY": "g-implicit"})
	providers, err := newProviders(bootContext{context.Background()}, infra.Config{}, ps, cat)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := providers["google-a"].Chat(context.Background(), domain.ChatRequest{Model: "gemini-2.5-flash",
		Messages: []domain.Message{{Role: domain.RoleUser, Content: "hi"}}, MaxTokens: 10})
	if err != nil || resp.Content != "hi" {
		t.Fatalf("Chat = %+v, %v", resp, err)
	}

	if err := os.WriteFile(path, []byte(`
providers:
  - {name: vx, type: vertex, location: "europe-west4/../x", api_key_env: VX_KEY}
models:
  - {name: m, type: chat, provider: vx, max_output_tokens: 10, free: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = newCatalogue(infra.Config{CatalogueFile: path})
	for _, want := range []string{"api_key_env", "project: is required for type vertex", "credentials_file: is required for type vertex", "location: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a bad vertex instance gave %v; want a line about %q", err, want)
		}
	}
}

// TestAzureEntraSettings: Entra ID's client credentials stand in for the
// key, all three or none, never beside a key; the secret is never shown.
func TestAzureEntraSettings(t *testing.T) {
	entra := map[string]string{"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "AZURE_OPENAI_TENANT_ID": "t",
		"AZURE_OPENAI_CLIENT_ID": "c", "AZURE_OPENAI_CLIENT_SECRET": "entra-secret"}
	ps, problems := loadProviderSettings(entra)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if _, err := registry[slices.IndexFunc(registry, func(p providerType) bool { return p.name == "azure" })].build(
		context.Background(), ps.byType["azure"], link{}); err != nil {
		t.Errorf("Entra ID settings alone: %v", err)
	}
	if strings.Contains(fmt.Sprint(ps.redacted()), "entra-secret") {
		t.Error("the client secret is shown")
	}
	for _, tc := range []struct {
		drop, add string
		want      string
	}{
		{drop: "AZURE_OPENAI_CLIENT_SECRET", want: "Entra ID needs all three"},
		{add: "AZURE_OPENAI_API_KEY", want: "not both"},
	} {
		environ := maps.Clone(entra)
		delete(environ, tc.drop)
		if tc.add != "" {
			environ[tc.add] = "k"
		}
		_, problems := loadProviderSettings(environ)
		if len(problems) != 1 || !strings.Contains(problems[0], tc.want) {
			t.Errorf("%v: problems %q; want one saying %q", environ, problems, tc.want)
		}
	}
}
