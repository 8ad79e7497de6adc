package infra

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestLoadCatalogueExample(t *testing.T) {
	cat, err := LoadCatalogue("../../deploy/catalogue.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := cat.Resolve("mini")
	if err != nil || m.Name != "gpt-4o-mini" || m.Price.InputPerMillion != 150_000 || m.Price.OutputPerMillion != 600_000 {
		t.Fatalf("mini = %+v, %v", m, err)
	}
	if got := cat.Providers(); strings.Join(got, ",") != "anthropic,bedrock,mock,openai" {
		t.Fatalf("providers = %v", got)
	}
}

func TestLoadCatalogueDefault(t *testing.T) {
	cat, err := LoadCatalogue("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Resolve("mock-embed"); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCatalogueErrors(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown field": {"models:\n  - name: a\n    type: chat\n    provider: mock\n    max_output_tokens: 1\n    colour: red\n", "colour"},
		"bad type":      {"models:\n  - name: a\n    type: image\n    provider: mock\n", `type "image"`},
		"bad provider":  {"models:\n  - name: a\n    type: chat\n    provider: azure\n    max_output_tokens: 1\n", `provider "azure"`},
		"bad price":     {"models:\n  - name: a\n    type: chat\n    provider: mock\n    max_output_tokens: 1\n    price_per_million: {input: 0.0000001}\n", "price_per_million.input"},
		"no models":     {"models: []\n", "no models"},
		"cross-model":   {"models:\n  - name: a\n    type: chat\n    provider: mock\n    max_output_tokens: 1\n    fallbacks: [b]\n", `fallback "b"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCatalogue(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %q and the file", err, tc.want)
			}
		})
	}
	if _, err := LoadCatalogue("/does/not/exist.yaml"); err == nil {
		t.Fatal("a missing file was accepted")
	}
}

func TestPricesAreExact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	yaml := "models:\n  - name: a\n    type: chat\n    provider: mock\n    max_output_tokens: 1\n    price_per_million: {input: 0.1, output: \"0.3\"}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := LoadCatalogue(path)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := cat.Resolve("a")
	if m.Price != (domain.Price{InputPerMillion: 100_000, OutputPerMillion: 300_000}) {
		t.Fatalf("price = %+v", m.Price)
	}
}
