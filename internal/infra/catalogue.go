package infra

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/tidygate/tidygate/internal/domain"
)

// maxPricePerMillion bounds a price, in USD per million tokens: far above any
// real model, it catches typos and keeps cost arithmetic far from overflow.
const maxPricePerMillion = 10_000 * domain.MicrosPerUSD

// catalogueFile is the YAML shape of CATALOGUE_FILE (see
// deploy/catalogue.example.yaml). Each model is kept as YAML and decoded on
// its own, so that the problems of every model are reported at once.
type catalogueFile struct {
	Providers      []yamlNode `yaml:"providers"`
	Models         []yamlNode `yaml:"models"`
	CircuitBreaker yamlNode   `yaml:"circuit_breaker"` // a catalogueBreaker, decoded on its own
}

// catalogueBreaker is the file's circuit_breaker.
type catalogueBreaker struct {
	Failures *int   `yaml:"failures"`
	Cooldown string `yaml:"cooldown"`
}

// decodeBreaker decodes the file's circuit_breaker, when it has one, and
// returns its settings, defaults filled in, and what is wrong with them.
func decodeBreaker(node ast.Node) (domain.BreakerSettings, []string) {
	if node == nil {
		return domain.DefaultBreaker(), nil
	}
	var b catalogueBreaker
	if err := decodeStrict(node, &b); err != nil {
		text := yamlProblem(err)
		if !strings.HasPrefix(text, "circuit_breaker:") {
			text = "circuit_breaker: " + text
		}
		return domain.DefaultBreaker(), []string{text}
	}
	return b.breaker()
}

// breaker returns the breaker's settings, defaults filled in, and what is
// wrong with them.
func (b *catalogueBreaker) breaker() (domain.BreakerSettings, []string) {
	out := domain.DefaultBreaker()
	if b == nil {
		return out, nil
	}
	var problems []string
	if b.Failures != nil {
		out.Failures = *b.Failures
		if out.Failures < 1 {
			problems = append(problems, "circuit_breaker: failures: must be at least 1")
		}
	}
	if b.Cooldown != "" {
		d, err := time.ParseDuration(b.Cooldown)
		if err != nil || d <= 0 {
			problems = append(problems, fmt.Sprintf("circuit_breaker: cooldown: %q must be a positive duration such as 30s", b.Cooldown))
		}
		out.Cooldown = d
	}
	return out, problems
}

// Catalogue is a catalogue file, loaded and validated: the models, and the
// named provider instances their deployments may use besides the types'
// implicit instances (a type's name, its settings from the environment).
// It is a value: a reload makes a new one.
type Catalogue struct {
	Models    *domain.Catalogue
	Providers []ProviderInstance // in the file's order
	Breaker   domain.BreakerSettings
}

// Caps returns the named instances' account caps, by name.
func (c Catalogue) Caps() map[string]domain.ProviderCaps {
	out := make(map[string]domain.ProviderCaps, len(c.Providers))
	for _, p := range c.Providers {
		out[p.Name] = domain.ProviderCaps{MaxConcurrency: p.MaxConcurrency, RPM: p.RPM, TPM: p.TPM}
	}
	return out
}

// catalogueModel is one entry of catalogueFile.
type catalogueModel struct {
	Name            string                `yaml:"name"`
	Type            string                `yaml:"type"`
	Provider        string                `yaml:"provider"`
	Upstream        string                `yaml:"upstream"`
	Deployments     []catalogueDeployment `yaml:"deployments"`
	Routing         string                `yaml:"routing"`
	Price           cataloguePrice        `yaml:"price_per_million"`
	MaxOutputTokens int                   `yaml:"max_output_tokens"`
	Aliases         []string              `yaml:"aliases"`
	Fallbacks       []string              `yaml:"fallbacks"`
	Group           string                `yaml:"group"`           // the model group, for budgets on group:NAME
	BudgetFallback  string                `yaml:"budget_fallback"` // the cheaper model that answers when a budget has no room
	Free            bool                  `yaml:"free"`            // the model costs nothing; required when it has no price
	MaxConcurrency  int                   `yaml:"max_concurrency"` // calls asked of the model in flight at once, every caller's
	RPM             int                   `yaml:"rpm"`             // requests per minute asked of the model, every caller's
	TPM             int                   `yaml:"tpm"`             // tokens per minute asked of the model, every caller's
}

