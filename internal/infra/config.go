package infra

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/tidygate/tidygate/internal/domain"
)

// Config is every setting tidygate reads from the environment. The env tags
// name the variables; DEPLOY_PROFILE supplies defaults for some variables
// that are not set (see profile.go). A redact tag marks a value that must not
// be shown as it is: "secret" hides it, "url" masks the password inside it.
type Config struct {
	Profile  string `env:"DEPLOY_PROFILE" envDefault:"local"` // local | home | aws
	Replicas int    `env:"REPLICAS" envDefault:"1"`

	// Shared pool: DATABASE_URL, or the DB_* parts.
	DatabaseURL       string        `env:"DATABASE_URL" redact:"url"`
	DBHost            string        `env:"DB_HOST" envDefault:"127.0.0.1"`
	DBPort            int           `env:"DB_PORT" envDefault:"5432"`
	DBUser            string        `env:"DB_USER" envDefault:"postgres"`
	DBPassword        string        `env:"DB_PASSWORD" redact:"secret"`
	DBName            string        `env:"DB_NAME" envDefault:"postgres"`
	DBSSLMode         string        `env:"DB_SSLMODE" envDefault:"prefer"`
	DBSSLRootCert     string        `env:"DB_SSLROOTCERT"`                          // CA file for verify-ca / verify-full
	DBPoolMinConns    int32         `env:"DB_POOL_MIN_CONNS" envDefault:"1"`        // profile default
	DBPoolMaxConns    int32         `env:"DB_POOL_MAX_CONNS" envDefault:"10"`       // docs/DESIGN-NOTES.md §2
	DBAcquireTimeout  time.Duration `env:"DB_POOL_ACQUIRE_TIMEOUT" envDefault:"5s"` // profile default
	DBConnectTimeout  time.Duration `env:"DB_CONNECT_TIMEOUT" envDefault:"5s"`      // profile default
	DBMaxConnLifetime time.Duration `env:"DB_POOL_MAX_CONN_LIFETIME" envDefault:"1h"`
	DBMaxConnIdleTime time.Duration `env:"DB_POOL_MAX_CONN_IDLE_TIME" envDefault:"10m"` // profile default
	DBRequireAtStart  bool          `env:"DB_REQUIRE_AT_START" envDefault:"false"`      // refuse to start while the database is down
	DBConnBudget      string        `env:"DB_CONNECTION_BUDGET" envDefault:"enforce"`   // enforce | warn
	LedgerSyncCommit  string        `env:"LEDGER_SYNCHRONOUS_COMMIT" envDefault:"off"`  // off | on: see postgres.LedgerOptions
	LedgerLockTimeout time.Duration `env:"LEDGER_LOCK_TIMEOUT" envDefault:"1s"`         // a reservation's wait for a locked spend row: see postgres.LedgerOptions
	LedgerReservation string        `env:"LEDGER_RESERVATION" envDefault:"alongside"`   // alongside | first: see ReserveFirst
	KeyCacheTTL       time.Duration `env:"KEY_CACHE_TTL" envDefault:"30s"`              // keys in process, kept in step by LISTEN/NOTIFY; 0: no cache (see postgres.KeyCache)

	// Budgets: the calendar's zone, and alerts.
	BudgetTimeZone           string `env:"BUDGET_TIME_ZONE" envDefault:"UTC"`              // IANA zone of day, week (from Monday) and month budgets
	BudgetAlertThresholds    string `env:"BUDGET_ALERT_THRESHOLDS" envDefault:"50,80,100"` // percentages of a budget that raise an alert, once per period
	BudgetAlertWebhookURL    string `env:"BUDGET_ALERT_WEBHOOK_URL" redact:"url"`          // where alerts are POSTed; empty: log and metric only
	BudgetAlertWebhookSecret string `env:"BUDGET_ALERT_WEBHOOK_SECRET" redact:"secret"`    // HMAC-SHA256 key of the X-Tidygate-Signature header

	// MLflow call log.
	MLflowPool          string        `env:"MLFLOW_POOL" envDefault:"shared"` // shared | dedicated
	MLflowPoolSize      int32         `env:"MLFLOW_SQLALCHEMY_POOL_SIZE" envDefault:"10"`
	MLflowMaxOverflow   int32         `env:"MLFLOW_SQLALCHEMY_MAX_OVERFLOW" envDefault:"20"`
	MLflowPoolTimeout   Seconds       `env:"MLFLOW_SQLALCHEMY_POOL_TIMEOUT" envDefault:"30"`
	MLflowPoolRecycle   Seconds       `env:"MLFLOW_SQLALCHEMY_POOL_RECYCLE" envDefault:"1800"`
	MLflowPoolPrePing   bool          `env:"MLFLOW_SQLALCHEMY_POOL_PRE_PING" envDefault:"true"`
	MLflowTrackingURI   string        `env:"MLFLOW_TRACKING_URI" redact:"url"`     // optional postgresql:// URI of a separate MLflow database
	MLflowSchema        string        `env:"MLFLOW_SCHEMA"`                        // verify | create; profile default
	MLflowLogMode       string        `env:"MLFLOW_LOG_MODE" envDefault:"traces"`  // traces | runs | both
	MLflowLogContent    string        `env:"MLFLOW_LOG_CONTENT" envDefault:"full"` // full | preview | none
	MLflowExperiment    string        `env:"MLFLOW_EXPERIMENT_PREFIX" envDefault:"tidygate/"`
	MLflowEndpointID    string        `env:"MLFLOW_GATEWAY_ENDPOINT_ID"` // opt-in: tidygate's spend in MLflow's gateway budgets
	JournalDir          string        `env:"MLFLOW_JOURNAL_DIR" envDefault:"data/journal"`
	JournalMaxRecords   int           `env:"MLFLOW_JOURNAL_MAX_RECORDS" envDefault:"100000"`
	JournalWhenFull     string        `env:"MLFLOW_JOURNAL_WHEN_FULL" envDefault:"refuse"` // refuse | accept
	WriterBatchSize     int           `env:"MLFLOW_WRITER_BATCH_SIZE" envDefault:"100"`
	WriterFlushInterval time.Duration `env:"MLFLOW_WRITER_FLUSH_INTERVAL" envDefault:"1s"`

	// HTTP.
	HTTPAddr          string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	AdminAddr         string        `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9090"` // /metrics and /debug/*; "off" serves them nowhere
	AdminAPIAddr      string        `env:"ADMIN_API_ADDR"`                         // the admin API's own listener; empty: on HTTP_ADDR
	MaxBodyBytes      int64         `env:"HTTP_MAX_BODY_BYTES"`                    // 0: each dialect's default (4 MiB OpenAI, 32 MiB Anthropic Messages)
	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"10s"`
	IdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"120s"`
	WriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"300s"` // non-streaming responses
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`

	// AuditReasonRequiredCLI makes the tidygate keys and admin-keys commands
	// refuse a change without --reason, instead of warning and recording
	// that no reason was given.
	AuditReasonRequiredCLI bool `env:"AUDIT_REASON_REQUIRED_CLI" envDefault:"false"`

	// The console's session cookies and CSRF tokens are signed with this
	// secret (at least 32 bytes), given as is or in a file; unset, a random
	// secret per process (sessions end at a restart and are valid on one
	// replica only).
	ConsoleSessionSecret     string `env:"CONSOLE_SESSION_SECRET" redact:"secret"`
	ConsoleSessionSecretFile string `env:"CONSOLE_SESSION_SECRET_FILE"`

	// Single sign-on through the corporate identity provider (OpenID
	// Connect; docs/ADMIN.md "Single sign-on"). Unset OIDC_ISSUER_URL: none.
	OIDCIssuerURL        string `env:"OIDC_ISSUER_URL"`                     // exactly as its discovery document names it
	OIDCAudience         string `env:"OIDC_AUDIENCE"`                       // what a bearer token's aud must contain
	OIDCRoleClaim        string `env:"OIDC_ROLE_CLAIM" envDefault:"roles"`  // the claim of the roles OIDC_ADMIN_ROLES maps
	OIDCAdminRoles       string `env:"OIDC_ADMIN_ROLES"`                    // ROLE=SCOPE,…: admins' scopes
	OIDCUserClaim        string `env:"OIDC_USER_CLAIM" envDefault:"email"`  // a caller's user
	OIDCTeamClaim        string `env:"OIDC_TEAM_CLAIM" envDefault:"groups"` // a caller's team candidates
	OIDCTeamPattern      string `env:"OIDC_TEAM_PATTERN"`                   // picks the team; unset: callers may not sign in
	OIDCCallerRPM        int    `env:"OIDC_CALLER_RPM" envDefault:"0"`      // a signed-in caller's requests per window; 0 unlimited
	OIDCCallerTPM        int    `env:"OIDC_CALLER_TPM" envDefault:"0"`      // a signed-in caller's tokens per window; 0 unlimited
	OIDCClientID         string `env:"OIDC_CLIENT_ID"`                      // the console's client at the provider
	OIDCClientSecret     string `env:"OIDC_CLIENT_SECRET" redact:"secret"`
	OIDCClientSecretFile string `env:"OIDC_CLIENT_SECRET_FILE"`
	ConsoleBaseURL       string `env:"CONSOLE_BASE_URL"` // where browsers reach the console; the redirect URI is under it

	// Gateway policy.
	CatalogueFile      string `env:"CATALOGUE_FILE"`                         // YAML; empty means the built-in mock catalogue
	AuditReasonMinLen  int    `env:"AUDIT_REASON_MIN_LEN" envDefault:"3"`    // visible characters
	AuditReasonMaxLen  int    `env:"AUDIT_REASON_MAX_LEN" envDefault:"1000"` // characters; longer reasons get 400
	EmbedMaxDimensions int    `env:"EMBED_MAX_DIMENSIONS" envDefault:"4096"`
	EmbedMaxInputs     int    `env:"EMBED_MAX_INPUTS" envDefault:"2048"`
	EmbedMaxInputBytes int    `env:"EMBED_MAX_INPUT_BYTES" envDefault:"1048576"`
	EmbedMaxValues     int    `env:"EMBED_MAX_RESPONSE_VALUES" envDefault:"2097152"` // inputs × dimensions
	MaxConcurrentCalls int    `env:"MAX_CONCURRENT_CALLS" envDefault:"256"`
	// One key's and one team's share of MAX_CONCURRENT_CALLS; unset means a
	// quarter (per key) and half (per team) of it: see ConcurrentPerKey.
	MaxConcurrentPerKey  *int          `env:"MAX_CONCURRENT_PER_KEY"`
	MaxConcurrentPerTeam *int          `env:"MAX_CONCURRENT_PER_TEAM"`
	ProviderTimeout      time.Duration `env:"PROVIDER_TIMEOUT" envDefault:"60s"`        // to the answer, or a stream's first event
	StreamTimeout        time.Duration `env:"PROVIDER_STREAM_TIMEOUT" envDefault:"10m"` // a whole stream
	ProviderAttempts     int           `env:"PROVIDER_MAX_ATTEMPTS" envDefault:"3"`
	RetryBackoff         time.Duration `env:"PROVIDER_RETRY_BACKOFF" envDefault:"200ms"`

	// Rate and concurrency limits: in this process, or shared by the
	// replicas through Redis when REDIS_URL is set (docs/OPERATIONS.md).
	RedisURL                 string        `env:"REDIS_URL" redact:"url"`                        // redis:// or rediss://; empty: limits per process
	RedisTimeout             time.Duration `env:"REDIS_TIMEOUT" envDefault:"500ms"`              // bound on each Redis operation
	RateLimitWhenUnavailable string        `env:"RATE_LIMIT_WHEN_UNAVAILABLE" envDefault:"deny"` // deny | allow
	RateLimitWindow          time.Duration `env:"RATE_LIMIT_WINDOW" envDefault:"1m"`             // the rpm/tpm window; tests shorten it
	RateLimitLeaseTTL        time.Duration `env:"RATE_LIMIT_LEASE_TTL" envDefault:"30s"`         // a dead replica's places in flight come back after it
	AuthFailureLimit         int           `env:"AUTH_FAILURE_LIMIT" envDefault:"20"`            // failed authentications per client address per window on the model endpoints; 0: not throttled
	AdminAuthFailureLimit    int           `env:"ADMIN_AUTH_FAILURE_LIMIT" envDefault:"10"`      // failed authentications per client address per window on the admin API and the console together; 0: not throttled
	TrustedProxies           string        `env:"TRUSTED_PROXIES"`                               // CIDRs or addresses whose X-Forwarded-For names the client; empty: none

	// Stored responses of the Responses API.
	ResponsesRetention    time.Duration `env:"RESPONSES_RETENTION" envDefault:"720h"`     // how long a stored response is kept
	ResponsesStoreDefault bool          `env:"RESPONSES_STORE_DEFAULT" envDefault:"true"` // a request that omits "store" is stored, as on OpenAI

	// Each provider type's own settings are read by the provider registry
	// in cmd/app (ParseSettings), not here.

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`  // debug | info | warn | error
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"` // text | json

	profileSet []string // what the profile filled in; see ProfileDefaults
	// lockTimeoutDerived: LEDGER_LOCK_TIMEOUT is not set, and its default
	// was bounded by DB_POOL_ACQUIRE_TIMEOUT (see LoadConfig).
	lockTimeoutDerived bool
}

