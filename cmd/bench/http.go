package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/bench"
	"github.com/tidygate/tidygate/internal/freeaddr"
)

// devKey is the development key `tidygate serve --dev-key` seeds.
const devKey = "tg-dev-local-only-0000000000000000"

// catalogue is tidygate's model catalogue for the run: one chat model
// served by the mock through the OpenAI adapter.
const catalogue = `models:
  - name: bench-chat
    type: chat
    provider: openai
    price_per_million: {input: "0.15", output: "0.60"}
    max_output_tokens: 1024
`

// peakRSSTarget is the bound on tidygate's peak RSS under load.
const peakRSSTarget = 64 << 20

// runHTTP starts the mock, the reverse proxy and tidygate (each its own
// process), runs the latency and throughput sections against them, and
// returns the latency chart (nil when latency was not run).
func runHTTP(ctx context.Context, o options, tmp string, r *report, stderr io.Writer) ([]byte, error) {
	mock, err := startSelf(tmp, "mock", "mock")
	if err != nil {
		return nil, err
	}
	defer func() { _ = mock.stop() }()
	proxy, err := startSelf(tmp, "proxy", "proxy", "-target", mock.url)
	if err != nil {
		return nil, err
	}
	defer func() { _ = proxy.stop() }()
	eps := []endpoint{{name: "direct", base: mock.url, proc: mock}, {name: "ReverseProxy", base: proxy.url, proc: proxy}}

	var gw *gateway
	if o.tidygate == "" {
		r.para("tidygate was not measured: -tidygate is empty.")
	} else if _, err := os.Stat(o.tidygate); err != nil {
		r.para("tidygate was not measured: %v (build it with `go build -o bin/tidygate ./cmd/app`).", err)
	} else {
		if gw, err = startGateway(ctx, o, tmp, "tidygate", mock.url); err != nil {
			return nil, err
		}
		defer gw.close()
		eps = append(eps, endpoint{name: "tidygate", base: gw.url, proc: gw.child, gw: gw})
	}

	var svg []byte
	if o.wants("latency") {
		if svg, err = runLatency(ctx, o, tmp, r, eps); err != nil {
			return nil, fmt.Errorf("latency: %w", err)
		}
	}
	if !o.wants("throughput") {
		return svg, nil
	}
	rates, logging, err := runThroughput(ctx, o, tmp, r, eps, mock.cmd.Process.Pid)
	if err != nil {
		return nil, fmt.Errorf("throughput: %w", err)
	}
	before, err := judgeThroughput(ctx, o, tmp, r, mock.url, eps, rates)
	if err != nil {
		return nil, fmt.Errorf("throughput: %w", err)
	}
	if gw != nil {
		if err := gw.reportDelivery(ctx, r); err != nil {
			return nil, err
		}
	}
	return svg, runLoggingOff(ctx, o, tmp, r, mock, rates, logging, before, stderr)
}

