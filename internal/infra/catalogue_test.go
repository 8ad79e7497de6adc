package infra

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/domain"
)

// writeCatalogue writes a catalogue file and returns its path.
func writeCatalogue(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalogue.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadCatalogueExample(t *testing.T) {
	cat, err := LoadCatalogue("../../deploy/catalogue.example.yaml", []string{"mock", "openai", "azure", "anthropic", "bedrock"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cat.Providers(), ","); got != "anthropic,azure-west,bedrock-us,mock,openai-main,vllm-fleet" {
		t.Errorf("providers = %s", got)
	}
	mini, err := cat.Resolve("mini")
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Model{
		Name: "gpt-4o-mini", Type: domain.ModelChat, Provider: "openai-main", Upstream: "gpt-4o-mini",
		Price:           domain.Price{InputPerMillion: 150_000, OutputPerMillion: 600_000, CacheReadPerMillion: 75_000},
		MaxOutputTokens: 16384, Aliases: []string{"mini"}, Fallbacks: []string{"claude-haiku", "bedrock-claude"},
	}
	if !equalModels(mini, want) {
		t.Errorf("mini = %+v\nwant %+v", mini, want)
	}
	var chain []string
	for _, m := range cat.Chain(mini) {
		chain = append(chain, m.Provider+":"+m.Upstream)
	}
	if got := strings.Join(chain, " "); got != "openai-main:gpt-4o-mini anthropic:claude-3-5-haiku-latest bedrock-us:anthropic.claude-3-5-sonnet-20240620-v1:0" {
		t.Errorf("chain = %s", got)
	}
	if !slices.Equal(mini.Deployments, []domain.Deployment{{Provider: "openai-main", Upstream: "gpt-4o-mini", Weight: 3}, {Provider: "azure-west", Upstream: "my-4o-mini-deployment", Weight: 1}}) {
		t.Errorf("mini's deployments = %+v", mini.Deployments)
	}
	haiku, err := cat.Resolve("haiku")
	if want := (domain.Price{InputPerMillion: 800_000, OutputPerMillion: 4_000_000, CacheReadPerMillion: 80_000, CacheWritePerMillion: 1_000_000}); err != nil || haiku.Price != want {
		t.Errorf("haiku's price = %+v, %v; want %+v", haiku.Price, err, want)
	}
	for name, upstream := range map[string]string{"titan-embed": "amazon.titan-embed-text-v2:0", "llama-local": "llama3.1:8b", "embed": "text-embedding-3-small"} {
		m, err := cat.Resolve(name)
		if err != nil || m.Upstream != upstream {
			t.Errorf("Resolve(%q) = %+v, %v; want upstream %s", name, m, err, upstream)
		}
	}
}

func equalModels(a, b domain.Model) bool {
	return a.Name == b.Name && a.Type == b.Type && a.Provider == b.Provider && a.Upstream == b.Upstream &&
		a.Price == b.Price && a.MaxOutputTokens == b.MaxOutputTokens &&
		slices.Equal(a.Aliases, b.Aliases) && slices.Equal(a.Fallbacks, b.Fallbacks)
}

func TestLoadCatalogueDefault(t *testing.T) {
	cat, err := LoadCatalogue("", providerTypes)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range cat.Models() {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, ","); got != "mock-chat,mock-embed" {
		t.Errorf("default models = %s", got)
	}
}

func TestLoadCataloguePricesAreExact(t *testing.T) {
	cases := []struct {
		written string
		want    domain.Micros
	}{
		{`"0.15"`, 150_000},
		{`0.15`, 150_000},
		{`0.1`, 100_000},
		{`'0.60'`, 600_000},
		{`3`, 3_000_000},
		{`"$2.5"`, 2_500_000},
		{`0.000001`, 1},
		{`"10000"`, 10_000 * domain.MicrosPerUSD},
	}
	for _, tc := range cases {
		path := writeCatalogue(t, "models:\n  - {name: m, type: embedding, provider: mock, price_per_million: {input: "+tc.written+"}}\n")
		cat, err := LoadCatalogue(path, providerTypes)
		if err != nil {
			t.Errorf("input price %s: %v", tc.written, err)
			continue
		}
		if m, _ := cat.Resolve("m"); m.Price.InputPerMillion != tc.want || m.Price.OutputPerMillion != 0 {
			t.Errorf("input price %s = %+v, want %d micros", tc.written, m.Price, tc.want)
		}
	}
}

func TestLoadCatalogueCachePrices(t *testing.T) {
	path := writeCatalogue(t, "models:\n"+
		"  - {name: a, type: chat, provider: mock, max_output_tokens: 1, price_per_million: {input: 3, output: 15, cache_read: \"0.30\", cache_write: 3.75}}\n"+
		"  - {name: b, type: chat, provider: mock, max_output_tokens: 1, price_per_million: {input: 3, output: 15}}\n")
	cat, err := LoadCatalogue(path, providerTypes)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cat.Resolve("a")
	if want := (domain.Price{InputPerMillion: 3_000_000, OutputPerMillion: 15_000_000, CacheReadPerMillion: 300_000, CacheWritePerMillion: 3_750_000}); a.Price != want {
		t.Errorf("a's price = %+v, want %+v", a.Price, want)
	}
	b, _ := cat.Resolve("b")
	if b.Price.CacheRead() != 3_000_000 || b.Price.CacheWrite() != 3_000_000 {
		t.Errorf("without cache prices, cache tokens cost %d and %d, want the input price", b.Price.CacheRead(), b.Price.CacheWrite())
	}
}

// providerTypes stands for the provider registry's names: the catalogue
// accepts whatever list it is given.
var providerTypes = []string{"mock", "cumulus"}

func TestLoadCatalogueErrors(t *testing.T) {
	const ok = "  - {name: ok, type: chat, provider: mock, max_output_tokens: 10, free: true}\n"
	cases := []struct {
		name, yaml string
		want       []string // problems, after the file name and ": "
	}{
		{"unknown top-level key", "modelz: []\n", []string{`unknown field "modelz" (line 1)`}},
		{"no models", "models: []\n", []string{`models: the file defines no models`}},
		{"empty file", "", []string{`models: the file defines no models`}},
		{"models not a list", "models: 3\n", []string{`models: must be a list (line 1)`}},
		{"syntax", "models:\n  - {name: a\n", []string{`could not find flow mapping end token '}' (line 2)`}},
		{"every model's problems at once", "models:\n" + ok +
			"  - name: a\n    type: chat\n    provider: mock\n    max_output_tokens: 1\n    colour: red\n" +
			"  - name: b\n    type: image\n    provider: nimbus\n    price_per_million: {input: \"0.0000001\", output: [1]}\n" +
			"  - {name: c, type: chat, provider: mock, max_output_tokens: lots}\n" +
			"  - {name: d, type: chat, provider: mock, aliases: x}\n" +
			"  - [1, 2]\n" +
			"  - {name: e, type: embedding, provider: mock, max_output_tokens: 5, price_per_million: {input: 1, output: 2}}\n" +
			"  - {name: f, type: chat, provider: mock, max_output_tokens: 10, price_per_million: {input: 10000.000001, output: -1}}\n",
			[]string{
				`models[1] "a": unknown field "colour" (line 7)`,
				`models[1] "a": price_per_million: missing: give the input and output prices in USD per million tokens, or write free: true for a model that costs nothing`,
				`models[2] "b": type: "image" must be chat or embedding`,
				`models[2] "b": provider: "nimbus" must be mock or cumulus`,
				`models[2] "b": price_per_million.input: "0.0000001" has more than six decimals (USD per million tokens)`,
				`models[2] "b": price_per_million.output: must be a number of USD such as "0.15" (line 11)`,
				`models[3] "c": max_output_tokens: "lots" is not a whole number (line 12)`,
				`models[3] "c": price_per_million: missing: give the input and output prices in USD per million tokens, or write free: true for a model that costs nothing`,
				`models[4] "d": aliases: must be a list (line 13)`,
				`models[4] "d": price_per_million: missing: give the input and output prices in USD per million tokens, or write free: true for a model that costs nothing`,
				`models[5]: must be a mapping of keys to values (line 14)`,
				`models[6] "e": price_per_million.output: an embedding model produces no output tokens`,
				`models[6] "e": max_output_tokens: an embedding model produces no output tokens`,
				`models[7] "f": price_per_million.input: "10000.000001" is more than $10000.000000 per million tokens`,
				`models[7] "f": price_per_million.output: "-1" is not a dollar amount (USD per million tokens)`,
				`models[4] "d": max_output_tokens: must be positive`,
			}},
		{"a price is required", "models:\n" + ok +
			"  - {name: a, type: chat, provider: mock, max_output_tokens: 1}\n" +
			"  - {name: b, type: chat, provider: mock, max_output_tokens: 1, price_per_million: {input: 1}}\n" +
			"  - {name: c, type: embedding, provider: mock}\n" +
			"  - {name: d, type: chat, provider: mock, max_output_tokens: 1, price_per_million: {input: 0, output: 0}}\n" +
			"  - {name: e, type: chat, provider: mock, max_output_tokens: 1, free: true, price_per_million: {input: 1, output: 2}}\n",
			[]string{
				`models[1] "a": price_per_million: missing: give the input and output prices in USD per million tokens, or write free: true for a model that costs nothing`,
				`models[2] "b": price_per_million: missing: give the input and output prices in USD per million tokens, or write free: true for a model that costs nothing`,
				`models[3] "c": price_per_million: missing: give the input price in USD per million tokens, or write free: true for a model that costs nothing`,
				`models[4] "d": price_per_million: every price is zero: write free: true to serve a model at no cost`,
				`models[5] "e": free: true, but price_per_million is not zero: keep one of them`,
			}},
		{"cache prices", "models:\n" + ok +
			"  - {name: a, type: chat, provider: mock, max_output_tokens: 1, price_per_million: {input: 1, output: 2, cache_read: 0, cache_write: cheap}}\n" +
			"  - {name: b, type: embedding, provider: mock, price_per_million: {input: 1, cache_read: \"0.1\"}}\n" +
			"  - {name: c, type: chat, provider: mock, max_output_tokens: 1, price_per_million: {input: 1, output: 2, cache_write: \"1.0000001\", reasoning: 3}}\n",
			[]string{
				`models[1] "a": price_per_million.cache_read: must be more than zero; leave it out to charge these tokens the input price`,
				`models[1] "a": price_per_million.cache_write: "cheap" is not a dollar amount (USD per million tokens)`,
				`models[2] "b": price_per_million: an embedding model has no prompt cache: leave out cache_read and cache_write`,
				`models[3] "c": price_per_million: unknown field "reasoning" (line 5)`,
			}},
		{"cross-model problems from the domain", "models:\n" + ok + "  - {name: a, type: chat, provider: mock, max_output_tokens: 1, free: true, fallbacks: [nope]}\n",
			[]string{`models[1] "a": fallbacks: fallback "nope" is not in the catalogue`}},
		{"one model with several faults reports each on its own line", "models:\n" + ok +
			"  - {name: g, type: image, provider: nimbus, colour: red, max_output_tokens: lots, fallbacks: [nope], aliases: [ok]}\n" +
			"  - {type: chat, provider: mock, free: true}\n",
			[]string{
				`models[1] "g": unknown field "colour" (line 3)`,
				`models[1] "g": max_output_tokens: "lots" is not a whole number (line 3)`,
				`models[1] "g": type: "image" must be chat or embedding`,
				`models[1] "g": provider: "nimbus" must be mock or cumulus`,
				`models[2]: name: a model has no name`,
				`models[1] "g": aliases: alias "ok" is already a model name or alias`,
				`models[1] "g": fallbacks: fallback "nope" is not in the catalogue`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeCatalogue(t, tc.yaml)
			_, err := LoadCatalogue(path, providerTypes)
			wantProblems(t, err, path, tc.want)
		})
	}
}

func TestLoadCatalogueMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := LoadCatalogue(path, providerTypes)
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0] != `CATALOGUE_FILE="`+path+`": no such file or directory` {
		t.Fatalf("LoadCatalogue(missing) = %v", err)
	}
}