// maxAuditReasonLen is the most AUDIT_REASON_MAX_LEN may allow: MLflow
// keeps 8000 characters of a tag, and a reason must reach it whole.
const maxAuditReasonLen = 8000

// MaxKeyCacheTTL is the longest KEY_CACHE_TTL: the TTL is the safety net
// for a lost notification, so it stays short.
const MaxKeyCacheTTL = 10 * time.Minute

// AdminOff is the ADMIN_ADDR that serves /metrics and /debug/* nowhere.
const AdminOff = "off"

// Seconds is a duration written as a number of seconds, as SQLAlchemy's pool
// settings are ("30", "1.5"); a Go duration ("30s") is accepted too.
type Seconds time.Duration

// UnmarshalText parses a non-negative number of seconds ("30", "1.5") or a
// non-negative Go duration ("30s", "1m30s"); anything else is an error.
func (s *Seconds) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	if strings.HasPrefix(text, "-") {
		return errors.New("must not be negative")
	}
	if isDecimal(text) {
		text += "s" // exact decimal arithmetic, and an error on overflow
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return errors.New("must be a number of seconds such as 30 or a duration such as 30s")
	}
	*s = Seconds(d)
	return nil
}

// isDecimal reports whether s is digits with at most one decimal point.
func isDecimal(s string) bool {
	digits, points := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			points++
		default:
			return false
		}
	}
	return digits > 0 && points <= 1
}

