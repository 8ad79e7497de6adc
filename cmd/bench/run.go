package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tidygate/tidygate/internal/bench"
)

// options are `bench run`'s flags.
type options struct {
	tidygate, adminDSN, docs, python, repo, loggingOffEnv string
	profileDir                                            string
	env                                                   envList // added to every tidygate's environment
	sections                                              []string
	rounds, requests, warmup, concurrency, records, count int
	duration, benchtime                                   time.Duration
	baselineTidygate                                      string
	baselineRPS                                           float64
}

var allSections = []string{"latency", "throughput", "writer", "pools", "allocs", "adapter"}

func (o options) wants(section string) bool { return slices.Contains(o.sections, section) }

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.tidygate, "tidygate", "bin/tidygate", "the tidygate binary (go build -o bin/tidygate ./cmd/app); empty measures without it")
	fs.StringVar(&o.adminDSN, "admin-dsn", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"a PostgreSQL server where the harness may create and drop databases")
	only := fs.String("only", strings.Join(allSections, ","), "the sections to run, comma-separated")
	fs.StringVar(&o.docs, "docs", "", "write the results into DIR/BENCHMARKS.md and the chart into DIR/bench/latency.svg")
	fs.StringVar(&o.python, "python", "/usr/bin/python3", "the Python with Debian's python3-psycopg2 and python3-sqlalchemy")
	fs.StringVar(&o.repo, "repo", ".", "the repository's root: scripts/bench and the packages whose go benchmarks are run")
	fs.StringVar(&o.loggingOffEnv, "logging-off-env", "MLFLOW_LOG_MODE=off", "KEY=VALUE that turns tidygate's call log off, for the logging on/off ratio; empty skips it")
	fs.IntVar(&o.rounds, "rounds", 5, "latency: interleaved rounds")
	fs.IntVar(&o.requests, "requests", 1000, "latency: requests per case and round")
	fs.IntVar(&o.warmup, "warmup", 500, "latency: unrecorded requests per case first")
	fs.IntVar(&o.concurrency, "concurrency", 64, "throughput: concurrent clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "throughput: how long each target is loaded")
	fs.StringVar(&o.baselineTidygate, "baseline-tidygate", "", "throughput: a tidygate binary built from the revision before issue 16's work (make bench builds it from BASELINE_REV); measured in the same run, its req/s is what the target multiplies instead of -baseline-rps")
	fs.Float64Var(&o.baselineRPS, "baseline-rps", 619, "throughput: the req/s with logging on of the build before issue 16's work (the figure docs/BENCHMARKS.md recorded on 2026-11-29), which the target multiplies")
	fs.IntVar(&o.records, "records", 20000, "writer: call records written")
	fs.IntVar(&o.count, "count", 5, "pools and adapter: runs of each benchmark (for benchstat)")
	fs.DurationVar(&o.benchtime, "benchtime", 500*time.Millisecond, "pools and adapter: time per benchmark run")
	fs.Var(&o.env, "env", "KEY=VALUE added to tidygate's environment (repeatable), e.g. -env MLFLOW_LOG_MODE=both")
	fs.StringVar(&o.profileDir, "pprof", "", "write CPU profiles into DIR: tidygate during the first 20 s of the latency section and under the throughput run (via its ADMIN_ADDR), and the writer's delivery")
	quick := fs.Bool("quick", false, "small numbers everywhere, to check that the harness works")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *quick {
		o.rounds, o.requests, o.warmup, o.duration, o.records, o.count, o.benchtime = 2, 200, 100, 2*time.Second, 2000, 1, 200*time.Millisecond
	}
	for s := range strings.SplitSeq(*only, ",") {
		if s = strings.TrimSpace(s); !slices.Contains(allSections, s) {
			return o, fmt.Errorf("-only: unknown section %q (known: %s)", s, strings.Join(allSections, ", "))
		}
		o.sections = append(o.sections, s)
	}
	if o.rounds < 1 || o.requests < 1 || o.warmup < 0 || o.concurrency < 1 || o.duration <= 0 || o.records < 1 || o.count < 1 || o.benchtime <= 0 || o.baselineRPS <= 0 {
		return o, errors.New("rounds, requests, concurrency, duration, records, count, benchtime and baseline-rps must be positive")
	}
	return o, nil
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(kv string) error {
	if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", kv)
	}
	*e = append(*e, kv)
	return nil
}

