package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/gateway"
)

// stageBuckets are tidygate_call_stage_seconds's bucket bounds: fine from
// 25 µs to 5 ms, where a reservation's round trip and a record's fdatasync
// fall on a healthy machine, then coarser up to a long stream's minutes.
var stageBuckets = []float64{
	0.000025, 0.00005, 0.000075, 0.0001, 0.000125, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005,
	0.0006, 0.0008, 0.001, 0.00125, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005,
	0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
}

// stageMetrics is tidygate_call_stage_seconds{stage}: how long each stage
// of each call took (gateway.Stage), one observer per stage bound at
// start, so that an observation allocates nothing.
type stageMetrics struct {
	observers []prometheus.Observer // by gateway.Stage
}

// newStageMetrics registers the stages' histogram on reg.
func newStageMetrics(reg prometheus.Registerer) *stageMetrics {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tidygate_call_stage_seconds",
		Help: "Duration of each stage of the calls: reserve (one reservation in the ledger), reserve_send (the part of a " +
			"reservation made alongside the provider that the provider call waits for: until it is sent), upstream (the provider attempts, " +
			"retries included), record (until the call log has made the record durable; the answer waits for it), " +
			"settle (one batch of settlements, after the answers).",
		Buckets: stageBuckets}, []string{"stage"})
	reg.MustRegister(h)
	m := &stageMetrics{observers: make([]prometheus.Observer, len(gateway.Stages))}
	for _, s := range gateway.Stages {
		m.observers[s] = h.WithLabelValues(s.String())
	}
	return m
}

// ObserveStage adds d to stage s's histogram.
func (m *stageMetrics) ObserveStage(s gateway.Stage, d time.Duration) {
	m.observers[s].Observe(d.Seconds())
}
