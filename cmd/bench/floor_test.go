package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tidygate/tidygate/internal/bench"
)

// micros makes n samples of d microseconds.
func micros(d float64, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(d * float64(time.Microsecond))
	}
	return out
}

func TestFloorIsHopPlusFsyncPlusRoundTrip(t *testing.T) {
	f := floorAt(50, micros(100, 10), micros(160, 10), micros(170, 10), micros(50, 10))
	if f.hop != 60*time.Microsecond || f.fsync != 170*time.Microsecond || f.roundTrip != 50*time.Microsecond || f.total() != 280*time.Microsecond {
		t.Errorf("floor %+v, total %v", f, f.total())
	}
	// A proxy measured faster than direct is noise: the hop counts as zero.
	if f := floorAt(99, micros(100, 10), micros(90, 10), micros(170, 10), micros(50, 10)); f.total() != 220*time.Microsecond {
		t.Errorf("floor with a negative hop: %v", f.total())
	}
	// p50 and p99 are read separately: one slow fsync in a hundred moves p99 only.
	fsync := append(micros(100, 99), 5*time.Millisecond)
	direct, proxy, rt := micros(100, 100), micros(150, 100), micros(40, 100)
	if p50, p99 := floorAt(50, direct, proxy, fsync, rt).total(), floorAt(99.9, direct, proxy, fsync, rt).total(); p50 != 190*time.Microsecond || p99 != 5090*time.Microsecond {
		t.Errorf("p50 %v, p99.9 %v", p50, p99)
	}
}

// result makes a case result of rounds whose samples all take the given
// microseconds, as both total time and time to first byte.
func result(perRound ...float64) bench.CaseResult {
	var r bench.CaseResult
	for _, v := range perRound {
		for _, d := range micros(v, 20) {
			r.Samples = append(r.Samples, bench.Sample{TTFB: d, Total: d})
		}
		r.RoundEnds = append(r.RoundEnds, len(r.Samples))
	}
	return r
}

func TestRoundRatiosAreComputedRoundByRound(t *testing.T) {
	// Round 1 is slow for everyone: its ratio is taken against its own floor.
	direct := result(100, 1000, 100)
	proxy := result(150, 1100, 160)
	target := result(500, 2000, 700)
	fsync := result(150, 300, 140)
	rt := result(50, 100, 100)
	got := roundRatios(99, 3, bench.Totals, direct, proxy, target, fsync, rt)
	want := []float64{400.0 / 250, 1000.0 / 500, 600.0 / 300}
	if len(got) != 3 {
		t.Fatalf("ratios %v", got)
	}
	for i := range want {
		if diff := got[i] - want[i]; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("round %d: %.3f, want %.3f", i, got[i], want[i])
		}
	}
	if m := median(got); m != 2 {
		t.Errorf("median %v of %v", m, got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSummaryWritesOneVerdictLinePerTarget(t *testing.T) {
	var out strings.Builder
	r := &report{out: &out}
	r.target("fast enough", "1.10× of 1.3×", true)
	r.target("small enough", "70 MiB", false)
	r.untested("measured", "not run")
	r.summary()
	for _, line := range []string{"- **PASS** fast enough: 1.10× of 1.3×\n", "- **FAIL** small enough: 70 MiB\n", "- **NOT MEASURED** measured: not run\n"} {
		if !strings.Contains(r.md.String(), line) {
			t.Errorf("summary lacks %q:\n%s", line, r.md.String())
		}
	}
	if out.String() != r.md.String() {
		t.Error("the terminal did not get the same report")
	}
}

func TestAdapterVerdict(t *testing.T) {
	out := `goos: linux
BenchmarkAddedVsReverseProxy-2   	    2000	        21.97 adapter-added-µs	         0.8021 adapter/proxy	        55.30 direct-µs	        27.39 proxy-added-µs	  9.0 native-added-µs	   68090 B/op	     326 allocs/op
BenchmarkAddedVsReverseProxy-2   	    2000	        40.00 adapter-added-µs	         2.0 adapter/proxy	        64.03 direct-µs	        20.00 proxy-added-µs	  10.0 native-added-µs	   68107 B/op	     326 allocs/op
BenchmarkAddedVsReverseProxy-2   	    2000	        30.00 adapter-added-µs	         1.5 adapter/proxy	        60.00 direct-µs	        25.00 proxy-added-µs	  50.0 native-added-µs	   68107 B/op	     326 allocs/op
BenchmarkAddedVsReverseProxy-2   	--- FAIL
PASS`
	runs, lines := parseAdapterRuns(out)
	if len(runs) != 3 || len(lines) != 3 || runs[1] != (adapterRun{direct: 64.03, adapter: 40, native: 10, proxy: 20}) {
		t.Fatalf("runs %+v", runs)
	}
	r := &report{out: &strings.Builder{}}
	chat := func(run adapterRun) float64 { return run.adapter }
	judgeAdapter(r, "Chat", runs, chat) // ratios 0.80, 2.00, 1.20: median 1.20, within the target
	if v := r.targets[0]; v[2] != "PASS" || !strings.Contains(v[1], "median 1.20× of 3 runs") {
		t.Errorf("verdict %q", v)
	}
	judgeAdapter(r, "Chat", runs[1:], chat) // 2.00 and 1.20: median 1.60
	if v := r.targets[1]; v[2] != "FAIL" || !strings.Contains(v[1], "median 1.60×") {
		t.Errorf("verdict %q", v)
	}
	judgeAdapter(r, "Chat", nil, chat)
	if v := r.targets[2]; v[2] != "NOT MEASURED" {
		t.Errorf("verdict without runs %q", v)
	}
	judgeAdapter(r, "Native", runs, func(run adapterRun) float64 { return run.native }) // 0.33, 0.50, 2.00
	if v := r.targets[3]; v[2] != "PASS" || !strings.Contains(v[0], "(Native)") || !strings.Contains(v[1], "median 0.50×") {
		t.Errorf("Native's verdict %q", v)
	}
}

func TestHandlerAllocationsVerdict(t *testing.T) {
	r := &report{out: &strings.Builder{}}
	line := func(bytes, allocs int) []string {
		return strings.Fields(fmt.Sprintf("BenchmarkChat-2 66064 15590 ns/op %d B/op %d allocs/op", bytes, allocs))
	}
	judgeHandlerAllocs(r, line(handlerBytesBefore/2, handlerAllocsBefore/2)) // exactly half of each
	judgeHandlerAllocs(r, line(handlerBytesBefore/2+1, handlerAllocsBefore/2))
	judgeHandlerAllocs(r, line(handlerBytesBefore/4, handlerAllocsBefore/2+1))
	judgeHandlerAllocs(r, strings.Fields("BenchmarkChat-2 66064 15590 ns/op"))
	var got []string
	for _, v := range r.targets {
		got = append(got, v[2])
	}
	if strings.Join(got, ",") != "PASS,FAIL,FAIL,NOT MEASURED" {
		t.Errorf("verdicts %v", got)
	}
}
