// Package oidc connects tidygate to the corporate identity provider through
// OpenID Connect (github.com/coreos/go-oidc): it verifies the provider's
// bearer tokens against its published keys (VerifyToken), and runs the
// authorization-code flow of a browser sign-in with state, nonce and PKCE
// (StartSignIn, FinishSignIn). Both return a domain.Identity read from the
// token's claims as Claims says.
//
// An Issuer is made with NewIssuer and finds the provider's endpoints and
// keys by OpenID discovery (Discover, or Run, which retries until it
// succeeds); until then every method answers a domain.KindUnavailable
// error, so that a provider that is down at startup delays sign-in, never
// the gateway. The signing keys are fetched when first needed and again
// whenever a token names a key ID not among them, which is how a rotation
// at the provider is followed.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tidygate/tidygate/internal/domain"
)

// Claims says which claims of a token hold what tidygate needs. A name is
// looked up as a top-level claim first and then, when it has dots, as a
// path into nested objects ("realm_access.roles", Keycloak's realm roles).
// A claim may hold a string or an array of strings.
type Claims struct {
	User string // the user's name, such as "email"
	Team string // the team candidates, such as "groups"
	Role string // the roles, such as "roles"
	// TeamPattern picks the team: the first value of the Team claim it
	// matches; when the pattern has a capturing group, the team is that
	// group's text, else the whole value. Nil: no token names a team.
	TeamPattern *regexp.Regexp
}

// Options configure an Issuer.
type Options struct {
	IssuerURL string // exactly as the provider's discovery document names it
	// Audience is what a bearer token's aud claim must contain.
	Audience string
	Claims   Claims
	// ClientID, ClientSecret and RedirectURL are the console's client at
	// the provider, for StartSignIn and FinishSignIn; an ID token's aud
	// must contain ClientID. Empty ClientID: no browser sign-in.
	ClientID, ClientSecret, RedirectURL string
	// Scopes are asked for at sign-in; default openid, profile, email.
	Scopes []string
	// Client makes the requests to the provider; default a client with a
	// 10-second timeout.
	Client *http.Client
	Logger *slog.Logger
	// RetryEvery is Run's longest wait between failed discoveries (it
	// starts at a second and doubles); default one minute.
	RetryEvery time.Duration
}

// Issuer is the identity provider as tidygate uses it. It is safe for
// concurrent use.
type Issuer struct {
	opts  Options
	ready atomic.Pointer[discovered]
}

// discovered is what discovery yields.
type discovered struct {
	bearer   *gooidc.IDTokenVerifier // audience Options.Audience
	idTokens *gooidc.IDTokenVerifier // audience Options.ClientID; nil without a client
	oauth    *oauth2.Config
}

// NewIssuer returns an Issuer that has not discovered its provider yet.
func NewIssuer(opts Options) *Issuer {
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = time.Minute
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = []string{gooidc.ScopeOpenID, "profile", "email"}
	}
	return &Issuer{opts: opts}
}

// Discover reads the provider's discovery document once. It fails when the
// document cannot be fetched or names another issuer than IssuerURL.
func (i *Issuer) Discover(ctx context.Context) error {
	if i.ready.Load() != nil {
		return nil
	}
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, i.opts.Client), i.opts.IssuerURL)
	if err != nil {
		return fmt.Errorf("OpenID discovery at %s: %w", i.opts.IssuerURL, err)
	}
	d := &discovered{bearer: p.Verifier(&gooidc.Config{ClientID: i.opts.Audience})}
	if i.opts.ClientID != "" {
		d.idTokens = p.Verifier(&gooidc.Config{ClientID: i.opts.ClientID})
		d.oauth = &oauth2.Config{ClientID: i.opts.ClientID, ClientSecret: i.opts.ClientSecret,
			RedirectURL: i.opts.RedirectURL, Endpoint: p.Endpoint(), Scopes: i.opts.Scopes}
	}
	i.ready.CompareAndSwap(nil, d)
	return nil
}

// Run discovers the provider, retrying with backoff (a second, doubling up
// to RetryEvery) and logging each failure, until it succeeds or ctx ends.
func (i *Issuer) Run(ctx context.Context) {
	wait := time.Second
	for {
		err := i.Discover(ctx)
		if err == nil {
			i.opts.Logger.Info("identity provider discovered", "issuer", i.opts.IssuerURL)
			return
		}
		i.opts.Logger.Error("identity provider unreachable; tokens are refused with 503 until it answers", "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, i.opts.RetryEvery)
	}
}

// Ready reports whether discovery has succeeded.
func (i *Issuer) Ready() bool { return i.ready.Load() != nil }

// state returns what discovery found, or a domain.KindUnavailable error.
func (i *Issuer) state() (*discovered, error) {
	d := i.ready.Load()
	if d == nil {
		return nil, &domain.Error{Kind: domain.KindUnavailable, Code: "identity_provider_unavailable", RetryAfter: 5 * time.Second,
			Message: "the identity provider has not been reached yet; try again shortly, or use a key"}
	}
	return d, nil
}

// VerifyToken verifies a bearer token (a JWT) of the provider: its
// signature by one of the provider's keys, its issuer, that its audience
// contains Options.Audience, and that it has not expired. It returns the
// identity its claims name, a domain.KindUnauthenticated error for a token
// that fails any check (the cause is logged, never the token), or a
// domain.KindUnavailable error before discovery.
func (i *Issuer) VerifyToken(ctx context.Context, token string) (domain.Identity, error) {
	d, err := i.state()
	if err != nil {
		return domain.Identity{}, err
	}
	t, err := d.bearer.Verify(gooidc.ClientContext(ctx, i.opts.Client), token)
	if err != nil {
		return domain.Identity{}, i.refused(err)
	}
	return i.identity(t)
}

// refused turns a verification failure into the error the client sees.
func (i *Issuer) refused(err error) error {
	i.opts.Logger.Info("identity provider token refused", "err", err)
	if _, expired := errors.AsType[*gooidc.TokenExpiredError](err); expired {
		return &domain.Error{Kind: domain.KindUnauthenticated, Code: "expired_token", Message: "the token has expired; sign in again"}
	}
	return &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_token",
		Message: "the token is not valid here (signature, issuer or audience)"}
}