// Duration returns the value as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) }

// ConfigError lists every problem found in the configuration, one readable
// line each, so that an operator can fix them all in one go.
type ConfigError struct{ Problems []string }

// Error returns the problems, one per line.
func (e *ConfigError) Error() string { return strings.Join(e.Problems, "\n") }

// LoadConfig parses the configuration from environ (variable → value; the
// caller passes the process environment), with the profile's defaults for
// variables that are not set, and validates it. All problems are returned at
// once in a *ConfigError; a bad value never falls back to a default.
func LoadConfig(environ map[string]string) (Config, error) {
	profile := environ["DEPLOY_PROFILE"]
	if profile == "" {
		profile = defaultProfile
	}
	merged, filled := withProfileDefaults(environ, profile)
	var cfg Config
	var problems, unparsed []string
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: merged}); err != nil {
		problems, unparsed = parseProblems(err, merged, reflect.TypeFor[Config]())
	}
	cfg.profileSet = filled
	if v, set := environ["BUDGET_ALERT_THRESHOLDS"]; set && v == "" {
		// The library gives an empty variable its default; README's
		// "empty: none" is the way to turn alerts off.
		cfg.BudgetAlertThresholds = ""
	}
	problems = append(problems, secretFromFile("CONSOLE_SESSION_SECRET", &cfg.ConsoleSessionSecret, cfg.ConsoleSessionSecretFile)...)
	if _, set := merged["LEDGER_LOCK_TIMEOUT"]; !set && cfg.DBAcquireTimeout > 0 {
		// The default stays below a short DB_POOL_ACQUIRE_TIMEOUT too; an
		// explicit value that does not is refused by validate.
		cfg.LedgerLockTimeout = min(cfg.LedgerLockTimeout, cfg.DBAcquireTimeout/2)
		cfg.lockTimeoutDerived = true
	}
	problems = append(problems, cfg.validate(unparsed)...)
	if len(problems) > 0 {
		return Config{}, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// secretFromFile fills *value, the secret setting name, from the file that
// name_FILE names, when it is set: setting both is a problem, and so is a
// file that cannot be read or is empty. Surrounding white space (a final
// newline) is not part of the secret.
func secretFromFile(name string, value *string, file string) []string {
	if file == "" {
		return nil
	}
	if *value != "" {
		return []string{fmt.Sprintf("%s and %s_FILE are both set: set one", name, name)}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return []string{fmt.Sprintf("%s_FILE=%q: %v", name, file, errors.Unwrap(err))}
	}
	if *value = strings.TrimSpace(string(b)); *value == "" {
		return []string{fmt.Sprintf("%s_FILE=%q: the file is empty", name, file)}
	}
	return nil
}

// setting is one Config field as the environment sees it.
type setting struct {
	field    string // the Go field name
	variable string // the environment variable
	redact   string // "", "secret" or "url"
}

// settings lists Config's fields that are read from the environment.
func settings() []setting { return settingsOf(reflect.TypeFor[Config]()) }

// settingsOf lists the fields of struct type t that have an env tag.
func settingsOf(t reflect.Type) []setting {
	out := make([]setting, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name != "" {
			out = append(out, setting{field: f.Name, variable: name, redact: f.Tag.Get("redact")})
		}
	}
	return out
}

// show returns value as it may appear in logs and error messages.
func (s setting) show(value string) string {
	switch {
	case s.redact == "secret" && value != "":
		return "***"
	case s.redact == "url":
		return RedactURL(value)
	}
	return value
}

// ParseSettings fills dst, a pointer to a struct whose fields carry env
// tags (and redact tags, as Config's do), from environ, and returns one
// readable line per variable that could not be parsed. It reads the
// settings of the parts of tidygate that own them, such as each provider
// type's, the same way LoadConfig reads Config.
func ParseSettings(dst any, environ map[string]string) []string {
	err := env.ParseWithOptions(dst, env.Options{Environment: environ})
	if err == nil {
		return nil
	}
	problems, _ := parseProblems(err, environ, reflect.TypeOf(dst).Elem())
	return problems
}

// RedactedSettings returns the settings of v, a struct whose fields carry
// env tags, as VARIABLE → value, safe to log or print as Config.Redacted is.
func RedactedSettings(v any) map[string]string {
	rv := reflect.ValueOf(v)
	list := settingsOf(rv.Type())
	out := make(map[string]string, len(list))
	for _, s := range list {
		out[s.variable] = s.show(formatValue(rv.FieldByName(s.field).Interface()))
	}
	return out
}

// parseProblems turns the env library's aggregate error into one line per
// variable, naming the variable and its value rather than the Go field of
// struct type t. It also returns the variables that failed to parse.
func parseProblems(err error, environ map[string]string, t reflect.Type) (problems, unparsed []string) {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []string{err.Error()}, nil
	}
	byField := make(map[string]setting)
	for _, s := range settingsOf(t) {
		byField[s.field] = s
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			problems = append(problems, e.Error())
			continue
		}
		s := byField[pe.Name]
		problems = append(problems, fmt.Sprintf("%s=%q: %s", s.variable, s.show(environ[s.variable]), expectation(pe)))
		unparsed = append(unparsed, s.variable)
	}
	return problems, unparsed
}

