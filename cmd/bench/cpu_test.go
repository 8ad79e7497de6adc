package main

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func TestParseStatCPUAddsUserAndSystemTicks(t *testing.T) {
	// A command name with a space and a parenthesis: the fields are counted
	// from the last ')'. utime 1234 and stime 66 ticks of 1/100 s.
	line := "4242 (post gres: a) b) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 66 0 0 20 0 1 0 100 1000 10 18446744073709551615\n"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 13 * time.Second; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 no parenthesis 1 2 3", "1 (x) S 1 2 3"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCPUUsedCountsNewProcessesFromTheirStart(t *testing.T) {
	before := cpuSnapshot{"pg": {1: 2 * time.Second, 2: time.Second}, "tg": {9: 5 * time.Second}}
	// Backend 2 exited, 3 started.
	after := cpuSnapshot{"pg": {1: 3 * time.Second, 3: 500 * time.Millisecond}, "tg": {9: 7 * time.Second}}
	used := cpuUsed(before, after)
	if used["pg"] != 1500*time.Millisecond || used["tg"] != 2*time.Second {
		t.Errorf("used %v", used)
	}
}

func TestMergeKeepsTheLastCPUSeenOfExitedProcesses(t *testing.T) {
	seen := cpuSnapshot{"pg": {1: time.Second, 2: time.Second}}
	seen.merge(cpuSnapshot{"pg": {1: 3 * time.Second, 3: 100 * time.Millisecond}, "tg": {9: time.Second}}) // 2 exited
	seen.merge(cpuSnapshot{"pg": {1: 2 * time.Second, 3: 400 * time.Millisecond}})                         // a stale read of 1
	want := cpuSnapshot{"pg": {1: 3 * time.Second, 2: time.Second, 3: 400 * time.Millisecond}, "tg": {9: time.Second}}
	for g, pids := range want {
		for pid, d := range pids {
			if seen[g][pid] != d {
				t.Errorf("%s %d: %v, want %v", g, pid, seen[g][pid], d)
			}
		}
	}
	if len(seen["pg"]) != 3 {
		t.Errorf("pg: %v", seen["pg"])
	}
}

func TestLoggingCostAndBound(t *testing.T) {
	ms := time.Millisecond
	on := cpuRun{calls: 1000, written: 800, share: 0.25,
		used:    map[string]time.Duration{cpuTidygate: 400 * ms, cpuPostgres: 500 * ms, cpuClient: 100 * ms, cpuMock: 100 * ms},
		drained: map[string]time.Duration{cpuTidygate: 60 * ms, cpuPostgres: 100 * ms}}
	off := cpuRun{calls: 2000, used: map[string]time.Duration{
		cpuTidygate: 600 * ms, cpuPostgres: 400 * ms, cpuClient: 200 * ms, cpuMock: 200 * ms}}
	c := newLoggingCost(on, off)
	// tidygate: a quarter of its 400 ms under the load, and its 60 ms after
	// it, for 800 records.
	if got := c.tidygateLog(); got != 200*time.Microsecond {
		t.Errorf("tidygate's logging %v, want 200µs", got)
	}
	// PostgreSQL: 500 + 100 ms with logging on, against 200 µs a call off
	// (200 ms for 1000 calls): 400 ms more, for 800 records.
	if got := c.postgresLog(); got != 500*time.Microsecond {
		t.Errorf("PostgreSQL's logging %v, want 500µs", got)
	}
	if got := c.log(); got != 700*time.Microsecond {
		t.Errorf("logging %v, want 700µs", got)
	}
	if got := c.offCPU(); got != 700*time.Microsecond {
		t.Errorf("off, all %v, want 700µs", got)
	}
	if got := c.offCPU(cpuTidygate, cpuPostgres); got != 500*time.Microsecond {
		t.Errorf("off, tidygate and PostgreSQL %v, want 500µs", got)
	}
	if got := cpuBound(c.offCPU(), c.log()); got != 0.5 {
		t.Errorf("bound %v, want 0.5", got)
	}
	if got := cpuBound(c.offCPU(cpuTidygate, cpuPostgres), c.log()); math.Abs(got-500.0/1200) > 1e-12 {
		t.Errorf("bound %v, want %v", got, 500.0/1200)
	}
	// With no traces counted the calls stand in for them.
	on.written = 0
	if got := newLoggingCost(on, off).postgresLog(); got != 400*time.Microsecond {
		t.Errorf("PostgreSQL's logging per call %v, want 400µs", got)
	}
	if cpuBound(0, 0) != 0 || cpuBound(time.Second, 0) != 1 {
		t.Error("bound at the edges")
	}
}

func TestCPUShareWeighsSamplesWithAFrameInThePackage(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	writer, malloc, mainFn := fn(10, "github.com/tidygate/tidygate/internal/adapters/mlflow.(*writer).run"), fn(11, "runtime.mallocgc"), fn(12, "main.main")
	loc := func(id uint64, fns ...*profile.Function) *profile.Location {
		l := &profile.Location{ID: id}
		for _, f := range fns {
			l.Line = append(l.Line, profile.Line{Function: f})
		}
		return l
	}
	// Location 2 inlines mallocgc into the writer: two lines.
	l1, l2, l3 := loc(1, malloc), loc(2, malloc, writer), loc(3, mainFn)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		// CPU nanoseconds 30 in the writer (through the inlined frame), 70 not;
		// the sample counts (9 and 1) would give another share.
		Sample: []*profile.Sample{
			{Location: []*profile.Location{l1, l2, l3}, Value: []int64{9, 30}},
			{Location: []*profile.Location{l1, l3}, Value: []int64{1, 70}},
		},
		Location: []*profile.Location{l1, l2, l3},
		Function: []*profile.Function{writer, malloc, mainFn},
	}
	var gz bytes.Buffer
	if err := p.Write(&gz); err != nil { // gzipped, as runtime/pprof writes it
		t.Fatal(err)
	}
	got, err := cpuShare(gz.Bytes(), callLogPackage)
	if err != nil {
		t.Fatal(err)
	}
	if got != 0.3 {
		t.Errorf("share %v, want 0.3", got)
	}
	if _, err := cpuShare([]byte{0x0a, 0x05}, callLogPackage); err == nil {
		t.Error("a truncated profile read without error")
	}
}

func TestThroughputBoundIsTheCPUTheTargetRateLeavesACall(t *testing.T) {
	o := options{concurrency: 64, duration: 10 * time.Second}
	r := &report{out: &strings.Builder{}}
	r.target("Pooled query ≥ 5× faster than psycopg2's pool", "2.00×", false)
	r.target(throughputTargetName(o)+" (measured in this run, median of 3 alternated pairs)", "median 1.90×", false)
	cores := runtime.NumCPU()
	need := float64(cores) * 1000 // calls per second that leave each call 1 ms of CPU
	reportThroughputBound(r, o, need, callCPU{off: 900 * time.Microsecond, record: 1500 * time.Microsecond})
	if got := r.targets[0][1]; got != "2.00×" {
		t.Errorf("another target's figures changed: %q", got)
	}
	want := fmt.Sprintf("median 1.90×; %.0f req/s would leave a call 1000 µs of CPU on %d cores; it costs 2400 µs with its record (900 µs without)", need, cores)
	if got := r.targets[1][1]; got != want {
		t.Errorf("the target's figures\n%q, want\n%q", got, want)
	}
	if !strings.Contains(r.md.String(), "2400 µs in all, 2.40× what that rate allows") {
		t.Errorf("the paragraph lacks the comparison:\n%s", r.md.String())
	}
}
