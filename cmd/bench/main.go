// Command bench is tidygate's benchmark harness. `make bench` runs it; it
// takes a few minutes and prints Markdown tables, and with -docs it writes
// them into docs/BENCHMARKS.md with an SVG chart of the latency
// distributions.
//
// It measures, on loopback, against a mock OpenAI upstream it starts itself:
//
//  1. added latency at concurrency 1 (p50 and p99 through tidygate minus
//     direct to the mock, chat and streaming time to first byte) against
//     the floor of tidygate's guarantees, measured in the same interleaved
//     rounds: a plain httputil.ReverseProxy hop, an fdatasync of a 2 KiB
//     append, and a prepared SELECT 1, each timed alone, and the three
//     composed in one process (`bench floor`), bare and with tidygate's
//     call log in place of the bare append;
//  2. throughput at fixed concurrency, and tidygate's peak RSS under it;
//     with logging on and off, the CPU per call of every process of the
//     loop, the call log's share of it, and the ratio that leaves at best;
//  3. the MLflow writer's records per second into PostgreSQL beside a raw
//     COPY of the same rows, and its CPU per record;
//  4. acquire + SELECT 1 through pgxpool, with a new connection per query,
//     and through the original Python stack (psycopg2, SQLAlchemy);
//  5. allocations per request;
//  6. what the OpenAI adapter adds to an upstream call beside what
//     httputil.ReverseProxy adds to the same call.
//
// It ends with one PASS or FAIL line per target of issue 16, with the
// figures each verdict was judged on.
//
// Usage:
//
//	bench [run] [-tidygate bin/tidygate] [-admin-dsn postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable]
//	      [-only latency,throughput,writer,pools,allocs,adapter] [-docs docs] [-quick] …
//	bench mock [-addr 127.0.0.1:0] [-latency 0s] [-chunk-delay 0s]
//	bench proxy -target http://127.0.0.1:PORT [-addr 127.0.0.1:0]
//	bench floor -target http://127.0.0.1:PORT -dsn postgres://… -dir DIR [-calllog-dsn postgres://…] [-addr 127.0.0.1:0]
//
// `bench mock`, `bench proxy` and `bench floor` serve until interrupted and print
// "listening on URL" first; run starts them as child processes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

// run dispatches to a subcommand; "run" is the default.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && (args[0] == "run" || args[0] == "mock" || args[0] == "proxy" || args[0] == "floor") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "mock":
		return serveMock(ctx, args, stdout, stderr)
	case "proxy":
		return serveProxy(ctx, args, stdout, stderr)
	case "floor":
		return serveFloor(ctx, args, stdout, stderr)
	}
	return runAll(ctx, args, stdout, stderr)
}
