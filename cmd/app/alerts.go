package main

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/adapters/budgetalerts"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/infra"
	"github.com/tidygate/tidygate/internal/ports"
)

// newAlertLoop returns the background loop that delivers the budget
// alerts of the ledger's outbox once the schema is in place: a log line
// and tidygate_budget_alerts_total once per alert, and the webhook of
// BUDGET_ALERT_WEBHOOK_URL when set.
func newAlertLoop(d *infra.Delegate, outbox ports.AlertOutbox, schema *schemaGate) *schemaLoop {
	disp := budgetalerts.New(outbox, budgetalerts.Options{
		URL: d.Config.BudgetAlertWebhookURL, Secret: []byte(d.Config.BudgetAlertWebhookSecret), Logger: d.Logger,
		Count: newAlertCounter(d.Registry),
	})
	return newSchemaLoop(schema, time.Second, func(ctx context.Context) {
		if err := disp.Poll(ctx); err != nil && ctx.Err() == nil {
			d.Logger.Warn("reading the budget alerts failed; will retry", "err", err)
		}
	})
}

// newAlertCounter registers tidygate_budget_alerts_total{scope,period,threshold}.
func newAlertCounter(reg prometheus.Registerer) func(domain.BudgetAlert) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tidygate_budget_alerts_total",
		Help: "Budget alerts fired: a budget's spending crossed a threshold (BUDGET_ALERT_THRESHOLDS), counted once per budget, period and threshold across replicas.",
	}, []string{"scope", "period", "threshold"})
	reg.MustRegister(vec)
	return func(a domain.BudgetAlert) {
		vec.WithLabelValues(string(a.Budget.Scope), string(a.Budget.Period), strconv.Itoa(a.Threshold)).Inc()
	}
}
