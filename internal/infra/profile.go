package infra

import (
	"maps"
	"slices"
)

// Deployment profiles (DEPLOY_PROFILE) give pool defaults suited to where
// tidygate runs relative to its database. The latencies in docs/DESIGN-NOTES.md §2 drive them: a
// new connection costs 50–150 ms from a home network to AWS but under 5 ms
// inside AWS, while reusing a pooled connection costs 2–10 ms either way.
//
//   - local: the database is on the same machine. The Config struct's own
//     defaults apply (DB_POOL_MIN_CONNS=1, DB_CONNECT_TIMEOUT=5s,
//     DB_POOL_ACQUIRE_TIMEOUT=5s, DB_POOL_MAX_CONN_IDLE_TIME=10m), and
//     MLFLOW_SCHEMA=create so that a development database gets the tables
//     tidygate writes.
//   - home: far from the database. Every new connection costs 50–150 ms, so
//     keep connections warm and let requests pay only the pooled cost:
//     DB_POOL_MIN_CONNS=4 (one for calls, one for the settler that applies
//     settlements after the answers, one for the MLflow writer, one for the
//     background loops: the audit log's export, budget alerts, sweeps) and
//     DB_POOL_MAX_CONN_IDLE_TIME=30m; a slow link
//     needs patience, DB_CONNECT_TIMEOUT=10s and DB_POOL_ACQUIRE_TIMEOUT=10s.
//     MLflow owns its schema: MLFLOW_SCHEMA=verify.
//   - aws: next to the database. New connections are cheap, so one warm
//     connection is enough (DB_POOL_MIN_CONNS=1) and waiting long only hides
//     a failover: DB_CONNECT_TIMEOUT=5s, DB_POOL_ACQUIRE_TIMEOUT=3s. RDS
//     traffic is encrypted, DB_SSLMODE=require; MLFLOW_SCHEMA=verify.
//
// A profile fills only variables that are unset or empty (the env library
// treats an empty value as unset too); an explicit value always wins.
const defaultProfile = "local"

// profileSetting is one VARIABLE=value a profile supplies.
type profileSetting struct{ variable, value string }

// profileDefaults returns the settings of a profile, in the order they are
// reported, and whether the profile exists.
func profileDefaults(profile string) ([]profileSetting, bool) {
	switch profile {
	case "local":
		return []profileSetting{
			{"MLFLOW_SCHEMA", "create"},
		}, true
	case "home":
		return []profileSetting{
			{"DB_POOL_MIN_CONNS", "4"},
			{"DB_POOL_MAX_CONN_IDLE_TIME", "30m"},
			{"DB_CONNECT_TIMEOUT", "10s"},
			{"DB_POOL_ACQUIRE_TIMEOUT", "10s"},
			{"MLFLOW_SCHEMA", "verify"},
		}, true
	case "aws":
		return []profileSetting{
			{"DB_POOL_MIN_CONNS", "1"},
			{"DB_CONNECT_TIMEOUT", "5s"},
			{"DB_POOL_ACQUIRE_TIMEOUT", "3s"},
			{"DB_SSLMODE", "require"},
			{"MLFLOW_SCHEMA", "verify"},
		}, true
	}
	return nil, false
}

// profileNames lists the valid values of DEPLOY_PROFILE.
func profileNames() []string { return []string{"local", "home", "aws"} }

// withProfileDefaults returns a copy of environ with the profile's settings
// added for variables that are unset or empty, and those settings as
// VARIABLE=value lines for the startup log. environ itself is not modified.
func withProfileDefaults(environ map[string]string, profile string) (map[string]string, []string) {
	defaults, _ := profileDefaults(profile)
	merged := make(map[string]string, len(environ)+len(defaults))
	maps.Copy(merged, environ)
	var filled []string
	for _, d := range defaults {
		if environ[d.variable] == "" {
			merged[d.variable] = d.value
			filled = append(filled, d.variable+"="+d.value)
		}
	}
	return merged, filled
}

// ProfileDefaults returns the VARIABLE=value settings that DEPLOY_PROFILE
// supplied because the variables were not set, for the startup log.
func (c Config) ProfileDefaults() []string { return slices.Clone(c.profileSet) }