// catalogueDeployment is one of a model's deployments; Weight is nil when
// the file gives none (it is then 1).
type catalogueDeployment struct {
	Provider string `yaml:"provider"`
	Upstream string `yaml:"upstream"`
	Weight   *int   `yaml:"weight"`
}

// cataloguePrice holds USD per million tokens as written in the file, so that
// 0.15 and "0.15" are both parsed exactly by domain.ParseUSD, never as floats.
// The cache prices are optional: absent, cache reads and writes cost the
// input price.
type cataloguePrice struct {
	Input      yamlNode `yaml:"input"`
	Output     yamlNode `yaml:"output"`
	CacheRead  yamlNode `yaml:"cache_read"`
	CacheWrite yamlNode `yaml:"cache_write"`
}

// yamlNode keeps a YAML value undecoded; node is nil when the key is absent.
type yamlNode struct{ node ast.Node }

// UnmarshalYAML keeps the node for later decoding.
func (n *yamlNode) UnmarshalYAML(node ast.Node) error {
	n.node = node
	return nil
}

// LoadCatalogue reads the model catalogue from a YAML file, or returns the
// built-in mock catalogue when path is empty. A model's provider must be one
// of providers, the provider types the registry in cmd/app knows, or a
// named instance of one. It is LoadCatalogueFile for a caller that needs
// only the models.
func LoadCatalogue(path string, providers []string) (*domain.Catalogue, error) {
	types := make([]ProviderType, len(providers))
	for i, name := range providers {
		types[i] = ProviderType{Name: name, Keys: allProviderKeys}
	}
	f, err := LoadCatalogueFile(path, types, nil)
	return f.Models, err
}

// allProviderKeys are every key an instance may have besides name and type.
var allProviderKeys = append(slices.Clone(HTTPKeys), "region", "aws_profile", "api_version", "project", "location", "credentials_file")

