package infra

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// ProviderInstance is one entry of the catalogue's providers: a named
// instance of a provider type with its own endpoint, credentials, transport
// and account caps. Secrets are never in the file: APIKeyEnv names the
// variable that holds the key, APIKeyFile the file.
type ProviderInstance struct {
	Name string // what a model's provider: or a deployment's provider: says
	Type string // a provider type of the registry

	BaseURL    string
	APIKeyEnv  string
	APIKeyFile string
	Headers    map[string]string // sent with every request
	Timeout    time.Duration     // to the response headers; 0 means the gateway's PROVIDER_TIMEOUT alone
	ProxyURL   string            // the outbound proxy; empty means HTTPS_PROXY/HTTP_PROXY/NO_PROXY
	CAFile     string            // PEM certificates trusted besides the system's

	MaxConcurrency int // calls in flight at once; 0 is unlimited
	RPM            int // requests per minute; 0 is unlimited
	TPM            int // tokens per minute; 0 is unlimited

	Region     string // bedrock
	AWSProfile string // bedrock
	APIVersion string // azure
	Project    string // vertex
	Location   string // vertex
	// CredentialsFile is vertex's service-account key file.
	CredentialsFile string
}

// HasAPIKey reports whether the instance names a source for its key.
func (p ProviderInstance) HasAPIKey() bool { return p.APIKeyEnv != "" || p.APIKeyFile != "" }

// APIKey reads the instance's key from the environment variable or the
// file it names (the file's content, trimmed of surrounding white space),
// or returns "" when it names neither.
func (p ProviderInstance) APIKey(environ map[string]string) (string, error) {
	switch {
	case p.APIKeyEnv != "":
		key := environ[p.APIKeyEnv]
		if key == "" {
			return "", fmt.Errorf("api_key_env: the variable %s is not set", p.APIKeyEnv)
		}
		return key, nil
	case p.APIKeyFile != "":
		data, err := os.ReadFile(p.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("api_key_file: %w", err)
		}
		key := strings.TrimSpace(string(data))
		if key == "" {
			return "", fmt.Errorf("api_key_file: %s is empty", p.APIKeyFile)
		}
		return key, nil
	}
	return "", nil
}

// ProviderType is what the catalogue needs to know of a provider type of
// the registry (cmd/app): its name, the keys its instances accept besides
// name and type, and its own rules on their values.
type ProviderType struct {
	Name string
	// Keys are the keys an instance of the type may set besides name and
	// type (see HTTPKeys and CapKeys); any other key is refused by name.
	Keys []string
	// Check returns what is wrong with an instance for this type (a
	// required key missing, say), one line each, starting with the key;
	// nil means nothing to add.
	Check func(ProviderInstance) []string
	// Implicit says which setting the type's implicit instance (its
	// settings from the environment) lacks, read from environ, or returns
	// nil; a nil Implicit lacks nothing.
	Implicit func(environ map[string]string) error
}

// The keys most types share.
var (
	// CapKeys are an account's caps, which every type accepts.
	CapKeys = []string{"max_concurrency", "rpm", "tpm"}
	// HTTPKeys are the keys of a provider spoken to over HTTP with an API key.
	HTTPKeys = append([]string{"base_url", "api_key_env", "api_key_file", "headers", "timeout", "proxy_url", "ca_file"}, CapKeys...)
)

// TypeNames returns the types' names, in order.
func TypeNames(types []ProviderType) []string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = t.Name
	}
	return names
}

// envName is what api_key_env may name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// secretHeaders are headers that carry credentials: they belong in the
// environment or a file, never in the catalogue.
var secretHeaders = []string{"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key", "ocp-apim-subscription-key"}

// decodeProvider decodes one entry of providers key by key, strictly, and
// checks it for its type; it returns the instance (its name set whenever
// it could be read) and every problem, one line each.
func decodeProvider(node ast.Node, types []ProviderType, environ map[string]string) (ProviderInstance, []string) {
	var (
		p       ProviderInstance
		timeout string
	)
	fields := map[string]any{
		"name": &p.Name, "type": &p.Type, "base_url": &p.BaseURL, "api_key_env": &p.APIKeyEnv, "api_key_file": &p.APIKeyFile,
		"headers": &p.Headers, "timeout": &timeout, "proxy_url": &p.ProxyURL, "ca_file": &p.CAFile,
		"max_concurrency": &p.MaxConcurrency, "rpm": &p.RPM, "tpm": &p.TPM,
		"region": &p.Region, "aws_profile": &p.AWSProfile, "api_version": &p.APIVersion,
		"project": &p.Project, "location": &p.Location, "credentials_file": &p.CredentialsFile,
	}
	pairs, problem := mappingPairs(node)
	if problem != "" {
		return p, []string{problem}
	}
	var problems []string
	set := map[string]bool{}
	lines := map[string]int{} // key → its line
	for _, kv := range pairs {
		key := kv.Key.String()
		line := kv.Key.GetToken().Position.Line
		lines[key] = line
		dst, ok := fields[key]
		switch {
		case key == "api_key":
			problems = append(problems, fmt.Sprintf("api_key: secrets never go in the catalogue; name the variable that holds the key with api_key_env, or its file with api_key_file (line %d)", line))
			continue
		case !ok:
			problems = append(problems, fmt.Sprintf("unknown field %q (line %d)", key, line))
			continue
		}
		if err := decodeStrict(kv.Value, dst); err != nil {
			text := yamlProblem(err)
			if !strings.HasPrefix(text, key+":") {
				text = key + ": " + text
			}
			problems = append(problems, text)
			continue
		}
		set[key] = true
	}
	if set["timeout"] {
		d, err := time.ParseDuration(timeout)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("timeout: %q is not a duration such as 60s", timeout))
		case d <= 0:
			problems = append(problems, fmt.Sprintf("timeout: %q must be positive", timeout))
		}
		p.Timeout = d
	}
	problems = append(problems, checkProvider(p, set, types)...)
	return p, append(problems, checkKey(p, problems, lines, environ)...)
}

