package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/adapters/llm"
	"github.com/tidygate/tidygate/internal/adapters/llm/anthropic"
	"github.com/tidygate/tidygate/internal/adapters/llm/azure"
	"github.com/tidygate/tidygate/internal/adapters/llm/bedrock"
	"github.com/tidygate/tidygate/internal/adapters/llm/gemini"
	"github.com/tidygate/tidygate/internal/adapters/llm/mock"
	"github.com/tidygate/tidygate/internal/adapters/llm/openai"
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
	register("mock", "", typeSpec[mockSettings]{
		check: func(s mockSettings) []string {
			var problems []string
			if s.Latency < 0 {
				problems = append(problems, fmt.Sprintf("MOCK_LATENCY=%s: must not be negative", s.Latency))
			}
			if !(s.FailureRate >= 0 && s.FailureRate <= 1) { // also rejects NaN
				problems = append(problems, fmt.Sprintf("MOCK_FAILURE_RATE=%v: must be between 0 and 1", s.FailureRate))
			}
			return problems
		},
		build: func(_ context.Context, s mockSettings, _ link) (ports.Provider, error) {
			return mock.New(mock.Options{Latency: s.Latency, FailureRate: s.FailureRate})
		},
		keys:     infra.CapKeys,
		instance: func(infra.ProviderInstance, string) mockSettings { return mockSettings{} },
	}),
	// The OpenAI API, and servers that speak it (Ollama, vLLM, LM Studio).
	register("openai", "openai", typeSpec[openaiSettings]{
		check: func(s openaiSettings) []string { return checkURL("OPENAI_BASE_URL", s.BaseURL) },
		missing: func(s openaiSettings) error {
			if s.APIKey == "" && s.BaseURL == "" {
				return fmt.Errorf("set OPENAI_API_KEY (or OPENAI_BASE_URL for Ollama, vLLM or LM Studio)")
			}
			return nil
		},
		build: func(_ context.Context, s openaiSettings, l link) (ports.Provider, error) {
			return openai.New(openai.Options{BaseURL: s.BaseURL, APIKey: s.APIKey, Timeout: l.timeout, HTTPClient: l.client})
		},
		keys: infra.HTTPKeys,
		checkInstance: func(p infra.ProviderInstance) []string {
			if !p.HasAPIKey() && p.BaseURL == "" {
				return []string{"api_key_env: name the variable holding the key (or give api_key_file), or a base_url for a server that needs none"}
			}
			return nil
		},
		instance: func(p infra.ProviderInstance, key string) openaiSettings {
			return openaiSettings{APIKey: key, BaseURL: p.BaseURL}
		},
	}),
	// Azure OpenAI: a model's upstream is its deployment's name.
	register("azure", "azure", typeSpec[azureSettings]{
		check: func(s azureSettings) []string {
			problems := append(checkURL("AZURE_OPENAI_ENDPOINT", s.Endpoint), checkURL("AZURE_OPENAI_AUTHORITY_HOST", s.AuthorityHost)...)
			set := 0
			for _, v := range []string{s.TenantID, s.ClientID, s.ClientSecret} {
				if v != "" {
					set++
				}
			}
			if set > 0 && set < 3 {
				problems = append(problems, "AZURE_OPENAI_TENANT_ID, AZURE_OPENAI_CLIENT_ID, AZURE_OPENAI_CLIENT_SECRET: Entra ID needs all three")
			}
			if set > 0 && s.APIKey != "" {
				problems = append(problems, "AZURE_OPENAI_API_KEY: set the key or Entra ID's client credentials, not both")
			}
			return problems
		},
		missing: func(s azureSettings) error {
			if (s.APIKey == "" && s.ClientID == "") || s.Endpoint == "" {
				return fmt.Errorf("set AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY (or, for Entra ID, AZURE_OPENAI_TENANT_ID, AZURE_OPENAI_CLIENT_ID and AZURE_OPENAI_CLIENT_SECRET)")
			}
			return nil
		},
		build: func(_ context.Context, s azureSettings, l link) (ports.Provider, error) {
			opts := azure.Options{BaseURL: s.Endpoint, APIKey: s.APIKey, APIVersion: s.APIVersion, Timeout: l.timeout, HTTPClient: l.client}
			if s.ClientID != "" {
				opts.Entra = &azure.EntraOptions{TenantID: s.TenantID, ClientID: s.ClientID, ClientSecret: s.ClientSecret, AuthorityHost: s.AuthorityHost}
			}
			return azure.New(opts)
		},
		keys:          append(slices.Clone(infra.HTTPKeys), "api_version"),
		checkInstance: func(p infra.ProviderInstance) []string { return requireKeys(p, "base_url", "api_key") },
		instance: func(p infra.ProviderInstance, key string) azureSettings {
			return azureSettings{APIKey: key, Endpoint: p.BaseURL, APIVersion: p.APIVersion}
		},
	}),
	// The Anthropic Messages API.
	register("anthropic", "anthropic", typeSpec[anthropicSettings]{
		check:   func(s anthropicSettings) []string { return checkURL("ANTHROPIC_BASE_URL", s.BaseURL) },
		missing: func(s anthropicSettings) error { return unset(s.APIKey, "ANTHROPIC_API_KEY") },
		build: func(_ context.Context, s anthropicSettings, l link) (ports.Provider, error) {
			return anthropic.New(anthropic.Options{BaseURL: s.BaseURL, APIKey: s.APIKey, Timeout: l.timeout, HTTPClient: l.client})
		},
		keys:          infra.HTTPKeys,
		checkInstance: func(p infra.ProviderInstance) []string { return requireKeys(p, "api_key") },
		instance: func(p infra.ProviderInstance, key string) anthropicSettings {
			return anthropicSettings{APIKey: key, BaseURL: p.BaseURL}
		},
	}),
	// Amazon Bedrock's Converse API; credentials from the standard AWS chain.
	register("bedrock", "bedrock", typeSpec[bedrockSettings]{
		check: func(bedrockSettings) []string { return nil },
		missing: func(s bedrockSettings) error {
			return unset(s.Region, "AWS_REGION (credentials come from the standard AWS chain)")
		},
		build: func(ctx context.Context, s bedrockSettings, l link) (ports.Provider, error) {
			opts := bedrock.Options{Region: s.Region, Profile: s.profile, BaseURL: s.baseURL}
			if s.ownClient {
				opts.HTTPClient = l.client
			}
			return bedrock.New(ctx, opts)
		},
		keys:          append([]string{"base_url", "headers", "timeout", "proxy_url", "ca_file", "region", "aws_profile"}, infra.CapKeys...),
		checkInstance: func(p infra.ProviderInstance) []string { return requireKeys(p, "region") },
		instance: func(p infra.ProviderInstance, _ string) bedrockSettings {
			return bedrockSettings{Region: p.Region, profile: p.AWSProfile, baseURL: p.BaseURL,
				ownClient: p.ProxyURL != "" || p.CAFile != "" || len(p.Headers) > 0 || p.Timeout > 0}
		},
	}),
	// The Gemini API's generateContent, with an API key.
	register("gemini", "gemini", typeSpec[geminiSettings]{
		check:   func(s geminiSettings) []string { return checkURL("GEMINI_BASE_URL", s.BaseURL) },
		missing: func(s geminiSettings) error { return unset(s.APIKey, "GEMINI_API_KEY") },
		build: func(_ context.Context, s geminiSettings, l link) (ports.Provider, error) {
			return gemini.New(gemini.Options{BaseURL: s.BaseURL, APIKey: s.APIKey, Timeout: l.timeout, HTTPClient: l.client})
		},
		keys:          infra.HTTPKeys,
		checkInstance: func(p infra.ProviderInstance) []string { return requireKeys(p, "api_key") },
		instance: func(p infra.ProviderInstance, key string) geminiSettings {
			return geminiSettings{APIKey: key, BaseURL: p.BaseURL}
		},
	}),
	// Google's models on Vertex AI: the same wire as gemini, with a
	// service account's access tokens.
	register("vertex", "gemini", typeSpec[vertexSettings]{
		check: func(s vertexSettings) []string {
			problems := checkURL("VERTEX_BASE_URL", s.BaseURL)
			if s.Location != "" && !gemini.ValidLocation(s.Location) {
				problems = append(problems, fmt.Sprintf("VERTEX_LOCATION=%q: %s", s.Location, vertexLocationRule))
			}
			return problems
		},
		missing: func(s vertexSettings) error {
			if s.Project == "" || s.Location == "" || s.credentialsFile() == "" {
				return fmt.Errorf("set VERTEX_PROJECT, VERTEX_LOCATION and VERTEX_CREDENTIALS_FILE (or GOOGLE_APPLICATION_CREDENTIALS), a service account's JSON key")
			}
			return nil
		},
		build: func(_ context.Context, s vertexSettings, l link) (ports.Provider, error) {
			return gemini.NewVertex(gemini.VertexOptions{Project: s.Project, Location: s.Location,
				CredentialsFile: s.credentialsFile(), BaseURL: s.BaseURL, Timeout: l.timeout, HTTPClient: l.client})
		},
		keys: append([]string{"base_url", "headers", "timeout", "proxy_url", "ca_file", "project", "location", "credentials_file"}, infra.CapKeys...),
		checkInstance: func(p infra.ProviderInstance) []string {
			var problems []string
			for _, k := range []struct{ key, value string }{{"project", p.Project}, {"location", p.Location}, {"credentials_file", p.CredentialsFile}} {
				if k.value == "" {
					problems = append(problems, fmt.Sprintf("%s: is required for type %s", k.key, p.Type))
				}
			}
			if p.Location != "" && !gemini.ValidLocation(p.Location) {
				problems = append(problems, fmt.Sprintf("location: %q %s", p.Location, vertexLocationRule))
			}
			return problems
		},
		instance: func(p infra.ProviderInstance, _ string) vertexSettings {
			return vertexSettings{Project: p.Project, Location: p.Location, CredentialsFile: p.CredentialsFile, BaseURL: p.BaseURL}
		},
	}),
}

