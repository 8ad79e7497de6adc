package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/dig"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/tidygate/tidygate/internal/adapters/adminapi"
	"github.com/tidygate/tidygate/internal/adapters/console"
	"github.com/tidygate/tidygate/internal/adapters/httpapi"
	"github.com/tidygate/tidygate/internal/adapters/oidc"
	"github.com/tidygate/tidygate/internal/admin"
	"github.com/tidygate/tidygate/internal/auththrottle"
	"github.com/tidygate/tidygate/internal/clientaddr"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// DevKey is the documented development API key that `serve --dev-key` seeds
// in the local profile (user dev, team dev). It is refused in other profiles.
const DevKey = "tg-dev-local-only-0000000000000000"

func serve(ctx context.Context, load func() (configuration, error), args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve")
	devKey := fs.Bool("dev-key", false, "seed the documented development key (local profile only)")
	if _, err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	c, err := load()
	if err != nil {
		return err
	}
	cfg := c.cfg
	if *devKey && cfg.Profile != "local" {
		return usageError{fmt.Sprintf("--dev-key is only allowed with DEPLOY_PROFILE=local (it is %q)", cfg.Profile)}
	}
	logger := infra.NewLogger(cfg, stderr)
	app := fx.New(appOptions(ctx, c, logger, *devKey), fx.WithLogger(func() fxevent.Logger {
		// fx's own events are debug detail; the startup steps are logged by infra.
		l := &fxevent.SlogLogger{Logger: logger.With("component", "fx")}
		// Its errors too: run reports them once, as startupError lines.
		l.UseLogLevel(slog.LevelDebug)
		l.UseErrorLevel(slog.LevelDebug)
		return l
	}))
	if err := app.Err(); err != nil {
		return startupError(err)
	}
	startCtx, cancel := context.WithTimeout(ctx, fx.DefaultTimeout)
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return startupError(err)
	}
	<-ctx.Done()
	logger.Info("shutting down", "deadline", cfg.ShutdownTimeout)
	stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout+5*time.Second)
	defer cancelStop()
	return app.Stop(stopCtx)
}

// startupError strips fx's chain ("could not build arguments for function
// … failed to build … received non-nil error from function …") from an
// error met while building or starting the graph, leaving what the
// constructor or hook that failed said: one line per problem.
func startupError(err error) error {
	return dig.RootCause(err)
}

// bootContext is the context constructors use while the graph is built; it
// is cancelled when the process is told to stop.
type bootContext struct{ context.Context }

// appOptions is the whole service as an fx graph. Each constructor takes the
// product of the step before it, so fx can only build them in the order the
// design fixes: delegate → shared pool → gateway registration → MLflow call
// log → gateway service → HTTP server. Shutdown runs in reverse. The
// configuration, the catalogue included, was loaded and checked before
// (loadConfiguration): the graph is given it, and reads nothing again.
func appOptions(ctx context.Context, c configuration, logger *slog.Logger, devKey bool) fx.Option {
	return fx.Options(
		fx.Supply(c.cfg, c.ps, c.cat, logger, bootContext{ctx}, devKeySeed(devKey)),
		fx.Provide(
			infra.NewDelegate, // (1)
			provideSharedPool, // (2)
			registerGateway,   // (3)
			provideCallLog,    // (4)
			newProviders,
			newRateLimiter,
			newService,
			newServers,
			newCatalogueReloader,
			newIssuer,
			newAuditExport,
		),
		fx.Invoke(func(*auditExport, *servers) {}, startCatalogueReloader),
	)
}

// provideSharedPool is step 2: the one shared pool, closed last on shutdown.
func provideSharedPool(ctx bootContext, lc fx.Lifecycle, d *infra.Delegate) (*infra.SharedPool, error) {
	p, err := infra.NewSharedPool(ctx, d)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(p.Close))
	return p, nil
}

// devKeySeed says whether to seed the development key.
type devKeySeed bool

