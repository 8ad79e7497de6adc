package main

import (
	"context"
	"strings"

	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/adapters/console"
	"github.com/tidygate/tidygate/internal/adapters/oidc"
	"github.com/tidygate/tidygate/internal/infra"
)

// newIssuer returns the identity provider of single sign-on, or nil when
// OIDC_ISSUER_URL is not set. It is discovered in the background from the
// start on, retried until it answers: a provider that is down delays
// sign-in (tokens get 503), never the gateway's start or its keys.
func newIssuer(lc fx.Lifecycle, cfg infra.Config, d *infra.Delegate) *oidc.Issuer {
	if !cfg.SignOnEnabled() {
		return nil
	}
	iss := oidc.NewIssuer(oidc.Options{
		IssuerURL: cfg.OIDCIssuerURL,
		Audience:  cfg.OIDCAudience,
		Claims: oidc.Claims{User: cfg.OIDCUserClaim, Team: cfg.OIDCTeamClaim, Role: cfg.OIDCRoleClaim,
			TeamPattern: cfg.OIDCTeamRegexp()},
		ClientID:     cfg.OIDCClientID,
		ClientSecret: cfg.OIDCSecret(),
		RedirectURL:  strings.TrimRight(cfg.ConsoleBaseURL, "/") + console.CallbackPath,
		Logger:       d.Logger.With("component", "oidc"),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() { defer close(done); iss.Run(ctx) }()
			return nil
		},
		OnStop: func(context.Context) error { cancel(); <-done; return nil },
	})
	return iss
}