// unset says to set variable when value, its setting, is empty.
func unset(value, variable string) error {
	if value == "" {
		return fmt.Errorf("set %s", variable)
	}
	return nil
}

// credentialsFile is the service account's key file: VERTEX_CREDENTIALS_FILE,
// or else GOOGLE_APPLICATION_CREDENTIALS.
func (s vertexSettings) credentialsFile() string {
	if s.CredentialsFile != "" {
		return s.CredentialsFile
	}
	return s.GoogleCredentials
}

// vertexLocationRule is what a Vertex AI location must be.
const vertexLocationRule = "must be a Google Cloud region such as us-central1, or global"

// requireKeys returns a line for each of keys the instance lacks; "api_key"
// stands for api_key_env or api_key_file.
func requireKeys(p infra.ProviderInstance, keys ...string) []string {
	var problems []string
	for _, k := range keys {
		switch {
		case k == "api_key" && !p.HasAPIKey():
			problems = append(problems, fmt.Sprintf("api_key_env: type %s needs a key: name the variable holding it (or give api_key_file)", p.Type))
		case k == "base_url" && p.BaseURL == "", k == "region" && p.Region == "":
			problems = append(problems, fmt.Sprintf("%s: is required for type %s", k, p.Type))
		}
	}
	return problems
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
		// Entra ID's client credentials, instead of the key.
		TenantID      string `env:"AZURE_OPENAI_TENANT_ID"`
		ClientID      string `env:"AZURE_OPENAI_CLIENT_ID"`
		ClientSecret  string `env:"AZURE_OPENAI_CLIENT_SECRET" redact:"secret"`
		AuthorityHost string `env:"AZURE_OPENAI_AUTHORITY_HOST" redact:"url"`
	}
	anthropicSettings struct {
		APIKey  string `env:"ANTHROPIC_API_KEY" redact:"secret"`
		BaseURL string `env:"ANTHROPIC_BASE_URL" redact:"url"`
	}
	bedrockSettings struct {
		Region  string `env:"AWS_REGION"`
		profile string // a named instance's aws_profile
		baseURL string // a named instance's base_url
		// ownClient: the instance sets what needs a client of its own
		// (proxy_url, ca_file, headers, timeout); otherwise the SDK's
		// client, which honours AWS_CA_BUNDLE, carries its calls.
		ownClient bool
	}
	geminiSettings struct {
		APIKey  string `env:"GEMINI_API_KEY" redact:"secret"`
		BaseURL string `env:"GEMINI_BASE_URL" redact:"url"`
	}
	// vertexSettings: a catalogue's named vertex provider sets project,
	// location and credentials_file.
	vertexSettings struct {
		Project           string `env:"VERTEX_PROJECT"`
		Location          string `env:"VERTEX_LOCATION"`
		CredentialsFile   string `env:"VERTEX_CREDENTIALS_FILE"`
		GoogleCredentials string `env:"GOOGLE_APPLICATION_CREDENTIALS"` // used when CredentialsFile is empty
		BaseURL           string `env:"VERTEX_BASE_URL" redact:"url"`
	}
)

