package infra

import (
	"fmt"
	"time"
)

// Deployment profiles set pool defaults for where tidygate runs relative to
// its database. The seed's latencies drive them: a new connection costs
// 50–150 ms from a home network to AWS but under 5 ms inside AWS, while a
// pooled connection costs 2–10 ms either way.
//
//   - local: the database is on the same machine; the struct defaults apply
//     (min 1, max 10, connect 5s, acquire 5s) and MLFLOW_SCHEMA=create, so
//     `make run` works on an empty database.
//   - home: far from the database. Keep connections warm so that requests
//     pay the pooled cost, not the connect cost: DB_POOL_MIN_CONNS=2,
//     DB_POOL_MAX_CONN_IDLE_TIME=30m, DB_CONNECT_TIMEOUT=10s,
//     DB_POOL_ACQUIRE_TIMEOUT=10s; MLflow owns its schema (verify).
//   - aws: next to the database. New connections are cheap and failover is
//     what matters: DB_CONNECT_TIMEOUT=5s, DB_POOL_ACQUIRE_TIMEOUT=3s,
//     DB_SSLMODE=require (RDS); MLflow owns its schema (verify).
//
// A profile only fills variables that are not set.
type profileDefault struct {
	variable string
	apply    func(*Config)
	value    string
}

func profileDefaults(profile string) []profileDefault {
	switch profile {
	case "home":
		return []profileDefault{
			{"DB_POOL_MIN_CONNS", func(c *Config) { c.DBPoolMinConns = 2 }, "2"},
			{"DB_POOL_MAX_CONN_IDLE_TIME", func(c *Config) { c.DBMaxConnIdleTime = 30 * time.Minute }, "30m"},
			{"DB_CONNECT_TIMEOUT", func(c *Config) { c.DBConnectTimeout = 10 * time.Second }, "10s"},
			{"DB_POOL_ACQUIRE_TIMEOUT", func(c *Config) { c.DBAcquireTimeout = 10 * time.Second }, "10s"},
			{"MLFLOW_SCHEMA", func(c *Config) { c.MLflowSchema = "verify" }, "verify"},
		}
	case "aws":
		return []profileDefault{
			{"DB_CONNECT_TIMEOUT", func(c *Config) { c.DBConnectTimeout = 5 * time.Second }, "5s"},
			{"DB_POOL_ACQUIRE_TIMEOUT", func(c *Config) { c.DBAcquireTimeout = 3 * time.Second }, "3s"},
			{"DB_SSLMODE", func(c *Config) { c.DBSSLMode = "require" }, "require"},
			{"MLFLOW_SCHEMA", func(c *Config) { c.MLflowSchema = "verify" }, "verify"},
		}
	default:
		return []profileDefault{
			{"MLFLOW_SCHEMA", func(c *Config) { c.MLflowSchema = "create" }, "create"},
		}
	}
}

// applyProfile fills the profile's defaults into variables absent from
// environ and remembers what it set, for the startup log.
func applyProfile(cfg *Config, environ map[string]string) {
	cfg.profileSet = nil
	for _, d := range profileDefaults(cfg.Profile) {
		if _, set := environ[d.variable]; set {
			continue
		}
		d.apply(cfg)
		cfg.profileSet = append(cfg.profileSet, fmt.Sprintf("%s=%s", d.variable, d.value))
	}
}

// ProfileDefaults returns the VARIABLE=value settings the deployment profile
// filled in because they were not set.
func (c Config) ProfileDefaults() []string { return append([]string(nil), c.profileSet...) }
