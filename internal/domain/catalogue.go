package domain

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ModelType says which endpoint a model serves.
type ModelType uint8

// The model types.
const (
	ModelChat ModelType = iota + 1
	ModelEmbedding
)

// String returns "chat" or "embedding".
func (t ModelType) String() string {
	switch t {
	case ModelChat:
		return "chat"
	case ModelEmbedding:
		return "embedding"
	}
	return "unknown"
}

// Model is one entry of the catalogue: a name clients use, the deployments
// that serve it and how calls are routed over them, its price and its
// fallbacks.
type Model struct {
	Name     string
	Type     ModelType
	Provider string // the first deployment's provider instance, e.g. "mock", "openai-main"
	Upstream string // the first deployment's model name sent to its provider
	// Deployments are where the model is served, at least one once the
	// catalogue is built: a model given only Provider and Upstream has that
	// one deployment.
	Deployments     []Deployment
	Routing         Routing // how calls are spread over the deployments; default RoutingWeighted
	Price           Price
	MaxOutputTokens int      // the cap used when a request sets no max_tokens; also the worst case
	Aliases         []string // other names that resolve to this model
	Fallbacks       []string // model names tried in order when this one fails
	// Group names the model group the model belongs to, for budgets on a
	// group ("group:NAME"); empty, it belongs to none.
	Group string
	// BudgetFallback names a cheaper model that answers instead when a
	// budget leaves no room for a call on this one; empty, such a call is
	// refused.
	BudgetFallback string
	// Limits bound the calls asked of this model (by its name or an
	// alias), every caller's together: requests and tokens per window and
	// calls in flight.
	Limits Limits
}

// Deployment is one place a model is served: a provider instance and that
// provider's own name for the model.
type Deployment struct {
	Provider string // a provider instance's name (a type's name for the type's implicit instance)
	Upstream string // the model name sent to the provider
	Weight   int    // its share of the calls under RoutingWeighted; 0 means 1
}

// Name names the deployment in metrics, logs and traces: provider/upstream.
func (d Deployment) Name() string { return d.Provider + "/" + d.Upstream }

// Routing says how a model's calls are spread over its deployments. Every
// strategy skips deployments that are cooling down; a retry goes to another
// deployment while one is left.
type Routing string

// The routing strategies.
const (
	RoutingWeighted  Routing = "weighted"   // at random, in proportion to the weights
	RoutingLeastBusy Routing = "least-busy" // the fewest calls in flight
	RoutingLatency   Routing = "latency"    // the lowest recent latency, exploring the others now and then
	RoutingOrdered   Routing = "ordered"    // the first healthy deployment, in the catalogue's order
)

// ProviderCaps are a provider instance's account caps, over every
// deployment on it; a zero field is unlimited.
type ProviderCaps struct {
	MaxConcurrency int // calls in flight at once
	RPM            int // requests per minute
	TPM            int // tokens per minute, a call's worst case held until it settles
}

// BreakerSettings tune each deployment's circuit breaker: after Failures
// failures in a row (errors or 429s) the deployment is skipped for
// Cooldown; then one probe call at a time is let through, whose success
// closes the breaker and whose failure opens it again.
type BreakerSettings struct {
	Failures int
	Cooldown time.Duration
}

// DefaultBreaker is the breaker of a catalogue that sets none: three
// failures in a row, thirty seconds' cool-down.
func DefaultBreaker() BreakerSettings {
	return BreakerSettings{Failures: 3, Cooldown: 30 * time.Second}
}

// Routings lists the routing strategies.
func Routings() []Routing {
	return []Routing{RoutingWeighted, RoutingLeastBusy, RoutingLatency, RoutingOrdered}
}

