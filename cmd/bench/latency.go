package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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

// latencyProfile is how long -pprof profiles tidygate at concurrency 1,
// from the start of the latency section's requests.
const latencyProfile = 20 * time.Second

// runLatency is section 1: every endpoint and mode interleaved at
// concurrency 1, with the floor's two probes (an fdatasync in tmp, the
// journals' filesystem, and a prepared SELECT 1) interleaved beside them;
// added latency is each percentile minus direct's. The floor composed
// (bench.FloorGateway, a process of its own) is measured in the same
// rounds, bare and with tidygate's call log, as the last two rows. When
// tidygate is among eps, its Messages and Responses dialects are measured
// too, as rows of their own.
func runLatency(ctx context.Context, o options, tmp string, r *report, eps []endpoint) ([]byte, error) {
	if g := gatewayOf(eps); g != nil {
		eps = append(slices.Clone(eps),
			endpoint{name: "tidygate /v1/messages", base: g.url, proc: g.child, gw: g, dialect: messagesDialect},
			endpoint{name: "tidygate /v1/responses", base: g.url, proc: g.child, gw: g, dialect: responsesDialect})
	}
	composed, err := startSelf(tmp, "floor", "floor", "-target", eps[0].base, "-dsn", o.adminDSN, "-dir", tmp)
	if err != nil {
		return nil, fmt.Errorf("the floor composed: %w", err)
	}
	defer func() { _ = composed.stop() }()
	logDB, err := createDB(ctx, o.adminDSN, "floorlog")
	if err != nil {
		return nil, err
	}
	defer func() { _ = logDB.drop() }()
	logged, err := startSelf(tmp, "floor-calllog", "floor", "-target", eps[0].base, "-dsn", o.adminDSN, "-dir", tmp, "-calllog-dsn", logDB.dsn)
	if err != nil {
		return nil, fmt.Errorf("the floor composed with the call log: %w", err)
	}
	defer func() { _ = logged.stop() }()
	eps = append(slices.Clone(eps), endpoint{name: composedFloor, base: composed.url, proc: composed},
		endpoint{name: composedFloorLogged, base: logged.url, proc: logged})
	var cases []bench.Case
	for _, m := range modes {
		for _, ep := range eps {
			cases = append(cases, bench.Case{Name: ep.name + " " + m.name, Req: ep.request(m.stream)})
		}
	}
	probes, closeProbes, err := floorProbes(ctx, o, tmp)
	if err != nil {
		return nil, err
	}
	defer closeProbes()
	g := gatewayOf(eps)
	profiled := make(chan error, 1)
	if g != nil && o.profileDir != "" {
		go func() { profiled <- g.profileCPU(ctx, o.profileDir, "tidygate-latency", latencyProfile) }()
	} else {
		profiled <- nil
	}
	results, err := bench.Interleave(ctx, bench.NewClient(1), append(cases, probes...), o.rounds, o.requests, o.warmup)
	if err := errors.Join(err, <-profiled); err != nil {
		return nil, err
	}
	for _, ep := range eps {
		if ep.gw != nil {
			ep.gw.answered += int64(len(modes) * (o.warmup + o.rounds*o.requests))
		}
	}
	fsync, roundTrip := results[len(cases)], results[len(cases)+1]

	r.section("1. Added latency at concurrency 1, against the floor")
	r.para("%d interleaved rounds of %d requests per case after %d warm-up requests each; %d samples per row. "+
		"Added = the target's percentile minus direct's. The floor is what a gateway with tidygate's guarantees cannot avoid adding: "+
		"the ReverseProxy hop (its added percentile; a hop measured below zero counts as zero), "+
		"one `fdatasync` of a %d-byte append to a file in the journals' directory, and one PostgreSQL round trip "+
		"(a prepared `SELECT 1` on one open connection to the -admin-dsn server), each at the same percentile, "+
		"the two probes interleaved with the HTTP cases in every round.",
		o.rounds, o.requests, o.warmup, o.rounds*o.requests, bench.AppendSize)
	fsyncD, rtD := bench.Totals(fsync.Samples), bench.Totals(roundTrip.Samples)
	floors := make([][2]floor, len(modes)) // by mode: p50, p99
	floorRows := [][]string{{"ReverseProxy hop, added"}, {fmt.Sprintf("`fdatasync` of a %d-byte append", bench.AppendSize)}, {"PostgreSQL round trip (prepared `SELECT 1`)"}, {"**floor**"}}
	var header []string
	for mi, m := range modes {
		direct, proxy := m.pick(results[mi*len(eps)].Samples), m.pick(results[mi*len(eps)+1].Samples)
		for pi, pct := range []float64{50, 99} {
			f := floorAt(pct, direct, proxy, fsyncD, rtD)
			floors[mi][pi] = f
			floorRows[0] = append(floorRows[0], us(f.hop))
			floorRows[1] = append(floorRows[1], us(f.fsync))
			floorRows[2] = append(floorRows[2], us(f.roundTrip))
			floorRows[3] = append(floorRows[3], "**"+us(f.total())+"**")
			header = append(header, fmt.Sprintf("%s p%.0f", m.name, pct))
		}
	}
	r.write("**The floor**\n\n")
	r.table(append([]string{"part"}, header...), floorRows)

	var panels []bench.Panel
	var composedRows [][]string
	hasGateway := gatewayOf(eps) != nil // then eps[2] is tidygate
	for mi, m := range modes {
		sums := make([]bench.Summary, len(eps))
		panel := bench.Panel{Title: m.name}
		for ei, ep := range eps {
			d := m.pick(results[mi*len(eps)+ei].Samples)
			sums[ei] = bench.Summarize(d)
			panel.Series = append(panel.Series, bench.Series{Name: ep.name, Samples: d})
		}
		panels = append(panels, panel)
		direct, f50, f99 := sums[0], floors[mi][0].total(), floors[mi][1].total()
		var rows [][]string
		for ei, ep := range eps {
			s := sums[ei]
			row := []string{ep.name, us(s.P50), us(s.P90), us(s.P99), us(s.P999), "–", "–", "–", "–"}
			if ei > 0 {
				a50, a99 := s.P50-direct.P50, s.P99-direct.P99
				row[5], row[6] = us(a50), us(a99)
				row[7], row[8] = ratio(float64(a50), float64(f50)), ratio(float64(a99), float64(f99))
			}
			rows = append(rows, row)
		}
		r.write("**" + m.name + "**\n\n")
		r.table([]string{"target", "p50", "p90", "p99", "p99.9", "added p50", "added p99", "added p50 / floor's", "added p99 / floor's"}, rows)
		var c50s [2]time.Duration // the floor composed, bare and with the call log: added p50
		var crrs [2][]float64     // … and its rounds' p99 ratios
		for k, ci := range []int{len(eps) - 2, len(eps) - 1} {
			a50, a99 := sums[ci].P50-direct.P50, sums[ci].P99-direct.P99
			rr := roundRatios(99, o.rounds, m.pick, results[mi*len(eps)], results[mi*len(eps)+1], results[mi*len(eps)+ci], fsync, roundTrip)
			c50s[k], crrs[k] = a50, rr
			row := []string{eps[ci].name, m.name, us(a50), ratio(float64(a50), float64(f50)), us(a99), fmt.Sprintf("%.2f×", median(rr)), "–", "–"}
			if hasGateway {
				row[6] = ratio(float64(sums[2].P50-direct.P50), float64(a50))
				row[7] = ratio(float64(sums[2].P99-direct.P99), float64(a99))
			}
			composedRows = append(composedRows, row)
		}
		c50, l50, crr, lrr := c50s[0], c50s[1], crrs[0], crrs[1]
		if !hasGateway {
			continue
		}
		tg := results[mi*len(eps)+2]
		a50 := sums[2].P50 - direct.P50
		r.target(fmt.Sprintf("%s: added p50 ≤ %.1f × the floor's p50", m.name, p50FloorTarget),
			fmt.Sprintf("%s vs floor %s (%s); the floor composed in one process added %s (%s), with the call log on %s (%s)",
				us(a50), us(f50), ratio(float64(a50), float64(f50)), us(c50), ratio(float64(c50), float64(f50)), us(l50), ratio(float64(l50), float64(f50))),
			f50 > 0 && float64(a50) <= p50FloorTarget*float64(f50))
		rr := roundRatios(99, o.rounds, m.pick, results[mi*len(eps)], results[mi*len(eps)+1], tg, fsync, roundTrip)
		r.target(fmt.Sprintf("%s: added p99 ≤ %.0f × the floor's p99 (median ratio of the interleaved rounds)", m.name, p99FloorTarget),
			fmt.Sprintf("median %.2f× of %d rounds (%s); whole run %s vs floor %s; the floor composed: median %.2f×, with the call log on: median %.2f×",
				median(rr), len(rr), ratios(rr), us(sums[2].P99-direct.P99), us(f99), median(crr), median(lrr)),
			len(rr) > 0 && median(rr) <= p99FloorTarget)
	}
	r.write("**The floor composed**\n\n")
	r.para("`%s` is `bench floor`: the floor's three parts one after the other in one Go process, as a gateway that did nothing else would make them: "+
		"for each request a prepared `SELECT 1` from a pgxpool, then the request forwarded by the same ReverseProxy, then, once the upstream's answer has begun, "+
		"one %d-byte append made durable with `fdatasync` before the answer is copied to the client. "+
		"Its added latency is the floor as this machine serves it in one request, with the scheduling between the parts that the probes, each timed alone, do not pay: "+
		"what no implementation of those three steps in sequence can beat here. "+
		"`%s` is the same process with tidygate's call log (internal/adapters/mlflow, MLFLOW_LOG_MODE=traces, MLFLOW_LOG_CONTENT=full) in place of the bare append: "+
		"each call's record (a chat call like these, ~1 KB answer) journaled, one `fdatasync` per group commit, before the answer is copied, "+
		"and delivered in the background into MLflow's tables in a database of its own on the same server, as every call through tidygate is: "+
		"the floor with every call recorded in MLflow, and nothing else of tidygate's.", composedFloor, bench.AppendSize, composedFloorLogged)
	r.table([]string{"target", "mode", "added p50", "/ the floor's p50", "added p99", "/ the floor's p99 (median of rounds)", "tidygate's added p50 / its", "tidygate's added p99 / its"}, composedRows)
	for i, res := range results {
		if res.Failures > 0 {
			r.para("%s: %d of %d requests failed (left out of the percentiles); the first with: %v",
				append(cases, probes...)[i].Name, res.Failures, o.warmup+o.rounds*o.requests, res.FirstErr)
		}
	}
	if g != nil {
		if err := runStages(ctx, r, g, bench.Summarize(fsyncD), bench.Summarize(rtD), bench.Summarize(modes[0].pick(results[0].Samples))); err != nil {
			return nil, err
		}
	}
	r.para("![Latency distributions](bench/latency.svg)")
	return chartSVG(panels)
}

