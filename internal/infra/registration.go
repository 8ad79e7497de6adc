package infra

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// GatewayRegistration is step 3 of tidygate's initialization: the gateway
// joined to the shared pool. It opens no pool itself; the MLflow call log
// (step 4) gets its pool from it, shared or dedicated, so the call log's
// pool is decided only after the gateway's own use of the shared pool is.
type GatewayRegistration struct {
	Delegate *Delegate
	Shared   *SharedPool
	// Joined is what join reported: nil when the gateway's schema is
	// applied and the shared pool answered, else why not yet.
	Joined error
}

// RegisterGateway is step 3: it runs join, the gateway's joining work on
// the shared pool (its migrations and a readiness check), and records the
// step with join's duration and outcome in the startup report. A join that
// fails is an error when DB_REQUIRE_AT_START is set; otherwise the
// registration carries the failure (the caller keeps retrying in the
// background and the service is not ready until it succeeds).
func RegisterGateway(ctx context.Context, d *Delegate, shared *SharedPool, join func(context.Context) error) (GatewayRegistration, error) {
	began := time.Now()
	err := join(ctx)
	info := shared.Info()
	if err != nil {
		if d.Config.DBRequireAtStart {
			return GatewayRegistration{}, fmt.Errorf("gateway registration on the shared pool: %w", err)
		}
		d.Logger.Warn("gateway registered; its schema is not applied yet, retrying in the background", "err", err)
	} else {
		d.Logger.Info("gateway registered: schema applied, shared pool ready")
	}
	d.Startup.Record("gateway registration", time.Since(began), &info)
	return GatewayRegistration{Delegate: d, Shared: shared, Joined: err}, nil
}

// OpenMLflowPool returns the pool the MLflow call log writes through and
// records it in the startup report. With MLFLOW_POOL=shared that is the shared pool itself; with MLFLOW_POOL=dedicated
// it opens the pool "mlflow" (application_name tidygate-mlflow)
// from the MLFLOW_SQLALCHEMY_* settings, to MLFLOW_TRACKING_URI when set.
// Only a dedicated pool (Pool.Dedicated) is the caller's to close.
func (r GatewayRegistration) OpenMLflowPool(ctx context.Context) (*Pool, error) {
	began := time.Now()
	cfg := r.Delegate.Config
	if cfg.MLflowPool != ModeDedicated {
		info := r.Shared.Info()
		r.Delegate.Startup.Record("mlflow pool", time.Since(began), &info)
		return r.Shared.Pool, nil
	}
	settings := mlflowSettings(cfg)
	same, err := mlflowOnSharedServer(cfg)
	if err != nil {
		return nil, err
	}
	var budget []int32 // on the shared server, NewSharedPool has counted this pool
	if !same {
		budget = []int32{settings.maxConns}
	}
	p, err := openPool(ctx, r.Delegate, mlflowDSN(cfg), settings, budget)
	if err != nil {
		return nil, err
	}
	info := p.Info()
	r.Delegate.Startup.Record("mlflow pool", time.Since(began), &info)
	return p, nil
}

// mlflowSettings maps SQLAlchemy's pool settings onto pgxpool, keeping
// their meaning (docs/DESIGN-NOTES.md §4):
//
//   - POOL_SIZE + MAX_OVERFLOW is the most connections the pool opens; none
//     is opened before it is needed, and after a burst, connections released
//     beyond POOL_SIZE idle are closed, as SQLAlchemy discards overflow ones;
//   - POOL_TIMEOUT bounds each Acquire;
//   - POOL_RECYCLE is the oldest a connection gets (expiries spread over its
//     last tenth);
//   - POOL_PRE_PING=true pings every connection before handing it out and
//     resets the pool when a ping fails; false keeps pgx's own ping of
//     connections idle for more than a second.
func mlflowSettings(cfg Config) poolSettings {
	return poolSettings{
		name:           "mlflow",
		mode:           ModeDedicated,
		minConns:       0,
		maxConns:       cfg.MLflowPoolSize + cfg.MLflowMaxOverflow,
		lifetime:       cfg.MLflowPoolRecycle.Duration(),
		idleTime:       cfg.DBMaxConnIdleTime,
		acquireTimeout: cfg.MLflowPoolTimeout.Duration(),
		connectTimeout: cfg.DBConnectTimeout,
		sslMode:        cfg.DBSSLMode,
		sslRootCert:    cfg.DBSSLRootCert,
		idleCap:        cfg.MLflowPoolSize,
		prePing:        cfg.MLflowPoolPrePing,
	}
}

// mlflowOnSharedServer reports whether a dedicated MLflow pool connects to
// the same PostgreSQL server (host and port; the database may differ) as the
// shared pool, so that both draw on one max_connections.
func mlflowOnSharedServer(cfg Config) (bool, error) {
	if cfg.MLflowTrackingURI == "" {
		return true, nil
	}
	shared, err := parsePoolConfig(sharedDSN(cfg), sharedSettings(cfg))
	if err != nil {
		return false, fmt.Errorf("pool shared: %w", err)
	}
	mlflow, err := parsePoolConfig(mlflowDSN(cfg), mlflowSettings(cfg))
	if err != nil {
		return false, fmt.Errorf("pool mlflow: %w", err)
	}
	a, b := shared.ConnConfig, mlflow.ConnConfig
	return strings.EqualFold(a.Host, b.Host) && a.Port == b.Port, nil
}