// normalizeDeployments fills m's deployments from Provider and Upstream (the
// single-upstream form), defaults their upstreams and weights and its
// routing, and returns what is wrong with them, by field.
func normalizeDeployments(m *Model) (problems [][2]string) {
	if m.Routing == "" {
		m.Routing = RoutingWeighted
	}
	if !slices.Contains(Routings(), m.Routing) {
		problems = append(problems, [2]string{"routing", fmt.Sprintf("%q must be weighted, least-busy, latency or ordered", m.Routing)})
	}
	switch {
	case len(m.Deployments) > 0 && (m.Provider != "" || m.Upstream != ""):
		return append(problems, [2]string{"deployments", "give either provider and upstream or deployments, not both"})
	case len(m.Deployments) == 0 && m.Provider == "":
		return append(problems, [2]string{"provider", "is required (or deployments)"})
	case len(m.Deployments) == 0:
		m.Deployments = []Deployment{{Provider: m.Provider, Upstream: m.Upstream}}
	}
	deps := make([]Deployment, len(m.Deployments))
	seen := map[string]bool{}
	for i, d := range m.Deployments {
		if d.Upstream == "" {
			d.Upstream = m.Name
		}
		switch {
		case d.Provider == "":
			problems = append(problems, [2]string{"deployments", fmt.Sprintf("deployments[%d]: provider is required", i)})
		case d.Weight < 0:
			problems = append(problems, [2]string{"deployments", fmt.Sprintf("deployments[%d]: weight must not be negative", i)})
		case seen[d.Name()]:
			problems = append(problems, [2]string{"deployments", fmt.Sprintf("deployments[%d]: %s is listed twice", i, d.Name())})
		}
		if d.Weight == 0 {
			d.Weight = 1
		}
		seen[d.Name()] = true
		deps[i] = d
	}
	m.Deployments = deps
	m.Provider, m.Upstream = deps[0].Provider, deps[0].Upstream
	return problems
}

// Catalogue is the validated, immutable set of models tidygate serves.
type Catalogue struct {
	models  map[string]Model
	aliases map[string]string
	names   []string
}