// expectation says what a value that failed to parse should have looked like.
func expectation(pe env.ParseError) string {
	var ne *strconv.NumError
	if pe.Type.Kind() == reflect.Pointer {
		pe.Type = pe.Type.Elem()
	}
	switch {
	case pe.Type == reflect.TypeFor[Seconds]():
		return pe.Err.Error()
	case pe.Type == reflect.TypeFor[time.Duration]():
		return "must be a duration such as 500ms, 5s or 10m"
	case pe.Type.Kind() == reflect.Bool:
		return "must be true or false"
	case errors.As(pe.Err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		return "is out of range"
	case pe.Type.Kind() == reflect.Float32 || pe.Type.Kind() == reflect.Float64:
		return "must be a number"
	case pe.Type.Kind() >= reflect.Int && pe.Type.Kind() <= reflect.Uint64:
		return "must be a whole number"
	}
	return pe.Err.Error()
}

// checker collects validation problems, each naming the variable and its
// value, and saying when the value is the profile's default.
type checker struct {
	profile     string
	fromProfile map[string]bool
	unparsed    map[string]bool // already reported; their zero values are not checked
	problems    []string
}

// fail records that variable name has a bad value; format says what is allowed.
func (c *checker) fail(name string, value any, format string, args ...any) {
	if c.unparsed[name] {
		return
	}
	shown := fmt.Sprint(value)
	if s, ok := value.(string); ok {
		shown = strconv.Quote(s)
	}
	line := name + "=" + shown
	if c.fromProfile[name] {
		line += " (the DEPLOY_PROFILE=" + c.profile + " default)"
	}
	c.problems = append(c.problems, line+": "+fmt.Sprintf(format, args...))
}

func (c *checker) oneOf(name, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	c.fail(name, value, "must be %s", orList(allowed))
}

// orList writes "a", "a or b", "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// atLeast checks an integer's lower bound; note, if any, says why.
func (c *checker) atLeast(name string, value, lowest int64, note string) {
	if value < lowest {
		c.fail(name, value, "must be at least %d%s", lowest, note)
	}
}

func (c *checker) between(name string, value, lowest, highest int64) {
	if value < lowest || value > highest {
		c.fail(name, value, "must be between %d and %d", lowest, highest)
	}
}

func (c *checker) positive(name string, d time.Duration) {
	if d <= 0 {
		c.fail(name, d, "must be longer than zero")
	}
}

// postgresURL checks an optional URL, showing it with its password masked;
// note, if any, is added to the problem.
func (c *checker) postgresURL(name, value, note string) {
	if value == "" {
		return
	}
	if u, err := url.Parse(value); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Opaque != "" {
		c.fail(name, RedactURL(value), "must be a postgres:// or postgresql:// URL%s", note)
	}
}

// file checks that path, when one is given, names a file that can be
// read, so that a wrong path is one line at start rather than a failure
// after the database has been prepared.
func (c *checker) file(name, path, what string) {
	if path == "" {
		return
	}
	// Stat first: opening a named pipe to see whether it can be read
	// would wait for a writer.
	info, err := os.Stat(path)
	if err == nil && !info.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err == nil {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			_ = f.Close()
		}
	}
	if err != nil {
		c.fail(name, path, "must be %s (%v)", what, unwrapPath(err))
	}
}

