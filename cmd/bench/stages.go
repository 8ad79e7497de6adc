package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

// stageMetric is the histogram tidygate reports each call's stages in;
// syncMetric the one its call log's journal reports each durable commit
// in, which parseStages files under the stage journalSync.
const (
	stageMetric = "tidygate_call_stage_seconds"
	syncMetric  = "tidygate_calllog_journal_sync_seconds"
	journalSync = "record: the journal's commits"
)

// histogram is one series of a Prometheus histogram: its buckets' upper
// bounds in increasing order (+Inf last) and their cumulative counts.
type histogram struct {
	bounds []float64
	counts []float64
}

// since returns the observations h holds that earlier did not: h's counts
// minus earlier's, bucket by bucket (earlier may be empty).
func (h histogram) since(earlier histogram) histogram {
	out := histogram{bounds: h.bounds, counts: slices.Clone(h.counts)}
	if len(earlier.counts) == len(h.counts) {
		for i := range out.counts {
			out.counts[i] -= earlier.counts[i]
		}
	}
	return out
}

// count is how many observations h holds.
func (h histogram) count() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile estimates the q-quantile (0 < q < 1) as Prometheus's
// histogram_quantile does: the bucket holding the rank, interpolated
// linearly between its bounds (the first bucket's lower bound is zero; a
// rank in the +Inf bucket answers the last finite bound). ok is false
// when h is empty.
func (h histogram) quantile(q float64) (time.Duration, bool) {
	n := h.count()
	if n == 0 {
		return 0, false
	}
	rank := q * n
	i, _ := slices.BinarySearch(h.counts, rank) // the first bucket holding rank observations
	if math.IsInf(h.bounds[i], 1) {
		return seconds(h.bounds[max(i-1, 0)]), true
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = h.bounds[i-1], h.counts[i-1]
	}
	in := h.counts[i] - below
	if in == 0 {
		return seconds(h.bounds[i]), true
	}
	return seconds(lower + (h.bounds[i]-lower)*(rank-below)/in), true
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// parseStages reads the stages' histograms from a /metrics page, by stage,
// and the journal's commits as the stage journalSync.
func parseStages(r io.Reader) (map[string]histogram, error) {
	out := map[string]histogram{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		metric, stage := stageMetric, ""
		rest, ok := strings.CutPrefix(line, stageMetric+"_bucket{")
		if !ok {
			metric, stage = syncMetric, journalSync
			rest, ok = strings.CutPrefix(line, syncMetric+"_bucket{")
		}
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nil, fmt.Errorf("%s: unreadable line %q", metric, line)
		}
		var le string
		for _, l := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(l, "=")
			switch k {
			case "stage":
				stage = strings.Trim(v, `"`)
			case "le":
				le = strings.Trim(v, `"`)
			}
		}
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bucket bound %q: %w", metric, le, err)
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: count %q: %w", metric, value, err)
		}
		h := out[stage]
		h.bounds, h.counts = append(h.bounds, bound), append(h.counts, n)
		out[stage] = h
	}
	return out, sc.Err()
}

// stageHistograms fetches g's stage histograms from its /metrics page.
func stageHistograms(ctx context.Context, g *gateway) (map[string]histogram, error) {
	page, err := g.metricsPage(ctx)
	if err != nil {
		return nil, err
	}
	defer page.Close()
	return parseStages(page)
}

// stageCalls is how many chat calls runStages sends.
const stageCalls = 2000

// runStages sends stageCalls non-streaming chat calls to g one after the
// other and writes where tidygate's time went during them, from its own
// stage histograms (read before and after), beside the floor's probes and
// the direct call measured in the interleaved rounds.
func runStages(ctx context.Context, r *report, g *gateway, fsync, roundTrip, direct bench.Summary) error {
	before, err := stageHistograms(ctx, g)
	if err != nil {
		return err
	}
	samples, err := bench.Sequential(ctx, bench.NewClient(1), endpoint{base: g.url}.request(false), stageCalls)
	g.answered += int64(len(samples))
	if err != nil {
		return fmt.Errorf("the stages' chat calls: %w", err)
	}
	after, err := stageHistograms(ctx, g)
	if err != nil {
		return err
	}
	whole := bench.Summarize(bench.Totals(samples))
	r.write("**Where tidygate's time goes**\n\n")
	r.para("After the rounds, %d more non-streaming chat calls one after the other (whole call: p50 %s, p99 %s), "+
		"and tidygate's own histogram `%s` (docs/OPERATIONS.md) read from its /metrics before and after them. "+
		"Its percentiles are interpolated within the histogram's buckets (25 µs wide up to 0.2 ms, coarser above), so they are estimates; "+
		"the probes' are exact. A caller without budgets (these calls' key has none) reserves while its provider works: "+
		"the provider is called once the reservation has been sent (reserve_send), the rest of reserve overlaps upstream, "+
		"and the answer waits for both and then for record; settle runs after the answer. "+
		"What reserve_send, upstream and record leave of the whole call is the HTTP server, the handler (key, decoding, policy, encoding) and the scheduling between them.",
		stageCalls, us(whole.P50), us(whole.P99), stageMetric)
	compare := map[string]string{
		"reserve":      fmt.Sprintf("PostgreSQL round trip (`SELECT 1`): p50 %s, p99 %s", us(roundTrip.P50), us(roundTrip.P99)),
		"reserve_send": "none: the part of reserve before the provider is called (encoding the reservation and writing it to PostgreSQL)",
		"upstream":     fmt.Sprintf("direct to the mock from the harness (chat, whole response): p50 %s, p99 %s", us(direct.P50), us(direct.P99)),
		"record":       fmt.Sprintf("`fdatasync` of a %d-byte append: p50 %s, p99 %s", bench.AppendSize, us(fsync.P50), us(fsync.P99)),
		journalSync: fmt.Sprintf("the same probe: the disk's share of the record stage, from `%s`, one observation per commit "+
			"(the writer's delivery marks are commits too)", syncMetric),
		"settle": "none: after the answers, one batch per observation (a settlement waits up to 10 ms for others to join it), two round trips each",
	}
	var rows [][]string
	for _, stage := range []string{"reserve", "reserve_send", "upstream", "record", journalSync, "settle"} {
		h := after[stage].since(before[stage])
		p50, ok := h.quantile(0.5)
		if !ok {
			rows = append(rows, []string{stage, "0", "–", "–", compare[stage]})
			continue
		}
		p99, _ := h.quantile(0.99)
		rows = append(rows, []string{stage, fmt.Sprintf("%.0f", h.count()), us(p50), us(p99), compare[stage]})
	}
	r.table([]string{"stage", "observations", "p50", "p99", "the floor's part, measured in the rounds"}, rows)
	return nil
}