// providerType is one row of the registry.
type providerType struct {
	// name is what a catalogue's provider: says for the type's implicit
	// instance, and a named instance's type: says.
	name string
	// adapter is the adapter's package under internal/adapters/llm, whose
	// wire test and fuzz target the registry's test requires; empty for a
	// type with no upstream to speak to.
	adapter string
	// load reads and checks the type's settings from the environment,
	// returning every problem, one line each.
	load func(environ map[string]string) (any, []string)
	// build makes the adapter from the loaded settings and its link to the
	// upstream, or says which setting is missing.
	build func(ctx context.Context, settings any, l link) (ports.Provider, error)
	// catalogue is what the catalogue checks a named instance of the type
	// against: the keys it accepts and the type's own rules.
	catalogue infra.ProviderType
	// fromInstance makes the type's settings from a named instance and its
	// key (read from api_key_env or api_key_file).
	fromInstance func(p infra.ProviderInstance, key string) any
}

// link is how an adapter reaches its upstream: its own bound on a call
// (adapterTimeout) and, for a named instance, the instance's own HTTP
// client (nil: the adapter's default client).
type link struct {
	timeout time.Duration
	client  *http.Client
}

// typeSpec is a registry row's parts for settings of type S.
type typeSpec[S any] struct {
	// check checks the settings read from the environment, one line each.
	check func(S) []string
	// missing says which setting the adapter needs and S lacks, or returns
	// nil; nil needs nothing. It is checked with the catalogue, before
	// anything starts, for the type's implicit instance when a model uses
	// it, and again before build.
	missing func(S) error
	// build makes the adapter from settings missing found whole.
	build func(context.Context, S, link) (ports.Provider, error)
	// keys are the keys a named instance of the type accepts besides name
	// and type (infra.HTTPKeys, infra.CapKeys and the type's own).
	keys []string
	// checkInstance checks a named instance for the type (a required key
	// missing), one line each, starting with the key; nil adds nothing.
	checkInstance func(infra.ProviderInstance) []string
	// instance makes the settings of a named instance, given its key.
	instance func(p infra.ProviderInstance, key string) S
}

