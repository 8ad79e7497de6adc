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

// adapterTarget is the bound on what the upstream adapter adds to
// a call, as a multiple of what httputil.ReverseProxy adds to the same one.
const adapterTarget = 1.2

// adapterRun is one run of the OpenAI adapter's comparison benchmark: the
// medians it reports, in microseconds.
type adapterRun struct {
	direct, adapter, native, proxy float64
}

// parseAdapterRuns reads BenchmarkAddedVsReverseProxy's lines from go test's
// output; lines without the three medians are skipped.
func parseAdapterRuns(out string) (runs []adapterRun, lines []string) {
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "BenchmarkAddedVsReverseProxy") {
			continue
		}
		f := strings.Fields(line)
		d, err1 := strconv.ParseFloat(field(f, "direct-µs"), 64)
		a, err2 := strconv.ParseFloat(field(f, "adapter-added-µs"), 64)
		n, err3 := strconv.ParseFloat(field(f, "native-added-µs"), 64)
		x, err4 := strconv.ParseFloat(field(f, "proxy-added-µs"), 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		runs = append(runs, adapterRun{direct: d, adapter: a, native: n, proxy: x})
		lines = append(lines, line)
	}
	return runs, lines
}

// judgeAdapter records the adapter target for one of its paths (what
// added reads from a run): the median over runs of the path's added time
// over the proxy's.
func judgeAdapter(r *report, path string, runs []adapterRun, added func(adapterRun) float64) {
	name := fmt.Sprintf("The upstream adapter (%s) adds ≤ %.1f × what httputil.ReverseProxy adds to the same upstream (median of the runs' ratios)", path, adapterTarget)
	var rs []float64
	for _, run := range runs {
		if run.proxy > 0 {
			rs = append(rs, added(run)/run.proxy)
		}
	}
	if len(rs) == 0 {
		r.untested(name, "no run measured a positive proxy hop")
		return
	}
	r.target(name, fmt.Sprintf("median %.2f× of %d runs (%s)", median(rs), len(rs), ratios(rs)), median(rs) <= adapterTarget)
}

// runAdapter is section 6: the OpenAI adapter's Chat beside a
// ReverseProxy to the same local upstream, -count runs of the package's
// BenchmarkAddedVsReverseProxy.
func runAdapter(ctx context.Context, o options, r *report) error {
	r.section("6. The upstream adapter against httputil.ReverseProxy")
	args := []string{"test", "-run", "^$", "-bench", "^BenchmarkAddedVsReverseProxy$", "-benchtime", o.benchtime.String(),
		"-count", strconv.Itoa(o.count)}
	if o.profileDir != "" {
		args = append(args, "-o", filepath.Join(o.profileDir, "adapter-vs-proxy.test"), "-cpuprofile", filepath.Join(o.profileDir, "adapter-vs-proxy.cpu.pprof"))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./internal/adapters/llm/openai")...)
	cmd.Dir, cmd.Env = o.repo, os.Environ()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test -bench BenchmarkAddedVsReverseProxy: %w\n%s", err, out.String())
	}
	runs, lines := parseAdapterRuns(out.String())
	r.para("`BenchmarkAddedVsReverseProxy` in internal/adapters/llm/openai, %d runs of %s: in one process, one http.Client to one loopback upstream "+
		"(a ~1.2 KB chat completion), each iteration makes the upstream call directly (the bytes the adapter sends, POSTed and read), "+
		"through the adapter's Chat (domain request to domain response, the translated path), through its Native "+
		"(the client's body with the model set, the answer's usage read: the pass-through a chat completions request to an OpenAI model takes), "+
		"and through a ReverseProxy's ServeHTTP (the request in memory, "+
		"the answer copied to a writer that drops it). Neither side pays an inbound socket; both pay the same round trip. "+
		"Added = each path's median minus direct's.", o.count, o.benchtime)
	r.code(lines)
	var rows [][]string
	for i, run := range runs {
		rows = append(rows, []string{strconv.Itoa(i + 1), fmt.Sprintf("%.1f µs", run.direct), fmt.Sprintf("%.1f µs", run.adapter),
			fmt.Sprintf("%.1f µs", run.native), fmt.Sprintf("%.1f µs", run.proxy), ratio(run.adapter, run.proxy), ratio(run.native, run.proxy)})
	}
	r.table([]string{"run", "direct", "Chat, added", "Native, added", "ReverseProxy, added", "Chat / ReverseProxy", "Native / ReverseProxy"}, rows)
	judgeAdapter(r, "Chat, translated", runs, func(run adapterRun) float64 { return run.adapter })
	judgeAdapter(r, "Native, passed through", runs, func(run adapterRun) float64 { return run.native })
	return nil
}