// unwrapPath drops the path an *os.PathError repeats, which the line names
// already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// redisURL checks a Redis URL, when one is given: redis:// or rediss://, a
// host, a port from 1 to 65535 if one is named, and a database number if a
// path names one.
func (c *checker) redisURL(name, value string) {
	if value == "" {
		return
	}
	u, err := url.Parse(value)
	ok := err == nil && (u.Scheme == "redis" || u.Scheme == "rediss") && u.Host != "" && u.Opaque == ""
	if ok && u.Port() != "" {
		port, err := strconv.ParseUint(u.Port(), 10, 16)
		ok = err == nil && port > 0
	}
	if ok && strings.TrimPrefix(u.Path, "/") != "" {
		_, err := strconv.ParseUint(strings.TrimPrefix(u.Path, "/"), 10, 31)
		ok = err == nil
	}
	if !ok {
		c.fail(name, RedactURL(value), "must be redis://[user:password@]host[:port][/db] with a port from 1 to 65535 and a database number, or rediss://… (TLS)")
	}
}

// listenAddr checks a host:port to listen on; port 0 lets the system choose.
func (c *checker) listenAddr(name, value string) {
	_, port, err := net.SplitHostPort(value)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		c.fail(name, value, "must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080")
	}
}

// validate checks every setting except those in unparsed.
func (cfg Config) validate(unparsed []string) []string {
	c := checker{profile: cfg.Profile, fromProfile: make(map[string]bool), unparsed: make(map[string]bool)}
	for _, kv := range cfg.profileSet {
		name, _, _ := strings.Cut(kv, "=")
		c.fromProfile[name] = true
	}
	for _, name := range unparsed {
		c.unparsed[name] = true
	}
	_, knownProfile := profileDefaults(cfg.Profile)
	c.oneOf("DEPLOY_PROFILE", cfg.Profile, profileNames()...)
	c.atLeast("REPLICAS", int64(cfg.Replicas), 1, "")

	c.postgresURL("DATABASE_URL", cfg.DatabaseURL, "")
	c.between("DB_PORT", int64(cfg.DBPort), 1, 65535)
	c.oneOf("DB_SSLMODE", cfg.DBSSLMode, "disable", "allow", "prefer", "require", "verify-ca", "verify-full")
	if (cfg.DBSSLMode == "verify-ca" || cfg.DBSSLMode == "verify-full") && cfg.DBSSLRootCert == "" {
		c.fail("DB_SSLMODE", cfg.DBSSLMode, "needs DB_SSLROOTCERT, the CA bundle that signed the server's certificate (for RDS: the RDS CA bundle)")
	}
	c.file("DB_SSLROOTCERT", cfg.DBSSLRootCert, "a readable CA bundle file")
	c.atLeast("DB_POOL_MAX_CONNS", int64(cfg.DBPoolMaxConns), 1, "")
	c.atLeast("DB_POOL_MIN_CONNS", int64(cfg.DBPoolMinConns), 0, "")
	if cfg.DBPoolMinConns > cfg.DBPoolMaxConns && cfg.DBPoolMaxConns >= 1 {
		c.fail("DB_POOL_MIN_CONNS", cfg.DBPoolMinConns, "must not exceed DB_POOL_MAX_CONNS=%d", cfg.DBPoolMaxConns)
	}
	c.positive("DB_POOL_ACQUIRE_TIMEOUT", cfg.DBAcquireTimeout)
	c.positive("DB_CONNECT_TIMEOUT", cfg.DBConnectTimeout)
	c.positive("DB_POOL_MAX_CONN_LIFETIME", cfg.DBMaxConnLifetime)
	c.positive("DB_POOL_MAX_CONN_IDLE_TIME", cfg.DBMaxConnIdleTime)
	c.oneOf("DB_CONNECTION_BUDGET", cfg.DBConnBudget, "enforce", "warn")
	c.oneOf("LEDGER_SYNCHRONOUS_COMMIT", cfg.LedgerSyncCommit, "off", "on")
	c.oneOf("LEDGER_RESERVATION", cfg.LedgerReservation, "alongside", "first")
	switch {
	case cfg.LedgerLockTimeout < time.Millisecond && cfg.lockTimeoutDerived:
		// The operator set only the acquire timeout: say so of it.
		c.fail("DB_POOL_ACQUIRE_TIMEOUT", cfg.DBAcquireTimeout, "must be at least 2ms while LEDGER_LOCK_TIMEOUT is not set (its default is half of DB_POOL_ACQUIRE_TIMEOUT, and at least 1ms)")
	case cfg.LedgerLockTimeout < time.Millisecond:
		c.fail("LEDGER_LOCK_TIMEOUT", cfg.LedgerLockTimeout, "must be at least 1ms")
	case cfg.DBAcquireTimeout > 0 && cfg.LedgerLockTimeout >= cfg.DBAcquireTimeout:
		c.fail("LEDGER_LOCK_TIMEOUT", cfg.LedgerLockTimeout, "must be shorter than DB_POOL_ACQUIRE_TIMEOUT=%s, so that one budget's locked row cannot keep other callers waiting for a connection", cfg.DBAcquireTimeout)
	}

	if cfg.KeyCacheTTL < 0 || cfg.KeyCacheTTL > MaxKeyCacheTTL {
		c.fail("KEY_CACHE_TTL", cfg.KeyCacheTTL, "must be between 0 (no cache) and %s: it bounds how long a key change whose notification is lost goes unseen", MaxKeyCacheTTL)
	}

	if _, err := cfg.BudgetLocation(); err != nil {
		note := ""
		if cfg.BudgetTimeZone == "Local" {
			note = ", not Local (this host's zone, which other replicas need not share)"
		}
		c.fail("BUDGET_TIME_ZONE", cfg.BudgetTimeZone, "must be an IANA time zone such as UTC or Europe/Berlin%s", note)
	}
	if _, err := domain.ParseAlertThresholds(cfg.BudgetAlertThresholds); err != nil {
		c.fail("BUDGET_ALERT_THRESHOLDS", cfg.BudgetAlertThresholds, "must be comma-separated percentages such as 50,80,100: %v", err)
	}
	if u := cfg.BudgetAlertWebhookURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			c.fail("BUDGET_ALERT_WEBHOOK_URL", "(hidden)", "must be an http:// or https:// URL")
		}
		if cfg.BudgetAlertWebhookSecret == "" {
			c.fail("BUDGET_ALERT_WEBHOOK_SECRET", "", "must be set when BUDGET_ALERT_WEBHOOK_URL is: receivers check the signature")
		}
	}

	c.oneOf("MLFLOW_POOL", cfg.MLflowPool, "shared", "dedicated")
	const unbounded = " (SQLAlchemy's %s means no limit, which a bounded pgx pool cannot honour)"
	c.atLeast("MLFLOW_SQLALCHEMY_POOL_SIZE", int64(cfg.MLflowPoolSize), 1, fmt.Sprintf(unbounded, "0"))
	c.atLeast("MLFLOW_SQLALCHEMY_MAX_OVERFLOW", int64(cfg.MLflowMaxOverflow), 0, fmt.Sprintf(unbounded, "-1"))
	if int64(cfg.MLflowPoolSize)+int64(cfg.MLflowMaxOverflow) > math.MaxInt32 {
		c.fail("MLFLOW_SQLALCHEMY_MAX_OVERFLOW", cfg.MLflowMaxOverflow, "POOL_SIZE + MAX_OVERFLOW must be at most %d", math.MaxInt32)
	}
	c.positive("MLFLOW_SQLALCHEMY_POOL_TIMEOUT", cfg.MLflowPoolTimeout.Duration())
	c.positive("MLFLOW_SQLALCHEMY_POOL_RECYCLE", cfg.MLflowPoolRecycle.Duration())
	c.postgresURL("MLFLOW_TRACKING_URI", cfg.MLflowTrackingURI, " (tidygate writes to MLflow's database, not to its tracking server)")
	if cfg.MLflowTrackingURI != "" && cfg.MLflowPool == "shared" {
		c.fail("MLFLOW_POOL", cfg.MLflowPool, "must be dedicated when MLFLOW_TRACKING_URI is set (a shared pool cannot reach another database)")
	}
	if knownProfile || cfg.MLflowSchema != "" { // an unknown profile gave no default; that problem is already reported
		c.oneOf("MLFLOW_SCHEMA", cfg.MLflowSchema, "verify", "create")
	}
	c.oneOf("MLFLOW_LOG_MODE", cfg.MLflowLogMode, "traces", "runs", "both", "off")
	if cfg.MLflowLogMode == "off" && cfg.Profile != "local" {
		c.fail("MLFLOW_LOG_MODE", cfg.MLflowLogMode, "turns the audit trail off, which only the local profile allows (for benchmarks and development), not DEPLOY_PROFILE=%s", cfg.Profile)
	}
	c.file("CATALOGUE_FILE", cfg.CatalogueFile, "a readable catalogue file")
	c.oneOf("MLFLOW_LOG_CONTENT", cfg.MLflowLogContent, "full", "preview", "none")
	c.positive("RESPONSES_RETENTION", cfg.ResponsesRetention)
	if strings.TrimSpace(cfg.JournalDir) == "" {
		c.fail("MLFLOW_JOURNAL_DIR", cfg.JournalDir, "must name a directory")
	}
	c.atLeast("MLFLOW_JOURNAL_MAX_RECORDS", int64(cfg.JournalMaxRecords), 1, "")
	c.oneOf("MLFLOW_JOURNAL_WHEN_FULL", cfg.JournalWhenFull, "refuse", "accept")
	c.between("MLFLOW_WRITER_BATCH_SIZE", int64(cfg.WriterBatchSize), 1, 1000)
	c.positive("MLFLOW_WRITER_FLUSH_INTERVAL", cfg.WriterFlushInterval)

	c.redisURL("REDIS_URL", cfg.RedisURL)
	c.positive("REDIS_TIMEOUT", cfg.RedisTimeout)
	c.oneOf("RATE_LIMIT_WHEN_UNAVAILABLE", cfg.RateLimitWhenUnavailable, "deny", "allow")
	if cfg.RateLimitWindow < time.Second {
		c.fail("RATE_LIMIT_WINDOW", cfg.RateLimitWindow, "must be at least 1s (rpm and tpm are per minute; shorter windows are for tests)")
	}
	if cfg.RateLimitLeaseTTL < time.Second {
		c.fail("RATE_LIMIT_LEASE_TTL", cfg.RateLimitLeaseTTL, "must be at least 1s (leases are renewed every third of it)")
	}
	c.atLeast("AUTH_FAILURE_LIMIT", int64(cfg.AuthFailureLimit), 0, " (0: failed authentications are not throttled)")
	c.atLeast("ADMIN_AUTH_FAILURE_LIMIT", int64(cfg.AdminAuthFailureLimit), 0, " (0: failed authentications are not throttled)")
	if _, err := parseTrustedProxies(cfg.TrustedProxies); err != nil {
		c.fail("TRUSTED_PROXIES", cfg.TrustedProxies, "%v", err)
	}

	c.listenAddr("HTTP_ADDR", cfg.HTTPAddr)
	if cfg.AdminAddr != AdminOff {
		c.listenAddr("ADMIN_ADDR", cfg.AdminAddr)
		if cfg.AdminAddr == cfg.HTTPAddr && !strings.HasSuffix(cfg.AdminAddr, ":0") {
			c.fail("ADMIN_ADDR", cfg.AdminAddr, "must differ from HTTP_ADDR")
		}
	}
	if cfg.AdminAPIAddr != "" {
		c.listenAddr("ADMIN_API_ADDR", cfg.AdminAPIAddr)
		if !strings.HasSuffix(cfg.AdminAPIAddr, ":0") && (cfg.AdminAPIAddr == cfg.AdminAddr || cfg.AdminAPIAddr == cfg.HTTPAddr) {
			c.fail("ADMIN_API_ADDR", cfg.AdminAPIAddr, "must differ from ADMIN_ADDR (the admin API never sits beside /metrics and /debug/*) and from HTTP_ADDR (leave it empty to serve the admin API there)")
		}
	}
	if n := len(cfg.ConsoleSessionSecret); n > 0 && n < 32 {
		c.fail("CONSOLE_SESSION_SECRET", "(hidden)", "must be at least 32 bytes long, not %d (e.g. openssl rand -hex 32)", n)
	}
	c.atLeast("HTTP_MAX_BODY_BYTES", cfg.MaxBodyBytes, 0, " (0 or unset: each dialect's default)")
	c.positive("HTTP_READ_HEADER_TIMEOUT", cfg.ReadHeaderTimeout)
	c.positive("HTTP_IDLE_TIMEOUT", cfg.IdleTimeout)
	c.positive("HTTP_WRITE_TIMEOUT", cfg.WriteTimeout)
	c.positive("SHUTDOWN_TIMEOUT", cfg.ShutdownTimeout)

	cfg.validateSignOn(&c)

	c.atLeast("AUDIT_REASON_MIN_LEN", int64(cfg.AuditReasonMinLen), 1, " (every call must state its reason)")
	if cfg.AuditReasonMinLen > maxAuditReasonLen {
		c.fail("AUDIT_REASON_MIN_LEN", cfg.AuditReasonMinLen, "must be at most %d (the most AUDIT_REASON_MAX_LEN may be)", maxAuditReasonLen)
	}
	// The maximum is bounded by the minimum only when the minimum is valid:
	// a bad minimum is reported once, on its own line.
	lowestMax := cfg.AuditReasonMinLen
	if lowestMax < 1 || lowestMax > maxAuditReasonLen {
		lowestMax = 1
	}
	c.between("AUDIT_REASON_MAX_LEN", int64(cfg.AuditReasonMaxLen), int64(lowestMax), maxAuditReasonLen)
	c.between("EMBED_MAX_DIMENSIONS", int64(cfg.EmbedMaxDimensions), 1, 65536)
	c.between("EMBED_MAX_INPUTS", int64(cfg.EmbedMaxInputs), 1, domain.MaxEmbedInputs)
	c.atLeast("EMBED_MAX_INPUT_BYTES", int64(cfg.EmbedMaxInputBytes), 1, "")
	c.atLeast("EMBED_MAX_RESPONSE_VALUES", int64(cfg.EmbedMaxValues), 1, "")
	c.atLeast("MAX_CONCURRENT_CALLS", int64(cfg.MaxConcurrentCalls), 1, "")
	if cfg.MaxConcurrentCalls >= 1 {
		c.between("MAX_CONCURRENT_PER_KEY", int64(cfg.ConcurrentPerKey()), 1, int64(cfg.MaxConcurrentCalls))
		c.between("MAX_CONCURRENT_PER_TEAM", int64(cfg.ConcurrentPerTeam()), 1, int64(cfg.MaxConcurrentCalls))
	} else { // a bad MAX_CONCURRENT_CALLS is reported already, and bounds nothing
		c.atLeast("MAX_CONCURRENT_PER_KEY", int64(cfg.ConcurrentPerKey()), 1, "")
		c.atLeast("MAX_CONCURRENT_PER_TEAM", int64(cfg.ConcurrentPerTeam()), 1, "")
	}
	c.positive("PROVIDER_TIMEOUT", cfg.ProviderTimeout)
	if cfg.StreamTimeout < cfg.ProviderTimeout {
		c.fail("PROVIDER_STREAM_TIMEOUT", cfg.StreamTimeout, "must be at least PROVIDER_TIMEOUT (%s): it bounds a whole stream, PROVIDER_TIMEOUT only its start", cfg.ProviderTimeout)
	}
	c.between("PROVIDER_MAX_ATTEMPTS", int64(cfg.ProviderAttempts), 1, 10)
	c.positive("PROVIDER_RETRY_BACKOFF", cfg.RetryBackoff)
	c.oneOf("LOG_LEVEL", cfg.LogLevel, "debug", "info", "warn", "error")
	c.oneOf("LOG_FORMAT", cfg.LogFormat, "text", "json")
	return c.problems
}

