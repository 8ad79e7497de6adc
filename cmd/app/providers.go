package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm/anthropic"
	"github.com/tidygate/tidygate/internal/adapters/llm/azure"
	"github.com/tidygate/tidygate/internal/adapters/llm/bedrock"
	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// registry is the provider registry: every provider type a catalogue may
// name, with the settings it reads and how its adapter is built. The
// catalogue's validation, the messages that list the types, `tidygate
// config` and the tests each adapter must have
// (TestEveryProviderHasAWireTestAndAFuzzTarget) all follow from it: adding
// a provider type is one row here and its adapter package.
var registry = []providerType{
	// A built-in fake for development, tests and benchmarks; no upstream.
	register("mock", "",
		func(s mockSettings) []string {
			var problems []string
			if s.Latency < 0 {
				problems = append(problems, fmt.Sprintf("MOCK_LATENCY=%s: must not be negative", s.Latency))
			}
			if !(s.FailureRate >= 0 && s.FailureRate <= 1) { // also rejects NaN
				problems = append(problems, fmt.Sprintf("MOCK_FAILURE_RATE=%v: must be between 0 and 1", s.FailureRate))
			}
			return problems
		},
		func(_ context.Context, s mockSettings, _ time.Duration) (ports.Provider, error) {
			return mock.New(mock.Options{Latency: s.Latency, FailureRate: s.FailureRate})
		}),
	// The OpenAI API, and servers that speak it (Ollama, vLLM, LM Studio).
	register("openai", "openai",
		func(s openaiSettings) []string { return checkURL("OPENAI_BASE_URL", s.BaseURL) },
		func(_ context.Context, s openaiSettings, timeout time.Duration) (ports.Provider, error) {
			if s.APIKey == "" && s.BaseURL == "" {
				return nil, fmt.Errorf("set OPENAI_API_KEY (or OPENAI_BASE_URL for Ollama, vLLM or LM Studio)")
			}
			return openai.New(openai.Options{BaseURL: s.BaseURL, APIKey: s.APIKey, Timeout: timeout})
		}),
	// Azure OpenAI: a model's upstream is its deployment's name.
	register("azure", "azure",
		func(s azureSettings) []string { return checkURL("AZURE_OPENAI_ENDPOINT", s.Endpoint) },
		func(_ context.Context, s azureSettings, timeout time.Duration) (ports.Provider, error) {
			if s.APIKey == "" || s.Endpoint == "" {
				return nil, fmt.Errorf("set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY")
			}
			return azure.New(azure.Options{BaseURL: s.Endpoint, APIKey: s.APIKey, APIVersion: s.APIVersion, Timeout: timeout})
		}),
	// The Anthropic Messages API.
	register("anthropic", "anthropic",
		func(s anthropicSettings) []string { return checkURL("ANTHROPIC_BASE_URL", s.BaseURL) },
		func(_ context.Context, s anthropicSettings, timeout time.Duration) (ports.Provider, error) {
			if s.APIKey == "" {
				return nil, fmt.Errorf("set ANTHROPIC_API_KEY")
			}
			return anthropic.New(anthropic.Options{BaseURL: s.BaseURL, APIKey: s.APIKey, Timeout: timeout})
		}),
	// Amazon Bedrock's Converse API; credentials from the standard AWS chain.
	register("bedrock", "bedrock",
		func(bedrockSettings) []string { return nil },
		func(ctx context.Context, s bedrockSettings, _ time.Duration) (ports.Provider, error) {
			if s.Region == "" {
				return nil, fmt.Errorf("set AWS_REGION (credentials come from the standard AWS chain)")
			}
			return bedrock.New(ctx, bedrock.Options{Region: s.Region})
		}),
}

// Each provider type's settings: env tags name the variables, redact tags
// mark secrets and URLs as infra.Config's do. Keys are secrets: never
// logged, never reported.
type (
	mockSettings struct {
		Latency     time.Duration `env:"MOCK_LATENCY" envDefault:"0s"`
		FailureRate float64       `env:"MOCK_FAILURE_RATE" envDefault:"0"`
	}
	openaiSettings struct {
		APIKey  string `env:"OPENAI_API_KEY" redact:"secret"`
		BaseURL string `env:"OPENAI_BASE_URL" redact:"url"`
	}
	azureSettings struct {
		APIKey     string `env:"AZURE_OPENAI_API_KEY" redact:"secret"`
		Endpoint   string `env:"AZURE_OPENAI_ENDPOINT" redact:"url"`
		APIVersion string `env:"AZURE_OPENAI_API_VERSION" envDefault:"2024-10-21"`
	}
	anthropicSettings struct {
		APIKey  string `env:"ANTHROPIC_API_KEY" redact:"secret"`
		BaseURL string `env:"ANTHROPIC_BASE_URL" redact:"url"`
	}
	bedrockSettings struct {
		Region string `env:"AWS_REGION"`
	}
)