// newService builds the gateway. At start it recovers the calls an earlier
// run left unfinished, in the background; on shutdown, after the HTTP
// server has drained and before the call log closes, it waits for the
// settlements of the calls answered last.
func newService(lc fx.Lifecycle, cfg infra.Config, d *infra.Delegate, cat infra.Catalogue, providers map[string]ports.Provider, stores *gatewayStores, calls *callLog, limiter ports.RateLimiter, iss *oidc.Issuer) (*gateway.Service, error) {
	deps := gateway.Deps{
		Catalogue: cat.Models, Providers: providers, Caps: cat.Caps(), Breaker: cat.Breaker, Keys: gatedKeys{stores.callers, stores.schema}, Ledger: stores.ledger, Limiter: limiter, CallLog: calls.CallLog,
		Responses: stores.responses,
	}
	if iss != nil && cfg.OIDCTeamPattern != "" {
		deps.Tokens, deps.Standings = iss, stores.keys
	}
	svc, err := gateway.NewService(deps, gateway.Options{
		MinAuditReasonLen: cfg.AuditReasonMinLen,
		MaxAuditReasonLen: cfg.AuditReasonMaxLen,
		EmbedLimits: domain.EmbedLimits{MaxDimensions: cfg.EmbedMaxDimensions, MaxInputs: cfg.EmbedMaxInputs,
			MaxInputBytes: cfg.EmbedMaxInputBytes, MaxResponseValues: cfg.EmbedMaxValues},
		MaxAttempts:          cfg.ProviderAttempts,
		RetryBackoff:         cfg.RetryBackoff,
		MaxConcurrentCalls:   cfg.MaxConcurrentCalls,
		MaxConcurrentPerKey:  cfg.ConcurrentPerKey(),
		MaxConcurrentPerTeam: cfg.ConcurrentPerTeam(),
		SignedInLimits:       domain.SignedInLimits{RPM: cfg.OIDCCallerRPM, TPM: cfg.OIDCCallerTPM},
		AuthFailureLimit:     cfg.AuthFailureLimit,
		ProviderTimeout:      cfg.ProviderTimeout,
		ReserveFirst:         cfg.ReserveFirst(),
		StreamTimeout:        cfg.StreamTimeout,
		Content:              domain.ContentPolicy(cfg.MLflowLogContent),
		ResponseRetention:    cfg.ResponsesRetention,
		StoreByDefault:       &cfg.ResponsesStoreDefault,
		Logger:               d.Logger,
		ExcessClaims:         newExcessClaimCounter(d.Registry),
		Deployments:          newDeploymentMetrics(d.Registry),
		Stages:               newStageMetrics(d.Registry),
		FaultPoint:           faultPoint(),
		Holder:               calls.Holder(),
	})
	if err != nil {
		return nil, err
	}
	stop, recovered := make(chan struct{}), make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go recoverUnfinished(d.Logger, svc, stop, recovered, stores.recovered)
			return nil
		},
		OnStop: func(ctx context.Context) error {
			close(stop)
			select {
			case <-recovered:
			case <-ctx.Done():
			}
			return svc.Settled(ctx)
		},
	})
	return svc, nil
}

// servers are the API server, unless ADMIN_ADDR is off the admin server, and
// when ADMIN_API_ADDR is set the admin API's own server.
type servers struct{ api, admin, adminAPI *http.Server }

// newServers builds the API server, which serves only /healthz and /readyz
// (the verdict, no reasons) besides the API, and the admin server on
// ADMIN_ADDR with /metrics, /debug/startup, Go's profiles and /readyz with
// each pool's state. Both /readyz answer 503 while the schema is not
// applied or the call log would refuse calls (its journal full or unable to
// write).
func newServers(lc fx.Lifecycle, cfg infra.Config, d *infra.Delegate, svc *gateway.Service, shared *infra.SharedPool, calls *callLog, stores *gatewayStores, limiter ports.RateLimiter, iss *oidc.Issuer) (*servers, error) {
	pools := func() []*infra.Pool { return calls.pools(shared.Pool) }
	timeouts := httpapi.Timeouts{ReadHeader: cfg.ReadHeaderTimeout, Idle: cfg.IdleTimeout, Write: cfg.WriteTimeout}
	opts := httpapi.Options{MaxBodyBytes: cfg.MaxBodyBytes, MaxAgentBodyBytes: cfg.MaxBodyBytes, Logger: d.Logger,
		Unauthenticated: newUnauthenticatedCounter(d.Registry), Probes: calls.guard(stores.schema.guard(d.ProbeHandler(pools), false), false)}
	s := &servers{}
	if cfg.AdminAddr != infra.AdminOff {
		s.admin = httpapi.NewServer(cfg.AdminAddr, withProfiles(calls.guard(stores.schema.guard(d.AdminHandler(pools), true), true)), timeouts)
	}
	// The admin API goes on the API address, or on its own: never on
	// ADMIN_ADDR beside /metrics and /debug/* (the configuration refuses it).
	// The console goes beside it, with the same service and one throttle of
	// failed sign-ins for both, counted in the gateway's rate limiter (so
	// shared by the replicas when it is) apart from the model endpoints'.
	adminOpts := admin.Options{MinReasonLen: cfg.AuditReasonMinLen, MaxReasonLen: cfg.AuditReasonMaxLen, RoleScopes: cfg.OIDCRoleScopes(),
		Models: func() []domain.Model { return svc.Models(domain.Caller{}) }} // a caller without a model list may use every model
	if iss != nil {
		adminOpts.Tokens = iss
	}
	adminSvc := admin.NewService(stores.keys, adminOpts)
	throttle := auththrottle.New(limiter, domain.LimitAdminAddress, cfg.AdminAuthFailureLimit, nil)
	adminAPI, err := adminapi.NewHandler(adminSvc, adminapi.Options{Logger: d.Logger.With("component", "adminapi"), Throttle: throttle})
	if err != nil {
		return nil, err
	}
	consoleOpts := console.Options{Logger: d.Logger.With("component", "console"), Throttle: throttle,
		SessionSecret: []byte(cfg.ConsoleSessionSecret), MinReasonLen: cfg.AuditReasonMinLen, MaxReasonLen: cfg.AuditReasonMaxLen}
	if iss != nil && cfg.OIDCClientID != "" {
		issuer, _ := url.Parse(cfg.OIDCIssuerURL) // validated at load
		consoleOpts.SignOn, consoleOpts.SignOnName = iss, issuer.Host
	}
	consoleUI, err := console.NewHandler(adminSvc, consoleOpts)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if cfg.ConsoleSessionSecret == "" {
		d.Logger.Info("console sessions are signed with a random secret of this process: a restart signs everyone out (set CONSOLE_SESSION_SECRET)")
	}
	adminMux := http.NewServeMux()
	adminMux.Handle(adminapi.Prefix+"/", adminAPI)
	adminMux.Handle(console.Prefix, consoleUI)
	adminMux.Handle(console.Prefix+"/", consoleUI)
	api := httpapi.NewHandler(svc, opts)
	// Behind the proxies TRUSTED_PROXIES names, a request counts against the
	// client they forwarded it for, for every throttle of failed
	// authentications.
	trusted := cfg.TrustedProxyPrefixes()
	if cfg.AdminAPIAddr != "" {
		s.adminAPI = httpapi.NewServer(cfg.AdminAPIAddr, clientaddr.Behind(trusted, adminMux), timeouts)
	} else {
		adminMux.Handle("/", api)
		api = adminMux
	}
	s.api = httpapi.NewServer(cfg.HTTPAddr, clientaddr.Behind(trusted, api), timeouts)
	for _, srv := range []*http.Server{s.api, s.admin, s.adminAPI} {
		if srv == nil {
			continue
		}
		endCalls := func() {}
		if srv == s.api {
			endCalls = svc.EndCalls
		}
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				ln, err := net.Listen("tcp", srv.Addr)
				if err != nil {
					return fmt.Errorf("listen on %s: %w", srv.Addr, err)
				}
				d.Logger.Info("listening", "addr", ln.Addr().String())
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						d.Logger.Error("server stopped", "addr", srv.Addr, "err", err)
					}
				}()
				return nil
			},
			OnStop: func(ctx context.Context) error { return shutDown(ctx, srv, endCalls, cfg.ShutdownTimeout) },
		})
	}
	return s, nil
}

