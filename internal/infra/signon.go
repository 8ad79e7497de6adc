package infra

import (
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/tidygate/tidygate/internal/domain"
)

// validateSignOn checks the OIDC_* settings and CONSOLE_BASE_URL.
func (cfg Config) validateSignOn(c *checker) {
	if cfg.OIDCIssuerURL == "" {
		for _, s := range [][2]string{{"OIDC_AUDIENCE", cfg.OIDCAudience}, {"OIDC_ADMIN_ROLES", cfg.OIDCAdminRoles},
			{"OIDC_TEAM_PATTERN", cfg.OIDCTeamPattern}, {"OIDC_CLIENT_ID", cfg.OIDCClientID}} {
			if s[1] != "" {
				c.fail(s[0], s[1], "needs OIDC_ISSUER_URL, the identity provider it belongs to")
			}
		}
	} else {
		if !webURL(cfg.OIDCIssuerURL) {
			c.fail("OIDC_ISSUER_URL", cfg.OIDCIssuerURL, "must be an https:// URL (http:// only on a loopback address), with no query or fragment")
		}
		if cfg.OIDCAudience == "" {
			c.fail("OIDC_AUDIENCE", "", "must be set when OIDC_ISSUER_URL is: tokens are accepted only when their aud claim contains it")
		}
	}
	for _, s := range [][2]string{{"OIDC_ROLE_CLAIM", cfg.OIDCRoleClaim}, {"OIDC_USER_CLAIM", cfg.OIDCUserClaim}, {"OIDC_TEAM_CLAIM", cfg.OIDCTeamClaim}} {
		if strings.TrimSpace(s[1]) == "" {
			c.fail(s[0], s[1], "must name a claim")
		}
	}
	if _, err := domain.ParseRoleScopes(cfg.OIDCAdminRoles); err != nil {
		c.fail("OIDC_ADMIN_ROLES", cfg.OIDCAdminRoles, "must be ROLE=SCOPE pairs separated by commas: %v", err)
	}
	if _, err := regexp.Compile(cfg.OIDCTeamPattern); err != nil {
		c.fail("OIDC_TEAM_PATTERN", cfg.OIDCTeamPattern, "must be a regular expression (Go syntax): %v", err)
	}
	c.atLeast("OIDC_CALLER_RPM", int64(cfg.OIDCCallerRPM), 0, " (0: unlimited)")
	c.atLeast("OIDC_CALLER_TPM", int64(cfg.OIDCCallerTPM), 0, " (0: unlimited)")

	secret := cfg.OIDCClientSecret != "" || cfg.OIDCClientSecretFile != ""
	switch {
	case cfg.OIDCClientSecret != "" && cfg.OIDCClientSecretFile != "":
		c.fail("OIDC_CLIENT_SECRET_FILE", cfg.OIDCClientSecretFile, "must not be set together with OIDC_CLIENT_SECRET: set one")
	case cfg.OIDCClientSecretFile != "":
		if b, err := os.ReadFile(cfg.OIDCClientSecretFile); err != nil || strings.TrimSpace(string(b)) == "" {
			c.fail("OIDC_CLIENT_SECRET_FILE", cfg.OIDCClientSecretFile, "must be a readable file holding the client secret")
		}
	}
	if cfg.OIDCClientID != "" {
		if !secret {
			c.fail("OIDC_CLIENT_ID", cfg.OIDCClientID, "needs OIDC_CLIENT_SECRET or OIDC_CLIENT_SECRET_FILE (the console is a confidential client)")
		}
		if cfg.ConsoleBaseURL == "" {
			c.fail("OIDC_CLIENT_ID", cfg.OIDCClientID, "needs CONSOLE_BASE_URL, the console's address for the redirect URI")
		}
	} else if secret {
		c.fail("OIDC_CLIENT_SECRET", "(hidden)", "needs OIDC_CLIENT_ID, the client it belongs to")
	}
	switch u, _ := url.Parse(cfg.ConsoleBaseURL); {
	case cfg.ConsoleBaseURL == "":
	case !webURL(cfg.ConsoleBaseURL):
		c.fail("CONSOLE_BASE_URL", cfg.ConsoleBaseURL, "must be an https:// URL (http:// only on a loopback address), with no query or fragment, such as https://tidygate.example.com")
	case strings.Trim(u.Path, "/") != "":
		c.fail("CONSOLE_BASE_URL", cfg.ConsoleBaseURL, "must be the scheme and host only, with no path (the console is always at /console below it), such as https://tidygate.example.com")
	}
}

// webURL reports whether s is an absolute https:// URL, or http:// on a
// loopback host, without query or fragment.
func webURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		if u.Hostname() == "localhost" {
			return true
		}
		ip := net.ParseIP(u.Hostname())
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// SignOnEnabled reports whether tokens of an identity provider are accepted.
func (cfg Config) SignOnEnabled() bool { return cfg.OIDCIssuerURL != "" }

// OIDCSecret returns the console client's secret, from OIDC_CLIENT_SECRET
// or the file OIDC_CLIENT_SECRET_FILE names (checked at load), without
// surrounding white space.
func (cfg Config) OIDCSecret() string {
	if cfg.OIDCClientSecretFile == "" {
		return cfg.OIDCClientSecret
	}
	b, _ := os.ReadFile(cfg.OIDCClientSecretFile)
	return strings.TrimSpace(string(b))
}

// OIDCRoleScopes returns OIDC_ADMIN_ROLES (validated at load).
func (cfg Config) OIDCRoleScopes() domain.RoleScopes {
	m, _ := domain.ParseRoleScopes(cfg.OIDCAdminRoles)
	return m
}

// OIDCTeamRegexp returns OIDC_TEAM_PATTERN compiled, or nil when unset.
func (cfg Config) OIDCTeamRegexp() *regexp.Regexp {
	if cfg.OIDCTeamPattern == "" {
		return nil
	}
	return regexp.MustCompile(cfg.OIDCTeamPattern)
}