// providerType is one row of the registry.
type providerType struct {
	// name is what a catalogue's provider: says.
	name string
	// adapter is the adapter's package under internal/adapters/llm, whose
	// wire test and fuzz target the registry's test requires; empty for a
	// type with no upstream to speak to.
	adapter string
	// load reads and checks the type's settings from the environment,
	// returning every problem, one line each.
	load func(environ map[string]string) (any, []string)
	// build makes the adapter from the loaded settings and its bound on a
	// call (adapterTimeout), or says which setting is missing.
	build func(ctx context.Context, settings any, timeout time.Duration) (ports.Provider, error)
}

// register makes a registry row whose settings are the struct S.
func register[S any](name, adapter string, check func(S) []string,
	build func(context.Context, S, time.Duration) (ports.Provider, error)) providerType {
	return providerType{
		name: name, adapter: adapter,
		load: func(environ map[string]string) (any, []string) {
			var s S
			problems := infra.ParseSettings(&s, environ)
			for _, p := range check(s) {
				// A variable that did not parse is reported once, by ParseSettings.
				variable, _, _ := strings.Cut(p, "=")
				if !slices.ContainsFunc(problems, func(q string) bool { return strings.HasPrefix(q, variable+"=") }) {
					problems = append(problems, p)
				}
			}
			return s, problems
		},
		build: func(ctx context.Context, s any, timeout time.Duration) (ports.Provider, error) {
			return build(ctx, s.(S), timeout)
		},
	}
}

// providerNames lists the registry's types, in its order.
func providerNames() []string {
	names := make([]string, len(registry))
	for i, t := range registry {
		names[i] = t.name
	}
	return names
}

// checkURL checks an optional http(s) base URL.
func checkURL(variable, value string) []string {
	if value == "" {
		return nil
	}
	if u, err := url.Parse(value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []string{fmt.Sprintf("%s=%q: must be an http:// or https:// URL", variable, infra.RedactURL(value))}
	}
	return nil
}

// providerSettings are every provider type's settings, by type name.
type providerSettings map[string]any

// loadProviderSettings reads every type's settings from environ, so that a
// bad value is reported at start whether or not the catalogue uses the type.
func loadProviderSettings(environ map[string]string) (providerSettings, []string) {
	out := make(providerSettings, len(registry))
	var problems []string
	for _, t := range registry {
		s, p := t.load(environ)
		out[t.name] = s
		problems = append(problems, p...)
	}
	return out, problems
}

// redacted returns every provider setting as VARIABLE → value, secrets hidden.
func (ps providerSettings) redacted() map[string]string {
	out := make(map[string]string)
	for _, s := range ps {
		for k, v := range infra.RedactedSettings(s) {
			out[k] = v
		}
	}
	return out
}

// newCatalogue loads CATALOGUE_FILE, or the built-in mock catalogue.
func newCatalogue(cfg infra.Config) (*domain.Catalogue, error) {
	return infra.LoadCatalogue(cfg.CatalogueFile, providerNames())
}

// newProviders builds one adapter for each provider the catalogue uses, and
// refuses to start when a provider lacks the settings it needs, naming
// every such problem on its own line.
func newProviders(ctx bootContext, cfg infra.Config, ps providerSettings, cat *domain.Catalogue) (map[string]ports.Provider, error) {
	out := make(map[string]ports.Provider)
	var problems []string
	for _, name := range cat.Providers() {
		i := slices.IndexFunc(registry, func(t providerType) bool { return t.name == name })
		if i < 0 { // LoadCatalogue refuses these; a hand-made catalogue may not
			problems = append(problems, fmt.Sprintf("provider %q: unknown; known providers are %s", name, strings.Join(providerNames(), ", ")))
			continue
		}
		p, err := registry[i].build(ctx, ps[name], adapterTimeout(cfg))
		if err != nil {
			problems = append(problems, fmt.Sprintf("provider %q: %v", name, err))
			continue
		}
		out[name] = p
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return out, nil
}

// adapterTimeout is the HTTP adapters' own bound on a call. The gateway
// bounds each attempt itself (PROVIDER_TIMEOUT to the answer or a stream's
// first event, PROVIDER_STREAM_TIMEOUT for a whole stream), so the adapters'
// bound must not cut a stream the gateway still allows.
func adapterTimeout(cfg infra.Config) time.Duration {
	return max(cfg.ProviderTimeout, cfg.StreamTimeout)
}
