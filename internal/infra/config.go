package infra

import "time"

// Config is every setting tidygate reads from the environment. Field tags
// name the variables; defaults that depend on DEPLOY_PROFILE are applied after
// parsing, only to variables that were not set.
type Config struct {
	Profile  string `env:"DEPLOY_PROFILE" envDefault:"local"` // local | home | aws
	Replicas int    `env:"REPLICAS" envDefault:"1"`

	// Shared pool: DATABASE_URL, or the DB_* parts.
	DatabaseURL       string        `env:"DATABASE_URL"`
	DBHost            string        `env:"DB_HOST" envDefault:"127.0.0.1"`
	DBPort            int           `env:"DB_PORT" envDefault:"5432"`
	DBUser            string        `env:"DB_USER" envDefault:"postgres"`
	DBPassword        string        `env:"DB_PASSWORD"`
	DBName            string        `env:"DB_NAME" envDefault:"postgres"`
	DBSSLMode         string        `env:"DB_SSLMODE" envDefault:"prefer"`
	DBSSLRootCert     string        `env:"DB_SSLROOTCERT"`                           // CA file for verify-ca / verify-full
	DBPoolMinConns    int32         `env:"DB_POOL_MIN_CONNS" envDefault:"1"`         // profile default
	DBPoolMaxConns    int32         `env:"DB_POOL_MAX_CONNS" envDefault:"10"`        // seed default
	DBAcquireTimeout  time.Duration `env:"DB_POOL_ACQUIRE_TIMEOUT" envDefault:"5s"`  // profile default
	DBConnectTimeout  time.Duration `env:"DB_CONNECT_TIMEOUT" envDefault:"5s"`       // profile default
	DBMaxConnLifetime time.Duration `env:"DB_POOL_MAX_CONN_LIFETIME" envDefault:"1h"`
	DBMaxConnIdleTime time.Duration `env:"DB_POOL_MAX_CONN_IDLE_TIME" envDefault:"10m"` // profile default
	DBRequireAtStart  bool          `env:"DB_REQUIRE_AT_START" envDefault:"false"`     // refuse to start while the database is down
	DBConnBudget      string        `env:"DB_CONNECTION_BUDGET" envDefault:"enforce"`  // enforce | warn

	// MLflow call log.
	MLflowPool          string        `env:"MLFLOW_POOL" envDefault:"shared"` // shared | dedicated
	MLflowPoolSize      int32         `env:"MLFLOW_SQLALCHEMY_POOL_SIZE" envDefault:"10"`
	MLflowMaxOverflow   int32         `env:"MLFLOW_SQLALCHEMY_MAX_OVERFLOW" envDefault:"20"`
	MLflowPoolTimeout   Seconds       `env:"MLFLOW_SQLALCHEMY_POOL_TIMEOUT" envDefault:"30"`
	MLflowPoolRecycle   Seconds       `env:"MLFLOW_SQLALCHEMY_POOL_RECYCLE" envDefault:"1800"`
	MLflowPoolPrePing   bool          `env:"MLFLOW_SQLALCHEMY_POOL_PRE_PING" envDefault:"true"`
	MLflowTrackingURI   string        `env:"MLFLOW_TRACKING_URI"`                 // optional postgresql:// URI of a separate MLflow database
	MLflowSchema        string        `env:"MLFLOW_SCHEMA"`                       // verify | create; profile default
	MLflowLogMode       string        `env:"MLFLOW_LOG_MODE" envDefault:"traces"` // traces | runs | both
	MLflowLogContent    string        `env:"MLFLOW_LOG_CONTENT" envDefault:"full"` // full | preview | none
	MLflowExperiment    string        `env:"MLFLOW_EXPERIMENT_PREFIX" envDefault:"gateway/"`
	JournalDir          string        `env:"MLFLOW_JOURNAL_DIR" envDefault:"data/journal"`
	JournalMaxRecords   int           `env:"MLFLOW_JOURNAL_MAX_RECORDS" envDefault:"100000"`
	JournalWhenFull     string        `env:"MLFLOW_JOURNAL_WHEN_FULL" envDefault:"refuse"` // refuse | accept
	WriterBatchSize     int           `env:"MLFLOW_WRITER_BATCH_SIZE" envDefault:"200"`
	WriterFlushInterval time.Duration `env:"MLFLOW_WRITER_FLUSH_INTERVAL" envDefault:"200ms"`

	// HTTP.
	HTTPAddr          string        `env:"HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	AdminAddr         string        `env:"ADMIN_ADDR"` // serves /metrics and /debug/* separately when set
	MaxBodyBytes      int64         `env:"HTTP_MAX_BODY_BYTES" envDefault:"4194304"`
	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"10s"`
	IdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"120s"`
	WriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"300s"` // non-streaming responses
	ShutdownTimeout   time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"30s"`

	// Gateway policy.
	CatalogueFile      string        `env:"CATALOGUE_FILE"` // YAML; empty means the built-in mock catalogue
	AuditReasonMinLen  int           `env:"AUDIT_REASON_MIN_LEN" envDefault:"3"`
	MaxConcurrentCalls int           `env:"MAX_CONCURRENT_CALLS" envDefault:"256"`
	ProviderTimeout    time.Duration `env:"PROVIDER_TIMEOUT" envDefault:"60s"`
	ProviderAttempts   int           `env:"PROVIDER_MAX_ATTEMPTS" envDefault:"3"`
	RetryBackoff       time.Duration `env:"PROVIDER_RETRY_BACKOFF" envDefault:"200ms"`

	// Providers. Keys are secrets: never logged, never reported.
	OpenAIAPIKey     string        `env:"OPENAI_API_KEY"`
	OpenAIBaseURL    string        `env:"OPENAI_BASE_URL"`
	AnthropicAPIKey  string        `env:"ANTHROPIC_API_KEY"`
	AnthropicBaseURL string        `env:"ANTHROPIC_BASE_URL"`
	AWSRegion        string        `env:"AWS_REGION"`
	MockLatency      time.Duration `env:"MOCK_LATENCY" envDefault:"0s"`
	MockFailureRate  float64       `env:"MOCK_FAILURE_RATE" envDefault:"0"`

	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`  // debug | info | warn | error
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"` // text | json

	profileSet []string // what the profile filled in; see ProfileDefaults
}

// Seconds is a duration written as a number of seconds, as SQLAlchemy's pool
// settings are ("30"); a Go duration ("30s") is accepted too.
type Seconds time.Duration
