package infra

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Delegate is step 1 of tidygate's initialization: what every later step
// needs from infrastructure — the configuration, the logger, the metrics
// registry the pools report to, and the startup report they are recorded in.
// The shared pool (step 2) can only be built from a Delegate.
type Delegate struct {
	Config   Config
	Logger   *slog.Logger
	Registry *prometheus.Registry // served at /metrics; holds Go runtime, process and pool metrics
	Startup  *StartupReport
}

// NewDelegate returns the infra delegate for cfg and records step 1. A nil
// logger discards the log.
func NewDelegate(cfg Config, logger *slog.Logger) *Delegate {
	began := time.Now()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &Delegate{Config: cfg, Logger: logger, Registry: reg, Startup: NewStartupReport(logger)}
	logger.Info("configuration", "profile", cfg.Profile, "profile_defaults", cfg.ProfileDefaults(),
		"replicas", cfg.Replicas, "mlflow_pool", cfg.MLflowPool)
	d.Startup.Record("infra delegate", time.Since(began), nil)
	return d
}
