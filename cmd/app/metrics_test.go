package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
