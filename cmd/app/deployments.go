package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/domain"
)

// deploymentMetrics is the gateway's account of each deployment on
// /metrics, labelled by deployment (provider/upstream) and provider
// instance: tidygate_deployment_requests_total{outcome},
// tidygate_deployment_errors_total{kind},
// tidygate_deployment_latency_seconds, tidygate_deployment_in_flight and
// tidygate_deployment_breaker_state (0 closed, 1 half-open, 2 open).
type deploymentMetrics struct {
	requests, errors *prometheus.CounterVec
	latency          *prometheus.HistogramVec
	inFlight, state  *prometheus.GaugeVec
}

// breakerStates are the breaker's states as tidygate_deployment_breaker_state's values.
var breakerStates = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// newDeploymentMetrics registers the deployments' metrics on reg.
func newDeploymentMetrics(reg prometheus.Registerer) *deploymentMetrics {
	labels := []string{"deployment", "provider"}
	m := &deploymentMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidygate_deployment_requests_total",
			Help: "Provider attempts per deployment, by outcome: ok or the error kind (rate_limited, upstream, …)."}, append(labels, "outcome")),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tidygate_deployment_errors_total",
			Help: "Failed provider attempts per deployment, by error kind."}, append(labels, "kind")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tidygate_deployment_latency_seconds",
			Help:    "Duration of provider attempts per deployment, failed ones included.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}}, labels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tidygate_deployment_in_flight",
			Help: "Provider attempts in flight per deployment."}, labels),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tidygate_deployment_breaker_state",
			Help: "Each deployment's circuit breaker: 0 closed, 1 half-open (probing), 2 open (cooling down)."}, labels),
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.inFlight, m.state)
	return m
}

// AttemptStarted counts an attempt entering d.
func (m *deploymentMetrics) AttemptStarted(d domain.Deployment) {
	m.inFlight.WithLabelValues(d.Name(), d.Provider).Inc()
	m.state.WithLabelValues(d.Name(), d.Provider).Add(0) // the deployment shows up, closed, from its first call
}

// AttemptEnded counts an attempt leaving d; "not_made" (the client left
// before it began) only leaves.
func (m *deploymentMetrics) AttemptEnded(d domain.Deployment, outcome string, latency time.Duration) {
	m.inFlight.WithLabelValues(d.Name(), d.Provider).Dec()
	if outcome == "not_made" {
		return
	}
	m.requests.WithLabelValues(d.Name(), d.Provider, outcome).Inc()
	if outcome != "ok" {
		m.errors.WithLabelValues(d.Name(), d.Provider, outcome).Inc()
	}
	m.latency.WithLabelValues(d.Name(), d.Provider).Observe(latency.Seconds())
}

// BreakerChanged sets d's breaker state.
func (m *deploymentMetrics) BreakerChanged(d domain.Deployment, state string) {
	m.state.WithLabelValues(d.Name(), d.Provider).Set(breakerStates[state])
}