// testTypes are provider types as the registry describes them to the
// catalogue: an HTTP type that needs a key, and one with keys of its own.
var testTypes = []ProviderType{
	{Name: "mock", Keys: CapKeys},
	{Name: "cumulus", Keys: append(slices.Clone(HTTPKeys), "region"), Check: func(p ProviderInstance) []string {
		if p.Region == "" {
			return []string{"region: is required for type cumulus"}
		}
		return nil
	}},
}

func TestLoadCatalogueNamedProviders(t *testing.T) {
	ca := writeTestCA(t)
	path := writeCatalogue(t, `
circuit_breaker: {failures: 5, cooldown: 1m}
providers:
  - name: east
    type: cumulus
    base_url: https://east.example.com/v1
    api_key_env: EAST_KEY
    headers: {X-Org: org-1}
    timeout: 30s
    proxy_url: http://proxy:3128
    ca_file: `+ca+`
    max_concurrency: 8
    rpm: 100
    tpm: 5000
    region: east-1
  - {name: west, type: cumulus, region: west-2}
models:
  - name: m
    type: chat
    routing: least-busy
    deployments:
      - {provider: east, upstream: m-east, weight: 3}
      - {provider: west}
      - {provider: mock, upstream: m-mock}
    max_output_tokens: 10
    free: true
  - {name: single, type: chat, provider: cumulus, upstream: s, max_output_tokens: 10, free: true}
`)
	f, err := LoadCatalogueFile(path, testTypes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Providers) != 2 {
		t.Fatalf("providers = %+v", f.Providers)
	}
	if f.Breaker != (domain.BreakerSettings{Failures: 5, Cooldown: time.Minute}) || f.Caps()["east"] != (domain.ProviderCaps{MaxConcurrency: 8, RPM: 100, TPM: 5000}) {
		t.Errorf("breaker = %+v, caps = %+v", f.Breaker, f.Caps())
	}
	east := f.Providers[0]
	if east.Name != "east" || east.APIKeyEnv != "EAST_KEY" || east.Timeout != 30*time.Second || east.MaxConcurrency != 8 ||
		east.RPM != 100 || east.TPM != 5000 || east.Region != "east-1" || east.CanonicalHeaders().Get("x-org") != "org-1" {
		t.Errorf("east = %+v", east)
	}
	m, err := f.Models.Resolve("m")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Deployment{{Provider: "east", Upstream: "m-east", Weight: 3}, {Provider: "west", Upstream: "m", Weight: 1}, {Provider: "mock", Upstream: "m-mock", Weight: 1}}
	if !slices.Equal(m.Deployments, want) || m.Routing != domain.RoutingLeastBusy || m.Provider != "east" {
		t.Errorf("m = %+v", m)
	}
	single, _ := f.Models.Resolve("single")
	if !slices.Equal(single.Deployments, []domain.Deployment{{Provider: "cumulus", Upstream: "s", Weight: 1}}) || single.Routing != domain.RoutingWeighted {
		t.Errorf("single = %+v", single)
	}
	if got := strings.Join(f.Models.Providers(), ","); got != "cumulus,east,mock,west" {
		t.Errorf("providers used = %s", got)
	}
}

