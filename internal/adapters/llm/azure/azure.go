// Package azure calls Azure OpenAI's deployments: the Chat Completions and
// Embeddings APIs in OpenAI's wire format (through llm.OpenAIClient), at
// {base}/openai/deployments/{deployment}/{operation}?api-version={version}
// with the key in the api-key header, or with a Microsoft Entra ID access
// token (an application's client credentials, exchanged at the tenant's
// token endpoint) as a bearer token. A model's upstream name in the
// catalogue is the deployment's name.
//
// The adapter reads no environment variable: the base URL, the
// credentials and the API version are the options' own.
package azure

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/ports"
)

// DefaultAuthorityHost is Microsoft Entra ID's host for the public cloud,
// used when EntraOptions.AuthorityHost is empty.
const DefaultAuthorityHost = "https://login.microsoftonline.com"

// entraScope is the scope an Azure OpenAI access token is asked for.
const entraScope = "https://cognitiveservices.azure.com/.default"

// EntraOptions are an Entra ID application's client credentials, which
// authorize the calls instead of a key.
type EntraOptions struct {
	// TenantID, ClientID and ClientSecret are required.
	TenantID     string
	ClientID     string
	ClientSecret string
	// AuthorityHost is Entra ID's host (another cloud's, or a fake's);
	// empty means DefaultAuthorityHost. Tokens are asked of
	// {AuthorityHost}/{TenantID}/oauth2/v2.0/token.
	AuthorityHost string
}

// DefaultAPIVersion is the dated API version sent when Options.APIVersion
// is empty: the latest generally available one when this adapter was written.
const DefaultAPIVersion = "2024-10-21"

// maxCompletionTokensSince is the first API version that takes the output
// cap as max_completion_tokens (2024-09-01-preview), which the o-series
// models require; earlier versions know only max_tokens. Versions are
// dated, so they compare as strings.
const maxCompletionTokensSince = "2024-09-01"

// Options configures the Azure OpenAI adapter.
type Options struct {
	// BaseURL is the resource's endpoint, such as
	// https://my-resource.openai.azure.com; it is required.
	BaseURL string
	// APIKey is sent in the api-key header; it or Entra is required.
	APIKey string
	// Entra, when set, authorizes each call with an Entra ID access token
	// (Authorization: Bearer), cached until shortly before it expires,
	// instead of APIKey.
	Entra *EntraOptions
	// APIVersion is sent as the api-version query parameter; empty means
	// DefaultAPIVersion. From 2024-09-01-preview on, the output cap is sent
	// as max_completion_tokens, before it as max_tokens.
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

var (
	_ ports.Provider    = (*Provider)(nil)
	_ ports.PassThrough = (*Provider)(nil)
)

// New returns an adapter for the resource at opts.BaseURL, or an error if
// the base URL or the credentials (a key, or Entra ID's, not both) are
// missing, the base URL is not an absolute http or https URL, or the
// timeout is negative.
func New(opts Options) (*Provider, error) {
	if opts.BaseURL == "" || (opts.APIKey == "") == (opts.Entra == nil) {
		return nil, errors.New("azure: the resource's base URL and either its API key or Entra ID credentials are required")
	}
	ep, err := llm.Endpoint{BaseURL: opts.BaseURL, Timeout: opts.Timeout, HTTPClient: opts.HTTPClient}.Resolve("azure", "")
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(ep.BaseURL, "/") + "/openai/deployments/"
	version := orDefault(opts.APIVersion, DefaultAPIVersion)
	query := "?api-version=" + url.QueryEscape(version)
	wire := llm.OpenAIWire{
		Provider: "azure",
		Endpoint: ep,
		URL: func(operation, deployment string) string {
			return base + url.PathEscape(deployment) + "/" + operation + query
		},
		Header:      http.Header{"Api-Key": {opts.APIKey}},
		Secret:      opts.APIKey,
		PassThrough: []domain.Dialect{domain.DialectOpenAIChat},

		UseMaxCompletionTokens: version >= maxCompletionTokensSince,
	}
	if e := opts.Entra; e != nil {
		authorize, err := entra(*e, ep.HTTPClient)
		if err != nil {
			return nil, err
		}
		wire.Header, wire.Secret, wire.Authorize = nil, e.ClientSecret, authorize
	}
	return &Provider{llm.NewOpenAIClient(wire)}, nil
}

// entra returns what authorizes a call with an Entra ID access token got
// with the application's client credentials.
func entra(e EntraOptions, client *http.Client) (func(context.Context, http.Header) error, error) {
	if e.TenantID == "" || e.ClientID == "" || e.ClientSecret == "" {
		return nil, errors.New("azure: Entra ID needs the tenant id, the client id and the client secret")
	}
	authority, err := llm.Endpoint{BaseURL: e.AuthorityHost}.Resolve("azure Entra ID authority", DefaultAuthorityHost)
	if err != nil {
		return nil, err
	}
	cfg := clientcredentials.Config{
		ClientID: e.ClientID, ClientSecret: e.ClientSecret, Scopes: []string{entraScope},
		TokenURL:  strings.TrimRight(authority.BaseURL, "/") + "/" + url.PathEscape(e.TenantID) + "/oauth2/v2.0/token",
		AuthStyle: oauth2.AuthStyleInParams,
	}
	return llm.NewTokens("azure", client, cfg.Token).Authorize, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
