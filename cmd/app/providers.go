package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm/anthropic"
	"github.com/tidygate/tidygate/internal/adapters/llm/bedrock"
	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// newCatalogue loads CATALOGUE_FILE, or the built-in mock catalogue.
func newCatalogue(cfg infra.Config) (*domain.Catalogue, error) {
	return infra.LoadCatalogue(cfg.CatalogueFile)
}

// newProviders builds one adapter for each provider the catalogue uses, and
// refuses to start when a provider lacks the settings it needs.
func newProviders(ctx bootContext, cfg infra.Config, cat *domain.Catalogue) (map[string]ports.Provider, error) {
	out := make(map[string]ports.Provider)
	var problems []string
	for _, name := range cat.Providers() {
		p, err := newProvider(ctx, cfg, name)
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

func newProvider(ctx context.Context, cfg infra.Config, name string) (ports.Provider, error) {
	switch name {
	case "mock":
		return mock.New(mock.Options{Latency: cfg.MockLatency, FailureRate: cfg.MockFailureRate})
	case "openai":
		if cfg.OpenAIAPIKey == "" && cfg.OpenAIBaseURL == "" {
			return nil, fmt.Errorf("set OPENAI_API_KEY (or OPENAI_BASE_URL for Ollama, vLLM or LM Studio)")
		}
		return openai.New(openai.Options{BaseURL: cfg.OpenAIBaseURL, APIKey: cfg.OpenAIAPIKey, Timeout: adapterTimeout(cfg)})
	case "anthropic":
		if cfg.AnthropicAPIKey == "" {
			return nil, fmt.Errorf("set ANTHROPIC_API_KEY")
		}
		return anthropic.New(anthropic.Options{BaseURL: cfg.AnthropicBaseURL, APIKey: cfg.AnthropicAPIKey, Timeout: adapterTimeout(cfg)})
	case "bedrock":
		if cfg.AWSRegion == "" {
			return nil, fmt.Errorf("set AWS_REGION (credentials come from the standard AWS chain)")
		}
		return bedrock.New(ctx, bedrock.Options{Region: cfg.AWSRegion})
	}
	return nil, fmt.Errorf("unknown provider; known providers are mock, openai, anthropic, bedrock")
}

// adapterTimeout is the HTTP adapters' own bound on a call. The gateway
// bounds each attempt itself (PROVIDER_TIMEOUT to the answer or a stream's
// first event, PROVIDER_STREAM_TIMEOUT for a whole stream), so the adapters'
// bound must not cut a stream the gateway still allows.
func adapterTimeout(cfg infra.Config) time.Duration {
	return max(cfg.ProviderTimeout, cfg.StreamTimeout)
}
