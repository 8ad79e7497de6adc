package main

import (
	"context"
	"time"

	"go.uber.org/fx"

	"github.com/tidygate/tidygate/internal/adapters/mlflow"
	"github.com/tidygate/tidygate/internal/infra"
)

// auditExportEvery is how often the audit log's outbox is read: an
// administrative change reaches MLflow about this long after it is made.
const auditExportEvery = time.Second

// auditExportDrain bounds the last export at shutdown; what it leaves stays
// in the outbox for the next start or another replica.
const auditExportDrain = 10 * time.Second

// auditExport is the background export of the audit log to MLflow's admin
// experiment; nil with MLFLOW_LOG_MODE=off, which exports nothing.
type auditExport struct{ loop *schemaLoop }

// newAuditExport starts, once the gateway's schema is in place, the loop
// that exports the audit log's new entries to MLflow as traces, from the
// outbox in PostgreSQL, through the call log's pool. It depends on the call
// log, so that on shutdown it stops, after a last export, before the call
// log's pool closes.
func newAuditExport(lc fx.Lifecycle, ctx bootContext, d *infra.Delegate, stores *gatewayStores, calls *callLog) (*auditExport, error) {
	if calls.pool == nil {
		d.Logger.Info("MLFLOW_LOG_MODE=off: administrative changes are not exported to MLflow; they stay in the audit log (GET /admin/v1/audit)")
		return nil, nil
	}
	opts, err := mlflowOptions(d.Config)
	if err != nil {
		return nil, err
	}
	// The exporter never changes MLflow's schema: with MLFLOW_SCHEMA=create
	// the call log creates it, and DDL from both at once could deadlock
	// with each other's writes.
	opts.Schema, opts.Logger, opts.Registerer = mlflow.SchemaVerify, d.Logger, d.Registry
	x, err := mlflow.NewAuditExporter(calls.pool, stores.keys, opts)
	if err != nil {
		return nil, err
	}
	loop := newSchemaLoop(stores.schema, auditExportEvery, func(ctx context.Context) {
		_ = x.Drain(ctx) // the exporter logs its failures
	})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			loop.start(ctx)
			return nil
		},
		OnStop: func(stopCtx context.Context) error {
			loop.stop()
			if stores.schema.err() != nil {
				return nil
			}
			drainCtx, cancel := context.WithTimeout(stopCtx, auditExportDrain)
			defer cancel()
			if err := x.Drain(drainCtx); err != nil {
				d.Logger.Warn("audit entries left to export at shutdown; the next start or another replica exports them", "err", err)
			}
			return nil
		},
	})
	return &auditExport{loop: loop}, nil
}
