package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/adapters/mlflow"
	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// Steps 3 and 4 of the initialization order (see ARCHITECTURE.md): the
// gateway's registration on the shared pool, and the MLflow call log built
// from the registration's product. The adapters know nothing of the order
// or of tidygate's configuration; these providers hand each its
// connections and its options.

// gatewayStores are the PostgreSQL adapters behind the key store and ledger
// ports, and the gate that holds readiness until their schema is applied.
type gatewayStores struct {
	keys      *postgres.KeyStore
	callers   ports.KeyStore // what calls are authenticated with: keys, or a cache in front of it (KEY_CACHE_TTL)
	ledger    *postgres.Ledger
	responses *postgres.ResponseStore
	schema    *schemaGate
	// recovered is closed once the calls an earlier run of this replica
	// left undone are settled (recoverUnfinished): the expiry sweep waits
	// for it, so that it never releases a hold this replica's journal can
	// settle.
	recovered chan struct{}
}

// registerGateway is step 3: the gateway joins the shared pool. It builds
// the key store and the ledger on it and, through infra.RegisterGateway,
// applies their migrations (seeding the development key when asked) and
// checks that the pool answers. When the database is down, tidygate still
// starts, not ready, and the migrations are retried in the background
// (unless DB_REQUIRE_AT_START, which makes it an error).
func registerGateway(ctx bootContext, lc fx.Lifecycle, d *infra.Delegate, shared *infra.SharedPool, seed devKeySeed) (infra.GatewayRegistration, *gatewayStores, error) {
	loc, err := d.Config.BudgetLocation()
	if err != nil { // validated when the configuration was loaded
		return infra.GatewayRegistration{}, nil, err
	}
	ledger := postgres.NewLedger(shared, postgres.LedgerOptions{
		SynchronousCommit: d.Config.LedgerSyncCommit == "on", LockTimeout: d.Config.LedgerLockTimeout,
		Location: loc, AlertThresholds: d.Config.BudgetThresholds()})
	s := &gatewayStores{keys: postgres.NewKeyStore(shared), ledger: ledger, responses: postgres.NewResponseStore(shared),
		recovered: make(chan struct{})}
	if s.callers, err = keyLookup(lc, d, shared, s.keys); err != nil {
		return infra.GatewayRegistration{}, nil, err
	}
	s.schema = newSchemaGate(d.Logger, func(ctx context.Context) error {
		if err := postgres.Migrate(ctx, shared); err != nil {
			return err
		}
		if seed {
			if _, err := s.keys.EnsureKey(ctx, DevKey, postgres.NewKey{User: "dev", Team: "dev"}); err != nil {
				return fmt.Errorf("seed the development key: %w", err)
			}
			d.Logger.Warn("development key seeded (local profile only)", "user", "dev", "team", "dev", "key", DevKey)
		}
		return nil
	})
	reg, err := infra.RegisterGateway(ctx, d, shared, s.schema.join)
	if err != nil {
		return infra.GatewayRegistration{}, nil, err
	}
	sweep := newStaleSweep(d.Logger, s.ledger, staleAfter(d.Config), s.schema, s.recovered)
	sweep.responses = s.responses
	alerts := newAlertLoop(d, s.ledger, s.schema)
	lastUsed, flushLastUsed := newLastUsedFlush(d.Logger, s.keys, s.schema)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			s.schema.start(ctx)
			sweep.start(ctx)
			alerts.start(ctx)
			lastUsed.start(ctx)
			return nil
		},
		OnStop: func(stopCtx context.Context) error {
			lastUsed.stop()
			if s.schema.err() == nil {
				flushLastUsed(stopCtx) // what the last interval noted
			}
			alerts.stop()
			sweep.stop()
			s.schema.stop()
			return nil
		},
	})
	return reg, s, nil
}

// callLog is step 4's product: the MLflow call log and the pool it writes
// through (nil with MLFLOW_LOG_MODE=off).
type callLog struct {
	*mlflow.CallLog
	pool *infra.Pool
}

// provideCallLog is step 4: it takes the gateway's registration, so it
// cannot run before the gateway has joined the shared pool. It opens the
// pool the registration gives the call log (the shared pool, or with
// MLFLOW_POOL=dedicated its own), opens the call log on it with its options
// from the MLFLOW_* settings, registers its metrics on the delegate's
// registry and records the step. On shutdown, after the HTTP server has
// drained, it flushes the call log, then closes a dedicated pool.
func provideCallLog(ctx bootContext, lc fx.Lifecycle, reg infra.GatewayRegistration) (*callLog, error) {
	began := time.Now()
	d := reg.Delegate
	opts, err := mlflowOptions(d.Config)
	if err != nil {
		return nil, err
	}
	opts.Logger, opts.Registerer = d.Logger, d.Registry
	if opts.LogMode == mlflow.LogOff {
		l, err := mlflow.Open(ctx, nil, opts)
		if err != nil {
			return nil, err
		}
		d.Startup.Record("mlflow call log (MLFLOW_LOG_MODE=off: nothing recorded)", time.Since(began), nil)
		lc.Append(fx.StopHook(l.Close))
		return &callLog{CallLog: l}, nil
	}
	pool, err := reg.OpenMLflowPool(ctx)
	if err != nil {
		return nil, err
	}
	l, err := mlflow.Open(ctx, pool, opts)
	if err != nil {
		if pool.Dedicated() {
			pool.Close()
		}
		return nil, err
	}
	info := pool.Info()
	d.Startup.Record("mlflow call log", time.Since(began), &info)
	lc.Append(fx.StopHook(func(ctx context.Context) error {
		err := l.Close(ctx)
		if pool.Dedicated() {
			pool.Close()
		}
		return err
	}))
	return &callLog{CallLog: l, pool: pool}, nil
}

// pools returns the pools whose health the call log depends on, shared
// first: shared alone when the call log writes through it (or writes
// nothing), shared and the call log's dedicated pool otherwise.
func (c *callLog) pools(shared *infra.Pool) []*infra.Pool {
	if c.pool == nil || !c.pool.Dedicated() {
		return []*infra.Pool{shared}
	}
	return []*infra.Pool{shared, c.pool}
}

// mlflowOptions maps the MLFLOW_* settings onto the call log's options;
// mlflow.Open validates them.
func mlflowOptions(cfg infra.Config) (mlflow.Options, error) {
	var refuse bool
	switch cfg.JournalWhenFull {
	case "refuse":
		refuse = true
	case "accept":
	default:
		return mlflow.Options{}, fmt.Errorf("mlflow call log options: MLFLOW_JOURNAL_WHEN_FULL=%q is not refuse or accept", cfg.JournalWhenFull)
	}
	return mlflow.Options{
		Schema:  mlflow.SchemaMode(cfg.MLflowSchema),
		LogMode: mlflow.LogMode(cfg.MLflowLogMode), Content: mlflow.ContentMode(cfg.MLflowLogContent),
		ExperimentPrefix: cfg.MLflowExperiment, GatewayEndpointID: cfg.MLflowEndpointID,
		JournalDir: cfg.JournalDir, JournalMaxRecords: cfg.JournalMaxRecords, RefuseWhenFull: refuse,
		BatchSize: cfg.WriterBatchSize, FlushInterval: cfg.WriterFlushInterval,
		RequireDatabase: cfg.DBRequireAtStart,
	}, nil
}

// guard answers /readyz with 503 while the call log would refuse a call
// (its journal is full or cannot be written), and passes everything else to
// next; detail adds why.
func (c *callLog) guard(next http.Handler, detail bool) http.Handler {
	return guardReadyz(next, detail, "call_log", "", c.Ready)
}