// register makes a registry row whose settings are the struct S.
func register[S any](name, adapter string, spec typeSpec[S]) providerType {
	return providerType{
		name: name, adapter: adapter,
		load: func(environ map[string]string) (any, []string) {
			var s S
			problems := infra.ParseSettings(&s, environ)
			for _, p := range spec.check(s) {
				// A variable that did not parse is reported once, by ParseSettings.
				variable, _, _ := strings.Cut(p, "=")
				if !slices.ContainsFunc(problems, func(q string) bool { return strings.HasPrefix(q, variable+"=") }) {
					problems = append(problems, p)
				}
			}
			return s, problems
		},
		build: func(ctx context.Context, s any, l link) (ports.Provider, error) {
			if err := spec.lacks(s.(S)); err != nil {
				return nil, err
			}
			return spec.build(ctx, s.(S), l)
		},
		catalogue: infra.ProviderType{Name: name, Keys: spec.keys, Check: spec.checkInstance,
			Implicit: func(environ map[string]string) error {
				var s S
				_ = infra.ParseSettings(&s, environ) // its problems are the environment's, reported with it
				return spec.lacks(s)
			}},
		fromInstance: func(p infra.ProviderInstance, key string) any { return spec.instance(p, key) },
	}
}

// lacks is spec.missing, nil when the type needs nothing.
func (spec typeSpec[S]) lacks(s S) error {
	if spec.missing == nil {
		return nil
	}
	return spec.missing(s)
}

// buildInstance makes the adapter of a named instance: its key from the
// environment or its file, its own HTTP client (proxy, CA, headers, the
// timeout to the response headers), then the type's constructor.
func (t providerType) buildInstance(ctx context.Context, p infra.ProviderInstance, environ map[string]string, timeout time.Duration) (ports.Provider, error) {
	key, err := p.APIKey(environ)
	if err != nil {
		return nil, err
	}
	client, err := llm.NewHTTPClientWith(llm.ClientOptions{ProxyURL: p.ProxyURL, CAFile: p.CAFile,
		Headers: p.CanonicalHeaders(), ResponseHeaderTimeout: p.Timeout})
	if err != nil {
		return nil, err
	}
	return t.build(ctx, t.fromInstance(p, key), link{timeout: timeout, client: client})
}

