package infra

import (
	"log/slog"
	"sync"
	"time"
)

// Step is one completed step of tidygate's initialization, in the order the
// design fixes: infra delegate, shared pool, gateway registration, MLflow pool.
type Step struct {
	Seq       int           // 1 for the first step recorded
	Component string        // what was initialized, e.g. "shared pool"
	Duration  time.Duration // how long the step took
	Pool      *PoolInfo     // the pool the step created or uses; nil when none
}

// StartupReport records the initialization steps as they complete, logs each
// one, and serves them to /debug/startup. It is safe for concurrent use.
type StartupReport struct {
	logger *slog.Logger
	mu     sync.Mutex
	steps  []Step
}

// NewStartupReport returns an empty report that logs each recorded step at
// info level to logger (nil logs nothing).
func NewStartupReport(logger *slog.Logger) *StartupReport {
	return &StartupReport{logger: logger}
}

// Record appends a step with the next sequence number and logs it. The pool
// description is copied, so the caller may reuse it.
func (r *StartupReport) Record(component string, d time.Duration, pool *PoolInfo) {
	r.mu.Lock()
	step := Step{Seq: len(r.steps) + 1, Component: component, Duration: d}
	if pool != nil {
		info := *pool
		step.Pool = &info
	}
	r.steps = append(r.steps, step)
	r.mu.Unlock()

	if r.logger == nil {
		return
	}
	attrs := []any{"seq", step.Seq, "component", component, "duration", d}
	if pool != nil {
		attrs = append(attrs, "pool", pool.Name, "application_name", pool.ApplicationName,
			"mode", pool.Mode, "min_conns", pool.MinConns, "max_conns", pool.MaxConns,
			"acquire_timeout", pool.AcquireTimeout, "target", pool.Target)
	}
	r.logger.Info("startup step", attrs...)
}

// Steps returns a copy of the steps recorded so far, in order.
func (r *StartupReport) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Step, len(r.steps))
	for i, s := range r.steps {
		out[i] = s
		if s.Pool != nil {
			info := *s.Pool
			out[i].Pool = &info
		}
	}
	return out
}
