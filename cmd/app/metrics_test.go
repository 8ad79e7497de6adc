package main

import (
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
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "tidygate_unauthenticated_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if got["invalid_api_key"] != 2 || got["missing_api_key"] != 1 || len(got) != 2 {
		t.Fatalf("tidygate_unauthenticated_requests_total = %v, want invalid_api_key 2, missing_api_key 1", got)
	}
}
