package main

import (
	"strings"
	"testing"
	"time"
)

const stagesPage = `# HELP tidygate_call_stage_seconds Duration of each stage of the calls.
# TYPE tidygate_call_stage_seconds histogram
tidygate_call_stage_seconds_bucket{stage="record",le="0.0001"} 0
tidygate_call_stage_seconds_bucket{stage="record",le="0.0002"} 10
tidygate_call_stage_seconds_bucket{stage="record",le="0.0004"} 90
tidygate_call_stage_seconds_bucket{stage="record",le="+Inf"} 100
tidygate_call_stage_seconds_sum{stage="record"} 0.03
tidygate_call_stage_seconds_count{stage="record"} 100
tidygate_call_stage_seconds_bucket{stage="reserve",le="0.0001"} 4
tidygate_call_stage_seconds_bucket{stage="reserve",le="0.0002"} 4
tidygate_call_stage_seconds_bucket{stage="reserve",le="0.0004"} 4
tidygate_call_stage_seconds_bucket{stage="reserve",le="+Inf"} 4
tidygate_calllog_journal_sync_seconds_bucket{le="0.0002"} 1
tidygate_calllog_journal_sync_seconds_bucket{le="0.0004"} 3
tidygate_calllog_journal_sync_seconds_bucket{le="+Inf"} 3
tidygate_calllog_journal_sync_seconds_sum 0.0008
go_memstats_mallocs_total 12
`

func TestStageQuantiles(t *testing.T) {
	hs, err := parseStages(strings.NewReader(stagesPage))
	if err != nil {
		t.Fatal(err)
	}
	rec := hs["record"]
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.05, 150 * time.Microsecond}, // half way through the (100, 200] µs bucket
		{0.5, 300 * time.Microsecond},  // rank 50: 40 of the 80 in (200, 400] µs
		{0.99, 400 * time.Microsecond}, // in +Inf: the last finite bound
	} {
		if got, ok := rec.quantile(c.q); !ok || got != c.want {
			t.Errorf("record q%v = %v, %v; want %v", c.q, got, ok, c.want)
		}
	}
	if got, _ := hs["reserve"].quantile(0.5); got != 50*time.Microsecond {
		t.Errorf("reserve p50 = %v, want 50µs (half of the first bucket)", got)
	}
	if got, _ := hs[journalSync].quantile(0.5); hs[journalSync].count() != 3 || got != 250*time.Microsecond {
		t.Errorf("the journal's commits: %v observations, p50 %v; want 3 and 250µs (rank 1.5: a quarter into (200, 400] µs)", hs[journalSync].count(), got)
	}
	later := rec.since(histogram{})
	earlier := histogram{bounds: rec.bounds, counts: []float64{0, 10, 10, 10}}
	if got := later.since(earlier); got.count() != 90 {
		t.Errorf("observations since = %v, want 90", got.count())
	}
	if got, _ := rec.since(earlier).quantile(0.5); got != 312500*time.Nanosecond { // rank 45 of the 80 in (200, 400] µs
		t.Errorf("p50 since = %v, want 312.5µs", got)
	}
	if _, ok := (histogram{}).quantile(0.5); ok {
		t.Error("an empty histogram has a quantile")
	}
}

func TestParseStagesRefusesGarbage(t *testing.T) {
	if _, err := parseStages(strings.NewReader(`tidygate_call_stage_seconds_bucket{stage="x",le="abc"} 1` + "\n")); err == nil {
		t.Error("a bad bound was accepted")
	}
}
