package infra

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tidygate/tidygate/internal/domain"
)

func TestSignOnSettingsRejected(t *testing.T) {
	issuer := map[string]string{"OIDC_ISSUER_URL": "https://login.example.com/realms/corp", "OIDC_AUDIENCE": "tidygate"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range issuer {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, c := range []struct {
		environ map[string]string
		want    []string
	}{
		{map[string]string{"OIDC_ISSUER_URL": "https://login.example.com"}, []string{
			`OIDC_AUDIENCE="": must be set when OIDC_ISSUER_URL is: tokens are accepted only when their aud claim contains it`}},
		{map[string]string{"OIDC_AUDIENCE": "tidygate", "OIDC_TEAM_PATTERN": ".+"}, []string{
			`OIDC_AUDIENCE="tidygate": needs OIDC_ISSUER_URL, the identity provider it belongs to`,
			`OIDC_TEAM_PATTERN=".+": needs OIDC_ISSUER_URL, the identity provider it belongs to`}},
		{with(map[string]string{"OIDC_ISSUER_URL": "http://login.example.com"}), []string{
			`OIDC_ISSUER_URL="http://login.example.com": must be an https:// URL (http:// only on a loopback address), with no query or fragment`}},
		{with(map[string]string{"OIDC_ADMIN_ROLES": "tidygate-admin=write,tidygate-auditor"}), []string{
			`OIDC_ADMIN_ROLES="tidygate-admin=write,tidygate-auditor": must be ROLE=SCOPE pairs separated by commas: "tidygate-auditor" is not ROLE=SCOPE (e.g. tidygate-admin=write,tidygate-auditor=read)`}},
		{with(map[string]string{"OIDC_ADMIN_ROLES": "tidygate-admin=admin"}), []string{
			`OIDC_ADMIN_ROLES="tidygate-admin=admin": must be ROLE=SCOPE pairs separated by commas: role "tidygate-admin": unknown scope "admin": the scopes are read and write`}},
		{with(map[string]string{"OIDC_TEAM_PATTERN": "team-(["}), []string{
			"OIDC_TEAM_PATTERN=\"team-([\": must be a regular expression (Go syntax): error parsing regexp: missing closing ]: `[`"}},
		{with(map[string]string{"OIDC_USER_CLAIM": " "}), []string{`OIDC_USER_CLAIM=" ": must name a claim`}},
		{with(map[string]string{"OIDC_CALLER_RPM": "-1"}), []string{`OIDC_CALLER_RPM=-1: must be at least 0 (0: unlimited)`}},
		{with(map[string]string{"OIDC_CLIENT_ID": "console"}), []string{
			`OIDC_CLIENT_ID="console": needs OIDC_CLIENT_SECRET or OIDC_CLIENT_SECRET_FILE (the console is a confidential client)`,
			`OIDC_CLIENT_ID="console": needs CONSOLE_BASE_URL, the console's address for the redirect URI`}},
		{with(map[string]string{"OIDC_CLIENT_ID": "console", "OIDC_CLIENT_SECRET": "s3cret-value", "OIDC_CLIENT_SECRET_FILE": missing,
			"CONSOLE_BASE_URL": "https://tidygate.example.com"}), []string{
			`OIDC_CLIENT_SECRET_FILE="` + missing + `": must not be set together with OIDC_CLIENT_SECRET: set one`}},
		{with(map[string]string{"OIDC_CLIENT_ID": "console", "OIDC_CLIENT_SECRET_FILE": missing, "CONSOLE_BASE_URL": "https://tidygate.example.com"}), []string{
			`OIDC_CLIENT_SECRET_FILE="` + missing + `": must be a readable file holding the client secret`}},
		{with(map[string]string{"OIDC_CLIENT_SECRET": "s3cret-value"}), []string{`OIDC_CLIENT_SECRET="(hidden)": needs OIDC_CLIENT_ID, the client it belongs to`}},
		{map[string]string{"CONSOLE_BASE_URL": "tidygate.example.com"}, []string{
			`CONSOLE_BASE_URL="tidygate.example.com": must be an https:// URL (http:// only on a loopback address), with no query or fragment, such as https://tidygate.example.com`}},
		{map[string]string{"CONSOLE_BASE_URL": "https://corp.example.com/tidygate"}, []string{
			`CONSOLE_BASE_URL="https://corp.example.com/tidygate": must be the scheme and host only, with no path (the console is always at /console below it), such as https://tidygate.example.com`}},
	} {
		got := problems(t, c.environ)
		if !slices.Equal(got, c.want) {
			t.Errorf("LoadConfig(%v):\n got %q\nwant %q", c.environ, got, c.want)
		}
		if strings.Contains(strings.Join(got, "\n"), "s3cret-value") {
			t.Errorf("a problem shows the client secret: %q", got)
		}
	}
}

func TestSignOnSettingsAccepted(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := mustLoad(t, map[string]string{"OIDC_ISSUER_URL": "http://127.0.0.1:8081/realms/corp", "OIDC_AUDIENCE": "tidygate",
		"OIDC_ADMIN_ROLES": "tidygate-admin=write,tidygate-auditor=read", "OIDC_TEAM_PATTERN": "^tidygate-team-(.+)$",
		"OIDC_CLIENT_ID": "console", "OIDC_CLIENT_SECRET_FILE": secret, "CONSOLE_BASE_URL": "https://tidygate.example.com/"})
	if !cfg.SignOnEnabled() || cfg.OIDCSecret() != "from-a-file" ||
		cfg.OIDCRoleScopes()["tidygate-auditor"] != domain.AdminRead || cfg.OIDCTeamRegexp().FindStringSubmatch("tidygate-team-risk")[1] != "risk" ||
		cfg.OIDCRoleClaim != "roles" || cfg.OIDCUserClaim != "email" || cfg.OIDCTeamClaim != "groups" {
		t.Fatalf("config %+v", cfg)
	}
	if off := mustLoad(t, nil); off.SignOnEnabled() || off.OIDCTeamRegexp() != nil || len(off.OIDCRoleScopes()) != 0 {
		t.Fatal("sign-on is on without OIDC_ISSUER_URL")
	}
}