// LoadCatalogueFile reads the catalogue from a YAML file (see
// docs/CATALOGUE.md), or returns the built-in mock catalogue when path is
// empty. types are the provider types the registry in cmd/app knows; a
// model's or a deployment's provider must be one of them (its implicit
// instance) or a named instance from the file's providers. Unknown fields
// are errors. environ is the environment the providers' credentials come
// from: every named instance's api_key_env must be set in it, whether or
// not a model uses the instance, and every implicit instance a model uses
// must have the settings it needs (ProviderType.Implicit); nil checks
// neither, for a command that needs only the models. A *ConfigError lists
// every problem, one line each, naming the file, the entry and the field.
func LoadCatalogueFile(path string, types []ProviderType, environ map[string]string) (Catalogue, error) {
	if path == "" {
		cat, err := domain.NewCatalogue(domain.DefaultModels())
		return Catalogue{Models: cat, Breaker: domain.DefaultBreaker()}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Catalogue{}, &ConfigError{Problems: []string{fmt.Sprintf("CATALOGUE_FILE=%q: %v", path, errors.Unwrap(err))}}
	}
	var f catalogueFile
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.DisallowUnknownField()); err != nil {
		return Catalogue{}, &ConfigError{Problems: []string{path + ": " + yamlProblem(err)}}
	}
	if len(f.Models) == 0 {
		return Catalogue{}, &ConfigError{Problems: []string{path + ": models: the file defines no models"}}
	}
	instances, named, problems := decodeProviders(path, f.Providers, types, environ)
	breaker, more := decodeBreaker(f.CircuitBreaker.node)
	for _, p := range more {
		problems = append(problems, path+": "+p)
	}
	providers := append(TypeNames(types), named...)
	models := make([]domain.Model, 0, len(f.Models))
	labels := map[string]string{}  // model name → its label, for the catalogue's own problems
	failed := map[[2]string]bool{} // model name and top-level key already reported
	var unnamed []string           // labels of the models without a name, in order
	first := map[string]int{}      // model name → the index of its first entry
	implicit := implicitCheck(types, environ)
	for i, n := range f.Models {
		m, errs := decodeModel(n.node, providers)
		label := fmt.Sprintf("%s: models[%d]", path, i)
		duplicate := "" // the problem of a second entry of the same name
		if m.Name != "" {
			label += fmt.Sprintf(" %q", m.Name)
			if j, seen := first[m.Name]; seen {
				duplicate = fmt.Sprintf("name: the model is defined twice (first as models[%d])", j)
			} else {
				first[m.Name] = i
				labels[m.Name] = label
			}
		} else {
			unnamed = append(unnamed, label)
		}
		errs = append(errs, implicit(m)...)
		whole := false // the entry is not a model at all
		for _, e := range errs {
			problems = append(problems, label+": "+e.text)
			failed[[2]string{m.Name, e.key}] = true
			if e.key == "deployments" { // the domain would miss them: a model with no provider
				failed[[2]string{m.Name, "provider"}] = true
			}
			whole = whole || e.key == ""
		}
		if whole {
			unnamed = unnamed[:len(unnamed)-1]
			continue
		}
		if duplicate != "" { // said here, on the entry to remove or rename
			problems = append(problems, label+": "+duplicate)
			continue
		}
		models = append(models, m)
	}
	cat, err := domain.NewCatalogue(models)
	var ce *domain.CatalogueError
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			if failed[[2]string{p.Model, p.Field}] {
				continue // said already, with the value that was wrong
			}
			label := labels[p.Model]
			if p.Model == "" && len(unnamed) > 0 {
				label, unnamed = unnamed[0], unnamed[1:]
			}
			problems = append(problems, label+": "+p.Field+": "+p.Message)
		}
	} else if err != nil {
		problems = append(problems, path+": "+err.Error())
	}
	if len(problems) > 0 {
		return Catalogue{}, &ConfigError{Problems: problems}
	}
	return Catalogue{Models: cat, Providers: instances, Breaker: breaker}, nil
}

// decodeProviders decodes the file's providers, each on its own, and
// returns the valid ones, the names of all (so that a model naming a faulty
// instance is not reported too) and every problem, labelled with the entry.
func decodeProviders(path string, nodes []yamlNode, types []ProviderType, environ map[string]string) (valid []ProviderInstance, names, problems []string) {
	seen := map[string]bool{}
	for i, n := range nodes {
		p, errs := decodeProvider(n.node, types, environ)
		label := fmt.Sprintf("%s: providers[%d]", path, i)
		if p.Name != "" {
			label += fmt.Sprintf(" %q", p.Name)
		}
		switch {
		case slices.Contains(TypeNames(types), p.Name):
			errs = append(errs, fmt.Sprintf("name: %q is a provider type, whose name stands for its implicit instance (settings from the environment); give this instance a name of its own", p.Name))
		case p.Name != "" && seen[p.Name]:
			errs = append(errs, "name: the provider is defined twice")
		}
		if p.Name != "" && !seen[p.Name] && !slices.Contains(TypeNames(types), p.Name) {
			names = append(names, p.Name)
		}
		seen[p.Name] = true
		for _, e := range errs {
			problems = append(problems, label+": "+e)
		}
		if len(errs) == 0 {
			valid = append(valid, p)
		}
	}
	return valid, names, problems
}

// implicitCheck returns the check of a model's implicit instances (the
// provider types it names) against environ: the first model that names a
// type whose implicit instance lacks a setting is told which, at the
// provider or deployment that names it; later ones are not told again.
// With environ nil it checks nothing.
func implicitCheck(types []ProviderType, environ map[string]string) func(domain.Model) []modelProblem {
	checked := map[string]bool{}
	return func(m domain.Model) []modelProblem {
		if environ == nil {
			return nil
		}
		uses := []struct{ at, provider string }{{"", m.Provider}}
		for j, d := range m.Deployments {
			uses = append(uses, struct{ at, provider string }{fmt.Sprintf("deployments[%d]: ", j), d.Provider})
		}
		var problems []modelProblem
		for _, u := range uses {
			i := slices.IndexFunc(types, func(t ProviderType) bool { return t.Name == u.provider })
			if i < 0 || types[i].Implicit == nil || checked[u.provider] {
				continue
			}
			checked[u.provider] = true
			if err := types[i].Implicit(environ); err != nil {
				// Its own key: no problem of the model's structure is one of these.
				problems = append(problems, modelProblem{"implicit", fmt.Sprintf("%sprovider: %q: %v", u.at, u.provider, err)})
			}
		}
		return problems
	}
}