// floorProbes returns the floor's two probes as interleaved cases: an
// fdatasync of a small append to a file in dir, and a prepared SELECT 1 on
// one connection to -admin-dsn's server; closeProbes removes the file and
// closes the connection.
func floorProbes(ctx context.Context, o options, dir string) (probes []bench.Case, closeProbes func(), err error) {
	fsync, err := bench.NewFsyncProbe(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("the floor's fdatasync probe: %w", err)
	}
	conn, err := pgx.Connect(ctx, o.adminDSN)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("the floor's round trip needs PostgreSQL at -admin-dsn: %w", err), fsync.Close())
	}
	closeProbes = func() {
		_ = fsync.Close()
		_ = conn.Close(context.WithoutCancel(ctx))
	}
	rt, err := bench.NewRoundTripProbe(ctx, conn)
	if err != nil {
		closeProbes()
		return nil, nil, err
	}
	return []bench.Case{
		{Name: "floor: fdatasync", Measure: fsync.Measure},
		{Name: "floor: SELECT 1", Measure: rt.Measure},
	}, closeProbes, nil
}

// composedFloor and composedFloorLogged name bench.FloorGateway's rows in
// the latency tables: with the bare append, and with tidygate's call log.
const (
	composedFloor       = "floor, composed"
	composedFloorLogged = "floor, composed, call log on"
)

// gatewayOf returns the tidygate process among eps, if there is one.
func gatewayOf(eps []endpoint) *gateway {
	for _, ep := range eps {
		if ep.gw != nil {
			return ep.gw
		}
	}
	return nil
}
