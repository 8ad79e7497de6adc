package main

import (
	"maps"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tidygate/tidygate/internal/adapters/postgres"
	"github.com/tidygate/tidygate/internal/domain"
	"github.com/tidygate/tidygate/internal/gateway"
)

// TestUnauthenticatedCounterIsServed checks that the HTTP edge's count of
// refused keys lands on the registry /metrics serves, under its code.
func TestUnauthenticatedCounterIsServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newUnauthenticatedCounter(reg)
	c.CountUnauthenticated("invalid_api_key")
	c.CountUnauthenticated("invalid_api_key")
	c.CountUnauthenticated("missing_api_key")
	got := counters(t, reg, "tidygate_unauthenticated_requests_total")
	if want := map[string]float64{"code=invalid_api_key": 2, "code=missing_api_key": 1}; !maps.Equal(got, want) {
		t.Fatalf("tidygate_unauthenticated_requests_total = %v, want %v", got, want)
	}
}

// TestExcessClaimCounterIsServed checks that the gateway's count of usage
// claims beyond the reservation lands on the registry /metrics serves, by
// provider and model.
func TestExcessClaimCounterIsServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newExcessClaimCounter(reg)
	c.CountExcessClaim("openai", "gpt")
	c.CountExcessClaim("openai", "gpt")
	c.CountExcessClaim("anthropic", "claude")
	got := counters(t, reg, "tidygate_usage_claims_exceeding_reservation_total")
	want := map[string]float64{"model=gpt,provider=openai": 2, "model=claude,provider=anthropic": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("tidygate_usage_claims_exceeding_reservation_total = %v, want %v", got, want)
	}
}

// counters gathers reg and returns the values of the counter family name,
// each keyed by its labels as "name=value" joined with commas.
func counters(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[strings.Join(labels, ",")] = m.GetCounter().GetValue()
		}
	}
	return got
}

// TestDeploymentMetricsAreServed checks that the gateway's account of a
// deployment lands on the registry /metrics serves: requests by outcome,
// errors by kind, in flight, latency and the breaker's state.
func TestDeploymentMetricsAreServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newDeploymentMetrics(reg)
	d := domain.Deployment{Provider: "openai-main", Upstream: "gpt-4o-mini"}
	for range 3 {
		m.AttemptStarted(d)
	}
	m.AttemptEnded(d, "ok", time.Second)
	m.AttemptEnded(d, "rate_limited", time.Millisecond)
	m.BreakerChanged(d, "open")
	const dep, prov = "deployment=openai-main/gpt-4o-mini,", ",provider=openai-main" // labels sort by name
	if got := counters(t, reg, "tidygate_deployment_requests_total"); !maps.Equal(got, map[string]float64{dep + "outcome=ok" + prov: 1, dep + "outcome=rate_limited" + prov: 1}) {
		t.Errorf("requests = %v", got)
	}
	if got := counters(t, reg, "tidygate_deployment_errors_total"); !maps.Equal(got, map[string]float64{dep + "kind=rate_limited" + prov: 1}) {
		t.Errorf("errors = %v", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			switch f.GetName() {
			case "tidygate_deployment_in_flight":
				if v := metric.GetGauge().GetValue(); v != 1 {
					t.Errorf("in flight = %v, want 1", v)
				}
			case "tidygate_deployment_breaker_state":
				if v := metric.GetGauge().GetValue(); v != 2 {
					t.Errorf("breaker state = %v, want 2 (open)", v)
				}
			case "tidygate_deployment_latency_seconds":
				if n := metric.GetHistogram().GetSampleCount(); n != 2 {
					t.Errorf("latency samples = %d, want 2", n)
				}
			}
		}
	}
}

// TestStageMetricsAreServed checks that each stage's durations land in its
// own series of tidygate_call_stage_seconds.
func TestStageMetricsAreServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newStageMetrics(reg)
	m.ObserveStage(gateway.StageReserve, 300*time.Microsecond)
	m.ObserveStage(gateway.StageReserveSend, 50*time.Microsecond)
	m.ObserveStage(gateway.StageRecord, time.Millisecond)
	m.ObserveStage(gateway.StageRecord, 2*time.Millisecond)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			if f.GetName() == "tidygate_call_stage_seconds" && metric.GetHistogram().GetSampleCount() > 0 {
				got[metric.GetLabel()[0].GetValue()] = metric.GetHistogram().GetSampleSum()
			}
		}
	}
	if want := map[string]float64{"reserve": 0.0003, "reserve_send": 0.00005, "record": 0.003}; !maps.EqualFunc(got, want, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
		t.Fatalf("sums by stage = %v, want %v", got, want)
	}
}

// TestRedisObserverIsServed checks that the shared rate limiter's reports
// of Redis's availability and of the calls it decided without Redis land
// on the registry /metrics serves.
func TestRedisObserverIsServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := newRedisObserver(reg)
	o.Available(true)
	o.Available(false)
	o.DecidedWithoutRedis(false)
	o.DecidedWithoutRedis(false)
	o.DecidedWithoutRedis(true)
	if got, want := counters(t, reg, "tidygate_rate_limiter_redis_transitions_total"), map[string]float64{"to=up": 1, "to=down": 1}; !maps.Equal(got, want) {
		t.Fatalf("transitions = %v, want %v", got, want)
	}
	if got, want := counters(t, reg, "tidygate_rate_limiter_decided_without_redis_total"), map[string]float64{"decision=deny": 2, "decision=allow": 1}; !maps.Equal(got, want) {
		t.Fatalf("decided without Redis = %v, want %v", got, want)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "tidygate_rate_limiter_redis_up" && f.GetMetric()[0].GetGauge().GetValue() != 0 {
			t.Fatalf("tidygate_rate_limiter_redis_up = %v after Redis was lost, want 0", f.GetMetric()[0].GetGauge().GetValue())
		}
	}
}

// TestKeyCacheMetricsAreServed checks that the key cache's counters and
// gauges land on the registry /metrics serves: a cache whose listener has
// not connected holds nothing and says so.
func TestKeyCacheMetricsAreServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	cache, err := postgres.NewKeyCache(postgres.NewKeyStore(nil), postgres.KeyCacheOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := registerKeyCacheMetrics(reg, cache); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{"tidygate_key_cache_hits_total": 0, "tidygate_key_cache_misses_total": 0,
		"tidygate_key_cache_notifications_total": 0, "tidygate_key_cache_listener_connections_total": 0,
		"tidygate_key_cache_entries": 0, "tidygate_key_cache_listener_connected": 0}
	if !maps.Equal(got, want) {
		t.Fatalf("metrics = %v, want %v", got, want)
	}
}
