package infra

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// GatewayRegistration is step 3 of tidygate's initialization: the gateway
// registered as a client of the shared pool. It opens no pool itself; the
// MLflow call log (step 4) gets its pool from it, shared or dedicated.
type GatewayRegistration struct {
	Delegate *Delegate
	Shared   *SharedPool
}

// RegisterGateway records the gateway as a client of the shared pool (step
// 3) and returns the registration the MLflow call log is built from.
func RegisterGateway(d *Delegate, shared *SharedPool) GatewayRegistration {
	began := time.Now()
	info := shared.Info()
	d.Startup.Record("gateway registration", time.Since(began), &info)
	return GatewayRegistration{Delegate: d, Shared: shared}
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
