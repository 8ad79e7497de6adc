package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

// mode is what a latency case measures: a whole chat call, or a stream's
// time to first byte.
type mode struct {
	name   string
	stream bool
	pick   func([]bench.Sample) []time.Duration
}

var modes = []mode{
	{name: "chat (whole response)", stream: false, pick: bench.Totals},
	{name: "stream (time to first byte)", stream: true, pick: bench.TTFBs},
}

// runLatency is section 1: every endpoint and mode interleaved at
// concurrency 1; added latency is each percentile minus direct's.
// When tidygate is among eps, its Messages and Responses dialects are
// measured too, as rows of their own.
func runLatency(ctx context.Context, o options, r *report, eps []endpoint) ([]byte, error) {
	if g := gatewayOf(eps); g != nil {
		eps = append(slices.Clone(eps),
			endpoint{name: "tidygate /v1/messages", base: g.url, proc: g.child, gw: g, dialect: messagesDialect},
			endpoint{name: "tidygate /v1/responses", base: g.url, proc: g.child, gw: g, dialect: responsesDialect})
	}
	var cases []bench.Case
	for _, m := range modes {
		for _, ep := range eps {
			cases = append(cases, bench.Case{Name: ep.name + " " + m.name, Req: ep.request(m.stream)})
		}
	}
	results, err := bench.Interleave(ctx, bench.NewClient(1), cases, o.rounds, o.requests, o.warmup)
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		if ep.gw != nil {
			ep.gw.answered += int64(len(modes) * (o.warmup + o.rounds*o.requests))
		}
	}

	r.section("1. Added latency at concurrency 1")
	r.para("%d interleaved rounds of %d requests per case after %d warm-up requests each; %d samples per row. "+
		"Added = the target's percentile minus direct's; the ReverseProxy hop is the floor.",
		o.rounds, o.requests, o.warmup, o.rounds*o.requests)
	var panels []bench.Panel
	for mi, m := range modes {
		sums := make([]bench.Summary, len(eps))
		panel := bench.Panel{Title: m.name}
		for ei, ep := range eps {
			d := m.pick(results[mi*len(eps)+ei].Samples)
			sums[ei] = bench.Summarize(d)
			panel.Series = append(panel.Series, bench.Series{Name: ep.name, Samples: d})
		}
		panels = append(panels, panel)
		direct, floor := sums[0], sums[1]
		var rows [][]string
		for ei, ep := range eps {
			s := sums[ei]
			row := []string{ep.name, us(s.P50), us(s.P90), us(s.P99), us(s.P999), "–", "–", "–", "–"}
			if ei > 0 {
				a50, a99 := s.P50-direct.P50, s.P99-direct.P99
				row[5], row[6] = us(a50), us(a99)
				row[7] = ratio(float64(a50), float64(floor.P50-direct.P50))
				row[8] = ratio(float64(a99), float64(floor.P99-direct.P99))
			}
			rows = append(rows, row)
		}
		r.write("**" + m.name + "**\n\n")
		r.table([]string{"target", "p50", "p90", "p99", "p99.9", "added p50", "added p99", "added p50 / floor's", "added p99 / floor's"}, rows)
		if len(eps) > 2 {
			tg := sums[2]
			a50, a99 := float64(tg.P50-direct.P50), float64(tg.P99-direct.P99)
			f50, f99 := float64(floor.P50-direct.P50), float64(floor.P99-direct.P99)
			r.target(fmt.Sprintf("%s: added p50 ≤ 2× the ReverseProxy hop's", m.name),
				fmt.Sprintf("%s vs %s (%s)", us(tg.P50-direct.P50), us(floor.P50-direct.P50), ratio(a50, f50)), f50 > 0 && a50 <= 2*f50)
			r.target(fmt.Sprintf("%s: added p99 ≤ 3× the ReverseProxy hop's", m.name),
				fmt.Sprintf("%s vs %s (%s)", us(tg.P99-direct.P99), us(floor.P99-direct.P99), ratio(a99, f99)), f99 > 0 && a99 <= 3*f99)
		}
	}
	for i, res := range results {
		if res.Failures > 0 {
			r.para("%s: %d of %d requests failed (left out of the percentiles); the first with: %v",
				cases[i].Name, res.Failures, o.warmup+o.rounds*o.requests, res.FirstErr)
		}
	}
	r.para("![Latency distributions](bench/latency.svg)")
	return chartSVG(panels)
}

// gatewayOf returns the tidygate process among eps, if there is one.
func gatewayOf(eps []endpoint) *gateway {
	for _, ep := range eps {
		if ep.gw != nil {
			return ep.gw
		}
	}
	return nil
}