// runAll is `bench run`: every section asked for, in order, then the
// targets, then the docs.
func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
	}
	tmp, err := os.MkdirTemp("", "tidygate-bench-")
	if err != nil {
		return err
	}
	r := &report{out: stdout}
	fmt.Fprintf(stderr, "bench: logs and journals in %s (removed after a successful run)\n", tmp)
	r.write(machine(ctx, o))

	var chart []byte
	if o.wants("latency") || o.wants("throughput") {
		if chart, err = runHTTP(ctx, o, tmp, r, stderr); err != nil {
			return err
		}
	}
	if o.wants("writer") {
		if err := runWriter(ctx, o, tmp, r); err != nil {
			return fmt.Errorf("writer: %w", err)
		}
	}
	if o.wants("pools") {
		if err := runPools(ctx, o, r); err != nil {
			return fmt.Errorf("pools: %w", err)
		}
	}
	if o.wants("allocs") {
		if err := runAllocs(ctx, o, r); err != nil {
			return fmt.Errorf("allocations: %w", err)
		}
	}
	if o.wants("adapter") {
		if err := runAdapter(ctx, o, r); err != nil {
			return fmt.Errorf("adapter: %w", err)
		}
	}
	r.summary()
	if o.docs != "" {
		if err := writeDocs(o.docs, r.md.String(), chart); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: wrote %s\n", filepath.Join(o.docs, "BENCHMARKS.md"))
	}
	return os.RemoveAll(tmp)
}

// machine describes where and how the run was made.
func machine(ctx context.Context, o options) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		mem = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	pg := "PostgreSQL not reached"
	if conn, err := pgx.Connect(ctx, o.adminDSN); err == nil {
		_ = conn.QueryRow(ctx, "SHOW server_version").Scan(&pg)
		pg = "PostgreSQL " + pg
		conn.Close(ctx)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Run of %s. Machine: %s, %d logical CPUs, %s memory, Linux %s; %s; %s on the same host (loopback, Unix user postgres, trust auth).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), cpu, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)), runtime.Version(), pg)
	fmt.Fprintf(&b, "Command: `go run ./cmd/bench %s`.\n", strings.Join(flagsSummary(o), " "))
	return b.String()
}

func flagsSummary(o options) []string {
	env := ""
	for _, kv := range o.env {
		env += " -env " + kv
	}
	return []string{
		"-tidygate " + o.tidygate + env,
		fmt.Sprintf("-rounds %d -requests %d -warmup %d", o.rounds, o.requests, o.warmup),
		fmt.Sprintf("-concurrency %d -duration %s -baseline-rps %.0f", o.concurrency, o.duration, o.baselineRPS) + baselineFlag(o),
		fmt.Sprintf("-records %d -count %d -benchtime %s", o.records, o.count, o.benchtime),
	}
}

// baselineFlag is -baseline-tidygate as given, if it was.
func baselineFlag(o options) string {
	if o.baselineTidygate == "" {
		return ""
	}
	return " -baseline-tidygate " + o.baselineTidygate
}

// chatBody is the request every latency and throughput case sends: about
// 190 bytes, like the loopback floor's measurement.
func chatBody(stream bool) []byte {
	s := `{"model":"bench-chat","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":512`
	if stream {
		s += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(s + "}")
}

// endpoint is a server the load generator sends chat calls to, in one of
// the dialects tidygate speaks (chat completions unless dialect says
// otherwise).
type endpoint struct {
	name    string
	base    string
	proc    *child
	gw      *gateway // set for tidygate
	dialect dialect
}

// dialect is an inbound API: its path and the body of the same small call.
type dialect struct {
	path string
	body func(stream bool) []byte
}

// The dialects besides chat completions, measured through tidygate against
// the same OpenAI-format upstream: their added latency includes
// translating the request and the answer.
var (
	messagesDialect = dialect{path: "/v1/messages", body: func(stream bool) []byte {
		s := `{"model":"bench-chat","max_tokens":512,"system":"You are terse.","messages":[{"role":"user","content":"Say hello to the benchmark, please."}]`
		if stream {
			s += `,"stream":true`
		}
		return []byte(s + "}")
	}}
	// store is false so that the Responses call writes nothing more than a
	// chat call does.
	responsesDialect = dialect{path: "/v1/responses", body: func(stream bool) []byte {
		s := `{"model":"bench-chat","max_output_tokens":512,"store":false,"instructions":"You are terse.","input":"Say hello to the benchmark, please."`
		if stream {
			s += `,"stream":true`
		}
		return []byte(s + "}")
	}}
)

func (e endpoint) request(stream bool) bench.Request {
	path, body := "/v1/chat/completions", chatBody(stream)
	if e.dialect.path != "" {
		path, body = e.dialect.path, e.dialect.body(stream)
	}
	return bench.Request{
		URL:  e.base + path,
		Body: body,
		Header: map[string][]string{
			"Content-Type":      {"application/json"},
			"Authorization":     {"Bearer " + devKey},
			"X-Audit-Reason":    {"bench"},
			"Anthropic-Version": {"2023-06-01"},
		},
	}
}