func TestLoadCatalogueModelLimits(t *testing.T) {
	path := writeCatalogue(t, "models:\n  - {name: m, type: chat, provider: mock, max_output_tokens: 1, free: true, rpm: 60, tpm: 9000, max_concurrency: 4}\n"+
		"  - {name: n, type: chat, provider: mock, max_output_tokens: 1, free: true}\n")
	f, err := LoadCatalogueFile(path, testTypes, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := f.Models.Resolve("m")
	n, _ := f.Models.Resolve("n")
	if m.Limits != (domain.Limits{RPM: 60, TPM: 9000, MaxConcurrent: 4}) || n.Limits != (domain.Limits{}) {
		t.Fatalf("limits: m %+v, n %+v; want m's rpm 60, tpm 9000, 4 in flight and none on n", m.Limits, n.Limits)
	}
}

func TestLoadCatalogueNamedProviderErrors(t *testing.T) {
	const model = "models:\n  - {name: ok, type: chat, provider: mock, max_output_tokens: 10, free: true}\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"a literal key is refused", "providers:\n  - {name: a, type: cumulus, region: r, api_key: sk-123}\n" + model,
			[]string{`providers[0] "a": api_key: secrets never go in the catalogue; name the variable that holds the key with api_key_env, or its file with api_key_file (line 2)`}},
		{"a credential header is refused", "providers:\n  - {name: a, type: cumulus, region: r, headers: {Authorization: Bearer x}}\n" + model,
			[]string{`providers[0] "a": headers: Authorization carries a credential; secrets never go in the catalogue: use api_key_env or api_key_file`}},
		{"a type's name is its implicit instance's", "providers:\n  - {name: cumulus, type: cumulus, region: r}\n" + model,
			[]string{`providers[0] "cumulus": name: "cumulus" is a provider type, whose name stands for its implicit instance (settings from the environment); give this instance a name of its own`}},
		{"every problem of an entry on its own line", "providers:\n" +
			"  - {name: a, type: cumulus, base_url: ftp://x, proxy_url: proxy, timeout: soon, api_key_env: sk-live-123, api_key_file: /nonexistent/key, rpm: -1, colour: red}\n" +
			"  - {name: a, type: nimbus}\n" +
			"  - {name: b, type: mock, region: r, tpm: lots}\n" + model,
			[]string{
				`providers[0] "a": unknown field "colour" (line 2)`,
				`providers[0] "a": timeout: "soon" is not a duration such as 60s`,
				`providers[0] "a": base_url: "ftp://x" must be an http:// or https:// URL`,
				`providers[0] "a": proxy_url: "***" must be an http:// or https:// URL`,
				`providers[0] "a": api_key_env, api_key_file: give one of them`,
				`providers[0] "a": api_key_env: "sk-live-123" is not an environment variable's name (it names the variable that holds the key, not the key)`,
				`providers[0] "a": api_key_file: stat /nonexistent/key: no such file or directory`,
				`providers[0] "a": rpm: must not be negative`,
				`providers[0] "a": region: is required for type cumulus`,
				`providers[1] "a": type: "nimbus" must be mock or cumulus`,
				`providers[1] "a": name: the provider is defined twice`,
				`providers[2] "b": tpm: "lots" is not a whole number (line 4)`,
				`providers[2] "b": region: does not apply to type mock`,
			}},
		{"the breaker's settings are checked", "circuit_breaker: {failures: 0, cooldown: soon}\n" + model,
			[]string{`circuit_breaker: failures: must be at least 1`, `circuit_breaker: cooldown: "soon" must be a positive duration such as 30s`}},
		{"deployments are checked", "providers:\n  - {name: a, type: cumulus, region: r}\nmodels:\n" +
			"  - {name: m, type: chat, max_output_tokens: 1, free: true, routing: fastest, deployments: [{provider: a, weight: 0}, {provider: nowhere}]}\n" +
			"  - {name: n, type: chat, max_output_tokens: 1, free: true, provider: a, deployments: [{provider: a}]}\n" +
			"  - {name: o, type: chat, max_output_tokens: 1, free: true, deployments: [{provider: a, upstream: x}, {provider: a, upstream: x}]}\n" +
			"  - {name: p, type: chat, max_output_tokens: 1, free: true}\n",
			[]string{
				`models[0] "m": deployments[0]: weight: must be at least 1`,
				`models[0] "m": deployments[1]: provider: "nowhere" must be mock, cumulus or a`,
				`models[0] "m": routing: "fastest" must be weighted, least-busy, latency or ordered`,
				`models[1] "n": deployments: give either provider and upstream or deployments, not both`,
				`models[2] "o": deployments: deployments[1]: a/x is listed twice`,
				`models[3] "p": provider: is required (or deployments)`,
			}},
		{"a model's limits are checked", "models:\n  - {name: m, type: chat, provider: mock, max_output_tokens: 1, free: true, rpm: -1, max_concurrency: -2, tpm: many}\n",
			[]string{
				`models[0] "m": tpm: "many" is not a whole number (line 2)`,
				`models[0] "m": max_concurrency: must not be negative`,
				`models[0] "m": rpm: must not be negative`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeCatalogue(t, tc.yaml)
			_, err := LoadCatalogueFile(path, testTypes, nil)
			wantProblems(t, err, path, tc.want)
		})
	}
}

