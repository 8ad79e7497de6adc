package infra

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports one pool's statistics, read from pgx at each scrape,
// labelled pool="shared" or pool="mlflow".
type poolCollector struct {
	pool    *Pool
	metrics []poolMetric
}

// poolMetric is one exported statistic and how to read it.
type poolMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*Pool, *pgxpool.Stat) float64
}

func newPoolCollector(p *Pool) *poolCollector {
	labels := prometheus.Labels{"pool": p.info.Name}
	c := &poolCollector{pool: p}
	add := func(name, help string, kind prometheus.ValueType, value func(*Pool, *pgxpool.Stat) float64) {
		desc := prometheus.NewDesc("tidygate_pool_"+name, help, nil, labels)
		c.metrics = append(c.metrics, poolMetric{desc: desc, kind: kind, value: value})
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue

	add("acquired_conns", "Connections currently checked out of the pool.", gauge,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) })
	add("idle_conns", "Connections open and idle in the pool.", gauge,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.IdleConns()) })
	add("total_conns", "Connections in the pool: acquired, idle and being opened.", gauge,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.TotalConns()) })
	add("constructing_conns", "Connections being opened.", gauge,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.ConstructingConns()) })
	add("max_conns", "The most connections the pool opens.", gauge,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.MaxConns()) })

	add("acquires_total", "Successful acquires.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) })
	add("empty_acquires_total", "Successful acquires that waited for a connection to be released or opened.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) })
	add("canceled_acquires_total", "Acquires abandoned because their context ended, the acquire timeout included.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) })
	add("acquire_errors_total", "Acquires that failed: timeouts, refused or failed connections, cancellations. pgx counts no failed dials; tidygate does.", counter,
		func(p *Pool, _ *pgxpool.Stat) float64 { return float64(p.acquireErrors.Load()) })
	add("acquire_wait_seconds_total", "Time spent in successful acquires, waiting, connecting and pinging included.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() })
	add("empty_acquire_wait_seconds_total", "Time successful acquires waited because the pool had no idle connection.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return s.EmptyAcquireWaitTime().Seconds() })
	add("new_conns_total", "Connections opened.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) })
	add("max_lifetime_destroys_total", "Connections closed because they reached their maximum lifetime.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.MaxLifetimeDestroyCount()) })
	add("max_idle_destroys_total", "Connections closed because they stayed idle too long.", counter,
		func(_ *Pool, s *pgxpool.Stat) float64 { return float64(s.MaxIdleDestroyCount()) })
	add("resets_total", "Times the pool closed all its connections because the server went away or became read-only.", counter,
		func(p *Pool, _ *pgxpool.Stat) float64 { return float64(p.resets.Load()) })
	return c
}

// Describe sends the descriptions of the pool's metrics.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

// Collect reads the pool's statistics once and sends every metric.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	for _, m := range c.metrics {
		metric, err := prometheus.NewConstMetric(m.desc, m.kind, m.value(c.pool, s))
		if err != nil {
			metric = prometheus.NewInvalidMetric(m.desc, err)
		}
		ch <- metric
	}
}