// runLoggingOff measures tidygate's throughput with its call log switched
// off, when -logging-off-env names the switch, and reports the ratio
// beside the CPU bound: the ratio the CPU each call costs with logging on
// and off allows at best, when every process shares the cores. With the
// build before's req/s (before > 0), it also shows the CPU a call may cost
// at the throughput target's rate against what it costs.
func runLoggingOff(ctx context.Context, o options, tmp string, r *report, mock *child, rates map[string]bench.Throughput, on *cpuRun, before float64, stderr io.Writer) error {
	onRate, ok := rates["tidygate"]
	if !ok {
		return nil
	}
	const name = "Throughput with logging on ≥ 0.9 × with logging off"
	if o.loggingOffEnv == "" {
		r.para("Logging off was not measured: -logging-off-env is empty.")
		r.untested(name, "not run (-logging-off-env is empty)")
		return nil
	}
	gw, err := startGateway(ctx, o, tmp, "tidygate-logging-off", mock.url, o.loggingOffEnv)
	if err != nil {
		return err
	}
	defer gw.close()
	ep := endpoint{name: "tidygate, " + o.loggingOffEnv, base: gw.url, proc: gw.child}
	req := ep.request(false)
	client := bench.NewClient(o.concurrency)
	bench.Warm(ctx, client, req, o.concurrency, min(time.Second, o.duration))
	meter, err := startCPUMeter(ctx, o, gw, mock.cmd.Process.Pid)
	if err != nil {
		return fmt.Errorf("logging off: CPU: %w", err)
	}
	off := bench.ClosedLoop(ctx, client, req, o.concurrency, o.duration)
	offRun, err := meter.loadEnded(ctx, off)
	if err == nil {
		err = meter.drain(ctx, &offRun) // no journal: at once
	}
	if err != nil {
		return fmt.Errorf("logging off: CPU: %w", err)
	}
	fmt.Fprintf(stderr, "bench: %s: %.0f req/s\n", ep.name, off.PerSecond())
	r.table([]string{"tidygate", "req/s", "p50", "p99", "failures"}, [][]string{
		throughputRow("logging on", onRate), throughputRow(o.loggingOffEnv, off),
	})
	onOff := onRate.PerSecond() / off.PerSecond()
	r.para("Logging on/off: %.2f× (logging on costs %.1f %% of throughput).", onOff, 100*(1-onOff))
	measured := fmt.Sprintf("%.0f vs %.0f req/s (%.2f×)", onRate.PerSecond(), off.PerSecond(), onOff)
	if on != nil {
		bound, cost := reportLoggingCPU(r, o, *on, offRun)
		measured += "; " + bound
		if before > 0 {
			reportThroughputBound(r, o, throughputTarget*before, cost)
		}
	}
	r.target(name, measured, onOff >= 0.9)
	return nil
}

// gateway is a tidygate process with its own database and journal.
type gateway struct {
	*child
	db       *scratchDB
	admin    string // the admin server's URL: /metrics and the profiles
	answered int64  // calls answered 200, counted by the sections
}

// startGateway starts `tidygate serve --dev-key` against a new database,
// with the mock as its OpenAI upstream, and waits until it is ready and
// answers a chat call.
func startGateway(ctx context.Context, o options, tmp, name, mockURL string, extraEnv ...string) (*gateway, error) {
	dir := filepath.Join(tmp, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cat := filepath.Join(dir, "catalogue.yaml")
	if err := os.WriteFile(cat, []byte(catalogue), 0o644); err != nil {
		return nil, err
	}
	// Every gateway gets its own admin address: /metrics (and the profiles
	// -pprof fetches) are served there, never on the API address.
	addrs, err := freeaddr.Loopback(2)
	if err != nil {
		return nil, err
	}
	addr, adminAddr := addrs[0], addrs[1]
	db, err := createDB(ctx, o.adminDSN, "gw")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.tidygate, "serve", "--dev-key")
	cmd.Env = append(os.Environ(), "DEPLOY_PROFILE=local", "HTTP_ADDR="+addr, "DATABASE_URL="+db.dsn,
		"MLFLOW_JOURNAL_DIR="+filepath.Join(dir, "journal"), "MLFLOW_SCHEMA=create", "CATALOGUE_FILE="+cat,
		"OPENAI_BASE_URL="+mockURL+"/v1", "OPENAI_API_KEY=bench",
		// The throughput runs leave tens of thousands of records in the
		// journal; SIGTERM delivers them all before tidygate exits, which
		// takes longer than the default 30 s on a slow machine.
		"SHUTDOWN_TIMEOUT=5m")
	admin := "http://" + adminAddr
	cmd.Env = append(cmd.Env, "ADMIN_ADDR="+adminAddr)
	cmd.Env = append(cmd.Env, o.env...)
	cmd.Env = append(cmd.Env, extraEnv...)
	c, err := newChild(tmp, name, cmd)
	if err != nil {
		return nil, errors.Join(err, db.drop())
	}
	cmd.Stdout = c.log
	c.url = "http://" + addr
	if err := c.start(); err != nil {
		return nil, errors.Join(err, db.drop())
	}
	g := &gateway{child: c, db: db, admin: admin}
	if err := c.waitReady(ctx, c.url+"/readyz", time.Minute); err != nil {
		return nil, errors.Join(err, g.close())
	}
	if _, err := bench.Do(ctx, bench.NewClient(1), endpoint{base: c.url}.request(false)); err != nil {
		return nil, errors.Join(fmt.Errorf("%s answered a chat call with %w (log: %s)", name, err, c.log.Name()), g.close())
	}
	g.answered = 1
	return g, nil
}