// LogValue makes a logged Config show its Redacted view, so that logging the
// whole configuration never writes a secret.
func (c Config) LogValue() slog.Value {
	view := c.Redacted()
	attrs := make([]slog.Attr, 0, len(view))
	for _, name := range slices.Sorted(maps.Keys(view)) {
		attrs = append(attrs, slog.String(name, view[name]))
	}
	return slog.GroupValue(attrs...)
}

// Redacted returns every setting as VARIABLE → value, safe to log or print:
// secrets show as "***" when set, and passwords inside URLs are masked.
func (c Config) Redacted() map[string]string { return RedactedSettings(c) }

func formatValue(v any) string {
	switch x := v.(type) {
	case Seconds:
		return x.Duration().String()
	case time.Duration:
		return x.String()
	case *int: // a setting whose default is derived from another
		if x == nil {
			return "(derived default)"
		}
		return fmt.Sprint(*x)
	}
	return fmt.Sprint(v)
}

// RedactURL masks the password of a URL, whether in its user information or
// in a password query parameter. A value that is not a scheme://… URL (a
// keyword/value DSN, a typo) is masked whole, since it may hold a password.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "***"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// ConcurrentPerKey is how many concurrent calls one API key may make:
// MAX_CONCURRENT_PER_KEY, or when it is unset a quarter of
// MAX_CONCURRENT_CALLS (at least 1), so that one key cannot take every slot.
func (cfg Config) ConcurrentPerKey() int {
	if cfg.MaxConcurrentPerKey != nil {
		return *cfg.MaxConcurrentPerKey
	}
	return max(cfg.MaxConcurrentCalls/4, 1)
}

