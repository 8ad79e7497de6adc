package mlflow

import (
	"context"
	"fmt"
	"time"

	"github.com/tidygate/tidygate/internal/infra"
)

// NewCallLog is step 4 of tidygate's initialization: it opens the pool the
// gateway's registration gives the call log (the shared pool, or with
// MLFLOW_POOL=dedicated its own), opens the call log on it with the MLFLOW_*
// settings, registers its metrics on the delegate's registry and records
// the step, with the pool, in the startup report. Close closes the pool if
// it is the call log's own.
func NewCallLog(ctx context.Context, reg infra.GatewayRegistration) (*CallLog, error) {
	began := time.Now()
	d := reg.Delegate
	opts, err := optionsFrom(d.Config)
	if err != nil {
		return nil, err
	}
	opts.Logger, opts.Registerer = d.Logger, d.Registry
	if opts.LogMode == LogOff {
		c, err := Open(ctx, nil, opts)
		if err == nil {
			d.Startup.Record("mlflow call log (MLFLOW_LOG_MODE=off: nothing recorded)", time.Since(began), nil)
		}
		return c, err
	}
	pool, err := reg.OpenMLflowPool(ctx)
	if err != nil {
		return nil, err
	}
	c, err := Open(ctx, pool, opts)
	if err != nil {
		if pool.Dedicated() {
			pool.Close()
		}
		return nil, err
	}
	c.pool = pool
	info := pool.Info()
	d.Startup.Record("mlflow call log", time.Since(began), &info)
	return c, nil
}

// Pools returns the pools whose health the call log depends on, shared
// first: shared alone when the call log writes through it, shared and the
// call log's dedicated pool otherwise. A call log opened without NewCallLog
// reports shared alone.
func (c *CallLog) Pools(shared *infra.Pool) []*infra.Pool {
	if c.pool == nil || !c.pool.Dedicated() {
		return []*infra.Pool{shared}
	}
	return []*infra.Pool{shared, c.pool}
}

// optionsFrom maps the MLFLOW_* settings onto Options; Open validates them.
func optionsFrom(cfg infra.Config) (Options, error) {
	var refuse bool
	switch cfg.JournalWhenFull {
	case "refuse":
		refuse = true
	case "accept":
	default:
		return Options{}, fmt.Errorf("mlflow call log options: MLFLOW_JOURNAL_WHEN_FULL=%q is not refuse or accept", cfg.JournalWhenFull)
	}
	return Options{
		Schema:  SchemaMode(cfg.MLflowSchema),
		LogMode: LogMode(cfg.MLflowLogMode), Content: ContentMode(cfg.MLflowLogContent),
		ExperimentPrefix: cfg.MLflowExperiment, GatewayEndpointID: cfg.MLflowEndpointID,
		JournalDir: cfg.JournalDir, JournalMaxRecords: cfg.JournalMaxRecords, RefuseWhenFull: refuse,
		BatchSize: cfg.WriterBatchSize, FlushInterval: cfg.WriterFlushInterval,
		RequireDatabase: cfg.DBRequireAtStart,
	}, nil
}