// identity reads the identity from a verified token's claims.
func (i *Issuer) identity(t *gooidc.IDToken) (domain.Identity, error) {
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return domain.Identity{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_token", Message: "the token's claims cannot be read"}
	}
	c := i.opts.Claims
	id := domain.Identity{Subject: t.Subject, Roles: stringsOf(claim(claims, c.Role)), Expiry: t.Expiry}
	if users := stringsOf(claim(claims, c.User)); len(users) == 1 {
		id.User = users[0]
	}
	id.Team = teamOf(stringsOf(claim(claims, c.Team)), c.TeamPattern)
	if id.Subject == "" {
		return domain.Identity{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "invalid_token", Message: "the token has no subject"}
	}
	return id, nil
}

// teamOf returns the team the first value matching pattern names.
func teamOf(values []string, pattern *regexp.Regexp) string {
	if pattern == nil {
		return ""
	}
	for _, v := range values {
		m := pattern.FindStringSubmatch(v)
		switch {
		case m == nil:
		case len(m) > 1 && m[1] != "":
			return m[1]
		case len(m) == 1:
			return v
		}
	}
	return ""
}

// claim returns the claim name, top-level or by its dotted path.
func claim(claims map[string]any, name string) any {
	if name == "" {
		return nil
	}
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = obj[part]
	}
	return cur
}

// stringsOf returns a claim's string values: a string, or the strings of
// an array; anything else has none.
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		if x != "" {
			return []string{x}
		}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// StartSignIn begins a sign-in: it returns the provider's authorization URL
// to redirect the browser to, with a fresh state, nonce and PKCE challenge,
// and the domain.SignIn to keep until FinishSignIn.
func (i *Issuer) StartSignIn() (string, domain.SignIn, error) {
	d, err := i.state()
	if err != nil {
		return "", domain.SignIn{}, err
	}
	if d.oauth == nil {
		return "", domain.SignIn{}, noClient()
	}
	s := domain.SignIn{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier()}
	return d.oauth.AuthCodeURL(s.State, gooidc.Nonce(s.Nonce), oauth2.S256ChallengeOption(s.Verifier)), s, nil
}

// FinishSignIn completes the sign-in s when the browser returns to the
// redirect URL with the query parameters state and code: it checks the
// state, exchanges the code (with the PKCE verifier and the client secret)
// for tokens, verifies the ID token (signature, issuer, audience
// Options.ClientID, expiry) and its nonce, and returns the identity it
// names. A mismatch or a refused code is a domain.KindUnauthenticated
// error; a provider that cannot be reached, domain.KindUnavailable.
func (i *Issuer) FinishSignIn(ctx context.Context, s domain.SignIn, state, code string) (domain.Identity, error) {
	d, err := i.state()
	if err != nil {
		return domain.Identity{}, err
	}
	if d.oauth == nil {
		return domain.Identity{}, noClient()
	}
	if s.State == "" || subtle.ConstantTimeCompare([]byte(s.State), []byte(state)) != 1 {
		return domain.Identity{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_state_mismatch",
			Message: "the sign-in does not match the one this browser started; start again"}
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, i.opts.Client)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(s.Verifier))
	if err != nil {
		i.opts.Logger.Info("identity provider refused the sign-in code", "err", err)
		if _, refused := errors.AsType[*oauth2.RetrieveError](err); refused {
			return domain.Identity{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_refused",
				Message: "the identity provider refused the sign-in; start again"}
		}
		return domain.Identity{}, &domain.Error{Kind: domain.KindUnavailable, Code: "identity_provider_unavailable",
			RetryAfter: 5 * time.Second, Message: "the identity provider could not be reached; try again shortly"}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return domain.Identity{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_refused",
			Message: "the identity provider returned no ID token; is the openid scope allowed for this client?"}
	}
	t, err := d.idTokens.Verify(gooidc.ClientContext(ctx, i.opts.Client), raw)
	if err != nil {
		return domain.Identity{}, i.refused(err)
	}
	if subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(s.Nonce)) != 1 {
		return domain.Identity{}, &domain.Error{Kind: domain.KindUnauthenticated, Code: "sign_in_nonce_mismatch",
			Message: "the ID token was not issued for this sign-in; start again"}
	}
	return i.identity(t)
}

func noClient() error {
	return &domain.Error{Kind: domain.KindUnavailable, Code: "sign_in_not_configured",
		Message: "browser sign-in needs OIDC_CLIENT_ID, OIDC_CLIENT_SECRET (or OIDC_CLIENT_SECRET_FILE) and CONSOLE_BASE_URL"}
}