// checkKey checks the key an instance names, once its source is good: the
// variable api_key_env names is set in environ, the file api_key_file names
// is readable and not empty. environ nil leaves the variable unread (a
// command that needs only the models). Each line ends with the key's line.
func checkKey(p ProviderInstance, problems []string, lines map[string]int, environ map[string]string) []string {
	if slices.ContainsFunc(problems, func(q string) bool { return strings.HasPrefix(q, "api_key_") }) ||
		(p.APIKeyFile == "" && environ == nil) {
		return nil
	}
	if _, err := p.APIKey(environ); err != nil {
		key, _, _ := strings.Cut(err.Error(), ":")
		return []string{fmt.Sprintf("%v (line %d)", err, lines[key])}
	}
	return nil
}

// mappingPairs returns the key/value pairs of a YAML mapping, or a problem
// when node is not one.
func mappingPairs(node ast.Node) ([]*ast.MappingValueNode, string) {
	switch n := node.(type) {
	case *ast.MappingNode:
		return n.Values, ""
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}, ""
	}
	line := 0
	if node != nil && node.GetToken() != nil {
		line = node.GetToken().Position.Line
	}
	return nil, fmt.Sprintf("must be a mapping of keys to values (line %d)", line)
}

// checkProvider checks an instance's values: the rules every type shares,
// the keys its type accepts, then the type's own rules.
func checkProvider(p ProviderInstance, set map[string]bool, types []ProviderType) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p.Name == "" {
		add("name: a provider has no name")
	}
	i := slices.IndexFunc(types, func(t ProviderType) bool { return t.Name == p.Type })
	if i < 0 {
		add("type: %q must be %s", p.Type, orList(TypeNames(types)))
	}
	for _, u := range []struct{ key, value string }{{"base_url", p.BaseURL}, {"proxy_url", p.ProxyURL}} {
		if set[u.key] && !isHTTPURL(u.value) {
			add("%s: %q must be an http:// or https:// URL", u.key, RedactURL(u.value))
		}
	}
	if p.APIKeyEnv != "" && p.APIKeyFile != "" {
		add("api_key_env, api_key_file: give one of them")
	}
	if set["api_key_env"] && !envName.MatchString(p.APIKeyEnv) {
		add("api_key_env: %q is not an environment variable's name (it names the variable that holds the key, not the key)", p.APIKeyEnv)
	}
	for _, f := range []struct{ key, path string }{{"api_key_file", p.APIKeyFile}, {"ca_file", p.CAFile}, {"credentials_file", p.CredentialsFile}} {
		if set[f.key] {
			if _, err := os.Stat(f.path); err != nil {
				add("%s: %v", f.key, err)
			}
		}
	}
	if set["ca_file"] && p.CAFile != "" {
		if pem, err := os.ReadFile(p.CAFile); err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
			add("ca_file: %s holds no PEM certificate", p.CAFile)
		}
	}
	names := make([]string, 0, len(p.Headers))
	for name := range p.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		value := p.Headers[name]
		switch {
		case slices.Contains(secretHeaders, strings.ToLower(name)):
			add("headers: %s carries a credential; secrets never go in the catalogue: use api_key_env or api_key_file", name)
		case name == "" || strings.ContainsAny(name, " :\r\n") || strings.ContainsAny(value, "\r\n"):
			add("headers: %q is not a valid header", name)
		}
	}
	for _, key := range negativeCaps(p.MaxConcurrency, p.RPM, p.TPM) {
		add("%s: must not be negative", key)
	}
	if i < 0 {
		return problems
	}
	t := types[i]
	for _, key := range sortedKeys(set) {
		if key != "name" && key != "type" && !slices.Contains(t.Keys, key) {
			add("%s: does not apply to type %s", key, t.Name)
		}
	}
	if t.Check != nil {
		problems = append(problems, t.Check(p)...)
	}
	return problems
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func isHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// CanonicalHeaders returns the instance's headers with canonical names.
func (p ProviderInstance) CanonicalHeaders() http.Header {
	h := make(http.Header, len(p.Headers))
	for k, v := range p.Headers {
		h.Set(k, v)
	}
	return h
}
