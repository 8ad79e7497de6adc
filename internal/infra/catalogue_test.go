package infra

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
	cat, err := LoadCatalogue("../../deploy/catalogue.example.yaml", []string{"mock", "openai", "anthropic", "bedrock"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cat.Providers(), ","); got != "anthropic,bedrock,mock,openai" {
		t.Errorf("providers = %s", got)
	}
	mini, err := cat.Resolve("mini")
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Model{
		Name: "gpt-4o-mini", Type: domain.ModelChat, Provider: "openai", Upstream: "gpt-4o-mini",
		Price:           domain.Price{InputPerMillion: 150_000, OutputPerMillion: 600_000},
		MaxOutputTokens: 16384, Aliases: []string{"mini"}, Fallbacks: []string{"claude-haiku", "bedrock-claude"},
	}
	if !equalModels(mini, want) {
		t.Errorf("mini = %+v\nwant %+v", mini, want)
	}
	var chain []string
	for _, m := range cat.Chain(mini) {
		chain = append(chain, m.Provider+":"+m.Upstream)
	}
	if got := strings.Join(chain, " "); got != "openai:gpt-4o-mini anthropic:claude-3-5-haiku-latest bedrock:anthropic.claude-3-5-sonnet-20240620-v1:0" {
		t.Errorf("chain = %s", got)
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
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("LoadCatalogue = %v, want a *ConfigError", err)
			}
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = path + ": " + w
			}
			if !slices.Equal(ce.Problems, want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(ce.Problems, "\n"), strings.Join(want, "\n"))
			}
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