// catalogueTypes are the registry's types as the catalogue checks them.
func catalogueTypes() []infra.ProviderType {
	out := make([]infra.ProviderType, len(registry))
	for i, t := range registry {
		out[i] = t.catalogue
	}
	return out
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

// providerSettings are every provider type's settings, by type name, and
// the environment they were read from, where named instances find their
// keys (api_key_env).
type providerSettings struct {
	byType  map[string]any
	environ map[string]string
}

// loadProviderSettings reads every type's settings from environ, so that a
// bad value is reported at start whether or not the catalogue uses the type.
func loadProviderSettings(environ map[string]string) (providerSettings, []string) {
	out := providerSettings{byType: make(map[string]any, len(registry)), environ: environ}
	var problems []string
	for _, t := range registry {
		s, p := t.load(environ)
		out.byType[t.name] = s
		problems = append(problems, p...)
	}
	return out, problems
}

// redacted returns every provider setting as VARIABLE → value, secrets hidden.
func (ps providerSettings) redacted() map[string]string {
	out := make(map[string]string)
	for _, s := range ps.byType {
		for k, v := range infra.RedactedSettings(s) {
			out[k] = v
		}
	}
	return out
}

// loadCatalogue loads the catalogue at path (CATALOGUE_FILE; empty, the
// built-in mock catalogue) and checks it whole against the registry, with
// the credentials it names from the environment ps was read from: every
// named instance's key, used by a model or not, and the settings of each
// type's implicit instance a model uses. Every problem is a line of the
// *infra.ConfigError. It is the one check of the catalogue: serve and
// config run it before anything starts (loadConfiguration), and a reload
// runs it on the new file.
func loadCatalogue(path string, ps providerSettings) (infra.Catalogue, error) {
	return infra.LoadCatalogueFile(path, catalogueTypes(), ps.environ)
}

// newCatalogue loads CATALOGUE_FILE for a command that needs only its
// models (the keys commands): checked as loadCatalogue checks it, but for
// the keys and settings of its providers, which such a command never uses.
func newCatalogue(cfg infra.Config) (infra.Catalogue, error) {
	return infra.LoadCatalogueFile(cfg.CatalogueFile, catalogueTypes(), nil)
}

// newProviders builds one adapter for each provider instance the
// catalogue's deployments use, each with its own client: a named instance
// from its entry in the catalogue, a type's implicit instance from the
// environment. It refuses to start when an instance lacks what it needs,
// naming every such problem on its own line.
func newProviders(ctx bootContext, cfg infra.Config, ps providerSettings, cat infra.Catalogue) (map[string]ports.Provider, error) {
	return buildProviders(ctx, cfg, ps, cat, func(string) ports.Provider { return nil })
}

// buildProviders is newProviders, taking the instances kept returns
// (non-nil) as they are: a reload keeps the instances whose settings did
// not change.
func buildProviders(ctx bootContext, cfg infra.Config, ps providerSettings, cat infra.Catalogue, kept func(name string) ports.Provider) (map[string]ports.Provider, error) {
	out := make(map[string]ports.Provider)
	var problems []string
	for _, name := range cat.Models.Providers() {
		var (
			p   ports.Provider
			err error
		)
		if p = kept(name); p != nil {
			out[name] = p
			continue
		}
		if j := slices.IndexFunc(cat.Providers, func(p infra.ProviderInstance) bool { return p.Name == name }); j >= 0 {
			inst := cat.Providers[j]
			i := slices.IndexFunc(registry, func(t providerType) bool { return t.name == inst.Type })
			p, err = registry[i].buildInstance(ctx, inst, ps.environ, adapterTimeout(cfg))
		} else if i := slices.IndexFunc(registry, func(t providerType) bool { return t.name == name }); i >= 0 {
			p, err = registry[i].build(ctx, ps.byType[name], link{timeout: adapterTimeout(cfg)})
		} else { // LoadCatalogueFile refuses these; a hand-made catalogue may not
			err = fmt.Errorf("unknown; known providers are %s", strings.Join(providerNames(), ", "))
		}
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