// shutDown stops srv within budget (SHUTDOWN_TIMEOUT). Requests and streams
// in flight get the first half of it to finish by themselves; then
// endCalls ends the gateway's calls still running, so that each stream ends
// early (charged for what it consumed, settled and recorded, its client told
// with an error event) and its handler returns within the second half.
// Without that, one long stream would outlast the budget, fail the stop
// hook and leave its call unrecorded and its reservation held.
func shutDown(ctx context.Context, srv *http.Server, endCalls func(), budget time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	patience := time.AfterFunc(budget/2, endCalls)
	defer patience.Stop()
	return srv.Shutdown(ctx)
}

// withProfiles adds Go's profiling endpoints (/debug/pprof/) to the admin
// handler. They are served on ADMIN_ADDR only: a CPU profile costs the
// process while it runs, so it must not be reachable from the API address.
func withProfiles(admin http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("/", admin)
	return mux
}

// unauthenticatedCounter is httpapi's count of requests refused for want of
// a valid key, as tidygate_unauthenticated_requests_total{code} on /metrics.
type unauthenticatedCounter struct{ vec *prometheus.CounterVec }

// newUnauthenticatedCounter registers the counter on the delegate's registry.
func newUnauthenticatedCounter(reg prometheus.Registerer) unauthenticatedCounter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidygate_unauthenticated_requests_total",
		Help: "API requests refused because they carried no usable API key, by error code; they are logged but not recorded in the call log.",
	}, []string{"code"})
	reg.MustRegister(vec)
	return unauthenticatedCounter{vec: vec}
}

// CountUnauthenticated adds one refusal with the given code.
func (c unauthenticatedCounter) CountUnauthenticated(code string) { c.vec.WithLabelValues(code).Inc() }

// excessClaimCounter is the gateway's count of provider usage claims beyond
// what a call could consume, as
// tidygate_usage_claims_exceeding_reservation_total{provider,model}.
type excessClaimCounter struct{ vec *prometheus.CounterVec }

// newExcessClaimCounter registers the counter on the delegate's registry.
func newExcessClaimCounter(reg prometheus.Registerer) excessClaimCounter {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidygate_usage_claims_exceeding_reservation_total",
		Help: "Calls whose provider claimed more usage than the call could consume; each was charged at most its reservation and flagged in its call record.",
	}, []string{"provider", "model"})
	reg.MustRegister(vec)
	return excessClaimCounter{vec: vec}
}

// CountExcessClaim adds one excessive claim by provider for model.
func (c excessClaimCounter) CountExcessClaim(provider, model string) {
	c.vec.WithLabelValues(provider, model).Inc()
}