// ConcurrentPerTeam is how many concurrent calls one team's keys may make
// together: MAX_CONCURRENT_PER_TEAM, or when it is unset half of
// MAX_CONCURRENT_CALLS (at least 1).
func (cfg Config) ConcurrentPerTeam() int {
	if cfg.MaxConcurrentPerTeam != nil {
		return *cfg.MaxConcurrentPerTeam
	}
	return max(cfg.MaxConcurrentCalls/2, 1)
}

// ReserveFirst says whether every call holds its reservation before its
// provider is called (LEDGER_RESERVATION=first), rather than a caller
// without budgets reserving while its provider works (alongside).
func (cfg Config) ReserveFirst() bool { return cfg.LedgerReservation == "first" }

// TrustedProxyPrefixes returns the proxies whose X-Forwarded-For names
// the client a request is counted against (TRUSTED_PROXIES), validated at
// load.
func (cfg Config) TrustedProxyPrefixes() []netip.Prefix {
	p, _ := parseTrustedProxies(cfg.TrustedProxies)
	return p
}

// parseTrustedProxies parses a comma-separated list of CIDR prefixes
// ("10.0.0.0/8") and single addresses ("192.0.2.10").
func parseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix such as 10.0.0.0/8", part)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// BudgetLocation returns the zone of BUDGET_TIME_ZONE.
func (c Config) BudgetLocation() (*time.Location, error) {
	if c.BudgetTimeZone == "Local" {
		// time.LoadLocation's Local is the host's zone (TZ, /etc/localtime):
		// replicas on other hosts would count other days.
		return nil, errors.New(`"Local" is not an IANA time zone`)
	}
	return time.LoadLocation(c.BudgetTimeZone)
}

// BudgetThresholds returns the percentages of BUDGET_ALERT_THRESHOLDS
// (validated at load).
func (c Config) BudgetThresholds() []int {
	t, _ := domain.ParseAlertThresholds(c.BudgetAlertThresholds)
	return t
}