// NewCatalogue validates the models (unique names and aliases, known fallbacks
// of the same type, positive output caps) and returns the catalogue, or an
// error listing every problem.
func NewCatalogue(models []Model) (*Catalogue, error) {
	c := &Catalogue{models: make(map[string]Model), aliases: make(map[string]string)}
	var problems []CatalogueProblem
	add := func(model, field, format string, args ...any) {
		problems = append(problems, CatalogueProblem{Model: model, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for _, m := range models {
		switch {
		case m.Name == "":
			add("", "name", "a model has no name")
			continue
		case c.taken(m.Name):
			add(m.Name, "name", "the model is defined twice")
			continue
		}
		if m.Type != ModelChat && m.Type != ModelEmbedding {
			add(m.Name, "type", "must be chat or embedding")
		}
		for _, p := range normalizeDeployments(&m) {
			add(m.Name, p[0], "%s", p[1])
		}
		if m.Type == ModelChat && m.MaxOutputTokens <= 0 {
			add(m.Name, "max_output_tokens", "must be positive")
		}
		if m.Price.InputPerMillion < 0 || m.Price.OutputPerMillion < 0 || m.Price.CacheReadPerMillion < 0 || m.Price.CacheWritePerMillion < 0 {
			add(m.Name, "price_per_million", "prices must not be negative")
		}
		c.models[m.Name] = m
		c.names = append(c.names, m.Name)
	}
	for _, name := range c.names {
		for _, a := range c.models[name].Aliases {
			if c.taken(a) {
				add(name, "aliases", "alias %q is already a model name or alias", a)
				continue
			}
			c.aliases[a] = name
		}
	}
	for _, name := range c.names {
		m := c.models[name]
		for _, f := range m.Fallbacks {
			fm, ok := c.lookup(f)
			switch {
			case !ok:
				add(name, "fallbacks", "fallback %q is not in the catalogue", f)
			case fm.Name == name:
				add(name, "fallbacks", "lists itself as a fallback")
			case fm.Type != m.Type:
				add(name, "fallbacks", "fallback %q is of type %s, not %s", f, fm.Type, m.Type)
			}
		}
	}
	for _, name := range c.names {
		m := c.models[name]
		if m.BudgetFallback == "" {
			continue
		}
		fm, ok := c.lookup(m.BudgetFallback)
		switch {
		case !ok:
			add(name, "budget_fallback", "%q is not in the catalogue", m.BudgetFallback)
		case fm.Name == name:
			add(name, "budget_fallback", "names the model itself")
		case fm.Type != m.Type:
			add(name, "budget_fallback", "%q is of type %s, not %s", m.BudgetFallback, fm.Type, m.Type)
		}
	}
	if len(problems) > 0 {
		return nil, &CatalogueError{Problems: problems}
	}
	sort.Strings(c.names)
	return c, nil
}

// CatalogueProblem is one fault of a catalogue: the model (empty when it
// has no name), the field at fault, and what is wrong with it.
type CatalogueProblem struct {
	Model, Field, Message string
}

// String writes the problem as one line: model "m": field: message.
func (p CatalogueProblem) String() string {
	if p.Model == "" {
		return p.Field + ": " + p.Message
	}
	return fmt.Sprintf("model %q: %s: %s", p.Model, p.Field, p.Message)
}

// CatalogueError lists every fault NewCatalogue found, so that an operator
// fixes them all in one pass.
type CatalogueError struct {
	Problems []CatalogueProblem
}

// Error writes one line per problem.
func (e *CatalogueError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "model catalogue: " + p.String()
	}
	return strings.Join(lines, "\n")
}

func (c *Catalogue) taken(name string) bool {
	_, isModel := c.models[name]
	_, isAlias := c.aliases[name]
	return isModel || isAlias
}

func (c *Catalogue) lookup(name string) (Model, bool) {
	if canonical, ok := c.aliases[name]; ok {
		name = canonical
	}
	m, ok := c.models[name]
	return m, ok
}

// Resolve returns the model a name or alias refers to, or a KindNotFound error.
func (c *Catalogue) Resolve(name string) (Model, error) {
	m, ok := c.lookup(name)
	if !ok {
		return Model{}, ModelNotFound(name)
	}
	return m, nil
}

// UnknownModels returns the names, in the order given, that are neither a
// model of models nor an alias of one: what a key's allow-list or a budget
// must not name, so that a typo is caught when the key or budget is made
// rather than on every call. A group (GroupPrefix…) names no model and is
// not checked.
func UnknownModels(models []Model, names []string) []string {
	var unknown []string
	for _, n := range names {
		if strings.HasPrefix(n, GroupPrefix) || slices.ContainsFunc(models, func(m Model) bool {
			return m.Name == n || slices.Contains(m.Aliases, n)
		}) {
			continue
		}
		unknown = append(unknown, n)
	}
	return unknown
}

// BudgetModels returns the models (or groups) that budgets are on, in order;
// a budget on every model names none.
func BudgetModels(budgets []Budget) []string {
	var out []string
	for _, b := range budgets {
		if b.Model != "" {
			out = append(out, b.Model)
		}
	}
	return out
}

// ModelNotFound is the error for a model name that names nothing the caller
// can see.
func ModelNotFound(name string) error {
	return &Error{Kind: KindNotFound, Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("The model %q does not exist", name)}
}

// Chain returns the model followed by its fallbacks, in the order to try them.
func (c *Catalogue) Chain(m Model) []Model {
	chain := []Model{m}
	for _, f := range m.Fallbacks {
		if fm, ok := c.lookup(f); ok {
			chain = append(chain, fm)
		}
	}
	return chain
}

// BudgetFallback returns the model that answers instead of m when a budget
// leaves no room for a call on m, and false when m names none.
func (c *Catalogue) BudgetFallback(m Model) (Model, bool) {
	if m.BudgetFallback == "" {
		return Model{}, false
	}
	return c.lookup(m.BudgetFallback)
}

// Models returns every model, sorted by name.
func (c *Catalogue) Models() []Model {
	out := make([]Model, 0, len(c.names))
	for _, n := range c.names {
		out = append(out, c.models[n])
	}
	return out
}

// Providers returns the sorted, distinct provider (instance) names the
// catalogue's deployments use.
func (c *Catalogue) Providers() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range c.models {
		for _, d := range m.Deployments {
			if !seen[d.Provider] {
				seen[d.Provider] = true
				out = append(out, d.Provider)
			}
		}
	}
	sort.Strings(out)
	return out
}

// DefaultModels is the built-in catalogue: two mock models, so that tidygate
// runs with no provider keys and no network.
func DefaultModels() []Model {
	return []Model{
		{
			Name: "mock-chat", Type: ModelChat, Provider: "mock", Upstream: "mock-chat",
			Price:           Price{InputPerMillion: 500_000, OutputPerMillion: 1_500_000}, // $0.50 / $1.50 per million
			MaxOutputTokens: 4096,
			Aliases:         []string{"mock"},
		},
		{
			Name: "mock-embed", Type: ModelEmbedding, Provider: "mock", Upstream: "mock-embed",
			Price: Price{InputPerMillion: 20_000}, // $0.02 per million
		},
	}
}
