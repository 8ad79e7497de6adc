package main

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

// throughputTarget is the factor over the throughput of the build
// before its work.
const throughputTarget = 3.0

// runThroughput is section 2 and the RSS half of section 5: a closed loop
// at fixed concurrency against each endpoint in turn (after a short
// unrecorded warm-up), then each process's peak RSS. It returns the
// measured runs by endpoint name, and for tidygate's run the CPU its
// processes used and the share of its profile in the call log's code.
func runThroughput(ctx context.Context, o options, tmp string, r *report, eps []endpoint, mockPID int) (map[string]bench.Throughput, *cpuRun, error) {
	client := bench.NewClient(o.concurrency)
	out := make(map[string]bench.Throughput, len(eps))
	var rows [][]string
	var allocs string
	var logging *cpuRun
	for _, ep := range eps {
		req := ep.request(false)
		warm := bench.Warm(ctx, client, req, o.concurrency, min(time.Second, o.duration))
		m0, b0, haveStats := goMemStats(ctx, ep.gw)
		profiled := make(chan error, 1)
		var meter *cpuMeter
		if ep.gw != nil {
			// The profile is always taken: its share in the call log's code
			// splits tidygate's CPU. -pprof only says where to keep it.
			dir := cmp.Or(o.profileDir, tmp)
			go func() { profiled <- ep.gw.profileCPU(ctx, dir, "tidygate-throughput", o.duration-time.Second) }()
			var err error
			if meter, err = startCPUMeter(ctx, o, ep.gw, mockPID); err != nil {
				return nil, nil, fmt.Errorf("%s: CPU: %w", ep.name, err)
			}
		} else {
			profiled <- nil
		}
		t := bench.ClosedLoop(ctx, client, req, o.concurrency, o.duration)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		var run cpuRun
		var err error
		if meter != nil {
			if run, err = meter.loadEnded(ctx, t); err != nil {
				return nil, nil, fmt.Errorf("%s: CPU: %w", ep.name, err)
			}
		}
		m1, b1, _ := goMemStats(ctx, ep.gw)
		mem, err := ep.proc.memory() // before the drain below: the peak under the load
		if err != nil {
			return nil, nil, fmt.Errorf("%s: memory: %w", ep.name, err)
		}
		if meter != nil {
			if err := meter.drain(ctx, &run); err != nil {
				return nil, nil, fmt.Errorf("%s: CPU: %w", ep.name, err)
			}
			logging = &run
		}
		if err := <-profiled; err != nil {
			return nil, nil, fmt.Errorf("%s: CPU profile: %w", ep.name, err)
		}
		if logging != nil && ep.gw != nil {
			share, err := profileShareOf(filepath.Join(cmp.Or(o.profileDir, tmp), "tidygate-throughput.cpu.pprof"))
			if err != nil {
				return nil, nil, err
			}
			logging.share = share
		}
		out[ep.name] = t
		rows = append(rows, append(throughputRow(ep.name, t), mib(mem.peak), mib(mem.anon), mib(mem.file)))
		if ep.gw == nil {
			continue
		}
		ep.gw.answered += int64(warm + t.Succeeded)
		r.target(fmt.Sprintf("Peak RSS (VmHWM) under load (c=%d) < 64 MiB", o.concurrency), mib(mem.peak), mem.peak < peakRSSTarget)
		if n := float64(t.Succeeded + t.Failed); haveStats && n > 0 {
			allocs = fmt.Sprintf("Allocations in the tidygate process during its measured run, from its /metrics (go_memstats): "+
				"%.0f allocations and %.1f KiB per request — everything the process did, the call log's writer included.",
				(m1-m0)/n, (b1-b0)/n/1024)
		}
	}
	r.section(fmt.Sprintf("2. Throughput at concurrency %d, and peak RSS", o.concurrency))
	r.para("A closed loop: %d clients each send the next non-streaming chat call as soon as the last one is answered, for %s per target, after a 1 s warm-up. "+
		"Peak RSS is each process's VmHWM after its run (the mock's includes every run before); "+
		"anonymous (heap, stacks) and file-backed (the binary's pages; the journal maps no file) are the resident memory at that moment.", o.concurrency, o.duration)
	r.table([]string{"target", "req/s", "p50", "p99", "failures", "peak RSS", "anon", "file"}, rows)
	if allocs != "" {
		r.para("%s", allocs)
	}
	for _, ep := range eps {
		if t := out[ep.name]; t.FirstErr != nil {
			r.para("First failure through %s: %v", ep.name, t.FirstErr)
		}
	}
	return out, logging, nil
}