// profileCPU fetches a CPU profile of tidygate over d into DIR/NAME.cpu.pprof
// (go tool pprof reads it with the binary); it returns when the profile is
// written. Without -pprof it does nothing.
func (g *gateway) profileCPU(ctx context.Context, dir, name string, d time.Duration) error {
	if dir == "" {
		return nil
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", g.admin, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// close stops tidygate (which flushes its call log) and drops its database.
func (g *gateway) close() error {
	return errors.Join(g.stop(), g.db.drop())
}

// reportDelivery stops tidygate, which drains its journal into PostgreSQL on
// SIGTERM, and reports how many traces it wrote against the calls it
// answered: a check that the benchmark ran with the call log really on.
func (g *gateway) reportDelivery(ctx context.Context, r *report) error {
	if err := g.stop(); err != nil {
		return fmt.Errorf("tidygate did not stop cleanly: %w (log: %s)", err, g.log.Name())
	}
	traces, err := g.traces(ctx)
	if err != nil {
		return err
	}
	r.para("Call log check: after SIGTERM, tidygate's database holds %d MLflow traces for the %d calls the harness saw answered with 200 (calls cut off at the end of a throughput run are answered but not counted by the harness).",
		traces, g.answered)
	return nil
}

// traces counts the MLflow traces in tidygate's database.
func (g *gateway) traces(ctx context.Context) (int64, error) {
	conn, err := pgx.Connect(ctx, g.db.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM trace_info").Scan(&n); err != nil {
		return 0, fmt.Errorf("count tidygate's traces: %w", err)
	}
	return n, nil
}

// goMemStats reads the Go runtime's cumulative allocation counters from
// tidygate's /metrics page on its admin address; ok is false when g is nil
// (the target is not tidygate) or the page does not have them.
func goMemStats(ctx context.Context, g *gateway) (mallocs, bytes float64, ok bool) {
	if g == nil {
		return 0, 0, false
	}
	m := g.metrics(ctx, "go_memstats_mallocs_total", "go_memstats_alloc_bytes_total")
	mallocs, haveM := m["go_memstats_mallocs_total"]
	bytes, haveB := m["go_memstats_alloc_bytes_total"]
	return mallocs, bytes, haveM && haveB
}

// metrics reads the named unlabelled metrics from tidygate's /metrics page
// on its admin address; a metric the page does not have (or a page that
// cannot be read) is missing from the result.
func (g *gateway) metrics(ctx context.Context, names ...string) map[string]float64 {
	out := map[string]float64{}
	page, err := g.metricsPage(ctx)
	if err != nil {
		return out
	}
	defer page.Close()
	sc := bufio.NewScanner(page)
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), " ")
		if !found || !slices.Contains(names, name) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// metricsPage fetches tidygate's /metrics page from its admin address;
// the caller closes it.
func (g *gateway) metricsPage(ctx context.Context) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s/metrics answered %s", g.admin, resp.Status)
	}
	return resp.Body, nil
}

// chartSVG draws the latency distributions.
func chartSVG(panels []bench.Panel) ([]byte, error) {
	var b bytes.Buffer
	err := bench.WriteChart(&b, "Latency at concurrency 1, loopback, fast mock upstream", panels)
	return b.Bytes(), err
}