// negativeCaps names the caps, a provider instance's or a model's
// (max_concurrency, rpm, tpm), that are negative: each must be 0 (no
// limit) or more.
func negativeCaps(maxConcurrency, rpm, tpm int) []string {
	var keys []string
	for _, c := range []struct {
		key string
		n   int
	}{{"max_concurrency", maxConcurrency}, {"rpm", rpm}, {"tpm", tpm}} {
		if c.n < 0 {
			keys = append(keys, c.key)
		}
	}
	return keys
}

// modelProblem is one problem of one model: the top-level key at fault
// and the line that describes it.
type modelProblem struct {
	key, text string
}

// decodeModel decodes one model key by key, strictly, and converts it to
// the domain type, returning every problem it finds (an unknown key, a value
// of the wrong type, a value out of range), each once; the name is set
// whenever it could be read.
func decodeModel(node ast.Node, providers []string) (domain.Model, []modelProblem) {
	var m catalogueModel
	fields := map[string]any{
		"name": &m.Name, "type": &m.Type, "provider": &m.Provider, "upstream": &m.Upstream,
		"price_per_million": &m.Price, "max_output_tokens": &m.MaxOutputTokens,
		"aliases": &m.Aliases, "fallbacks": &m.Fallbacks, "free": &m.Free,
		"deployments": &m.Deployments, "routing": &m.Routing,
		"group": &m.Group, "budget_fallback": &m.BudgetFallback,
		"max_concurrency": &m.MaxConcurrency, "rpm": &m.RPM, "tpm": &m.TPM,
	}
	pairs, problem := mappingPairs(node)
	if problem != "" {
		return domain.Model{}, []modelProblem{{text: problem}}
	}
	var problems []modelProblem
	failed := map[string]bool{}
	for _, kv := range pairs {
		key := kv.Key.String()
		dst, ok := fields[key]
		if !ok {
			problems = append(problems, modelProblem{key, fmt.Sprintf("unknown field %q (line %d)", key, kv.Key.GetToken().Position.Line)})
			continue
		}
		if err := decodeStrict(kv.Value, dst); err != nil {
			text := yamlProblem(err)
			if !strings.HasPrefix(text, key+":") && !strings.HasPrefix(text, key+".") {
				text = key + ": " + text
			}
			problems = append(problems, modelProblem{key, text})
			failed[key] = true
		}
	}
	out, more := m.toDomain(providers, failed)
	return out, append(problems, more...)
}