// writeTestCA writes a fresh self-signed certificate, as a ca_file holds,
// and returns its path.
func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantProblems checks that err is a *ConfigError listing exactly want, each
// line after the file's name.
func wantProblems(t *testing.T, err error, path string, want []string) {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("loading the catalogue = %v, want a *ConfigError", err)
	}
	lines := make([]string, len(want))
	for i, w := range want {
		lines[i] = path + ": " + w
	}
	if !slices.Equal(ce.Problems, lines) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(ce.Problems, "\n"), strings.Join(lines, "\n"))
	}
}

// A whole number written with a fraction (1.5, "2.5") is refused, never
// cut to the number before the point.
func TestLoadCatalogueWholeNumbers(t *testing.T) {
	path := writeCatalogue(t, "providers:\n  - {name: a, type: cumulus, region: r, rpm: 2.5}\n"+
		"circuit_breaker: {failures: 2.5}\n"+
		"models:\n"+
		"  - {name: m, type: chat, max_output_tokens: 100.7, free: true, tpm: \"3.5\", deployments: [{provider: a, weight: 1.5}]}\n")
	_, err := LoadCatalogue(path, providerTypes)
	wantProblems(t, err, path, []string{
		`providers[0] "a": rpm: "2.5" is not a whole number (line 2)`,
		`circuit_breaker: failures: "2.5" is not a whole number (line 3)`,
		`models[0] "m": max_output_tokens: "100.7" is not a whole number (line 5)`,
		`models[0] "m": tpm: "3.5" is not a whole number (line 5)`,
		`models[0] "m": deployments: weight: "1.5" is not a whole number (line 5)`,
	})

	path = writeCatalogue(t, "models:\n  - {name: m, type: chat, max_output_tokens: \"100\", free: true, rpm: 0, deployments: [{provider: mock, weight: 2}]}\n")
	cat, err := LoadCatalogue(path, providerTypes)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := cat.Resolve("m"); m.MaxOutputTokens != 100 || m.Deployments[0].Weight != 2 {
		t.Errorf("m = %+v, want max_output_tokens 100 and weight 2", m)
	}
}

