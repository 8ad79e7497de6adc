package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// goBenchmark is a `go test -bench` run the components section reports:
// the component of a call it measures, and what exactly; integration ones
// run with -tags integration against -admin-dsn's server.
type goBenchmark struct {
	component, pkg, pattern, what string
	integration                   bool
}

// handler is the HTTP handler's benchmark, whose allocations per call the
// issue's target halves.
var handler = goBenchmark{"handler", "./internal/adapters/httpapi", "^BenchmarkChat$",
	"the HTTP handler alone (authentication, decoding, validation, encoding, headers) over a gateway that answers at once, one request and one response writer reused for every call", false}

// The handler's allocations per call before issue 16's work: the target is
// half of each. They are BenchmarkChat as it is now (one request and one
// response writer reused, so that the benchmark adds nothing of its own)
// run on the build of 2026-11-29 (a588b61, the last commit before the
// work began), where it gave 60 objects and 4,586 B every time. The run
// recorded that day, 83 and 11,549 B, counted the benchmark's own request
// and recorder too (httptest.NewRequest and NewRecorder each call).
const (
	handlerAllocsBefore = 60
	handlerBytesBefore  = 4586
)

var allocBenchmarks = []goBenchmark{
	handler,
	{"adapter", "./internal/adapters/llm/openai", "^BenchmarkChat$",
		"the OpenAI adapter's Chat against a local upstream serving ~1.2 KB: encoding, the loopback round trip, decoding (section 6 compares it with a ReverseProxy)", false},
	{"record", "./internal/adapters/mlflow", "^BenchmarkRecord$",
		"the call log's cost on the request path: Record up to the journal's commit to disk, one caller and 32 sharing commits", false},
	{"reservation + settlement", "./internal/adapters/postgres", "^BenchmarkReserveSettle$",
		"the ledger's cost on the request path: a reservation and its settlement in PostgreSQL", true},
}

// runAllocs is section 5: each component of a call's cost and allocations,
// from the packages' own benchmarks run with -benchmem (with -pprof, a CPU
// and a memory profile of each into DIR). The tidygate process's
// allocations per request under load are in section 2.
func runAllocs(ctx context.Context, o options, r *report) error {
	r.section("5. Each component's cost, and allocations per call")
	var lines []string
	var rows [][]string
	for _, b := range allocBenchmarks {
		args := []string{"test", "-run", "^$", "-bench", b.pattern, "-benchmem", "-count", "1"}
		if o.profileDir != "" {
			name := strings.ReplaceAll(strings.ReplaceAll(b.component, " ", ""), "+", "-")
			args = append(args, "-o", filepath.Join(o.profileDir, name+".test"),
				"-cpuprofile", filepath.Join(o.profileDir, name+".cpu.pprof"), "-memprofile", filepath.Join(o.profileDir, name+".mem.pprof"))
		}
		if b.integration {
			args = append(args, "-tags", "integration")
		}
		cmd := exec.CommandContext(ctx, "go", append(args, b.pkg)...)
		cmd.Env = os.Environ()
		if b.integration {
			cmd.Env = append(cmd.Env, "TEST_DATABASE_URL="+o.adminDSN)
		}
		cmd.Dir = o.repo
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			r.para("`go test -bench '%s' %s` failed: %v\n\n```\n%s\n```", b.pattern, b.pkg, err, strings.TrimSpace(out.String()))
			continue
		}
		for line := range strings.SplitSeq(out.String(), "\n") {
			if !strings.HasPrefix(line, "Benchmark") {
				continue
			}
			lines = append(lines, line)
			f := strings.Fields(line)
			rows = append(rows, []string{b.component, "`" + f[0] + "` (" + strings.TrimPrefix(b.pkg, "./") + ")", b.what, field(f, "ns/op"), field(f, "B/op"), field(f, "allocs/op")})
			if b == handler {
				judgeHandlerAllocs(r, f)
			}
		}
	}
	r.para("`go test -run '^$' -bench … -benchmem` on the packages' own benchmarks (`testing.B` with `ReportAllocs`; the ledger's with `-tags integration` against the same PostgreSQL). " +
		"The key lookup has no benchmark of its own: the key is read by the gateway before every call, and its cost shows in section 1's added latency. " +
		"With `-pprof DIR`, each benchmark's CPU and memory profiles are in DIR beside its test binary (`go tool pprof DIR/record.test DIR/record.cpu.pprof`).")
	r.code(lines)
	r.table([]string{"component", "benchmark", "measures", "ns/op", "B/op", "allocs/op"}, rows)
	return nil
}

// field returns the value before unit in a benchmark line's fields.
func field(f []string, unit string) string {
	for i := 1; i < len(f); i++ {
		if f[i] == unit {
			return f[i-1]
		}
	}
	return fmt.Sprintf("no %s", unit)
}

// judgeHandlerAllocs records the target on the handler's allocations per
// call: at most half the objects and half the bytes recorded before.
func judgeHandlerAllocs(r *report, f []string) {
	allocs, err1 := strconv.ParseFloat(field(f, "allocs/op"), 64)
	bytes, err2 := strconv.ParseFloat(field(f, "B/op"), 64)
	name := fmt.Sprintf("Allocations per call in the handler (%s) halved: ≤ %d objects and ≤ %d B (before: %d and %d)",
		f[0], handlerAllocsBefore/2, handlerBytesBefore/2, handlerAllocsBefore, handlerBytesBefore)
	if err1 != nil || err2 != nil {
		r.untested(name, "the benchmark's line lacks B/op or allocs/op")
		return
	}
	r.target(name, fmt.Sprintf("%.0f objects, %.0f B", allocs, bytes),
		allocs <= handlerAllocsBefore/2.0 && bytes <= handlerBytesBefore/2.0)
}