// toDomain converts a decoded model, checking what the domain cannot know
// (the provider types, prices as written); keys in failed were reported
// while decoding and are not checked again.
func (m catalogueModel) toDomain(providers []string, failed map[string]bool) (domain.Model, []modelProblem) {
	var problems []modelProblem
	add := func(key, text string) {
		if !failed[key] {
			problems = append(problems, modelProblem{key, text})
		}
	}
	out := domain.Model{
		Name: m.Name, Provider: m.Provider, Upstream: m.Upstream, MaxOutputTokens: m.MaxOutputTokens,
		Aliases: m.Aliases, Fallbacks: m.Fallbacks, Routing: domain.Routing(m.Routing),
		Group: m.Group, BudgetFallback: m.BudgetFallback,
		Limits: domain.Limits{RPM: m.RPM, TPM: m.TPM, MaxConcurrent: m.MaxConcurrency},
	}
	for _, key := range negativeCaps(m.MaxConcurrency, m.RPM, m.TPM) {
		add(key, key+": must not be negative")
	}
	switch m.Type {
	case "chat":
		out.Type = domain.ModelChat
	case "embedding":
		out.Type = domain.ModelEmbedding
	default:
		add("type", fmt.Sprintf("type: %q must be chat or embedding", m.Type))
	}
	if m.Provider != "" && !slices.Contains(providers, m.Provider) {
		add("provider", fmt.Sprintf("provider: %q must be %s", m.Provider, orList(providers)))
	}
	for i, d := range m.Deployments {
		if d.Provider != "" && !slices.Contains(providers, d.Provider) {
			add("deployments", fmt.Sprintf("deployments[%d]: provider: %q must be %s", i, d.Provider, orList(providers)))
		}
		weight := 1
		if d.Weight != nil {
			weight = *d.Weight
		}
		if weight < 1 {
			add("deployments", fmt.Sprintf("deployments[%d]: weight: must be at least 1", i))
		}
		out.Deployments = append(out.Deployments, domain.Deployment{Provider: d.Provider, Upstream: d.Upstream, Weight: weight})
	}
	var err error
	parsed := len(problems)
	if out.Price.InputPerMillion, err = parsePrice(m.Price.Input.node); err != nil {
		add("price_per_million", "price_per_million.input: "+err.Error())
	}
	if out.Price.OutputPerMillion, err = parsePrice(m.Price.Output.node); err != nil {
		add("price_per_million", "price_per_million.output: "+err.Error())
	}
	for _, c := range []struct {
		key  string
		node ast.Node
		dst  *domain.Micros
	}{{"cache_read", m.Price.CacheRead.node, &out.Price.CacheReadPerMillion}, {"cache_write", m.Price.CacheWrite.node, &out.Price.CacheWritePerMillion}} {
		switch *c.dst, err = parsePrice(c.node); {
		case err != nil:
			add("price_per_million", "price_per_million."+c.key+": "+err.Error())
		case c.node != nil && *c.dst == 0:
			add("price_per_million", "price_per_million."+c.key+": must be more than zero; leave it out to charge these tokens the input price")
		}
	}
	if len(problems) == parsed && !failed["price_per_million"] && !failed["free"] { // a price that could not be read is reported already
		for _, p := range m.priceProblems(out) {
			add("price_per_million", p)
		}
	}
	if out.Type == domain.ModelEmbedding {
		if m.Price.Output.node != nil {
			add("price_per_million", "price_per_million.output: an embedding model produces no output tokens")
		}
		if m.Price.CacheRead.node != nil || m.Price.CacheWrite.node != nil {
			add("price_per_million", "price_per_million: an embedding model has no prompt cache: leave out cache_read and cache_write")
		}
		if m.MaxOutputTokens != 0 {
			add("max_output_tokens", "max_output_tokens: an embedding model produces no output tokens")
		}
	}
	return out, problems
}

// priceProblems refuses a model that would cost nothing by accident: one
// without a price (a chat model needs both an input and an output price),
// or with prices that are all zero, unless it says free: true; and a model
// that says free: true but has a price.
func (m catalogueModel) priceProblems(out domain.Model) []string {
	const missing = "price_per_million: missing: give the %s in USD per million tokens, or write free: true for a model that costs nothing"
	written := m.Price.Input.node != nil || m.Price.Output.node != nil || m.Price.CacheRead.node != nil || m.Price.CacheWrite.node != nil
	zero := out.Price == domain.Price{}
	switch {
	case m.Free && written && !zero:
		return []string{"free: true, but price_per_million is not zero: keep one of them"}
	case m.Free:
		return nil
	case out.Type == domain.ModelChat && (m.Price.Input.node == nil || m.Price.Output.node == nil):
		return []string{fmt.Sprintf(missing, "input and output prices")}
	case out.Type == domain.ModelEmbedding && m.Price.Input.node == nil:
		return []string{fmt.Sprintf(missing, "input price")}
	case written && zero:
		return []string{"price_per_million: every price is zero: write free: true to serve a model at no cost"}
	}
	return nil
}

