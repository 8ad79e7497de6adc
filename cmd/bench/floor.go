package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

// The latency targets: tidygate's added latency against the floor
// of its guarantees, measured in the same run.
const (
	p50FloorTarget = 1.3 // added p50 ≤ 1.3 × the floor's p50
	p99FloorTarget = 3.0 // added p99 ≤ 3 × the floor's p99 (median of the rounds' ratios)
)

// floor is what any gateway with tidygate's guarantees must add to a call,
// at one percentile: the reverse-proxy hop (the proxy's percentile minus
// direct's; a hop measured below zero, which is noise, counts as zero),
// one fdatasync of a small append, and one PostgreSQL round trip.
type floor struct {
	hop, fsync, roundTrip time.Duration
}

func (f floor) total() time.Duration { return max(f.hop, 0) + f.fsync + f.roundTrip }

// floorAt returns the floor at one percentile from the samples of the
// direct and proxy cases and the two probes.
func floorAt(pct float64, direct, proxy, fsync, roundTrip []time.Duration) floor {
	p := func(d []time.Duration) time.Duration { return bench.Percentile(sorted(d), pct) }
	return floor{hop: p(proxy) - p(direct), fsync: p(fsync), roundTrip: p(roundTrip)}
}

// roundRatios returns, for each interleaved round, the target's added
// latency at percentile pct (its percentile minus direct's) over the floor
// at pct, each computed from that round's samples alone. results holds the
// cases direct, proxy, target, fsync and round trip; pick takes the times a
// mode measures (a stream's time to first byte, say) from the HTTP cases.
func roundRatios(pct float64, rounds int, pick func([]bench.Sample) []time.Duration, direct, proxy, target, fsync, roundTrip bench.CaseResult) []float64 {
	out := make([]float64, 0, rounds)
	for i := range rounds {
		d := pick(direct.Round(i))
		f := floorAt(pct, d, pick(proxy.Round(i)), bench.Totals(fsync.Round(i)), bench.Totals(roundTrip.Round(i)))
		added := bench.Percentile(sorted(pick(target.Round(i))), pct) - bench.Percentile(sorted(d), pct)
		if f.total() > 0 {
			out = append(out, float64(added)/float64(f.total()))
		}
	}
	return out
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sorted(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// ratios formats each ratio as "1.23×", comma-separated.
func ratios(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.2f×", x)
	}
	return s
}