// A model defined twice is reported at its second definition, the one to
// remove or rename, not at the first.
func TestLoadCatalogueDuplicateModelNamesTheSecondEntry(t *testing.T) {
	path := writeCatalogue(t, "models:\n"+
		"  - {name: a, type: chat, provider: mock, max_output_tokens: 1, free: true}\n"+
		"  - {name: b, type: chat, provider: mock, max_output_tokens: 1, free: true}\n"+
		"  - {name: a, type: chat, provider: mock, max_output_tokens: 1, free: true}\n")
	_, err := LoadCatalogue(path, providerTypes)
	wantProblems(t, err, path, []string{`models[2] "a": name: the model is defined twice (first as models[0])`})
}

// An instance named after a type adds no second entry of that name to the
// providers a model may name.
func TestLoadCatalogueProviderListNamesEachOnce(t *testing.T) {
	path := writeCatalogue(t, "providers:\n  - {name: cumulus, type: cumulus, region: r}\n"+
		"models:\n  - {name: m, type: chat, provider: nowhere, max_output_tokens: 1, free: true}\n")
	_, err := LoadCatalogue(path, providerTypes)
	wantProblems(t, err, path, []string{
		`providers[0] "cumulus": name: "cumulus" is a provider type, whose name stands for its implicit instance (settings from the environment); give this instance a name of its own`,
		`models[0] "m": provider: "nowhere" must be mock or cumulus`,
	})
}

