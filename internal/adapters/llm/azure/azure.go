// Package azure calls Azure OpenAI's deployments: the Chat Completions and
// Embeddings APIs in OpenAI's wire format (through llm.OpenAIClient), at
// {base}/openai/deployments/{deployment}/{operation}?api-version={version}
// with the key in the api-key header. A model's upstream name in the
// catalogue is the deployment's name.
//
// The adapter reads no environment variable: the base URL, the key and the
// API version are the options' own.
package azure

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/ports"
)

// DefaultAPIVersion is the dated API version sent when Options.APIVersion
// is empty: the latest generally available one when this adapter was written.
const DefaultAPIVersion = "2024-10-21"

// Options configures the Azure OpenAI adapter.
type Options struct {
	// BaseURL is the resource's endpoint, such as
	// https://my-resource.openai.azure.com; it is required.
	BaseURL string
	// APIKey is sent in the api-key header; it is required.
	APIKey string
	// APIVersion is sent as the api-version query parameter; empty means
	// DefaultAPIVersion.
	APIVersion string
	// HTTPClient carries the calls; nil means llm.NewHTTPClient's.
	HTTPClient *http.Client
	// Timeout bounds each call, a stream included; zero means
	// llm.DefaultTimeout.
	Timeout time.Duration
}

// Provider calls the deployments of one Azure OpenAI resource; it is safe
// for concurrent use.
type Provider struct {
	*llm.OpenAIClient
}

var _ ports.Provider = (*Provider)(nil)

// New returns an adapter for the resource at opts.BaseURL, or an error if
// the base URL or the key is missing, the base URL is not an absolute http
// or https URL, or the timeout is negative.
func New(opts Options) (*Provider, error) {
	if opts.BaseURL == "" || opts.APIKey == "" {
		return nil, errors.New("azure: the resource's base URL and its API key are required")
	}
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("azure", "")
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(ep.BaseURL, "/") + "/openai/deployments/"
	query := "?api-version=" + url.QueryEscape(orDefault(opts.APIVersion, DefaultAPIVersion))
	return &Provider{llm.NewOpenAIClient(llm.OpenAIWire{
		Provider: "azure",
		Endpoint: ep,
		URL: func(operation, deployment string) string {
			return base + url.PathEscape(deployment) + "/" + operation + query
		},
		Header: http.Header{"Api-Key": {opts.APIKey}},
		Secret: opts.APIKey,
	})}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