// parsePrice reads a price in USD per million tokens, written as a YAML
// number or string, exactly; an absent price is zero.
func parsePrice(node ast.Node) (domain.Micros, error) {
	var text string
	switch n := node.(type) {
	case nil:
		return 0, nil
	case *ast.StringNode:
		text = n.Value
	case *ast.IntegerNode, *ast.FloatNode:
		text = n.GetToken().Value
	default:
		return 0, fmt.Errorf("must be a number of USD such as \"0.15\" (line %d)", node.GetToken().Position.Line)
	}
	m, err := domain.ParseUSD(text)
	if err != nil {
		return 0, fmt.Errorf("%w (USD per million tokens)", err)
	}
	if m > maxPricePerMillion {
		return 0, fmt.Errorf("%q is more than %s per million tokens", text, maxPricePerMillion)
	}
	return m, nil
}

// decodeStrict decodes node into dst, refusing unknown keys, and a value
// meant for a whole number that is not one: go-yaml would cut 1.5 or
// "2.5" to the number before the point, so a weight, a cap or an output
// limit written with a fraction would be served as another number.
func decodeStrict(node ast.Node, dst any) error {
	if err := wholeNumbers(node, reflect.TypeOf(dst)); err != nil {
		return err
	}
	return yaml.NodeToValue(node, dst, yaml.DisallowUnknownField())
}

// wholeNumberError is a value that should be a whole number and is not.
type wholeNumberError struct {
	tk *token.Token
}

func (e *wholeNumberError) Error() string {
	msg := fmt.Sprintf("%q is not a whole number", e.tk.Value)
	if key := keyOf(e.tk); key != "" {
		msg = key + ": " + msg
	}
	return fmt.Sprintf("%s (line %d)", msg, e.tk.Position.Line)
}

// wholeNumbers finds, in node as it will be decoded into a value of type
// t, an integer written as anything but a whole number in base 10 (an
// integer, or a string holding one); it follows lists and structs by
// their yaml tags.
func wholeNumbers(node ast.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n := node.(type) {
	case *ast.TagNode:
		return wholeNumbers(n.Value, t)
	case *ast.AnchorNode:
		return wholeNumbers(n.Value, t)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch n := node.(type) {
		case *ast.FloatNode:
			return &wholeNumberError{n.GetToken()}
		case *ast.StringNode:
			if _, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64); err != nil {
				return &wholeNumberError{n.GetToken()}
			}
		}
	case reflect.Slice:
		if seq, ok := node.(*ast.SequenceNode); ok {
			for _, v := range seq.Values {
				if err := wholeNumbers(v, t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Struct:
		pairs, problem := mappingPairs(node)
		if problem != "" {
			return nil // not a mapping: go-yaml says so
		}
		for _, kv := range pairs {
			for i := range t.NumField() {
				if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name == kv.Key.String() {
					if err := wholeNumbers(kv.Value, t.Field(i).Type); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// yamlProblem rewrites a go-yaml error as one line that names the YAML key
// and its line rather than Go types.
func yamlProblem(err error) string {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return err.Error()
	}
	tk := ye.GetToken()
	msg := ye.GetMessage()
	var (
		te *yaml.TypeError
		oe *yaml.OverflowError
		ue *yaml.UnexpectedNodeTypeError
	)
	switch {
	case errors.As(err, &te):
		msg = fmt.Sprintf("%q is not %s", tk.Value, describeType(te.DstType))
	case errors.As(err, &oe):
		msg = fmt.Sprintf("%s is too large", tk.Value)
	case errors.As(err, &ue) && ue.Expected == ast.SequenceType:
		msg = "must be a list"
	case errors.As(err, &ue) && ue.Expected == ast.MappingType:
		msg = "must be a mapping of keys to values"
	}
	if key := keyOf(tk); key != "" {
		msg = key + ": " + msg
	}
	return fmt.Sprintf("%s (line %d)", msg, tk.Position.Line)
}

// keyOf returns the mapping key whose value is tk, or "".
func keyOf(tk *token.Token) string {
	if tk.Prev != nil && tk.Prev.Type == token.MappingValueType && tk.Prev.Prev != nil {
		return tk.Prev.Prev.Value
	}
	return ""
}

// describeType names a Go type in the catalogue's vocabulary.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "a mapping of keys to values"
	}
	return t.String()
}