// TestLoadCatalogueChecksCredentials: with the environment, every named
// instance's key is checked, used by a model or not (its variable set, its
// file readable and not empty), and each implicit instance a model uses
// for what it lacks; each problem is its own line, all at once, beside
// the file's other problems. Without it, only the files are read.
func TestLoadCatalogueChecksCredentials(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-key")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "key")
	if err := os.WriteFile(good, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	types := append(slices.Clone(testTypes), ProviderType{Name: "nimbus", Keys: HTTPKeys, Implicit: func(environ map[string]string) error {
		if environ["NIMBUS_KEY"] == "" {
			return errors.New("set NIMBUS_KEY")
		}
		return nil
	}})
	path := writeCatalogue(t, "providers:\n"+
		"  - {name: used, type: cumulus, region: r, api_key_env: USED_KEY}\n"+
		"  - {name: spare, type: cumulus, region: r,\n      api_key_env: NO_SUCH_VAR_XYZ}\n"+
		"  - {name: missing, type: cumulus, region: r, api_key_file: "+filepath.Join(dir, "nope")+"}\n"+
		"  - {name: blank, type: cumulus, region: r, api_key_file: "+empty+"}\n"+
		"  - {name: filed, type: cumulus, region: r, api_key_file: "+good+"}\n"+
		"models:\n"+
		"  - {name: m, type: chat, provider: used, max_output_tokens: 10, free: true}\n"+
		"  - {name: n, type: chat, max_output_tokens: 10, free: true, deployments: [{provider: mock}, {provider: nimbus}]}\n"+
		"  - {name: o, type: chat, provider: nimbus, max_output_tokens: 10, free: true}\n"+
		"  - {name: p, type: image, provider: mock, max_output_tokens: 10, free: true}\n")
	_, err := LoadCatalogueFile(path, types, map[string]string{"USED_KEY": "k"})
	wantProblems(t, err, path, []string{
		`providers[1] "spare": api_key_env: the variable NO_SUCH_VAR_XYZ is not set (line 4)`,
		`providers[2] "missing": api_key_file: stat ` + filepath.Join(dir, "nope") + `: no such file or directory`,
		`providers[3] "blank": api_key_file: ` + empty + ` is empty (line 6)`,
		`models[1] "n": deployments[1]: provider: "nimbus": set NIMBUS_KEY`,
		`models[3] "p": type: "image" must be chat or embedding`,
	})

	// Without the environment the variables are not read, nor the
	// implicit instances' settings; the files still are.
	_, err = LoadCatalogueFile(path, types, nil)
	wantProblems(t, err, path, []string{
		`providers[2] "missing": api_key_file: stat ` + filepath.Join(dir, "nope") + `: no such file or directory`,
		`providers[3] "blank": api_key_file: ` + empty + ` is empty (line 6)`,
		`models[3] "p": type: "image" must be chat or embedding`,
	})
}