func throughputRow(name string, t bench.Throughput) []string {
	return []string{name, fmt.Sprintf("%.0f", t.PerSecond()), us(t.Latency.P50), us(t.Latency.P99), fmt.Sprint(t.Failed)}
}

// throughputTargetName is the throughput target's name in the summary,
// before what says how it was judged.
func throughputTargetName(o options) string {
	return fmt.Sprintf("Throughput at c=%d with logging on ≥ %.0f × the build before", o.concurrency, throughputTarget)
}

// baselinePairs is how many alternated pairs of runs (tidygate, then the
// baseline build) judge the throughput target when the baseline build is
// measured in the same run: the target is judged on the median of the
// pairs' ratios, since one run on this machine moves by a third.
const baselinePairs = 3

// judgeThroughput writes the throughput target's verdict: tidygate's req/s
// with logging on against throughputTarget × the build before issue 16's
// work. When -baseline-tidygate names that build's binary, both are loaded
// in baselinePairs alternated pairs of runs of -duration, and the median of
// the pairs' ratios is judged; otherwise tidygate's run of section 2
// against the recorded -baseline-rps. It returns the build before's req/s
// (the median of its runs, or -baseline-rps), or 0 when tidygate was not
// measured.
func judgeThroughput(ctx context.Context, o options, tmp string, r *report, mockURL string, eps []endpoint, rates map[string]bench.Throughput) (before float64, err error) {
	t, ok := rates["tidygate"]
	g := gatewayOf(eps)
	if !ok || g == nil {
		return 0, nil
	}
	name := throughputTargetName(o)
	if o.baselineTidygate == "" {
		r.target(fmt.Sprintf("%s (%.0f req/s, -baseline-rps)", name, o.baselineRPS),
			fmt.Sprintf("%.0f req/s (%.2f×)", t.PerSecond(), t.PerSecond()/o.baselineRPS), t.PerSecond() >= throughputTarget*o.baselineRPS)
		return o.baselineRPS, nil
	}
	ob := o
	ob.tidygate = o.baselineTidygate
	base, err := startGateway(ctx, ob, tmp, "tidygate-baseline", mockURL)
	if err != nil {
		return 0, fmt.Errorf("the baseline build %s: %w", o.baselineTidygate, err)
	}
	defer base.close()
	client := bench.NewClient(o.concurrency)
	load := func(gw *gateway) bench.Throughput {
		req := endpoint{base: gw.url}.request(false)
		warm := bench.Warm(ctx, client, req, o.concurrency, min(time.Second, o.duration))
		run := bench.ClosedLoop(ctx, client, req, o.concurrency, o.duration)
		gw.answered += int64(warm + run.Succeeded)
		return run
	}
	var rows [][]string
	var rs, befores []float64
	var firsts []error // the first failures seen, at most two
	for i := range baselinePairs {
		now, before := load(g), load(base)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		befores = append(befores, before.PerSecond())
		for _, run := range []bench.Throughput{now, before} {
			if run.FirstErr != nil && len(firsts) < 2 {
				firsts = append(firsts, run.FirstErr)
			}
		}
		ratio := now.PerSecond() / max(before.PerSecond(), 1)
		rs = append(rs, ratio)
		rows = append(rows, []string{fmt.Sprint(i + 1), fmt.Sprintf("%.0f", now.PerSecond()), fmt.Sprintf("%.0f", before.PerSecond()),
			fmt.Sprint(now.Failed + before.Failed), fmt.Sprintf("%.2f×", ratio)})
	}
	r.para("tidygate against the build before issue 16's work (-baseline-tidygate %s), both with logging on, under the same load, "+
		"in %d alternated pairs of %s runs after a 1 s warm-up each:", filepath.Base(o.baselineTidygate), baselinePairs, o.duration)
	r.table([]string{"pair", "tidygate req/s", "build before req/s", "failures", "ratio"}, rows)
	for _, run := range firsts {
		r.para("First failure: %v", run)
	}
	m := median(rs)
	r.target(fmt.Sprintf("%s (measured in this run, median of %d alternated pairs)", name, baselinePairs),
		fmt.Sprintf("median %.2f× (%s)", m, ratios(rs)), m >= throughputTarget)
	return median(befores), nil
}
