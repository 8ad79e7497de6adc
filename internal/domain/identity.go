package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Identity is who a token of the corporate identity provider (OpenID
// Connect) says its bearer is, read from the token's claims once its
// signature, issuer, audience and expiry have been verified.
type Identity struct {
	Subject string    // the sub claim: stable and unique at the issuer
	User    string    // the user claim (OIDC_USER_CLAIM), such as an email address
	Team    string    // the first team the team claim names (OIDC_TEAM_PATTERN); empty when none matches
	Roles   []string  // the role claim's values (OIDC_ROLE_CLAIM)
	Expiry  time.Time // when the token stops being valid
}

// SignIn is one browser sign-in at the identity provider in progress: what
// the console must keep between sending the browser to the provider and
// its return, where no one else can read or change it (a short-lived
// HttpOnly cookie that is encrypted or signed, or a server-side session).
// Its fields are secrets: never log them.
type SignIn struct {
	State    string // sent with the browser and compared when it returns
	Nonce    string // must come back inside the ID token
	Verifier string // the PKCE code verifier; only its S256 challenge is sent
}

// maxTokenLen bounds what LooksLikeJWT accepts; identity providers' tokens
// are a few kilobytes, group-heavy ones rarely more than eight.
const maxTokenLen = 16 << 10

// LooksLikeJWT reports whether s has the shape of a signed JWT in compact
// form: three non-empty base64url segments joined by dots, the first
// starting with "eyJ" (the encoding of `{"`). It is a cheap test that tells
// a token of the identity provider from a tidygate key (whose "tg-" prefix
// never matches) before any verification; it proves nothing about s.
func LooksLikeJWT(s string) bool {
	if len(s) > maxTokenLen || !strings.HasPrefix(s, "eyJ") {
		return false
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.IndexFunc(p, notBase64URL) >= 0 {
			return false
		}
	}
	return true
}

func notBase64URL(r rune) bool {
	return (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_'
}

// RoleScopes maps the identity provider's role names to admin scopes
// (OIDC_ADMIN_ROLES, e.g. "tidygate-admin=write,tidygate-auditor=read").
type RoleScopes map[string]AdminScope

// ParseRoleScopes parses comma-separated ROLE=SCOPE pairs, refusing empty
// roles, unknown scopes and a role given twice. An empty string maps no
// role.
func ParseRoleScopes(s string) (RoleScopes, error) {
	out := RoleScopes{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		role, scope, ok := strings.Cut(pair, "=")
		role, scope = strings.TrimSpace(role), strings.TrimSpace(scope)
		if !ok || role == "" {
			return nil, fmt.Errorf("%q is not ROLE=SCOPE (e.g. tidygate-admin=write,tidygate-auditor=read)", strings.TrimSpace(pair))
		}
		sc := AdminScope(scope)
		if sc != AdminRead && sc != AdminWrite {
			return nil, fmt.Errorf("role %q: unknown scope %q: the scopes are read and write", role, scope)
		}
		if _, dup := out[role]; dup {
			return nil, fmt.Errorf("role %q is given twice", role)
		}
		out[role] = sc
	}
	return out, nil
}

// Scopes returns the scopes the roles map to, each once, in the order the
// roles give them. Roles with no mapping grant nothing.
func (m RoleScopes) Scopes(roles []string) []AdminScope {
	var out []AdminScope
	for _, r := range roles {
		if sc, ok := m[r]; ok && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// SignedInKeyPrefix starts the KeyID of a caller who signed in with a token
// of the identity provider rather than a key, followed by the user: the
// per-key rate limits, concurrency share and usage rows count them as one
// key per user.
const SignedInKeyPrefix = "oidc:"

// SignedInLimits are the per-key limits of a caller who signed in with a
// token: there is no key to carry them, so they come from the gateway's
// settings (OIDC_CALLER_RPM, OIDC_CALLER_TPM; 0 is unlimited), and the
// concurrency share is the gateway's per-key share.
type SignedInLimits struct {
	RPM, TPM int
}

// Standing is what is set for a user and for a team apart from any key:
// their budgets and their rate and concurrency limits (a zero Limits: none).
// A key's caller carries its user's and team's standing with the key; a
// caller who signed in with a token has it looked up by the names the
// token gives (ports.StandingBook), and both count against it alike.
type Standing struct {
	Budgets    []Budget // of the user (ScopeUser) and of the team (ScopeTeam)
	UserLimits Limits
	TeamLimits Limits
}

// SignedInCaller returns the caller behind a verified identity: its user
// and team, their standing (only the budgets of that user and team are
// kept), the per-key limits, every model allowed, and the token's expiry
// as the key's. An identity with no user or no team is refused with a
// KindUnauthenticated or KindForbidden error saying which claim to fix.
func SignedInCaller(id Identity, st Standing, limits SignedInLimits) (Caller, error) {
	if id.User == "" {
		return Caller{}, &Error{Kind: KindUnauthenticated, Code: "missing_user_claim",
			Message: "the token names no user: its user claim is missing or empty"}
	}
	if id.Team == "" {
		return Caller{}, &Error{Kind: KindForbidden, Code: "no_team",
			Message: "the token names no team this gateway knows: none of its team claim's values matches the team pattern"}
	}
	var own []Budget
	for _, b := range st.Budgets {
		if (b.Scope == ScopeUser && b.ScopeID == id.User) || (b.Scope == ScopeTeam && b.ScopeID == id.Team) {
			own = append(own, b)
		}
	}
	return Caller{KeyID: SignedInKeyPrefix + id.User, User: id.User, Team: id.Team, Budgets: own,
		RPM: limits.RPM, TPM: limits.TPM, KeyExpiresAt: id.Expiry,
		UserLimits: st.UserLimits, TeamLimits: st.TeamLimits}, nil
}
