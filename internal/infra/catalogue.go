package infra

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/tidygate/tidygate/internal/domain"
)

// catalogueFile is the YAML shape of CATALOGUE_FILE; see
// deploy/catalogue.example.yaml.
type catalogueFile struct {
	Models []catalogueModel `yaml:"models"`
}

type catalogueModel struct {
	Name            string         `yaml:"name"`
	Type            string         `yaml:"type"`
	Provider        string         `yaml:"provider"`
	Upstream        string         `yaml:"upstream"`
	Price           cataloguePrice `yaml:"price_per_million"`
	MaxOutputTokens int            `yaml:"max_output_tokens"`
	Aliases         []string       `yaml:"aliases"`
	Fallbacks       []string       `yaml:"fallbacks"`
}

// cataloguePrice holds USD per million tokens as written in the file, so
// that "0.15" is parsed exactly rather than through a float.
type cataloguePrice struct {
	Input  yamlDecimal `yaml:"input"`
	Output yamlDecimal `yaml:"output"`
}

// yamlDecimal keeps a YAML scalar's text, whether it was quoted or not.
type yamlDecimal string

// UnmarshalYAML keeps the scalar's literal text.
func (d *yamlDecimal) UnmarshalYAML(b []byte) error {
	*d = yamlDecimal(strings.Trim(strings.TrimSpace(string(b)), `"'`))
	return nil
}

// LoadCatalogue reads the model catalogue from a YAML file, or returns the
// built-in mock catalogue when path is empty. Errors name the file, the model
// and the field, all problems at once.
func LoadCatalogue(path string) (*domain.Catalogue, error) {
	if path == "" {
		return domain.NewCatalogue(domain.DefaultModels())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CATALOGUE_FILE: %w", err)
	}
	var f catalogueFile
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("CATALOGUE_FILE %s: %s", path, yaml.FormatError(err, false, true))
	}
	if len(f.Models) == 0 {
		return nil, fmt.Errorf("CATALOGUE_FILE %s: no models", path)
	}
	var problems []string
	models := make([]domain.Model, 0, len(f.Models))
	for i, m := range f.Models {
		dm, errs := m.toDomain()
		for _, e := range errs {
			problems = append(problems, fmt.Sprintf("models[%d] %q: %s", i, m.Name, e))
		}
		models = append(models, dm)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("CATALOGUE_FILE %s:\n%s", path, strings.Join(problems, "\n"))
	}
	cat, err := domain.NewCatalogue(models)
	if err != nil {
		return nil, fmt.Errorf("CATALOGUE_FILE %s: %w", path, err)
	}
	return cat, nil
}

func (m catalogueModel) toDomain() (domain.Model, []string) {
	var errs []string
	out := domain.Model{
		Name: m.Name, Provider: m.Provider, Upstream: m.Upstream, MaxOutputTokens: m.MaxOutputTokens,
		Aliases: m.Aliases, Fallbacks: m.Fallbacks,
	}
	switch m.Type {
	case "chat":
		out.Type = domain.ModelChat
	case "embedding":
		out.Type = domain.ModelEmbedding
	default:
		errs = append(errs, fmt.Sprintf("type %q: must be chat or embedding", m.Type))
	}
	switch m.Provider {
	case "mock", "openai", "anthropic", "bedrock":
	default:
		errs = append(errs, fmt.Sprintf("provider %q: must be mock, openai, anthropic or bedrock", m.Provider))
	}
	var err error
	if out.Price.InputPerMillion, err = parsePrice(m.Price.Input); err != nil {
		errs = append(errs, "price_per_million.input: "+err.Error())
	}
	if out.Price.OutputPerMillion, err = parsePrice(m.Price.Output); err != nil {
		errs = append(errs, "price_per_million.output: "+err.Error())
	}
	if m.MaxOutputTokens < 0 {
		errs = append(errs, "max_output_tokens: must not be negative")
	}
	return out, errs
}

func parsePrice(d yamlDecimal) (domain.Micros, error) {
	if d == "" {
		return 0, nil
	}
	m, err := domain.ParseUSD(string(d))
	if err != nil {
		return 0, errors.New(err.Error() + " (USD per million tokens, at most six decimals)")
	}
	return m, nil
}
